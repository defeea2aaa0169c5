#pragma once
// Control branches of an IMP run, chosen by name. Each reuses the main line's masks of
// cycle k (k >= 1) and changes one thing, so the report can tell a ticket from a lucky mask:
//   reinit          same masks, fresh random weights (Frankle & Carbin's control)
//   random_pruning  same per-layer densities, random positions, rewound weights
//   rewind_init     same masks, weights rewound to iteration 0 (the original LTH setting)
//   rewind_<N>      same masks, weights rewound to the saved iteration N (iter_<N>)
//   lr_rewind       same masks, keep cycle k-1's trained weights, replay the LR schedule
//   finetune        same masks, keep cycle k-1's trained weights, constant LR = 0.01 x peak
//   lmc             not a training line: the instability of every cycle's ticket (imp/lmc.h),
//                   RUN/branches/lmc/<k>/lmc.json, shown as a column of the report
#include <filesystem>
#include <string>
#include <vector>

#include "imp/cycle.h"

namespace lth::imp {

struct BranchContext {
  const Experiment& experiment;
  std::filesystem::path run;  // the run folder (main line)
  int cycle = 1;
};

struct BranchStart {
  pruning::MaskSet masks;
  io::Checkpoint weights;  // parameters to start from (masked afterwards)
};

struct BranchSchedule {
  bool constant_lr = false;
  double lr_scale = 1.0;  // times the configured peak LR
};

// UserError for unknown names (lists the known ones). Reads the checkpoints it needs, so
// call it only when the branch cycle actually starts.
BranchStart branch_start(const std::string& name, const BranchContext& context);
BranchSchedule branch_schedule(const std::string& name);
void check_branch_name(const std::string& name);
std::vector<std::string> branch_names();
std::vector<std::string> parse_branch_list(const std::string& comma_separated);

// The name of the ticket-stability "branch" (run by imp.cpp itself, not by branch_start).
inline constexpr const char* kStabilityBranch = "lmc";

}  // namespace lth::imp
