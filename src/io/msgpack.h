#pragma once
// MessagePack (https://msgpack.org/): a reader into a small value tree and a writer, the
// subset the reference's Flax checkpoints need (io/flax_checkpoint.h).
//
// Read: nil, bool, every integer width, float 32/64, str, bin, array, map, ext (all widths,
// fixext included). Map keys must be strings (Flax state dicts); anything else is refused.
// Strict: every claimed length is checked against the bytes that remain before anything
// is allocated, nesting is capped (ParseLimits::max_depth), so is the number of values
// (max_values), and bytes after the top-level value are refused. Memory is therefore
// bounded by a small multiple of the input's size, whatever the input claims.
// Errors are UserError: "<label>: <problem> at byte N (in <key path>)".
//
// Str, bin and ext payloads are views into the parsed buffer: keep it alive while the
// values are used.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lth::io::msgpack {

struct Value {
  enum class Type { Nil, Bool, Int, Float, Str, Bin, Array, Map, Ext };
  Type type = Type::Nil;
  bool boolean = false;
  bool is_unsigned = false;  // Int: the value is `uint`, above INT64_MAX (read from uint 64)
  int64_t integer = 0;
  uint64_t uint = 0;
  double number = 0;
  int8_t ext_type = 0;
  std::string_view bytes;  // Str, Bin, Ext payload
  std::vector<Value> items;                           // Array
  std::vector<std::pair<std::string, Value>> entries;  // Map, in file order

  // The entry `key` of a map, or nullptr.
  const Value* find(std::string_view key) const;
};

// "nil", "bool", "int", "float", "str", "bin", "array", "map", "ext".
const char* type_name(Value::Type type);

struct ParseLimits {
  int max_depth = 16;             // nested arrays/maps
  size_t max_values = 1u << 20;   // values in the whole tree
};

// Parses exactly one value filling `data` (trailing bytes are an error). `label` names the
// file (and the key path the buffer came from, for nested payloads) in errors.
Value parse(const uint8_t* data, size_t size, const std::string& label, const ParseLimits& limits = {});

// Appends MessagePack to a byte string, choosing the shortest encoding of each value, as
// the Python msgpack package does (so Python reads back the same types).
class Writer {
 public:
  void nil();
  void boolean(bool value);
  void integer(int64_t value);
  void uinteger(uint64_t value);
  void str(std::string_view text);
  void bin(const void* data, size_t size);
  void ext(int8_t type, const void* data, size_t size);
  void array_header(size_t count);
  void map_header(size_t count);

  const std::string& bytes() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void put(uint8_t byte) { out_.push_back(static_cast<char>(byte)); }
  void put_be(uint64_t value, int bytes);
  std::string out_;
};

}  // namespace lth::io::msgpack
