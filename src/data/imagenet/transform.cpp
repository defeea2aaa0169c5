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
  if (!crop || (crop->height == height && crop->width == width))
    return center_crop(height, width, size);
  return *crop;
}

void resize_bicubic(const uint8_t* src, int src_h, int src_w, const Region& region, int out_h,
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

void flip_horizontal(uint8_t* rgb, int height, int width) {
  for (int y = 0; y < height; ++y) {
    uint8_t* row = rgb + static_cast<size_t>(y) * width * 3;
    for (int a = 0, b = width - 1; a < b; ++a, --b) {
      for (int c = 0; c < 3; ++c) std::swap(row[a * 3 + c], row[b * 3 + c]);
    }
  }
}

}  // namespace lth::data::imagenet
