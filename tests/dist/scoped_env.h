#pragma once
// Sets (or, with an empty value, removes) environment variables for a scope, restoring
// the previous values afterwards.
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

namespace lth::test {

class ScopedEnvVars {
 public:
  explicit ScopedEnvVars(const std::map<std::string, std::string>& vars) {
    for (const auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_[k] = old ? std::optional<std::string>(old) : std::nullopt;
      if (v.empty()) {
        ::unsetenv(k.c_str());
      } else {
        ::setenv(k.c_str(), v.c_str(), 1);
      }
    }
  }
  ~ScopedEnvVars() {
    for (const auto& [k, v] : saved_) {
      if (v) {
        ::setenv(k.c_str(), v->c_str(), 1);
      } else {
        ::unsetenv(k.c_str());
      }
    }
  }
  ScopedEnvVars(const ScopedEnvVars&) = delete;
  ScopedEnvVars& operator=(const ScopedEnvVars&) = delete;

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

}  // namespace lth::test
