#pragma once
// The record of one run folder: a human log (log.txt, also echoed to stderr) and
// metrics.jsonl, one JSON object per event. Only rank 0 writes; other ranks' RunLogs
// are silent. On resume, events past the resumed iteration are dropped so the files
// read as if the run had never been interrupted.
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace spdlog {
class logger;
}

namespace lth::train {

class RunLog {
 public:
  RunLog(const std::filesystem::path& dir, bool writer);
  ~RunLog();

  void info(const std::string& message);
  void warn(const std::string& message);
  // Appends {"event": name, ...fields} to metrics.jsonl and flushes it.
  void event(const std::string& name, nlohmann::json fields);
  // Removes metrics events whose "iteration" is greater than `iteration`.
  void truncate_after(int64_t iteration);
  const std::filesystem::path& dir() const { return dir_; }
  bool writer() const { return writer_; }

 private:
  std::filesystem::path dir_;
  bool writer_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace lth::train
