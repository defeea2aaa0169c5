#include "infer/kernels.h"

#include "common/error.h"

namespace lth::infer {

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::Portable:
      return true;
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  }
  return false;
}

Isa best_isa() {
  if (cpu_supports(Isa::Avx512)) return Isa::Avx512;
  if (cpu_supports(Isa::Avx2)) return Isa::Avx2;
  return Isa::Portable;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Portable:
      return "portable";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "?";
}

Isa parse_isa(const std::string& name) {
  if (name == "auto") return best_isa();
  for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::Portable}) {
    if (name != isa_name(isa)) continue;
    require(cpu_supports(isa), "--isa " + name + ": this CPU does not support it");
    return isa;
  }
  throw UserError("--isa: unknown value '" + name + "' (auto, avx512, avx2 or portable)");
}

void run_rows(Isa isa, const RowKernelArgs& args, int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
  switch (isa) {
    case Isa::Avx512:
      return run_rows_avx512(args, r0, r1, q0, q1);
    case Isa::Avx2:
      return run_rows_avx2(args, r0, r1, q0, q1);
    case Isa::Portable:
      return run_rows_portable(args, r0, r1, q0, q1);
  }
}

}  // namespace lth::infer
