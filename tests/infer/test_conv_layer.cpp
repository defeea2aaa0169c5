// The engine's layers against LibTorch's dense conv2d / linear on the same masked weights:
// every conv shape lth's models have (ResNet stems, 1x1 / 3x3 / strided / shortcut convs,
// Conv-n's biased 3x3, LeNet's linear layers) and odd ones (5x5, 7x9 inputs, stride 3,
// asymmetric "SAME" padding), at densities 1.0 to 0.005 and 0, batch 1 and several, with the
// residual and ReLU fused, for every kernel build this CPU runs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "infer/conv_layer.h"
#include "infer/pool.h"

namespace lth::infer {
namespace {

struct Case {
  std::string label;
  int64_t in, out, kernel_h, kernel_w, stride_h, stride_w;
  int64_t pad_top, pad_left, pad_bottom, pad_right;
  int64_t h, w;
  bool bias;
};

std::vector<Case> cases() {
  return {
      {"imagenet_stem_7x7s2", 3, 16, 7, 7, 2, 2, 3, 3, 3, 3, 20, 20, true},
      {"cifar_stem_3x3", 3, 16, 3, 3, 1, 1, 1, 1, 1, 1, 12, 12, false},
      {"bottleneck_1x1", 64, 32, 1, 1, 1, 1, 0, 0, 0, 0, 7, 7, true},
      {"bottleneck_1x1_expand", 32, 128, 1, 1, 1, 1, 0, 0, 0, 0, 5, 5, true},
      {"bottleneck_3x3", 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8, true},
      {"bottleneck_3x3_s2", 32, 48, 3, 3, 2, 2, 1, 1, 1, 1, 9, 9, true},
      {"shortcut_1x1_s2", 64, 96, 1, 1, 2, 2, 0, 0, 0, 0, 8, 8, true},
      {"conv_n_3x3_bias", 16, 24, 3, 3, 1, 1, 1, 1, 1, 1, 10, 10, true},
      {"odd_5x5_7x9", 5, 7, 5, 5, 1, 1, 2, 2, 2, 2, 7, 9, true},
      {"odd_stride3", 6, 10, 3, 3, 3, 3, 1, 1, 1, 1, 11, 13, true},
      {"odd_stride_2x1", 6, 10, 3, 3, 2, 1, 1, 1, 1, 1, 11, 13, true},
      {"tf_same_3x3_s2", 8, 12, 3, 3, 2, 2, 0, 0, 1, 1, 10, 10, true},
      {"tf_same_7x7_s2", 3, 8, 7, 7, 2, 2, 2, 2, 3, 3, 16, 16, true},
      {"no_padding_3x3", 8, 8, 3, 3, 1, 1, 0, 0, 0, 0, 6, 6, false},
      // Several output-channel blocks and position tiles, ragged at both ends.
      {"blocks_3x3", 8, 150, 3, 3, 1, 1, 1, 1, 1, 1, 13, 13, true},
      {"blocks_1x1", 70, 130, 1, 1, 1, 1, 0, 0, 0, 0, 12, 13, false},
  };
}

std::vector<Isa> isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Portable, Isa::Avx2, Isa::Avx512})
    if (cpu_supports(isa)) out.push_back(isa);
  return out;
}

at::Tensor masked_weight(at::IntArrayRef shape, double density, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto w = at::randn(shape, gen);
  if (density >= 1.0) return w;
  const auto keep = at::rand(shape, gen) < density;
  return w * keep;
}

// Normwise relative error: max |a - b| over max |b|.
double relative_error(const at::Tensor& got, const at::Tensor& ref) {
  const double scale = ref.abs().max().item<double>();
  const double diff = (got - ref).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

TEST(ConvLayer, MatchesLibTorchAcrossShapesDensitiesBatchesAndIsas) {
  int checked = 0;
  uint64_t seed = 1;
  for (const auto& c : cases()) {
    for (double density : {1.0, 0.5, 0.1, 0.005, 0.0}) {
      const auto weight = masked_weight({c.out, c.in, c.kernel_h, c.kernel_w}, density, ++seed);
      const auto bias = c.bias ? at::randn({c.out}) : at::Tensor();
      ConvGeometry g;
      g.stride_h = c.stride_h;
      g.stride_w = c.stride_w;
      g.pad_top = c.pad_top;
      g.pad_left = c.pad_left;
      g.pad_bottom = c.pad_bottom;
      g.pad_right = c.pad_right;
      for (int64_t batch : {1, 5}) {
        const auto x = at::randn({batch, c.in, c.h, c.w});
        const auto padded =
            at::constant_pad_nd(x, {c.pad_left, c.pad_right, c.pad_top, c.pad_bottom}, 0);
        const auto plain = at::conv2d(padded, weight, bias, {c.stride_h, c.stride_w});
        const auto residual = at::randn_like(plain);
        const auto fused = (plain + residual).relu();
        for (Isa isa : isas()) {
          const Layer layer(c.label, LayerKind::Conv, weight, bias, g, /*sparse=*/true, isa);
          const Layer dense(c.label, LayerKind::Conv, weight, bias, g, /*sparse=*/false, isa);
          const std::string where = c.label + " density " + std::to_string(density) + " batch " +
                                    std::to_string(batch) + " " + isa_name(isa);
          const auto got = layer.forward(x);
          ASSERT_EQ(got.sizes(), plain.sizes()) << where;
          EXPECT_LE(relative_error(got, plain), 1e-5) << where;
          EXPECT_LE(relative_error(layer.forward(x, residual, true), fused), 1e-5) << where;
          EXPECT_LE(relative_error(dense.forward(x, residual, true), fused), 1e-5) << where;
          // Run twice: the cached offsets must not depend on the first call.
          EXPECT_LE(relative_error(layer.forward(x), plain), 1e-5) << where;
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(ConvLayer, FullyPrunedLayerGivesItsBiasAndCountsNoMacs) {
  const auto weight = at::zeros({4, 3, 3, 3});
  const auto bias = at::randn({4});
  const Layer layer("zero", LayerKind::Conv, weight, bias, ConvGeometry::same_torch(3, 1), true,
                    best_isa());
  const auto y = layer.forward(at::randn({2, 3, 5, 5}));
  EXPECT_TRUE(at::allclose(y, bias.view({1, 4, 1, 1}).expand_as(y)));
  EXPECT_EQ(layer.nonzeros(), 0);
  EXPECT_EQ(layer.sparse_macs(5, 5), 0);
  EXPECT_EQ(layer.dense_macs(5, 5), 4 * 3 * 9 * 25);
}

TEST(ConvLayer, InputSizeChangeRecomputesOffsets) {
  const auto weight = masked_weight({6, 4, 3, 3}, 0.3, 77);
  const Layer layer("resize", LayerKind::Conv, weight, {}, ConvGeometry::same_torch(3, 2), true,
                    best_isa());
  for (int64_t size : {9, 14, 9}) {
    const auto x = at::randn({2, 4, size, size});
    EXPECT_LE(relative_error(layer.forward(x), at::conv2d(x, weight, {}, 2, 1)), 1e-5) << size;
  }
}

TEST(LinearLayer, MatchesLibTorchLinear) {
  uint64_t seed = 100;
  for (auto [in, out] : {std::pair<int64_t, int64_t>{784, 300}, {300, 100}, {100, 10}, {37, 5}}) {
    for (double density : {1.0, 0.2, 0.005, 0.0}) {
      const auto weight = masked_weight({out, in}, density, ++seed);
      const auto bias = at::randn({out});
      for (int64_t batch : {1, 32, 33}) {
        const auto x = at::randn({batch, in});
        const auto ref = at::linear(x, weight, bias);
        for (Isa isa : isas()) {
          const Layer layer("fc", LayerKind::Linear, weight, bias, {}, true, isa);
          const std::string where = std::to_string(in) + "->" + std::to_string(out) + " density " +
                                    std::to_string(density) + " batch " + std::to_string(batch) +
                                    " " + isa_name(isa);
          EXPECT_LE(relative_error(layer.forward(x), ref), 1e-5) << where;
          EXPECT_LE(relative_error(layer.forward(x, ref, true), (ref + ref).relu()), 1e-5) << where;
        }
      }
    }
  }
}

TEST(ConvLayer, DensityAndWeightBytesFollowTheNonzeros) {
  auto weight = at::zeros({8, 8, 1, 1});
  weight.index_put_({0, 0}, 1.0);
  weight.index_put_({3, 5}, -2.0);
  const Layer layer("two", LayerKind::Conv, weight, {}, {}, true, Isa::Portable);
  EXPECT_EQ(layer.nonzeros(), 2);
  EXPECT_DOUBLE_EQ(layer.density(), 2.0 / 64);
  EXPECT_LT(layer.weight_bytes(), 64 * 4);
}

// Larger maps with every padding combination: several position tiles whose boundaries fall
// anywhere in the grid, the dropped columns past the output width included (a tile starting
// there once wrote garbage), padding columns on either side of both stride phases.
TEST(ConvLayer, PaddingAndTileBoundariesAcrossMapSizes) {
  auto gen = at::detail::createCPUGenerator(11);
  const Isa isa = best_isa();
  for (const int64_t k : {1, 3, 7}) {
    for (const int64_t s : {1, 2}) {
      const auto weight = masked_weight({70, 16, k, k}, 0.3, 100 + k * 2 + s);
      for (const int64_t h : {5, 19, 36}) {
        const auto x = at::randn({2, 16, h, h + 1}, gen);
        for (const int64_t top : {0, 1, 3}) {
          for (const int64_t left : {0, 1, 3}) {
            const int64_t right = (2 * left + top) % 4, bottom = (top + left) % 4;
            ConvGeometry g;
            g.stride_h = g.stride_w = s;
            g.pad_top = top;
            g.pad_left = left;
            g.pad_bottom = bottom;
            g.pad_right = right;
            const auto padded = at::constant_pad_nd(x, {left, right, top, bottom}, 0);
            if (padded.size(2) < k || padded.size(3) < k) continue;
            const auto want = at::conv2d(padded, weight, {}, {s, s});
            const auto residual = at::randn(want.sizes(), gen);
            const Layer layer("sweep", LayerKind::Conv, weight, {}, g, true, isa);
            const std::string where = std::to_string(k) + "x" + std::to_string(k) + "/" +
                                      std::to_string(s) + " at " + std::to_string(h) + " pads " +
                                      std::to_string(top) + std::to_string(left) +
                                      std::to_string(right) + std::to_string(bottom);
            EXPECT_LE(relative_error(layer.forward(x), want), 1e-5) << where;
            EXPECT_LE(relative_error(layer.forward(x, residual, true), (want + residual).relu()),
                      1e-5)
                << where;
          }
        }
      }
    }
  }
}

// Sparse conv outputs come back with channel planes padded to 16 floats (conv_layer.h,
// "Layout"); the next layer reads them as they are, whatever its kind, with a residual in
// either layout, and LibTorch sees an ordinary strided tensor.
TEST(ConvLayer, PaddedPlaneOutputsChainIntoEveryLayerKind) {
  auto gen = at::detail::createCPUGenerator(21);
  const Isa isa = best_isa();
  const auto w1 = masked_weight({24, 16, 1, 1}, 0.4, 31);
  const auto w2 = masked_weight({24, 24, 1, 1}, 0.4, 32);
  const auto w3 = masked_weight({24, 24, 3, 3}, 0.4, 33);
  const auto w4 = masked_weight({8, 24, 1, 1}, 0.4, 34);
  const Layer first("first", LayerKind::Conv, w1, {}, {}, true, isa);
  for (const int64_t size : {7, 9, 12}) {  // planes of 49, 81, 144 floats: padded to 64, 96, 144
    const auto x = at::randn({3, 16, size, size}, gen);
    const auto y = first.forward(x);
    const int64_t plane = (size * size + 15) / 16 * 16;
    EXPECT_TRUE(has_plane_layout(y));
    EXPECT_EQ(y.stride(1), plane) << size;
    EXPECT_EQ(padded_plane(size, size), plane);
    // The padding lanes are zero.
    const auto flat = at::from_blob(y.data_ptr<float>(), {3, 24, plane});
    EXPECT_EQ(flat.narrow(2, size * size, plane - size * size).abs().sum().item<float>(), 0.f);
    const auto y_ref = at::conv2d(x, w1);
    EXPECT_LE(relative_error(y, y_ref), 1e-5) << size;
    const auto residual = at::randn({3, 24, size, size}, gen);  // contiguous
    const Layer one_by_one("1x1", LayerKind::Conv, w2, {}, {}, true, isa);
    EXPECT_LE(relative_error(one_by_one.forward(y, residual, true),
                             (at::conv2d(y_ref, w2) + residual).relu()),
              1e-5)
        << size;
    // A residual in the padded layout too (the block's own shortcut).
    EXPECT_LE(
        relative_error(one_by_one.forward(y, y, true), (at::conv2d(y_ref, w2) + y_ref).relu()),
        1e-5)
        << size;
    const Layer three("3x3", LayerKind::Conv, w3, {}, ConvGeometry::same_torch(3, 1), true, isa);
    EXPECT_LE(relative_error(three.forward(y), at::conv2d(y_ref, w3, {}, 1, 1)), 1e-5) << size;
    ConvGeometry stride2;
    stride2.stride_h = stride2.stride_w = 2;
    const Layer shortcut("1x1/2", LayerKind::Conv, w4, {}, stride2, true, isa);
    EXPECT_LE(relative_error(shortcut.forward(y), at::conv2d(y_ref, w4, {}, 2)), 1e-5) << size;
    const Layer dense("dense", LayerKind::Conv, w4, {}, {}, false, isa);
    EXPECT_LE(relative_error(dense.forward(y), at::conv2d(y_ref, w4)), 1e-5) << size;
    EXPECT_TRUE(at::allclose(y.mean({2, 3}), y_ref.mean({2, 3}), 1e-5, 1e-5)) << size;
  }
}

TEST(MaxPool, MatchesLibTorchForBothPaddingRules) {
  auto gen = at::detail::createCPUGenerator(9);
  for (const int64_t h : {1, 2, 5, 8, 13}) {
    for (const int64_t w : {1, 2, 3, 4, 7, 12, 57}) {
      const auto x = at::randn({2, 3, h, w}, gen);
      // PyTorch's rule (padding 1 on every side, positions outside ignored).
      const auto want = at::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
      EXPECT_TRUE(at::equal(max_pool_3x3_s2(x, 1, 1, want.size(2), want.size(3)), want))
          << h << "x" << w;
      // With the ReLU of the conv before it folded in.
      EXPECT_TRUE(
          at::equal(max_pool_3x3_s2(x, 1, 1, want.size(2), want.size(3), true), want.relu()))
          << "relu " << h << "x" << w;
      // TensorFlow's SAME: asymmetric, -inf padding.
      const auto [top, bottom] = same_tf_split(h, 3, 2);
      const auto [left, right] = same_tf_split(w, 3, 2);
      const auto same =
          at::max_pool2d(at::constant_pad_nd(x, {left, right, top, bottom},
                                             -std::numeric_limits<double>::infinity()),
                         {3, 3}, {2, 2});
      EXPECT_TRUE(at::equal(max_pool_3x3_s2(x, top, left, (h + 1) / 2, (w + 1) / 2), same))
          << "same " << h << "x" << w;
    }
  }
  // A window entirely outside the input is refused.
  EXPECT_THROW(max_pool_3x3_s2(at::zeros({1, 1, 4, 4}), 1, 1, 4, 2), c10::Error);
}

}  // namespace
}  // namespace lth::infer
