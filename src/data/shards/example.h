#pragma once
// tf.train.Example, the record type of TFDS shards (tensorflow/core/example/example.proto):
//   Example  { Features features = 1; }
//   Features { map<string, Feature> feature = 1; }      // entries: key = 1, value = 2
//   Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
//   Int64List { repeated int64 value = 1 [packed]; }
// Decoding keeps views into the serialized record (which must outlive the result); packed and
// unpacked repeated scalars are both accepted, as protobuf parsers must. Malformed input
// throws WireError.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace lth::data::shards {

struct Feature {
  enum class Kind { None, Bytes, Float, Int64 } kind = Kind::None;
  std::vector<std::string_view> bytes;
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

using ExampleView = std::map<std::string, Feature, std::less<>>;

ExampleView parse_example(std::string_view serialized);

// Features to serialize, owning their bytes. Keys are written in sorted order.
struct ExampleBuilder {
  std::map<std::string, std::vector<std::string>> bytes;
  std::map<std::string, std::vector<int64_t>> ints;
  std::map<std::string, std::vector<float>> floats;
  std::string serialize() const;
};

}  // namespace lth::data::shards
