#pragma once
// User-facing errors: one line naming the thing (file, flag, tensor) and the problem.
// `lth` catches UserError at the top, prints "lth: <message>" and exits non-zero; any
// other exception is a bug and is reported as such.
#include <stdexcept>
#include <string>

namespace lth {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws UserError(message) when `condition` is false. For user-input checks only;
// internal invariants use TORCH_CHECK or assert.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw UserError(message);
}

}  // namespace lth
