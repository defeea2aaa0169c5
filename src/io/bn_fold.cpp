#include "io/bn_fold.h"

#include <ATen/ATen.h>

#include <cctype>

#include "common/error.h"
#include "common/text.h"

namespace lth::io {
namespace {

constexpr const char* kBnTensors[] = {"weight", "bias", "running_mean", "running_var"};

bool is_digits(const std::string& text) {
  if (text.empty()) return false;
  for (const char c : text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// The conv prefix torchvision's naming puts before BN `bn`, or "" if there is none.
std::string conv_before(const std::string& bn) {
  const size_t dot = bn.rfind('.');
  const std::string parent = dot == std::string::npos ? "" : bn.substr(0, dot + 1);
  const std::string last = dot == std::string::npos ? bn : bn.substr(dot + 1);
  if (last.size() > 2 && last.compare(0, 2, "bn") == 0 && is_digits(last.substr(2)))
    return parent + "conv" + last.substr(2);
  if (is_digits(last) && last.size() < 10 && last != "0")
    return parent + std::to_string(std::stoll(last) - 1);
  return "";
}

const torch::Tensor& entry(const std::string& label, const TensorMap& state,
                           const std::string& name) {
  const auto it = state.find(name);
  require(it != state.end(), label + ": BN folding needs '" + name + "', which is missing");
  return it->second;
}

}  // namespace

std::vector<BnFold> find_bn_folds(const std::string& label, const TensorMap& state) {
  const std::string stat = ".running_mean";
  std::vector<BnFold> folds;
  for (const auto& [name, tensor] : state) {
    if (!ends_with(name, stat)) continue;
    const std::string bn = name.substr(0, name.size() - stat.size());
    const std::string conv = conv_before(bn);
    require(!conv.empty() && state.count(conv + ".weight"),
            label + ": cannot fold BatchNorm '" + bn +
                "': no convolution before it (folding pairs torchvision's names: convK -> bnK, "
                "Sequential k-1 -> k)");
    const auto& weight = state.at(conv + ".weight");
    require(weight.dim() == 4, label + ": cannot fold BatchNorm '" + bn + "': '" + conv +
                                   ".weight' is not a 4-D convolution kernel");
    require(!state.count(conv + ".bias"), label + ": cannot fold BatchNorm '" + bn + "': conv '" +
                                              conv + "' has a bias of its own");
    for (const char* part : kBnTensors) {
      const auto& t = entry(label, state, bn + "." + part);
      require(t.dim() == 1 && t.size(0) == weight.size(0),
              label + ": cannot fold BatchNorm '" + bn + "': '" + bn + "." + part + "' has " +
                  std::to_string(t.numel()) + " entries for " + std::to_string(weight.size(0)) +
                  " output channels of '" + conv + "'");
    }
    folds.push_back({bn, conv});
  }
  return folds;
}

void fold_batch_norms(TensorMap& state, const std::vector<BnFold>& folds, double eps) {
  for (const auto& f : folds) {
    auto bn = [&](const char* part) { return state.at(f.bn + "." + part).to(at::kDouble); };
    const auto scale = bn("weight") / (bn("running_var") + eps).sqrt();
    auto& weight = state.at(f.conv + ".weight");
    const auto type = weight.scalar_type();
    state[f.conv + ".bias"] = (bn("bias") - scale * bn("running_mean")).to(type).contiguous();
    weight = (weight.to(at::kDouble) * scale.view({-1, 1, 1, 1})).to(type).contiguous();
    for (const char* part : kBnTensors) state.erase(f.bn + "." + part);
  }
}

void unfold_batch_norms(const std::string& label, TensorMap& state,
                        const std::vector<BnFold>& folds, double eps) {
  for (const auto& f : folds) {
    const auto& weight = entry(label, state, f.conv + ".weight");
    const auto bias = entry(label, state, f.conv + ".bias");
    require(weight.dim() == 4 && bias.dim() == 1 && bias.size(0) == weight.size(0),
            label + ": folded '" + f.conv + ".bias' has " + std::to_string(bias.numel()) +
                " entries for a conv weight of " + std::to_string(weight.dim()) + " dimensions");
    for (const char* part : kBnTensors)
      require(!state.count(f.bn + "." + part), label + ": BN '" + f.bn +
                                                   "' is listed as folded but '" + f.bn + "." +
                                                   part + "' is stored too");
    const auto options = bias.options();
    state[f.bn + ".weight"] = at::ones_like(bias);
    state[f.bn + ".bias"] = bias;
    state[f.bn + ".running_mean"] = at::zeros_like(bias);
    state[f.bn + ".running_var"] = at::full({bias.size(0)}, 1.0 - eps, options);
    state.erase(f.conv + ".bias");
  }
}

}  // namespace lth::io
