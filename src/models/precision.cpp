#include "models/precision.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/DeviceGuard.h>

#include "common/error.h"

namespace lth::models {
namespace {

// Native bf16 on a CUDA device: LibTorch exposes this through its CUDA hooks (cuDNN v8 on a
// compute-capability-8 GPU), so this file needs no CUDA headers and builds CPU-only. The
// hooks ask the current device: make it `device` (cuda:1 on a machine with mixed GPUs).
bool cuda_has_native_bf16(torch::Device device) {
  const c10::OptionalDeviceGuard guard(device.has_index() ? c10::optional<c10::Device>(device) : c10::nullopt);
  return at::detail::getCUDAHooks().supportsBFloat16ConvolutionWithCuDNNv8();
}

}  // namespace

Precision parse_precision(const std::string& name, const std::string& what) {
  if (name == "fp32") return Precision::kFloat32;
  if (name == "bf16") return Precision::kBFloat16;
  if (name == "fp16") return Precision::kFloat16;
  throw UserError(what + ": unknown precision '" + name + "' (expected fp32, bf16 or fp16)");
}

std::string precision_name(Precision precision) {
  switch (precision) {
    case Precision::kBFloat16: return "bf16";
    case Precision::kFloat16: return "fp16";
    case Precision::kFloat32: break;
  }
  return "fp32";
}

std::vector<std::string> precision_names() { return {"fp32", "bf16", "fp16"}; }

torch::ScalarType compute_dtype(Precision precision) {
  switch (precision) {
    case Precision::kBFloat16: return torch::kBFloat16;
    case Precision::kFloat16: return torch::kHalf;
    case Precision::kFloat32: break;
  }
  return torch::kFloat32;
}

Precision resolve_precision(const std::string& name, bool mixed_precision, torch::Device device) {
  auto precision = parse_precision(name, "precision");
  if (precision == Precision::kFloat32 && mixed_precision) {
    precision = !device.is_cuda() || cuda_has_native_bf16(device) ? Precision::kBFloat16 : Precision::kFloat16;
  }
  require(!(precision == Precision::kFloat16 && !device.is_cuda()),
          "precision fp16: float16 autocast needs a CUDA device (use bf16 on CPU)");
  require(!(precision == Precision::kBFloat16 && device.is_cuda() && !cuda_has_native_bf16(device)),
          "precision bf16: this GPU has no native bfloat16 (compute capability < 8); use fp16");
  return precision;
}

}  // namespace lth::models
