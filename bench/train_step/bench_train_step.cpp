// bench_train_step: training-step and inference throughput of lth's own step on CPU.
//
// One training step is exactly what `lth train` does per iteration (src/train/trainer.cpp,
// single process, no micro-batching, no mixed precision):
//   MaskedSgd::zero_grad -> Network::forward(uint8 NHWC images) -> cross_entropy(sum) ->
//   (loss / n).backward() -> running loss += loss -> MaskedSgd::step(lr)
// on one fixed in-memory batch (random uint8 pixels and labels, no data loading), as the
// PyTorch peer shared/bench/peers/torch_train_step.py does. Each config is timed with
// dense masks (all ones, as in an IMP run's first cycle) and with 50%-density masks
// (random_global pruning, pruned weights zeroed), and optionally forward-only inference
// (eval mode, NoGradGuard). Configs are "name:batch" as in the peer.
//
// Timing follows the peer: warm-up steps, then steps until --min-time-large (ResNet-50,
// i.e. image size > 64) or --min-time-small seconds have passed, at least --min-steps.
// Reports img/s, step times, minor page faults per step, RSS, and the share of the CPUs
// other processes used while each figure was taken (foreign_cpu_frac). Prints a table,
// then one JSON line (the last line of stdout).
//
// Example: bench_train_step --threads 2 --eval --configs resnet50:16 resnet20:128
#include <ATen/Parallel.h>
#include <gnu/libc-version.h>
#include <sys/resource.h>
#include <unistd.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/threads.h"
#include "bench_models.h"
#include "machine_state.h"
#include "malloc_tuning.h"
#include "models/autocast.h"
#include "models/network.h"
#include "pruning/mask.h"
#include "pruning/strategy.h"
#include "train/masked_sgd.h"

namespace {

using namespace lth;
using namespace lth::bench;
using nlohmann::json;

std::vector<std::string> mapped_blas() {
  std::set<std::string> libs;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find("blas") != std::string::npos || path.find("blis") != std::string::npos) {
      char resolved[4096];
      libs.insert(realpath(path.c_str(), resolved) ? std::string(resolved) : path);
    }
  }
  return {libs.begin(), libs.end()};
}

// ------------------------------------------------------------------ models and data
struct Spec {
  std::string name;
  int64_t batch = 0;
};

Spec parse_spec(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) throw std::invalid_argument("config '" + text + "' is not name:batch");
  return {text.substr(0, colon), std::stoll(text.substr(colon + 1))};
}

struct Options {
  std::vector<std::string> configs{"resnet50:16", "resnet20:128", "lenet300_100:128", "conv4:128"};
  std::vector<std::string> masks{"dense", "half"};
  int threads = 2;
  bool eval = false;
  std::string prunable = "all";
  std::string malloc_mode = "default";
  double min_time_large = 20.0, min_time_small = 5.0;
  int warmup_large = 2, warmup_small = 10, min_steps = 3;
  double lr = 0.01;
  uint64_t seed = 0;
  double wait_quiet = 120.0;
  std::string precision = "fp32";  // fp32 or bf16 (CPU autocast), as lth's --precision
};

std::vector<double> time_loop(const std::function<void()>& fn, int warmup, double min_time, int min_steps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  const auto start = Clock::now();
  while (true) {
    const auto t0 = Clock::now();
    fn();
    times.push_back(seconds_since(t0));
    if (seconds_since(start) >= min_time && static_cast<int>(times.size()) >= min_steps) break;
  }
  return times;
}

json timing_fields(const std::vector<double>& times, int64_t batch) {
  double total = 0;
  for (double t : times) total += t;
  return {{"img_per_s", round_to(batch * static_cast<double>(times.size()) / total, 2)},
          {"steps", times.size()},
          {"seconds", round_to(total, 2)},
          {"step_ms_median", round_to(median(times) * 1e3, 2)},
          {"step_ms_min", round_to(*std::min_element(times.begin(), times.end()) * 1e3, 2)},
          {"step_ms_max", round_to(*std::max_element(times.begin(), times.end()) * 1e3, 2)}};
}

struct Bench {
  models::NetworkPtr net;
  pruning::MaskSet masks;
  torch::Tensor images, labels;
};

Bench make_bench(const Spec& spec, const std::string& mask_variant, const Options& o) {
  const auto mc = model_config(spec.name);
  Bench b;
  b.net = models::make_network(mc, o.seed);
  b.masks = pruning::dense_masks(*b.net, pruning::parse_prunable_set(o.prunable));
  if (mask_variant == "half") {
    const auto weights = pruning::snapshot_state(*b.net);
    const auto dense = b.masks;
    b.masks = pruning::prune("random_global", {weights, dense, 0.5, o.seed + 1});
    pruning::apply_masks(*b.net, b.masks);
  }
  auto gen = at::detail::createCPUGenerator(o.seed + 2);
  b.images = torch::randint(0, 256, {spec.batch, mc.image_size, mc.image_size, mc.in_channels}, gen,
                            torch::TensorOptions().dtype(torch::kUInt8));
  b.labels = torch::randint(0, mc.num_classes, {spec.batch}, gen, torch::TensorOptions().dtype(torch::kLong));
  return b;
}

// Training with one mask variant; leaves the trained network in `b` for the eval timing.
json time_train(Bench& b, const Spec& spec, const std::string& mask_variant, const Options& o) {
  namespace F = torch::nn::functional;
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : b.net->named_parameters()) params.emplace_back(item.key(), item.value());
  train::MaskedSgd optimizer(params, b.masks, train::SgdConfig{});
  auto running_loss = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64));
  const double denominator = static_cast<double>(spec.batch);
  const auto precision = models::parse_precision(o.precision, "--precision");
  auto step = [&] {  // trainer.cpp train_step(), single process, whole batch
    optimizer.zero_grad();
    torch::Tensor logits;
    {
      const models::AutocastGuard autocast(precision, torch::kCPU);
      logits = b.net->forward(b.images);
    }
    auto loss = F::cross_entropy(logits.to(torch::kFloat32), b.labels,
                                 F::CrossEntropyFuncOptions().reduction(torch::kSum).label_smoothing(0.0));
    (loss * (1.0 / denominator)).backward();
    running_loss += loss.detach().to(torch::kFloat64);
    optimizer.step(o.lr);
  };
  const bool large = model_config(spec.name).image_size > 64;
  const int warmup = large ? o.warmup_large : o.warmup_small;
  b.net->train();
  CpuWatch watch;
  const long faults0 = minor_faults();
  const auto times = time_loop(step, warmup, large ? o.min_time_large : o.min_time_small, o.min_steps);
  const double faults = static_cast<double>(minor_faults() - faults0) / (warmup + times.size());
  json r = {{"model", spec.name}, {"batch", spec.batch}, {"mode", "train"}, {"masks", mask_variant},
            {"precision", o.precision}};
  r.update(timing_fields(times, spec.batch));
  // Sanity: loss stayed finite and pruned weights are still exactly zero.
  const double mean_loss = running_loss.item<double>() / (denominator * (warmup + times.size()));
  int64_t kept = 0, total = 0, nonzero_pruned = 0;
  const auto named = b.net->named_parameters();
  for (const auto& [name, mask] : b.masks) {
    kept += mask.sum().item<int64_t>();
    total += mask.numel();
    nonzero_pruned += (named[name].detach().ne(0) & mask.eq(0)).sum().item<int64_t>();
  }
  r.update({{"mask_density", round_to(static_cast<double>(kept) / std::max<int64_t>(total, 1), 4)},
            {"masked_params", total},
            {"pruned_nonzero_after", nonzero_pruned},
            {"mean_loss", round_to(mean_loss, 4)},
            {"minor_faults_per_step", static_cast<int64_t>(faults)},
            {"rss_mb", round_to(current_rss_mb(), 1)},
            {"max_rss_mb", round_to(max_rss_mb(), 1)},
            {"foreign_cpu_frac", round_to(watch.foreign_fraction(), 3)}});
  return r;
}

json time_eval(Bench& b, const Spec& spec, const Options& o) {
  const bool large = model_config(spec.name).image_size > 64;
  const int warmup = large ? o.warmup_large : o.warmup_small;
  b.net->eval();
  torch::NoGradGuard no_grad;  // evaluator.cpp: net.eval() + NoGradGuard + forward
  const auto precision = models::parse_precision(o.precision, "--precision");
  auto forward = [&] {
    const models::AutocastGuard autocast(precision, torch::kCPU);
    b.net->forward(b.images).to(torch::kFloat32);
  };
  CpuWatch watch;
  const long faults0 = minor_faults();
  const auto times = time_loop(forward, warmup, (large ? o.min_time_large : o.min_time_small) / 2, o.min_steps);
  const double faults = static_cast<double>(minor_faults() - faults0) / (warmup + times.size());
  json r = {{"model", spec.name}, {"batch", spec.batch}, {"mode", "eval"}, {"masks", "dense"},
            {"precision", o.precision}};
  r.update(timing_fields(times, spec.batch));
  r.update({{"minor_faults_per_step", static_cast<int64_t>(faults)},
            {"rss_mb", round_to(current_rss_mb(), 1)},
            {"max_rss_mb", round_to(max_rss_mb(), 1)},
            {"foreign_cpu_frac", round_to(watch.foreign_fraction(), 3)}});
  return r;
}

void print_table(const std::vector<json>& results) {
  std::printf("%-14s %6s %-6s %-6s %12s %12s %12s %8s\n", "model", "batch", "mode", "masks", "img/s",
              "median ms", "faults/step", "foreign");
  for (const auto& r : results) {
    std::printf("%-14s %6lld %-6s %-6s %12.2f %12.2f %12lld %7.1f%%\n",
                r["model"].get<std::string>().c_str(), static_cast<long long>(r["batch"].get<int64_t>()),
                r["mode"].get<std::string>().c_str(), r["masks"].get<std::string>().c_str(),
                r["img_per_s"].get<double>(), r["step_ms_median"].get<double>(),
                static_cast<long long>(r["minor_faults_per_step"].get<int64_t>()),
                100 * r["foreign_cpu_frac"].get<double>());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Training-step and inference throughput of lth's own step (forward, loss, backward, "
               "MaskedSgd) on one fixed in-memory batch; prints a table and one JSON line"};
  app.add_option("--configs", o.configs, "name:batch, e.g. resnet50:16 resnet20:128")->capture_default_str();
  app.add_option("--masks", o.masks, "mask variants to train with: dense (all ones), half (50% density)")
      ->check(CLI::IsMember({"dense", "half"}))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "intra-op threads (0 = all cores)")->capture_default_str();
  app.add_flag("--eval", o.eval, "also time forward-only inference (eval mode, no grad)");
  app.add_option("--precision", o.precision, "fp32 or bf16 (autocast, as lth --precision; the head stays float32)")
      ->capture_default_str();
  app.add_option("--prunable", o.prunable, "masked parameters: conv, conv+linear, all")->capture_default_str();
  app.add_option("--malloc", o.malloc_mode,
                 "glibc malloc: default; keep (mallopt: no mmap for malloc, no trimming); "
                 "threshold (mallopt: mmap only from 1 GiB, no trimming)")
      ->check(CLI::IsMember({"default", "keep", "threshold"}))
      ->capture_default_str();
  app.add_option("--min-time-large", o.min_time_large, "timed seconds per figure, image size > 64")
      ->capture_default_str();
  app.add_option("--min-time-small", o.min_time_small, "timed seconds per figure, small models")
      ->capture_default_str();
  app.add_option("--warmup-large", o.warmup_large, "untimed steps, image size > 64")->capture_default_str();
  app.add_option("--warmup-small", o.warmup_small, "untimed steps, small models")->capture_default_str();
  app.add_option("--min-steps", o.min_steps, "at least this many timed steps")->capture_default_str();
  app.add_option("--lr", o.lr, "learning rate of the SGD steps")->capture_default_str();
  app.add_option("--seed", o.seed, "network, mask and batch seed")->capture_default_str();
  app.add_option("--wait-quiet", o.wait_quiet, "wait up to this many s for other processes to go idle (0: don't)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // First, before any large allocation.
  bool malloc_ok = true;
  if (o.malloc_mode == "keep") malloc_ok = bench::keep_freed_memory_mapped();
  if (o.malloc_mode == "threshold") malloc_ok = bench::raise_mmap_threshold();

  try {
    std::vector<Spec> specs;
    for (const auto& c : o.configs) specs.push_back(parse_spec(c));
    const int threads = configure_threads(o.threads);
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    json env = {{"torch", TORCH_VERSION},
                {"glibc", gnu_get_libc_version()},
                {"threads", threads},
                {"at_num_threads", at::get_num_threads()},
                {"blas", mapped_blas()},
                {"malloc", o.malloc_mode == "keep"        ? "mallopt(M_MMAP_MAX,0)+mallopt(M_TRIM_THRESHOLD,-1)"
                           : o.malloc_mode == "threshold" ? "mallopt(M_MMAP_THRESHOLD,1GiB)+mallopt(M_TRIM_THRESHOLD,-1)"
                                                          : "glibc default"},
                {"malloc_ok", malloc_ok},
                {"glibc_tunables", tunables ? tunables : ""},
                {"prunable", o.prunable},
                {"nproc", cpu_count()}};
    const double quiet = o.wait_quiet > 0 ? wait_quiet(o.wait_quiet) : -1.0;
    CpuWatch whole;
    std::vector<json> results;
    for (const auto& spec : specs) {
      for (size_t i = 0; i < o.masks.size(); ++i) {
        auto bench = make_bench(spec, o.masks[i], o);
        auto r = time_train(bench, spec, o.masks[i], o);
        std::cout << "# " << r.dump() << std::endl;
        results.push_back(r);
        // Inference is timed once per config, on the network just trained with dense masks
        // (or the first variant), as the peer does after its training loop.
        if (o.eval && i == 0) {
          auto e = time_eval(bench, spec, o);
          std::cout << "# " << e.dump() << std::endl;
          results.push_back(e);
        }
      }
    }
    print_table(results);
    json out = {{"script", "bench_train_step"}, {"env", env}, {"others_busy_before", quiet},
                {"contention", whole.report()}, {"results", results}};
    std::cout << out.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_train_step: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
