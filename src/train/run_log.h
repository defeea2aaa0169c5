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

namespace lth::io {
class TensorBoardWriter;
}

namespace lth {
class LogMirror;
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
  // Whether metrics.jsonl already holds an `name` event (with "set" = `set` when given):
  // a phase resumed after it finished training must not log its end events twice.
  bool logged(const std::string& name, const std::string& set = "") const;
  // Removes metrics events whose "iteration" is greater than `iteration` (and likewise
  // from the TensorBoard events file).
  void truncate_after(int64_t iteration);
  // TensorBoard scalars (on by default): every event() also goes to the folder's events
  // file, "eval" as train/ val/ series by iteration, "cycle" and "test" by cycle number.
  void set_tensorboard(bool on) { tensorboard_on_ = on; }
  const std::filesystem::path& dir() const { return dir_; }
  bool writer() const { return writer_; }

 private:
  std::filesystem::path dir_;
  bool writer_;
  std::shared_ptr<spdlog::logger> logger_;
  // The command's warnings (unreadable samples, ...) also go to this folder's log.txt.
  std::unique_ptr<LogMirror> mirror_;
  bool tensorboard_on_ = true;
  std::unique_ptr<io::TensorBoardWriter> tensorboard_;  // created on the first event
  int64_t last_step_ = 0;   // of the last "eval" event
  int64_t cycle_ = -1;      // of the last "cycle" event
  void tensorboard_event(const std::string& name, const nlohmann::json& fields);
};

}  // namespace lth::train
