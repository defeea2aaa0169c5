#include "train/resume_check.h"

#include <cmath>

#include "common/error.h"

namespace lth::train {
namespace {

class Checker {
 public:
  Checker(const nlohmann::json& state, const std::string& label) : state_(state), label_(label) {}

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw UserError(label_ + ": trainer state '" + field + "' " + problem);
  }

  int64_t integer(const nlohmann::json& object, const std::string& field, int64_t min, int64_t max,
                  bool required = true) const {
    if (!object.contains(field)) {
      if (required) fail(field, "is missing (not a resumable last.safetensors)");
      return min;
    }
    const auto& v = object[field];
    if (!v.is_number_integer()) fail(field, "is not an integer");
    // Unsigned values above INT64_MAX would wrap when read as int64.
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail(field, "is out of range");
    const int64_t value = v.get<int64_t>();
    if (value < min || value > max)
      fail(field, "is " + std::to_string(value) + ", expected " + std::to_string(min) + ".." +
                      std::to_string(max));
    return value;
  }

  double number(const nlohmann::json& object, const std::string& field, double min,
                double max) const {
    if (!object.contains(field)) fail(field, "is missing (not a resumable last.safetensors)");
    const auto& v = object[field];
    if (!v.is_number()) fail(field, "is not a number");
    const double value = v.get<double>();
    if (!std::isfinite(value) || value < min || value > max) fail(field, "is out of range");
    return value;
  }

  void check(int64_t total_steps) const {
    if (!state_.is_object()) throw UserError(label_ + ": trainer state is not a JSON object");
    const int64_t iteration = integer(state_, "iteration", 0, total_steps);
    integer(state_, "epoch", 0, INT64_MAX);
    integer(state_, "batch", 0, INT64_MAX);
    number(state_, "best_acc", -1, 1);
    integer(state_, "best_iteration", 0, iteration);
    number(state_, "window_loss_sum", -HUGE_VAL, HUGE_VAL);
    integer(state_, "window_count", 0, INT64_MAX);
    if (state_.contains("complete") && !state_["complete"].is_boolean())
      fail("complete", "is not true or false");
    if (state_.contains("loss_scaler")) {
      const auto& scaler = state_["loss_scaler"];
      if (!scaler.is_object()) fail("loss_scaler", "is not a JSON object");
      if (scaler.contains("scale")) {
        const auto& s = scaler["scale"];
        if (!s.is_number() || !std::isfinite(s.get<double>()) || s.get<double>() <= 0)
          fail("loss_scaler.scale", "is not a finite positive number");
      }
      integer(scaler, "finite_steps", 0, INT64_MAX, /*required=*/false);
    }
  }

 private:
  const nlohmann::json& state_;
  const std::string& label_;
};

}  // namespace

void check_trainer_state(const nlohmann::json& state, const std::string& label,
                         int64_t total_steps) {
  Checker(state, label).check(total_steps);
}

}  // namespace lth::train
