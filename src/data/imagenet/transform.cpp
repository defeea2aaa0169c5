#include "data/imagenet/transform.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
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
  int index[4];  // source pixels, clamped into the region (a clamped tap has weight 0)
  float weight[4];
  int first;     // index[0] before clamping, relative to the region's first pixel
};

// The taps of each output position along one axis, and the source pixels [lo, hi] that the
// region touches, to which the taps are confined.
struct AxisTaps {
  int lo = 0;
  int hi = 0;
  std::vector<Taps> taps;
  int limit() const { return hi - lo + 1; }
};

// `start` and `extent` place the region in the source (of source_len pixels).
AxisTaps axis_taps(double start, double extent, int out, int source_len) {
  const auto& table = cubic_table();
  AxisTaps axis;
  const int lo = std::clamp(static_cast<int>(std::floor(start + 1e-9)), 0, source_len - 1);
  const int hi =
      std::clamp(static_cast<int>(std::ceil(start + extent - 1e-9)) - 1, lo, source_len - 1);
  axis.lo = lo;
  axis.hi = hi;
  // TF works relative to the cut-out region, in float; so do we (exact when start is whole).
  const float scale = static_cast<float>(extent) / static_cast<float>(out);
  const float shift = static_cast<float>(start - lo);
  const int limit = hi - lo + 1;
  axis.taps.resize(static_cast<size_t>(out));
  for (int o = 0; o < out; ++o) {
    const float in_f = (static_cast<float>(o) + 0.5f) * scale - 0.5f + shift;
    const int in = static_cast<int>(std::floor(in_f));
    const int offset = static_cast<int>(lrintf((in_f - static_cast<float>(in)) * kTableSize));
    const float w[4] = {table[offset * 2 + 1], table[offset * 2], table[(kTableSize - offset) * 2],
                        table[(kTableSize - offset) * 2 + 1]};
    Taps& t = axis.taps[static_cast<size_t>(o)];
    t.first = in - 1;
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
  return axis;
}

// Round to nearest (halves up) and saturate. Clamping first lets the conversion be a plain
// truncation, which compilers vectorise (lrintf would be a libm call per value).
inline uint8_t to_u8(float v) {
  return static_cast<uint8_t>(static_cast<int>(std::min(std::max(v, 0.0f), 255.0f) + 0.5f));
}

// The three inner loops of resize_bicubic. On x86-64 each is compiled for AVX-512, AVX2
// and the baseline (SSE2), picked at load time, so the binary runs on any x86-64 and uses
// the widest vectors the machine has. The arithmetic is the same in every clone, operation
// by operation (this file is built with -ffp-contract=off, so no clone fuses a multiply
// and an add): the pixels do not depend on the machine. LTH_NO_VECTOR_CLONES builds one
// version only, to check one instruction set's bytes against another's.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(LTH_NO_VECTOR_CLONES)
#define LTH_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LTH_VECTOR_CLONES
#endif

// line[i] = sum_k w[k] * row_k[i], summed in the order k = 0, 1, 2, 3.
LTH_VECTOR_CLONES
void vertical_pass(const uint8_t* __restrict r0, const uint8_t* __restrict r1,
                   const uint8_t* __restrict r2, const uint8_t* __restrict r3, const float* w,
                   size_t n, float* __restrict line) {
  const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
  for (size_t i = 0; i < n; ++i) line[i] = w0 * r0[i] + w1 * r1[i] + w2 * r2[i] + w3 * r3[i];
}

struct HorizontalTap {
  int offset;  // first float of the first of 4 consecutive RGB pixels in the padded line
  float weight[4];
};

// One output row: each pixel is 4 weights times 4 consecutive pixels, the 3 channels at once
// in a 4-lane vector (GCC's portable vector extension: SSE on x86-64, NEON on ARM). The 4th
// lane reads the next pixel's first channel and is overwritten by the next store (the row
// buffer has one spare float for the last). Summed k = 0..3, as the scalar form.
typedef float Float4 __attribute__((vector_size(16)));
LTH_VECTOR_CLONES
void horizontal_pass(const float* __restrict line, const HorizontalTap* __restrict taps, int n,
                     float* __restrict row) {
  for (int d = 0; d < n; ++d) {
    const HorizontalTap& t = taps[d];
    const float* p = line + t.offset;
    Float4 p0, p1, p2, p3;
    std::memcpy(&p0, p, sizeof p0);
    std::memcpy(&p1, p + 3, sizeof p1);
    std::memcpy(&p2, p + 6, sizeof p2);
    std::memcpy(&p3, p + 9, sizeof p3);
    const Float4 s = t.weight[0] * p0 + t.weight[1] * p1 + t.weight[2] * p2 + t.weight[3] * p3;
    std::memcpy(row + static_cast<size_t>(d) * 3, &s, sizeof s);
  }
}

LTH_VECTOR_CLONES
void round_to_u8(const float* __restrict in, size_t n, uint8_t* __restrict out) {
  for (size_t i = 0; i < n; ++i) out[i] = to_u8(in[i]);
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
  resize_bicubic(src, src_h, src_w, region, out_h, out_w, /*mirror=*/false, out);
}

void resize_bicubic(const uint8_t* src, int src_h, int src_w, const Region& region, int out_h,
                    int out_w, bool mirror, uint8_t* out) {
  const AxisTaps xs = axis_taps(region.left, region.width, out_w, src_w);
  const AxisTaps ys = axis_taps(region.top, region.height, out_h, src_h);
  // The line buffer holds one vertically combined row of the region's columns [xs.lo, xs.hi],
  // zero-padded on both sides so that every horizontal tap, clamped or not, is a plain load
  // of four consecutive pixels: a tap outside the region has weight 0, and 0 times the
  // padding adds the same (signed) zero as 0 times the clamped pixel did.
  int pad_lo = 0, pad_hi = 0;
  for (const Taps& t : xs.taps) {
    pad_lo = std::max(pad_lo, -t.first);
    pad_hi = std::max(pad_hi, t.first + 4 - xs.limit());
  }
  const int line_pixels = pad_lo + xs.limit() + pad_hi;
  thread_local std::vector<float> line_buffer;
  thread_local std::vector<float> row_buffer;
  thread_local std::vector<HorizontalTap> h_buffer;
  line_buffer.assign(static_cast<size_t>(line_pixels) * 3 + 1, 0.0f);  // +1: 4-lane overread
  row_buffer.resize(static_cast<size_t>(out_w) * 3 + 1);               // +1: 4-lane overwrite
  h_buffer.resize(static_cast<size_t>(out_w));
  // Output column d takes output position d, or out_w - 1 - d when mirrored: the flip is a
  // permutation of the columns, so it costs nothing here and gives the same bytes as
  // resizing then flipping.
  for (int d = 0; d < out_w; ++d) {
    const Taps& t = xs.taps[static_cast<size_t>(mirror ? out_w - 1 - d : d)];
    HorizontalTap& h = h_buffer[static_cast<size_t>(d)];
    h.offset = (pad_lo + t.first) * 3;
    for (int k = 0; k < 4; ++k) h.weight[k] = t.weight[k];
  }
  float* line = line_buffer.data() + static_cast<size_t>(pad_lo) * 3;
  const size_t span = static_cast<size_t>(xs.limit()) * 3;
  const size_t src_stride = static_cast<size_t>(src_w) * 3;
  const uint8_t* src_cols = src + static_cast<size_t>(xs.lo) * 3;
  for (int y = 0; y < out_h; ++y) {
    // First the vertical combination of 4 source rows, then the horizontal taps. TF sums the
    // other way round; the two differ only by float rounding (never by more than one level
    // after rounding to uint8), and this order lets both passes run on contiguous data.
    const Taps& ty = ys.taps[static_cast<size_t>(y)];
    vertical_pass(src_cols + ty.index[0] * src_stride, src_cols + ty.index[1] * src_stride,
                  src_cols + ty.index[2] * src_stride, src_cols + ty.index[3] * src_stride,
                  ty.weight, span, line);
    horizontal_pass(line_buffer.data(), h_buffer.data(), out_w, row_buffer.data());
    round_to_u8(row_buffer.data(), static_cast<size_t>(out_w) * 3,
                out + static_cast<size_t>(y) * out_w * 3);
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
