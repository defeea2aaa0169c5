#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/text.h"
#include "io/file_util.h"

// The format is little-endian; so is every machine lth targets (x86-64, aarch64), which
// lets tensor bytes go to and from disk without swapping.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "lth's safetensors code assumes a little-endian host");

namespace lth::io {
namespace {

struct DtypeEntry {
  const char* name;
  torch::ScalarType type;
  size_t bytes;
};

constexpr DtypeEntry kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeEntry* find_dtype(const std::string& name) {
  for (const auto& entry : kDtypes)
    if (name == entry.name) return &entry;
  return nullptr;
}

std::string supported_dtypes() {
  std::string list;
  for (const auto& entry : kDtypes) list += (list.empty() ? "" : " ") + std::string(entry.name);
  return list;
}

constexpr size_t kLengthBytes = 8;
// The reference implementation refuses headers over 100 MB (MAX_HEADER_SIZE); so do we,
// before allocating anything for one.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

// ---- reading -------------------------------------------------------------------------

// Carries the file name so that every complaint is one line naming the file.
class HeaderParser {
 public:
  explicit HeaderParser(std::string label) : label_(std::move(label)) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw UserError(label_ + ": " + problem);
  }

  uint64_t header_length(const unsigned char* bytes, size_t file_size) const {
    if (file_size < kLengthBytes)
      fail("too short for a safetensors file (" + std::to_string(file_size) +
           " bytes, the 8-byte header length alone needs 8)");
    uint64_t length = 0;
    std::memcpy(&length, bytes, kLengthBytes);
    if (length > kMaxHeaderBytes)
      fail("header length " + std::to_string(length) + " exceeds the format's limit of " +
           std::to_string(kMaxHeaderBytes) + " bytes");
    if (length > file_size - kLengthBytes)
      fail("header length " + std::to_string(length) + " is larger than the rest of the file (" +
           std::to_string(file_size - kLengthBytes) + " bytes): truncated or not safetensors");
    return length;
  }

  SafetensorsHeader parse(const unsigned char* header, uint64_t length, size_t file_size) const {
    nlohmann::json json;
    // JSON allows a key twice and keeps the last; the reference refuses such a header, and
    // so do we: two descriptions of one tensor mean the file is not what it claims.
    std::vector<std::set<std::string>> keys;  // one set per open object
    const auto no_duplicates = [&](int, nlohmann::json::parse_event_t event,
                                   nlohmann::json& parsed) {
      using Event = nlohmann::json::parse_event_t;
      if (event == Event::object_start) keys.emplace_back();
      if (event == Event::object_end && !keys.empty()) keys.pop_back();
      if (event == Event::key && !keys.empty()) {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!keys.back().insert(key).second) fail("header names '" + key + "' twice");
      }
      return true;
    };
    try {
      json = nlohmann::json::parse(header, header + length, no_duplicates);
    } catch (const nlohmann::json::exception& e) {
      fail(std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (!json.is_object()) fail("header is not a JSON object");
    SafetensorsHeader out;
    out.data_start = kLengthBytes + length;
    for (const auto& [name, value] : json.items()) {
      if (name == kMetadataKey)
        out.metadata = parse_metadata(value);
      else
        out.tensors[name] = parse_tensor(name, value);
    }
    check_layout(out.tensors, file_size - out.data_start);
    return out;
  }

 private:
  Metadata parse_metadata(const nlohmann::json& value) const {
    if (!value.is_object()) fail("__metadata__ is not a JSON object");
    Metadata metadata;
    for (const auto& [key, entry] : value.items()) {
      if (!entry.is_string()) fail("__metadata__ entry '" + key + "' is not a string");
      metadata[key] = entry.get<std::string>();
    }
    return metadata;
  }

  uint64_t non_negative(const nlohmann::json& value, const std::string& what) const {
    // nlohmann stores every integer literal without a minus sign as unsigned.
    if (!value.is_number_unsigned()) fail(what + " is not a non-negative integer");
    return value.get<uint64_t>();
  }

  TensorInfo parse_tensor(const std::string& name, const nlohmann::json& value) const {
    const std::string what = "tensor '" + name + "'";
    if (!value.is_object()) fail(what + " is not described by a JSON object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!value.contains(key)) fail(what + " has no \"" + key + "\"");
    TensorInfo info;
    if (!value["dtype"].is_string()) fail(what + " has a dtype that is not a string");
    info.dtype = value["dtype"].get<std::string>();
    if (find_dtype(info.dtype) == nullptr)
      fail(what + " has unsupported dtype '" + info.dtype + "' (supported: " + supported_dtypes() +
           ")");
    const auto& shape = value["shape"];
    if (!shape.is_array()) fail(what + " has a shape that is not an array");
    for (const auto& dim : shape) {
      const uint64_t d = non_negative(dim, what + " shape entry");
      if (d > static_cast<uint64_t>(INT64_MAX)) fail(what + " has an absurd shape");
      info.shape.push_back(static_cast<int64_t>(d));
    }
    const auto& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2)
      fail(what + " data_offsets is not [begin, end]");
    info.begin = non_negative(offsets[0], what + " data_offsets begin");
    info.end = non_negative(offsets[1], what + " data_offsets end");
    if (info.end < info.begin) fail(what + " has data_offsets [begin, end] with end < begin");
    check_size(what, info);
    return info;
  }

  void check_size(const std::string& what, const TensorInfo& info) const {
    uint64_t bytes = find_dtype(info.dtype)->bytes;
    for (const int64_t dim : info.shape)
      if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes))
        fail(what + " has a shape too large to address");
    if (bytes != info.end - info.begin)
      fail(what + " has shape " + shape_text(info.shape) + " and dtype " + info.dtype + " (" +
           std::to_string(bytes) + " bytes) but data_offsets [" + std::to_string(info.begin) +
           ", " + std::to_string(info.end) + "] span " + std::to_string(info.end - info.begin));
  }

  // As the reference requires: the tensors tile the data section exactly, in some order.
  void check_layout(const std::map<std::string, TensorInfo>& tensors, uint64_t data_size) const {
    std::vector<std::pair<const std::string*, const TensorInfo*>> order;
    for (const auto& [name, info] : tensors) order.emplace_back(&name, &info);
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return std::make_pair(a.second->begin, a.second->end) <
             std::make_pair(b.second->begin, b.second->end);
    });
    uint64_t position = 0;
    const std::string* previous = nullptr;
    for (const auto& [name, info] : order) {
      if (info->end > data_size)
        fail("tensor '" + *name + "' ends at byte " + std::to_string(info->end) +
             " beyond the end of the data section (" + std::to_string(data_size) +
             " bytes): truncated file");
      if (info->begin < position)
        fail("tensors '" + *previous + "' and '" + *name + "' overlap in the data section");
      if (info->begin > position)
        fail("data section bytes " + std::to_string(position) + ".." + std::to_string(info->begin) +
             " belong to no tensor");
      position = info->end;
      previous = name;
    }
    if (position != data_size)
      fail("data section is " + std::to_string(data_size) + " bytes but the header describes " +
           std::to_string(position) + " (truncated or trailing data)");
  }

  std::string label_;
};

torch::Tensor make_tensor(const HeaderParser& parser, const std::string& name,
                          const TensorInfo& info, const unsigned char* data) {
  const DtypeEntry* dtype = find_dtype(info.dtype);
  const size_t bytes = info.end - info.begin;
  // A BOOL byte other than 0/1 is undefined behaviour for torch::kBool.
  if (dtype->type == torch::kBool)
    for (size_t i = 0; i < bytes; ++i)
      if (data[info.begin + i] > 1)
        parser.fail("tensor '" + name + "' (BOOL) holds a byte other than 0 or 1");
  // A fresh tensor and memcpy rather than views of one shared buffer: offsets need not be
  // aligned for the dtype, and a view would keep the whole file alive for as long as any
  // single tensor of it is used.
  torch::Tensor tensor = torch::empty(info.shape, torch::TensorOptions().dtype(dtype->type));
  if (bytes > 0) std::memcpy(tensor.data_ptr(), data + info.begin, bytes);
  return tensor;
}

// ---- writing -------------------------------------------------------------------------

const DtypeEntry& dtype_entry(torch::ScalarType type) {
  for (const auto& entry : kDtypes)
    if (entry.type == type) return entry;
  throw UserError(std::string("safetensors cannot hold dtype ") + c10::toString(type) +
                  " (supported: " + supported_dtypes() + ")");
}

std::string padded_header(const nlohmann::ordered_json& header) {
  std::string text = header.dump();
  // Reference behaviour: spaces up to a multiple of 8, so the data section starts aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

std::string safetensors_dtype(torch::ScalarType type) { return dtype_entry(type).name; }

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const HeaderParser parser(path.string());
  size_t file_size = 0;
  FileBytes prefix = read_file_prefix(path, kLengthBytes, &file_size);
  const uint64_t length = parser.header_length(prefix.data.get(), file_size);
  prefix = read_file_prefix(path, kLengthBytes + length, &file_size);
  // The file may have changed between the two reads; re-validate against what we hold.
  if (prefix.size < kLengthBytes + length) parser.fail("file shrank while being read");
  return parser.parse(prefix.data.get() + kLengthBytes, length, file_size);
}

SafetensorsContent read_safetensors(const std::filesystem::path& path) {
  const HeaderParser parser(path.string());
  const FileBytes file = read_whole_file(path);
  const uint64_t length = parser.header_length(file.data.get(), file.size);
  const SafetensorsHeader header = parser.parse(file.data.get() + kLengthBytes, length, file.size);
  SafetensorsContent content;
  content.metadata = header.metadata;
  const unsigned char* data = file.data.get() + header.data_start;
  for (const auto& [name, info] : header.tensors)
    content.tensors[name] = make_tensor(parser, name, info, data);
  return content;
}

void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const Metadata& metadata) {
  const std::string label = path.string();
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::vector<torch::Tensor> cpu;  // in file order (std::map: sorted by name)
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    require(!name.empty() && name != kMetadataKey, label + ": invalid tensor name '" + name + "'");
    require(tensor.defined(), label + ": tensor '" + name + "' is undefined");
    require(tensor.layout() == torch::kStrided, label + ": tensor '" + name + "' is not dense");
    const DtypeEntry& dtype = dtype_entry(tensor.scalar_type());
    torch::Tensor host = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(host.numel()) * dtype.bytes;
    header[name] = {{"dtype", dtype.name},
                    {"shape", host.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    cpu.push_back(std::move(host));
  }
  const std::string text = padded_header(header);
  write_file_atomically(path, [&](FileSink& sink) {
    const uint64_t length = text.size();
    sink.write(&length, sizeof length);
    sink.write(text);
    for (const auto& tensor : cpu) sink.write(tensor.data_ptr(), tensor.nbytes());
  });
}

}  // namespace lth::io
