// `lth data check --data_root DIR [--full] ...`: whether the data under DIR is what an
// ImageNet run needs (data/check/data_check.h). The table goes to stdout, each problem to
// stderr as one line; exit status 2 when there is any problem (a needed set missing or broken).
// Declared in cli/commands.h: void add_data_command(CLI::App& app);
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "data/check/data_check.h"
#include "imp/config.h"

namespace lth::cli {

void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Data tools: `lth data check`");
  data->require_subcommand(1);
  auto* cmd = data->add_subcommand(
      "check", "Check a data root before a run: sets, counts, classes, label order, a decode sample, input throughput");
  auto o = std::make_shared<data::check::CheckOptions>();
  auto root = std::make_shared<std::string>();
  auto config = std::make_shared<std::string>();
  cmd->add_option("--data_root", *root, "the data root a run would read (any layout lth reads)");
  cmd->add_option("--config", *config, "an `lth imp` TOML config: its data.root, data.val_labels, batch size");
  cmd->add_option("--val_labels", o->val_labels, "label file of a flat validation folder (docs/DATA.md)");
  cmd->add_option("--v2_variant", o->v2_variant, "ImageNet-V2 release folder: matched-frequency, threshold0.7, top-images")
      ->capture_default_str();
  cmd->add_flag("--full", o->full, "decode every file (default: a random sample per set)");
  cmd->add_option("--sample", o->sample, "images decoded per set in the quick form")->capture_default_str();
  cmd->add_flag("--subset", o->subset,
                "the data is a deliberate subset (e.g. make-imagenet --classes K): compare the sets with each "
                "other, not with the official counts");
  cmd->add_option("--image_size", o->image_size, "input size for the decode and throughput check")->capture_default_str();
  cmd->add_option("--batch_size", o->global_batch, "global batch for the cores estimate")->capture_default_str();
  cmd->add_option("--step_rate", o->step_rate, "training steps per second for the cores estimate")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the decode sample")->capture_default_str();
  cmd->callback([o, root, config] {
    if (!config->empty()) {
      imp::ImpConfig c;
      imp::apply_toml_file(c, *config);
      if (root->empty()) *root = c.data_root;
      if (o->val_labels.empty()) o->val_labels = c.val_labels;
      o->global_batch = c.batch_size;
      if (c.image_size > 0) o->image_size = c.image_size;
    }
    require(!root->empty(), "lth data check needs --data_root (or --config with data.root)");
    o->data_root = *root;
    const auto report = data::check::check_data(*o);
    std::cout << data::check::format_report(report, *o) << std::flush;
    for (const auto& list : {report.problems, report.unreadable}) {
      for (const auto& p : list) {
        const std::string line = "problem: " + p + "\n";
        std::fwrite(line.data(), 1, line.size(), stderr);
      }
    }
    require(report.ok(), "data check: " + std::to_string(report.problems.size() + report.unreadable.size()) +
                             " problems under " + *root + " (listed above)");
  });
}

}  // namespace lth::cli
