#pragma once
// The sparse row kernel (kernel_args.h says what one call computes) written once over a
// vector ISA, instantiated by kernels_avx512.cpp and kernels_avx2.cpp, each compiled with its
// own -m flags. Everything here has internal linkage (an anonymous namespace), so the two
// instantiations never meet in the linker; include this file from those two files only.
//
// Ops: the ISA's vector type and operations (Vec, Mask, kLanes, set1, load, load_masked, store,
// store_masked, fma, add, relu, mask_first(n), kWideVectors: the widest tile, as many
// accumulators as the ISA's registers hold with room to spare: 16 of AVX-512's 32, 8 of
// AVX2's 16). A tile of V vectors covers V * kLanes grid positions, the last vector masked to
// the positions that exist, so a row's positions take one pass over its nonzeros per
// kWideVectors vectors instead of one pass per power of two (on a 7x7 map, 49 positions:
// one pass of 4 vectors instead of three passes of 2, 1 and 1). With at most 6 vectors the
// nonzeros alternate between two sets of accumulators (summed at the end): each accumulator
// is a chain of dependent FMAs, and a few short chains leave the FMA units waiting on their
// latency.
#include <cstdint>

#include "infer/kernel_args.h"

namespace lth::infer {
namespace {

template <typename Ops, int V>
inline void tile(const float* vals, const int32_t* offs, int64_t nnz, float bias, const float* in,
                 float* out, bool accumulate, bool finish_row, const float* res, bool relu,
                 typename Ops::Mask last) {
  using Vec = typename Ops::Vec;
  constexpr int L = Ops::kLanes;
  constexpr int kSets = V <= 6 ? 2 : 1;
  const auto load = [last](const float* p, int j) {
    return j == V - 1 ? Ops::load_masked(p, last) : Ops::load(p);
  };
  Vec acc[kSets][V];
  for (int j = 0; j < V; ++j) {
    acc[0][j] = accumulate ? load(out + L * j, j) : Ops::set1(bias);
    if (kSets == 2) acc[kSets - 1][j] = Ops::set1(0.f);
  }
  int64_t k = 0;
  for (; k + kSets <= nnz; k += kSets) {
    for (int s = 0; s < kSets; ++s) {
      const Vec w = Ops::set1(vals[k + s]);
      const float* p = in + offs[k + s];
      for (int j = 0; j < V; ++j) acc[s][j] = Ops::fma(w, load(p + L * j, j), acc[s][j]);
    }
  }
  for (; k < nnz; ++k) {
    const Vec w = Ops::set1(vals[k]);
    const float* p = in + offs[k];
    for (int j = 0; j < V; ++j) acc[0][j] = Ops::fma(w, load(p + L * j, j), acc[0][j]);
  }
  for (int j = 0; j < V; ++j) {
    Vec v = kSets == 2 ? Ops::add(acc[0][j], acc[kSets - 1][j]) : acc[0][j];
    if (finish_row) {
      if (res) v = Ops::add(v, load(res + L * j, j));
      if (relu) v = Ops::relu(v);
    }
    if (j == V - 1) {
      Ops::store_masked(out + L * j, v, last);
    } else {
      Ops::store(out + L * j, v);
    }
  }
}

// Positions [q, q + n), 0 < n <= kWideVectors * kLanes (at most 16 vectors), in one pass.
template <typename Ops>
inline void ragged_tile(const float* vals, const int32_t* offs, int64_t nnz, float bias,
                        const float* in, float* out, bool accumulate, bool finish_row,
                        const float* res, bool relu, int64_t n) {
  constexpr int L = Ops::kLanes;
  const int vectors = static_cast<int>((n + L - 1) / L);
  const auto last = Ops::mask_first(static_cast<int>(n - L * (vectors - 1)));
#define LTH_RAGGED(V)                                                                      \
  case V:                                                                                  \
    tile<Ops, V>(vals, offs, nnz, bias, in, out, accumulate, finish_row, res, relu, last); \
    break;
  switch (vectors) {
    LTH_RAGGED(1)
    LTH_RAGGED(2)
    LTH_RAGGED(3)
    LTH_RAGGED(4)
    LTH_RAGGED(5)
    LTH_RAGGED(6)
    LTH_RAGGED(7)
    LTH_RAGGED(8)
    LTH_RAGGED(9)
    LTH_RAGGED(10)
    LTH_RAGGED(11)
    LTH_RAGGED(12)
    LTH_RAGGED(13)
    LTH_RAGGED(14)
    LTH_RAGGED(15)
    LTH_RAGGED(16)
    default:
      break;
  }
#undef LTH_RAGGED
}

template <typename Ops>
inline void run_rows_with(const RowKernelArgs& a, int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
  constexpr int64_t kWide = Ops::kWideVectors * Ops::kLanes;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t k0 = a.seg[r * a.seg_stride], nnz = a.seg[r * a.seg_stride + 1] - k0;
    const float* vals = a.vals + k0;
    const int32_t* offs = a.offs + k0;
    const float bias = a.bias ? a.bias[r] : 0.f;
    float* out = a.out + r * a.out_stride;
    const float* res = a.residual ? a.residual + r * a.out_stride : nullptr;
    int64_t q = q0;
    for (; q + kWide <= q1; q += kWide)
      tile<Ops, Ops::kWideVectors>(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
                                   res ? res + q : nullptr, a.relu, Ops::mask_first(Ops::kLanes));
    if (q < q1)
      ragged_tile<Ops>(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
                       res ? res + q : nullptr, a.relu, q1 - q);
  }
}

}  // namespace
}  // namespace lth::infer
