#include "io/checkpoint_sniff.h"

#include <cstdint>

#include "io/file_util.h"

namespace lth::io {
namespace {

bool is_str_tag(uint8_t byte) { return (byte >= 0xa0 && byte <= 0xbf) || (byte >= 0xd9 && byte <= 0xdb); }

}  // namespace

CheckpointFormat detect_checkpoint_format(const std::filesystem::path& path) {
  size_t size = 0;
  const FileBytes head = read_file_prefix(path, 9, &size);
  const unsigned char* b = head.data.get();
  if (head.size >= 9 && b[8] == '{') {
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | b[i];
    if (header <= size - 8) return CheckpointFormat::Lth;
  }
  // Every well-formed safetensors file was claimed above; a damaged one whose length bytes
  // happen to look like a map gets the reference reader's error, which names the problem too.
  if (head.size >= 2 && b[0] >= 0x80 && b[0] <= 0x8f && is_str_tag(b[1])) return CheckpointFormat::Reference;
  if (head.size >= 3 && (b[0] == 0xde || b[0] == 0xdf)) return CheckpointFormat::Reference;
  return CheckpointFormat::Lth;
}

const char* checkpoint_format_name(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::Lth:
      return "lth safetensors";
    case CheckpointFormat::Reference:
      return "reference Flax checkpoint";
  }
  return "?";
}

}  // namespace lth::io
