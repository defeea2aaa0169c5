// AVX2+FMA build of the sparse row kernel; this file alone is compiled with -mavx2 -mfma
// (src/infer/CMakeLists.txt) and includes nothing but intrinsics and the argument block.
#include <immintrin.h>

#include "infer/kernel_args.h"

namespace lth::infer {
namespace {

inline __m256 finish(__m256 v, const float* res, bool relu) {
  if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res));
  if (relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
  return v;
}

// V accumulators of 8 floats: grid positions [q, q + 8 V).
template <int V>
inline void tile(const float* vals, const int32_t* offs, int64_t nnz, float bias, const float* in,
                 float* out, bool accumulate, bool finish_row, const float* res, bool relu) {
  __m256 acc[V];
  for (int j = 0; j < V; ++j)
    acc[j] = accumulate ? _mm256_loadu_ps(out + 8 * j) : _mm256_set1_ps(bias);
  for (int64_t k = 0; k < nnz; ++k) {
    const __m256 w = _mm256_set1_ps(vals[k]);
    const float* p = in + offs[k];
    for (int j = 0; j < V; ++j) acc[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 8 * j), acc[j]);
  }
  for (int j = 0; j < V; ++j)
    _mm256_storeu_ps(out + 8 * j,
                     finish_row ? finish(acc[j], res ? res + 8 * j : nullptr, relu) : acc[j]);
}

// Fewer than 8 positions, masked (maskload neither reads nor faults on masked-off lanes).
inline void tail(const float* vals, const int32_t* offs, int64_t nnz, float bias, const float* in,
                 float* out, bool accumulate, bool finish_row, const float* res, bool relu, int n) {
  alignas(32) int lanes[8];
  for (int i = 0; i < 8; ++i) lanes[i] = i < n ? -1 : 0;
  const __m256i m = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
  __m256 acc = accumulate ? _mm256_maskload_ps(out, m) : _mm256_set1_ps(bias);
  for (int64_t k = 0; k < nnz; ++k)
    acc = _mm256_fmadd_ps(_mm256_set1_ps(vals[k]), _mm256_maskload_ps(in + offs[k], m), acc);
  if (finish_row && res) acc = _mm256_add_ps(acc, _mm256_maskload_ps(res, m));
  if (finish_row && relu) acc = _mm256_max_ps(acc, _mm256_setzero_ps());
  _mm256_maskstore_ps(out, m, acc);
}

}  // namespace

void run_rows_avx2(const RowKernelArgs& a, int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t k0 = a.seg[r * a.seg_stride], nnz = a.seg[r * a.seg_stride + 1] - k0;
    const float* vals = a.vals + k0;
    const int32_t* offs = a.offs + k0;
    const float bias = a.bias ? a.bias[r] : 0.f;
    float* out = a.out + r * a.out_stride;
    const float* res = a.residual ? a.residual + r * a.out_stride : nullptr;
    int64_t q = q0;
    for (; q + 64 <= q1; q += 64)
      tile<8>(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
              res ? res + q : nullptr, a.relu);
    if (q + 32 <= q1) {
      tile<4>(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
              res ? res + q : nullptr, a.relu);
      q += 32;
    }
    for (; q + 8 <= q1; q += 8)
      tile<1>(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
              res ? res + q : nullptr, a.relu);
    if (q < q1)
      tail(vals, offs, nnz, bias, a.in + q, out + q, a.accumulate, a.finish,
           res ? res + q : nullptr, a.relu, static_cast<int>(q1 - q));
  }
}

}  // namespace lth::infer
