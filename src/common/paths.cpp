#include "common/paths.h"

namespace lth {

std::filesystem::path user_folder(const std::string& text) {
  if (text.empty()) return {};
  std::filesystem::path p = std::filesystem::path(text).lexically_normal();
  // lexically_normal keeps "x/" as "x/" (an empty last element): the parent of that is "x"
  // itself, which is how `lth train --save x/` once created x and then refused it.
  while (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  return p.empty() ? std::filesystem::path(".") : p;
}

std::string user_path_text(const std::string& text) {
  if (text.find_first_of("{}*?[") != std::string::npos) return text;
  return user_folder(text).string();
}

}  // namespace lth
