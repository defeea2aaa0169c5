// bench_prune: time of lth's global magnitude pruning on ResNet-50's conv weights.
//
// Builds `resnet50` from the model registry (ImageNet configuration, seed 0: He-normal conv
// kernels), takes its 53 conv kernels (23.5 M weights, the reference's prunable set) and times
//   prune("magnitude_global", {weights, masks, 0.8})        as `lth imp` calls it per cycle
// in two states: dense masks (cycle 1), and the state after one such prune (20 % pruned,
// pruned weights zeroed: cycle 2). Optionally also magnitude_layerwise, and the rule it
// replaced (a full stable descending torch::sort of all candidates, `--sort-reps`), whose
// masks are also compared with the new ones (same_masks_as_sort).
//
// Each figure: --warmup untimed calls, then --reps timed ones; the median and every time are
// reported, with the share of the CPUs other processes used meanwhile (foreign_cpu_frac).
// Prints a table, then one JSON line (the last line of stdout). The Python peer
// (peer_prune.py) times numpy.partition / torch.kthvalue / torch.topk on as many float32
// values; bench/prune/run.sh runs both alternately.
//
// Example: bench_prune --threads 2 --reps 9
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <unistd.h>
#include <torch/types.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/threads.h"
#include "bench_models.h"
#include "machine_state.h"
#include "models/network.h"
#include "pruning/mask.h"
#include "pruning/strategy.h"

namespace {

using namespace lth;
using namespace lth::bench;
using nlohmann::json;

// The rule select-by-sort replaced (strategy.cpp before issue 11): candidates = nonzero mask
// entries flattened in name order, a full stable descending sort of |w|, the first kept.
pruning::MaskSet prune_by_full_sort(const pruning::TensorMap& weights, const pruning::MaskSet& previous,
                                    double keep_fraction) {
  std::vector<torch::Tensor> positions, scores;
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (const auto& [name, mask] : previous) {
    auto alive = mask.flatten().cpu().nonzero().squeeze(1);
    positions.push_back(alive + offset);
    scores.push_back(weights.at(name).detach().cpu().to(torch::kFloat32).flatten().abs().index_select(0, alive));
    offsets.push_back(offset);
    offset += mask.numel();
  }
  offsets.push_back(offset);
  const auto pos = torch::cat(positions);
  const auto sc = torch::cat(scores);
  const int64_t keep = std::llround(static_cast<double>(pos.numel()) * keep_fraction);
  auto order = std::get<1>(torch::sort(sc, /*stable=*/true, /*dim=*/0, /*descending=*/true));
  auto kept = pos.index_select(0, order.narrow(0, 0, keep));
  auto flat = torch::zeros({offset}, torch::kFloat32);
  flat.index_fill_(0, kept, 1.0);
  pruning::MaskSet out;
  size_t i = 0;
  for (const auto& [name, mask] : previous) {
    out[name] = flat.slice(0, offsets[i], offsets[i + 1]).reshape(mask.sizes()).clone();
    ++i;
  }
  return out;
}

bool same_masks(const pruning::MaskSet& a, const pruning::MaskSet& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, m] : a) {
    if (!b.count(name) || !torch::equal(m, b.at(name))) return false;
  }
  return true;
}

struct Options {
  int threads = 2;
  int reps = 9, warmup = 1, sort_reps = 0;
  double keep = 0.8;
  bool layerwise = false;
  uint64_t seed = 0;
  double wait_quiet = 120.0;
};

json time_it(const std::string& op, const std::string& state, int64_t candidates,
             const std::function<pruning::MaskSet()>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  CpuWatch watch;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    const auto masks = fn();
    times.push_back(seconds_since(t0));
  }
  double total = 0;
  for (double t : times) total += t;
  std::vector<double> rounded;
  for (double t : times) rounded.push_back(round_to(t, 5));
  return {{"op", op},
          {"state", state},
          {"candidates", candidates},
          {"median_s", round_to(median(times), 5)},
          {"min_s", round_to(*std::min_element(times.begin(), times.end()), 5)},
          {"times_s", rounded},
          {"cpu_per_wall", round_to(watch.own_cpu() / std::max(total, 1e-9), 2)},
          {"cpu_s_per_call", round_to(watch.own_cpu() / std::max(reps, 1), 5)},
          {"foreign_cpu_frac", round_to(watch.foreign_fraction(), 3)}};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Time of lth's global magnitude pruning of ResNet-50's conv weights (dense and 20%-pruned "
               "masks); prints a table and one JSON line"};
  app.add_option("--threads", o.threads, "intra-op threads (0 = all cores)")->capture_default_str();
  app.add_option("--reps", o.reps, "timed calls per figure")->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed calls per figure")->capture_default_str();
  app.add_option("--keep", o.keep, "fraction of the remaining weights kept")->capture_default_str();
  app.add_option("--sort-reps", o.sort_reps,
                 "also time the replaced full-sort rule this many times per state (0: no) and compare masks")
      ->capture_default_str();
  app.add_flag("--layerwise", o.layerwise, "also time magnitude_layerwise");
  app.add_option("--seed", o.seed, "network seed")->capture_default_str();
  app.add_option("--wait-quiet", o.wait_quiet, "wait up to this many s for other processes to go idle (0: don't)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const int threads = configure_threads(o.threads);
    const auto net = models::make_network(model_config("resnet50"), o.seed);
    const auto dense = pruning::dense_masks(*net, pruning::PrunableSet::Conv);
    const auto all = pruning::snapshot_state(*net);
    pruning::TensorMap weights;
    for (const auto& [name, _] : dense) weights[name] = all.at(name).contiguous();
    const int64_t n = pruning::count_total(dense);

    // Cycle 2's state: one prune done, pruned weights zeroed (as training leaves them).
    const auto pruned = pruning::prune("magnitude_global", {weights, dense, o.keep});
    pruning::TensorMap pruned_weights;
    for (const auto& [name, w] : weights) pruned_weights[name] = w * pruned.at(name);
    const int64_t n_pruned = pruning::count_kept(pruned);

    json env = {{"torch", TORCH_VERSION},
                {"threads", threads},
                {"at_num_threads", at::get_num_threads()},
                {"nproc", cpu_count()},
                {"layers", dense.size()},
                {"weights", n},
                {"keep", o.keep}};
    const double quiet = o.wait_quiet > 0 ? wait_quiet(o.wait_quiet) : -1.0;

    struct State {
      std::string name;
      const pruning::TensorMap* w;
      const pruning::MaskSet* m;
      int64_t candidates;
    };
    const std::vector<State> states{{"dense", &weights, &dense, n},
                                    {"pruned20", &pruned_weights, &pruned, n_pruned}};
    std::vector<json> results;
    for (const auto& s : states) {
      const pruning::PruneRequest req{*s.w, *s.m, o.keep};
      auto r = time_it("lth magnitude_global", s.name, s.candidates,
                       [&] { return pruning::prune("magnitude_global", req); }, o.warmup, o.reps);
      const auto masks = pruning::prune("magnitude_global", req);
      r["kept"] = pruning::count_kept(masks);
      r["kept_expected"] = std::llround(static_cast<double>(s.candidates) * o.keep);
      if (o.sort_reps > 0) {
        auto q = time_it("full stable sort (replaced rule)", s.name, s.candidates,
                         [&] { return prune_by_full_sort(*s.w, *s.m, o.keep); }, 0, o.sort_reps);
        r["same_masks_as_sort"] = same_masks(masks, prune_by_full_sort(*s.w, *s.m, o.keep));
        results.push_back(r);
        results.push_back(q);
      } else {
        results.push_back(r);
      }
      if (o.layerwise) {
        results.push_back(time_it("lth magnitude_layerwise", s.name, s.candidates,
                                  [&] { return pruning::prune("magnitude_layerwise", req); }, o.warmup,
                                  o.reps));
      }
    }
    std::printf("%-36s %-9s %11s %10s %10s %8s %8s\n", "op", "state", "candidates", "median s", "CPU s/call",
                "cpu/wall", "foreign");
    for (const auto& r : results) {
      std::printf("%-36s %-9s %11lld %10.4f %10.4f %8.2f %7.1f%%\n", r["op"].get<std::string>().c_str(),
                  r["state"].get<std::string>().c_str(), static_cast<long long>(r["candidates"].get<int64_t>()),
                  r["median_s"].get<double>(), r["cpu_s_per_call"].get<double>(), r["cpu_per_wall"].get<double>(),
                  100 * r["foreign_cpu_frac"].get<double>());
    }
    json out = {{"script", "bench_prune"}, {"env", env}, {"others_busy_before", quiet}, {"results", results}};
    std::cout << out.dump() << std::endl;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_prune: %s\n", e.what());
    return 1;
  }
  return 0;
}
