// bench_allreduce: what one training step's gradient all-reduce costs between ranks, run
// under `lth launch` (bench/data_parallel/run.sh runs it on 2 ranks). Times, per call:
//   grads    Communicator::all_reduce_sum over the parameter gradients of a network, one
//            tensor per parameter (concatenated into one buffer, reduced, copied back: the
//            trainer's step before dist::GradientReducer reduced flat buckets in place)
//   flat     the same number of floats as one contiguous tensor (the transport alone, no
//            copies: shared memory between ranks of one machine, Gloo with LTH_DIST_SHM=0)
//   barrier  an empty collective: the round-trip floor
// Rank 0 prints one JSON line: median and mean microseconds of each.
//
// Example: lth launch --nproc 2 -- bench_allreduce --model lenet300_100 --iters 500
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "dist/process_group.h"
#include "models/network.h"

namespace {

using Clock = std::chrono::steady_clock;

nlohmann::json time_us(const std::function<void()>& fn, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> us;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    fn();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  double sum = 0;
  for (double u : us) sum += u;
  std::sort(us.begin(), us.end());
  return {{"median_us", us[us.size() / 2]}, {"mean_us", sum / static_cast<double>(us.size())}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gradient all-reduce cost per step"};
  std::string model = "lenet300_100";
  int iters = 500, warmup = 50, threads = 1;
  app.add_option("--model", model, "network whose parameter shapes are reduced")->capture_default_str();
  app.add_option("--iters", iters, "timed calls")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed calls")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(threads);
    auto comm = lth::dist::make_communicator(torch::kCPU);
    lth::models::ModelConfig mc;
    mc.name = model;
    mc.in_channels = 1;
    mc.image_size = 28;
    mc.num_classes = 10;
    auto net = lth::models::make_network(mc, 0);
    std::vector<torch::Tensor> grads;
    int64_t numel = 0;
    for (auto& p : net->parameters()) {
      grads.push_back(torch::zeros_like(p));  // zeros: sums stay finite
      numel += p.numel();
    }
    std::vector<torch::Tensor> flat{torch::zeros({numel})};
    nlohmann::json r = {{"model", model}, {"world_size", comm->world_size()}, {"tensors", grads.size()},
                        {"floats", numel}, {"iters", iters}};
    comm->barrier();
    r["grads"] = time_us([&] { comm->all_reduce_sum(grads); }, warmup, iters);
    comm->barrier();
    r["flat"] = time_us([&] { comm->all_reduce_sum(flat); }, warmup, iters);
    comm->barrier();
    r["barrier"] = time_us([&] { comm->barrier(); }, warmup, iters);
    if (comm->is_root()) std::cout << r.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_allreduce: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
