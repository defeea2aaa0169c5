#pragma once
// Range checks of every setting, in one place: each key's allowed range, checked after the
// config is resolved (TOML file, --set overrides, flags) and before anything uses it. A
// value out of range is a UserError naming the key, the value and the range: NaN and
// infinities are never accepted, and no integer is allowed to reach a narrower type it
// does not fit (train.num_workers = 4294967298 is refused, not wrapped to 2).
#include <cstdint>
#include <string>

#include "imp/config.h"

namespace lth::imp {

// Checks every field of config_fields() that has a numeric range (all numeric fields
// lth knows; doubles must be finite whatever their key).
void validate_ranges(const ImpConfig& config);

// The allowed closed range of a numeric key, for messages and tests. Returns false for keys
// without one.
bool key_range(const std::string& key, double* min, double* max);

// Command-line numbers outside the config (lth train, lth launch): the whole text must be a
// finite number in [min, max]; UserError naming `flag` otherwise.
double parse_finite_flag(const std::string& flag, const std::string& text, double min, double max);
void check_flag_range(const std::string& flag, int64_t value, int64_t min, int64_t max);
void check_flag_range(const std::string& flag, double value, double min, double max);

}  // namespace lth::imp
