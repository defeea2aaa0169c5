#pragma once
// The argument block of the sparse row kernels (kernels.h), kept free of any other header so
// that the per-ISA kernel files, compiled with their own -m flags, share no inline code with
// the rest of the program (an inline function compiled for AVX-512 there could otherwise be
// the copy the linker keeps for every caller).
#include <cstdint>

namespace lth::infer {

// out[r][q] = relu?( start + sum_k vals[k] * in[offs[k] + q] + residual[r][q] )
// for rows r in [r0, r1), grid positions q in [q0, q1) and k over row r's nonzeros in
// [seg[r * seg_stride], seg[r * seg_stride + 1]); start is bias[r], or out[r][q] itself when
// `accumulate` (the partial sums of an earlier block of input channels); residual and ReLU are
// applied only when `finish`. The rows are a CSR matrix whose column indices are precomputed
// offsets into `in`, so one kernel covers 1x1 convolutions (offset = ci * plane), k x k
// convolutions on a padded, phase-split input (offset = plane of (ci, phase) + row shift +
// column shift) and linear layers; `seg` with a stride > 1 splits each row by input-channel
// block, so that a block of the input stays in L1 while every row reads it.
struct RowKernelArgs {
  const int64_t* seg = nullptr;  // row segments (see above); a plain CSR row_ptr: stride 1
  int64_t seg_stride = 1;
  const int32_t* offs = nullptr;  // [nnz] offsets into `in`
  const float* vals = nullptr;    // [nnz]
  const float* bias = nullptr;    // [rows] or null (zero)
  const float* in = nullptr;
  float* out = nullptr;             // row r starts at out + r * out_stride
  const float* residual = nullptr;  // same layout as out, or null
  int64_t out_stride = 0;
  bool accumulate = false;
  bool finish = true;
  bool relu = false;
};

}  // namespace lth::infer
