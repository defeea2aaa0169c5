// `lth make-imagenet --out DIR`: writes a small synthetic data root in the reference's
// folder layout (imagenet/train, imagenet/val, imagenet-v2, imagenet-r, imagenet-a,
// imagenet-sketch) with class-dependent, learnable content and the odd files real ImageNet
// has (grayscale, CMYK, PNG named .JPEG, truncated, empty). See data/imagenet/synthetic_imagenet.h.
// Declared in cli/commands.h: void add_make_imagenet_command(CLI::App& app);
#include <iostream>

#include "cli/commands.h"
#include "data/ilsvrc/downloads.h"
#include "data/imagenet/synthetic_imagenet.h"
#include "data/shards/convert.h"
#include "common/error.h"
#include "common/paths.h"

#include <filesystem>

namespace lth::cli {

void add_make_imagenet_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("make-imagenet",
                                 "Write a synthetic ImageNet-layout data root for tests and demos");
  auto o = std::make_shared<data::imagenet::MakeImagenetOptions>();
  auto no_odd = std::make_shared<bool>(false);
  auto out = std::make_shared<std::string>();
  cmd->add_option("--out", *out, "folder to create (must not exist or be empty)")->required();
  cmd->add_option("--classes", o->classes, "classes: the first K ImageNet-1k wnids")
      ->capture_default_str();
  cmd->add_option("--per_class", o->per_class, "train images per class")->capture_default_str();
  cmd->add_option("--test_per_class", o->test_per_class,
                  "images per class in val, V2, R, A, Sketch (0 = max(2, per_class/4))")
      ->capture_default_str();
  cmd->add_option("--size", o->size, "nominal long side in pixels (500 = ImageNet-like)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed: the output depends on it alone")->capture_default_str();
  cmd->add_option("--quality", o->quality, "JPEG quality")->capture_default_str();
  cmd->add_flag("--no_odd_files", *no_odd,
                "leave out the grayscale/CMYK/PNG/truncated/empty files");
  auto format = std::make_shared<std::string>("folders");
  auto shard_size = std::make_shared<int64_t>(64);
  cmd->add_option("--format", *format,
                  "folders, tfrecord (a TFDS data dir) or webdataset (tar shards); shards are "
                  "converted from the same pictures (lth make-shards); or ImageNet as downloaded: "
                  "official (ILSVRC2012 tars + devkit with a permuted id order), kaggle, flat (flat val + "
                  "label files)")
      ->capture_default_str();
  cmd->add_option("--shard_size", *shard_size, "samples per shard (tfrecord, webdataset)")->capture_default_str();
  cmd->callback([o, no_odd, out, format, shard_size] {
    *out = user_folder(*out).string();  // "x/" is x: the shards' scratch folder goes beside it
    o->out = *out;
    o->odd_files = !*no_odd;
    if (*format == "official" || *format == "kaggle" || *format == "flat") {
      // ImageNet as downloaded (data/ilsvrc/downloads.h), from a scratch folder layout.
      const auto layout = data::ilsvrc::parse_download_layout(*format);
      const std::filesystem::path to = *out;
      require(!std::filesystem::exists(to) || std::filesystem::is_empty(to),
              "--out " + *out + " exists and is not empty");
      o->out = to.lexically_normal().string() + ".folders.tmp";
      std::filesystem::remove_all(o->out);
      const auto report = data::imagenet::make_synthetic_imagenet(*o);
      data::ilsvrc::write_download_layout(o->out, to, layout, o->seed);
      std::filesystem::remove_all(o->out);
      std::cout << report.bytes << " bytes of pictures as the " << *format << " download layout in " << *out << "\n";
      return;
    }
    if (*format != "folders") {
      // The folder layout goes to a scratch folder next to --out, then into shards.
      data::shards::ConvertOptions c;
      try {
        c.format = data::shards::parse_shard_format(*format);
      } catch (const UserError&) {  // its message names only the shard formats
        throw UserError("--format must be folders, tfrecord or webdataset, not '" + *format + "'");
      }
      c.to = *out;
      c.shard_size = *shard_size;
      c.from = std::filesystem::path(*out).lexically_normal().string() + ".folders.tmp";
      require(!std::filesystem::exists(c.to) || std::filesystem::is_empty(c.to),
              "--out " + *out + " exists and is not empty");
      std::filesystem::remove_all(c.from);
      o->out = c.from;
      const auto report = data::imagenet::make_synthetic_imagenet(*o);
      for (const auto& [set, n] : data::shards::convert_folders_to_shards(c))
        std::cout << set << ": " << n << " samples\n";
      std::filesystem::copy_file(c.from / "manifest.json", c.to / "manifest.json");
      std::filesystem::remove_all(c.from);
      std::cout << report.bytes << " bytes of pictures as " << *format << " shards in " << *out << "\n";
      return;
    }
    const auto report = data::imagenet::make_synthetic_imagenet(*o);
    for (const auto& [layout, n] : report.images) std::cout << layout << ": " << n << " files\n";
    for (const auto& [kind, path] : report.odd_files)
      std::cout << "odd file (" << kind << "): " << path << "\n";
    std::cout << report.bytes << " bytes in " << *out << " (manifest.json describes them)\n";
  });
}

}  // namespace lth::cli
