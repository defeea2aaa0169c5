#pragma once
// A small, bounds-checked reader and writer of the protocol-buffer wire format: enough for
// tf.train.Example and TensorBoard's Event/Summary, without libprotobuf (see
// docs/ARCHITECTURE.md, "Shard formats"). The reader never reads outside the span it is
// given; malformed input (a varint longer than 10 bytes, a length past the end, a group or
// an unknown wire type) throws WireError, which callers turn into a skip or a UserError.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lth::data::shards {

class WireError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class WireType : uint8_t { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 };

struct WireField {
  uint32_t number = 0;
  WireType type = WireType::Varint;
  uint64_t value = 0;      // Varint, Fixed64, Fixed32 (raw bits)
  std::string_view bytes;  // Bytes: a view into the reader's span
};

class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}
  // Reads the next field into `field`; false at the end of the span.
  bool next(WireField& field);

 private:
  uint64_t varint();
  std::string_view data_;
  size_t pos_ = 0;
};

// Packed (or single) repeated scalars of a length-delimited field.
std::vector<int64_t> unpack_varints(std::string_view packed);
std::vector<float> unpack_floats(std::string_view packed);
float float_bits(uint32_t bits);
double double_bits(uint64_t bits);

class WireWriter {
 public:
  void varint(uint32_t number, uint64_t value);
  void fixed64(uint32_t number, uint64_t value);
  void fixed32(uint32_t number, uint32_t value);
  void float32(uint32_t number, float value);
  void float64(uint32_t number, double value);
  void bytes(uint32_t number, std::string_view value);
  const std::string& data() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void tag(uint32_t number, WireType type);
  void raw_varint(uint64_t value);
  std::string out_;
};

}  // namespace lth::data::shards
