// `lth convert --from FILE --to FILE`: between the reference's Flax checkpoints (.ckpt) and
// lth's safetensors checkpoints, either way. The direction comes from --from's content (never
// its name); --to must carry the other format's extension, so that a typo cannot produce a
// file named like the wrong format. --to must not exist. Prints what was converted and what
// was not (io/flax_checkpoint.h). Declared in cli/commands.h: void add_convert_command(CLI::App& app);
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "io/checkpoint_sniff.h"
#include "io/flax_checkpoint.h"

namespace lth::cli {
namespace {

namespace fs = std::filesystem;

struct ConvertFlags {
  std::string from;
  std::string to;
};

void run_convert(const ConvertFlags& f) {
  require(!fs::exists(fs::symlink_status(f.to)),
          "--to " + f.to + ": already exists; refusing to overwrite (choose a new name)");
  const auto format = io::detect_checkpoint_format(f.from);
  const std::string ext = fs::path(f.to).extension().string();
  std::vector<std::string> notes;
  if (format == io::CheckpointFormat::Reference) {
    require(ext == ".safetensors", "--to " + f.to + ": " + f.from +
                                       " is a reference checkpoint, so the output is lth's "
                                       "safetensors: name it *.safetensors");
    const auto ckpt = io::read_flax_checkpoint(f.from, &notes);
    io::save_checkpoint(f.to, ckpt);
    notes.push_back("wrote " + f.to + " (lth checkpoint; lth eval/train use padding 'same' with it)");
  } else {
    require(ext == ".ckpt", "--to " + f.to + ": " + f.from +
                                " is an lth checkpoint, so the output is the reference's format: "
                                "name it *.ckpt");
    const auto ckpt = io::load_checkpoint(f.from);
    notes.push_back("read " + f.from + " (lth checkpoint, iteration " + std::to_string(ckpt.iteration) + ")");
    io::write_flax_checkpoint(f.to, ckpt, &notes);
  }
  for (const auto& line : notes) std::cout << line << "\n";
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert", "Convert a checkpoint between the reference's Flax .ckpt and lth's .safetensors");
  auto f = std::make_shared<ConvertFlags>();
  cmd->add_option("--from", f->from, "checkpoint to read (either format, recognised by content)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--to", f->to, "file to write: *.safetensors from a reference file, *.ckpt from an lth one")
      ->required();
  cmd->callback([f] { run_convert(*f); });
}

}  // namespace lth::cli
