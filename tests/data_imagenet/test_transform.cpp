// The reference's crops and resize: bounds over many draws, exact eval geometry.
#include <gtest/gtest.h>

#include <cmath>
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
