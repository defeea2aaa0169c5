#pragma once
// Checkpoint files lth reads besides its own lth-checkpoint-1, recognised by their content
// (never by their name) at the one load path, io::load_checkpoint, so that every command
// that takes a checkpoint takes them too:
//   lth-compact-ticket-1   `lth export`'s inference file (io/compact_ticket.h): a
//                          safetensors file with that metadata "format"
//   reference .ckpt        the reference's Flax checkpoint (io/flax_checkpoint.h), told
//                          from safetensors by its first bytes (io/checkpoint_sniff.h)
// A reader expands its file into the in-memory Checkpoint an lth-checkpoint-1 file gives.
// A file no reader recognises is left to load_checkpoint's own checks and messages.
#include <filesystem>
#include <optional>

#include "io/checkpoint.h"

namespace lth::io {

// The checkpoint in `path` if a reader here recognises its format, else nullopt. UserError
// naming the file if it is recognised but corrupt.
std::optional<Checkpoint> load_other_checkpoint_format(const std::filesystem::path& path);

}  // namespace lth::io
