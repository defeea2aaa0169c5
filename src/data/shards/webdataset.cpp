#include "data/shards/webdataset.h"

#include <algorithm>
#include <regex>

#include "common/error.h"

namespace lth::data::shards {
namespace fs = std::filesystem;
namespace {

std::vector<std::string> alternatives(const std::string& body, const std::string& pattern) {
  static const std::regex range("(-?[0-9]+)\\.\\.(-?[0-9]+)");
  std::smatch m;
  std::vector<std::string> out;
  if (std::regex_match(body, m, range)) {
    const std::string lo = m[1], hi = m[2];
    require(lo.size() <= 18 && hi.size() <= 18, "shard pattern " + pattern + ": range too large");
    const long long a = std::stoll(lo), b = std::stoll(hi);
    require(a <= b, "shard pattern " + pattern + ": range {" + body + "} is reversed");
    require(b - a < 10000000, "shard pattern " + pattern + ": range {" + body + "} is too large");
    for (long long v = a; v <= b; ++v) {
      std::string s = std::to_string(v);
      if (s.size() < lo.size()) s = std::string(lo.size() - s.size(), '0') + s;
      out.push_back(s);
    }
    return out;
  }
  size_t start = 0;
  for (size_t comma; (comma = body.find(',', start)) != std::string::npos; start = comma + 1) {
    out.push_back(body.substr(start, comma - start));
  }
  out.push_back(body.substr(start));
  return out;
}

bool glob_match(const std::string& name, const std::string& glob) {
  std::string re;
  for (char c : glob) {
    if (c == '*') re += ".*";
    else if (c == '?') re += '.';
    else if (std::isalnum(static_cast<unsigned char>(c))) re += c;
    else re += std::string("\\") + c;
  }
  return std::regex_match(name, std::regex(re));
}

std::vector<fs::path> tars_in(const fs::path& dir, const std::string& glob) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && name.size() > 4 && name.substr(name.size() - 4) == ".tar" &&
        glob_match(name, glob)) {
      out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path classes_near(const fs::path& dir) {
  for (const auto& d : {dir, dir.parent_path()}) {
    if (!d.empty() && fs::exists(d / "classes.txt")) return d / "classes.txt";
  }
  return {};
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  const auto open = pattern.find('{');
  if (open == std::string::npos) {
    require(pattern.find('}') == std::string::npos, "shard pattern " + pattern + ": unbalanced '}'");
    return {pattern};
  }
  const auto close = pattern.find('}', open);
  require(close != std::string::npos, "shard pattern " + pattern + ": unbalanced '{'");
  const std::string head = pattern.substr(0, open), body = pattern.substr(open + 1, close - open - 1);
  require(body.find('{') == std::string::npos, "shard pattern " + pattern + ": nested braces");
  std::vector<std::string> out;  // in the pattern's order, as WebDataset lists shards
  const auto tails = expand_braces(pattern.substr(close + 1));
  for (const auto& alt : alternatives(body, pattern)) {
    for (const auto& tail : tails) out.push_back(head + alt + tail);
  }
  return out;
}

bool looks_like_shard_pattern(const std::string& root) {
  return root.find('{') != std::string::npos || root.find('*') != std::string::npos ||
         (root.size() > 4 && root.substr(root.size() - 4) == ".tar");
}

std::optional<WebDatasetSplit> find_webdataset_split(const std::string& root, const std::string& split) {
  WebDatasetSplit out;
  if (looks_like_shard_pattern(root)) {
    std::string pattern = root;
    if (split != "train") {
      // "train" -> "val" in the file name and its folder's name (train/train-{..}.tar,
      // imagenet-train-{..}.tar), not higher up (/data/training/...).
      const auto slash = pattern.rfind('/');
      const auto parent = slash == std::string::npos || slash == 0 ? std::string::npos : pattern.rfind('/', slash - 1);
      const size_t from = parent == std::string::npos ? 0 : parent + 1;
      bool replaced = false;
      for (size_t at; (at = pattern.find("train", from)) != std::string::npos;) {
        pattern.replace(at, 5, split);
        replaced = true;
      }
      if (!replaced) return std::nullopt;
      // Its shard count differs from train's: brace ranges become '*'.
      for (size_t open; (open = pattern.find('{')) != std::string::npos;) {
        const auto close = pattern.find('}', open);
        if (close == std::string::npos) break;
        pattern.replace(open, close - open + 1, "*");
      }
    }
    for (const auto& entry : expand_braces(pattern)) {
      const fs::path p(entry);
      if (entry.find('*') != std::string::npos || entry.find('?') != std::string::npos) {
        for (auto& f : tars_in(p.parent_path().empty() ? "." : p.parent_path(), p.filename().string())) {
          out.files.push_back(f);
        }
        continue;
      }
      if (split != "train" && !fs::exists(p)) return std::nullopt;  // no val shards: absent
      require(fs::is_regular_file(p), "shard " + entry + " (from --data_root " + root + ") does not exist");
      out.files.push_back(p);
    }
    if (out.files.empty()) return std::nullopt;
    const fs::path dir = fs::path(out.files.front()).parent_path();
    out.classes_file = classes_near(dir.empty() ? fs::path(".") : dir);
    return out;
  }
  const fs::path dir(root);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  const std::vector<std::string> names = split == "train" ? std::vector<std::string>{"train"}
                                                          : std::vector<std::string>{"val", "validation"};
  for (const auto& name : names) {
    if (fs::is_directory(dir / name, ec)) {
      out.files = tars_in(dir / name, "*");
      if (!out.files.empty()) break;
    }
  }
  if (out.files.empty()) {
    for (const auto& name : names) {
      out.files = tars_in(dir, "*" + name + "*");
      // The official ILSVRC2012_img_train/val.tar are not WebDataset shards (data/ilsvrc).
      out.files.erase(std::remove_if(out.files.begin(), out.files.end(),
                                     [](const auto& f) {
                                       return fs::path(f).filename().string().rfind("ILSVRC2012_img_", 0) == 0;
                                     }),
                      out.files.end());
      if (!out.files.empty()) break;
    }
  }
  if (out.files.empty()) return std::nullopt;
  // classes.txt in the shards' folder (train/) or the data root, as docs/DATA.md says.
  out.classes_file = classes_near(out.files.front().parent_path());
  if (out.classes_file.empty()) out.classes_file = classes_near(dir);
  return out;
}

}  // namespace lth::data::shards
