#include "infer/engine.h"

#include <ATen/Parallel.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "common/error.h"
#include "common/parallel.h"
#include "common/text.h"
#include "infer/crossover.h"
#include "infer/pool.h"
#include "models/autocast.h"

namespace lth::infer {

struct CompiledNetwork::Plan {
  enum class Family { ResNet, ConvNet, Mlp };
  struct Block {
    std::vector<size_t> convs;  // indices into layers, in order
    int64_t downsample = -1;    // projection shortcut, if any
  };
  Family family = Family::Mlp;
  std::vector<Layer> layers;
  // ResNet
  size_t stem = 0;
  bool pool_stem = false;
  bool same_padding = false;  // models::Padding::Same: TensorFlow's SAME, -inf in the max-pool
  std::vector<Block> blocks;
  // Conv-n: conv layers (a 2x2 max-pool after every second one); all: hidden linear layers
  std::vector<size_t> convs;
  std::vector<size_t> hidden;
  size_t head = 0;

  at::Tensor run(at::Tensor x) const {
    if (family == Family::ResNet) {
      // The stem's ReLU is applied by the max-pool when there is one (on a quarter of the
      // values: a dense stem's ReLU was a separate pass over its 3.2 MB output).
      x = layers[stem].forward(x, {}, !pool_stem);
      if (pool_stem && !same_padding) {  // PyTorch's max_pool2d(3, 2, padding 1)
        x = max_pool_3x3_s2(x, 1, 1, (x.size(2) - 1) / 2 + 1, (x.size(3) - 1) / 2 + 1, true);
      } else if (pool_stem) {  // as models/resnet.cpp: SAME with -inf, which never wins the max
        x = max_pool_3x3_s2(x, same_tf_split(x.size(2), 3, 2).first,
                            same_tf_split(x.size(3), 3, 2).first, (x.size(2) + 1) / 2,
                            (x.size(3) + 1) / 2, true);
      }
      for (const auto& b : blocks) {
        const at::Tensor shortcut = b.downsample >= 0 ? layers[b.downsample].forward(x) : x;
        for (size_t i = 0; i < b.convs.size(); ++i) {
          const bool last = i + 1 == b.convs.size();
          x = layers[b.convs[i]].forward(x, last ? shortcut : at::Tensor(), true);
        }
      }
      x = x.mean({2, 3});
    } else {
      for (size_t i = 0; i < convs.size(); ++i) {
        x = layers[convs[i]].forward(x, {}, true);
        if (i % 2 == 1) x = at::max_pool2d(x, {2, 2}, {2, 2});
      }
      x = x.flatten(1);
    }
    for (size_t i : hidden) x = layers[i].forward(x, {}, true);
    return layers[head].forward(x);
  }
};

namespace {

using TensorMap = std::map<std::string, torch::Tensor>;
using Plan = CompiledNetwork::Plan;

// Builds the plan's layers from the network's tensors, folding BN and choosing kernels.
class Builder {
 public:
  Builder(const models::Network& net, const EngineOptions& options) : options_(options) {
    for (const auto& p : net.named_parameters()) state_[p.key()] = p.value().detach();
    for (const auto& b : net.named_buffers()) state_[b.key()] = b.value().detach();
    for (const auto& m : net.named_modules()) {
      if (const auto* bn = m.value()->as<torch::nn::BatchNorm2dImpl>())
        bn_eps_[m.key()] = bn->options.eps();
    }
  }

  bool has(const std::string& name) const { return state_.count(name) > 0; }
  const torch::Tensor& get(const std::string& name) const {
    const auto it = state_.find(name);
    require(it != state_.end(), "engine: the network has no tensor " + name);
    return it->second;
  }

  // conv `prefix`.weight (+ `prefix`.bias), BN `bn` folded in when non-empty.
  size_t conv(Plan& plan, const std::string& prefix, const std::string& bn, ConvGeometry g,
              int64_t& h, int64_t& w) {
    auto weight = get(prefix + ".weight").to(torch::kFloat32);
    // The mask's density, before folding (a zero BN scale, as lth's init has in the last BN
    // of every block, zeroes whole rows of the folded weight; the kernel skips those too).
    const double density = density_of(weight);
    torch::Tensor bias;
    if (has(prefix + ".bias")) bias = get(prefix + ".bias").to(torch::kFloat32);
    if (!bn.empty()) {
      const auto it = bn_eps_.find(bn);
      const double eps = it == bn_eps_.end() ? 1e-5 : it->second;
      const auto gamma = get(bn + ".weight").to(torch::kFloat32);
      const auto beta = get(bn + ".bias").to(torch::kFloat32);
      const auto mean = get(bn + ".running_mean").to(torch::kFloat32);
      const auto var = get(bn + ".running_var").to(torch::kFloat32);
      const auto scale = gamma / (var + eps).sqrt();
      weight = weight * scale.view({-1, 1, 1, 1});  // pruned entries stay exactly 0
      bias = (bias.defined() ? bias - mean : -mean) * scale + beta;
    }
    LayerShape shape{false,
                     weight.size(2),
                     weight.size(3),
                     g.stride_h,
                     weight.size(1),
                     weight.size(0),
                     (h + g.pad_top + g.pad_bottom - weight.size(2)) / g.stride_h + 1,
                     (w + g.pad_left + g.pad_right - weight.size(3)) / g.stride_w + 1};
    return add(plan, prefix, LayerKind::Conv, weight, bias, g, shape, density, h, w);
  }

  size_t linear(Plan& plan, const std::string& prefix) {
    const auto weight = get(prefix + ".weight").to(torch::kFloat32);
    torch::Tensor bias;
    if (has(prefix + ".bias")) bias = get(prefix + ".bias").to(torch::kFloat32);
    LayerShape shape{true, 1, 1, 1, weight.size(1), weight.size(0), 1, 1};
    int64_t h = 1, w = 1;
    return add(plan, prefix, LayerKind::Linear, weight, bias, ConvGeometry{}, shape,
               density_of(weight), h, w);
  }

  std::vector<LayerSummary> summaries;

 private:
  static double density_of(const torch::Tensor& w) {
    return w.numel() ? (w != 0).sum().item<double>() / static_cast<double>(w.numel()) : 0.0;
  }

  size_t add(Plan& plan, const std::string& name, LayerKind kind, const torch::Tensor& weight,
             const torch::Tensor& bias, ConvGeometry g, const LayerShape& shape, double density,
             int64_t& h, int64_t& w) {
    bool sparse = options_.mode == EngineMode::Sparse;
    if (options_.mode == EngineMode::Auto) sparse = prefer_sparse(shape, density);
    plan.layers.emplace_back(name, kind, weight, bias, g, sparse, options_.isa);
    const Layer& l = plan.layers.back();
    LayerSummary s;
    s.name = name;
    char buf[96];
    if (kind == LayerKind::Linear) {
      std::snprintf(buf, sizeof buf, "linear %lld->%lld", static_cast<long long>(l.in_channels()),
                    static_cast<long long>(l.out_channels()));
    } else {
      std::snprintf(buf, sizeof buf, "%lldx%lld/%lld %lld->%lld",
                    static_cast<long long>(weight.size(2)), static_cast<long long>(weight.size(3)),
                    static_cast<long long>(g.stride_h), static_cast<long long>(l.in_channels()),
                    static_cast<long long>(l.out_channels()));
    }
    s.shape = buf;
    s.in_h = h;
    s.in_w = w;
    s.density = density;
    s.sparse = sparse;
    s.dense_macs = l.dense_macs(h, w);
    s.sparse_macs = std::llround(density * static_cast<double>(s.dense_macs));  // the mask's
    s.weight_bytes = l.weight_bytes();
    summaries.push_back(s);
    if (kind == LayerKind::Conv) std::tie(h, w) = l.output_size(h, w);
    return plan.layers.size() - 1;
  }

  EngineOptions options_;
  TensorMap state_;
  std::map<std::string, double> bn_eps_;
};

void build_resnet(Builder& b, CompiledNetwork::Plan& plan, int64_t image_size,
                  models::Padding padding) {
  plan.family = CompiledNetwork::Plan::Family::ResNet;
  plan.same_padding = padding == models::Padding::Same;
  // The padding of a k x k conv at `stride` on an h x w input, by the model's rule.
  const auto geometry = [&plan](int64_t k, int64_t stride, int64_t h, int64_t w) {
    return plan.same_padding ? ConvGeometry::same_tf(k, stride, h, w)
                             : ConvGeometry::same_torch(k, stride);
  };
  int64_t h = image_size, w = image_size;
  const int64_t stem_kernel = b.get("conv1.weight").size(2);
  plan.pool_stem = stem_kernel == 7;  // the ImageNet stem (7x7/2 conv, 3x3/2 max-pool)
  plan.stem =
      b.conv(plan, "conv1", "bn1", geometry(stem_kernel, plan.pool_stem ? 2 : 1, h, w), h, w);
  if (plan.pool_stem) {
    h = (h + 2 - 3) / 2 + 1;
    w = (w + 2 - 3) / 2 + 1;
  }
  for (int stage = 1; b.has("layer" + std::to_string(stage) + ".0.conv1.weight"); ++stage) {
    for (int block = 0;; ++block) {
      const std::string p = "layer" + std::to_string(stage) + "." + std::to_string(block);
      if (!b.has(p + ".conv1.weight")) break;
      // As models/resnet.cpp: the first block of every stage after the first has stride 2,
      // on the 3x3 conv (conv2 of a bottleneck, conv1 of a basic block) and the shortcut.
      const int64_t stride = stage > 1 && block == 0 ? 2 : 1;
      const bool bottleneck = b.has(p + ".conv3.weight");
      CompiledNetwork::Plan::Block blk;
      int64_t bh = h, bw = w;
      if (b.has(p + ".downsample.0.weight")) {
        int64_t dh = h, dw = w;
        blk.downsample = static_cast<int64_t>(b.conv(plan, p + ".downsample.0", p + ".downsample.1",
                                                     geometry(1, stride, dh, dw), dh, dw));
      }
      const int n = bottleneck ? 3 : 2;
      for (int i = 1; i <= n; ++i) {
        const int64_t k = b.get(p + ".conv" + std::to_string(i) + ".weight").size(2);
        const bool strided = bottleneck ? i == 2 : i == 1;
        blk.convs.push_back(b.conv(plan, p + ".conv" + std::to_string(i),
                                   p + ".bn" + std::to_string(i),
                                   geometry(k, strided ? stride : 1, bh, bw), bh, bw));
      }
      h = bh;
      w = bw;
      plan.blocks.push_back(blk);
    }
  }
  plan.head = b.linear(plan, "fc");
}

void build_convnet(Builder& b, CompiledNetwork::Plan& plan, int64_t image_size) {
  plan.family = CompiledNetwork::Plan::Family::ConvNet;
  int64_t h = image_size, w = image_size;
  for (int i = 1; b.has("conv" + std::to_string(i) + ".weight"); ++i) {
    plan.convs.push_back(
        b.conv(plan, "conv" + std::to_string(i), "", ConvGeometry::same_torch(3, 1), h, w));
    if (i % 2 == 0) {
      h /= 2;
      w /= 2;
    }
  }
  for (int i = 1; b.has("fc" + std::to_string(i) + ".weight"); ++i)
    plan.hidden.push_back(b.linear(plan, "fc" + std::to_string(i)));
  plan.head = b.linear(plan, "fc");
}

}  // namespace

EngineMode parse_engine_mode(const std::string& name, const std::string& flag) {
  if (name == "dense") return EngineMode::Dense;
  if (name == "sparse") return EngineMode::Sparse;
  if (name == "auto") return EngineMode::Auto;
  throw UserError(flag + ": unknown engine '" + name + "' (sparse, dense or auto)");
}

const char* engine_mode_name(EngineMode mode) {
  switch (mode) {
    case EngineMode::Dense:
      return "dense";
    case EngineMode::Sparse:
      return "sparse";
    case EngineMode::Auto:
      return "auto";
  }
  return "?";
}

CompiledNetwork::CompiledNetwork(models::NetworkPtr source, std::unique_ptr<Plan> plan,
                                 std::vector<LayerSummary> summaries, Isa isa)
    : source_(std::move(source)),
      plan_(std::move(plan)),
      summaries_(std::move(summaries)),
      isa_(isa) {}

CompiledNetwork::~CompiledNetwork() = default;

torch::Tensor CompiledNetwork::forward(const torch::Tensor& images) {
  require(images.device().is_cpu(), "engine: the sparse engine runs on the CPU only");
  const torch::NoGradGuard no_grad;
  const models::AutocastOff float32;
  const auto x = source_->standardize(images).to(torch::kFloat32).contiguous();
  const int64_t n = x.size(0);
  // An MLP keeps the batch together: its sparse kernel is vectorised over the batch.
  if (n <= 1 || (plan_->convs.empty() && plan_->blocks.empty())) return plan_->run(x);
  // One image at a time through the whole network, so that its activations stay in cache
  // between layers: layer by layer over a batch of 32, a sparse layer reads its whole input
  // from DRAM (100 MB at ResNet-50's first stage), and at low density that read, not the
  // arithmetic, set its time (measured: a 1x1 256->64 layer at 56x56 and density 0.018 took
  // 17x as long at batch 8 as at batch 1). With at least as many images as threads each
  // thread runs whole images (inner parallel loops run inline); otherwise the threads share
  // each image. The first image runs alone: it fills the layers' cached offsets for this
  // input size, which the parallel images then only read.
  const auto first = plan_->run(x.narrow(0, 0, 1));
  auto out = at::empty({n, first.size(1)}, first.options());
  out.narrow(0, 0, 1).copy_(first);
  if (n - 1 >= at::get_num_threads()) {
    lth::parallel_for(1, n, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) out.narrow(0, i, 1).copy_(plan_->run(x.narrow(0, i, 1)));
    });
  } else {
    for (int64_t i = 1; i < n; ++i) out.narrow(0, i, 1).copy_(plan_->run(x.narrow(0, i, 1)));
  }
  return out;
}

models::ParamKind CompiledNetwork::kind_of(const std::string& n) const {
  return source_->kind_of(n);
}
const models::ModelConfig& CompiledNetwork::config() const { return source_->config(); }
torch::Tensor CompiledNetwork::standardize(const torch::Tensor& images) const {
  return source_->standardize(images);
}

int64_t CompiledNetwork::dense_macs() const {
  int64_t total = 0;
  for (const auto& s : summaries_) total += s.dense_macs;
  return total;
}
int64_t CompiledNetwork::sparse_macs() const {
  int64_t total = 0;
  for (const auto& s : summaries_) total += s.sparse_macs;
  return total;
}
int64_t CompiledNetwork::sparse_layer_count() const {
  int64_t n = 0;
  for (const auto& s : summaries_) n += s.sparse;
  return n;
}

std::shared_ptr<CompiledNetwork> compile(const models::NetworkPtr& net,
                                         const EngineOptions& options) {
  const auto& name = net->config().name;
  for (const auto& p : net->parameters())
    require(p.device().is_cpu(), "engine: the sparse engine runs on the CPU only (--device cpu)");
  Builder b(*net, options);
  auto plan = std::make_unique<CompiledNetwork::Plan>();
  if (starts_with(name, "resnet")) {
    build_resnet(b, *plan, net->config().image_size, net->config().padding);
  } else if (starts_with(name, "conv") || name == "lenet300_100") {
    build_convnet(b, *plan, net->config().image_size);
  } else {
    throw UserError("engine: no sparse plan for model '" + name + "' (use --engine dense)");
  }
  return std::make_shared<CompiledNetwork>(net, std::move(plan), std::move(b.summaries),
                                           options.isa);
}

bool plan_pays(const CompiledNetwork& net) {
  double plan = 0, dense = 0;
  for (const auto& s : net.layers()) {
    plan += s.sparse ? static_cast<double>(s.sparse_macs) / kSparseMacsPerSecond
                     : static_cast<double>(s.dense_macs) / kDenseSingleMacsPerSecond;
    dense += static_cast<double>(s.dense_macs) / kDenseBatchedMacsPerSecond;
  }
  const int threads = std::max(1, at::get_num_threads());
  plan /= 1 + kPlanThreadGain * (threads - 1);
  dense /= threads;
  return net.sparse_layer_count() > 0 && plan < kPlanMargin * dense;
}

models::NetworkPtr prepare_for_inference(const models::NetworkPtr& net,
                                         const EngineOptions& options) {
  if (options.mode == EngineMode::Dense) return net;
  auto compiled = compile(net, options);
  if (options.mode == EngineMode::Auto && !plan_pays(*compiled)) return net;
  return compiled;
}

std::string describe_plan(const CompiledNetwork& net) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-28s %-22s %8s %8s %7s %12s\n", "layer", "shape", "input",
                "density", "kernel", "MMAC/img");
  out += line;
  for (const auto& s : net.layers()) {
    const std::string input = std::to_string(s.in_h) + "x" + std::to_string(s.in_w);
    std::snprintf(line, sizeof line, "%-28s %-22s %8s %8.4f %7s %12.2f\n", s.name.c_str(),
                  s.shape.c_str(), input.c_str(), s.density, s.sparse ? "sparse" : "dense",
                  1e-6 * static_cast<double>(s.sparse ? s.sparse_macs : s.dense_macs));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "total: %.1f MMAC/img dense, %.1f MMAC/img in nonzero weights (ideal speedup "
                "%.2fx), kernels %s\n",
                1e-6 * static_cast<double>(net.dense_macs()),
                1e-6 * static_cast<double>(net.sparse_macs()),
                net.sparse_macs() ? static_cast<double>(net.dense_macs()) / net.sparse_macs() : 0.0,
                isa_name(net.isa()));
  out += line;
  return out;
}

}  // namespace lth::infer
