// The torchrun-style environment a rank reads (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT, LTH_DIST_TIMEOUT, GLOO_SOCKET_IFNAME): one NAME=value per input line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "dist/process_group.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kNames[] = {"WORLD_SIZE",        "RANK",        "LOCAL_RANK",
                                 "MASTER_ADDR",       "MASTER_PORT", "LTH_DIST_TIMEOUT",
                                 "GLOO_SOCKET_IFNAME"};
  for (const char* name : kNames) ::unsetenv(name);
  const std::string text(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = line.substr(0, eq), value = line.substr(eq + 1);
    for (const char* known : kNames)
      if (name == known && value.find('\0') == std::string::npos) ::setenv(known, value.c_str(), 1);
  }
  try {
    const auto env = lth::dist::read_process_group_env();
    if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size || env.local_rank < 0 ||
        env.local_rank >= env.world_size)
      std::abort();  // read_process_group_env promises a consistent rank
    lth::dist::rank_device(torch::Device(torch::kCUDA), env);
  } catch (const lth::UserError&) {
  }
  return 0;
}
