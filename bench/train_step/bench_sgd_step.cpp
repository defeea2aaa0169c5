// bench_sgd_step: MaskedSgd::step alone on a network's parameters, the fused step (flat
// buffers, src/train/masked_sgd.cpp) against the per-parameter loop it replaced (kept below).
//
// Both optimisers get their own copy of the network (same seed), the same masks (random 50 %
// on every conv weight, as an IMP cycle's prunable set; BN and the head unmasked) and the
// same random gradients, set once: the step's cost does not depend on their values. Rounds
// alternate old and new (ABAB...) so drifting machine load hits both alike; per round, after
// warm-up steps, --steps steps are timed one by one. Reports the median and min step time of
// each, and the ATen operator calls of one step counted with a RecordFunction callback (on
// CUDA each compute operator is at most one kernel launch; nested calls are counted too, e.g.
// mul_(0.9) shows as mul_ and mul, and on CPU its 0-dim double scalar is converted with
// to/_to_copy/copy_; views and allocations are listed apart).
// Prints a table, then one JSON line (the last line of stdout).
//
// Example: bench_sgd_step --threads 2 --model resnet50 --rounds 3 --steps 10 [--clip 1.0]
#include <ATen/record_function.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/threads.h"
#include "models/network.h"
#include "per_parameter_sgd.h"  // tests/train: the loop the fused step replaced
#include "train/masked_sgd.h"

namespace {

using namespace lth;
using Named = std::vector<std::pair<std::string, torch::Tensor>>;

// RecordFunction takes plain function pointers, hence file-level counters; only main's
// count_ops() touches them, on this thread.
std::map<std::string, int64_t>* g_op_counts = nullptr;

std::unique_ptr<at::ObserverContext> on_op(const at::RecordFunction& fn) {
  if (g_op_counts) ++(*g_op_counts)[fn.name()];
  return nullptr;
}

// Operators that only make views, allocate or read metadata: no kernel of their own.
bool is_bookkeeping(const std::string& name) {
  static const std::set<std::string> names{
      "aten::empty",   "aten::empty_like", "aten::empty_strided", "aten::as_strided", "aten::view",
      "aten::detach",  "aten::alias",      "aten::reshape",       "aten::narrow",     "aten::slice",
      "aten::select",  "aten::expand",     "aten::resize_",       "aten::lift_fresh", "aten::_reshape_alias",
      "aten::unsqueeze", "aten::squeeze",  "aten::t",             "aten::result_type"};
  return names.count(name) > 0;
}

struct OpCount {
  int64_t compute = 0, bookkeeping = 0;
  std::map<std::string, int64_t> by_name;
};

template <typename Step>
OpCount count_ops(Step&& step) {
  std::map<std::string, int64_t> counts;
  g_op_counts = &counts;
  auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(on_op).scopes({at::RecordScope::FUNCTION}));
  step();
  at::removeCallback(handle);
  g_op_counts = nullptr;
  OpCount out;
  out.by_name = counts;
  for (const auto& [name, n] : counts) (is_bookkeeping(name) ? out.bookkeeping : out.compute) += n;
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

models::ModelConfig imagenet_config(const std::string& name) {
  models::ModelConfig m;
  m.name = name;
  m.num_classes = 1000;
  m.in_channels = 3;
  m.image_size = 224;
  m.pixel_mean = {0.485, 0.456, 0.406};
  m.pixel_std = {0.229, 0.224, 0.225};
  return m;
}

// A network copy whose parameters carry fixed random gradients.
Named network_with_gradients(const std::string& model, models::NetworkPtr& keep) {
  keep = models::make_network(imagenet_config(model), 1);
  Named params;
  torch::manual_seed(2);
  for (auto& item : keep->named_parameters()) {
    item.value().mutable_grad() = torch::randn_like(item.value()) * 1e-3;
    params.emplace_back(item.key(), item.value());
  }
  return params;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"MaskedSgd::step: fused (flat buffers) against the per-parameter loop"};
  std::string model = "resnet50";
  int threads = 0, rounds = 3, steps = 10, warmup = 2;
  double clip = 0;
  app.add_option("--model", model, "network (registry name, ImageNet config)")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (0 = default)")->capture_default_str();
  app.add_option("--rounds", rounds, "old/new rounds, alternating")->capture_default_str();
  app.add_option("--steps", steps, "timed steps per round")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps per round")->capture_default_str();
  app.add_option("--clip", clip, "global-norm clip (0 = off, the default run)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  threads = configure_threads(threads);

  train::SgdConfig config;  // momentum 0.9, weight decay 1e-4: the trainer's defaults
  if (clip > 0) config.global_clip = clip;

  models::NetworkPtr old_net, new_net;
  const auto old_params = network_with_gradients(model, old_net);
  const auto new_params = network_with_gradients(model, new_net);
  std::map<std::string, torch::Tensor> masks;
  int64_t numel = 0;
  torch::manual_seed(3);
  for (const auto& [name, p] : old_params) {
    numel += p.numel();
    if (p.dim() == 4) masks[name] = torch::rand(p.sizes()) < 0.5;
  }
  train::PerParameterSgd old_sgd(old_params, masks, config);
  train::MaskedSgd new_sgd(new_params, masks, config);

  const double lr = 1e-3;  // small: the weights stay finite over many steps
  const OpCount old_ops = count_ops([&] { old_sgd.step(lr); });
  const OpCount new_ops = count_ops([&] { new_sgd.step(lr); });

  std::vector<double> old_times, new_times;
  auto time_round = [&](auto& sgd, std::vector<double>& out) {
    using Clock = std::chrono::steady_clock;
    for (int i = 0; i < warmup; ++i) sgd.step(lr);
    for (int i = 0; i < steps; ++i) {
      const auto t0 = Clock::now();
      sgd.step(lr);
      out.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
  };
  for (int r = 0; r < rounds; ++r) {
    if (r % 2 == 0) {
      time_round(old_sgd, old_times);
      time_round(new_sgd, new_times);
    } else {
      time_round(new_sgd, new_times);
      time_round(old_sgd, old_times);
    }
  }
  // Same arithmetic, so after the same number of steps the weights agree exactly.
  bool identical = true;
  for (size_t i = 0; i < old_params.size(); ++i)
    identical = identical && torch::equal(old_params[i].second, new_params[i].second);

  const double old_ms = median(old_times), new_ms = median(new_times);
  std::printf("%s: %zu parameter tensors, %.1f M values, %d threads, clip %s\n", model.c_str(),
              old_params.size(), numel / 1e6, threads, clip > 0 ? std::to_string(clip).c_str() : "off");
  std::printf("| step | median ms | min ms | ATen ops (compute) | ATen ops (views/allocs) |\n|---|---|---|---|---|\n");
  std::printf("| per-parameter loop | %.1f | %.1f | %lld | %lld |\n", old_ms,
              *std::min_element(old_times.begin(), old_times.end()), static_cast<long long>(old_ops.compute),
              static_cast<long long>(old_ops.bookkeeping));
  std::printf("| fused (flat buffers) | %.1f | %.1f | %lld | %lld |\n", new_ms,
              *std::min_element(new_times.begin(), new_times.end()), static_cast<long long>(new_ops.compute),
              static_cast<long long>(new_ops.bookkeeping));
  std::printf("speed-up %.2fx; weights identical after all steps: %s\n", old_ms / new_ms, identical ? "yes" : "NO");
  std::printf("fused step's operators:");
  for (const auto& [name, n] : new_ops.by_name) std::printf(" %s x%lld", name.c_str(), static_cast<long long>(n));
  std::printf("\n");
  nlohmann::json j{{"model", model},       {"tensors", old_params.size()}, {"numel", numel},
                   {"threads", threads},   {"clip", clip},                 {"old_median_ms", old_ms},
                   {"new_median_ms", new_ms}, {"old_ops_compute", old_ops.compute},
                   {"old_ops_bookkeeping", old_ops.bookkeeping}, {"new_ops_compute", new_ops.compute},
                   {"new_ops_bookkeeping", new_ops.bookkeeping}, {"identical", identical},
                   {"old_times_ms", old_times}, {"new_times_ms", new_times}};
  std::printf("%s\n", j.dump().c_str());
  return identical ? 0 : 1;
}
