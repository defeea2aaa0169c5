#include "io/checkpoint_formats.h"

#include "common/error.h"
#include "io/checkpoint_sniff.h"
#include "io/compact_ticket.h"
#include "io/flax_checkpoint.h"
#include "io/safetensors.h"

namespace lth::io {
namespace {

struct CheckpointReader {
  bool (*recognises)(const std::filesystem::path& path);
  Checkpoint (*load)(const std::filesystem::path& path);
};

// Only the header is read to recognise the file; a file whose header cannot be read is not
// recognised here and gets load_checkpoint's message.
bool is_compact_ticket_file(const std::filesystem::path& path) {
  try {
    return is_compact_ticket(read_safetensors_header(path).metadata);
  } catch (const UserError&) {
    return false;
  }
}

Checkpoint load_compact_ticket(const std::filesystem::path& path) {
  return decode_compact_ticket(path.string(), read_safetensors(path));
}

// The reference's Flax checkpoint: MessagePack from its first bytes (io/checkpoint_sniff.h).
bool is_reference_file(const std::filesystem::path& path) {
  return detect_checkpoint_format(path) == CheckpointFormat::Reference;
}

Checkpoint load_reference(const std::filesystem::path& path) { return read_flax_checkpoint(path); }

constexpr CheckpointReader kReaders[] = {
    {is_reference_file, load_reference},
    {is_compact_ticket_file, load_compact_ticket},
};

}  // namespace

std::optional<Checkpoint> load_other_checkpoint_format(const std::filesystem::path& path) {
  for (const auto& reader : kReaders)
    if (reader.recognises(path)) return reader.load(path);
  return std::nullopt;
}

}  // namespace lth::io
