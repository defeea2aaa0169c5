// xsmm_compare: LIBXSMM 1.17 (Debian's libxsmm-dev) against lth's sparse kernel on the sparse x
// dense products of ResNet-50's 1x1 convolutions (weights [Cout x Cin] at density d times one
// image's activations [Cin x H*W]), float32, one thread, best of --reps:
//   spmdm    libxsmm_spmdm_*: run-time CSR slices of A (128x128 blocks), B/C in 128-column
//            blocks; slices built once, outside the timing;
//   fsspmdm  libxsmm_sfsspmdm_*: JIT code with the sparsity pattern and values baked in;
//   lth      infer::Layer (sparse, 1x1 conv, batch 1): the engine's own kernel and work split.
// Each result is checked against a plain loop (max error relative to max |ref|). fsspmdm is
// only tried where N is a multiple of 64: at N = 196 it returned wrong results and at 49 it
// crashed in 1.17 (measured 2026-12-05).
// Built only when LIBXSMM is installed (bench/sparse_inference/CMakeLists.txt).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <libxsmm.h>
#include <malloc.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "infer/conv_layer.h"

namespace {

template <class F>
double best_of(F f, int reps) {
  double b = 1e9;
  f();
  for (int i = 0; i < reps; ++i) {
    const auto t = std::chrono::steady_clock::now();
    f();
    b = std::min(b, std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
  }
  return b;
}

double rel_err(const float* c, const at::Tensor& ref) {
  const float* r = ref.data_ptr<float>();
  double e = 0, s = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    e = std::max(e, static_cast<double>(std::fabs(c[i] - r[i])));
    s = std::max(s, static_cast<double>(std::fabs(r[i])));
  }
  return e / s;
}

}  // namespace

int main(int argc, char** argv) {
  // As lth's main (src/cli/main.cpp): freed buffers stay mapped, so every forward does not
  // fault its activations in again; both engines (and LIBXSMM) run under it.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
  const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  at::set_num_threads(1);
  libxsmm_init();
  struct Shape {
    int m, k, side;
  };  // Cout, Cin, H = W
  const Shape shapes[] = {
      {64, 256, 56}, {128, 512, 28}, {256, 1024, 14}, {2048, 512, 7}, {512, 2048, 7}};
  {
    // Warm-up (untimed): the first sizeable run of the process was 10x slow (page faults of
    // fresh heap, clock ramp), which made the first row meaningless.
    const auto w = at::randn({256, 256}) * (at::rand({256, 256}) < 0.2);
    const lth::infer::Layer warm("warm", lth::infer::LayerKind::Conv, w.view({256, 256, 1, 1}), {},
                                 {}, true, lth::infer::best_isa());
    const auto x = at::randn({1, 256, 56, 56});
    for (int i = 0; i < 20; ++i) warm.forward(x);
  }
  std::printf(
      "| density | Cout x Cin, HxW | lth ms | spmdm ms | fsspmdm ms | lth / spmdm | errors (lth, "
      "spmdm, fsspmdm) |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (double d : {0.2097, 0.1074, 0.018}) {
    for (const auto& s : shapes) {
      const int M = s.m, K = s.k, N = s.side * s.side;
      const auto w = at::randn({M, K}) * (at::rand({M, K}) < d);
      const auto x = at::randn({K, N});
      const auto ref = at::mm(w, x);
      // lth
      const lth::infer::Layer layer("1x1", lth::infer::LayerKind::Conv, w.view({M, K, 1, 1}), {},
                                    {}, true, lth::infer::best_isa());
      const auto x4 = x.view({1, K, s.side, s.side});
      at::Tensor y;
      const double t_lth = best_of([&] { y = layer.forward(x4); }, reps);
      // Small maps come back with padded planes (conv_layer.h, "Layout"): compare them packed.
      const double e_lth = rel_err(y.contiguous().data_ptr<float>(), ref);
      // spmdm
      auto* c = static_cast<float*>(std::aligned_alloc(64, ((M * N * 4 + 63) / 64) * 64));
      libxsmm_spmdm_handle h;
      libxsmm_CSR_sparseslice* slices = nullptr;
      libxsmm_spmdm_init(M, N, K, 1, &h, &slices);
      for (int b = 0; b < libxsmm_spmdm_get_num_createSparseSlice_blocks(&h); ++b)
        libxsmm_spmdm_createSparseSlice_fp32_thread(&h, 'N', w.data_ptr<float>(), slices, b, 0, 1);
      const float one = 1.f, zero = 0.f;
      const int blocks = libxsmm_spmdm_get_num_compute_blocks(&h);
      const double t_sp = best_of(
          [&] {
            for (int b = 0; b < blocks; ++b)
              libxsmm_spmdm_compute_fp32_thread(&h, 'N', 'N', &one, slices, x.data_ptr<float>(),
                                                'N', &zero, c, b, 0, 1);
          },
          reps);
      const double e_sp = rel_err(c, ref);
      libxsmm_spmdm_destroy(&h);
      // fsspmdm
      double t_fs = -1, e_fs = -1;
      if (N % 64 == 0) {
        auto* bx = static_cast<float*>(std::aligned_alloc(64, K * N * 4));
        std::copy(x.data_ptr<float>(), x.data_ptr<float>() + K * N, bx);
        if (auto* fs =
                libxsmm_sfsspmdm_create(M, N, K, K, N, N, 1.f, 0.f, 0, w.data_ptr<float>())) {
          t_fs = best_of([&] { libxsmm_sfsspmdm_execute(fs, bx, c); }, reps);
          e_fs = rel_err(c, ref);
          libxsmm_sfsspmdm_destroy(fs);
        }
        std::free(bx);
      }
      std::free(c);
      char fs_ms[32] = "n/a";
      if (t_fs > 0) std::snprintf(fs_ms, sizeof fs_ms, "%.3f", 1e3 * t_fs);
      std::printf("| %.4f | %dx%d, %dx%d | %.3f | %.3f | %s | %.2f | %.0e, %.0e, %.0e |\n", d, M, K,
                  s.side, s.side, 1e3 * t_lth, 1e3 * t_sp, fs_ms, t_lth / t_sp, e_lth, e_sp, e_fs);
      std::fflush(stdout);
    }
  }
  libxsmm_finalize();
  return 0;
}
