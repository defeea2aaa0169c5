#include "data/shards/shard_dataset.h"

#include <spdlog/spdlog.h>

#include <map>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <exception>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "data/imagenet/codec.h"
#include "data/imagenet/pipeline.h"
#include "data/shards/example.h"
#include "data/shards/protobuf_wire.h"
#include "data/shards/random_access_file.h"
#include "data/shards/tar.h"
#include "data/shards/tfrecord.h"

namespace lth::data::shards {
namespace {

void framing_problem(const std::string& problem, bool strict, int64_t kept) {
  if (strict) throw UserError(problem);
  spdlog::warn("{} (keeping the {} samples before it)", problem, kept);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// WebDataset's key/extension split: the extension starts at the first '.' of the file name.
std::pair<std::string, std::string> split_key(const std::string& name) {
  const auto slash = name.rfind('/');
  const auto dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
  if (dot == std::string::npos) return {name, ""};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

bool is_image_extension(const std::string& ext) {
  const auto e = lower(ext);
  return e == "jpg" || e == "jpeg" || e == "png";
}

int64_t parse_cls(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.empty() || text.size() > 18) throw RecordError(".cls is not a class number");
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') throw RecordError(".cls is not a class number: '" + std::string(text) + "'");
    v = v * 10 + (c - '0');
  }
  return v;
}

// Runs scan(f) for every file on a few threads (indexing ImageNet's 1024 shards is one small
// read per record: latency-bound on network file systems), results in file order.
template <typename Result, typename Scan>
std::vector<Result> scan_all(const std::vector<std::filesystem::path>& files, Scan scan) {
  std::vector<Result> results(files.size());
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  const auto work = [&] {
    for (size_t f; (f = next.fetch_add(1)) < files.size();) {
      try {
        results[f] = scan(RandomAccessFile(files[f]));
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  const size_t n = std::min<size_t>(files.size(), 8);
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  return results;
}

}  // namespace

ShardIndex index_tfrecord_files(const std::vector<std::filesystem::path>& files, bool strict) {
  ShardIndex index;
  index.format = ShardFormat::TFRecord;
  index.files = files;
  const auto scans = scan_all<ScanResult>(files, [](const RandomAccessFile& file) { return scan_tfrecord(file); });
  for (size_t f = 0; f < files.size(); ++f) {
    const auto& scan = scans[f];
    if (!scan.problem.empty()) {
      ++index.damaged_files;
      framing_problem(scan.problem, strict, static_cast<int64_t>(scan.records.size()));
    }
    for (const auto& r : scan.records) {
      index.samples.push_back(ShardSample{static_cast<int32_t>(f), r.offset, r.length, 0, 0});
    }
    index.records_per_file.push_back(static_cast<int64_t>(scan.records.size()));
  }
  return index;
}

ShardIndex index_webdataset_files(const std::vector<std::filesystem::path>& files, bool strict) {
  ShardIndex index;
  index.format = ShardFormat::WebDataset;
  index.files = files;
  const auto scans = scan_all<TarScan>(files, [](const RandomAccessFile& file) { return scan_tar(file); });
  for (size_t f = 0; f < files.size(); ++f) {
    const auto& scan = scans[f];
    if (!scan.problem.empty()) ++index.damaged_files;
    int64_t kept = 0;
    std::string current;
    ShardSample sample;
    bool has_image = false, has_cls = false;
    // Per key: its runs of consecutive members, and whether one run was a whole sample. A
    // sample is one run (WebDataset's rule); a key in several runs was written unsorted.
    std::map<std::string, std::pair<int64_t, bool>> keys;
    const auto finish = [&] {
      if (current.empty()) return;
      auto& [runs, complete] = keys[current];
      ++runs;
      if (has_image && has_cls) {
        index.samples.push_back(sample);
        ++kept;
        complete = true;
      }
    };
    for (const auto& m : scan.members) {
      auto [key, ext] = split_key(m.name);
      const auto base = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
      if (base.empty() || base[0] == '.' || base.rfind("__", 0) == 0) continue;  // metadata
      if (key != current) {
        finish();
        current = key;
        sample = ShardSample{static_cast<int32_t>(f), 0, 0, 0, 0};
        has_image = has_cls = false;
      }
      if (is_image_extension(ext) && !has_image) {
        sample.offset = m.offset;
        sample.length = m.size;
        has_image = true;
      } else if (lower(ext) == "cls") {
        sample.label_offset = m.offset;
        sample.label_length = m.size;
        has_cls = true;
      }
    }
    finish();
    if (!scan.problem.empty()) framing_problem(scan.problem, strict, kept);
    int64_t incomplete = 0, scattered = 0;
    for (const auto& [key, k] : keys) {
      incomplete += k.second ? 0 : 1;
      scattered += k.first > 1 ? 1 : 0;
    }
    if (incomplete > 0) {
      std::string msg = files[f].string() + ": " + std::to_string(incomplete) + " of " +
                        std::to_string(keys.size()) +
                        " keys have no image (.jpg/.jpeg/.png) and .cls member next to each other";
      if (scattered > 0)
        msg += " (" + std::to_string(scattered) + " keys' members are not consecutive: a sample's " +
               "members must follow one another in the tar; write it with `tar --sort=name`)";
      if (strict) throw UserError(msg);
      spdlog::warn("{}; {} samples kept, the rest skipped", msg, kept);
    }
    index.records_per_file.push_back(kept);
  }
  return index;
}

ShardDataset::ShardDataset(std::string name, ShardIndex index, ShardReadOptions options)
    : name_(std::move(name)), index_(std::move(index)), options_(std::move(options)) {}

std::string ShardDataset::where(int64_t i) const {
  const auto& s = index_.samples.at(static_cast<size_t>(i));
  const bool tf = index_.format == ShardFormat::TFRecord;
  return index_.files[static_cast<size_t>(s.file)].string() + " (" + (tf ? "record" : "member") +
         " at byte " + std::to_string(tf ? s.offset - 12 : s.offset) + ")";
}

// A record or picture larger than this is refused before it is read (a hostile shard must
// cost one skipped sample, not the machine's memory); ImageNet's largest JPEG is ~15 MB.
constexpr uint64_t kMaxSampleBytes = uint64_t{256} << 20;
constexpr uint64_t kMaxClsBytes = 64;

std::pair<std::string, int64_t> ShardDataset::raw(int64_t i) const {
  const auto& s = index_.samples.at(static_cast<size_t>(i));
  if (s.length > kMaxSampleBytes) {
    throw RecordError("sample of " + std::to_string(s.length) + " bytes exceeds the 256 MiB limit");
  }
  if (s.label_length > kMaxClsBytes) throw RecordError(".cls member over 64 bytes");
  const RandomAccessFile file(index_.files[static_cast<size_t>(s.file)]);
  int64_t stored = 0;
  std::string image;
  if (index_.format == ShardFormat::TFRecord) {
    const std::string record = read_record(file, RecordSpan{s.offset, s.length});
    const auto example = parse_example(record);
    const auto img = example.find(options_.image_feature);
    if (img == example.end() || img->second.kind != Feature::Kind::Bytes || img->second.bytes.empty()) {
      throw RecordError("record has no bytes feature '" + options_.image_feature + "'");
    }
    const auto lab = example.find(options_.label_feature);
    if (lab == example.end() || lab->second.kind != Feature::Kind::Int64 || lab->second.ints.empty()) {
      throw RecordError("record has no int64 feature '" + options_.label_feature + "'");
    }
    image = std::string(img->second.bytes.front());
    stored = lab->second.ints.front();
  } else {
    image.resize(s.length);
    std::string cls(s.label_length, '\0');
    if (file.read_at(s.offset, image.data(), s.length) != s.length ||
        file.read_at(s.label_offset, cls.data(), s.label_length) != s.label_length) {
      throw RecordError("member runs past the end of the file");
    }
    stored = parse_cls(cls);
  }
  int64_t label = stored;
  if (!options_.label_map.empty()) {
    label = stored >= 0 && stored < static_cast<int64_t>(options_.label_map.size())
                ? options_.label_map[static_cast<size_t>(stored)]
                : -1;
  }
  if (label < 0 || label >= options_.num_classes) {
    throw RecordError("label " + std::to_string(stored) + " is not one of the " +
                      std::to_string(options_.num_classes) + " classes of the index");
  }
  return {std::move(image), label};
}

std::optional<Example> ShardDataset::get(int64_t index, Rng& rng) const {
  auto image = torch::empty({options_.size, options_.size, 3}, torch::kUInt8);
  const auto label = get_into(index, rng, image.data_ptr<uint8_t>());
  if (!label) return std::nullopt;
  return Example{image, *label};
}

std::optional<int64_t> ShardDataset::get_into(int64_t index, Rng& rng, uint8_t* slot) const {
  imagenet::TransformSpec spec;
  spec.size = options_.size;
  spec.train = options_.train;
  try {
    try {
      const auto [bytes, label] = raw(index);
      imagenet::decode_and_transform(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                     spec, rng, slot);
      return label;
    } catch (const std::bad_alloc&) {
      throw imagenet::DecodeError("out of memory decoding it");
    }
  } catch (const std::exception& e) {
    // RecordError, WireError, DecodeError: this sample is unreadable. (UserErrors from
    // opening the file are not: a shard that vanished mid-run is not a damaged sample.)
    if (dynamic_cast<const UserError*>(&e)) throw;
    unreadable_.fetch_add(1);
    if (options_.strict) throw UserError(where(index) + ": " + e.what());
    spdlog::warn("skipping unreadable sample {}: {}", where(index), e.what());
    return std::nullopt;
  }
}

std::string ShardDataset::describe() const {
  return name_ + " (" + std::to_string(size()) + " samples in " +
         std::to_string(index_.files.size()) + (index_.format == ShardFormat::TFRecord ? " TFRecord" : " tar") +
         " shards)";
}

ShardLayout ShardDataset::shard_layout() const {
  if (!options_.stream_order) return {};
  return ShardLayout{index_.records_per_file, options_.shuffle_buffer};
}

}  // namespace lth::data::shards
