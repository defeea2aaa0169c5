#pragma once
// A name -> factory table, the way models, datasets, pruning strategies and IMP branches
// are chosen. Each registry is an ordinary object owned by its module (a function-local
// static behind an accessor), filled explicitly in one place: no static-initialisation
// tricks, so the list of choices is readable in one file.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"

namespace lth {

template <typename Factory>
class Registry {
 public:
  explicit Registry(std::string what) : what_(std::move(what)) {}

  void add(const std::string& name, Factory factory, std::string help = "") {
    entries_[name] = Entry{std::move(factory), std::move(help)};
  }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  // The factory for `name`, or a UserError listing the valid names.
  const Factory& get(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      std::string known;
      for (const auto& [key, _] : entries_) known += (known.empty() ? "" : ", ") + key;
      throw UserError("unknown " + what_ + " '" + name + "' (known: " + known + ")");
    }
    return it->second.factory;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [key, _] : entries_) out.push_back(key);
    return out;
  }
  const std::string& help(const std::string& name) const { return entries_.at(name).help; }

 private:
  struct Entry {
    Factory factory;
    std::string help;
  };
  std::string what_;
  std::map<std::string, Entry> entries_;
};

}  // namespace lth
