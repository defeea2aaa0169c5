#include "io/compact_ticket.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "common/text.h"
#include "io/bn_fold.h"

namespace lth::io {
namespace {

const std::string kValues = ".values";
const std::string kMaskBits = ".mask_bits";

// Dense row-major index i -> bit i % 8 of byte i / 8, least significant bit first (the order
// numpy's unpackbits(bitorder="little") reads).
at::Tensor pack_bits(const at::Tensor& keep) {
  const auto flags = keep.to(at::kByte).contiguous();
  const int64_t n = flags.numel();
  auto bits = at::zeros({(n + 7) / 8}, at::kByte);
  const uint8_t* in = flags.data_ptr<uint8_t>();
  uint8_t* out = bits.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) out[i >> 3] |= static_cast<uint8_t>(in[i] << (i & 7));
  return bits;
}

// The inverse of pack_bits; `spare_set` gets whether any bit past n is 1.
at::Tensor unpack_bits(const at::Tensor& bits, int64_t n, bool* spare_set) {
  auto keep = at::empty({n}, at::kBool);
  const uint8_t* in = bits.data_ptr<uint8_t>();
  bool* out = keep.data_ptr<bool>();
  for (int64_t i = 0; i < n; ++i) out[i] = (in[i >> 3] >> (i & 7)) & 1;
  *spare_set = (n % 8 != 0) && (in[n / 8] >> (n % 8)) != 0;
  return keep;
}

// ---- reading the metadata ------------------------------------------------------------

class MetadataReader {
 public:
  MetadataReader(const std::string& label, const Metadata& metadata)
      : label_(label), metadata_(metadata) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw UserError(label_ + ": compact ticket " + problem);
  }

  const std::string& text(const std::string& key) const {
    const auto it = metadata_.find(key);
    if (it == metadata_.end()) fail("metadata has no '" + key + "'");
    return it->second;
  }

  nlohmann::json json(const std::string& key) const {
    try {
      return nlohmann::json::parse(text(key));
    } catch (const nlohmann::json::exception& e) {
      fail("metadata '" + key + "' is not valid JSON (" + e.what() + ")");
    }
  }

  nlohmann::json json_object(const std::string& key) const {
    auto value = json(key);
    if (!value.is_object()) fail("metadata '" + key + "' is not a JSON object");
    return value;
  }

  double number(const std::string& key) const {
    const std::string& value = text(key);
    try {
      size_t used = 0;
      const double parsed = std::stod(value, &used);
      if (used == value.size() && std::isfinite(parsed)) return parsed;
    } catch (const std::exception&) {
    }
    fail("metadata '" + key + "' is not a number ('" + value + "')");
  }

  int64_t count(const std::string& key) const {
    const std::string& value = text(key);
    try {
      size_t used = 0;
      const long long parsed = std::stoll(value, &used);
      if (used == value.size() && parsed >= 0) return parsed;
    } catch (const std::exception&) {
    }
    fail("metadata '" + key + "' is not a non-negative integer ('" + value + "')");
  }

  bool flag(const std::string& key) const {
    const std::string& value = text(key);
    if (value != "true" && value != "false")
      fail("metadata '" + key + "' is '" + value + "', expected 'true' or 'false'");
    return value == "true";
  }

  // A dense shape from the "masked" entry: non-negative sizes whose product fits.
  std::vector<int64_t> shape(const std::string& name, const nlohmann::json& value,
                             int64_t* numel) const {
    if (!value.is_array()) fail("metadata 'masked' shape of '" + name + "' is not a list");
    std::vector<int64_t> shape;
    *numel = 1;
    for (const auto& size : value) {
      if (!size.is_number_integer() || size.get<int64_t>() < 0)
        fail("metadata 'masked' shape of '" + name + "' holds " + size.dump() + ", not a size");
      const int64_t s = size.get<int64_t>();
      if (s != 0 && *numel > std::numeric_limits<int64_t>::max() / 16 / s)
        fail("metadata 'masked' shape of '" + name + "' is too large");
      *numel *= s;
      shape.push_back(s);
    }
    return shape;
  }

 private:
  const std::string& label_;
  const Metadata& metadata_;
};

at::Tensor take(const MetadataReader& reader, TensorMap& tensors, const std::string& name) {
  auto it = tensors.find(name);
  if (it == tensors.end()) reader.fail("has no tensor '" + name + "'");
  auto tensor = std::move(it->second);
  tensors.erase(it);
  return tensor;
}

// One masked tensor: its values scattered into zeros at the mask's kept positions.
void expand_masked(const MetadataReader& reader, const std::string& name,
                   const nlohmann::json& shape_json, at::ScalarType dtype, TensorMap& tensors,
                   Checkpoint& ckpt) {
  int64_t n = 0;
  const auto shape = reader.shape(name, shape_json, &n);
  if (tensors.count(name)) reader.fail("stores '" + name + "' both densely and as values + bits");
  const auto values = take(reader, tensors, name + kValues);
  const auto bits = take(reader, tensors, name + kMaskBits);
  const int64_t bytes = (n + 7) / 8;
  if (bits.scalar_type() != at::kByte || bits.dim() != 1 || bits.numel() != bytes)
    reader.fail("'" + name + kMaskBits + "' is " + safetensors_dtype(bits.scalar_type()) + " " +
                shape_text(bits.sizes().vec()) + ", expected U8 [" + std::to_string(bytes) +
                "] for shape " + shape_text(shape));
  bool spare_set = false;
  const auto keep = unpack_bits(bits, n, &spare_set);
  if (spare_set)
    reader.fail("'" + name + kMaskBits + "' sets bits past the " + std::to_string(n) +
                " entries of shape " + shape_text(shape));
  const int64_t kept = keep.sum().item<int64_t>();
  if (values.scalar_type() != dtype || values.dim() != 1)
    reader.fail("'" + name + kValues + "' is " + safetensors_dtype(values.scalar_type()) + " " +
                shape_text(values.sizes().vec()) + ", expected a 1-D " + values_dtype_name(dtype) +
                " tensor (metadata 'dtype')");
  if (values.numel() != kept)
    reader.fail("'" + name + kValues + "' has " + std::to_string(values.numel()) +
                " entries but '" + name + kMaskBits + "' keeps " + std::to_string(kept));
  auto dense = at::zeros({n}, at::kFloat);
  dense.masked_scatter_(keep, values.to(at::kFloat));
  ckpt.state[name] = dense.view(shape);
  ckpt.masks[name] = keep.to(at::kFloat).view(shape);
}

std::vector<BnFold> folds_from(const MetadataReader& reader) {
  std::vector<BnFold> folds;
  const auto folded = reader.json_object("folded");
  for (const auto& [bn, conv] : folded.items()) {
    if (!conv.is_string()) reader.fail("metadata 'folded' maps '" + bn + "' to a non-name");
    folds.push_back({bn, conv.get<std::string>()});
  }
  return folds;
}

}  // namespace

torch::ScalarType parse_values_dtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  throw UserError("unknown values dtype '" + name + "' (known: float32, bfloat16, float16)");
}

std::string values_dtype_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return "float32";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat16:
      return "float16";
    default:
      throw UserError("values dtype must be float32, bfloat16 or float16");
  }
}

SafetensorsContent encode_compact_ticket(const std::string& label, const Checkpoint& ckpt,
                                         const ExportOptions& options) {
  require(!ckpt.masks.empty(),
          label + ": has no masks (mask/<P>), so it is not a ticket; nothing to store compactly");
  const std::string dtype = values_dtype_name(options.dtype);
  TensorMap state;
  for (const auto& [name, tensor] : ckpt.state) state[name] = tensor.detach().cpu().contiguous();
  std::map<std::string, at::Tensor> keep;
  for (const auto& [name, mask] : ckpt.masks) {
    const auto it = state.find(name);
    require(it != state.end(), label + ": mask/" + name + " has no parameter '" + name + "'");
    require(c10::isFloatingType(it->second.scalar_type()),
            label + ": masked '" + name + "' is not a floating-point tensor");
    keep[name] = mask.detach().cpu().ne(0);
    const int64_t stray = (it->second.ne(0) & keep[name].logical_not()).sum().item<int64_t>();
    require(stray == 0, label + ": '" + name + "' has " + std::to_string(stray) +
                            " nonzero weights where its mask is 0 (not a ticket: lth export "
                            "stores only the kept entries)");
  }
  Metadata metadata;
  metadata["format"] = kCompactTicketFormat;
  metadata["fold_bn"] = options.fold_bn ? "true" : "false";
  if (options.fold_bn) {
    const auto folds = find_bn_folds(label, state);
    fold_batch_norms(state, folds, kBatchNormEps);
    nlohmann::json folded = nlohmann::json::object();
    for (const auto& f : folds) folded[f.bn] = f.conv;
    metadata["folded"] = folded.dump();
    metadata["bn_eps"] = exact_double(kBatchNormEps);
  }
  SafetensorsContent out;
  nlohmann::json masked = nlohmann::json::object();
  int64_t kept = 0, total = 0;
  for (const auto& [name, tensor] : state) {
    const auto k = keep.find(name);
    if (k == keep.end()) {
      require(!ends_with(name, kValues) && !ends_with(name, kMaskBits),
              label + ": tensor '" + name + "' would be mistaken for part of a masked tensor");
      out.tensors[name] = tensor;
      continue;
    }
    const auto flat = k->second.flatten();
    out.tensors[name + kValues] = tensor.flatten().masked_select(flat).to(options.dtype);
    out.tensors[name + kMaskBits] = pack_bits(flat);
    masked[name] = tensor.sizes().vec();
    kept += out.tensors[name + kValues].numel();
    total += tensor.numel();
  }
  metadata["masked"] = masked.dump();
  metadata["dtype"] = dtype;
  metadata["kept"] = std::to_string(kept);
  metadata["total"] = std::to_string(total);
  metadata["density"] = exact_double(total ? static_cast<double>(kept) / total : 1.0);
  metadata["iteration"] = std::to_string(ckpt.iteration);
  metadata["config"] = ckpt.config.dump();
  if (ckpt.config.contains("model")) metadata["model"] = ckpt.config["model"].dump();
  if (ckpt.best_acc) metadata["best_acc"] = exact_double(*ckpt.best_acc);
  out.metadata = std::move(metadata);
  return out;
}

ExportSummary summarize_export(const Checkpoint& ckpt, const SafetensorsContent& compact) {
  ExportSummary s;
  auto bytes = [](const at::Tensor& t) {
    return static_cast<int64_t>(t.numel() * t.element_size());
  };
  for (const auto& [name, mask] : ckpt.masks) {
    const auto& dense = ckpt.state.at(name);
    ++s.masked_tensors;
    s.total += dense.numel();
    s.dense_masked_bytes += bytes(dense);
  }
  for (const auto& [name, tensor] : compact.tensors) {
    if (ends_with(name, kValues)) s.kept += tensor.numel();
    if (ends_with(name, kValues) || ends_with(name, kMaskBits))
      s.compact_masked_bytes += bytes(tensor);
    else
      s.unmasked_bytes += bytes(tensor);
  }
  const auto folded = compact.metadata.find("folded");
  if (folded != compact.metadata.end())
    s.folded_bns = static_cast<int64_t>(nlohmann::json::parse(folded->second).size());
  return s;
}

ExportSummary export_compact_ticket(const std::filesystem::path& to, const std::string& label,
                                    const Checkpoint& ckpt, const ExportOptions& options) {
  std::error_code ignored;
  require(!std::filesystem::exists(std::filesystem::symlink_status(to, ignored)),
          to.string() +
              ": already exists (lth export never overwrites; remove it or choose "
              "another --to)");
  const auto content = encode_compact_ticket(label, ckpt, options);
  write_safetensors(to, content.tensors, content.metadata);
  return summarize_export(ckpt, content);
}

bool is_compact_ticket(const Metadata& metadata) {
  const auto it = metadata.find("format");
  return it != metadata.end() && it->second == kCompactTicketFormat;
}

Checkpoint decode_compact_ticket(const std::string& label, SafetensorsContent content) {
  const MetadataReader reader(label, content.metadata);
  if (!is_compact_ticket(content.metadata))
    reader.fail("metadata 'format' is not '" + std::string(kCompactTicketFormat) + "'");
  Checkpoint ckpt;
  ckpt.iteration = reader.count("iteration");
  ckpt.config = reader.json_object("config");
  if (content.metadata.count("best_acc")) {
    ckpt.best_acc = reader.number("best_acc");
    if (*ckpt.best_acc < 0 || *ckpt.best_acc > 1)
      reader.fail("metadata 'best_acc' is not an accuracy in [0, 1]");
  }
  at::ScalarType dtype = at::kFloat;
  try {
    dtype = parse_values_dtype(reader.text("dtype"));
  } catch (const UserError& e) {
    reader.fail(std::string("metadata 'dtype': ") + e.what());
  }
  const bool folded = reader.flag("fold_bn");
  auto& tensors = content.tensors;
  const auto masked = reader.json_object("masked");
  for (const auto& [name, shape] : masked.items())
    expand_masked(reader, name, shape, dtype, tensors, ckpt);
  for (auto& [name, tensor] : tensors) {
    if (ends_with(name, kValues) || ends_with(name, kMaskBits))
      reader.fail("tensor '" + name + "' belongs to no entry of metadata 'masked'");
    ckpt.state[name] = std::move(tensor);
  }
  if (folded) {
    const double eps = reader.number("bn_eps");
    if (!(eps >= 0 && eps < 1)) reader.fail("metadata 'bn_eps' is not in [0, 1)");
    unfold_batch_norms(label, ckpt.state, folds_from(reader), eps);
  }
  return ckpt;
}

}  // namespace lth::io
