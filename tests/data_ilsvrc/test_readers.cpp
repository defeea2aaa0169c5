// The bounded readers behind the official downloads: MATLAB v5 (meta.mat), gzip, the devkit,
// and the tar reader on ranges (a tar of tars).
#include <gtest/gtest.h>

#include <zlib.h>

#include <cstring>
#include <functional>
#include <random>

#include "common/error.h"
#include "data/ilsvrc/devkit.h"
#include "data/ilsvrc/downloads.h"
#include "data/ilsvrc/gzip.h"
#include "data/ilsvrc/matlab.h"
#include "data/imagenet/class_index.h"
#include "data/shards/random_access_file.h"
#include "data/shards/tar.h"
#include "ilsvrc_test_util.h"

namespace lth::data::ilsvrc {
namespace {

namespace fs = std::filesystem;
using ilsvrc_test::error_of;
using ilsvrc_test::read_bytes;
using ilsvrc_test::scratch;
using ilsvrc_test::write_bytes;

MatArray num(std::vector<double> v, std::vector<int64_t> dims) {
  MatArray a;
  a.dims = std::move(dims);
  a.numbers = std::move(v);
  return a;
}
MatArray str(const std::string& s) {
  MatArray a;
  a.kind = MatArray::Kind::Char;
  a.dims = {1, static_cast<int64_t>(s.size())};
  a.text = s;
  return a;
}

MatArray sample_struct() {
  MatArray s;
  s.kind = MatArray::Kind::Struct;
  s.name = "synsets";
  s.fields = {"ILSVRC2012_ID", "WNID", "children"};
  s.dims = {2, 1};
  MatArray cell;
  cell.kind = MatArray::Kind::Cell;
  cell.dims = {1, 2};
  cell.items = {str("ab"), num({1.5, -2, 3}, {1, 3})};
  s.items = {num({7}, {1, 1}), str("n01440764"), num({}, {1, 0}), num({8}, {1, 1}), str("n01443537"), cell};
  return s;
}

void expect_same(const MatArray& a, const MatArray& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.dims, b.dims);
  EXPECT_EQ(a.numbers, b.numbers);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.fields, b.fields);
  ASSERT_EQ(a.items.size(), b.items.size());
  for (size_t i = 0; i < a.items.size(); ++i) expect_same(a.items[i], b.items[i]);
}

TEST(Matlab, StructsCellsNumbersAndTextRoundTripPlainAndCompressed) {
  const auto s = sample_struct();
  for (const bool compress : {false, true}) {
    const auto bytes = write_mat({s, num({1, 2, 3, 4}, {2, 2})}, compress);
    const auto vars = read_mat(bytes, "x.mat");
    ASSERT_EQ(vars.size(), 2u);
    expect_same(vars[0], s);
    EXPECT_EQ(vars[1].numbers, (std::vector<double>{1, 2, 3, 4}));
    EXPECT_EQ(vars[0].field(1, "WNID")->text, "n01443537");
    EXPECT_EQ(vars[0].field(0, "nope"), nullptr);
  }
}

TEST(Matlab, ReadsFilesOfAnIndependentWriter) {
  // fuzz/make_seeds.py writes meta.mat-like files in Python from the format's description.
  for (const char* name : {"meta.mat", "meta_compressed.mat"}) {
    const auto vars = read_mat(read_bytes(fs::path(LTH_SOURCE_DIR) / "fuzz/corpus/fuzz_ilsvrc" / name), name);
    ASSERT_EQ(vars.size(), 1u) << name;
    const auto& s = vars[0];
    EXPECT_EQ(s.name, "synsets");
    EXPECT_EQ(s.fields, (std::vector<std::string>{"ILSVRC2012_ID", "WNID", "num_children"}));
    ASSERT_EQ(s.numel(), 3);
    EXPECT_EQ(s.field(0, "WNID")->text, "n01443537");
    EXPECT_EQ(s.field(1, "ILSVRC2012_ID")->numbers, std::vector<double>{2});
    EXPECT_EQ(s.field(2, "num_children")->numbers, std::vector<double>{2});
  }
}

TEST(Matlab, ReadsNumbersStoredInNarrowerTypesAndSmallElements) {
  // A 1x3 double array whose data MATLAB stored as miUINT8 (as it does for small integers),
  // hand-assembled: flags, dims, an empty name, then the data as a small data element.
  std::string body;
  const auto put32 = [&](uint32_t v) { body.append(reinterpret_cast<const char*>(&v), 4); };
  put32(6), put32(8), put32(6), put32(0);           // array flags: mxDOUBLE_CLASS
  put32(5), put32(8), put32(1), put32(3);           // dims 1x3
  put32(1), put32(1), body += std::string("v\0\0\0\0\0\0\0", 8);  // name "v" (miINT8, padded)
  put32((3u << 16) | 2u), body += std::string("\x05\x06\xff\0", 4);  // small element: miUINT8 5 6 255
  std::string file = write_mat({}, false);
  const uint32_t tag[2] = {14, static_cast<uint32_t>(body.size())};
  file.append(reinterpret_cast<const char*>(tag), 8);
  file += body;
  const auto vars = read_mat(file, "narrow.mat");
  ASSERT_EQ(vars.size(), 1u);
  EXPECT_EQ(vars[0].name, "v");
  EXPECT_EQ(vars[0].numbers, (std::vector<double>{5, 6, 255}));
}

TEST(Matlab, EveryTruncationAndCorruptionIsAUserErrorNamingTheFile) {
  const auto bytes = write_mat({sample_struct()}, false);
  for (size_t n = 0; n < bytes.size(); n += 3) {
    const auto msg = error_of([&] { read_mat(bytes.substr(0, n), "cut.mat"); });
    if (n >= 128 && n < bytes.size()) {
      EXPECT_EQ(msg.rfind("cut.mat: ", 0), 0u) << n << ": " << msg;
    }
  }
  const auto z = write_mat({sample_struct()}, true);
  EXPECT_NE(error_of([&] { read_mat(z.substr(0, z.size() - 5), "z.mat"); }), "");
  std::mt19937 rng(5);
  for (int t = 0; t < 2000; ++t) {  // random damage: an error or a result, never a crash
    auto m = t % 2 ? bytes : z;
    for (int k = 0; k < 3; ++k) m[128 + rng() % (m.size() - 128)] = static_cast<char>(rng());
    try {
      read_mat(m, "mut.mat");
    } catch (const UserError&) {
    }
  }
  auto big = bytes;
  big[126] = 'M', big[127] = 'I';
  EXPECT_NE(error_of([&] { read_mat(big, "be.mat"); }).find("big-endian"), std::string::npos);
  EXPECT_NE(error_of([&] { read_mat("MATLAB 7.3 MAT-file" + std::string(200, ' '), "h.mat"); }).find("HDF5"),
            std::string::npos);
}

TEST(Matlab, NestingAndSizeLimitsAreEnforced) {
  MatArray deep = num({1}, {1, 1});
  for (int i = 0; i < 20; ++i) {
    MatArray c;
    c.kind = MatArray::Kind::Cell;
    c.dims = {1, 1};
    c.items = {deep};
    deep = c;
  }
  deep.name = "deep";
  const auto bytes = write_mat({deep}, false);
  EXPECT_NE(error_of([&] { read_mat(bytes, "deep.mat"); }).find("nested more than 16"), std::string::npos);
  MatLimits small;
  small.max_elements = 100;
  EXPECT_NE(error_of([&] { read_mat(write_mat({num(std::vector<double>(500, 1.0), {1, 500})}, true), "n.mat", small); })
                .find("more than 100"),
            std::string::npos);
  // Claimed dimensions far beyond the data: refused before anything is allocated.
  auto huge = write_mat({num({1}, {1, 1})}, false);
  const uint32_t big = 0x7fffffff;
  std::memcpy(huge.data() + 128 + 8 + 16 + 8 + 4, &big, 4);  // the second dimension
  EXPECT_NE(error_of([&] { read_mat(huge, "huge.mat"); }), "");
  small.max_decompressed_bytes = 1000;
  small.max_elements = 1 << 30;
  EXPECT_NE(error_of([&] { read_mat(write_mat({num(std::vector<double>(5000, 0.0), {1, 5000})}, true), "bomb.mat", small); })
                .find("more than 1000 bytes"),
            std::string::npos);
}

TEST(Gzip, BombsAndTruncationAreRefused) {
  std::string zeros(4 << 20, '\0');
  uLongf n = compressBound(static_cast<uLong>(zeros.size()));
  std::string z(n, '\0');
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(zeros.data()),
                      static_cast<uLong>(zeros.size()), 9),
            Z_OK);
  z.resize(n);
  EXPECT_EQ(inflate_zlib(z, 4 << 20, "z").size(), zeros.size());
  EXPECT_NE(error_of([&] { inflate_zlib(z, 1 << 20, "z"); }).find("more than"), std::string::npos);
  EXPECT_NE(error_of([&] { inflate_zlib(z.substr(0, z.size() / 2), 8 << 20, "z"); }).find("truncated"),
            std::string::npos);
  EXPECT_NE(error_of([&] { gunzip("not gzip", 100, "g"); }).find("not a gzip"), std::string::npos);
}

TEST(Devkit, APermutedIdOrderRoundTripsAndIsNotTheSortedOrder) {
  const auto dir = scratch("devkit");
  const auto ids = permuted_ids(7);
  ASSERT_EQ(ids.size(), 1001u);
  EXPECT_NE(std::vector<std::string>(ids.begin() + 1, ids.end()), imagenet::canonical_wnids());
  const std::vector<int32_t> truth = {5, 1000, 1, 5};
  write_devkit(dir / "ILSVRC2012_devkit_t12.tar.gz", ids, truth);
  EXPECT_EQ(find_devkit(dir), dir / "ILSVRC2012_devkit_t12.tar.gz");
  const auto kit = read_devkit(dir / "ILSVRC2012_devkit_t12.tar.gz");
  EXPECT_EQ(kit.wnid_of_id, ids);
  EXPECT_EQ(kit.val_ids, truth);
  EXPECT_EQ(*kit.wnid(1000), ids[1000]);
  EXPECT_FALSE(kit.wnid(0).has_value());
  // A truncated archive, and a ground truth with an id outside 1..1000, name the file.
  const auto gz = read_bytes(dir / "ILSVRC2012_devkit_t12.tar.gz");
  write_bytes(dir / "cut.tar.gz", gz.substr(0, gz.size() / 2));
  EXPECT_NE(error_of([&] { read_devkit(dir / "cut.tar.gz"); }).find("cut.tar.gz"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_ground_truth("3\n1001\n", "gt.txt"); }).find("gt.txt: line 2"), std::string::npos);
  // meta.mat with an id twice is refused.
  auto twice = ids;
  twice[2] = twice[1];
  write_devkit(dir / "twice.tar.gz", twice, truth);
  EXPECT_NE(error_of([&] { read_devkit(dir / "twice.tar.gz"); }).find("appears twice"), std::string::npos);
  fs::remove_all(dir);
}

TEST(TarRanges, AnInnerTarIsScannedWithinItsRangeOnly) {
  const auto dir = scratch("tarrange");
  {
    shards::TarWriter inner(dir / "inner.tar");
    inner.add("a.JPEG", "AAAA");
    inner.add("b.JPEG", std::string(700, 'b'));
    inner.close();
  }
  {
    shards::TarWriter outer(dir / "outer.tar");
    outer.add("n01440764.tar", read_bytes(dir / "inner.tar"));
    outer.add("after.txt", "zz");
    outer.close();
  }
  const shards::RandomAccessFile f(dir / "outer.tar");
  const auto outer = shards::scan_tar(f);
  ASSERT_EQ(outer.members.size(), 2u);
  const auto inner = shards::scan_tar(f, outer.members[0].offset, outer.members[0].offset + outer.members[0].size);
  EXPECT_TRUE(inner.problem.empty()) << inner.problem;
  ASSERT_EQ(inner.members.size(), 2u);
  std::string b(700, '\0');
  f.read_at(inner.members[1].offset, b.data(), b.size());
  EXPECT_EQ(b, std::string(700, 'b'));
  // The range cut inside the second member: a problem, the first member kept, nothing past it read.
  const auto cut = shards::scan_tar(f, outer.members[0].offset, outer.members[0].offset + 1024 + 512 + 300);
  EXPECT_EQ(cut.members.size(), 1u);
  EXPECT_NE(cut.problem.find("runs past the end"), std::string::npos) << cut.problem;
  const auto mem = shards::scan_tar_bytes(read_bytes(dir / "inner.tar"), "mem");
  EXPECT_EQ(mem.members.size(), 2u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lth::data::ilsvrc
