#include "train/run_log.h"

#include "common/command_log.h"
#include "common/error.h"
#include "io/file_util.h"
#include "io/tensorboard.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <vector>

namespace lth::train {

RunLog::RunLog(const std::filesystem::path& dir, bool writer) : dir_(dir), writer_(writer) {
  std::vector<spdlog::sink_ptr> sinks;
  if (writer_) {
    std::filesystem::create_directories(dir_);
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>((dir_ / "log.txt").string()));
    mirror_ = std::make_unique<LogMirror>(sinks.back());
  }
  // Not registered globally: every run folder has its own logger, no hidden shared state.
  logger_ = std::make_shared<spdlog::logger>("lth:" + dir_.string(), sinks.begin(), sinks.end());
  logger_->set_pattern("[%Y-%m-%d %H:%M:%S] %v");
  logger_->flush_on(spdlog::level::info);
}

RunLog::~RunLog() = default;

void RunLog::info(const std::string& message) { logger_->info(message); }
void RunLog::warn(const std::string& message) { logger_->warn("warning: " + message); }

void RunLog::event(const std::string& name, nlohmann::json fields) {
  if (!writer_) return;
  fields["event"] = name;
  fields["time"] = std::chrono::duration<double>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  // One write(2) of the whole line on an O_APPEND descriptor, checked: a full disk or a
  // vanished folder is a UserError naming the file, never a silently missing event.
  const auto path = dir_ / "metrics.jsonl";
  const std::string line = fields.dump() + '\n';
  io::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid())
    throw UserError(path.string() + ": cannot append (" + io::errno_text(errno) + ")");
  io::FileSink(fd.get(), path.string()).write(line);
  if (!fd.close()) throw UserError(path.string() + ": close failed (" + io::errno_text(errno) + ")");
  if (tensorboard_on_) tensorboard_event(name, fields);
}

void RunLog::tensorboard_event(const std::string& name, const nlohmann::json& fields) {
  // Tags group by prefix in TensorBoard's UI: train/, val/, test/<set>/, cycle/.
  std::vector<std::pair<std::string, double>> values;
  const auto add = [&](const std::string& tag, const char* key) {
    if (fields.contains(key) && fields[key].is_number()) values.emplace_back(tag, fields[key].get<double>());
  };
  int64_t step = last_step_;
  if (name == "eval") {
    step = last_step_ = fields.value("iteration", int64_t{0});
    add("train/loss", "train_loss");
    add("train/lr", "lr");
    add("train/images_per_sec", "images_per_sec");
    add("val/acc", "val_acc");
    add("val/nll", "val_nll");
    add("val/ece", "val_ece");
    add("val/best_acc", "best_acc");
  } else if (name == "cycle") {
    step = cycle_ = fields.value("cycle", int64_t{0});
    add("cycle/density", "density");
    add("cycle/best_val_acc", "best_val_acc");
  } else if (name == "test") {
    // By cycle number when known, so each set's accuracy reads across the cycle folders.
    if (cycle_ >= 0) step = cycle_;
    const std::string set = fields.value("set", "test");
    add("test/" + set + "/acc", "acc");
    add("test/" + set + "/nll", "nll");
    add("test/" + set + "/ece", "ece");
  }
  if (values.empty()) return;
  if (!tensorboard_) tensorboard_ = std::make_unique<io::TensorBoardWriter>(dir_);
  tensorboard_->scalars(values, step);
}

bool RunLog::logged(const std::string& name, const std::string& set) const {
  std::ifstream in(dir_ / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("event", "") != name) continue;
    if (set.empty() || (j.contains("set") && j["set"] == set)) return true;
  }
  return false;
}

void RunLog::truncate_after(int64_t iteration) {
  if (!writer_) return;
  const auto path = dir_ / "metrics.jsonl";
  std::ifstream in(path);
  if (!in) return;
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) continue;  // a torn last line from a crash
    // Only lth's own integer iterations are compared; an event whose "iteration" is not
    // one (a hand edit) cannot be ordered and is kept as it is.
    if (j.is_object() && j.contains("iteration") && j["iteration"].is_number_integer() &&
        j["iteration"].get<int64_t>() > iteration)
      continue;
    kept.push_back(line);
  }
  in.close();
  std::string text;
  for (const auto& line : kept) text += line + '\n';
  io::write_text_atomically(path, text);
  if (tensorboard_on_) {
    if (!tensorboard_) tensorboard_ = std::make_unique<io::TensorBoardWriter>(dir_);
    tensorboard_->truncate_after(iteration);
  }
}

}  // namespace lth::train
