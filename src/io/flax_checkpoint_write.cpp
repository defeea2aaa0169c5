// Writing the reference's checkpoints (flax_checkpoint.h); the layout is flax_layout.h's.
#include <torch/types.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/text.h"
#include "io/file_util.h"
#include "io/flax_checkpoint.h"
#include "io/flax_layout.h"
#include "io/msgpack.h"

namespace lth::io {

namespace fs = std::filesystem;

// ---- writing ----------------------------------------------------------------------------

namespace {

void write_array(msgpack::Writer& out, const torch::Tensor& tensor, const char* dtype) {
  const auto t = tensor.detach().to(torch::kCPU).contiguous();
  msgpack::Writer payload;
  payload.array_header(3);
  payload.array_header(static_cast<size_t>(t.dim()));
  for (int64_t d : t.sizes()) payload.uinteger(static_cast<uint64_t>(d));
  payload.str(dtype);
  payload.bin(t.data_ptr(), t.numel() * t.element_size());
  out.ext(flax::kNdarrayExt, payload.bytes().data(), payload.bytes().size());
}

}  // namespace

void write_flax_checkpoint(const fs::path& path, const Checkpoint& ckpt,
                           std::vector<std::string>* notes) {
  const std::string label = path.string();
  const auto model = checkpoint_setting<std::string>(ckpt, label, "model", "name", "");
  const auto spec = flax::resnet_spec(model);
  require(spec.has_value(), label + ": the checkpoint's model '" + model +
                                "' is not a ResNet; the reference's format holds ResNets only");
  require(checkpoint_setting<int64_t>(ckpt, label, "model", "width", 1) == 1,
          label +
              ": the checkpoint's ResNet has width > 1, whose stem the reference builds "
              "narrower than lth: not convertible");
  auto tensor = [&](const std::string& name,
                    const std::vector<int64_t>& shape) -> const torch::Tensor& {
    const auto it = ckpt.state.find(name);
    require(it != ckpt.state.end(), label + ": checkpoint has no tensor '" + name + "'");
    require(it->second.sizes().vec() == shape, label + ": tensor '" + name + "' has shape " +
                                                   shape_text(it->second.sizes()) + ", " + model +
                                                   " expects " + shape_text(shape));
    require(!it->second.is_floating_point() || torch::isfinite(it->second).all().item<bool>(),
            label + ": tensor '" + name + "' holds a non-finite value");
    return it->second;
  };
  const auto stem = ckpt.state.find("conv1.weight");
  require(stem != ckpt.state.end() && stem->second.dim() == 4,
          label + ": checkpoint has no 4-D tensor 'conv1.weight'");
  const int64_t stem_kernel = stem->second.size(2);
  require(stem_kernel == 3 || (stem_kernel == 7 && !spec->cifar_family),
          label + ": conv1.weight has shape " + shape_text(stem->second.sizes()) + ", no stem of " +
              model);
  const flax::Layout l = flax::make_layout(model, *spec, stem_kernel, stem->second.size(1));
  const auto fc = ckpt.state.find("fc.weight");
  require(fc != ckpt.state.end() && fc->second.dim() == 2,
          label + ": checkpoint has no 2-D tensor 'fc.weight'");
  const int64_t classes = fc->second.size(0);

  // Every tensor of the checkpoint must have its place; nothing is dropped silently.
  std::set<std::string> placed{"fc.weight", "pixel_mean", "pixel_std"};
  for (const auto& layer : l.layers) {
    placed.insert(layer.conv + ".weight");
    for (const char* e :
         {".weight", ".bias", ".running_mean", ".running_var", ".num_batches_tracked"})
      placed.insert(layer.bn + e);
  }
  for (const auto& [name, t] : ckpt.state)
    require(placed.count(name),
            label + ": tensor '" + name + "' has no place in the reference's " + model);
  for (const auto& [name, t] : ckpt.masks)
    require(placed.count(name) && name.find("running_") == std::string::npos &&
                name.find("num_batches") == std::string::npos && name.rfind("pixel_", 0) != 0,
            label + ": mask of '" + name + "' has no place in the reference's params_mask");

  std::string mask_dtype = "float32";
  if (ckpt.config.contains("reference") && ckpt.config["reference"].is_object())
    mask_dtype = checkpoint_setting<std::string>(ckpt, label, "reference", "mask_dtype", "float32");
  require(
      flax::dtype_named(mask_dtype) != nullptr,
      label + ": checkpoint config 'reference.mask_dtype' is not a dtype ('" + mask_dtype + "')");
  const auto mask_type = flax::dtype_named(mask_dtype)->type;
  // `flax`: the parameter as Flax holds it; `param`: its lth name, for the mask.
  auto mask_for = [&](const std::string& param, const torch::Tensor& flax, bool conv) {
    const auto it = ckpt.masks.find(param);
    if (it == ckpt.masks.end())
      return torch::ones(flax.sizes(), torch::TensorOptions().dtype(mask_type));
    require(it->second.sizes() == ckpt.state.at(param).sizes(),
            label + ": mask of '" + param + "' has shape " + shape_text(it->second.sizes()) +
                ", its parameter " + shape_text(ckpt.state.at(param).sizes()));
    auto m = it->second.detach().to(torch::kCPU);
    if (conv) m = m.permute({2, 3, 1, 0});
    if (m.dim() == 2) m = m.t();
    return m.to(mask_type).contiguous();
  };

  const int64_t channels = l.in_channels;
  std::map<std::string, torch::Tensor> flax;  // key path -> Flax-shaped tensor
  for (size_t i = 0; i < l.layers.size(); ++i) {
    const auto& layer = l.layers[i];
    const int64_t c = layer.hwio[3];
    const std::string weight = layer.conv + ".weight";
    const auto kernel =
        tensor(weight, flax::oihw(layer.hwio)).detach().to(torch::kCPU).permute({2, 3, 1, 0});
    flax["params/ext/" + flax::conv_key(i) + "/kernel"] = kernel;
    flax["params_mask/ext/" + flax::conv_key(i) + "/kernel"] = mask_for(weight, kernel, true);
    const std::string nk = flax::norm_key(i);
    for (const auto& [flax_name, torch_name] :
         {std::pair{"scale", ".weight"}, std::pair{"bias", ".bias"}}) {
      const auto& t = tensor(layer.bn + torch_name, {c});
      flax["params/ext/" + nk + "/" + flax_name] = t;
      flax["params_mask/ext/" + nk + "/" + flax_name] = mask_for(layer.bn + torch_name, t, false);
    }
    flax["batch_stats/" + nk + "/mean"] = tensor(layer.bn + ".running_mean", {c});
    flax["batch_stats/" + nk + "/var"] = tensor(layer.bn + ".running_var", {c});
  }
  const auto cls = tensor("fc.weight", {classes, l.features}).detach().to(torch::kCPU).t();
  flax["params/cls"] = cls;
  flax["params_mask/cls"] = mask_for("fc.weight", cls, false);
  flax["image_stats/m"] = tensor("pixel_mean", {channels});
  flax["image_stats/s"] = tensor("pixel_std", {channels});

  msgpack::Writer out;
  auto arr = [&](const std::string& key) {
    const auto& t = flax.at(key);
    write_array(out, t, flax::dtype_name(t.scalar_type()));
  };
  auto params_tree = [&](const std::string& root) {
    out.map_header(2);
    out.str("ext");
    out.map_header(2 * l.layers.size());
    for (size_t i = 0; i < l.layers.size(); ++i) {  // creation order, as Flax's module tree
      out.str(flax::conv_key(i));
      out.map_header(1);
      out.str("kernel");
      arr(root + "/ext/" + flax::conv_key(i) + "/kernel");
      out.str(flax::norm_key(i));
      out.map_header(2);
      out.str("scale");
      arr(root + "/ext/" + flax::norm_key(i) + "/scale");
      out.str("bias");
      arr(root + "/ext/" + flax::norm_key(i) + "/bias");
    }
    out.str("cls");
    arr(root + "/cls");
  };
  out.map_header(4);
  out.str("params");
  params_tree("params");
  out.str("params_mask");
  params_tree("params_mask");
  out.str("batch_stats");
  out.map_header(l.layers.size());
  for (size_t i = 0; i < l.layers.size(); ++i) {
    out.str(flax::norm_key(i));
    out.map_header(2);
    out.str("mean");
    arr("batch_stats/" + flax::norm_key(i) + "/mean");
    out.str("var");
    arr("batch_stats/" + flax::norm_key(i) + "/var");
  }
  out.str("image_stats");
  out.map_header(2);
  out.str("m");
  arr("image_stats/m");
  out.str("s");
  arr("image_stats/s");
  write_file_atomically(path, [&](FileSink& sink) { sink.write(out.bytes()); });

  if (notes) {
    int64_t kept = 0, total = 0;
    for (size_t i = 0; i < l.layers.size(); ++i) {
      const auto& m = flax.at("params_mask/ext/" + flax::conv_key(i) + "/kernel");
      kept += m.to(torch::kFloat64).sum().item<int64_t>();
      total += m.numel();
    }
    notes->push_back("wrote " + label + ": the reference's layout of " + model + ", " +
                     std::to_string(classes) + " classes");
    notes->push_back("  converted: " + std::to_string(l.layers.size()) +
                     " conv kernels (OIHW -> HWIO), batch norms (weight, bias, running_mean, "
                     "running_var), fc.weight -> cls, pixel_mean/pixel_std -> image_stats");
    notes->push_back("  params_mask (" + mask_dtype + "): " + std::to_string(kept) + " of " +
                     std::to_string(total) + " conv weights kept");
    std::string dropped = "num_batches_tracked, iteration, config";
    if (!ckpt.momentum.empty())
      dropped += ", momentum (" + std::to_string(ckpt.momentum.size()) + " buffers)";
    if (ckpt.best_acc) dropped += ", best_acc";
    notes->push_back("  not converted (the reference's file has no place for them): " + dropped);
    const auto padding =
        checkpoint_setting<std::string>(ckpt, label, "model", "padding", "symmetric");
    if (padding != "same")
      notes->push_back(
          "  note: these weights were trained with symmetric padding; the reference computes "
          "with SAME padding, so its logits will differ from lth's");
  }
}

}  // namespace lth::io
