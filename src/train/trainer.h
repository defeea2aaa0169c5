#pragma once
// One training phase of the reference script: masked SGD on a schedule, evaluation every
// `eval_every` iterations, best-accuracy checkpoint, optional periodic checkpoints, and a
// resumable state (last.safetensors) so an interrupted phase continues bit-identically.
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "eval/evaluator.h"
#include "dist/communicator.h"
#include "models/network.h"
#include "models/precision.h"
#include "pruning/mask.h"
#include "train/masked_sgd.h"
#include "train/run_log.h"
#include "train/schedule.h"

namespace lth::train {

struct TrainConfig {
  ScheduleConfig schedule;  // total_steps = the phase's iterations
  SgdConfig sgd;
  double label_smoothing = 0.0;
  int64_t batch_size = 2048;     // global batch
  int64_t micro_batch = 0;       // per-chunk size for gradient accumulation; 0 = whole batch
  int64_t eval_every = 1000;
  int64_t eval_batch_size = 256;
  bool periodic_ckpt = false;    // iter_XXXXXX.safetensors at every evaluation
  int64_t ckpt_every = 0;        // resumable last.safetensors cadence; 0 = at every evaluation
  models::Precision precision = models::Precision::kFloat32;
  int num_workers = 2;
  int prefetch_factor = 2;
  uint64_t seed = 0;
  torch::Device device = torch::kCPU;
  bool progress = true;          // live progress line when stderr is a terminal
  // Stop resumably after this many iterations in this invocation (0 = run to the end):
  // for time-limited cluster jobs that requeue themselves.
  int64_t stop_after = 0;
};

struct TrainInputs {
  models::NetworkPtr net;
  pruning::MaskSet masks;
  data::DatasetPtr train_set;
  data::DatasetPtr val_set;
  std::vector<int64_t> val_class_subset;
  nlohmann::json config = nlohmann::json::object();  // stored in checkpoint metadata
  dist::CommunicatorPtr comm;                         // null = single process
};

struct TrainResult {
  int64_t iterations = 0;
  double best_acc = -1;
  int64_t best_iteration = 0;
  bool diverged = false;     // stopped on a NaN training loss
  bool interrupted = false;  // stopped by stop_after; last.safetensors resumes it
};

// Evaluation settings for this rank: its share of the samples, partial sums combined over
// `comm` (null = single process).
eval::EvalOptions rank_eval_options(const dist::CommunicatorPtr& comm, int64_t batch_size,
                                    int num_workers, torch::Device device,
                                    std::vector<int64_t> class_subset);

// Trains in `log.dir()`. If that folder holds last.safetensors from an interrupted run of
// the same phase, training resumes from it (the network, masks and optimizer state in
// `inputs` are replaced by the checkpoint's).
TrainResult run_training(const TrainConfig& config, TrainInputs& inputs, RunLog& log);

}  // namespace lth::train
