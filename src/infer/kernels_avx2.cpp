// AVX2+FMA build of the sparse row kernel (row_kernel.h); this file alone is compiled with
// -mavx2 -mfma (src/infer/CMakeLists.txt) and includes nothing but intrinsics, the argument
// block and the kernel template.
#include <immintrin.h>

#include "infer/kernel_args.h"
#include "infer/row_kernel.h"

namespace lth::infer {
namespace {

struct Avx2 {
  using Vec = __m256;
  using Mask = __m256i;  // lanes of all ones are read and written
  static constexpr int kWideVectors = 8;
  static constexpr int kLanes = 8;
  static Vec set1(float x) { return _mm256_set1_ps(x); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  // maskload neither reads nor faults on masked-off lanes.
  static Vec load_masked(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void store_masked(float* p, Vec v, Mask m) { _mm256_maskstore_ps(p, m, v); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec relu(Vec v) { return _mm256_max_ps(v, _mm256_setzero_ps()); }
  static Mask mask_first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
};

}  // namespace

void run_rows_avx2(const RowKernelArgs& a, int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
  run_rows_with<Avx2>(a, r0, r1, q0, q1);
}

}  // namespace lth::infer
