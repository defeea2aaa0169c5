#pragma once
// Reading settings from environment variables, with one error line naming the variable.
#include <cstdint>
#include <optional>
#include <string>

namespace lth {

// The variable's value, or nullopt when it is unset or empty (an empty value counts as unset,
// as torchrun and Slurm treat it).
std::optional<std::string> env_value(const char* name);

// `text` (the value of variable `name`) as a whole decimal integer in [min, max]; UserError
// "environment variable NAME=TEXT: expected EXPECTED in [min, max]" otherwise.
int64_t parse_env_int(const char* name, const std::string& text, int64_t min, int64_t max,
                      const char* expected = "an integer");

}  // namespace lth
