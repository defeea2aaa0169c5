#include "imp/branches.h"

#include <fmt/format.h>

#include <functional>

#include "common/error.h"
#include "common/registry.h"
#include "common/rng.h"
#include "io/run_layout.h"
#include "imp/pai_branches.h"
#include "pruning/init_scores.h"
#include "pruning/shuffle.h"
#include "pruning/strategy.h"

namespace lth::imp {
namespace {

namespace fs = std::filesystem;

io::Checkpoint load_existing(const fs::path& path, const std::string& why) {
  require(fs::exists(path), path.string() + ": missing (" + why + ")");
  return io::load_checkpoint(path);
}

// The main line's mask for cycle k: the masks of its init.safetensors.
pruning::MaskSet main_masks(const BranchContext& c) {
  return load_existing(io::cycle_dir(c.run, c.cycle) / "init.safetensors",
                       "the main line's cycle must start before its branches")
      .masks;
}

io::Checkpoint rewind_point(const BranchContext& c, int64_t iteration) {
  return load_existing(c.run / io::iteration_file(iteration),
                       "rewinding needs this saved iteration");
}

io::Checkpoint previous_trained(const BranchContext& c) {
  return load_existing(io::cycle_dir(c.run, c.cycle - 1) / "best_acc.safetensors",
                       "the previous cycle's trained weights");
}

using BranchFn = std::function<BranchStart(const BranchContext&)>;

const Registry<BranchFn>& registry() {
  static const Registry<BranchFn> r = [] {
    Registry<BranchFn> reg("branch");
    reg.add("reinit", [](const BranchContext& c) {
      BranchStart s{main_masks(c), {}};
      auto fresh = c.experiment.make_network(fmt::format("reinit/{}", c.cycle));
      s.weights.state = pruning::snapshot_state(*fresh);
      s.weights.config = c.experiment.config_json();  // this run's network, padding included
      return s;
    });
    reg.add("random_pruning", [](const BranchContext& c) {
      const auto seed = Rng::keyed(c.experiment.seed(), "random_pruning", c.cycle).next_u64();
      return BranchStart{pruning::random_masks_like(main_masks(c), seed),
                         rewind_point(c, c.experiment.config().rewind_iterations)};
    });
    reg.add("rewind_init", [](const BranchContext& c) {
      return BranchStart{main_masks(c), rewind_point(c, 0)};
    });
    reg.add("lr_rewind", [](const BranchContext& c) {
      return BranchStart{main_masks(c), previous_trained(c)};
    });
    reg.add("finetune", [](const BranchContext& c) {
      return BranchStart{main_masks(c), previous_trained(c)};
    });
    // Pruning at initialisation (imp/pai_branches.h): the ticket's count, scored at the
    // rewind point, or at iteration 0 for <strategy>_iter0.
    for (const auto& strategy : pruning::init_strategy_names()) {
      reg.add(strategy, [strategy](const BranchContext& c) {
        return pai_branch_start(strategy, c, main_masks(c),
                                rewind_point(c, c.experiment.config().rewind_iterations));
      });
      const auto at_zero = strategy.substr(0, strategy.rfind("_init")) + "_iter0";
      reg.add(at_zero, [strategy](const BranchContext& c) {
        return pai_branch_start(strategy, c, main_masks(c), rewind_point(c, 0));
      });
    }
    reg.add("shuffle_layerwise", [](const BranchContext& c) {
      const auto seed = Rng::keyed(c.experiment.seed(), "shuffle_layerwise", c.cycle).next_u64();
      return BranchStart{pruning::shuffle_within_layers(main_masks(c), seed),
                         rewind_point(c, c.experiment.config().rewind_iterations)};
    });
    return reg;
  }();
  return r;
}

// "rewind_<N>" names a saved iteration; returns N or -1.
int64_t rewind_iteration(const std::string& name) {
  const std::string prefix = "rewind_";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return -1;
  const auto digits = name.substr(prefix.size());
  if (digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  // std::stoll would throw out_of_range (an internal error) on 20 digits.
  require(digits.size() <= 12, "imp.branches: '" + name + "': rewind iteration out of range");
  return std::stoll(digits);
}

}  // namespace

void check_branch_name(const std::string& name) {
  if (rewind_iteration(name) >= 0 || name == kStabilityBranch || registry().contains(name)) return;
  std::string known;
  for (const auto& n : branch_names()) known += (known.empty() ? "" : ", ") + n;
  throw UserError("unknown branch '" + name + "' (known: " + known + ")");
}

BranchStart branch_start(const std::string& name, const BranchContext& context) {
  const int64_t iteration = rewind_iteration(name);
  if (iteration >= 0) return BranchStart{main_masks(context), rewind_point(context, iteration)};
  return registry().get(name)(context);
}

BranchSchedule branch_schedule(const std::string& name) {
  if (name == "finetune") return BranchSchedule{/*constant_lr=*/true, /*lr_scale=*/0.01};
  return BranchSchedule{};
}

std::vector<std::string> branch_names() {
  auto names = registry().names();
  names.push_back("rewind_<N>");
  names.push_back(kStabilityBranch);
  return names;
}

std::vector<std::string> parse_branch_list(const std::string& comma_separated) {
  std::vector<std::string> out;
  std::string item;
  for (size_t i = 0; i <= comma_separated.size(); ++i) {
    if (i == comma_separated.size() || comma_separated[i] == ',') {
      if (!item.empty()) {
        check_branch_name(item);
        out.push_back(item);
      }
      item.clear();
    } else if (comma_separated[i] != ' ') {
      item += comma_separated[i];
    }
  }
  return out;
}

}  // namespace lth::imp
