#pragma once
// One convolution or linear layer of the inference engine, compiled once from its (masked,
// BN-folded) float32 weights and run many times, sparse or dense.
//
// Supported: 2-D convolutions of any kernel size, stride (per axis) and padding (per side:
// top/left may differ from bottom/right, as TensorFlow's "SAME" needs), groups = 1, no
// dilation; linear layers (a weight [out, in] on inputs [N, in]). Inputs are float32 NCHW
// (conv) or [N, in] (linear), contiguous; bias, a residual added before the ReLU and the ReLU
// itself are fused into the output write.
// - Sparse: the nonzero weights in CSR by output channel, each column a precomputed offset
//   into the layer's input buffer (kernels.h). A k x k or strided convolution reads a copy of
//   each image padded and split into stride phases, so every nonzero is a contiguous run of
//   the input ("direct sparse convolution", Park et al. 2017); 1x1 stride-1 unpadded
//   convolutions read the input as it is. Work is split over images, output-channel blocks
//   and position tiles with lth::parallel_for (common/parallel.h: LibTorch's threads).
// - Dense: at::conv2d / at::linear (oneDNN / BLAS), the padding applied first when it is
//   asymmetric.
// Refused (TORCH_CHECK, internal misuse): groups, dilation, non-float32 weights, inputs of the
// wrong channel count, and (sparse) an input buffer of 2^31 floats or more per image.
// Layout: a sparse conv layer returns its output with every channel plane padded to a
// multiple of 16 floats (strides [C*P, P, W, 1], P = H*W rounded up; the padding lanes are
// zero), and reads such an input without copying it (any other input is made contiguous).
// A 7x7 plane is 49 floats: unpadded, every run of a channel started mid cache line and
// every vector load touched two lines; padded to 64, a 1x1 conv's loads are aligned and
// cover the plane in whole vectors (measured: a 2048->512 1x1 conv at 8x8 took 0.19 ms, the
// same at 7x7 0.27). Other code sees an ordinary strided tensor.
// Threads: the first forward at an input size fills a cache of offsets; after that, forward
// may run concurrently (the engine runs the first image alone, then the others in parallel).
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "infer/kernels.h"

namespace lth::infer {

// (before, after) padding of one axis of length n under TensorFlow's "SAME".
std::pair<int64_t, int64_t> same_tf_split(int64_t n, int64_t kernel, int64_t stride);

struct ConvGeometry {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool symmetric() const { return pad_top == pad_bottom && pad_left == pad_right; }
  // PyTorch's symmetric padding k/2 on every side.
  static ConvGeometry same_torch(int64_t kernel, int64_t stride);
  // TensorFlow's "SAME" (models::Padding::Same) for an h x w input: the total
  // max((ceil(n/s)-1)*s + k - n, 0) per axis, one pixel less on top/left when odd.
  static ConvGeometry same_tf(int64_t kernel, int64_t stride, int64_t h, int64_t w);
};

// The output layout of sparse conv layers ("Layout" above): whether x is NCHW with a channel
// stride of at least H*W (contiguous tensors included); the padded plane size for an h x w
// map; an uninitialised [n, c, h, w] tensor with padded planes.
bool has_plane_layout(const at::Tensor& x);
int64_t padded_plane(int64_t h, int64_t w);
at::Tensor empty_padded_planes(int64_t n, int64_t c, int64_t h, int64_t w,
                               const at::TensorOptions& options);

enum class LayerKind { Conv, Linear };

class Layer {
 public:
  // weight: [out, in, kh, kw] (Conv) or [out, in] (Linear), float32; bias: [out] or undefined.
  // `sparse` chooses the kernel; `isa` the sparse kernel's build.
  Layer(std::string name, LayerKind kind, const at::Tensor& weight, const at::Tensor& bias,
        ConvGeometry geometry, bool sparse, Isa isa);

  // x: float32 NCHW (Conv) or [N, in] (Linear). residual: output-shaped or undefined.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& residual = {}, bool relu = false) const;

  const std::string& name() const { return name_; }
  LayerKind kind() const { return kind_; }
  bool sparse() const { return sparse_; }
  int64_t out_channels() const { return out_; }
  int64_t in_channels() const { return in_; }
  const ConvGeometry& geometry() const { return geo_; }
  int64_t nonzeros() const { return nnz_; }
  int64_t numel() const { return numel_; }
  double density() const { return numel_ ? static_cast<double>(nnz_) / numel_ : 0.0; }
  // Multiply-accumulates per image (dense count and nonzero count) at this input size.
  int64_t dense_macs(int64_t in_h, int64_t in_w) const;
  int64_t sparse_macs(int64_t in_h, int64_t in_w) const;
  std::pair<int64_t, int64_t> output_size(int64_t in_h, int64_t in_w) const;
  // Bytes the compiled weights take (CSR with the offsets for the last input size, or dense).
  int64_t weight_bytes() const;

 private:
  at::Tensor forward_dense(const at::Tensor& x, const at::Tensor& residual, bool relu) const;
  at::Tensor forward_sparse_conv(const at::Tensor& x, const at::Tensor& residual, bool relu) const;
  at::Tensor forward_sparse_linear(const at::Tensor& x, const at::Tensor& residual,
                                   bool relu) const;
  // The CSR offsets of a conv depend on the input buffer's plane sizes, so they are computed
  // for the first input size (and plane stride) seen and recomputed when it changes.
  struct ConvPlan {
    int64_t in_h = -1, in_w = -1;
    int64_t in_plane = -1;  // the input's channel stride (>= in_h * in_w, see "Layout")
    int64_t out_h = 0, out_w = 0;
    int64_t hq = 0, wq = 0;  // phase-plane size
    int64_t plane = 0;       // phase-plane stride: hq * wq padded as an output plane
    std::vector<int> phase_of;  // (a * stride_w + b) -> buffer phase slot, -1 unused
    int64_t phases = 0;         // used phases
    int64_t image_floats = 0;   // buffer floats per image, slack included
    bool direct = false;        // 1x1, stride 1, no padding: read x as it is
    std::vector<int32_t> offs;
    // Input channels per block (a block's input tile fits L1) and each row's nonzeros per
    // block: seg[r * (blocks + 1) + b] is row r's first nonzero in block b.
    int64_t channel_block = 1, blocks = 1;
    std::vector<int64_t> seg;
  };
  const ConvPlan& conv_plan(int64_t in_h, int64_t in_w, int64_t in_plane) const;

  std::string name_;
  LayerKind kind_;
  int64_t out_ = 0, in_ = 0;
  ConvGeometry geo_;
  bool sparse_ = false;
  Isa isa_ = Isa::Portable;
  int64_t nnz_ = 0, numel_ = 0;
  at::Tensor weight_, bias_;  // dense path (weight_ kept for the dense path only)
  // CSR: row_ptr_ [out+1]; per nonzero its column (ci * kh * kw + tap, the dense row-major
  // index within the row) and value.
  std::vector<int64_t> row_ptr_;
  std::vector<int32_t> cols_;
  std::vector<float> vals_;
  std::vector<float> bias_vals_;
  mutable ConvPlan plan_;  // cached geometry for the last input size (see "Threads" above)
  mutable std::vector<int32_t> linear_offs_;
  mutable int64_t linear_batch_ = -1;
};

}  // namespace lth::infer
