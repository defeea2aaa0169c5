// `lth prepare-imagenet --from DIR --to DATA_ROOT`: the official ILSVRC2012 downloads in DIR
// (ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar, ILSVRC2012_devkit_t12.tar.gz) written as
// lth's folder layout (imagenet/train/<wnid>/, imagenet/val/<wnid>/), validation images
// labelled through the devkit's meta.mat. Resumable, never overwriting (data/ilsvrc/official.h).
// Declared in cli/commands.h: void add_prepare_imagenet_command(CLI::App& app);
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/commands.h"
#include "data/ilsvrc/official.h"

namespace lth::cli {

void add_prepare_imagenet_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "prepare-imagenet", "Write lth's folder layout from the official ILSVRC2012 tars and devkit (no manual unpacking)");
  struct Flags {
    std::string from, to;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--from", f->from,
                  "folder holding ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar, ILSVRC2012_devkit_t12.tar.gz")
      ->required();
  cmd->add_option("--to", f->to, "data root to write (imagenet/train, imagenet/val); a rerun resumes")->required();
  cmd->callback([f] {
    const auto report = data::ilsvrc::prepare_imagenet(f->from, f->to);
    for (const auto& p : report.problems) spdlog::warn("{}", p);
    for (const auto& [set, n] : report.written) std::cout << set << ": " << n << " images\n";
    if (report.kept > 0) std::cout << report.kept << " files were already in place (kept)\n";
    std::cout << "written to " << f->to << "\n";
  });
}

}  // namespace lth::cli
