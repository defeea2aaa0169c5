#pragma once
// Which checkpoint format a file holds, recognised by its first bytes, never by its name
// (a reference run's files end in .ckpt, lth's in .safetensors, and users rename files):
//   Lth        safetensors: 8-byte little-endian header length N, then a JSON object
//              ('{' at byte 8) that fits in the file
//   Reference  the reference's Flax checkpoint (io/flax_checkpoint.h): MessagePack whose
//              top level is a map (fixmap followed by a string key, or map16/map32)
// Anything else is reported as Lth, so that the safetensors reader names what is wrong.
// The readers' table of io/checkpoint_formats.cpp and `lth convert` call this.
#include <filesystem>

namespace lth::io {

enum class CheckpointFormat { Lth, Reference };

// Throws UserError naming the file if it cannot be opened or read.
CheckpointFormat detect_checkpoint_format(const std::filesystem::path& path);

const char* checkpoint_format_name(CheckpointFormat format);  // "lth safetensors", ...

}  // namespace lth::io
