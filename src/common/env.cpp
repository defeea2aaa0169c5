#include "common/env.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>

#include "common/error.h"

namespace lth {

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int64_t parse_env_int(const char* name, const std::string& text, int64_t min, int64_t max,
                      const char* expected) {
  int64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  require(ec == std::errc() && ptr == end && value >= min && value <= max,
          fmt::format("environment variable {}={}: expected {} in [{}, {}]", name, text, expected, min, max));
  return value;
}

}  // namespace lth
