// The wire formats: CRC-32C, protobuf wire, tf.train.Example, TFRecord framing, tar, brace
// patterns; damaged and hostile input gives one clear problem, never a crash.
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/rng.h"
#include "data/shards/crc32c.h"
#include "data/shards/example.h"
#include "data/shards/protobuf_wire.h"
#include "data/shards/tar.h"
#include "data/shards/tfrecord.h"
#include "data/shards/webdataset.h"
#include "test_util.h"

namespace lth::data::shards {
namespace {

namespace fs = std::filesystem;
using shard_test::read_bytes;
using shard_test::scratch;
using shard_test::write_bytes;

TEST(Crc32c, KnownVectorsAndMask) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c("", 0), 0u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
  // Incremental equals one shot; the mask is TFRecord's rotate-and-add.
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345", 5)), 0xE3069283u);
  EXPECT_EQ(mask_crc(0), 0xa282ead8u);
  // The hardware and table paths agree on every length and alignment.
  Rng rng(3);
  std::string data(300, '\0');
  for (auto& c : data) c = static_cast<char>(rng.below(256));
  for (size_t start = 0; start < 9; ++start) {
    for (size_t n = 0; n + start <= data.size(); n += 7) {
      EXPECT_EQ(crc32c(data.data() + start, n, 5), crc32c_portable(data.data() + start, n, 5));
    }
  }
  EXPECT_EQ(mask_crc(0xE3069283u), ((0xE3069283u >> 15) | (0xE3069283u << 17)) + 0xa282ead8u);
}

TEST(ProtobufWire, RoundTripsEveryWireType) {
  WireWriter w;
  w.varint(1, 300);
  w.varint(2, static_cast<uint64_t>(-5));  // int64 -5: ten bytes
  w.fixed64(3, 0x0102030405060708ull);
  w.float32(4, 1.5f);
  w.bytes(5, "hello");
  w.float64(6, -2.25);
  WireReader r(w.data());
  WireField f;
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(f.number, 1u);
  EXPECT_EQ(f.value, 300u);
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(static_cast<int64_t>(f.value), -5);
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(f.value, 0x0102030405060708ull);
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(float_bits(static_cast<uint32_t>(f.value)), 1.5f);
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(f.bytes, "hello");
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(double_bits(f.value), -2.25);
  EXPECT_FALSE(r.next(f));
}

TEST(ProtobufWire, MalformedInputThrowsWireError) {
  const auto fails = [](const std::string& data) {
    WireReader r(data);
    WireField f;
    try {
      while (r.next(f)) {
      }
    } catch (const WireError&) {
      return true;
    }
    return false;
  };
  EXPECT_TRUE(fails(std::string("\x08\x80", 2)));               // varint runs off the end
  EXPECT_TRUE(fails(std::string("\x0a\x05hi", 4)));             // length past the end
  EXPECT_TRUE(fails(std::string("\x0b", 1)));                   // group (wire type 3)
  EXPECT_TRUE(fails(std::string("\x0f", 1)));                   // wire type 7
  EXPECT_TRUE(fails(std::string("\x00\x01", 2)));               // field number 0
  EXPECT_TRUE(fails(std::string("\x09\x01\x02", 3)));           // short fixed64
  EXPECT_TRUE(fails(std::string(11, '\xff')));                  // varint longer than 10 bytes
  EXPECT_FALSE(fails(std::string()));
}

TEST(Example, RoundTripsAndAcceptsUnpackedScalars) {
  ExampleBuilder b;
  b.bytes["image"] = {std::string("\xff\xd8\x00jpeg", 7)};
  b.bytes["file_name"] = {"n01440764_1.JPEG"};
  b.ints["label"] = {-1, 999, int64_t{1} << 40};
  b.floats["bbox"] = {0.25f, 0.5f};
  const std::string s = b.serialize();
  const auto ex = parse_example(s);
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex.at("image").kind, Feature::Kind::Bytes);
  EXPECT_EQ(ex.at("image").bytes.at(0), std::string("\xff\xd8\x00jpeg", 7));
  EXPECT_EQ(ex.at("label").ints, (std::vector<int64_t>{-1, 999, int64_t{1} << 40}));
  EXPECT_EQ(ex.at("bbox").floats, (std::vector<float>{0.25f, 0.5f}));

  // Int64List with unpacked values (tag 0x08 per value), as proto2 writers may emit.
  WireWriter list;
  list.varint(1, 7);
  list.varint(1, 8);
  WireWriter feature;
  feature.bytes(3, list.data());
  WireWriter entry;
  entry.bytes(1, "label");
  entry.bytes(2, feature.data());
  WireWriter features;
  features.bytes(1, entry.data());
  WireWriter example;
  example.bytes(1, features.data());
  EXPECT_EQ(parse_example(example.data()).at("label").ints, (std::vector<int64_t>{7, 8}));
}

TEST(Example, RandomMutationsNeverCrash) {
  ExampleBuilder b;
  b.bytes["image"] = {std::string(100, 'x')};
  b.ints["label"] = {3};
  const std::string good = b.serialize();
  Rng rng(7);
  int errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s = good;
    const int flips = 1 + static_cast<int>(rng.below(4));
    for (int k = 0; k < flips; ++k) s[rng.below(s.size())] = static_cast<char>(rng.below(256));
    if (rng.coin(0.3)) s.resize(rng.below(s.size() + 1));
    try {
      parse_example(s);
    } catch (const WireError&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

std::string record_file(const fs::path& path, const std::vector<std::string>& records) {
  {
    TFRecordWriter w(path);
    for (const auto& r : records) w.write(r);
    w.close();
  }
  return read_bytes(path);
}

TEST(TFRecord, WritesScansAndReadsBack) {
  const auto dir = scratch("tfrecord");
  const std::vector<std::string> records = {"", "a", std::string(1000, 'z'), "last"};
  const auto bytes = record_file(dir / "f.tfrecord", records);
  EXPECT_EQ(bytes.size(), 4 * 16 + 0 + 1 + 1000 + 4);
  EXPECT_EQ(read_all_records(dir / "f.tfrecord"), records);
  // Framing: little-endian length, then the masked CRC of those 8 bytes.
  EXPECT_EQ(static_cast<uint8_t>(bytes[16]), 1);  // second record's length
  fs::remove_all(dir);
}

TEST(TFRecord, DataCrcMismatchIsARecordError) {
  const auto dir = scratch("crc");
  auto bytes = record_file(dir / "f", {"first", "second", "third"});
  bytes[21 + 12 + 2] ^= 0x40;  // a byte of "second"'s data ("first" takes 12 + 5 + 4 bytes)
  write_bytes(dir / "f", bytes);
  const RandomAccessFile file(dir / "f");
  const auto scan = scan_tfrecord(file);
  ASSERT_TRUE(scan.problem.empty());  // the length CRCs are intact
  ASSERT_EQ(scan.records.size(), 3u);
  EXPECT_EQ(read_record(file, scan.records[0]), "first");
  try {
    read_record(file, scan.records[1]);
    FAIL() << "no error for a bad data CRC";
  } catch (const RecordError& e) {
    EXPECT_NE(std::string(e.what()).find("bad data CRC"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find((dir / "f").string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_record(file, scan.records[2]), "third");
  fs::remove_all(dir);
}

TEST(TFRecord, TruncationAndBadLengthCrcKeepTheRecordsBefore) {
  const auto dir = scratch("trunc");
  const auto bytes = record_file(dir / "f", {"one", "two", "three"});
  for (size_t cut : {bytes.size() - 1, bytes.size() - 6, bytes.size() - 14, bytes.size() - 20}) {
    write_bytes(dir / "t", bytes.substr(0, cut));
    const RandomAccessFile file(dir / "t");
    const auto scan = scan_tfrecord(file);
    EXPECT_EQ(scan.records.size(), 2u) << cut;
    EXPECT_NE(scan.problem.find("truncated"), std::string::npos) << scan.problem;
    EXPECT_THROW(read_all_records(dir / "t"), RecordError);
  }
  auto bad = bytes;
  bad[19 + 8] ^= 1;  // second record's length CRC
  write_bytes(dir / "b", bad);
  const RandomAccessFile file(dir / "b");
  const auto scan = scan_tfrecord(file);
  EXPECT_EQ(scan.records.size(), 1u);
  EXPECT_NE(scan.problem.find("bad length CRC"), std::string::npos) << scan.problem;
  // An enormous announced length is a truncation, not an allocation.
  std::string huge = frame_record("x");
  for (int i = 0; i < 8; ++i) huge[i] = '\xff';
  const uint32_t crc = mask_crc(crc32c(huge.data(), 8));
  for (int i = 0; i < 4; ++i) huge[8 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  write_bytes(dir / "h", huge);
  EXPECT_NE(scan_tfrecord(RandomAccessFile(dir / "h")).problem.find("truncated"), std::string::npos);
  write_bytes(dir / "empty", "");
  const auto empty = scan_tfrecord(RandomAccessFile(dir / "empty"));
  EXPECT_TRUE(empty.records.empty());
  EXPECT_TRUE(empty.problem.empty());
  fs::remove_all(dir);
}

TEST(Tar, WritesAndScansLongNamesAndPythonReadsIt) {
  const auto dir = scratch("tar");
  const std::string long_name = std::string(120, 'd') + "/" + std::string(90, 'k') + ".jpg";
  const std::string very_long = std::string(300, 'v') + ".cls";
  {
    TarWriter w(dir / "a.tar");
    w.add("n01/x.jpg", "JPEGDATA");
    w.add("n01/x.cls", "3");
    w.add(long_name, std::string(513, 'q'));
    w.add(very_long, "");
    w.close();
  }
  const auto scan = scan_tar(RandomAccessFile(dir / "a.tar"));
  EXPECT_TRUE(scan.problem.empty()) << scan.problem;
  ASSERT_EQ(scan.members.size(), 4u);
  EXPECT_EQ(scan.members[0].name, "n01/x.jpg");
  EXPECT_EQ(scan.members[0].size, 8u);
  EXPECT_EQ(scan.members[2].name, long_name);
  EXPECT_EQ(scan.members[2].size, 513u);
  EXPECT_EQ(scan.members[3].name, very_long);
  const auto py = shard_test::run("/usr/bin/python3 -c \"import tarfile,sys; t=tarfile.open(sys.argv[1]); "
                                  "print(' '.join(str(m.size) for m in t.getmembers()))\" " +
                                  (dir / "a.tar").string());
  EXPECT_EQ(py.status, 0) << py.output;
  EXPECT_EQ(py.output, "8 1 513 0\n");
  fs::remove_all(dir);
}

TEST(Tar, PythonWrittenPaxAndGnuArchivesScan) {
  const auto dir = scratch("pytar");
  const auto py = shard_test::run(
      "/usr/bin/python3 -c \"import tarfile,io,sys\n"
      "for fmt,name in ((tarfile.PAX_FORMAT,'pax.tar'),(tarfile.GNU_FORMAT,'gnu.tar')):\n"
      "  t=tarfile.open(sys.argv[1]+'/'+name,'w',format=fmt)\n"
      "  for n,d in (('k'*150+'/'+'s'*120+'.jpg',b'abc'),('k'*150+'/'+'s'*120+'.cls',b'7')):\n"
      "    i=tarfile.TarInfo(n); i.size=len(d); t.addfile(i,io.BytesIO(d))\n"
      "  t.close()\" " + dir.string());
  ASSERT_EQ(py.status, 0) << py.output;
  for (const char* name : {"pax.tar", "gnu.tar"}) {
    const auto scan = scan_tar(RandomAccessFile(dir / name));
    EXPECT_TRUE(scan.problem.empty()) << name << ": " << scan.problem;
    ASSERT_EQ(scan.members.size(), 2u) << name;
    EXPECT_EQ(scan.members[0].name, std::string(150, 'k') + "/" + std::string(120, 's') + ".jpg");
    EXPECT_EQ(scan.members[0].size, 3u);
  }
  fs::remove_all(dir);
}

TEST(Tar, HostileHeadersGiveOneProblemNeverACrash) {
  const auto dir = scratch("hostile");
  {
    TarWriter w(dir / "good.tar");
    for (int i = 0; i < 4; ++i) {
      w.add("k" + std::to_string(i) + ".jpg", std::string(700, 'j'));
      w.add("k" + std::to_string(i) + ".cls", "1");
    }
    w.close();
  }
  const std::string good = read_bytes(dir / "good.tar");
  // Not a tar at all.
  write_bytes(dir / "junk.tar", std::string(2048, 'J'));
  EXPECT_NE(scan_tar(RandomAccessFile(dir / "junk.tar")).problem.find("checksum"), std::string::npos);
  // Truncated in the middle of a member's data.
  write_bytes(dir / "cut.tar", good.substr(0, 512 + 300));
  const auto cut = scan_tar(RandomAccessFile(dir / "cut.tar"));
  EXPECT_NE(cut.problem.find("runs past the end"), std::string::npos) << cut.problem;
  EXPECT_TRUE(cut.members.empty());
  // Random mutations of headers and data: the scan always returns.
  Rng rng(11);
  for (int i = 0; i < 400; ++i) {
    std::string s = good;
    for (int k = 0; k < 3; ++k) s[rng.below(s.size())] = static_cast<char>(rng.below(256));
    if (rng.coin(0.3)) s.resize(rng.below(s.size() + 1));
    write_bytes(dir / "m.tar", s);
    const auto scan = scan_tar(RandomAccessFile(dir / "m.tar"));
    for (const auto& m : scan.members) EXPECT_LE(m.offset + m.size, s.size());
  }
  fs::remove_all(dir);
}

TEST(WebDatasetPattern, ExpandsBraces) {
  EXPECT_EQ(expand_braces("a-{000..002}.tar"),
            (std::vector<std::string>{"a-000.tar", "a-001.tar", "a-002.tar"}));
  EXPECT_EQ(expand_braces("{x,y}-{8..10}"),
            (std::vector<std::string>{"x-8", "x-9", "x-10", "y-8", "y-9", "y-10"}));
  EXPECT_EQ(expand_braces("plain.tar"), (std::vector<std::string>{"plain.tar"}));
  EXPECT_THROW(expand_braces("a-{3..1}.tar"), UserError);
  EXPECT_THROW(expand_braces("a-{1..2.tar"), UserError);
}

}  // namespace
}  // namespace lth::data::shards
