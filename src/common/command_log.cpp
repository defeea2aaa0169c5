#include "common/command_log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace lth {
namespace {

// stderr, each distinct warning once; copies to the attached mirrors. spdlog calls sink_it_
// under base_sink's mutex, which also guards the mirrors and the counts.
class OncePerWarningSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void attach(const std::shared_ptr<spdlog::sinks::sink>& sink) {
    std::lock_guard<std::mutex> lock(mutex_);
    mirrors_.push_back(sink);
  }
  void detach(const std::shared_ptr<spdlog::sinks::sink>& sink) {
    std::lock_guard<std::mutex> lock(mutex_);
    mirrors_.erase(std::remove(mirrors_.begin(), mirrors_.end(), sink), mirrors_.end());
  }
  // "warning given N times: ..." for every warning that repeated, in first-seen order.
  void print_repeats() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& text : order_) {
      const int64_t n = counts_[text];
      if (n > 1) std::fprintf(stderr, "lth: the warning \"%s\" was given %lld times\n", text.c_str(),
                              static_cast<long long>(n));
    }
    std::fflush(stderr);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level >= spdlog::level::warn) {
      const std::string text(msg.payload.data(), msg.payload.size());
      if (counts_[text]++ > 0) return;  // said already; counted for the end of the command
      order_.push_back(text);
    }
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), stderr);
    for (const auto& m : mirrors_) m->log(msg);
  }
  void flush_() override {
    std::fflush(stderr);
    for (const auto& m : mirrors_) m->flush();
  }

 private:
  std::vector<std::shared_ptr<spdlog::sinks::sink>> mirrors_;
  std::map<std::string, int64_t> counts_;
  std::vector<std::string> order_;
};

std::shared_ptr<OncePerWarningSink> installed() {
  const auto logger = spdlog::default_logger();
  if (!logger || logger->sinks().empty()) return nullptr;
  return std::dynamic_pointer_cast<OncePerWarningSink>(logger->sinks().front());
}

}  // namespace

CommandLog::CommandLog() {
  auto sink = std::make_shared<OncePerWarningSink>();
  auto logger = std::make_shared<spdlog::logger>("lth", sink);
  logger->set_pattern("[%Y-%m-%d %H:%M:%S] [%l] %v");
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

CommandLog::~CommandLog() {
  if (auto sink = installed()) sink->print_repeats();
}

LogMirror::LogMirror(std::shared_ptr<spdlog::sinks::sink> sink) : sink_(std::move(sink)) {
  if (auto s = installed()) s->attach(sink_);
}

LogMirror::~LogMirror() {
  if (auto s = installed()) s->detach(sink_);
}

}  // namespace lth
