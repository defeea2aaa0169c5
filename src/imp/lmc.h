#pragma once
// Instability analysis (linear mode connectivity; Frankle, Dziugaite, Roy & Carbin 2020).
//
// From a start (weights and mask) two copies are trained with different data orders and
// augmentation streams (keyed by copy), for the same iterations and schedule. The network
// is then evaluated along the straight line between the two results,
//   theta(alpha) = (1 - alpha) * theta_1 + alpha * theta_2,   alpha = 0, 1/(K-1), ..., 1,
// on the validation set (the hold-out where one is configured) and on a fixed sample of
// the training images. The *instability* is the largest error on the path minus the mean
// of the two end points' errors: ~0 means the start is stable to SGD noise (the two copies
// land in one linearly connected minimum), which is what rewinding needs.
//
// Batch-norm statistics: by default they are recomputed at every alpha from `bn_batches`
// training batches (a cumulative average, as SWA's update_bn). Averaging two networks'
// weights does not average the statistics their activations have, so interpolated running
// statistics make every interior point look worse than it is (Jordan et al. 2022, REPAIR);
// Frankle et al. do not say which they used. `bn_batches = 0` keeps the interpolated ones.
//
// Everything is resumable: the copies train in DIR/copy_a, DIR/copy_b like any phase, and
// DIR/lmc.json is written last (skipped when complete). Works with any number of ranks.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "imp/experiment.h"
#include "io/checkpoint.h"
#include "pruning/mask.h"

namespace lth::imp {

struct LmcOptions {
  int64_t iterations = 0;          // per copy; 0 = the config's imp.cycle_iterations
  bool constant_lr = false;        // default: the cycle's warm-up + cosine schedule
  int points = 30;                 // alphas on the path, both ends included (>= 2)
  int64_t bn_batches = 50;         // batches to recompute BN statistics at each alpha; 0 = interpolate them
  int64_t train_sample = 10000;    // training images the path is also evaluated on (0 = none)
  bool same_data_order = false;    // both copies see the same data: isolates nondeterminism
};

struct LmcStart {
  io::Checkpoint weights;  // parameters to start from
  pruning::MaskSet masks;  // empty = dense over the prunable set
  std::string source;      // where it came from, for messages and lmc.json
};

struct LmcPath {
  std::vector<double> alphas;
  std::vector<double> val_error;    // fractions
  std::vector<double> train_error;  // empty when train_sample = 0
};

// Max error along the path minus the mean of the two end errors. Throws std::invalid_argument
// for fewer than two points.
double instability(const std::vector<double>& errors);

// Runs (or resumes, or reads back) the analysis in `dir`; returns lmc.json's content:
// {"complete", "source", "iterations", "points", "bn", "alphas", "val_error", "train_error",
//  "val_instability", "train_instability", "density", "selection"}, or {"complete": false,
// "interrupted": true} when run.stop_after stopped a copy. `key` keeps the copies' data
// streams apart from every other analysis of the same run.
nlohmann::json run_lmc(const Experiment& experiment, const LmcStart& start, const LmcOptions& options,
                       const std::filesystem::path& dir, uint64_t key);

// Reads a complete lmc.json, or nullopt.
std::optional<nlohmann::json> completed_lmc(const std::filesystem::path& dir);

// The rewind-point sweep: one analysis per saved iteration of the run's rewind phase
// (RUN/iter_XXXXXX.safetensors, dense, or with `masks` when given), in OUT/rewind_<N>/,
// then OUT/sweep.json, sweep.csv and instability_vs_rewind.{png,svg}. A point the run did
// not save is a UserError listing the ones it has.
nlohmann::json run_rewind_sweep(const Experiment& experiment, const std::filesystem::path& run,
                                const std::vector<int64_t>& points, const pruning::MaskSet& masks,
                                const LmcOptions& options, const std::filesystem::path& out);

}  // namespace lth::imp
