#include "data/ilsvrc/devkit.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "common/error.h"
#include "common/text.h"
#include "data/ilsvrc/gzip.h"
#include "data/ilsvrc/matlab.h"
#include "data/imagenet/class_index.h"
#include "data/shards/tar.h"
#include "io/file_util.h"

namespace lth::data::ilsvrc {
namespace fs = std::filesystem;
namespace {

constexpr const char* kMeta = "data/meta.mat";
constexpr const char* kTruth = "data/ILSVRC2012_validation_ground_truth.txt";

std::string read_bounded(const fs::path& path, uint64_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  require(!ec, path.string() + ": cannot read: " + ec.message());
  require(size <= max_bytes, path.string() + ": over " + std::to_string(max_bytes) + " bytes; not a devkit file");
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), path.string() + ": cannot open");
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  require(bytes.size() == size, path.string() + ": read failed");
  return bytes;
}

std::string gzip_bytes(const std::string& data) {
  z_stream z{};
  require(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, "cannot start zlib");
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  require(rc == Z_STREAM_END, "gzip compression failed");
  return out;
}

// A ustar member (name < 100 bytes), for the in-memory devkit archive.
void tar_member(std::string& out, const std::string& name, const std::string& data) {
  char h[512] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 99));
  std::snprintf(h + 100, 8, "%07o", 0644u);
  std::snprintf(h + 108, 8, "%07o", 0u);
  std::snprintf(h + 116, 8, "%07o", 0u);
  std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(data.size()));
  std::snprintf(h + 136, 12, "%011o", 0u);
  h[156] = '0';
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (const char c : h) sum += static_cast<unsigned char>(c);
  std::snprintf(h + 148, 8, "%06o", sum);
  out.append(h, 512);
  out += data;
  out.resize((out.size() + 511) / 512 * 512, '\0');
}

}  // namespace

std::optional<std::string> Devkit::wnid(int64_t id) const {
  if (id < 1 || id >= static_cast<int64_t>(wnid_of_id.size())) return std::nullopt;
  return wnid_of_id[static_cast<size_t>(id)];
}

std::vector<std::string> parse_meta_mat(const std::string& bytes, const std::string& label) {
  const auto vars = read_mat(bytes, label);
  const MatArray* synsets = nullptr;
  for (const auto& v : vars) {
    if (v.name == "synsets") synsets = &v;
  }
  require(synsets != nullptr && synsets->kind == MatArray::Kind::Struct,
          label + ": no struct array 'synsets' (not the ILSVRC2012 devkit's meta.mat)");
  const auto canonical = imagenet::ClassIndex::canonical();
  std::vector<std::string> wnid_of_id(1001);
  std::set<std::string> seen;
  int64_t leaves = 0;
  for (int64_t e = 0; e < synsets->numel(); ++e) {
    const auto* id = synsets->field(e, "ILSVRC2012_ID");
    const auto* wnid = synsets->field(e, "WNID");
    const auto* children = synsets->field(e, "num_children");
    require(id && wnid && id->kind == MatArray::Kind::Numeric && id->numbers.size() == 1 &&
                wnid->kind == MatArray::Kind::Char,
            label + ": synsets(" + std::to_string(e + 1) + ") lacks a numeric ILSVRC2012_ID or a WNID");
    const double v = id->numbers[0];
    const bool leaf = !children || (children->numbers.size() == 1 && children->numbers[0] == 0);
    if (v < 1 || v > 1000 || !leaf) continue;  // ids above 1000: the hierarchy's inner synsets
    const auto i = static_cast<size_t>(v);
    require(static_cast<double>(i) == v, label + ": ILSVRC2012_ID " + std::to_string(v) + " is not an integer");
    require(wnid_of_id[i].empty(), label + ": ILSVRC2012_ID " + std::to_string(i) + " appears twice");
    require(imagenet::is_wnid(wnid->text), label + ": '" + wnid->text + "' is not a WordNet id");
    require(seen.insert(wnid->text).second, label + ": WordNet id " + wnid->text + " appears twice");
    require(canonical.find(wnid->text).has_value(),
            label + ": " + wnid->text + " is not one of the 1000 ImageNet-1k classes");
    wnid_of_id[i] = wnid->text;
    ++leaves;
  }
  require(leaves == 1000, label + ": " + std::to_string(leaves) +
                              " leaf synsets with ILSVRC2012_ID 1..1000, not 1000 (not the ILSVRC2012 devkit?)");
  return wnid_of_id;
}

std::vector<int32_t> parse_ground_truth(const std::string& text, const std::string& label) {
  std::vector<int32_t> ids;
  size_t line = 0;
  for (size_t pos = 0; pos < text.size();) {
    auto end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view s(text.data() + pos, end - pos);
    ++line;
    pos = end + 1;
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    if (s.empty()) continue;
    int32_t v = 0;
    const auto [p, err] = std::from_chars(s.data(), s.data() + s.size(), v);
    require(err == std::errc() && p == s.data() + s.size() && v >= 1 && v <= 1000,
            label + ": line " + std::to_string(line) + ": '" + std::string(s.substr(0, 40)) +
                "' is not an ILSVRC2012 class id (1..1000)");
    ids.push_back(v);
  }
  return ids;
}

Devkit read_devkit(const fs::path& path) {
  Devkit kit;
  kit.source = path;
  std::string meta, truth;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    meta = read_bounded(path / kMeta, kMaxDevkitBytes);
    truth = read_bounded(path / kTruth, kMaxDevkitBytes);
  } else {
    std::string archive = read_bounded(path, kMaxDevkitBytes);
    if (is_gzip(archive)) archive = gunzip(archive, 64u << 20, path.string());
    const auto scan = shards::scan_tar_bytes(archive, path.string());
    require(scan.problem.empty(), scan.problem);
    for (const auto& m : scan.members) {
      if (ends_with(m.name, kMeta)) meta = archive.substr(m.offset, m.size);
      if (ends_with(m.name, kTruth)) truth = archive.substr(m.offset, m.size);
    }
    require(!meta.empty(), path.string() + ": no " + kMeta + " inside (not the ILSVRC2012 devkit?)");
    require(!truth.empty(), path.string() + ": no " + kTruth + " inside (not the ILSVRC2012 devkit?)");
  }
  kit.wnid_of_id = parse_meta_mat(meta, (path / kMeta).string());
  kit.val_ids = parse_ground_truth(truth, (path / kTruth).string());
  return kit;
}

std::optional<fs::path> find_devkit(const fs::path& dir) {
  std::error_code ec;
  for (const char* name : {"ILSVRC2012_devkit_t12.tar.gz", "ILSVRC2012_devkit_t12.tar", "ILSVRC2012_devkit_t12"}) {
    if (fs::exists(dir / name, ec)) return dir / name;
  }
  return std::nullopt;
}

void write_devkit(const fs::path& path, const std::vector<std::string>& wnid_of_id,
                  const std::vector<int32_t>& val_ids) {
  const std::vector<std::string> fields = {"ILSVRC2012_ID", "WNID", "words", "gloss", "num_children",
                                           "children", "wordnet_height", "num_train_images"};
  const auto number = [](double v) {
    MatArray a;
    a.dims = {1, 1};
    a.numbers = {v};
    return a;
  };
  const auto text = [](const std::string& s) {
    MatArray a;
    a.kind = MatArray::Kind::Char;
    a.dims = {1, static_cast<int64_t>(s.size())};
    a.text = s;
    return a;
  };
  MatArray synsets;
  synsets.kind = MatArray::Kind::Struct;
  synsets.name = "synsets";
  synsets.fields = fields;
  const int64_t leaves = static_cast<int64_t>(wnid_of_id.size()) - 1;
  const int64_t inner = 3;  // a few non-leaf synsets after the leaves, as the real file has
  synsets.dims = {leaves + inner, 1};
  for (int64_t i = 1; i <= leaves + inner; ++i) {
    const bool leaf = i <= leaves;
    MatArray children;
    children.dims = {1, leaf ? 0 : 2};
    if (!leaf) children.numbers = {1, 2};
    const std::string wnid = leaf ? wnid_of_id[static_cast<size_t>(i)] : "n0000000" + std::to_string(i % 10);
    for (auto item : {number(static_cast<double>(i)), text(wnid), text("words " + wnid), text("gloss"),
                      number(leaf ? 0 : 2), children, number(leaf ? 0 : 1), number(leaf ? 1300 : 0)}) {
      synsets.items.push_back(std::move(item));
    }
  }
  std::string truth;
  for (const auto id : val_ids) truth += std::to_string(id) + "\n";
  std::string tar;
  tar_member(tar, std::string("ILSVRC2012_devkit_t12/") + kMeta, write_mat({synsets}, /*compress=*/true));
  tar_member(tar, std::string("ILSVRC2012_devkit_t12/") + kTruth, truth);
  tar.append(1024, '\0');
  io::write_text_atomically(path, gzip_bytes(tar));
}

}  // namespace lth::data::ilsvrc
