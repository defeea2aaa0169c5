#include "io/msgpack.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "common/error.h"
#include "test_util.h"

namespace lth::io::msgpack {
namespace {

const std::string kPython = "/usr/bin/python3";

std::string python(const std::string& code, int* status) {
  testing::ScratchDir dir;
  testing::write_bytes(dir / "snippet.py", code);
  return testing::run_command(kPython + " '" + (dir / "snippet.py").string() + "'", status);
}

Value parse_string(const std::string& bytes, ParseLimits limits = {}) {
  return parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.msgpack", limits);
}

std::string error_of(const std::string& bytes, ParseLimits limits = {}) {
  try {
    parse_string(bytes, limits);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// Python's msgpack (an independent implementation) writes every encoding width; we read it.
TEST(Msgpack, ReadsWhatPythonWrites) {
  int status = 0;
  const std::string hex = python(R"(
import msgpack, sys
doc = {"ints": [0, 127, 128, 255, 256, 65535, 65536, 2**32, 2**64 - 1, -1, -32, -33, -128, -129,
                -32768, -32769, -2**31, -2**31 - 1, -2**63],
       "floats": [1.5, -0.25], "f32": msgpack.ExtType(5, b"xy"),
       "strs": ["", "a" * 31, "b" * 32, "c" * 255, "d" * 256, "e" * 70000],
       "bins": [b"", b"\x00" * 255, b"\x01" * 256, b"\x02" * 70000],
       "exts": [msgpack.ExtType(1, b"a" * n) for n in (1, 2, 4, 8, 16, 3, 255, 256, 70000)],
       "big": list(range(16)) + [None, True, False], "map16": {str(i): i for i in range(16)}}
sys.stdout.write(msgpack.packb(doc, use_bin_type=True).hex())
)",
                                 &status);
  ASSERT_EQ(status, 0) << hex;
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  const Value v = parse_string(bytes);
  ASSERT_EQ(v.type, Value::Type::Map);
  const auto& ints = v.find("ints")->items;
  const int64_t expected[] = {0, 127, 128, 255, 256, 65535, 65536, int64_t{1} << 32};
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(ints[i].integer, expected[i]) << i;
  EXPECT_TRUE(ints[8].is_unsigned);
  EXPECT_EQ(ints[8].uint, std::numeric_limits<uint64_t>::max());
  const int64_t negative[] = {-1, -32, -33, -128, -129, -32768, -32769, INT32_MIN, int64_t{INT32_MIN} - 1,
                              std::numeric_limits<int64_t>::min()};
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(ints[9 + i].integer, negative[i]) << i;
  EXPECT_EQ(v.find("floats")->items[0].number, 1.5);
  EXPECT_EQ(v.find("floats")->items[1].number, -0.25);
  const size_t str_sizes[] = {0, 31, 32, 255, 256, 70000};
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(v.find("strs")->items[i].bytes.size(), str_sizes[i]);
  const size_t bin_sizes[] = {0, 255, 256, 70000};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(v.find("bins")->items[i].type, Value::Type::Bin);
    EXPECT_EQ(v.find("bins")->items[i].bytes.size(), bin_sizes[i]);
  }
  const size_t ext_sizes[] = {1, 2, 4, 8, 16, 3, 255, 256, 70000};
  for (size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(v.find("exts")->items[i].ext_type, 1);
    EXPECT_EQ(v.find("exts")->items[i].bytes, std::string(ext_sizes[i], 'a'));
  }
  EXPECT_EQ(v.find("f32")->ext_type, 5);
  EXPECT_EQ(v.find("big")->items.size(), 19u);
  EXPECT_EQ(v.find("big")->items[16].type, Value::Type::Nil);
  EXPECT_TRUE(v.find("big")->items[17].boolean);
  EXPECT_EQ(v.find("map16")->entries.size(), 16u);
  EXPECT_EQ(v.find("map16")->find("15")->integer, 15);
}

// Our writer's output, read by Python's msgpack, gives back the same values.
TEST(Msgpack, PythonReadsWhatWeWrite) {
  Writer w;
  w.map_header(3);
  w.str("ints");
  const int64_t ints[] = {0, 127, 128, 65536, int64_t{1} << 40, -1, -33, -129, -40000, -(int64_t{1} << 40)};
  w.array_header(std::size(ints));
  for (int64_t i : ints) w.integer(i);
  w.str(std::string(40, 'k'));
  w.bin("\x01\x02", 2);
  w.str("ext");
  w.array_header(3);
  w.ext(1, "abcd", 4);
  w.ext(1, "abc", 3);
  w.ext(1, std::string(300, 'z').data(), 300);
  testing::ScratchDir dir;
  testing::write_bytes(dir / "w.msgpack", w.bytes());
  int status = 0;
  const std::string out = python(R"(
import msgpack
d = msgpack.unpackb(open(")" + (dir / "w.msgpack").string() + R"(", "rb").read(), raw=False)
print(d["ints"], d["k" * 40], [(e.code, len(e.data)) for e in d["ext"]])
)",
                                 &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out,
            "[0, 127, 128, 65536, 1099511627776, -1, -33, -129, -40000, -1099511627776] "
            "b'\\x01\\x02' [(1, 4), (1, 3), (1, 300)]\n");
  EXPECT_EQ(parse_string(w.bytes()).find("ints")->items[9].integer, -(int64_t{1} << 40));
}

TEST(Msgpack, EveryTruncationIsAUserError) {
  Writer w;
  w.map_header(2);
  w.str("params");
  w.array_header(2);
  w.ext(1, "payload!", 8);
  w.bin("xyz", 3);
  w.str("n");
  w.integer(-70000);
  const std::string bytes = w.bytes();
  ASSERT_NO_THROW(parse_string(bytes));
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string error = error_of(bytes.substr(0, n));
    EXPECT_NE(error.find("test.msgpack: "), std::string::npos) << n;
  }
  EXPECT_NE(error_of(bytes.substr(0, 12)).find("(in params/[0])"), std::string::npos)
      << error_of(bytes.substr(0, 12));
}

TEST(Msgpack, HostileLengthsDepthsAndKeys) {
  // Claimed sizes far beyond the input are refused before anything is allocated.
  EXPECT_NE(error_of("\xdd\xff\xff\xff\xff").find("truncated MessagePack: an array claims 4294967295"),
            std::string::npos);
  EXPECT_NE(error_of("\xdf\xff\xff\xff\xff").find("truncated"), std::string::npos);
  EXPECT_NE(error_of("\xc6\xff\xff\xff\xf0" "abc").find("a bin claims 4294967280 bytes, 3 remain"),
            std::string::npos);
  EXPECT_NE(error_of("\xc9\x7f\xff\xff\xff\x01").find("truncated"), std::string::npos);
  EXPECT_NE(error_of(std::string(100, '\x91') + "\xc0").find("nested deeper than 16 levels"), std::string::npos);
  EXPECT_NE(error_of(std::string(3, '\x91') + "\xc0", {2, 100}).find("nested deeper than 2"), std::string::npos);
  EXPECT_NE(error_of("\xc0\xc0").find("1 bytes after the end"), std::string::npos);
  EXPECT_NE(error_of("\xc1").find("invalid MessagePack type byte 0xc1"), std::string::npos);
  EXPECT_NE(error_of("\x81\x01\xc0").find("map key is a int, expected a string"), std::string::npos);
  EXPECT_NE(error_of("\x82\xa1k\xc0\xa1k\xc0").find("duplicate map key 'k'"), std::string::npos);
  EXPECT_NE(error_of("\x93\xc0\xc0\xc0", {16, 3}).find("more than 3 values"), std::string::npos);
}

}  // namespace
}  // namespace lth::io::msgpack
