// `lth make-shards --from ROOT --to DIR --format tfrecord|webdataset [--shard_size N]`: a data
// root in the folder layout as shards that `--data_root DIR` then reads (data/shards/convert.h):
// a TFDS data dir (imagenet2012, imagenet_v2, imagenet_r, imagenet_a, imagenet_sketch) or
// WebDataset tars (train/, val/, classes.txt). Samples keep the folder reader's order.
// --from may also hold the official ILSVRC2012 tars + devkit: streamed, resumable (convert.h).
// Declared in cli/commands.h: void add_make_shards_command(CLI::App& app);
#include <iostream>

#include "cli/commands.h"
#include "common/paths.h"
#include "data/ilsvrc/official.h"
#include "data/shards/convert.h"

namespace lth::cli {

void add_make_shards_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("make-shards",
                                 "Convert a folder-layout data root to TFDS TFRecord or WebDataset tar shards");
  struct Flags {
    std::string from, to, format = "tfrecord";
    int64_t shard_size = 1024;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--from", f->from,
                  "data root in the folder layout (imagenet/train, imagenet/val, ...), or the folder of the "
                  "official ILSVRC2012 tars and devkit (streamed, resumable)")
      ->required();
  cmd->add_option("--to", f->to, "folder to create (must not exist or be empty)")->required();
  cmd->add_option("--format", f->format, "tfrecord (a TFDS data dir) or webdataset (tar shards)")
      ->capture_default_str();
  cmd->add_option("--shard_size", f->shard_size, "samples per shard (TFDS's ImageNet has ~1251)")
      ->capture_default_str();
  cmd->callback([f] {
    data::shards::ConvertOptions o;
    o.from = user_folder(f->from);
    o.to = user_folder(f->to);
    o.format = data::shards::parse_shard_format(f->format);
    o.shard_size = f->shard_size;
    // The official ILSVRC2012 tars are streamed straight into shards (resumable).
    const auto official = data::ilsvrc::find_official(o.from);
    const bool tars = official.train_tar || official.val_tar;
    for (const auto& [set, n] : tars ? data::shards::convert_official_to_shards(o)
                                     : data::shards::convert_folders_to_shards(o)) {
      std::cout << set << ": " << n << " samples\n";
    }
    std::cout << "written to " << f->to << "\n";
  });
}

}  // namespace lth::cli
