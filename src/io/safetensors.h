#pragma once
// The safetensors file format: 8-byte little-endian header length N, N bytes of JSON
// header ({"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}),
// then the raw little-endian tensor bytes. Readable by Python/Rust/JAX without lth.
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>

namespace lth::io {

using TensorMap = std::map<std::string, torch::Tensor>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsContent {
  TensorMap tensors;  // CPU, contiguous
  Metadata metadata;
};

// Writes atomically: to "<path>.tmp", fsync, rename over `path`, fsync the folder, so a
// crash leaves either the old file or the new one, never a torn one. Tensors may live on
// any device and dtype among F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL.
void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const Metadata& metadata);

// Reads a whole file. A missing, truncated or malformed file throws UserError naming the
// file and what is wrong with it (bad header length, JSON error, offsets out of range, ...).
SafetensorsContent read_safetensors(const std::filesystem::path& path);

}  // namespace lth::io
