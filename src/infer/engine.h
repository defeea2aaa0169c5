#pragma once
// The sparse CPU inference engine: a loaded lth network (weights with pruned entries at exactly
// 0, BN running statistics) compiled once into a plan that skips pruned weights.
//
// At compile time: BN is folded into the preceding convolution (w·γ/σ, β − μ·γ/σ); ReLU and
// the residual addition are fused into the convolution that produces them; each conv and
// linear layer runs sparse or dense (conv_layer.h), by the measured crossover of its shape
// (crossover.h) in mode Auto, always sparse in mode Sparse, always dense in mode Dense.
// The stem's max-pool is pool.h's; Conv-n's 2x2 max-pools, the global average pool and input
// standardisation run in LibTorch. A batch of a convolutional network goes through the plan
// one image at a time (activations stay in cache), whole images per thread when there are
// enough of them; MLPs keep the batch.
//
// Supported networks: every model lth builds (models/registry): ResNets of both families
// (basic and bottleneck blocks, projection shortcuts, 7x7/2 or 3x3 stems), Conv-2/4/6 and
// LeNet-300-100. Float32 on the CPU only; the forward runs in float32 even when the ticket
// was trained in bf16 (autocast is switched off inside it). Refused with a UserError: another
// device, or a model name the engine has no plan for (use --engine dense).
#include <memory>
#include <string>
#include <vector>

#include "infer/conv_layer.h"
#include "infer/kernels.h"
#include "models/network.h"

namespace lth::infer {

enum class EngineMode { Dense, Sparse, Auto };
// "dense", "sparse" or "auto"; UserError naming `flag` otherwise.
EngineMode parse_engine_mode(const std::string& name, const std::string& flag = "--engine");
const char* engine_mode_name(EngineMode mode);

struct EngineOptions {
  EngineMode mode = EngineMode::Auto;
  Isa isa = best_isa();
};

// One compiled layer, for reports: where it sits, its shape and what it runs.
struct LayerSummary {
  std::string name;            // the conv / linear parameter prefix (layer1.0.conv2, fc, ...)
  std::string shape;           // "3x3/2 64->64" or "linear 512->1000"
  int64_t in_h = 0, in_w = 0;  // input size at the configured image size
  double density = 0;
  bool sparse = false;
  int64_t dense_macs = 0;   // per image
  int64_t sparse_macs = 0;  // density (of the mask, before BN folding) x dense_macs
  int64_t weight_bytes = 0;
};

// A Network whose forward runs the compiled plan. It keeps the source network for its
// config, its parameter kinds and input standardisation.
class CompiledNetwork : public models::Network {
 public:
  torch::Tensor forward(const torch::Tensor& images) override;
  models::ParamKind kind_of(const std::string& param_name) const override;
  const models::ModelConfig& config() const override;
  torch::Tensor standardize(const torch::Tensor& images) const override;

  const std::vector<LayerSummary>& layers() const { return summaries_; }
  Isa isa() const { return isa_; }
  // Per image, over the conv and linear layers: MACs the dense net does and MACs of the
  // nonzero weights (the ideal speedup is their ratio).
  int64_t dense_macs() const;
  int64_t sparse_macs() const;
  int64_t sparse_layer_count() const;

  struct Plan;  // the family's steps (engine.cpp)
  CompiledNetwork(models::NetworkPtr source, std::unique_ptr<Plan> plan,
                  std::vector<LayerSummary> summaries, Isa isa);
  ~CompiledNetwork() override;

 private:
  models::NetworkPtr source_;
  std::unique_ptr<Plan> plan_;
  std::vector<LayerSummary> summaries_;
  Isa isa_;
};

// Compiles `net` (any mode, Dense included: then every layer runs LibTorch through the plan).
std::shared_ptr<CompiledNetwork> compile(const models::NetworkPtr& net,
                                         const EngineOptions& options);

// Whether the plan is estimated to beat LibTorch's batched forward (crossover.h's rates):
// some layer runs sparse and the estimate is below kPlanMargin of LibTorch's.
bool plan_pays(const CompiledNetwork& net);

// What `lth eval --engine` runs: the network itself for Dense, and for Auto when the plan
// does not pay (no layer sparse, so a dense ticket runs exactly LibTorch's forward, or too
// few MACs saved); otherwise the compiled plan.
models::NetworkPtr prepare_for_inference(const models::NetworkPtr& net,
                                         const EngineOptions& options);

// A table of the plan's layers (name, shape, density, sparse/dense, MACs), one per line.
std::string describe_plan(const CompiledNetwork& net);

}  // namespace lth::infer
