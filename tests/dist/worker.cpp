// lth_dist_worker: the child processes of the dist tests. Like `lth`, it turns UserError
// into "lth: <message>" on stderr and exit status 2.
//   launch ...                       the real `lth launch` command (src/cli/cmd_launch.cpp)
//   train --out DIR [options]        one rank of a small data-parallel training run; every
//                                    rank writes DIR/rank<R>.safetensors with its final state
//   imp --run DIR                    one rank of a tiny IMP run (imp::run_imp), wired as
//                                    `lth imp` should be: rank 0 prepares the run folder,
//                                    the others read the config it wrote after a barrier
//   allreduce_loop --ready FILE      checks the collectives, then all-reduces forever
//                                    (touching FILE.<rank> once the checks passed)
//   reduce --out DIR                 gradients of a small network on rank-specific data,
//                                    summed over ranks twice: by one all_reduce_sum after
//                                    backward, and by the overlapped GradientReducer with tiny
//                                    buckets; writes DIR/reduce<R>.safetensors with both
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <fstream>
#include <iostream>

#include "common/error.h"
#include "data/synthetic.h"
#include "dist/gradient_reducer.h"
#include "dist/process_group.h"
#include "io/safetensors.h"
#include "imp/imp.h"
#include "io/checkpoint.h"
#include "models/network.h"
#include "pruning/mask.h"
#include "pruning/strategy.h"
#include "train/trainer.h"

namespace lth::cli {
void add_launch_command(CLI::App& app);  // declared in cli/commands.h once wired into lth
}

namespace {

using namespace lth;

struct TrainOptions {
  std::string out;
  std::string model = "resnet20";
  int64_t image_size = 8;
  int64_t channels = 3;
  int64_t steps = 6;
  int64_t batch = 16;
  int64_t micro_batch = 0;
  int64_t eval_every = 3;
  double lr = 0.1;
  std::string prunable = "conv";
  double keep = 0.5;
};

void train_rank(const TrainOptions& o) {
  at::set_num_threads(1);
  auto comm = dist::make_communicator(torch::kCPU);

  models::ModelConfig mc;
  mc.name = o.model;
  mc.in_channels = o.channels;
  mc.image_size = o.image_size;
  mc.num_classes = 10;
  mc.pixel_mean.assign(static_cast<size_t>(o.channels), 0.5);
  mc.pixel_std.assign(static_cast<size_t>(o.channels), 0.25);
  auto net = models::make_network(mc, /*seed=*/7);

  // A non-trivial mask, the same on every rank (random, from a fixed seed).
  const auto dense = pruning::dense_masks(*net, pruning::parse_prunable_set(o.prunable));
  const auto state = pruning::snapshot_state(*net);
  auto masks = pruning::prune("random_global", {state, dense, o.keep, /*seed=*/11});
  pruning::apply_masks(*net, masks);

  data::SyntheticConfig sc;
  sc.size = 80;  // 5 batches of 16 per epoch: the run crosses an epoch boundary
  sc.image_size = o.image_size;
  sc.channels = o.channels;
  sc.seed = 3;
  auto train_set = std::make_shared<data::SyntheticDataset>(sc, data::Split::Train);
  sc.size = 40;
  auto val_set = std::make_shared<data::SyntheticDataset>(sc, data::Split::Test);

  train::TrainConfig tc;
  tc.schedule.peak_lr = o.lr;
  tc.schedule.total_steps = o.steps;
  tc.schedule.constant = true;
  tc.batch_size = o.batch;
  tc.micro_batch = o.micro_batch;
  tc.eval_every = o.eval_every;
  tc.eval_batch_size = 16;
  tc.num_workers = 0;
  tc.seed = 5;
  tc.progress = false;

  train::TrainInputs in;
  in.net = net;
  in.masks = masks;
  in.train_set = train_set;
  in.val_set = val_set;
  in.comm = comm;
  train::RunLog log(std::filesystem::path(o.out) / "run", comm->is_root());
  train::run_training(tc, in, log);

  io::Checkpoint ckpt;
  ckpt.iteration = o.steps;
  ckpt.state = pruning::snapshot_state(*net);
  ckpt.masks = in.masks;
  io::save_checkpoint(std::filesystem::path(o.out) / ("rank" + std::to_string(comm->rank()) + ".safetensors"),
                      ckpt);
}

void imp_rank(const std::string& run, int64_t seed) {
  at::set_num_threads(1);
  auto comm = dist::make_communicator(torch::kCPU);
  imp::ImpConfig c;
  c.data_name = "synthetic";
  c.model = "lenet300_100";
  c.batch_size = 16;
  c.lr = 0.05;
  c.eval_every = 3;
  c.eval_batch_size = 32;
  c.num_workers = 0;
  c.rewind_iterations = 3;
  c.cycle_iterations = 6;
  c.cycles = 2;
  c.pruning_ratio = 0.5;
  c.prunable = "all";
  c.threads = 1;
  c.device = "cpu";
  c.seed = seed;  // -1: drawn (by every rank; rank 0's wins below)
  imp::validate(c);
  // The wiring cmd_imp.cpp needs: every rank checks the folder, then all take rank 0's
  // seed (each rank draws its own when none is set). The broadcast is also a barrier, so
  // no rank reads the folder after rank 0 has started writing it.
  c = imp::prepare_run_folder(run, c);
  c.seed = dist::broadcast_from_root(*comm, c.seed);
  imp::run_imp(run, c, comm);
}

void allreduce_loop(const std::string& ready) {
  at::set_num_threads(1);
  auto comm = dist::make_communicator(torch::kCPU);
  const double expected = comm->world_size() * (comm->world_size() + 1) / 2.0;
  // Once: several dtypes and a non-contiguous tensor in one call; broadcast; barrier.
  {
    const double r = comm->rank() + 1;
    std::vector<torch::Tensor> mixed{torch::full({4, 3}, r).t(), torch::tensor(r, torch::kFloat64),
                                     torch::full({5}, static_cast<int64_t>(r), torch::kInt64), torch::full({2}, r)};
    comm->all_reduce_sum(mixed);
    for (const auto& t : mixed) {
      if (!torch::equal(t, torch::full_like(t, expected))) throw std::runtime_error("wrong mixed all-reduce");
    }
    std::vector<torch::Tensor> b{torch::full({3}, r), torch::full({2}, static_cast<int64_t>(r), torch::kInt64)};
    comm->broadcast(b, /*root=*/1);
    if (b[0].min().item<double>() != 2 || b[1].max().item<int64_t>() != 2) throw std::runtime_error("wrong broadcast");
    if (dist::broadcast_from_root(*comm, 100 + comm->rank()) != 100) throw std::runtime_error("wrong root value");
    comm->barrier();
  }
  for (int64_t i = 0;; ++i) {
    std::vector<torch::Tensor> v{torch::full({1000}, static_cast<double>(comm->rank() + 1), torch::kFloat64)};
    comm->all_reduce_sum(v);
    if (v[0].min().item<double>() != expected || v[0].max().item<double>() != expected) {
      throw std::runtime_error("wrong all-reduce result");
    }
    if (i == 0) std::ofstream(ready + "." + std::to_string(comm->rank())) << "ok\n";
  }
}

// Two micro-batches per step, the reducer armed for the second only, one parameter unused
// (a layer outside the graph), one rank idle for a step: what the trainer does, checked
// against the plain all-reduce.
void reduce_rank(const std::string& out) {
  at::set_num_threads(1);
  auto comm = dist::make_communicator(torch::kCPU);
  torch::manual_seed(3);  // same weights on every rank
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)), torch::nn::ReLU(),
                            torch::nn::Flatten(), torch::nn::Linear(8 * 6 * 6, 10));
  torch::nn::Linear unused(4, 4);
  std::vector<torch::Tensor> params = net->parameters();
  for (auto& p : unused->parameters()) params.push_back(p);
  dist::ReducerOptions options;
  options.first_bucket_bytes = 64;
  options.bucket_bytes = 1000;  // several buckets, some holding one large tensor only
  dist::GradientReducer reducer(params, comm, options);
  io::TensorMap results;
  for (int step = 0; step < 2; ++step) {
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().zero_();
    torch::manual_seed(100 + 10 * comm->rank() + step);  // each rank its own data
    // Step 1 on rank 1: no backward at all (a batch whose samples were all unreadable);
    // the reducer is never armed there and must still join the same collectives.
    const bool idle = step == 1 && comm->rank() == 1;
    for (int chunk = 0; chunk < (idle ? 0 : 2); ++chunk) {
      const auto x = torch::randn({4, 3, 8, 8});
      const auto y = torch::randint(0, 10, {4});
      const auto loss = torch::nn::functional::cross_entropy(net->forward(x), y) * (1.0 / 3.0);
      if (chunk == 1) reducer.arm();
      loss.backward();
    }
    std::vector<torch::Tensor> plain;  // today's path: one all_reduce_sum over everything
    for (auto& p : params) plain.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    comm->all_reduce_sum(plain);
    reducer.finish();
    for (size_t i = 0; i < params.size(); ++i) {
      results["plain." + std::to_string(step) + "." + std::to_string(i)] = plain[i];
      results["bucketed." + std::to_string(step) + "." + std::to_string(i)] = params[i].grad().clone();
    }
  }
  std::string shape;
  for (const auto& b : reducer.buckets()) shape += std::to_string(b.size()) + ",";
  io::write_safetensors(std::filesystem::path(out) / ("reduce" + std::to_string(comm->rank()) + ".safetensors"), results,
                        {{"buckets", shape}});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lth_dist_worker: child processes of the dist tests"};
  app.require_subcommand(1);
  lth::cli::add_launch_command(app);

  TrainOptions train;
  auto* t = app.add_subcommand("train", "one rank of a small data-parallel run");
  t->add_option("--out", train.out)->required();
  t->add_option("--model", train.model);
  t->add_option("--image_size", train.image_size);
  t->add_option("--channels", train.channels);
  t->add_option("--steps", train.steps);
  t->add_option("--batch", train.batch);
  t->add_option("--micro_batch", train.micro_batch);
  t->add_option("--eval_every", train.eval_every);
  t->add_option("--lr", train.lr);
  t->add_option("--prunable", train.prunable);
  t->callback([&] { train_rank(train); });

  std::string imp_run;
  int64_t imp_seed = -1;
  auto* i = app.add_subcommand("imp", "one rank of a tiny IMP run");
  i->add_option("--run", imp_run)->required();
  i->add_option("--seed", imp_seed);
  i->callback([&] { imp_rank(imp_run, imp_seed); });

  std::string reduce_out;
  auto* r = app.add_subcommand("reduce", "gradients summed by all_reduce_sum and by the GradientReducer");
  r->add_option("--out", reduce_out)->required();
  r->callback([&] { reduce_rank(reduce_out); });

  std::string ready;
  auto* loop = app.add_subcommand("allreduce_loop", "all-reduce until killed");
  loop->add_option("--ready", ready)->required();
  loop->callback([&] { allreduce_loop(ready); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lth::UserError& e) {
    std::cerr << "lth: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "lth: " << e.what_without_backtrace() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "lth: internal error: " << e.what() << "\n";
    return 4;
  }
  return 0;
}
