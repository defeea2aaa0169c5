#include "data/imagenet/transform.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace lth::data::imagenet {
namespace {

// Generates a crop of the given aspect ratio as TensorFlow's GenerateRandomCrop does:
// height uniform between the heights that give the minimum and maximum area, width =
// round(height * aspect), corner uniform in [0, H - h) x [0, W - w). Integer and float
// steps follow TF (lrintf, float areas) so boundary cases round the same way.
std::optional<CropBox> generate_crop(int width, int height, float min_rel, float max_rel,
                                     float aspect, Rng& rng) {
  const float min_area = min_rel * width * height;
  const float max_area = max_rel * width * height;
  int h = static_cast<int>(lrintf(std::sqrt(min_area / aspect)));
  int max_h = static_cast<int>(lrintf(std::sqrt(max_area / aspect)));
  if (lrintf(max_h * aspect) > width) {
    // The largest max_h with round(max_h * aspect) <= width.
    const float eps = 0.0000001f;
    max_h = static_cast<int>((width + 0.5f - eps) / aspect);
    if (lrintf(max_h * aspect) > width) max_h -= 1;
  }
  max_h = std::min(max_h, height);
  h = std::min(h, max_h);
  if (h < max_h) h += static_cast<int>(rng.below(static_cast<uint64_t>(max_h - h + 1)));
  int w = static_cast<int>(lrintf(h * aspect));
  float area = static_cast<float>(w * h);
  if (area < min_area) {  // rounding left it just too small: one row more
    h += 1;
    w = static_cast<int>(lrintf(h * aspect));
    area = static_cast<float>(w * h);
  }
  if (area > max_area) {  // or just too large: one row less
    h -= 1;
    w = static_cast<int>(lrintf(h * aspect));
    area = static_cast<float>(w * h);
  }
  if (area < min_area || area > max_area || w > width || h > height || w <= 0 || h <= 0) {
    return std::nullopt;
  }
  // TF draws Uniform(H - h), i.e. [0, H - h - 1]: the crop never touches the far edges
  // unless it spans the whole side. Kept, to sample the same distribution.
  const int y = h < height ? static_cast<int>(rng.below(static_cast<uint64_t>(height - h))) : 0;
  const int x = w < width ? static_cast<int>(rng.below(static_cast<uint64_t>(width - w))) : 0;
  return CropBox{y, x, h, w};
}

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
  const int hi = std::clamp(static_cast<int>(std::ceil(start + extent - 1e-9)) - 1, lo, source_len - 1);
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

uint8_t to_u8(float v) {
  return static_cast<uint8_t>(std::clamp(static_cast<int>(lrintf(v)), 0, 255));
}

}  // namespace

std::optional<CropBox> sample_distorted_crop(int height, int width, Rng& rng,
                                             const TrainCropParams& p) {
  const double image_area = static_cast<double>(width) * height;
  for (int attempt = 0; attempt < p.max_attempts; ++attempt) {
    const float aspect =
        static_cast<float>(rng.uniform()) * (p.max_aspect - p.min_aspect) + p.min_aspect;
    const auto crop = generate_crop(width, height, p.min_area, p.max_area, aspect, rng);
    if (!crop) continue;
    // Overlap with the one object box, the whole image: covered fraction = crop area / image.
    const float area = static_cast<float>(crop->width * crop->height);
    if (area >= 1.0f && area / static_cast<float>(image_area) >= p.min_object_covered) return crop;
  }
  return std::nullopt;
}

CropBox center_crop(int height, int width, int size) {
  // tf.cast((size / (size + 32)) * tf.cast(min(h, w), float32), int32): float32, truncated.
  const float ratio = static_cast<float>(static_cast<double>(size) / (size + 32));
  const int side = static_cast<int>(ratio * static_cast<float>(std::min(height, width)));
  const int c = std::max(side, 1);
  return CropBox{(height - c + 1) / 2, (width - c + 1) / 2, c, c};
}

CropBox train_crop(int height, int width, int size, Rng& rng) {
  const auto crop = sample_distorted_crop(height, width, rng);
  if (!crop || (crop->height == height && crop->width == width)) return center_crop(height, width, size);
  return *crop;
}

void resize_bicubic(const uint8_t* src, int src_h, int src_w, const Region& region, int out_h,
                    int out_w, uint8_t* out) {
  const auto xs = axis_taps(region.left, region.width, out_w, src_w);
  const auto ys = axis_taps(region.top, region.height, out_h, src_h);
  int row_lo = src_h, row_hi = -1;
  for (const auto& t : ys) {
    row_lo = std::min(row_lo, t.index[0]);
    row_hi = std::max(row_hi, t.index[3]);
  }
  // Horizontal pass over the source rows the vertical taps use, into floats.
  thread_local std::vector<float> rows;
  const size_t row_len = static_cast<size_t>(out_w) * 3;
  rows.resize(static_cast<size_t>(row_hi - row_lo + 1) * row_len);
  for (int r = row_lo; r <= row_hi; ++r) {
    const uint8_t* s = src + static_cast<size_t>(r) * src_w * 3;
    float* d = rows.data() + static_cast<size_t>(r - row_lo) * row_len;
    for (int x = 0; x < out_w; ++x, d += 3) {
      const Taps& t = xs[static_cast<size_t>(x)];
      const uint8_t* p0 = s + t.index[0] * 3;
      const uint8_t* p1 = s + t.index[1] * 3;
      const uint8_t* p2 = s + t.index[2] * 3;
      const uint8_t* p3 = s + t.index[3] * 3;
      for (int c = 0; c < 3; ++c) {
        d[c] = t.weight[0] * p0[c] + t.weight[1] * p1[c] + t.weight[2] * p2[c] + t.weight[3] * p3[c];
      }
    }
  }
  // Vertical pass, rounded to uint8.
  for (int y = 0; y < out_h; ++y) {
    const Taps& t = ys[static_cast<size_t>(y)];
    const float* r0 = rows.data() + static_cast<size_t>(t.index[0] - row_lo) * row_len;
    const float* r1 = rows.data() + static_cast<size_t>(t.index[1] - row_lo) * row_len;
    const float* r2 = rows.data() + static_cast<size_t>(t.index[2] - row_lo) * row_len;
    const float* r3 = rows.data() + static_cast<size_t>(t.index[3] - row_lo) * row_len;
    uint8_t* o = out + static_cast<size_t>(y) * row_len;
    for (size_t i = 0; i < row_len; ++i) {
      o[i] = to_u8(t.weight[0] * r0[i] + t.weight[1] * r1[i] + t.weight[2] * r2[i] + t.weight[3] * r3[i]);
    }
  }
}

void flip_horizontal(uint8_t* rgb, int height, int width) {
  for (int y = 0; y < height; ++y) {
    uint8_t* row = rgb + static_cast<size_t>(y) * width * 3;
    for (int a = 0, b = width - 1; a < b; ++a, --b) {
      for (int c = 0; c < 3; ++c) std::swap(row[a * 3 + c], row[b * 3 + c]);
    }
  }
}

}  // namespace lth::data::imagenet
