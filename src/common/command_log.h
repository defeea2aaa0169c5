#pragma once
// Where lth's log lines go while a command runs (the `lth` binary installs this; library
// tests keep spdlog's default).
//   - stdout carries results only (tables, JSON): every log line, warnings included, goes
//     to stderr, so `lth eval ... > table.txt` holds the table and nothing else;
//   - each distinct warning is printed once; repeats are counted, and when the command
//     ends one line per repeated warning says how often it was given;
//   - while a run folder is being written, its log.txt receives the same lines (RunLog
//     attaches its file through LogMirror), so the warnings of a run are in the run.
#include <memory>

namespace spdlog::sinks {
class sink;
}

namespace lth {

// Installs the stderr, once-per-warning logger as spdlog's default for this process and
// returns a guard: its destruction (the command's end) prints the repeat counts.
class CommandLog {
 public:
  CommandLog();
  ~CommandLog();
  CommandLog(const CommandLog&) = delete;
  CommandLog& operator=(const CommandLog&) = delete;
};

// While alive, the default logger's lines also go to `sink` (a run folder's log.txt). A
// no-op when no CommandLog is installed.
class LogMirror {
 public:
  explicit LogMirror(std::shared_ptr<spdlog::sinks::sink> sink);
  ~LogMirror();
  LogMirror(const LogMirror&) = delete;
  LogMirror& operator=(const LogMirror&) = delete;

 private:
  std::shared_ptr<spdlog::sinks::sink> sink_;
};

}  // namespace lth
