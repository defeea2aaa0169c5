#include "data/shards/shard_writer.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "common/error.h"
#include "data/shards/example.h"
#include "data/shards/tar.h"
#include "data/shards/tfds.h"
#include "data/shards/tfrecord.h"

namespace lth::data::shards {
namespace fs = std::filesystem;
namespace {

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), path.string() + ": cannot read");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string read_bytes(const SourceSample& s) {
  if (s.size < 0) return read_bytes(s.path);
  std::ifstream in(s.path, std::ios::binary);
  std::string bytes(static_cast<size_t>(s.size), '\0');
  in.seekg(static_cast<std::streamoff>(s.offset));
  in.read(bytes.data(), s.size);
  require(static_cast<bool>(in), s.path.string() + ": cannot read " + s.file_name + " at byte " +
                                     std::to_string(s.offset));
  return bytes;
}

fs::path name_of(const SourceSample& s) { return s.file_name.empty() ? s.path : fs::path(s.file_name); }

std::vector<int64_t> lengths(int64_t n, int64_t shard_size) {
  require(shard_size > 0, "--shard_size must be positive");
  const int64_t shards = std::max<int64_t>(1, (n + shard_size - 1) / shard_size);
  std::vector<int64_t> out(static_cast<size_t>(shards), shard_size);
  out.back() = n - shard_size * (shards - 1);
  return out;
}

// "n01440764/n01440764_10026.JPEG" -> key "n01440764/n01440764_10026" (dots would split it).
std::string key_of(const SourceSample& s) {
  std::string key = s.key;
  if (key.empty()) {
    key = (s.path.parent_path().filename() / s.path.stem()).generic_string();
  }
  for (auto& c : key) {
    if (c == '.') c = '_';
  }
  return key;
}

std::string extension_of(const fs::path& path) {
  std::string ext = path.extension().string();
  if (!ext.empty()) ext.erase(0, 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext.empty() ? "jpg" : ext;
}

void commit(const fs::path& tmp, const fs::path& final_path) {
  std::error_code ec;
  fs::rename(tmp, final_path, ec);
  require(!ec, final_path.string() + ": cannot rename into place: " + ec.message());
}

}  // namespace

std::vector<int64_t> write_tfrecord_shards(const std::vector<SourceSample>& samples, const fs::path& dir,
                                           const std::string& builder, const std::string& split,
                                           int64_t shard_size, bool resume) {
  fs::create_directories(dir);
  const auto sizes = lengths(static_cast<int64_t>(samples.size()), shard_size);
  size_t next = 0;
  for (size_t s = 0; s < sizes.size(); ++s) {
    const auto path = dir / tfds_shard_name(builder, split, static_cast<int64_t>(s),
                                            static_cast<int64_t>(sizes.size()));
    const auto tmp = fs::path(path.string() + ".tmp");
    if (resume && fs::exists(path)) {
      next += static_cast<size_t>(sizes[s]);
      continue;
    }
    {
      TFRecordWriter writer(tmp);
      for (int64_t i = 0; i < sizes[s]; ++i, ++next) {
        const auto& sample = samples[next];
        ExampleBuilder ex;
        ex.bytes["image"] = {read_bytes(sample)};
        ex.bytes["file_name"] = {name_of(sample).filename().string()};
        ex.ints["label"] = {sample.label};
        writer.write(ex.serialize());
      }
      writer.close();
    }
    commit(tmp, path);
  }
  return sizes;
}

std::vector<int64_t> write_webdataset_shards(const std::vector<SourceSample>& samples, const fs::path& dir,
                                             const std::string& prefix, int64_t shard_size, bool resume) {
  fs::create_directories(dir);
  const auto sizes = lengths(static_cast<int64_t>(samples.size()), shard_size);
  size_t next = 0;
  for (size_t s = 0; s < sizes.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "-%06zu.tar", s);
    const auto path = dir / (prefix + name);
    const auto tmp = fs::path(path.string() + ".tmp");
    if (resume && fs::exists(path)) {
      next += static_cast<size_t>(sizes[s]);
      continue;
    }
    {
      TarWriter writer(tmp);
      for (int64_t i = 0; i < sizes[s]; ++i, ++next) {
        const auto& sample = samples[next];
        const auto key = key_of(sample);
        writer.add(key + "." + extension_of(name_of(sample)), read_bytes(sample));
        writer.add(key + ".cls", std::to_string(sample.label));
      }
      writer.close();
    }
    commit(tmp, path);
  }
  return sizes;
}

}  // namespace lth::data::shards
