#pragma once
// The arithmetic a run computes in, chosen by name (`--precision`, `train.precision`):
//   fp32  float32 everywhere (the default);
//   bf16  bfloat16 autocast on CPU and CUDA, no loss scaling (bf16 has float32's range);
//   fp16  float16 autocast with dynamic loss scaling (CUDA only: CPU autocast has no fp16).
// In every mode the master weights, the optimiser state and the classifier head stay in
// float32 (models/autocast.h). The reference's boolean `--mixed_precision=true` means "the
// device's mixed precision": bf16 where the device computes it natively (every CPU here; a
// CUDA GPU with compute capability >= 8, i.e. A100 and later), fp16 with loss scaling
// otherwise, as the reference trains in bf16 on TPU.
#include <string>
#include <vector>

#include <torch/types.h>

namespace lth::models {

enum class Precision { kFloat32, kBFloat16, kFloat16 };

// "fp32" | "bf16" | "fp16"; UserError naming `what` (e.g. "--precision") otherwise.
Precision parse_precision(const std::string& name, const std::string& what);
std::string precision_name(Precision precision);
std::vector<std::string> precision_names();

// The autocast dtype of a mixed mode (bf16 / fp16); kFloat for fp32.
torch::ScalarType compute_dtype(Precision precision);

// True when gradients must be loss-scaled (fp16 only).
inline bool needs_loss_scaling(Precision precision) { return precision == Precision::kFloat16; }

// The mode a run uses on `device`: `name` unless it is "fp32" and `mixed_precision` (the
// reference's flag) is set, which picks the device's mixed mode (see above). Refuses fp16 on
// CPU, and bf16 on a CUDA device without native bf16, with one line naming the setting.
Precision resolve_precision(const std::string& name, bool mixed_precision, torch::Device device);

}  // namespace lth::models
