// Portable build of the sparse row kernel: plain C++ over tiles of 32 positions, which the
// compiler vectorises for the baseline ISA (SSE2 on x86-64).
#include "infer/kernel_args.h"

namespace lth::infer {

void run_rows_portable(const RowKernelArgs& a, int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
  constexpr int64_t kTile = 32;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t k0 = a.seg[r * a.seg_stride], k1 = a.seg[r * a.seg_stride + 1];
    const float bias = a.bias ? a.bias[r] : 0.f;
    float* out = a.out + r * a.out_stride;
    const float* res = a.residual ? a.residual + r * a.out_stride : nullptr;
    for (int64_t q = q0; q < q1; q += kTile) {
      const int64_t n = q1 - q < kTile ? q1 - q : kTile;
      float acc[kTile];
      for (int64_t j = 0; j < n; ++j) acc[j] = a.accumulate ? out[q + j] : bias;
      for (int64_t k = k0; k < k1; ++k) {
        const float w = a.vals[k];
        const float* p = a.in + a.offs[k] + q;
        for (int64_t j = 0; j < n; ++j) acc[j] += w * p[j];
      }
      for (int64_t j = 0; j < n; ++j) {
        if (!a.finish) {
          out[q + j] = acc[j];
          continue;
        }
        float v = acc[j] + (res ? res[q + j] : 0.f);
        out[q + j] = a.relu && v < 0.f ? 0.f : v;
      }
    }
  }
}

}  // namespace lth::infer
