#include "io/msgpack.h"

#include <cstring>
#include <unordered_set>

#include "common/error.h"

namespace lth::io::msgpack {
namespace {

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& label, const ParseLimits& limits)
      : data_(data), size_(size), label_(label), limits_(limits) {}

  Value top() {
    Value value = read(0);
    if (pos_ != size_) fail(std::to_string(size_ - pos_) + " bytes after the end of the value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    std::string where;
    for (const auto& key : path_) where += (where.empty() ? "" : "/") + key;
    throw UserError(label_ + ": " + problem + " at byte " + std::to_string(pos_) +
                    (where.empty() ? "" : " (in " + where + ")"));
  }

  void need(uint64_t count, const char* what) const {
    if (count > size_ - pos_)
      fail(std::string("truncated MessagePack: ") + what + " claims " + std::to_string(count) +
           " bytes, " + std::to_string(size_ - pos_) + " remain");
  }

  uint64_t be(int bytes, const char* what) {
    need(static_cast<uint64_t>(bytes), what);
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value = (value << 8) | data_[pos_ + i];
    pos_ += static_cast<size_t>(bytes);
    return value;
  }

  std::string_view take(uint64_t count, const char* what) {
    need(count, what);
    std::string_view view(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(count));
    pos_ += static_cast<size_t>(count);
    return view;
  }

  Value read(int depth) {
    if (++values_ > limits_.max_values)
      fail("more than " + std::to_string(limits_.max_values) + " values");
    const uint8_t tag = static_cast<uint8_t>(be(1, "a value"));
    Value v;
    if (tag <= 0x7f || tag >= 0xe0) {  // positive / negative fixint
      v.type = Value::Type::Int;
      v.integer = static_cast<int8_t>(tag);
      if (tag <= 0x7f) v.integer = tag;
      return v;
    }
    if (tag >= 0x80 && tag <= 0x8f) return read_map(tag & 0x0f, depth);
    if (tag >= 0x90 && tag <= 0x9f) return read_array(tag & 0x0f, depth);
    if (tag >= 0xa0 && tag <= 0xbf) return blob(Value::Type::Str, tag & 0x1f);
    switch (tag) {
      case 0xc0:
        return v;
      case 0xc2:
      case 0xc3:
        v.type = Value::Type::Bool;
        v.boolean = tag == 0xc3;
        return v;
      case 0xc4:
      case 0xc5:
      case 0xc6:
        return blob(Value::Type::Bin, be(1 << (tag - 0xc4), "a bin length"));
      case 0xc7:
      case 0xc8:
      case 0xc9:
        return ext(be(1 << (tag - 0xc7), "an ext length"));
      case 0xca: {
        const uint32_t bits = static_cast<uint32_t>(be(4, "a float 32"));
        float f;
        std::memcpy(&f, &bits, 4);
        v.type = Value::Type::Float;
        v.number = f;
        return v;
      }
      case 0xcb: {
        const uint64_t bits = be(8, "a float 64");
        std::memcpy(&v.number, &bits, 8);
        v.type = Value::Type::Float;
        return v;
      }
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf: {
        const uint64_t u = be(1 << (tag - 0xcc), "an unsigned integer");
        v.type = Value::Type::Int;
        v.uint = u;
        v.is_unsigned = u > static_cast<uint64_t>(INT64_MAX);
        v.integer = v.is_unsigned ? 0 : static_cast<int64_t>(u);
        return v;
      }
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3: {
        const int bytes = 1 << (tag - 0xd0);
        const uint64_t raw = be(bytes, "a signed integer");
        v.type = Value::Type::Int;
        const int shift = 64 - 8 * bytes;  // sign-extend
        v.integer = static_cast<int64_t>(raw << shift) >> shift;
        return v;
      }
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        return ext(1u << (tag - 0xd4));
      case 0xd9:
      case 0xda:
      case 0xdb:
        return blob(Value::Type::Str, be(1 << (tag - 0xd9), "a str length"));
      case 0xdc:
      case 0xdd:
        return read_array(be(2 << (tag - 0xdc), "an array length"), depth);
      case 0xde:
      case 0xdf:
        return read_map(be(2 << (tag - 0xde), "a map length"), depth);
      default:  // 0xc1 is never used
        --pos_;
        fail("invalid MessagePack type byte 0x" + hex(tag));
    }
  }

  static std::string hex(uint8_t byte) {
    const char* digits = "0123456789abcdef";
    return {digits[byte >> 4], digits[byte & 15]};
  }

  Value blob(Value::Type type, uint64_t length) {
    Value v;
    v.type = type;
    v.bytes = take(length, type == Value::Type::Str ? "a str" : "a bin");
    return v;
  }

  Value ext(uint64_t length) {
    Value v;
    v.type = Value::Type::Ext;
    v.ext_type = static_cast<int8_t>(be(1, "an ext type"));
    v.bytes = take(length, "an ext payload");
    return v;
  }

  void enter(int depth) const {
    if (depth + 1 > limits_.max_depth)
      fail("MessagePack nested deeper than " + std::to_string(limits_.max_depth) + " levels");
  }

  Value read_array(uint64_t count, int depth) {
    enter(depth);
    need(count, "an array");  // every element takes at least one byte
    Value v;
    v.type = Value::Type::Array;
    v.items.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) {
      path_.push_back("[" + std::to_string(i) + "]");
      v.items.push_back(read(depth + 1));
      path_.pop_back();
    }
    return v;
  }

  Value read_map(uint64_t count, int depth) {
    enter(depth);
    if (count > (size_ - pos_) / 2) need(2 * count, "a map");  // a key and a value: two bytes at least
    Value v;
    v.type = Value::Type::Map;
    v.entries.reserve(static_cast<size_t>(count));
    std::unordered_set<std::string_view> seen;  // views into the buffer, which outlives this
    for (uint64_t i = 0; i < count; ++i) {
      const size_t key_at = pos_;
      Value key = read(depth + 1);
      if (key.type != Value::Type::Str) {
        pos_ = key_at;
        fail(std::string("map key is a ") + type_name(key.type) + ", expected a string");
      }
      std::string name(key.bytes);
      if (!seen.insert(key.bytes).second) {
        pos_ = key_at;
        fail("duplicate map key '" + name + "'");
      }
      path_.push_back(name);
      Value value = read(depth + 1);
      path_.pop_back();
      v.entries.emplace_back(std::move(name), std::move(value));
    }
    return v;
  }

  const uint8_t* data_;
  size_t size_;
  const std::string& label_;
  ParseLimits limits_;
  size_t pos_ = 0;
  size_t values_ = 0;
  std::vector<std::string> path_;
};

}  // namespace

const Value* Value::find(std::string_view key) const {
  for (const auto& [name, value] : entries)
    if (name == key) return &value;
  return nullptr;
}

const char* type_name(Value::Type type) {
  switch (type) {
    case Value::Type::Nil:
      return "nil";
    case Value::Type::Bool:
      return "bool";
    case Value::Type::Int:
      return "int";
    case Value::Type::Float:
      return "float";
    case Value::Type::Str:
      return "str";
    case Value::Type::Bin:
      return "bin";
    case Value::Type::Array:
      return "array";
    case Value::Type::Map:
      return "map";
    case Value::Type::Ext:
      return "ext";
  }
  return "?";
}

Value parse(const uint8_t* data, size_t size, const std::string& label, const ParseLimits& limits) {
  return Parser(data, size, label, limits).top();
}

// ---- writing --------------------------------------------------------------------------

void Writer::put_be(uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) put(static_cast<uint8_t>(value >> (8 * i)));
}

void Writer::nil() { put(0xc0); }

void Writer::boolean(bool value) { put(value ? 0xc3 : 0xc2); }

void Writer::integer(int64_t value) {
  if (value >= 0) return uinteger(static_cast<uint64_t>(value));
  if (value >= -32) return put(static_cast<uint8_t>(value));
  if (value >= INT8_MIN) return put(0xd0), put_be(static_cast<uint64_t>(value), 1);
  if (value >= INT16_MIN) return put(0xd1), put_be(static_cast<uint64_t>(value), 2);
  if (value >= INT32_MIN) return put(0xd2), put_be(static_cast<uint64_t>(value), 4);
  put(0xd3), put_be(static_cast<uint64_t>(value), 8);
}

void Writer::uinteger(uint64_t value) {
  if (value <= 0x7f) return put(static_cast<uint8_t>(value));
  if (value <= UINT8_MAX) return put(0xcc), put_be(value, 1);
  if (value <= UINT16_MAX) return put(0xcd), put_be(value, 2);
  if (value <= UINT32_MAX) return put(0xce), put_be(value, 4);
  put(0xcf), put_be(value, 8);
}

void Writer::str(std::string_view text) {
  const size_t n = text.size();
  if (n < 32)
    put(static_cast<uint8_t>(0xa0 | n));
  else if (n <= UINT8_MAX)
    put(0xd9), put_be(n, 1);
  else if (n <= UINT16_MAX)
    put(0xda), put_be(n, 2);
  else
    put(0xdb), put_be(n, 4);
  out_.append(text);
}

void Writer::bin(const void* data, size_t size) {
  if (size <= UINT8_MAX)
    put(0xc4), put_be(size, 1);
  else if (size <= UINT16_MAX)
    put(0xc5), put_be(size, 2);
  else
    put(0xc6), put_be(size, 4);
  out_.append(static_cast<const char*>(data), size);
}

void Writer::ext(int8_t type, const void* data, size_t size) {
  switch (size) {
    case 1:
      put(0xd4);
      break;
    case 2:
      put(0xd5);
      break;
    case 4:
      put(0xd6);
      break;
    case 8:
      put(0xd7);
      break;
    case 16:
      put(0xd8);
      break;
    default:
      if (size <= UINT8_MAX)
        put(0xc7), put_be(size, 1);
      else if (size <= UINT16_MAX)
        put(0xc8), put_be(size, 2);
      else
        put(0xc9), put_be(size, 4);
  }
  put(static_cast<uint8_t>(type));
  out_.append(static_cast<const char*>(data), size);
}

void Writer::array_header(size_t count) {
  if (count < 16)
    put(static_cast<uint8_t>(0x90 | count));
  else if (count <= UINT16_MAX)
    put(0xdc), put_be(count, 2);
  else
    put(0xdd), put_be(count, 4);
}

void Writer::map_header(size_t count) {
  if (count < 16)
    put(static_cast<uint8_t>(0x80 | count));
  else if (count <= UINT16_MAX)
    put(0xde), put_be(count, 2);
  else
    put(0xdf), put_be(count, 4);
}

}  // namespace lth::io::msgpack
