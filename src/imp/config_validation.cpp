#include "imp/config_validation.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <variant>

#include "common/error.h"

namespace lth::imp {
namespace {

constexpr double kInt64Max = 9.3e18;  // above INT64_MAX: any int64 seed is accepted
constexpr double kMaxIterations = 1e10;
constexpr double kMaxBatch = 1 << 20;

struct Range {
  const char* key;
  double min;
  double max;
  bool open_max = false;  // max itself excluded
  bool open_min = false;  // min itself excluded
};

// One line per numeric setting. Bounds are generous where lth has no opinion, strict where
// a value would be meaningless (a momentum of 1 never decays) or would not fit what uses it
// (thread and worker counts become ints).
constexpr Range kRanges[] = {
    {"data.image_size", 0, 4096},
    {"data.holdout", 0, 1e8},
    {"data.shuffle_buffer", 0, 1e8},
    {"model.width", 1, 64},
    {"train.batch_size", 1, kMaxBatch},
    {"train.lr", 0, 1e3},
    {"train.momentum", 0, 1, /*open_max=*/true},
    {"train.weight_decay", 0, 1},
    {"train.label_smoothing", 0, 1},
    {"train.global_clipping", 0, 1e12},
    {"train.eval_every", 1, kMaxIterations},
    {"train.eval_batch_size", 1, kMaxBatch},
    {"train.micro_batch", 0, kMaxBatch},
    {"train.ckpt_every", 0, kMaxIterations},
    {"train.num_workers", 0, 1024},
    {"train.prefetch_factor", 1, 1024},
    {"imp.rewind_iterations", 0, kMaxIterations},
    {"imp.cycle_iterations", 1, kMaxIterations},
    {"imp.pruning_ratio", 0, 1, false, /*open_min=*/true},
    {"imp.cycles", 0, 1000},
    {"imp.target_density", 0, 1, /*open_max=*/true},
    {"imp.pai_batches", 1, 1000},
    {"imp.synflow_rounds", 1, 10000},
    {"imp.lmc_points", 2, 10000},
    {"imp.lmc_bn_batches", 0, 1e6},
    {"imp.lmc_train_sample", 0, 1e8},
    {"run.seed", -1, kInt64Max},
    {"run.replicates", 1, 1000},
    {"run.threads", 0, 4096},
    {"run.stop_after", 0, kMaxIterations},
};

const Range* find_range(const std::string& key) {
  for (const auto& r : kRanges)
    if (key == r.key) return &r;
  return nullptr;
}

std::string range_text(const Range& r) {
  return fmt::format("{}{}, {}{}", r.open_min ? "(" : "[", r.min, r.max, r.open_max ? ")" : "]");
}

// Strings go into config.toml and must read back identically: TOML text is UTF-8, and
// control characters in a name or path are never intended.
bool is_clean_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t code = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= text.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      code = (code << 6) | (b & 0x3F);
    }
    // Overlong forms, surrogates and code points beyond Unicode are not UTF-8.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[n] || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) return false;
    i += n + 1;
  }
  return true;
}

bool in_range(const Range& r, double v) {
  return (r.open_min ? v > r.min : v >= r.min) && (r.open_max ? v < r.max : v <= r.max);
}

}  // namespace

bool key_range(const std::string& key, double* min, double* max) {
  const Range* r = find_range(key);
  if (r == nullptr) return false;
  *min = r->min;
  *max = r->max;
  return true;
}

void validate_ranges(const ImpConfig& c) {
  for (const auto& field : config_fields()) {
    const Range* r = find_range(field.key);
    if (const auto* m = std::get_if<double ImpConfig::*>(&field.member)) {
      const double v = c.**m;
      require(std::isfinite(v),
              field.key + " must be a finite number (got " + fmt::format("{}", v) + ")");
      if (r != nullptr)
        require(in_range(*r, v),
                fmt::format("{} = {} is out of range {}", field.key, v, range_text(*r)));
    } else if (const auto* m = std::get_if<std::string ImpConfig::*>(&field.member)) {
      require(is_clean_utf8(c.**m), field.key + " must be UTF-8 text without control characters");
    } else if (const auto* m = std::get_if<int64_t ImpConfig::*>(&field.member)) {
      const int64_t v = c.**m;
      if (r != nullptr)
        require(in_range(*r, static_cast<double>(v)),
                fmt::format("{} = {} is out of range {}", field.key, v, range_text(*r)));
    }
  }
}

double parse_finite_flag(const std::string& flag, const std::string& text, double min, double max) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  require(!text.empty() && ec == std::errc() && ptr == end,
          flag + ": expected a number, got '" + text + "'");
  check_flag_range(flag, value, min, max);
  return value;
}

void check_flag_range(const std::string& flag, int64_t value, int64_t min, int64_t max) {
  require(value >= min && value <= max,
          fmt::format("{} {}: must be in [{}, {}]", flag, value, min, max));
}

void check_flag_range(const std::string& flag, double value, double min, double max) {
  require(std::isfinite(value) && value >= min && value <= max,
          fmt::format("{} {}: must be a finite number in [{}, {}]", flag, value, min, max));
}

}  // namespace lth::imp
