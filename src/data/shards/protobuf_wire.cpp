#include "data/shards/protobuf_wire.h"

#include <cstring>

namespace lth::data::shards {

uint64_t WireReader::varint() {
  uint64_t value = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos_ >= data_.size()) throw WireError("varint runs past the end of the message");
    const auto byte = static_cast<uint8_t>(data_[pos_++]);
    if (shift == 63 && byte > 1) throw WireError("varint overflows 64 bits");
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return value;
  }
  throw WireError("varint longer than 10 bytes");
}

bool WireReader::next(WireField& field) {
  if (pos_ >= data_.size()) return false;
  const uint64_t key = varint();
  const uint64_t number = key >> 3;
  if (number == 0 || number > 0x1FFFFFFF) throw WireError("invalid field number");
  field.number = static_cast<uint32_t>(number);
  field.bytes = {};
  field.value = 0;
  const auto fixed = [&](size_t n) {
    if (data_.size() - pos_ < n) throw WireError("fixed-size field runs past the end");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  };
  switch (key & 7) {
    case 0:
      field.type = WireType::Varint;
      field.value = varint();
      return true;
    case 1:
      field.type = WireType::Fixed64;
      field.value = fixed(8);
      return true;
    case 2: {
      field.type = WireType::Bytes;
      const uint64_t n = varint();
      if (n > data_.size() - pos_) throw WireError("length-delimited field runs past the end");
      field.bytes = data_.substr(pos_, static_cast<size_t>(n));
      pos_ += static_cast<size_t>(n);
      return true;
    }
    case 5:
      field.type = WireType::Fixed32;
      field.value = fixed(4);
      return true;
    default:
      throw WireError("unsupported wire type " + std::to_string(key & 7));
  }
}

std::vector<int64_t> unpack_varints(std::string_view packed) {
  // A packed run is a sequence of varints: read it as fields would be, one value each.
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos < packed.size()) {
    uint64_t value = 0;
    int shift = 0;
    for (;; shift += 7) {
      if (shift >= 70) throw WireError("varint longer than 10 bytes");
      if (pos >= packed.size()) throw WireError("packed varint runs past the end");
      const auto byte = static_cast<uint8_t>(packed[pos++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) break;
    }
    out.push_back(static_cast<int64_t>(value));
  }
  return out;
}

float float_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

double double_bits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

std::vector<float> unpack_floats(std::string_view packed) {
  if (packed.size() % 4 != 0) throw WireError("packed floats are not a multiple of 4 bytes");
  std::vector<float> out(packed.size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) bits |= static_cast<uint32_t>(static_cast<uint8_t>(packed[4 * i + b])) << (8 * b);
    out[i] = float_bits(bits);
  }
  return out;
}

void WireWriter::raw_varint(uint64_t value) {
  while (value >= 0x80) {
    out_.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out_.push_back(static_cast<char>(value));
}

void WireWriter::tag(uint32_t number, WireType type) {
  raw_varint((static_cast<uint64_t>(number) << 3) | static_cast<uint64_t>(type));
}

void WireWriter::varint(uint32_t number, uint64_t value) {
  tag(number, WireType::Varint);
  raw_varint(value);
}

void WireWriter::fixed64(uint32_t number, uint64_t value) {
  tag(number, WireType::Fixed64);
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void WireWriter::fixed32(uint32_t number, uint32_t value) {
  tag(number, WireType::Fixed32);
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void WireWriter::float32(uint32_t number, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  fixed32(number, bits);
}

void WireWriter::float64(uint32_t number, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  fixed64(number, bits);
}

void WireWriter::bytes(uint32_t number, std::string_view value) {
  tag(number, WireType::Bytes);
  raw_varint(value.size());
  out_.append(value.data(), value.size());
}

}  // namespace lth::data::shards
