// bench_sparse_layers: the density crossover of the engine's sparse conv kernel against the
// dense one (LibTorch/oneDNN conv2d) for each distinct conv shape of ResNet-50 at 224x224
// (and a linear layer), the measurement behind infer/crossover.cpp. For each shape, batch and
// density: the median of --reps timed calls of each kernel on the same random masked weights
// and inputs (BN folding and fusion are not involved: plain conv + bias). Prints a table and
// the crossover per shape: the highest density at which the sparse kernel was faster.
//
// Example: bench_sparse_layers --batches 1,32 --threads 2
#include <ATen/Parallel.h>
#include <malloc.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "infer/conv_layer.h"
#include "machine_state.h"

namespace {

using namespace lth;
using namespace lth::infer;
using namespace lth::bench;

struct Shape {
  const char* label;
  int64_t in, out, kernel, stride, size;  // size: input height = width
};

// The distinct conv shapes of ResNet-50 at 224 (one per stage and kind).
const std::vector<Shape> kShapes = {
    {"stem 7x7/2 3->64 @224", 3, 64, 7, 2, 224},
    {"1x1 64->64 @56", 64, 64, 1, 1, 56},
    {"3x3 64->64 @56", 64, 64, 3, 1, 56},
    {"1x1 64->256 @56", 64, 256, 1, 1, 56},
    {"1x1 256->64 @56", 256, 64, 1, 1, 56},
    {"3x3/2 128->128 @56", 128, 128, 3, 2, 56},
    {"1x1/2 256->512 @56 (shortcut)", 256, 512, 1, 2, 56},
    {"3x3 128->128 @28", 128, 128, 3, 1, 28},
    {"1x1 512->128 @28", 512, 128, 1, 1, 28},
    {"3x3 256->256 @14", 256, 256, 3, 1, 14},
    {"1x1 1024->256 @14", 1024, 256, 1, 1, 14},
    {"1x1 256->1024 @14", 256, 1024, 1, 1, 14},
    {"3x3 512->512 @7", 512, 512, 3, 1, 7},
    {"1x1 2048->512 @7", 2048, 512, 1, 1, 7},
    {"1x1 512->2048 @7", 512, 2048, 1, 1, 7},
};

double time_layer(const Layer& layer, const at::Tensor& x, int reps) {
  layer.forward(x);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    layer.forward(x);
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

}  // namespace

int main(int argc, char** argv) {
  // As lth's main (src/cli/main.cpp): freed buffers stay mapped, so every forward does not
  // fault its activations in again; both engines (and LIBXSMM) run under it.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
  CLI::App app{"sparse vs dense conv crossover per ResNet-50 layer shape"};
  std::string batches = "1,32", densities = "0.05,0.1,0.2,0.3,0.4,0.5,0.7";
  int threads = 2, reps = 3;
  std::string only;
  app.add_option("--batches", batches)->capture_default_str();
  app.add_option("--densities", densities)->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--reps", reps)->capture_default_str();
  app.add_option("--only", only, "shapes whose label contains this");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  auto list = [](const std::string& s) {
    std::vector<double> v;
    size_t p = 0;
    while (p < s.size()) {
      const size_t q = s.find(',', p);
      v.push_back(std::stod(s.substr(p, q - p)));
      p = q == std::string::npos ? s.size() : q + 1;
    }
    return v;
  };
  std::printf("%-32s %5s %7s %10s %10s %7s\n", "shape", "batch", "density", "dense ms", "sparse ms",
              "ratio");
  for (const auto& s : kShapes) {
    if (!only.empty() && std::string(s.label).find(only) == std::string::npos) continue;
    for (double b : list(batches)) {
      const auto x = at::randn({static_cast<int64_t>(b), s.in, s.size, s.size});
      const auto g = ConvGeometry::same_torch(s.kernel, s.stride);
      double crossover = 0;
      for (double d : list(densities)) {
        const auto w = at::randn({s.out, s.in, s.kernel, s.kernel}) *
                       (at::rand({s.out, s.in, s.kernel, s.kernel}) < d);
        const auto bias = at::randn({s.out});
        const Layer dense("d", LayerKind::Conv, w, bias, g, false, best_isa());
        const Layer sparse("s", LayerKind::Conv, w, bias, g, true, best_isa());
        const double td = time_layer(dense, x, reps), ts = time_layer(sparse, x, reps);
        if (ts < td) crossover = d;
        std::printf("%-32s %5.0f %7.3f %10.3f %10.3f %7.2f\n", s.label, b, d, 1e3 * td, 1e3 * ts,
                    td / ts);
        std::fflush(stdout);
      }
      std::printf("%-32s %5.0f crossover %.3f\n", s.label, b, crossover);
    }
  }
  return 0;
}
