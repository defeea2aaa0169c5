#pragma once
// Paths as users type them. "runs/x", "runs/x/", "./runs/x" and "runs//x" all name one
// folder; an absolute path stays absolute and a relative one relative (nothing is resolved
// against the file system, so a folder that does not exist yet is fine). Shard patterns
// ("DIR/train-{000000..000099}.tar", "DIR/*.tar") are returned untouched: their text is
// not a path until expanded.
#include <filesystem>
#include <string>

namespace lth {

// `text` in lexically normal form without a trailing separator ("" stays "", "/" stays "/").
std::filesystem::path user_folder(const std::string& text);

// user_folder(text) as a string, or `text` unchanged when it is a shard pattern.
std::string user_path_text(const std::string& text);

}  // namespace lth
