// AVX-512 build of the sparse row kernel; this file alone is compiled with -mavx512f -mfma
// (src/infer/CMakeLists.txt) and includes nothing but intrinsics and the argument block.
// ReLU is _mm512_maskz_max_ps: GCC 12 warns on _mm512_max_ps's undefined pass-through.
#include <immintrin.h>

#include "infer/kernel_args.h"

namespace lth::infer {
namespace {

inline __m512 finish(__m512 v, const float* res, bool relu) {
  if (res) v = _mm512_add_ps(v, _mm512_loadu_ps(res));
  if (relu) v = _mm512_maskz_max_ps(0xFFFF, v, _mm512_setzero_ps());
  return v;
}

// V accumulators of 16 floats: grid positions [q, q + 16 V).
template <int V>
inline void tile(const float* vals, const int32_t* offs, int64_t nnz, float bias, const float* in,
                 float* out, bool accumulate, bool finish_row, const float* res, bool relu) {
  __m512 acc[V];
  for (int j = 0; j < V; ++j)
    acc[j] = accumulate ? _mm512_loadu_ps(out + 16 * j) : _mm512_set1_ps(bias);
  for (int64_t k = 0; k < nnz; ++k) {
    const __m512 w = _mm512_set1_ps(vals[k]);
    const float* p = in + offs[k];
    for (int j = 0; j < V; ++j) acc[j] = _mm512_fmadd_ps(w, _mm512_loadu_ps(p + 16 * j), acc[j]);
  }
  for (int j = 0; j < V; ++j)
    _mm512_storeu_ps(out + 16 * j,
                     finish_row ? finish(acc[j], res ? res + 16 * j : nullptr, relu) : acc[j]);
}

// Fewer than 16 positions, masked (masked-off lanes are neither read nor written).
inline void tail(const float* vals, const int32_t* offs, int64_t nnz, float bias, const float* in,
                 float* out, bool accumulate, bool finish_row, const float* res, bool relu, int n) {
  const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
  __m512 acc = accumulate ? _mm512_maskz_loadu_ps(m, out) : _mm512_set1_ps(bias);
  for (int64_t k = 0; k < nnz; ++k)
    acc = _mm512_fmadd_ps(_mm512_set1_ps(vals[k]), _mm512_maskz_loadu_ps(m, in + offs[k]), acc);
  if (finish_row && res) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, res));
  if (finish_row && relu) acc = _mm512_maskz_max_ps(0xFFFF, acc, _mm512_setzero_ps());
  _mm512_mask_storeu_ps(out, m, acc);
}

}  // namespace

void run_rows_avx512(const RowKernelArgs& a, int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t k0 = a.seg[r * a.seg_stride], nnz = a.seg[r * a.seg_stride + 1] - k0;
    const float* vals = a.vals + k0;
    const int32_t* offs = a.offs + k0;
    const float bias = a.bias ? a.bias[r] : 0.f;
    float* out = a.out + r * a.out_stride;
    const float* res = a.residual ? a.residual + r * a.out_stride : nullptr;
    int64_t q = q0;
    for (; q + 128 <= q1; q += 128)
      tile<8>(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
              res ? res + q : nullptr, a.relu);
    if (q + 64 <= q1) {
      tile<4>(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
              res ? res + q : nullptr, a.relu);
      q += 64;
    }
    if (q + 32 <= q1) {
      tile<2>(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
              res ? res + q : nullptr, a.relu);
      q += 32;
    }
    if (q + 16 <= q1) {
      tile<1>(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
              res ? res + q : nullptr, a.relu);
      q += 16;
    }
    if (q < q1)
      tail(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
           res ? res + q : nullptr, a.relu, static_cast<int>(q1 - q));
  }
}

}  // namespace lth::infer
