#include "infer/pool.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "infer/conv_layer.h"

namespace lth::infer {

at::Tensor max_pool_3x3_s2(const at::Tensor& x, int64_t pad_top, int64_t pad_left, int64_t out_h,
                           int64_t out_w, bool relu) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && has_plane_layout(x),
              "max_pool_3x3_s2: float32 NCHW input with contiguous planes");
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  TORCH_CHECK(out_h >= 1 && out_w >= 1 && pad_top >= 0 && pad_left >= 0 && pad_top <= 2 &&
                  pad_left <= 2 && 2 * (out_h - 1) - pad_top < h && 2 * (out_w - 1) - pad_left < w,
              "max_pool_3x3_s2: a window outside the input");
  auto out = at::empty({n, c, out_h, out_w}, x.options());
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  // Two passes per plane: the max of each output column's three input columns for every input
  // row (a contiguous loop the compiler vectorises), then the max of three of those rows.
  // The output columns whose three input columns all lie inside the row: [lo, hi).
  const int64_t lo = std::min(out_w, (pad_left + 1) / 2);
  const int64_t last_start = w - 3 + pad_left;  // 2 * ox may be at most this
  const int64_t hi = std::clamp<int64_t>(last_start >= 0 ? last_start / 2 + 1 : 0, lo, out_w);
  // Every window holds an input position, so starting the max at 0 instead of -inf is the
  // ReLU of the max.
  const float start = relu ? 0.f : -std::numeric_limits<float>::infinity();
  parallel_for(0, n * c, 1, [&](int64_t p0, int64_t p1) {
    std::vector<float> cols(static_cast<size_t>(h * out_w));
    for (int64_t p = p0; p < p1; ++p) {
      const float* plane = src + p * x.stride(1);  // planes may be padded (conv_layer.h)
      for (int64_t y = 0; y < h; ++y) {
        const float* row = plane + y * w;
        float* cm = cols.data() + y * out_w;
        const auto border = [&](int64_t ox) {
          float m = start;
          for (int64_t dx = 0; dx < 3; ++dx) {
            const int64_t xx = 2 * ox + dx - pad_left;
            if (xx >= 0 && xx < w) m = std::max(m, row[xx]);
          }
          cm[ox] = m;
        };
        for (int64_t ox = 0; ox < lo; ++ox) border(ox);
        for (int64_t ox = lo; ox < hi; ++ox) {
          const float* window = row + 2 * ox - pad_left;  // inside the row for these ox
          cm[ox] = std::max(std::max(start, window[0]), std::max(window[1], window[2]));
        }
        for (int64_t ox = hi; ox < out_w; ++ox) border(ox);
      }
      float* o = dst + p * out_h * out_w;
      for (int64_t oy = 0; oy < out_h; ++oy) {
        const int64_t y0 = std::max<int64_t>(0, 2 * oy - pad_top);
        const int64_t y1 = std::min<int64_t>(h, 2 * oy - pad_top + 3);
        float* orow = o + oy * out_w;
        std::copy(cols.data() + y0 * out_w, cols.data() + (y0 + 1) * out_w, orow);
        for (int64_t y = y0 + 1; y < y1; ++y) {
          const float* cm = cols.data() + y * out_w;
          for (int64_t ox = 0; ox < out_w; ++ox) orow[ox] = std::max(orow[ox], cm[ox]);
        }
      }
    }
  });
  return out;
}

}  // namespace lth::infer
