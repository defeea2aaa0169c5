#pragma once
// The headers every lth translation unit would otherwise parse again: LibTorch (~12 s of
// parsing per file on these cores), nlohmann-json and fmt. CMakeLists.txt compiles them once
// into a clang precompiled header that every target reuses (option LTH_PCH; with gcc, whose
// precompiled headers of LibTorch load no faster than they parse, nothing is precompiled).
// Files still include what they use: this header is a build-time cache, not an interface.
#include <torch/torch.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>
