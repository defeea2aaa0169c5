#include "infer/conv_layer.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>

#include "common/parallel.h"

namespace lth::infer {
namespace {

// Work split: output channels in blocks of kRowBlock, grid positions in tiles of kPosTile
// (the AVX-512 kernel's widest tile, 16 vectors: one pass over a row's nonzeros covers a
// whole 14x14 map; measured 1.1-1.2x faster on those layers than tiles of 128); within an
// item the input channels go in blocks whose input tile fits in kL1Bytes, and every row of
// the block reads that tile before the next (partial sums stay in the output, kRowBlock x
// kPosTile floats = 64 KiB, in L2). Without the channel blocks each row streamed the whole
// input tile from L2 (measured: LIBXSMM's spmdm, which blocks this way, was 1.6x faster on
// a 56x56 1x1 conv; docs/PERFORMANCE.md).
constexpr int64_t kRowBlock = 64;
constexpr int64_t kPosTile = 256;
constexpr int64_t kL1Bytes = 24 * 1024;
constexpr double kMinBlockNonzeros = 8;
// Channel planes of a sparse conv's output are padded to a multiple of this many floats (one
// 64-byte cache line; conv_layer.h, "Layout").
constexpr int64_t kPlaneAlign = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// dst[j] = relu?(src[j] + residual[j]) for j < n; one loop per case, so that each is a
// plain loop the compiler vectorises.
void store_row(const float* src, const float* residual, bool relu, int64_t n, float* dst) {
  if (residual && relu) {
    for (int64_t j = 0; j < n; ++j) dst[j] = std::max(src[j] + residual[j], 0.f);
  } else if (residual) {
    for (int64_t j = 0; j < n; ++j) dst[j] = src[j] + residual[j];
  } else if (relu) {
    for (int64_t j = 0; j < n; ++j) dst[j] = std::max(src[j], 0.f);
  } else {
    std::memcpy(dst, src, n * sizeof(float));
  }
}

}  // namespace

std::pair<int64_t, int64_t> same_tf_split(int64_t n, int64_t kernel, int64_t stride) {
  const int64_t out = (n + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - n, 0);
  return {total / 2, total - total / 2};
}

ConvGeometry ConvGeometry::same_tf(int64_t kernel, int64_t stride, int64_t h, int64_t w) {
  ConvGeometry g;
  g.kernel_h = g.kernel_w = kernel;
  g.stride_h = g.stride_w = stride;
  std::tie(g.pad_top, g.pad_bottom) = same_tf_split(h, kernel, stride);
  std::tie(g.pad_left, g.pad_right) = same_tf_split(w, kernel, stride);
  return g;
}

ConvGeometry ConvGeometry::same_torch(int64_t kernel, int64_t stride) {
  ConvGeometry g;
  g.kernel_h = g.kernel_w = kernel;
  g.stride_h = g.stride_w = stride;
  g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = kernel / 2;
  return g;
}

Layer::Layer(std::string name, LayerKind kind, const at::Tensor& weight, const at::Tensor& bias,
             ConvGeometry geometry, bool sparse, Isa isa)
    : name_(std::move(name)), kind_(kind), geo_(geometry), sparse_(sparse), isa_(isa) {
  TORCH_CHECK(weight.scalar_type() == at::kFloat, name_, ": float32 weights only");
  TORCH_CHECK(weight.dim() == (kind == LayerKind::Conv ? 4 : 2), name_, ": weight rank");
  const auto w = weight.detach().contiguous();
  out_ = w.size(0);
  in_ = w.size(1);
  if (kind == LayerKind::Conv) {
    geo_.kernel_h = w.size(2);
    geo_.kernel_w = w.size(3);
  } else {
    geo_ = ConvGeometry{};
  }
  TORCH_CHECK(geo_.stride_h >= 1 && geo_.stride_w >= 1 && geo_.pad_top >= 0 && geo_.pad_left >= 0 &&
                  geo_.pad_bottom >= 0 && geo_.pad_right >= 0,
              name_, ": bad stride or padding");
  numel_ = w.numel();
  nnz_ = (w != 0).sum().item<int64_t>();
  if (bias.defined()) bias_ = bias.detach().to(at::kFloat).contiguous();
  if (!sparse_) {
    weight_ = w;
    return;
  }
  const int64_t taps = geo_.kernel_h * geo_.kernel_w;
  const int64_t cols = in_ * taps;
  const float* p = w.data_ptr<float>();
  row_ptr_.assign(1, 0);
  row_ptr_.reserve(out_ + 1);
  vals_.reserve(nnz_);
  cols_.reserve(nnz_);
  for (int64_t o = 0; o < out_; ++o) {
    for (int64_t j = 0; j < cols; ++j) {
      const float v = p[o * cols + j];
      if (v == 0.f) continue;
      vals_.push_back(v);
      cols_.push_back(static_cast<int32_t>(j));
    }
    row_ptr_.push_back(static_cast<int64_t>(vals_.size()));
  }
  bias_vals_.assign(out_, 0.f);
  if (bias_.defined())
    std::memcpy(bias_vals_.data(), bias_.data_ptr<float>(), out_ * sizeof(float));
}

std::pair<int64_t, int64_t> Layer::output_size(int64_t in_h, int64_t in_w) const {
  if (kind_ == LayerKind::Linear) return {1, 1};
  return {(in_h + geo_.pad_top + geo_.pad_bottom - geo_.kernel_h) / geo_.stride_h + 1,
          (in_w + geo_.pad_left + geo_.pad_right - geo_.kernel_w) / geo_.stride_w + 1};
}

int64_t Layer::dense_macs(int64_t in_h, int64_t in_w) const {
  const auto [oh, ow] = output_size(in_h, in_w);
  return numel_ * oh * ow;
}

int64_t Layer::sparse_macs(int64_t in_h, int64_t in_w) const {
  const auto [oh, ow] = output_size(in_h, in_w);
  return nnz_ * oh * ow;
}

int64_t Layer::weight_bytes() const {
  if (!sparse_) return numel_ * 4;
  // Per nonzero its value, column and input offset; per output channel a row pointer and,
  // for convolutions, the channel-block segments of the cached plan.
  return nnz_ * 12 + (out_ + 1) * 8 + static_cast<int64_t>(plan_.seg.size()) * 8;
}

at::Tensor Layer::forward(const at::Tensor& x, const at::Tensor& residual, bool relu) const {
  TORCH_CHECK(x.scalar_type() == at::kFloat, name_, ": float32 input only");
  TORCH_CHECK(x.dim() == (kind_ == LayerKind::Conv ? 4 : 2) && x.size(1) == in_, name_,
              ": input of shape ", x.sizes(), " for a layer of ", in_, " input channels");
  if (!sparse_) return forward_dense(x, residual, relu);
  if (kind_ == LayerKind::Linear) return forward_sparse_linear(x.contiguous(), residual, relu);
  return forward_sparse_conv(has_plane_layout(x) ? x : x.contiguous(), residual, relu);
}

bool has_plane_layout(const at::Tensor& x) {
  if (x.dim() != 4) return false;
  const int64_t plane = x.size(2) * x.size(3);
  return x.stride(3) == 1 && (x.size(2) == 1 || x.stride(2) == x.size(3)) && x.stride(1) >= plane &&
         (x.size(0) == 1 || x.stride(0) == x.size(1) * x.stride(1));
}

int64_t padded_plane(int64_t h, int64_t w) { return ceil_div(h * w, kPlaneAlign) * kPlaneAlign; }

at::Tensor empty_padded_planes(int64_t n, int64_t c, int64_t h, int64_t w,
                               const at::TensorOptions& options) {
  const int64_t plane = padded_plane(h, w);
  // The storage holds every plane's padding, the last one's included.
  return at::empty({n * c * plane}, options).as_strided({n, c, h, w}, {c * plane, plane, w, 1});
}

at::Tensor Layer::forward_dense(const at::Tensor& x, const at::Tensor& residual, bool relu) const {
  at::Tensor y;
  if (kind_ == LayerKind::Linear) {
    y = at::linear(x, weight_, bias_);
  } else if (geo_.symmetric()) {
    y = at::conv2d(x, weight_, bias_, at::IntArrayRef{geo_.stride_h, geo_.stride_w},
                   at::IntArrayRef{geo_.pad_top, geo_.pad_left});
  } else {
    const auto padded =
        at::constant_pad_nd(x, {geo_.pad_left, geo_.pad_right, geo_.pad_top, geo_.pad_bottom}, 0);
    y = at::conv2d(padded, weight_, bias_, at::IntArrayRef{geo_.stride_h, geo_.stride_w},
                   at::IntArrayRef{0, 0});
  }
  if (residual.defined()) y.add_(residual);
  if (relu) y.relu_();
  return y;
}

const Layer::ConvPlan& Layer::conv_plan(int64_t in_h, int64_t in_w, int64_t in_plane) const {
  if (plan_.in_h == in_h && plan_.in_w == in_w && plan_.in_plane == in_plane) return plan_;
  ConvPlan p;
  p.in_h = in_h;
  p.in_w = in_w;
  p.in_plane = in_plane;
  std::tie(p.out_h, p.out_w) = output_size(in_h, in_w);
  TORCH_CHECK(p.out_h >= 1 && p.out_w >= 1, name_, ": input ", in_h, "x", in_w, " too small");
  const int64_t sh = geo_.stride_h, sw = geo_.stride_w;
  p.direct = geo_.kernel_h == 1 && geo_.kernel_w == 1 && sh == 1 && sw == 1 && geo_.pad_top == 0 &&
             geo_.pad_left == 0 && geo_.pad_bottom == 0 && geo_.pad_right == 0;
  if (p.direct) {
    p.hq = in_h;
    p.wq = in_w;
    p.phases = 1;
    p.image_floats = in_ * in_plane;
  } else {
    const int64_t hp = in_h + geo_.pad_top + geo_.pad_bottom;
    const int64_t wp = in_w + geo_.pad_left + geo_.pad_right;
    p.hq = ceil_div(hp, sh);
    p.wq = ceil_div(wp, sw);
    p.phase_of.assign(sh * sw, -1);
    for (int64_t kh = 0; kh < geo_.kernel_h; ++kh)
      for (int64_t kw = 0; kw < geo_.kernel_w; ++kw) {
        int& slot = p.phase_of[(kh % sh) * sw + kw % sw];
        if (slot < 0) slot = static_cast<int>(p.phases++);
      }
    // Slack past the last plane: grid columns beyond the output width read up to a row and
    // a kernel width further.
    p.plane = padded_plane(p.hq, p.wq);
    p.image_floats = in_ * p.phases * p.plane + p.wq + geo_.kernel_w + 16;
  }
  TORCH_CHECK(p.image_floats < std::numeric_limits<int32_t>::max(), name_,
              ": input too large for 32-bit offsets");
  const int64_t taps = geo_.kernel_h * geo_.kernel_w;
  const int64_t span = p.direct ? 0 : ((geo_.kernel_h - 1) / sh) * p.wq + (geo_.kernel_w - 1) / sw;
  const int64_t channel_bytes = p.phases * (kPosTile + span) * static_cast<int64_t>(sizeof(float));
  // Each block costs every row a load and a store of its partial sums; a block should hold
  // enough of a row's nonzeros (kMinBlockNonzeros, expected) to pay for them, so sparse
  // layers take wider blocks than the L1 budget alone would give (measured: at density 0.018
  // a 1x1 256->64 layer at 56x56 ran 0.13 ms in 6 blocks, LIBXSMM's JIT 0.05 ms).
  const double row_density = density() * static_cast<double>(taps);
  const int64_t for_nonzeros =
      row_density > 0 ? static_cast<int64_t>(std::ceil(kMinBlockNonzeros / row_density)) : in_;
  p.channel_block = std::clamp<int64_t>(std::max(kL1Bytes / channel_bytes, for_nonzeros), 1, in_);
  // A grid of at most two position tiles, 512 positions (ResNet-50's 14x14 and 7x7 stages),
  // takes no channel blocks: the whole image's input is at most a few hundred KiB, in L2,
  // and each row then sums all its nonzeros in registers in one pass instead of loading and
  // storing its partial sums once per block (measured on ResNet-50 at density 0.1074, one
  // thread: the 7x7 1x1 convs 1.6x faster, the 14x14 ones 1.15x; the 28x28 and 56x56 3x3
  // convs 1.1x slower without blocks, so they keep them).
  if (p.out_h * p.wq <= 2 * kPosTile) p.channel_block = in_;
  p.blocks = ceil_div(in_, p.channel_block);
  p.seg.resize(out_ * (p.blocks + 1));
  for (int64_t r = 0; r < out_; ++r) {
    int64_t k = row_ptr_[r];
    for (int64_t b = 0; b <= p.blocks; ++b) {
      const int64_t first_channel = std::min(in_, b * p.channel_block);
      while (k < row_ptr_[r + 1] && (b == p.blocks || cols_[k] / taps < first_channel)) ++k;
      p.seg[r * (p.blocks + 1) + b] = k;
    }
  }
  const int64_t plane = p.plane;
  p.offs.resize(vals_.size());
  for (size_t k = 0; k < vals_.size(); ++k) {
    const int64_t c = cols_[k] / taps, kh = (cols_[k] % taps) / geo_.kernel_w,
                  kw = cols_[k] % geo_.kernel_w;
    if (p.direct) {
      p.offs[k] = static_cast<int32_t>(c * in_plane);
    } else {
      const int64_t slot = p.phase_of[(kh % sh) * sw + kw % sw];
      p.offs[k] = static_cast<int32_t>((c * p.phases + slot) * plane + (kh / sh) * p.wq + kw / sw);
    }
  }
  plan_ = std::move(p);
  return plan_;
}

at::Tensor Layer::forward_sparse_conv(const at::Tensor& x, const at::Tensor& residual,
                                      bool relu) const {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  const int64_t in_plane = x.stride(1);  // x has the plane layout (forward)
  const ConvPlan& p = conv_plan(h, w, in_plane);
  const int64_t sh = geo_.stride_h, sw = geo_.stride_w;
  auto out = empty_padded_planes(n, out_, p.out_h, p.out_w, x.options());
  const int64_t out_plane = out.stride(1);
  at::Tensor res;
  if (residual.defined()) {
    TORCH_CHECK(residual.sizes() == out.sizes(), name_, ": residual of shape ", residual.sizes());
    // The kernel reads the residual at the output's offsets.
    res = residual;
    if (residual.strides() != out.strides())
      res = empty_padded_planes(n, out_, p.out_h, p.out_w, x.options()).copy_(residual);
  }

  // The input buffer: x itself, or each image padded and split into its stride phases.
  const float* in = x.data_ptr<float>();
  at::Tensor buffer;
  if (!p.direct) {
    buffer = at::empty({n, p.image_floats}, x.options());
    float* buf = buffer.data_ptr<float>();
    const float* src = x.data_ptr<float>();
    const int64_t plane = p.plane, channels = in_, image_floats = p.image_floats;
    // Per phase column b, the phase-plane columns that read inside the image: [lo, hi).
    std::vector<std::pair<int64_t, int64_t>> inside(sw);
    for (int64_t b = 0; b < sw; ++b) {
      const int64_t shift = geo_.pad_left - b;  // col * sw - shift is the input column
      const int64_t lo = std::clamp<int64_t>(shift > 0 ? ceil_div(shift, sw) : 0, 0, p.wq);
      const int64_t end = w + shift;
      inside[b] = {lo, std::clamp<int64_t>(end > 0 ? ceil_div(end, sw) : 0, lo, p.wq)};
    }
    lth::parallel_for(0, n * channels, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t item = b0; item < b1; ++item) {
        const int64_t i = item / channels, c = item % channels;
        const float* s = src + (i * channels + c) * in_plane;
        float* image = buf + i * image_floats;
        for (int64_t a = 0; a < sh; ++a)
          for (int64_t b = 0; b < sw; ++b) {
            const int slot = p.phase_of[a * sw + b];
            if (slot < 0) continue;
            float* d = image + (c * p.phases + slot) * plane;
            const auto [lo, hi] = inside[b];
            for (int64_t r = 0; r < p.hq; ++r) {
              const int64_t y = r * sh + a - geo_.pad_top;
              float* row = d + r * p.wq;
              if (y < 0 || y >= h) {
                std::fill(row, row + p.wq, 0.f);
                continue;
              }
              // Zeros left and right, the image's columns between (a plain copy at stride 1).
              std::fill(row, row + lo, 0.f);
              const float* srow = s + y * w + b - geo_.pad_left;
              if (sw == 1) {
                std::memcpy(row + lo, srow + lo, (hi - lo) * sizeof(float));
              } else if (sw == 2) {  // a constant stride, which the compiler vectorises
                for (int64_t col = lo; col < hi; ++col) row[col] = srow[2 * col];
              } else {
                for (int64_t col = lo; col < hi; ++col) row[col] = srow[col * sw];
              }
              std::fill(row + hi, row + p.wq, 0.f);
            }
            std::fill(d + p.hq * p.wq, d + plane, 0.f);  // the plane's padding lanes
          }
        if (c == channels - 1) {
          float* slack = image + channels * p.phases * plane;
          std::fill(slack, image + image_floats, 0.f);
        }
      }
    });
    in = buf;
  }

  // Grid positions: OH rows of wq columns; the columns past the output width are computed
  // and dropped (they cost (wq - OW) / wq of the work, at most 2/9 on ResNet-50's 7x7 maps).
  // When there are such columns, an item accumulates into its own tile (kRowBlock x
  // kPosTile floats, in cache) and then writes the valid positions, with the residual and
  // the ReLU, into the output: no full-size staging tensor and no second pass over it.
  // A 1x1 conv whose input planes (x's, or at stride 2 the phase plane's) are padded as its
  // output's computes the padding lanes too (whole aligned vectors; they are zeroed below).
  const bool grid_is_output = p.wq == p.out_w;
  const bool whole_planes =
      p.direct ? in_plane == out_plane
               : geo_.kernel_h == 1 && geo_.kernel_w == 1 && p.hq == p.out_h && grid_is_output;
  const int64_t grid = whole_planes ? out_plane : p.out_h * p.wq;
  float* out_base = out.data_ptr<float>();
  const float* res_base = res.defined() ? res.data_ptr<float>() : nullptr;
  const int64_t oh = p.out_h, ow = p.out_w, wq = p.wq;

  const int64_t row_blocks = ceil_div(out_, kRowBlock);
  const int64_t pos_tiles = ceil_div(grid, kPosTile);
  const int64_t image_in = p.direct ? in_ * in_plane : p.image_floats;
  lth::parallel_for(0, n * pos_tiles * row_blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> tile;
    if (!grid_is_output) tile.resize(kRowBlock * kPosTile);
    for (int64_t item = b0; item < b1; ++item) {
      const int64_t rb = item % row_blocks;
      const int64_t t = (item / row_blocks) % pos_tiles;
      const int64_t i = item / (row_blocks * pos_tiles);
      const int64_t r0 = rb * kRowBlock, r1 = std::min(out_, r0 + kRowBlock);
      const int64_t q0 = t * kPosTile, q1 = std::min(grid, q0 + kPosTile);
      RowKernelArgs a;
      a.seg_stride = p.blocks + 1;
      a.offs = p.offs.data();
      a.vals = vals_.data();
      a.bias = bias_vals_.data();
      a.in = in + i * image_in;
      if (grid_is_output) {
        a.out = out_base + i * out_ * out_plane;
        a.out_stride = out_plane;
        a.residual = res_base ? res_base + i * out_ * out_plane : nullptr;
        a.relu = relu;
        for (int64_t b = 0; b < p.blocks; ++b) {
          a.seg = p.seg.data() + b;
          a.accumulate = b > 0;
          a.finish = b + 1 == p.blocks;
          run_rows(isa_, a, r0, r1, q0, q1);
        }
        continue;
      }
      // Rows [r0, r1) and positions [q0, q1) land at tile[(r - r0) * kPosTile + (q - q0)].
      a.bias = bias_vals_.data() + r0;
      a.in += q0;
      a.out = tile.data();
      a.out_stride = kPosTile;
      for (int64_t b = 0; b < p.blocks; ++b) {
        a.seg = p.seg.data() + r0 * (p.blocks + 1) + b;
        a.accumulate = b > 0;
        a.finish = false;
        run_rows(isa_, a, 0, r1 - r0, 0, q1 - q0);
      }
      for (int64_t r = r0; r < r1; ++r) {
        const float* src = tile.data() + (r - r0) * kPosTile;
        float* dst = out_base + (i * out_ + r) * out_plane;
        const float* rs = res_base ? res_base + (i * out_ + r) * out_plane : nullptr;
        // The tile's positions, one grid row segment at a time.
        for (int64_t q = q0; q < q1;) {
          const int64_t y = q / wq, x0 = q % wq;
          const int64_t row_end = std::min(q1, (y + 1) * wq);
          const int64_t x1 = std::min(ow, x0 + (row_end - q));
          // A segment may hold only dropped columns (x0 >= ow).
          if (x1 > x0)
            store_row(src + (q - q0), rs ? rs + y * ow + x0 : nullptr, relu, x1 - x0,
                      dst + y * ow + x0);
          q = row_end;
        }
      }
    }
  });
  if (out_plane > oh * ow) {
    for (int64_t k = 0; k < n * out_; ++k)
      std::fill(out_base + k * out_plane + oh * ow, out_base + (k + 1) * out_plane, 0.f);
  }
  return out;
}

at::Tensor Layer::forward_sparse_linear(const at::Tensor& x, const at::Tensor& residual,
                                        bool relu) const {
  // Rows over the batch: the transposed input [in, N] makes every nonzero a run of N values.
  const int64_t n = x.size(0);
  const auto xt = x.t().contiguous();
  if (linear_batch_ != n) {
    linear_offs_.resize(vals_.size());
    for (size_t k = 0; k < vals_.size(); ++k) linear_offs_[k] = static_cast<int32_t>(cols_[k] * n);
    linear_batch_ = n;
  }
  auto out_t = at::empty({out_, n}, x.options());
  at::Tensor res_t;
  if (residual.defined()) res_t = residual.t().contiguous();
  const int64_t row_blocks = ceil_div(out_, kRowBlock);
  lth::parallel_for(0, row_blocks, 1, [&](int64_t b0, int64_t b1) {
    RowKernelArgs a;
    a.seg = row_ptr_.data();
    a.offs = linear_offs_.data();
    a.vals = vals_.data();
    a.bias = bias_vals_.data();
    a.in = xt.data_ptr<float>();
    a.out = out_t.data_ptr<float>();
    a.residual = res_t.defined() ? res_t.data_ptr<float>() : nullptr;
    a.out_stride = n;
    a.relu = relu;
    run_rows(isa_, a, b0 * kRowBlock, std::min(out_, b1 * kRowBlock), 0, n);
  });
  return out_t.t().contiguous();
}

}  // namespace lth::infer
