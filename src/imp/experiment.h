#pragma once
// What every phase of a run shares, loaded once: the resolved config, datasets and test
// sets, device, and the communicator (single process or c10d).
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "dist/communicator.h"
#include "imp/config.h"
#include "models/network.h"
#include "models/precision.h"
#include "train/trainer.h"

namespace lth::imp {

struct TestSet {
  std::string name;
  data::DatasetPtr dataset;
  std::vector<int64_t> class_subset;  // empty = all classes
};

class Experiment {
 public:
  // `config.seed` must already be resolved (>= 0).
  Experiment(ImpConfig config, dist::CommunicatorPtr comm);

  const ImpConfig& config() const { return config_; }
  uint64_t seed() const { return static_cast<uint64_t>(config_.seed); }
  torch::Device device() const { return device_; }
  // The arithmetic this run computes in, resolved for its device (models/precision.h).
  models::Precision precision() const { return precision_; }
  const dist::CommunicatorPtr& comm() const { return comm_; }
  models::ModelConfig model_config() const;
  // A freshly initialised network; `purpose` keys the init seed ("init", "reinit", ...).
  models::NetworkPtr make_network(const std::string& purpose = "init") const;
  // A phase of `iterations` steps, constant LR or warm-up + cosine; `data_key` keys its data order.
  train::TrainConfig train_config(int64_t iterations, bool constant_lr, bool periodic_ckpt,
                                  uint64_t data_key) const;
  nlohmann::json config_json() const;
  // `count` of this run's training images (never the hold-out) read through the eval
  // transform: a fixed sample, keyed by `purpose`, to measure training error on.
  data::DatasetPtr training_sample(int64_t count, const std::string& purpose) const;

  data::DatasetPtr train_set;  // less the hold-out, where one is configured
  // The set best_acc is chosen on: the hold-out (data.holdout > 0), else the test split.
  data::DatasetPtr val_set;
  std::vector<int64_t> val_class_subset;
  // What val_set is, for summaries and reports: {"set": "holdout", "count": N, ...} or
  // {"set": "test", "name": <test split>} (the reference's protocol).
  nlohmann::json selection;
  std::vector<TestSet> test_sets;
  std::vector<std::string> absent_test_sets;  // "name (where it was looked for)"

 private:
  void quick_data_check() const;
  ImpConfig config_;
  dist::CommunicatorPtr comm_;
  torch::Device device_ = torch::kCPU;
  models::Precision precision_ = models::Precision::kFloat32;
  data::DatasetPtr train_eval_view_;  // the train split through the eval transform, when opened
};

bool is_imagenet(const std::string& data_name);

// "auto" = CUDA when this LibTorch has it and a GPU is present, else CPU.
torch::Device resolve_device(const std::string& name);

// cuDNN's algorithm choice for this process. By default cuDNN benchmarks the convolution
// algorithms for each new shape and keeps the fastest (commonly tens of percent on ResNet-50),
// as PyTorch users set torch.backends.cudnn.benchmark; the chosen kernels may differ between
// runs, so a resumed GPU run then matches an uninterrupted one only to within float noise.
// `deterministic` (run.deterministic, --deterministic) turns benchmarking off and asks for
// deterministic kernels, so that resumption is bit-identical on GPU too. No effect on CPU.
void configure_cudnn(bool deterministic);

}  // namespace lth::imp
