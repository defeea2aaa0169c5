#pragma once
// The sparse row kernels behind the engine (see kernel_args.h for what one call computes),
// in three builds chosen at run time: AVX-512 (16 floats a vector, up to 16 accumulators),
// AVX2+FMA (8 floats, 8 accumulators) and portable C++. Each nonzero weight is broadcast once
// per tile of grid positions and multiplied into a contiguous run of the input: the loads
// are unaligned and the tails masked, so any grid size works.
//
// Supported: float32 only (bf16 is not implemented). An ISA the CPU lacks is never selected
// by best_isa(), and asking for one by name is a UserError (parse_isa).
#include <cstdint>
#include <string>

#include "infer/kernel_args.h"

namespace lth::infer {

enum class Isa { Portable, Avx2, Avx512 };

// The widest ISA this CPU runs (cpuid through __builtin_cpu_supports).
Isa best_isa();
bool cpu_supports(Isa isa);
const char* isa_name(Isa isa);
// "auto" (best_isa), "avx512", "avx2" or "portable"; UserError for other names or an ISA
// this CPU does not run.
Isa parse_isa(const std::string& name);

// Runs rows [r0, r1) over grid positions [q0, q1) with the chosen ISA's kernel.
void run_rows(Isa isa, const RowKernelArgs& args, int64_t r0, int64_t r1, int64_t q0, int64_t q1);

// The per-ISA kernels (kernels_avx512.cpp, kernels_avx2.cpp, kernels_portable.cpp).
void run_rows_avx512(const RowKernelArgs& a, int64_t r0, int64_t r1, int64_t q0, int64_t q1);
void run_rows_avx2(const RowKernelArgs& a, int64_t r0, int64_t r1, int64_t q0, int64_t q1);
void run_rows_portable(const RowKernelArgs& a, int64_t r0, int64_t r1, int64_t q0, int64_t q1);

}  // namespace lth::infer
