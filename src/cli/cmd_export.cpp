// `lth export --ckpt TICKET --to FILE [--fold_bn] [--dtype float32|bfloat16|float16]`: writes
// a ticket as a compact inference file (io/compact_ticket.h, docs/FORMATS.md): the kept
// weights and one bit per weight of mask, so the file shrinks with the density. Never
// replaces an existing FILE; every lth command that takes a checkpoint reads the result.
// Declared in cli/commands.h: void add_export_command(CLI::App& app);
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "io/checkpoint.h"
#include "io/compact_ticket.h"

namespace lth::cli {
namespace {

struct ExportFlags {
  std::string ckpt;
  std::string to;
  bool fold_bn = false;
  std::string dtype = "float32";
};

void run_export(const ExportFlags& f) {
  io::ExportOptions options;
  options.fold_bn = f.fold_bn;
  options.dtype = io::parse_values_dtype(f.dtype);
  const auto ckpt = io::load_checkpoint(f.ckpt);
  const auto s = io::export_compact_ticket(f.to, f.ckpt, ckpt, options);
  const auto file_bytes = static_cast<long long>(std::filesystem::file_size(f.to));
  const double density = s.total ? static_cast<double>(s.kept) / s.total : 1.0;
  std::printf(
      "wrote %s: %lld bytes; %lld masked tensors keep %lld of %lld weights (density %.4f)\n",
      f.to.c_str(), file_bytes, static_cast<long long>(s.masked_tensors),
      static_cast<long long>(s.kept), static_cast<long long>(s.total), density);
  std::printf(
      "  masked tensors: %lld bytes as values (%s) + mask bits, %.4f of their %lld dense "
      "bytes (density + 1/32 = %.4f for float32)\n",
      static_cast<long long>(s.compact_masked_bytes), f.dtype.c_str(),
      s.dense_masked_bytes
          ? static_cast<double>(s.compact_masked_bytes) / static_cast<double>(s.dense_masked_bytes)
          : 0.0,
      static_cast<long long>(s.dense_masked_bytes), density + 1.0 / 32);
  const std::string folded =
      f.fold_bn ? ", " + std::to_string(s.folded_bns) + " BatchNorms folded into their convs" : "";
  std::printf("  other tensors: %lld bytes as they are%s\n",
              static_cast<long long>(s.unmasked_bytes), folded.c_str());
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export", "Write a ticket as a compact inference file: kept weights + 1 bit per weight");
  auto f = std::make_shared<ExportFlags>();
  cmd->add_option("--ckpt", f->ckpt, "the ticket (an lth checkpoint with masks)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--to", f->to, "the compact file to write (never overwritten)")->required();
  cmd->add_flag("--fold_bn", f->fold_bn,
                "fold each BatchNorm into the convolution before it (inference only)");
  cmd->add_option("--dtype", f->dtype, "dtype of the stored kept weights")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}))
      ->capture_default_str();
  cmd->callback([f] { run_export(*f); });
}

}  // namespace lth::cli
