#include <algorithm>
#include <cctype>

#include "cli/commands.h"
#include "common/error.h"

namespace lth::cli {

bool parse_bool(const std::string& flag, const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* yes : {"yes", "true", "t", "y", "1"}) {
    if (t == yes) return true;
  }
  for (const char* no : {"no", "false", "f", "n", "0"}) {
    if (t == no) return false;
  }
  throw UserError(flag + ": expected a boolean (yes/no, true/false, t/f, y/n, 1/0), got '" + text + "'");
}

}  // namespace lth::cli
