// The reference's test arrays: .npy reading (v1/v2 headers), errors, and the array dataset.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "data/imagenet/npy.h"
#include "imagenet_test_util.h"

using namespace lth::data::imagenet;
namespace fs = std::filesystem;

namespace {

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// A hand-made version-2 file: 4-byte header length.
std::string npy_v2(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((12 + header.size() + 1) % 16 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + std::string("\x02\x00", 2);
  const uint32_t n = uint32_t(header.size());
  for (int i = 0; i < 4; ++i) out += char((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

std::string error_of(const fs::path& p) {
  try {
    read_npy(p);
  } catch (const lth::UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Npy, RoundTripsCommonDtypes) {
  const fs::path dir = lth::imagenet_test::scratch_dir("npy_rt");
  const auto images = torch::randint(0, 256, {3, 5, 4, 3}, torch::kInt).to(torch::kUInt8);
  const auto labels = torch::tensor({7, 0, 999}, torch::kInt64);
  const auto small = torch::tensor({1, -2}, torch::kInt32);
  write_npy(dir / "i.npy", images);
  write_npy(dir / "l.npy", labels);
  write_npy(dir / "s.npy", small);
  EXPECT_TRUE(torch::equal(read_npy(dir / "i.npy"), images));
  EXPECT_TRUE(torch::equal(read_npy(dir / "l.npy"), labels));
  const auto s = read_npy(dir / "s.npy");
  EXPECT_EQ(s.scalar_type(), torch::kInt32);
  EXPECT_TRUE(torch::equal(s, small));
  fs::remove_all(dir);
}

TEST(Npy, ReadsVersion2HeadersAndUnsignedWidening) {
  const fs::path dir = lth::imagenet_test::scratch_dir("npy_v2");
  const std::string data("\x01\x00\x02\x00\xff\xff", 6);
  write_bytes(dir / "u2.npy",
              npy_v2("{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }", data));
  const auto t = read_npy(dir / "u2.npy");
  EXPECT_EQ(t.scalar_type(), torch::kInt32);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1, 2, 65535}, torch::kInt32)));
  fs::remove_all(dir);
}

TEST(Npy, ErrorsNameTheFileAndTheProblem) {
  const fs::path dir = lth::imagenet_test::scratch_dir("npy_err");
  write_bytes(dir / "magic.npy", "PK\x03\x04 not numpy at all");
  EXPECT_NE(error_of(dir / "magic.npy").find("bad magic"), std::string::npos);
  EXPECT_NE(error_of(dir / "magic.npy").find("magic.npy"), std::string::npos);
  write_bytes(dir / "big.npy",
              npy_v2("{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }", "abcd"));
  EXPECT_NE(error_of(dir / "big.npy").find("big-endian"), std::string::npos);
  write_bytes(dir / "f.npy",
              npy_v2("{'descr': '<i4', 'fortran_order': True, 'shape': (1,), }", "abcd"));
  EXPECT_NE(error_of(dir / "f.npy").find("Fortran"), std::string::npos);
  write_bytes(
      dir / "short.npy",
      npy_v2("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 224, 224, 3), }", "xyz"));
  EXPECT_NE(error_of(dir / "short.npy").find("truncated"), std::string::npos);
  EXPECT_NE(error_of(dir / "missing.npy").find("cannot open"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Npy, ArrayDatasetServesImagesAndResizes) {
  const fs::path dir = lth::imagenet_test::scratch_dir("npy_ds") / "ImageNetR_x16";
  fs::create_directories(dir);
  const auto images = torch::randint(0, 256, {4, 16, 16, 3}, torch::kInt).to(torch::kUInt8);
  write_npy(dir / "test_images.npy", images);
  write_npy(dir / "test_labels.npy", torch::tensor({5, 1, 5, 9}, torch::kInt64));
  lth::Rng rng(0);
  // Labels are positions in a list of classes: 5 -> positions[5] = 150.
  const std::vector<int64_t> positions{100, 110, 120, 130, 140, 150, 160, 170, 180, 190};
  const auto same = NpyDataset::open("ImageNetR_x16", dir, 1000, 16, &positions);
  ASSERT_EQ(same->size(), 4);
  EXPECT_EQ(same->class_subset(), positions);
  const auto ex = same->get(2, rng);
  ASSERT_TRUE(ex.has_value());
  EXPECT_EQ(ex->label, 150);
  EXPECT_EQ(same->label(1), 110);
  const std::vector<int64_t> too_short{100, 110, 120};  // label 5 is no position in it
  EXPECT_THROW(NpyDataset::open("ImageNetR_x16", dir, 1000, 16, &too_short), lth::UserError);
  EXPECT_TRUE(torch::equal(ex->image, images[2]));
  const auto bigger = NpyDataset::open("ImageNetR_x16", dir, 1000, 32);
  EXPECT_TRUE(bigger->class_subset().empty());
  EXPECT_EQ(bigger->get(0, rng)->image.sizes(), (std::vector<int64_t>{32, 32, 3}));
  EXPECT_THROW(NpyDataset::open("x", dir, 6, 16), lth::UserError);  // label 9 >= 6 classes
  fs::remove_all(dir.parent_path());
}
