#pragma once
// The compact ticket file (`lth export`): a ticket stored in proportion to its density, for
// inference. A safetensors file (io/safetensors.h) whose __metadata__ "format" is
// "lth-compact-ticket-1"; docs/FORMATS.md has the full description and a NumPy reader.
//   NAME.values     the kept entries of masked parameter NAME, 1-D, in NAME's row-major order;
//                   F32, BF16 or F16 (the export's dtype; only these values are converted)
//   NAME.mask_bits  U8 [ceil(n/8)], n = NAME's element count: row-major index i is bit i % 8
//                   (least significant first) of byte i / 8; the unused high bits are 0
//   P               every other parameter and buffer, as it is (BN statistics, fc, pixel_*)
//   __metadata__    format, masked (JSON {NAME: dense shape}), dtype, kept, total, density,
//                   fold_bn ("true"/"false"), and when folded: folded (JSON {bn: conv}) and
//                   bn_eps; from the checkpoint: iteration, config (JSON), model (the config's
//                   model section, JSON), best_acc where known.
// Size: values (d·n entries) plus n/8 bytes of bits per masked tensor, so at most
// (d + 1/32)·(float32 bytes of the masked tensors) + one byte per tensor, plus the unmasked
// tensors and the header.
//
// Not exported: momentum and trainer state (an inference file does not resume training).
// Refused on export (UserError naming the file): a checkpoint without masks, a masked weight
// that is not 0 where its mask is 0 (not a ticket: dropping it would change the network),
// names that would collide (`X.values` stored as an ordinary tensor), a --fold_bn the
// network's names do not allow (io/bn_fold.h). Refused on reading: anything inconsistent
// (missing metadata, a values count that is not the mask's popcount, bits that do not fit
// the shape, stray or missing tensors, a dtype other than the recorded one).
#include <torch/types.h>

#include <filesystem>
#include <string>

#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace lth::io {

inline constexpr const char* kCompactTicketFormat = "lth-compact-ticket-1";

struct ExportOptions {
  bool fold_bn = false;                       // fold each BN into its conv (io/bn_fold.h)
  torch::ScalarType dtype = torch::kFloat32;  // of the kept values: F32, BF16 or F16
};

// "float32" | "bfloat16" | "float16" (UserError otherwise), and back.
torch::ScalarType parse_values_dtype(const std::string& name);
std::string values_dtype_name(torch::ScalarType type);

// The compact file's tensors and metadata for `ckpt`; `label` names the source in errors.
SafetensorsContent encode_compact_ticket(const std::string& label, const Checkpoint& ckpt,
                                         const ExportOptions& options);
// What an export stored, in bytes of tensor data (the header aside).
struct ExportSummary {
  int64_t masked_tensors = 0;
  int64_t kept = 0;                  // kept entries over all masked tensors
  int64_t total = 0;                 // entries of the masked tensors
  int64_t dense_masked_bytes = 0;    // the masked tensors as the checkpoint holds them (dense)
  int64_t compact_masked_bytes = 0;  // their values + mask_bits
  int64_t unmasked_bytes = 0;        // every other tensor, stored as it is
  int64_t folded_bns = 0;
};
ExportSummary summarize_export(const Checkpoint& ckpt, const SafetensorsContent& compact);

// Writes encode_compact_ticket's result to `to` atomically; refuses (UserError) to replace
// anything that exists at `to`.
ExportSummary export_compact_ticket(const std::filesystem::path& to, const std::string& label,
                                    const Checkpoint& ckpt, const ExportOptions& options);

// Whether a safetensors file's metadata says it is a compact ticket.
bool is_compact_ticket(const Metadata& metadata);
// Expands a compact file into the dense masked Checkpoint the rest of lth uses: masked
// weights float32 with the pruned entries 0, masks float32 0/1, BN recreated if folded
// (io/bn_fold.h), no momentum. Bit-exact for float32 values. UserError naming `label`.
Checkpoint decode_compact_ticket(const std::string& label, SafetensorsContent content);

}  // namespace lth::io
