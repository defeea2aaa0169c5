// Run configs: a TOML file, then --set overrides (one per line after a NUL byte), then
// validation. A config that passes must survive to_toml_string -> apply_toml unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/error.h"
#include "imp/config.h"
#include "memfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lth::imp;
  const auto* text = reinterpret_cast<const char*>(data);
  const auto* nul = static_cast<const char*>(std::memchr(text, '\0', size));
  const size_t toml_size = nul != nullptr ? static_cast<size_t>(nul - text) : size;
  static lth::fuzz::MemFile file("fuzz.toml");
  ImpConfig config = default_config();
  try {
    apply_toml_file(config, file.write(data, toml_size));
    if (nul != nullptr) {
      std::string rest(nul + 1, text + size);
      size_t start = 0;
      while (start <= rest.size()) {
        const size_t end = rest.find('\n', start);
        const std::string line =
            rest.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!line.empty()) apply_override(config, line);
        if (end == std::string::npos) break;
        start = end + 1;
      }
    }
    validate(config);
  } catch (const lth::UserError&) {
    return 0;
  }
  // Round trip: what lth writes as config.toml reads back to the same config.
  const std::string written = to_toml_string(config);
  ImpConfig again;
  const auto& path = file.write(reinterpret_cast<const uint8_t*>(written.data()), written.size());
  apply_toml_file(again, path);
  if (to_toml_string(again) != written) std::abort();
  return 0;
}
