#pragma once
// Small text helpers that several modules need in the same form (messages and metadata):
// prefix/suffix tests, a double printed so that it reads back exactly, and a tensor shape as
// "[2, 3, 4]".
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace lth {

bool starts_with(std::string_view text, std::string_view prefix);
bool ends_with(std::string_view text, std::string_view suffix);
// %.17g: every double round-trips through its text.
std::string exact_double(double value);
// "[2, 3, 4]"; "[]" for a scalar.
std::string shape_text(c10::IntArrayRef shape);

}  // namespace lth
