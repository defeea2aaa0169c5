#pragma once
// Scratch paths for the ImageNet data tests: per test name and process, emptied first.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace lth::imagenet_test {

// The path, removed if it exists (the caller, or the code under test, creates it).
inline std::filesystem::path scratch_path(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() /
                 ("lth_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p;
}

// The same, created empty.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const auto p = scratch_path(name);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace lth::imagenet_test
