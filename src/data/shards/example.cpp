#include "data/shards/example.h"

#include "data/shards/protobuf_wire.h"

namespace lth::data::shards {
namespace {

Feature parse_feature(std::string_view data) {
  Feature feature;
  WireReader reader(data);
  WireField f;
  while (reader.next(f)) {
    if (f.type != WireType::Bytes || f.number < 1 || f.number > 3) continue;  // unknown: skip
    feature = Feature{};  // oneof: the last kind present wins
    WireReader list(f.bytes);
    WireField v;
    switch (f.number) {
      case 1:
        feature.kind = Feature::Kind::Bytes;
        while (list.next(v)) {
          if (v.number == 1 && v.type == WireType::Bytes) feature.bytes.push_back(v.bytes);
        }
        break;
      case 2:
        feature.kind = Feature::Kind::Float;
        while (list.next(v)) {
          if (v.number != 1) continue;
          if (v.type == WireType::Bytes) {
            for (float x : unpack_floats(v.bytes)) feature.floats.push_back(x);
          } else if (v.type == WireType::Fixed32) {
            feature.floats.push_back(float_bits(static_cast<uint32_t>(v.value)));
          }
        }
        break;
      default:
        feature.kind = Feature::Kind::Int64;
        while (list.next(v)) {
          if (v.number != 1) continue;
          if (v.type == WireType::Bytes) {
            for (int64_t x : unpack_varints(v.bytes)) feature.ints.push_back(x);
          } else if (v.type == WireType::Varint) {
            feature.ints.push_back(static_cast<int64_t>(v.value));
          }
        }
        break;
    }
  }
  return feature;
}

}  // namespace

ExampleView parse_example(std::string_view serialized) {
  ExampleView out;
  WireReader example(serialized);
  WireField f;
  while (example.next(f)) {
    if (f.number != 1 || f.type != WireType::Bytes) continue;
    WireReader features(f.bytes);
    WireField entry;
    while (features.next(entry)) {
      if (entry.number != 1 || entry.type != WireType::Bytes) continue;
      std::string key;
      std::string_view value;
      WireReader kv(entry.bytes);
      WireField part;
      while (kv.next(part)) {
        if (part.type != WireType::Bytes) continue;
        if (part.number == 1) key = std::string(part.bytes);
        if (part.number == 2) value = part.bytes;
      }
      out[key] = parse_feature(value);  // a repeated map key: the last wins, as protobuf
    }
  }
  return out;
}

std::string ExampleBuilder::serialize() const {
  std::map<std::string, std::string> features;  // key -> serialized Feature
  for (const auto& [key, values] : bytes) {
    WireWriter list;
    for (const auto& v : values) list.bytes(1, v);
    WireWriter feature;
    feature.bytes(1, list.data());
    features[key] = feature.take();
  }
  for (const auto& [key, values] : floats) {
    WireWriter packed;  // the packed payload: raw little-endian floats
    std::string raw;
    for (float v : values) {
      WireWriter one;
      one.float32(1, v);
      raw += one.data().substr(1);  // drop the tag byte, keep the 4 value bytes
    }
    packed.bytes(1, raw);
    WireWriter feature;
    feature.bytes(2, packed.data());
    features[key] = feature.take();
  }
  for (const auto& [key, values] : ints) {
    std::string raw;
    for (int64_t v : values) {
      WireWriter one;
      one.varint(1, static_cast<uint64_t>(v));
      raw += one.data().substr(1);
    }
    WireWriter packed;
    packed.bytes(1, raw);
    WireWriter feature;
    feature.bytes(3, packed.data());
    features[key] = feature.take();
  }
  WireWriter map;
  for (const auto& [key, feature] : features) {
    WireWriter entry;
    entry.bytes(1, key);
    entry.bytes(2, feature);
    map.bytes(1, entry.data());
  }
  WireWriter example;
  example.bytes(1, map.data());
  return example.take();
}

}  // namespace lth::data::shards
