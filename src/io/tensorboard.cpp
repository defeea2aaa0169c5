#include "io/tensorboard.h"

#include <unistd.h>

#include <chrono>
#include <fstream>

#include "common/error.h"
#include "io/file_util.h"
#include "data/shards/protobuf_wire.h"
#include "data/shards/tfrecord.h"

namespace lth::io {
namespace fs = std::filesystem;
using data::shards::WireField;
using data::shards::WireReader;
using data::shards::WireType;
using data::shards::WireWriter;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == 0) return "localhost";
  return name;
}

TensorBoardEvent parse_event(std::string_view data) {
  TensorBoardEvent e;
  WireReader reader(data);
  WireField f;
  while (reader.next(f)) {
    if (f.number == 1 && f.type == WireType::Fixed64) e.wall_time = data::shards::double_bits(f.value);
    if (f.number == 2 && f.type == WireType::Varint) e.step = static_cast<int64_t>(f.value);
    if (f.number == 3 && f.type == WireType::Bytes) e.file_version = std::string(f.bytes);
    if (f.number == 5 && f.type == WireType::Bytes) {
      WireReader summary(f.bytes);
      WireField v;
      while (summary.next(v)) {
        if (v.number != 1 || v.type != WireType::Bytes) continue;
        std::string tag;
        float value = 0;
        bool has_value = false;
        WireReader value_reader(v.bytes);
        WireField part;
        while (value_reader.next(part)) {
          if (part.number == 1 && part.type == WireType::Bytes) tag = std::string(part.bytes);
          if (part.number == 2 && part.type == WireType::Fixed32) {
            value = data::shards::float_bits(static_cast<uint32_t>(part.value));
            has_value = true;
          }
        }
        if (has_value) e.scalars.emplace_back(tag, value);
      }
    }
  }
  return e;
}

}  // namespace

std::string serialize_event(const TensorBoardEvent& event) {
  WireWriter w;
  w.float64(1, event.wall_time);
  if (event.step != 0) w.varint(2, static_cast<uint64_t>(event.step));
  if (!event.file_version.empty()) w.bytes(3, event.file_version);
  if (!event.scalars.empty()) {
    WireWriter summary;
    for (const auto& [tag, value] : event.scalars) {
      WireWriter v;
      v.bytes(1, tag);
      v.float32(2, value);
      summary.bytes(1, v.data());
    }
    w.bytes(5, summary.data());
  }
  return w.take();
}

std::vector<TensorBoardEvent> read_events(const fs::path& file) {
  const data::shards::RandomAccessFile f(file);
  const auto scan = data::shards::scan_tfrecord(f);
  std::vector<TensorBoardEvent> out;
  for (const auto& span : scan.records) {
    try {
      out.push_back(parse_event(data::shards::read_record(f, span)));
    } catch (const std::exception&) {
      break;  // a damaged record: what follows is not trusted either
    }
  }
  return out;
}

fs::path find_events_file(const fs::path& dir) {
  std::error_code ec;
  fs::path found;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("events.out.tfevents.", 0) == 0 &&
        (found.empty() || e.path() < found)) {
      found = e.path();
    }
  }
  return found;
}

TensorBoardWriter::TensorBoardWriter(fs::path dir) : dir_(std::move(dir)) { file_ = find_events_file(dir_); }

void TensorBoardWriter::append(const std::string& serialized_event) {
  if (file_.empty()) {
    fs::create_directories(dir_);
    const auto seconds = static_cast<int64_t>(now());
    file_ = dir_ / ("events.out.tfevents." + std::to_string(seconds) + "." + host_name());
    TensorBoardEvent version;
    version.wall_time = now();
    version.file_version = "brain.Event:2";
    data::shards::TFRecordWriter(file_).write(serialize_event(version));
  }
  data::shards::TFRecordWriter writer(file_, /*append=*/true);
  writer.write(serialized_event);
  writer.close();
}

void TensorBoardWriter::scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step) {
  TensorBoardEvent e;
  e.wall_time = now();
  e.step = step;
  for (const auto& [tag, v] : values) e.scalars.emplace_back(tag, static_cast<float>(v));
  append(serialize_event(e));
}

void TensorBoardWriter::truncate_after(int64_t step) {
  if (file_.empty() || !fs::exists(file_)) return;
  std::string kept;
  for (const auto& e : read_events(file_)) {
    if (e.file_version.empty() && e.step > step) continue;
    kept += data::shards::frame_record(serialize_event(e));
  }
  // Atomic and checked (file_util.h): fresh exclusive temporary, fsync, rename.
  write_text_atomically(file_, kept);
}

}  // namespace lth::io
