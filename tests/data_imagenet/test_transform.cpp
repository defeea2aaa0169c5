// The reference's crops and resize: bounds over many draws, exact eval geometry.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "data/imagenet/codec.h"
#include "data/imagenet/pipeline.h"
#include "data/imagenet/transform.h"

using namespace lth::data::imagenet;
using lth::Rng;

TEST(Transform, CenterCropGeometryIsTheReferences) {
  // int(224/256 * min) with offsets ((d + 1) // 2), as giung2's _center_crop.
  EXPECT_EQ(center_crop(375, 500, 224), (CropBox{24, 86, 328, 328}));
  EXPECT_EQ(center_crop(500, 333, 224), (CropBox{105, 21, 291, 291}));
  EXPECT_EQ(center_crop(500, 500, 224), (CropBox{32, 32, 437, 437}));
  EXPECT_EQ(center_crop(281, 500, 224), (CropBox{18, 128, 245, 245}));  // 245.875 truncates
  // size 64: float32(64/96) * 100 = 66.66667 -> 66.
  EXPECT_EQ(center_crop(100, 150, 64), (CropBox{17, 42, 66, 66}));
}

TEST(Transform, TrainCropsStayWithinTheRecipesBounds) {
  const int H = 375, W = 500;
  int fallbacks = 0;
  double area_sum = 0;
  int small = 0, large = 0, tall = 0, wide = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    Rng rng = Rng::keyed(7, "crop-test", uint64_t(i));
    const auto crop = sample_distorted_crop(H, W, rng);
    if (!crop) {
      ++fallbacks;
      continue;
    }
    const double area = double(crop->width) * crop->height / (double(W) * H);
    const double aspect = double(crop->width) / crop->height;
    // Area: 8-100 % requested, at least 10 % through min_object_covered = 0.1.
    ASSERT_GE(area, 0.1);
    ASSERT_LE(area, 1.0);
    // Aspect 3/4..4/3, up to the rounding of width = round(height * aspect).
    ASSERT_GE(aspect, 0.75 - 0.5 / crop->height - 1e-9);
    ASSERT_LE(aspect, 4.0 / 3.0 + 0.5 / crop->height + 1e-9);
    ASSERT_GE(crop->top, 0);
    ASSERT_GE(crop->left, 0);
    ASSERT_LE(crop->top + crop->height, H);
    ASSERT_LE(crop->left + crop->width, W);
    area_sum += area;
    small += area < 0.2;
    large += area > 0.9;
    tall += aspect < 0.8;
    wide += aspect > 1.25;
  }
  // The whole range is used, not just one end of it.
  EXPECT_GT(small, draws / 50);
  EXPECT_GT(large, draws / 200);
  EXPECT_GT(tall, draws / 50);
  EXPECT_GT(wide, draws / 50);
  const double mean = area_sum / (draws - fallbacks);
  RecordProperty("mean_area", std::to_string(mean));
  RecordProperty("fallbacks", fallbacks);
  std::printf("mean area fraction %.3f, fallbacks %d of %d, area>0.9 %d\n", mean, fallbacks, draws,
              large);
  EXPECT_GT(mean, 0.35);
  EXPECT_LT(mean, 0.75);
  EXPECT_LT(fallbacks, draws / 20);
}

TEST(Transform, TrainCropFallsBackToTheCenterCrop) {
  // A 1-pixel-high strip admits no crop of aspect >= 3/4 with 10 % of the area: every
  // attempt fails and the reference uses its eval crop.
  for (int i = 0; i < 50; ++i) {
    Rng rng = Rng::keyed(1, "strip", uint64_t(i));
    EXPECT_EQ(train_crop(1, 400, 224, rng), center_crop(1, 400, 224));
  }
}

TEST(Transform, CropsAreDeterministicInTheRng) {
  for (int i = 0; i < 100; ++i) {
    Rng a = Rng::keyed(3, "sample", 0, uint64_t(i));
    Rng b = Rng::keyed(3, "sample", 0, uint64_t(i));
    EXPECT_EQ(train_crop(333, 500, 224, a), train_crop(333, 500, 224, b));
  }
}

TEST(Transform, ResizeAtScaleOneIsTheIdentity) {
  std::vector<uint8_t> src(20 * 30 * 3);
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t((i * 37) % 256);
  std::vector<uint8_t> out(8 * 9 * 3);
  resize_bicubic(src.data(), 20, 30, Region{5, 7, 8, 9}, 8, 9, out.data());
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 9; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(out[(y * 9 + x) * 3 + c], src[((y + 5) * 30 + x + 7) * 3 + c]);
}

TEST(Transform, ResizeKeepsLinearRampsAndConstants) {
  // Keys' cubic reproduces linear functions; away from the borders a downscaled ramp is the
  // ramp sampled at the half-pixel-centred positions.
  const int n = 64, out_n = 32;
  std::vector<uint8_t> src(n * n * 3);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      for (int c = 0; c < 3; ++c) src[(y * n + x) * 3 + c] = uint8_t(c == 0 ? 3 * x : 100);
  std::vector<uint8_t> out(out_n * out_n * 3);
  resize_bicubic(src.data(), n, n, Region{0, 0, double(n), double(n)}, out_n, out_n, out.data());
  for (int y = 0; y < out_n; ++y)
    for (int x = 2; x < out_n - 2; ++x) {
      const double in_x = (x + 0.5) * 2 - 0.5;
      EXPECT_NEAR(out[(y * out_n + x) * 3 + 0], 3 * in_x, 1.0);
      EXPECT_EQ(out[(y * out_n + x) * 3 + 1], 100);
    }
}

TEST(Transform, FlipMirrorsRows) {
  std::vector<uint8_t> img = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // one row, three pixels
  flip_horizontal(img.data(), 1, 3);
  EXPECT_EQ(img, (std::vector<uint8_t>{7, 8, 9, 4, 5, 6, 1, 2, 3}));
}

namespace {
std::vector<uint8_t> noisy_jpeg(int w, int h) {
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  Rng rng(5);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        rgb[(size_t(y) * w + x) * 3 + c] = uint8_t((x * (c + 1) + y * 2 + rng.below(20)) % 256);
  return encode_jpeg(rgb.data(), w, h, JpegPixels::Rgb, 90);
}
}  // namespace

TEST(Pipeline, EvalTransformIsDecodeCropResize) {
  const auto jpeg = noisy_jpeg(120, 90);
  TransformSpec spec{32, false, false};
  Rng rng(0);
  std::vector<uint8_t> out(32 * 32 * 3);
  TransformTrace trace;
  decode_and_transform(jpeg.data(), jpeg.size(), spec, rng, out.data(), &trace);
  EXPECT_EQ(trace.crop, center_crop(90, 120, 32));
  EXPECT_EQ(trace.scale.denom, 1);
  EXPECT_FALSE(trace.flipped);
  // Same thing by hand.
  RgbImage full;
  decode(jpeg.data(), jpeg.size(), probe(jpeg.data(), jpeg.size()), Scale{}, full);
  std::vector<uint8_t> expected(32 * 32 * 3);
  const CropBox c = trace.crop;
  resize_bicubic(full.pixels.data(), full.height, full.width,
                 Region{double(c.top), double(c.left), double(c.height), double(c.width)}, 32, 32,
                 expected.data());
  EXPECT_EQ(out, expected);
}

TEST(Pipeline, DctScalingKicksInAtTwiceTheOutputAndStaysClose) {
  const auto jpeg = noisy_jpeg(160, 120);
  std::vector<uint8_t> scaled(16 * 16 * 3), full(16 * 16 * 3);
  TransformTrace trace;
  Rng a(0), b(0);
  decode_and_transform(jpeg.data(), jpeg.size(), TransformSpec{16, false, true}, a, scaled.data(),
                       &trace);
  EXPECT_GE(trace.scale.denom, 2);  // eval crop 40 px >= 2 x 16
  decode_and_transform(jpeg.data(), jpeg.size(), TransformSpec{16, false, false}, b, full.data());
  double diff = 0;
  for (size_t i = 0; i < full.size(); ++i) diff += std::abs(int(full[i]) - int(scaled[i]));
  // Scaled decoding low-passes where the reference aliases: similar, not identical.
  EXPECT_LT(diff / full.size(), 25.0);
}

TEST(Pipeline, TrainTransformUsesOnlyTheRng) {
  const auto jpeg = noisy_jpeg(100, 80);
  std::vector<uint8_t> x(24 * 24 * 3), y(24 * 24 * 3);
  int flips = 0;
  for (int i = 0; i < 40; ++i) {
    Rng a = Rng::keyed(9, "sample", 0, uint64_t(i)), b = Rng::keyed(9, "sample", 0, uint64_t(i));
    TransformTrace ta, tb;
    decode_and_transform(jpeg.data(), jpeg.size(), TransformSpec{24, true, true}, a, x.data(), &ta);
    decode_and_transform(jpeg.data(), jpeg.size(), TransformSpec{24, true, true}, b, y.data(), &tb);
    EXPECT_EQ(x, y);
    EXPECT_EQ(ta.crop, tb.crop);
    flips += ta.flipped;
  }
  EXPECT_GT(flips, 5);
  EXPECT_LT(flips, 35);
}

// ---------------------------------------------------------------------------------------
// The resize as it was before it was vectorised (commit bf8fd21, verbatim but renamed), kept
// as the reference the fast one must equal byte for byte.
namespace old_impl {
// Keys' cubic kernel (a = -0.5) tabulated at 1/1024 steps, as TF's ResizeBicubic does:
// entry 2i is the weight at distance i/1024, entry 2i+1 at distance 1 + i/1024.
constexpr int kTableSize = 1024;
const std::array<float, (kTableSize + 1) * 2>& cubic_table() {
  static const auto table = [] {
    std::array<float, (kTableSize + 1) * 2> t{};
    const double a = -0.5;
    for (int i = 0; i <= kTableSize; ++i) {
      float x = static_cast<float>(i * 1.0 / kTableSize);
      t[i * 2] = static_cast<float>(((a + 2) * x - (a + 3)) * x * x + 1);
      x += 1.0f;
      t[i * 2 + 1] = static_cast<float>(((a * x - 5 * a) * x + 8 * a) * x - 4 * a);
    }
    return t;
  }();
  return table;
}

struct Taps {
  int index[4];
  float weight[4];
};

// Taps of each output position along one axis. `start` and `extent` place the region in
// the source; taps are confined to the source pixels [lo, hi] that the region touches.
std::vector<Taps> axis_taps(double start, double extent, int out, int source_len) {
  const auto& table = cubic_table();
  const int lo = std::clamp(static_cast<int>(std::floor(start + 1e-9)), 0, source_len - 1);
  const int hi =
      std::clamp(static_cast<int>(std::ceil(start + extent - 1e-9)) - 1, lo, source_len - 1);
  // TF works relative to the cut-out region, in float; so do we (exact when start is whole).
  const float scale = static_cast<float>(extent) / static_cast<float>(out);
  const float shift = static_cast<float>(start - lo);
  const int limit = hi - lo + 1;
  std::vector<Taps> taps(static_cast<size_t>(out));
  for (int o = 0; o < out; ++o) {
    const float in_f = (static_cast<float>(o) + 0.5f) * scale - 0.5f + shift;
    const int in = static_cast<int>(std::floor(in_f));
    const int offset = static_cast<int>(lrintf((in_f - static_cast<float>(in)) * kTableSize));
    const float w[4] = {table[offset * 2 + 1], table[offset * 2], table[(kTableSize - offset) * 2],
                        table[(kTableSize - offset) * 2 + 1]};
    Taps& t = taps[static_cast<size_t>(o)];
    float sum = 0;
    for (int k = 0; k < 4; ++k) {
      const int idx = in - 1 + k;
      const bool inside = idx >= 0 && idx < limit;
      t.index[k] = lo + std::clamp(idx, 0, limit - 1);
      t.weight[k] = inside ? w[k] : 0.0f;  // taps beyond the region are dropped ...
      sum += t.weight[k];
    }
    if (std::abs(sum) >= 1000.0f * std::numeric_limits<float>::min()) {
      for (float& wk : t.weight) wk /= sum;  // ... and the others renormalised
    }
  }
  return taps;
}

// Round to nearest (halves up) and saturate. Clamping first lets the conversion be a plain
// truncation, which compilers vectorise (lrintf would be a libm call per value).
inline uint8_t to_u8(float v) {
  return static_cast<uint8_t>(static_cast<int>(std::min(std::max(v, 0.0f), 255.0f) + 0.5f));
}

void old_resize_bicubic(const uint8_t* src, int src_h, int src_w, const Region& region, int out_h,
                    int out_w, uint8_t* out) {
  const auto xs = axis_taps(region.left, region.width, out_w, src_w);
  const auto ys = axis_taps(region.top, region.height, out_h, src_h);
  int col_lo = src_w, col_hi = -1;
  for (const auto& t : xs) {
    col_lo = std::min(col_lo, t.index[0]);
    col_hi = std::max(col_hi, t.index[3]);
  }
  // One output row at a time: first the vertical combination of the 4 source rows over the
  // columns the horizontal taps use (contiguous, so it vectorises), then the horizontal taps.
  // TF sums the other way round; the two differ only by float rounding (never by more than
  // one level after rounding to uint8), and this order is about twice as fast.
  const size_t span = static_cast<size_t>(col_hi - col_lo + 1) * 3;
  thread_local std::vector<float> line;
  line.resize(span);
  const size_t src_stride = static_cast<size_t>(src_w) * 3;
  for (int y = 0; y < out_h; ++y) {
    const Taps& ty = ys[static_cast<size_t>(y)];
    const uint8_t* r0 = src + ty.index[0] * src_stride + col_lo * 3;
    const uint8_t* r1 = src + ty.index[1] * src_stride + col_lo * 3;
    const uint8_t* r2 = src + ty.index[2] * src_stride + col_lo * 3;
    const uint8_t* r3 = src + ty.index[3] * src_stride + col_lo * 3;
    const float w0 = ty.weight[0], w1 = ty.weight[1], w2 = ty.weight[2], w3 = ty.weight[3];
    float* l = line.data();
    for (size_t i = 0; i < span; ++i) l[i] = w0 * r0[i] + w1 * r1[i] + w2 * r2[i] + w3 * r3[i];
    uint8_t* o = out + static_cast<size_t>(y) * out_w * 3;
    for (int x = 0; x < out_w; ++x, o += 3) {
      const Taps& t = xs[static_cast<size_t>(x)];
      const float* p0 = l + (t.index[0] - col_lo) * 3;
      const float* p1 = l + (t.index[1] - col_lo) * 3;
      const float* p2 = l + (t.index[2] - col_lo) * 3;
      const float* p3 = l + (t.index[3] - col_lo) * 3;
      for (int c = 0; c < 3; ++c) {
        o[c] = to_u8(t.weight[0] * p0[c] + t.weight[1] * p1[c] + t.weight[2] * p2[c] +
                     t.weight[3] * p3[c]);
      }
    }
  }
}

}  // namespace old_impl

namespace {
// A picture of noise with smooth parts, so that bicubic overshoot (values < 0 and > 255,
// clamped) and exact zeros both occur.
std::vector<uint8_t> test_picture(int h, int w, uint64_t seed) {
  std::vector<uint8_t> px(size_t(h) * w * 3);
  Rng rng(seed);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const bool edge = ((x / 7) + (y / 5)) % 2 == 0;
        px[(size_t(y) * w + x) * 3 + c] =
            uint8_t(rng.below(4) == 0 ? rng.below(256) : edge ? 255 - c : c * 3);
      }
  return px;
}
}  // namespace

TEST(Transform, FastResizeEqualsTheOldOneByteForByte) {
  // Down- and upscaling, whole and fractional regions (DCT-scaled crops), regions touching
  // every border, tiny ones, and each mirrored: the same bytes as the old resize (then
  // flip_horizontal), on whichever vector clone this machine runs.
  int cases = 0;
  for (int i = 0; i < 300; ++i) {
    Rng rng = Rng::keyed(11, "resize-case", uint64_t(i));
    const int h = 1 + int(rng.below(i % 3 == 0 ? 12 : 400));
    const int w = 1 + int(rng.below(i % 3 == 0 ? 12 : 500));
    const auto src = test_picture(h, w, uint64_t(i));
    const double top = rng.uniform(0, h - 0.5), left = rng.uniform(0, w - 0.5);
    const bool whole = rng.coin(0.5);
    Region r{whole ? std::floor(top) : top, whole ? std::floor(left) : left, 0, 0};
    r.height = whole ? double(1 + rng.below(uint64_t(h - int(r.top)))) : rng.uniform(0.3, h - r.top);
    r.width = whole ? double(1 + rng.below(uint64_t(w - int(r.left)))) : rng.uniform(0.3, w - r.left);
    const int out_h = 1 + int(rng.below(i % 5 == 0 ? 7 : 260));
    const int out_w = 1 + int(rng.below(i % 5 == 0 ? 7 : 260));
    std::vector<uint8_t> expected(size_t(out_h) * out_w * 3), got(expected.size());
    old_impl::old_resize_bicubic(src.data(), h, w, r, out_h, out_w, expected.data());
    resize_bicubic(src.data(), h, w, r, out_h, out_w, got.data());
    ASSERT_EQ(got, expected) << "case " << i << ": " << h << "x" << w << " region " << r.top
                             << "," << r.left << " " << r.height << "x" << r.width << " -> "
                             << out_h << "x" << out_w;
    flip_horizontal(expected.data(), out_h, out_w);
    resize_bicubic(src.data(), h, w, r, out_h, out_w, /*mirror=*/true, got.data());
    ASSERT_EQ(got, expected) << "mirrored case " << i;
    ++cases;
  }
  EXPECT_EQ(cases, 300);
}

TEST(Transform, FastResizeEqualsTheOldOneOnTrainCrops) {
  // The pipeline's own use: 500x375 pictures, the reference's random crops, 224 out.
  const int h = 375, w = 500;
  const auto src = test_picture(h, w, 99);
  std::vector<uint8_t> expected(224 * 224 * 3), got(expected.size());
  for (int i = 0; i < 40; ++i) {
    Rng rng = Rng::keyed(5, "sample", 0, uint64_t(i));
    const CropBox c = train_crop(h, w, 224, rng);
    const Region r{double(c.top), double(c.left), double(c.height), double(c.width)};
    const bool mirror = i % 2 == 1;
    old_impl::old_resize_bicubic(src.data(), h, w, r, 224, 224, expected.data());
    if (mirror) flip_horizontal(expected.data(), 224, 224);
    resize_bicubic(src.data(), h, w, r, 224, 224, mirror, got.data());
    ASSERT_EQ(got, expected) << "crop " << i;
  }
}
