// AVX-512 build of the sparse row kernel (row_kernel.h); this file alone is compiled with
// -mavx512f -mfma (src/infer/CMakeLists.txt) and includes nothing but intrinsics, the
// argument block and the kernel template.
// ReLU is _mm512_maskz_max_ps: GCC 12 warns on _mm512_max_ps's undefined pass-through.
#include <immintrin.h>

#include "infer/kernel_args.h"
#include "infer/row_kernel.h"

namespace lth::infer {
namespace {

struct Avx512 {
  using Vec = __m512;
  using Mask = __mmask16;
  static constexpr int kWideVectors = 16;
  static constexpr int kLanes = 16;
  static Vec set1(float x) { return _mm512_set1_ps(x); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  // Masked-off lanes are neither read nor faulted on.
  static Vec load_masked(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store_masked(float* p, Vec v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec relu(Vec v) { return _mm512_maskz_max_ps(0xFFFF, v, _mm512_setzero_ps()); }
  static Mask mask_first(int n) { return static_cast<Mask>((1u << n) - 1u); }
};

}  // namespace

void run_rows_avx512(const RowKernelArgs& a, int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
  run_rows_with<Avx512>(a, r0, r1, q0, q1);
}

}  // namespace lth::infer
