#pragma once
// The safetensors file format: 8-byte little-endian header length N, N bytes of JSON
// header ({"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}),
// then the raw little-endian tensor bytes. Readable by Python/Rust/JAX without lth.
//
// Written as the reference implementation does: header padded with spaces to a multiple
// of 8 bytes, "__metadata__" first (omitted when empty), tensors packed without gaps in
// sorted-name order. Read strictly, as the reference does: offsets must tile the data
// section exactly, so a truncated or padded file is refused rather than half-read.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

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

// What the header says about one tensor; offsets are relative to the data section.
struct TensorInfo {
  std::string dtype;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::map<std::string, TensorInfo> tensors;
  Metadata metadata;
  uint64_t data_start = 0;  // byte offset of the data section in the file (8 + N)
};

// Reads and validates only the header (cheap for `lth info`, reports, shape checks);
// the same checks as read_safetensors, except that tensor bytes are not inspected.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// The safetensors name of a torch dtype ("F32", ...); throws UserError for dtypes the
// format (as lth supports it) cannot hold.
std::string safetensors_dtype(torch::ScalarType type);

}  // namespace lth::io
