#include "io/flax_checkpoint.h"

#include <torch/types.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/error.h"
#include "common/text.h"
#include "io/file_util.h"
#include "io/flax_layout.h"
#include "io/msgpack.h"
#include "models/network.h"
#include "models/resnet.h"

namespace lth::io {
namespace {

namespace fs = std::filesystem;
using msgpack::Value;

constexpr const char* kChunkedKey = "__msgpack_chunked_array__";

// A reference checkpoint is 4 maps deep down to its arrays (root/params/ext/Conv_0); room
// for a chunked array's two more levels, so that it gets its own message.
constexpr msgpack::ParseLimits kTreeLimits{6, 1u << 16};
// An array's payload: [shape, dtype, bytes]; shape at most kMaxRank entries.
constexpr int64_t kMaxRank = 8;
constexpr uint64_t kMaxElements = uint64_t{1} << 40;
constexpr msgpack::ParseLimits kPayloadLimits{2, 4 + kMaxRank + 1};

// ---- reading ----------------------------------------------------------------------------

class TreeReader {
 public:
  explicit TreeReader(std::string label) : label_(std::move(label)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw UserError(label_ + ": " + (key.empty() ? "" : key + ": ") + problem);
  }

  // `v` must be a map whose keys are exactly `required` plus any of `optional`.
  void expect_keys(const Value& v, const std::string& key, const std::vector<std::string>& required,
                   const std::vector<std::string>& optional = {}) const {
    require_map(v, key);
    std::set<std::string> allowed(required.begin(), required.end());
    allowed.insert(optional.begin(), optional.end());
    for (const auto& [name, child] : v.entries)
      if (!allowed.count(name)) fail(join(key, name), "unexpected key (" + describe(allowed) + ")");
    for (const auto& name : required)
      if (!v.find(name)) fail(join(key, name), "missing");
  }

  void require_map(const Value& v, const std::string& key) const {
    if (v.type != Value::Type::Map)
      fail(key, std::string("is a MessagePack ") + msgpack::type_name(v.type) + ", expected a map");
    if (v.find(kChunkedKey))
      fail(key,
           "an array chunked above 2^30 bytes (Flax's __msgpack_chunked_array__): no "
           "ResNet array is that large, refusing");
  }

  const Value& at(const Value& v, const std::string& key, const std::string& name) const {
    const Value* child = v.find(name);
    if (!child) fail(join(key, name), "missing");
    return *child;
  }

  // A Flax ndarray (extension 1) as a CPU tensor of its own dtype.
  torch::Tensor array(const Value& v, const std::string& key) const {
    if (v.type == Value::Type::Map) require_map(v, key);  // a chunked array says so
    if (v.type != Value::Type::Ext)
      fail(key, std::string("is a MessagePack ") + msgpack::type_name(v.type) +
                    ", expected an array (Flax ndarray extension)");
    if (v.ext_type == flax::kComplexExt)
      fail(key, "a complex number (Flax extension 2), expected an array");
    if (v.ext_type == flax::kScalarExt)
      fail(key, "a NumPy scalar (Flax extension 3), expected an array");
    if (v.ext_type != flax::kNdarrayExt)
      fail(key, "MessagePack extension type " + std::to_string(v.ext_type) +
                    ", expected 1 (Flax ndarray)");
    const auto* bytes = reinterpret_cast<const uint8_t*>(v.bytes.data());
    const Value payload = msgpack::parse(bytes, v.bytes.size(),
                                         label_ + ": " + key + " (array payload)", kPayloadLimits);
    if (payload.type != Value::Type::Array || payload.items.size() != 3)
      fail(key, "array payload is not [shape, dtype, data]");
    const Value& shape_v = payload.items[0];
    const Value& dtype_v = payload.items[1];
    const Value& data_v = payload.items[2];
    if (shape_v.type != Value::Type::Array) fail(key, "array shape is not a list");
    if (static_cast<int64_t>(shape_v.items.size()) > kMaxRank)
      fail(key, "array has " + std::to_string(shape_v.items.size()) + " dimensions (at most " +
                    std::to_string(kMaxRank) + ")");
    if (dtype_v.type != Value::Type::Str && dtype_v.type != Value::Type::Bin)
      fail(key, "array dtype is not a string");
    if (data_v.type != Value::Type::Bin) fail(key, "array data is not bytes");
    const flax::Dtype* dtype = flax::dtype_named(dtype_v.bytes);
    if (!dtype)
      fail(key, "unsupported dtype '" + std::string(dtype_v.bytes) +
                    "' (float32, float64, float16, bfloat16, int8..int64, uint8, bool)");
    std::vector<int64_t> shape;
    uint64_t numel = 1, nonzero = 1;
    const uint64_t item = torch::elementSize(dtype->type);
    for (const auto& d : shape_v.items) {
      if (d.type != Value::Type::Int || d.is_unsigned || d.integer < 0)
        fail(key, "array shape holds something other than a non-negative integer");
      shape.push_back(d.integer);
      const auto dim = static_cast<uint64_t>(d.integer);
      // Bounded before multiplying, so that nothing overflows: even an empty array must
      // have strides that fit in int64.
      if (dim != 0) {
        if (dim > kMaxElements || nonzero > kMaxElements / dim)
          fail(key, "array shape " + shape_text(shape) + "... is larger than any ResNet array");
        nonzero *= dim;
      }
      numel *= dim;
    }
    if (numel * item != data_v.bytes.size())
      fail(key, "array of shape " + shape_text(shape) + " and dtype " + dtype->name + " needs " +
                    std::to_string(numel * item) + " bytes, its data has " +
                    std::to_string(data_v.bytes.size()));
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype->type));
    if (!data_v.bytes.empty()) std::memcpy(t.data_ptr(), data_v.bytes.data(), data_v.bytes.size());
    if (dtype->type == torch::kBool) {  // NumPy bools are bytes 0/1; anything else is corrupt
      for (unsigned char c : data_v.bytes)
        if (c > 1) fail(key, "bool array holds a byte other than 0 and 1");
    }
    return t;
  }

  // A float array of exactly `shape`, all values finite.
  torch::Tensor float_array(const Value& v, const std::string& key,
                            const std::vector<int64_t>& shape,
                            const std::string& expected_by) const {
    auto t = array(v, key);
    if (!t.is_floating_point())
      fail(key, std::string("has dtype ") + flax::dtype_name(t.scalar_type()) +
                    ", expected a float type");
    if (t.sizes().vec() != shape)
      fail(key, "has shape " + shape_text(t.sizes()) + ", " + expected_by + " expects " +
                    shape_text(shape));
    if (t.numel() > 0 && !torch::isfinite(t).all().item<bool>())
      fail(key, "holds a non-finite value");
    return t;
  }

  static std::string join(const std::string& a, const std::string& b) {
    return a.empty() ? b : a + "/" + b;
  }

 private:
  static std::string describe(const std::set<std::string>& keys) {
    if (keys.size() > 6) return "not in the reference's layout";
    std::string text = "expected ";
    for (const auto& k : keys) text += (text.size() > 9 ? ", " : "") + k;
    return text;
  }

  std::string label_;
};

// Which layout a params/ext tree has: the one with its number of convolutions and its stem
// kernel's shape; every other name and shape is then checked against it.
const flax::Layout& recognise(const TreeReader& r, const Value& ext,
                              const std::vector<flax::Layout>& layouts) {
  r.require_map(ext, "params/ext");
  size_t convs = 0;
  for (const auto& [name, v] : ext.entries) {
    if (name.rfind("Conv_", 0) == 0)
      ++convs;
    else if (name.rfind("BatchNorm_", 0) != 0)
      r.fail("params/ext/" + name,
             "unexpected key (the reference's ResNets hold Conv_i and BatchNorm_i)");
  }
  const Value& stem = r.at(ext, "params/ext", "Conv_0");
  r.expect_keys(stem, "params/ext/Conv_0", {"kernel"});
  const auto kernel =
      r.array(r.at(stem, "params/ext/Conv_0", "kernel"), "params/ext/Conv_0/kernel");
  // The stem's whole shape: kernel size, input channels and width tell families apart that
  // have the same number of convolutions.
  for (const auto& l : layouts)
    if (l.layers.size() == convs && kernel.sizes().vec() == l.layers[0].hwio) return l;
  std::string known;
  std::set<std::string> seen;
  for (const auto& l : layouts)
    if (seen.insert(l.model).second)
      known += (known.empty() ? "" : ", ") + l.model + ": " + std::to_string(l.layers.size());
  r.fail("params/ext", std::to_string(convs) + " convolutions with a stem kernel of shape " +
                           shape_text(kernel.sizes()) +
                           ": no ResNet lth builds has this layout (convolutions " + known + ")");
}

std::vector<std::string> ext_keys(const flax::Layout& l) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < l.layers.size(); ++i) {
    keys.push_back(flax::conv_key(i));
    keys.push_back(flax::norm_key(i));
  }
  return keys;
}

// The params tree (or params_mask's) as Flax-shaped tensors by key path, checked against the
// layout: every name present, nothing else, every shape right. Masks may have any dtype;
// parameters must be finite floats.
std::map<std::string, torch::Tensor> read_params_tree(const TreeReader& r, const Value& tree,
                                                      const std::string& root,
                                                      const flax::Layout& l, int64_t classes,
                                                      bool is_mask) {
  std::map<std::string, torch::Tensor> out;
  const std::string expected_by = l.model;
  r.expect_keys(tree, root, {"ext", "cls"});
  const Value& ext = r.at(tree, root, "ext");
  const std::string ext_key = root + "/ext";
  r.expect_keys(ext, ext_key, ext_keys(l));
  auto leaf = [&](const Value& v, const std::string& key, const std::vector<int64_t>& shape) {
    if (!is_mask) return r.float_array(v, key, shape, expected_by);
    auto t = r.array(v, key);
    if (t.sizes().vec() != shape)
      r.fail(key, "has shape " + shape_text(t.sizes()) + ", " + expected_by + " expects " +
                      shape_text(shape));
    if (t.numel() > 0 && !((t == 0) | (t == 1)).all().item<bool>())
      r.fail(key, "mask holds values other than 0 and 1");
    return t;
  };
  for (size_t i = 0; i < l.layers.size(); ++i) {
    const auto& layer = l.layers[i];
    const std::string ck = ext_key + "/" + flax::conv_key(i),
                      nk = ext_key + "/" + flax::norm_key(i);
    const int64_t channels = layer.hwio[3];
    r.expect_keys(r.at(ext, ext_key, flax::conv_key(i)), ck, {"kernel"});
    out[ck + "/kernel"] =
        leaf(r.at(r.at(ext, ext_key, flax::conv_key(i)), ck, "kernel"), ck + "/kernel", layer.hwio);
    const Value& norm = r.at(ext, ext_key, flax::norm_key(i));
    r.expect_keys(norm, nk, {"scale", "bias"});
    for (const char* name : {"scale", "bias"})
      out[nk + "/" + name] = leaf(r.at(norm, nk, name), nk + "/" + name, {channels});
  }
  out[root + "/cls"] = leaf(r.at(tree, root, "cls"), root + "/cls", {l.features, classes});
  return out;
}

}  // namespace

Checkpoint read_flax_checkpoint(const fs::path& path, std::vector<std::string>* notes) {
  const std::string label = path.string();
  const FileBytes bytes = read_whole_file(path);
  const Value root = msgpack::parse(bytes.data.get(), bytes.size, label, kTreeLimits);
  const TreeReader r(label);
  r.expect_keys(root, "", {"params", "batch_stats", "image_stats"}, {"params_mask"});
  const Value& params = r.at(root, "", "params");
  r.expect_keys(params, "params", {"ext", "cls"});

  // image_stats first: its length is the number of input channels.
  const Value& stats = r.at(root, "", "image_stats");
  r.expect_keys(stats, "image_stats", {"m", "s"});
  const auto m = r.array(r.at(stats, "image_stats", "m"), "image_stats/m");
  if (m.dim() != 1 || m.size(0) < 1)
    r.fail("image_stats/m", "has shape " + shape_text(m.sizes()) + ", expected [channels]");
  const int64_t channels = m.size(0);
  const auto mean =
      r.float_array(r.at(stats, "image_stats", "m"), "image_stats/m", {channels}, "image_stats");
  const auto std_ =
      r.float_array(r.at(stats, "image_stats", "s"), "image_stats/s", {channels}, "image_stats/m");
  if (!(std_ > 0).all().item<bool>()) r.fail("image_stats/s", "holds a value <= 0 (a pixel std)");

  const auto layouts = flax::candidate_layouts(channels);
  const flax::Layout& l = recognise(r, r.at(params, "params", "ext"), layouts);
  const auto cls = r.array(r.at(params, "params", "cls"), "params/cls");
  if (cls.dim() != 2 || cls.size(0) != l.features || cls.size(1) < 1)
    r.fail("params/cls", "has shape " + shape_text(cls.sizes()) + ", " + l.model + " expects [" +
                             std::to_string(l.features) + ", classes]");
  const int64_t classes = cls.size(1);
  const auto p = read_params_tree(r, params, "params", l, classes, false);

  Checkpoint ckpt;
  int64_t kept = 0, total = 0;
  std::optional<std::map<std::string, torch::Tensor>> mask_tree;
  std::string mask_dtype = "float32";
  if (const Value* mv = root.find("params_mask")) {
    mask_tree = read_params_tree(r, *mv, "params_mask", l, classes, true);
    mask_dtype = flax::dtype_name(mask_tree->begin()->second.scalar_type());
  }
  // A mask in lth for every conv kernel (all ones when the file has none) and for any
  // other parameter the reference file pruned.
  auto mask_of = [&](const std::string& flax_key, const std::string& param, bool conv) {
    if (!mask_tree) {
      if (conv) ckpt.masks[param] = torch::ones(ckpt.state.at(param).sizes());
      return;
    }
    auto mask = mask_tree->at(flax_key).to(torch::kFloat32);
    if (!conv && mask.min().item<float>() == 1.0f) return;
    if (conv) mask = mask.permute({3, 2, 0, 1}).contiguous();
    if (mask.dim() == 2) mask = mask.t().contiguous();
    ckpt.masks[param] = mask;
  };

  const Value& batch_stats = r.at(root, "", "batch_stats");
  std::vector<std::string> norm_keys;
  for (size_t i = 0; i < l.layers.size(); ++i) norm_keys.push_back(flax::norm_key(i));
  r.expect_keys(batch_stats, "batch_stats", norm_keys);
  for (size_t i = 0; i < l.layers.size(); ++i) {
    const auto& layer = l.layers[i];
    const std::string ck = "params/ext/" + flax::conv_key(i),
                      nk = "params/ext/" + flax::norm_key(i);
    const std::string weight = layer.conv + ".weight";
    ckpt.state[weight] = p.at(ck + "/kernel").permute({3, 2, 0, 1}).contiguous();
    mask_of("params_mask/ext/" + flax::conv_key(i) + "/kernel", weight, true);
    kept += ckpt.masks.at(weight).sum().item<int64_t>();
    total += ckpt.masks.at(weight).numel();
    ckpt.state[layer.bn + ".weight"] = p.at(nk + "/scale");
    ckpt.state[layer.bn + ".bias"] = p.at(nk + "/bias");
    mask_of("params_mask/ext/" + flax::norm_key(i) + "/scale", layer.bn + ".weight", false);
    mask_of("params_mask/ext/" + flax::norm_key(i) + "/bias", layer.bn + ".bias", false);
    const std::string sk = "batch_stats/" + flax::norm_key(i);
    const Value& stat = r.at(batch_stats, "batch_stats", flax::norm_key(i));
    r.expect_keys(stat, sk, {"mean", "var"});
    const std::vector<int64_t> shape{layer.hwio[3]};
    ckpt.state[layer.bn + ".running_mean"] =
        r.float_array(r.at(stat, sk, "mean"), sk + "/mean", shape, l.model);
    const auto var = r.float_array(r.at(stat, sk, "var"), sk + "/var", shape, l.model);
    if (!(var >= 0).all().item<bool>()) r.fail(sk + "/var", "holds a negative variance");
    ckpt.state[layer.bn + ".running_var"] = var;
    ckpt.state[layer.bn + ".num_batches_tracked"] = torch::zeros({}, torch::kInt64);
  }
  ckpt.state["fc.weight"] = p.at("params/cls").t().contiguous();
  mask_of("params_mask/cls", "fc.weight", false);
  ckpt.state["pixel_mean"] = mean;
  ckpt.state["pixel_std"] = std_;

  ckpt.config = {{"model", {{"name", l.model}, {"width", 1}, {"padding", "same"}}},
                 {"data", {{"image_size", l.image_size}}},
                 {"reference",
                  {{"format", "flax-msgpack"},
                   {"params_mask", mask_tree.has_value()},
                   {"mask_dtype", mask_dtype}}}};
  if (notes) {
    notes->push_back("read " + label + ": the reference's " + l.model + " (" +
                     (l.stem_kernel == 7 ? "7x7/2 stem and max-pool, 224x224 input"
                                         : "3x3 stem, 32x32 or 64x64 input") +
                     "), " + std::to_string(classes) + " classes, " + std::to_string(channels) +
                     " input channels");
    notes->push_back("  converted: " + std::to_string(l.layers.size()) +
                     " conv kernels (HWIO -> OIHW), " + std::to_string(l.layers.size()) +
                     " batch norms (scale, bias, mean, var), head cls [features, classes] -> "
                     "fc.weight [classes, features], image_stats -> pixel_mean/pixel_std");
    notes->push_back(
        std::string("  masks: ") +
        (mask_tree ? "params_mask (" + mask_dtype + ")" : "none in the file: all ones") + ", " +
        std::to_string(kept) + " of " + std::to_string(total) + " conv weights kept" +
        (ckpt.masks.size() > l.layers.size() ? "; also masks of non-conv parameters" : ""));
    notes->push_back(
        "  padding: same (TensorFlow's, as the reference computes); iteration: 0 (the file does "
        "not say); BN num_batches_tracked: 0");
  }
  return ckpt;
}

}  // namespace lth::io
