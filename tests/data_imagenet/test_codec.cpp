// Decoding: every kind of file ImageNet throws at a reader, and DCT-scale choice.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/imagenet/codec.h"

using namespace lth::data::imagenet;

namespace {

// A smooth RGB test picture (JPEG reproduces it within a few levels).
std::vector<uint8_t> gradient(int w, int h) {
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgb[(size_t(y) * w + x) * 3];
      p[0] = uint8_t(255 * x / (w - 1));
      p[1] = uint8_t(255 * y / (h - 1));
      p[2] = uint8_t(128 + 60 * std::sin(x * 0.05));
    }
  return rgb;
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::abs(int(a[i]) - int(b[i]));
  return s / double(a.size());
}

RgbImage decode_all(const std::vector<uint8_t>& bytes, Scale scale = {}) {
  RgbImage img;
  decode(bytes.data(), bytes.size(), probe(bytes.data(), bytes.size()), scale, img);
  return img;
}

}  // namespace

TEST(Codec, JpegRoundTripIsClose) {
  const auto rgb = gradient(64, 48);
  const auto jpeg = encode_jpeg(rgb.data(), 64, 48, JpegPixels::Rgb, 95);
  const ImageInfo info = probe(jpeg.data(), jpeg.size());
  EXPECT_EQ(info.format, ImageFormat::Jpeg);
  EXPECT_EQ(info.width, 64);
  EXPECT_EQ(info.height, 48);
  EXPECT_FALSE(info.cmyk);
  const auto img = decode_all(jpeg);
  ASSERT_EQ(img.width, 64);
  ASSERT_EQ(img.height, 48);
  EXPECT_LT(mean_abs_diff(img.pixels, rgb), 3.0);
}

TEST(Codec, GrayscaleJpegBecomesRgbWithEqualChannels) {
  std::vector<uint8_t> gray(40 * 30);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = uint8_t(i % 251);
  const auto jpeg = encode_jpeg(gray.data(), 40, 30, JpegPixels::Gray, 90);
  EXPECT_TRUE(probe(jpeg.data(), jpeg.size()).gray);
  const auto img = decode_all(jpeg);
  ASSERT_EQ(img.pixels.size(), size_t(40 * 30 * 3));
  for (size_t p = 0; p < size_t(40 * 30); ++p) {
    EXPECT_EQ(img.pixels[3 * p], img.pixels[3 * p + 1]);
    EXPECT_EQ(img.pixels[3 * p], img.pixels[3 * p + 2]);
  }
}

TEST(Codec, CmykJpegIsConvertedToRgb) {
  const auto rgb = gradient(48, 32);
  std::vector<uint8_t> cmyk(48 * 32 * 4);
  for (size_t p = 0; p < size_t(48 * 32); ++p) {
    // Adobe-inverted inks with half black: expected RGB = value * 128 / 255.
    for (int k = 0; k < 3; ++k) cmyk[4 * p + k] = rgb[3 * p + k];
    cmyk[4 * p + 3] = 128;
  }
  const auto jpeg = encode_jpeg(cmyk.data(), 48, 32, JpegPixels::InvertedCmyk, 95);
  EXPECT_TRUE(probe(jpeg.data(), jpeg.size()).cmyk);
  const auto img = decode_all(jpeg);
  std::vector<uint8_t> expected(rgb.size());
  for (size_t i = 0; i < rgb.size(); ++i) expected[i] = uint8_t((rgb[i] * 128 + 127) / 255);
  EXPECT_LT(mean_abs_diff(img.pixels, expected), 3.0);
}

TEST(Codec, PngIsDecodedExactly) {
  const auto rgb = gradient(33, 17);
  const auto png = encode_png(rgb.data(), 33, 17);
  const ImageInfo info = probe(png.data(), png.size());
  EXPECT_EQ(info.format, ImageFormat::Png);
  EXPECT_EQ(info.width, 33);
  EXPECT_EQ(info.height, 17);
  EXPECT_EQ(decode_all(png).pixels, rgb);
}

TEST(Codec, UnreadableInputsThrowDecodeError) {
  const auto rgb = gradient(64, 64);
  auto jpeg = encode_jpeg(rgb.data(), 64, 64, JpegPixels::Rgb, 90);
  jpeg.resize(jpeg.size() * 6 / 10);
  EXPECT_THROW(decode_all(jpeg), DecodeError);  // truncated: "premature end"
  const std::vector<uint8_t> empty;
  EXPECT_THROW(probe(empty.data(), 0), DecodeError);
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'};
  EXPECT_THROW(probe(text.data(), text.size()), DecodeError);
  std::vector<uint8_t> header_only(jpeg.begin(), jpeg.begin() + 4);
  EXPECT_THROW(probe(header_only.data(), header_only.size()), DecodeError);
}

TEST(Codec, ChoosesLargestScaleKeepingTheCrop) {
  EXPECT_EQ(choose_scale(448, 448, 224).denom, 2);
  EXPECT_EQ(choose_scale(447, 600, 224).denom, 1);
  EXPECT_EQ(choose_scale(900, 900, 224).denom, 4);
  EXPECT_EQ(choose_scale(1800, 1792, 224).denom, 8);
  EXPECT_EQ(choose_scale(100, 100, 224).denom, 1);
}

TEST(Codec, ScaledDecodeRoundsSizesUp) {
  const auto rgb = gradient(101, 67);
  const auto jpeg = encode_jpeg(rgb.data(), 101, 67, JpegPixels::Rgb, 90);
  const auto half = decode_all(jpeg, Scale{1, 2});
  EXPECT_EQ(half.width, 51);
  EXPECT_EQ(half.height, 34);
  const auto eighth = decode_all(jpeg, Scale{1, 8});
  EXPECT_EQ(eighth.width, 13);
  EXPECT_EQ(eighth.height, 9);
}

TEST(Codec, RegionDecodeGivesTheFullDecodesPixels) {
  // Noisy 4:2:0 picture: fancy upsampling and iMCU edges are where a cropped decode could differ.
  const int w = 203, h = 157;
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t((i * 2654435761u) >> 13);
  for (const JpegPixels kind : {JpegPixels::Rgb, JpegPixels::InvertedCmyk}) {
    std::vector<uint8_t> src = rgb;
    if (kind == JpegPixels::InvertedCmyk) {
      src.assign(size_t(w) * h * 4, 255);
      for (size_t p = 0; p < size_t(w) * h; ++p)
        for (int k = 0; k < 3; ++k) src[4 * p + k] = rgb[3 * p + k];
    }
    const auto jpeg = encode_jpeg(src.data(), w, h, kind, 90);
    const ImageInfo info = probe(jpeg.data(), jpeg.size());
    for (const Scale scale : {Scale{1, 1}, Scale{1, 2}}) {
      const auto full = decode_all(jpeg, scale);
      for (const PixelBox box :
           {PixelBox{0, 0, 10, 10}, PixelBox{37, 53, 41, 29}, PixelBox{5, 17, 60, 70},
            PixelBox{full.height - 9, full.width - 13, 9, 13}}) {
        RgbImage part;
        int top = -1, left = -1;
        decode_region(jpeg.data(), jpeg.size(), info, scale, box, part, &top, &left);
        ASSERT_LE(top, box.top);
        ASSERT_LE(left, box.left);
        ASSERT_GE(top + part.height, box.top + box.height);
        ASSERT_GE(left + part.width, box.left + box.width);
        int differing = 0;
        for (int y = box.top; y < box.top + box.height; ++y)
          for (int x = box.left; x < box.left + box.width; ++x)
            for (int c = 0; c < 3; ++c)
              differing += part.pixels[(size_t(y - top) * part.width + (x - left)) * 3 + c] !=
                           full.pixels[(size_t(y) * full.width + x) * 3 + c];
        EXPECT_EQ(differing, 0) << "box " << box.top << "," << box.left << " scale 1/"
                                << scale.denom;
      }
    }
  }
}

TEST(Codec, RegionDecodeStillRejectsTruncatedFiles) {
  const auto rgb = gradient(64, 64);
  auto jpeg = encode_jpeg(rgb.data(), 64, 64, JpegPixels::Rgb, 90);
  jpeg.resize(jpeg.size() * 6 / 10);
  const ImageInfo info = probe(jpeg.data(), jpeg.size());
  RgbImage part;
  int top = 0, left = 0;
  // The top rows are intact, but without its end marker the file is decoded whole: rejected.
  EXPECT_THROW(decode_region(jpeg.data(), jpeg.size(), info, Scale{}, PixelBox{0, 0, 8, 8}, part,
                             &top, &left),
               DecodeError);
}

// Decoding uses the fast integer inverse DCT, as TensorFlow's decode_jpeg does by default:
// the pixels equal libjpeg-turbo's own `djpeg -dct fast` (an independent decoder binary),
// and differ from its accurate `-dct int` output.
static std::vector<uint8_t> djpeg_pixels(const std::string& jpeg_path, const char* dct) {
  const std::string command = std::string("djpeg -dct ") + dct + " -ppm " + jpeg_path;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::vector<uint8_t> bytes;
  int c;
  while ((c = std::fgetc(pipe)) != EOF) bytes.push_back(static_cast<uint8_t>(c));
  ::pclose(pipe);
  // "P6\n<w> <h>\n255\n" then the pixels: skip three header lines.
  size_t pos = 0;
  for (int lines = 0; lines < 3 && pos < bytes.size(); ++pos)
    if (bytes[pos] == '\n') ++lines;
  return std::vector<uint8_t>(bytes.begin() + static_cast<std::ptrdiff_t>(pos), bytes.end());
}

TEST(Codec, DecodesWithTheFastIntegerIdctAsTensorFlow) {
  if (std::system("command -v djpeg >/dev/null 2>&1") != 0) GTEST_SKIP() << "djpeg (libjpeg-turbo-progs) not installed";
  std::vector<uint8_t> rgb(size_t(96) * 64 * 3);
  uint32_t state = 12345;  // noise makes the two IDCTs round differently somewhere
  for (auto& v : rgb) v = static_cast<uint8_t>((state = state * 1103515245u + 12345u) >> 24);
  const auto jpeg = encode_jpeg(rgb.data(), 96, 64, JpegPixels::Rgb, 90);
  const std::string path = ::testing::TempDir() + "lth_fast_idct.jpg";
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(jpeg.data(), 1, jpeg.size(), f);
  std::fclose(f);
  const auto ours = decode_all(jpeg).pixels;
  EXPECT_EQ(ours, djpeg_pixels(path, "fast"));
  EXPECT_NE(ours, djpeg_pixels(path, "int"));
  // The crop-only path decodes the same pixels as this full decode (RegionDecode test).
  std::remove(path.c_str());
}
