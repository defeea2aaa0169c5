#include "train/trainer.h"
#include "train/resume_check.h"

#include <fmt/format.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "data/loader.h"
#include "eval/evaluator.h"
#include "io/checkpoint.h"
#include "io/run_layout.h"
#include "dist/gradient_reducer.h"
#include "models/autocast.h"
#include "train/device_feeder.h"
#include "train/loss_scale.h"

namespace lth::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Everything besides tensors that resuming needs, stored as the checkpoint's "trainer" JSON.
struct PhaseState {
  int64_t iteration = 0;
  data::LoaderPosition position;
  double best_acc = -1;
  int64_t best_iteration = 0;
  double window_loss_sum = 0;  // training loss summed since the last evaluation
  int64_t window_count = 0;    // training samples read (this rank) since the last evaluation
  int64_t window_skipped = 0;  // unreadable training samples left out since then
  nlohmann::json scaler = nlohmann::json::object();
  bool complete = false;

  nlohmann::json to_json() const {
    return {{"iteration", iteration},  {"epoch", position.epoch},
            {"batch", position.batch}, {"best_acc", best_acc},
            {"best_iteration", best_iteration}, {"window_loss_sum", window_loss_sum},
            {"window_count", window_count}, {"window_skipped", window_skipped},
            {"loss_scaler", scaler},
            {"complete", complete}};
  }
  static PhaseState from_json(const nlohmann::json& j) {
    PhaseState s;
    s.iteration = j.at("iteration").get<int64_t>();
    s.position = {j.at("epoch").get<int64_t>(), j.at("batch").get<int64_t>()};
    s.best_acc = j.at("best_acc").get<double>();
    s.best_iteration = j.at("best_iteration").get<int64_t>();
    s.window_loss_sum = j.at("window_loss_sum").get<double>();
    s.window_count = j.at("window_count").get<int64_t>();
    const auto skipped = j.find("window_skipped");  // absent in older checkpoints
    if (skipped != j.end() && skipped->is_number_integer() && skipped->get<int64_t>() >= 0)
      s.window_skipped = skipped->get<int64_t>();
    s.scaler = j.value("loss_scaler", nlohmann::json::object());
    s.complete = j.value("complete", false);
    return s;
  }
};

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s / 60) % 60);
  return fmt::format("{}m{:02d}s", s / 60, s % 60);
}

// A single self-overwriting status line on a terminal; silent otherwise (logs carry it).
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO)) {}
  ~ProgressLine() { clear(); }
  bool due() {
    if (!enabled_) return false;
    const auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(500)) return false;
    last_ = now;
    return true;
  }
  void show(const std::string& text) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void clear() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  Clock::time_point last_{};
};

class Phase {
 public:
  Phase(const TrainConfig& config, TrainInputs& inputs, RunLog& log)
      : config_(config), in_(inputs), log_(log), net_(*inputs.net),
        comm_(inputs.comm ? inputs.comm : std::make_shared<dist::Communicator>()),
        progress_(config.progress && comm_->is_root()) {}

  TrainResult run() {
    require(config_.schedule.total_steps > 0, "the number of iterations must be positive");
    require(config_.eval_every > 0, "--eval_every must be positive");
    const int64_t per_rank = config_.batch_size / comm_->world_size();
    require(config_.micro_batch == 0 || per_rank % config_.micro_batch == 0,
            fmt::format("--micro_batch {} must divide the per-rank batch {} (batch size {} over {} ranks)",
                        config_.micro_batch, per_rank, config_.batch_size, comm_->world_size()));
    net_.to(config_.device);
    const bool resumed = try_resume();
    if (state_.complete) return result();
    make_optimizer(resumed);
    data::Loader loader(in_.train_set, loader_options(), state_.position);
    DeviceFeeder feeder(loader, config_.device);
    net_.train();
    start_ = Clock::now();
    start_iteration_ = state_.iteration;
    while (state_.iteration < config_.schedule.total_steps) {
      auto batch = feeder.next();
      require(static_cast<bool>(batch), "internal: the training loader ended (it repeats forever)");
      train_step(*batch);
      state_.position = feeder.position();
      if (state_.iteration % config_.eval_every == 0 ||
          state_.iteration == config_.schedule.total_steps) {
        if (!evaluate_and_checkpoint()) return result();
      } else if (config_.ckpt_every > 0 && state_.iteration % config_.ckpt_every == 0 &&
                 can_save_between_evaluations()) {
        save_resumable();
      }
      if (config_.stop_after > 0 && state_.iteration - start_iteration_ >= config_.stop_after &&
          state_.iteration < config_.schedule.total_steps &&
          (can_save_between_evaluations() || state_.iteration % config_.eval_every == 0)) {
        save_resumable();
        progress_.clear();
        log_.info(fmt::format("stopping at iteration {} (stop_after); re-run to resume", state_.iteration));
        interrupted_ = true;
        return result();
      }
    }
    state_.complete = true;
    save_resumable();
    progress_.clear();
    log_.event("done", {{"iteration", state_.iteration}, {"best_acc", state_.best_acc},
                        {"best_iteration", state_.best_iteration}});
    return result();
  }

 private:
  // Between evaluations each rank holds its own BN running statistics and loss window, and
  // only rank 0's would be saved; with several ranks a resumable state is therefore written
  // only at evaluations, where both are combined across ranks.
  bool can_save_between_evaluations() const { return comm_->world_size() == 1; }

  TrainResult result() const {
    return TrainResult{state_.iteration, state_.best_acc, state_.best_iteration, diverged_,
                       interrupted_};
  }

  data::LoaderOptions loader_options() const {
    data::LoaderOptions o;
    o.batch_size = config_.batch_size;
    o.num_workers = config_.num_workers;
    o.prefetch_factor = config_.prefetch_factor;
    o.seed = config_.seed;
    o.rank = comm_->rank();
    o.world_size = comm_->world_size();
    return o;
  }

  bool try_resume() {
    const auto path = log_.dir() / "last.safetensors";
    if (!fs::exists(path)) {
      log_.event("start", {{"iteration", 0}});
      return false;
    }
    auto ckpt = io::load_checkpoint(path);
    require(ckpt.trainer.contains("iteration") && ckpt.trainer.contains("window_count"),
            path.string() + ": has no trainer state (not a resumable last.safetensors)");
    pruning::load_state(net_, ckpt.state, path.string());
    for (auto& [name, mask] : ckpt.masks) mask = mask.to(config_.device);
    in_.masks = ckpt.masks;
    check_trainer_state(ckpt.trainer, path.string(), config_.schedule.total_steps);
    state_ = PhaseState::from_json(ckpt.trainer);
    resume_momentum_ = std::move(ckpt.momentum);
    if (state_.complete) return true;  // trained already: nothing resumes, nothing to log
    log_.truncate_after(state_.iteration);
    log_.info(fmt::format("resuming {} at iteration {}", log_.dir().string(), state_.iteration));
    log_.event("resume", {{"iteration", state_.iteration}});
    return true;
  }

  void make_optimizer(bool resumed) {
    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (auto& item : net_.named_parameters()) params.emplace_back(item.key(), item.value());
    for (auto& [name, mask] : in_.masks) mask = mask.to(config_.device);
    optimizer_ = std::make_unique<MaskedSgd>(params, in_.masks, config_.sgd);
    if (resumed) optimizer_->load_momentum(resume_momentum_, "last.safetensors");
    scaler_ = LossScaler(LossScaler::Config{}, config_.device);
    scaler_.load(state_.scaler);
    if (comm_->world_size() > 1) {
      std::vector<torch::Tensor> parameters;
      for (auto& [name, p] : params) parameters.push_back(p);
      reducer_ = std::make_unique<dist::GradientReducer>(std::move(parameters), comm_);
    }
    window_loss_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(config_.device));
  }

  // Forward/backward over micro-batches (the gradient all-reduce overlapping the last one's
  // backward), (un)scaling, masked update. Nothing here waits for the device: the batch is
  // already there (DeviceFeeder), the loss is summed there, and an overflowing fp16 step is
  // skipped there (LossScaler, MaskedSgd::step(lr, apply)).
  void train_step(const data::Batch& batch) {
    const double lr = learning_rate(config_.schedule, state_.iteration);
    optimizer_->zero_grad();
    const int64_t n = batch.images.size(0);
    const int64_t chunk = config_.micro_batch > 0 ? config_.micro_batch : std::max<int64_t>(n, 1);
    // Mean over the global batch: each rank divides its summed loss by n * world_size and
    // the all-reduce sums the ranks' gradients.
    const double denominator = static_cast<double>(std::max<int64_t>(n, 1) * comm_->world_size());
    const bool scaling = models::needs_loss_scaling(config_.precision);
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t len = std::min(chunk, n - begin);
      auto images = batch.images.narrow(0, begin, len).to(config_.device, /*non_blocking=*/true);
      auto labels = batch.labels.narrow(0, begin, len).to(config_.device, /*non_blocking=*/true);
      torch::Tensor loss;
      {
        models::AutocastGuard autocast(config_.precision, config_.device);
        auto logits = net_.forward(images);
        loss = torch::nn::functional::cross_entropy(
            logits.to(torch::kFloat32), labels,
            torch::nn::functional::CrossEntropyFuncOptions()
                .reduction(torch::kSum)
                .label_smoothing(config_.label_smoothing));
      }
      if (reducer_ && begin + chunk >= n) reducer_->arm();  // the last chunk: final gradients
      if (scaling) {
        (loss * (scaler_.scale_tensor() / denominator)).backward();
      } else {
        (loss * (1.0 / denominator)).backward();
      }
      window_loss_ += loss.detach().to(torch::kFloat64);
    }
    state_.window_count += n;
    state_.window_skipped += batch.skipped;
    if (n == 0 && !reducer_) {
      // Every sample of the batch was unreadable: no step on nothing (momentum and weight
      // decay would still move the weights). The iteration counts, and the evaluation
      // interval's sample counts (metrics.jsonl) show it; an interval with no readable
      // sample at all stops the phase (evaluate_and_checkpoint). With several ranks the
      // others' samples still make a step: this rank's gradients are zero.
      ++state_.iteration;
      return;
    }
    if (reducer_) reducer_->finish();
    if (scaling) {
      const auto apply = scaler_.update(optimizer_->unscale_gradients(scaler_.scale_tensor()));
      optimizer_->step(lr, apply);
    } else {
      optimizer_->step(lr);
    }
    ++state_.iteration;
    show_progress(lr);
  }

  void show_progress(double lr) {
    if (!progress_.due()) return;
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    const auto done = state_.iteration - start_iteration_;
    const double ips = done * config_.batch_size / std::max(seconds, 1e-9);
    const double eta = (config_.schedule.total_steps - state_.iteration) * seconds / std::max<int64_t>(done, 1);
    // The training loss of the last evaluation: reading the running sum would wait for the device.
    const std::string loss = last_train_loss_ ? fmt::format("  loss {:.4f}", *last_train_loss_) : "";
    progress_.show(fmt::format("iter {}/{}{}  lr {:.4g}  {:.1f} img/s  ETA {}", state_.iteration,
                               config_.schedule.total_steps, loss, lr, ips, format_duration(eta)));
  }

  // The evaluation interval's training loss and sample counts, over all ranks.
  struct Window {
    double mean_loss = 0;
    int64_t samples = 0;  // readable samples trained on
    int64_t skipped = 0;  // unreadable ones left out
  };
  Window window_totals() {
    std::vector<torch::Tensor> sums{torch::tensor(
        {state_.window_loss_sum + window_loss_.item<double>(), static_cast<double>(state_.window_count),
         static_cast<double>(state_.window_skipped)},
        torch::kFloat64)};
    comm_->all_reduce_sum(sums);
    Window w;
    w.samples = static_cast<int64_t>(sums[0][1].item<double>());
    w.skipped = static_cast<int64_t>(sums[0][2].item<double>());
    w.mean_loss = sums[0][0].item<double>() / std::max(sums[0][1].item<double>(), 1.0);
    return w;
  }

  // The reference averages BN running statistics across devices before every evaluation.
  void average_batchnorm_statistics() {
    if (comm_->world_size() == 1) return;
    std::vector<torch::Tensor> stats;
    for (auto& item : net_.named_buffers()) {
      const auto& name = item.key();
      if (name.find("running_mean") != std::string::npos || name.find("running_var") != std::string::npos) {
        stats.push_back(item.value());
      }
    }
    comm_->all_reduce_sum(stats);
    for (auto& s : stats) s.div_(comm_->world_size());
  }

  // Returns false when training must stop (NaN loss).
  bool evaluate_and_checkpoint() {
    progress_.clear();
    const Window window = window_totals();
    const double train_loss = window.mean_loss;
    const int64_t first = (state_.iteration - 1) / config_.eval_every * config_.eval_every + 1;
    // A loss of 0 over no sample is no result: stop before it is logged or checkpointed.
    require(window.samples > 0,
            fmt::format("{}: no readable training sample in iterations {}..{} ({} unreadable, "
                        "skipped; the warnings above name them): the training data is unusable",
                        log_.dir().string(), first, state_.iteration, window.skipped));
    last_train_loss_ = train_loss;
    const double lr = learning_rate(config_.schedule, state_.iteration - 1);
    if (std::isnan(train_loss)) {
      diverged_ = true;
      log_.warn(fmt::format("mean training loss is NaN at iteration {}; stopping this phase",
                            state_.iteration));
      log_.event("diverged", {{"iteration", state_.iteration}});
      return false;
    }
    average_batchnorm_statistics();
    auto eo = rank_eval_options(comm_, config_.eval_batch_size, config_.num_workers,
                                config_.device, in_.val_class_subset);
    eo.precision = config_.precision;
    const auto val = eval::evaluate(net_, in_.val_set, eo);
    require(val.count > 0, fmt::format("{}: the validation set {} has no readable image ({} skipped); "
                                       "no accuracy can be measured",
                                       log_.dir().string(), in_.val_set->describe(), val.skipped));
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    const double ips = (state_.iteration - start_iteration_) * config_.batch_size / std::max(seconds, 1e-9);
    const bool improved = val.accuracy > state_.best_acc;
    if (improved) {
      state_.best_acc = val.accuracy;
      state_.best_iteration = state_.iteration;
    }
    log_.info(fmt::format("iter {:>6}  train_loss {:.4f}  val_acc {:.2f}%  val_nll {:.4f}  lr {:.4g}  "
                          "{:.1f} img/s{}{}",
                          state_.iteration, train_loss, 100 * val.accuracy, val.nll, lr, ips,
                          window.skipped > 0 ? fmt::format("  ({} of {} training samples unreadable, skipped)",
                                                           window.skipped, window.samples + window.skipped)
                                             : std::string(),
                          improved ? "  *best*" : ""));
    log_.event("eval", {{"iteration", state_.iteration}, {"train_loss", train_loss},
                        {"val_acc", val.accuracy}, {"val_nll", val.nll}, {"val_ece", val.ece},
                        {"lr", lr}, {"images_per_sec", ips}, {"best_acc", state_.best_acc},
                        {"skipped", val.skipped}, {"val_count", val.count},
                        {"train_samples", window.samples}, {"train_skipped", window.skipped}});
    state_.window_loss_sum = 0;
    state_.window_count = 0;
    state_.window_skipped = 0;
    window_loss_.zero_();
    if (improved) save(log_.dir() / "best_acc.safetensors", /*with_momentum=*/false);
    if (config_.periodic_ckpt) save(log_.dir() / io::iteration_file(state_.iteration), false);
    if (config_.ckpt_every == 0 || state_.iteration % config_.ckpt_every == 0) save_resumable();
    return true;
  }

  void save_resumable() {
    state_.window_loss_sum += window_loss_.item<double>();
    window_loss_.zero_();
    save(log_.dir() / "last.safetensors", /*with_momentum=*/true);
  }

  void save(const fs::path& path, bool with_momentum) {
    state_.scaler = scaler_.state();
    if (!comm_->is_root()) return;
    io::Checkpoint ckpt;
    ckpt.iteration = state_.iteration;
    ckpt.state = pruning::snapshot_state(net_);
    ckpt.masks = in_.masks;
    if (with_momentum) ckpt.momentum = optimizer_->momentum();
    ckpt.config = in_.config;
    if (state_.best_acc >= 0) ckpt.best_acc = state_.best_acc;
    ckpt.trainer = state_.to_json();
    io::save_checkpoint(path, ckpt);
  }

  const TrainConfig& config_;
  TrainInputs& in_;
  RunLog& log_;
  models::Network& net_;
  dist::CommunicatorPtr comm_;
  ProgressLine progress_;
  PhaseState state_;
  std::map<std::string, torch::Tensor> resume_momentum_;
  std::unique_ptr<MaskedSgd> optimizer_;
  std::unique_ptr<dist::GradientReducer> reducer_;  // several ranks only
  LossScaler scaler_;
  torch::Tensor window_loss_;               // on the device; read at evaluations only
  std::optional<double> last_train_loss_;  // for the progress line
  Clock::time_point start_;
  int64_t start_iteration_ = 0;
  bool diverged_ = false;
  bool interrupted_ = false;
};

}  // namespace

eval::EvalOptions rank_eval_options(const dist::CommunicatorPtr& comm, int64_t batch_size,
                                    int num_workers, torch::Device device,
                                    std::vector<int64_t> class_subset) {
  eval::EvalOptions eo;
  eo.batch_size = batch_size;
  eo.num_workers = num_workers;
  eo.device = device;
  eo.class_subset = std::move(class_subset);
  if (comm) {
    eo.rank = comm->rank();
    eo.world_size = comm->world_size();
    eo.all_reduce_sum = [comm](torch::Tensor& t) {
      std::vector<torch::Tensor> v{t};
      comm->all_reduce_sum(v);
    };
  }
  return eo;
}

TrainResult run_training(const TrainConfig& config, TrainInputs& inputs, RunLog& log) {
  const auto result = Phase(config, inputs, log).run();
  if (inputs.comm) inputs.comm->barrier();  // rank 0's files exist before any rank reads them
  return result;
}

}  // namespace lth::train
