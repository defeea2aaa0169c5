// Hostile and damaged inputs, as an attacker or a failing disk would produce them: every
// reader must end with one UserError / DecodeError naming the file, bounded in time and
// memory. One test per case of issue 9.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "data/idx.h"
#include "data/imagenet/codec.h"
#include "data/imagenet/folder_dataset.h"
#include "data/imagenet/npy.h"
#include "data/imagenet/pipeline.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;
using namespace lth;
using namespace lth::data::imagenet;

namespace {

fs::path fresh(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lth_hostile_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A .npy file with the given header text (padded to v1/v2 rules by the caller's choice).
std::string npy_bytes(const std::string& header, int major = 1, const std::string& data = "") {
  std::string out = std::string("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const size_t n = header.size();
  out += static_cast<char>(n & 0xFF);
  out += static_cast<char>((n >> 8) & 0xFF);
  if (major >= 2) {
    out += static_cast<char>((n >> 16) & 0xFF);
    out += static_cast<char>((n >> 24) & 0xFF);
  }
  return out + header + data;
}

std::string header_problem(const std::string& bytes) {
  try {
    parse_npy_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x.npy");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

template <typename F>
std::string user_error(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---- .npy ---------------------------------------------------------------------------------

TEST(HostileNpy, HugeAndDegenerateHeadersAreBoundedErrors) {
  // Each of these crashed the std::regex scanner (deep recursion) on main.
  EXPECT_NE(header_problem(npy_bytes(std::string(67000, ' '), 2)).find("limit"), std::string::npos);
  EXPECT_NE(header_problem(npy_bytes(std::string(2 << 20, ' '), 2)).find("limit"),
            std::string::npos);
  const std::string long_descr =
      "{'descr': '" + std::string(9000, 'a') + "', 'fortran_order': False, 'shape': (1,), }";
  // Within the limit a long descr scans fine (in linear time); read_npy then refuses the
  // dtype by name.
  EXPECT_EQ(header_problem(npy_bytes(long_descr)), "");
  const std::string too_long_descr =
      "{'descr': '" + std::string(65000, 'a') + "', 'fortran_order': False, 'shape': (1,), }";
  EXPECT_NE(header_problem(npy_bytes(too_long_descr, 2)).find("x.npy"), std::string::npos);
}

TEST(HostileNpy, ShapesAreStrict) {
  const auto with_shape = [](const std::string& shape) {
    return npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': " + shape + ", }\n");
  };
  EXPECT_EQ(header_problem(with_shape("(2, 3)")), "");
  EXPECT_EQ(header_problem(with_shape("(5,)")), "");
  EXPECT_EQ(header_problem(with_shape("()")), "");
  for (const char* bad : {"(99999999999999999999999,)", "(-1, 28, 28, 3)", "(1, 'x', 28, 28, 3)",
                          "(5)", "(1,,2)", "(1 2)", "[1, 2]", "(01,)", "(1,", "(0x10,)"}) {
    const std::string problem = header_problem(with_shape(bad));
    EXPECT_NE(problem.find("x.npy: bad .npy header"), std::string::npos) << bad << ": " << problem;
  }
  // Keys: exactly descr, fortran_order, shape, each once.
  EXPECT_NE(header_problem(npy_bytes("{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, "
                                     "'shape': (1,), }")),
            "");
  EXPECT_NE(header_problem(npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), "
                                     "'evil': 1}")),
            "");
  EXPECT_NE(header_problem(npy_bytes("{'descr': '|u1', 'shape': (1,)}")), "");
  EXPECT_NE(header_problem(npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1,)} x")),
            "");
}

TEST(HostileNpy, OverflowingShapeIsRefusedBeforeTheSizeCheck) {
  const auto dir = fresh("npy_overflow");
  // 2^32 * 2^32 wraps to 0 bytes in size_t arithmetic.
  write_bytes(dir / "a.npy", npy_bytes("{'descr': '|u1', 'fortran_order': False, "
                                       "'shape': (4294967296, 4294967296), }\n"));
  EXPECT_NE(user_error([&] { read_npy(dir / "a.npy"); }).find("too large"), std::string::npos);
  fs::remove_all(dir);
}

TEST(HostileNpy, EmptyImageSideIsRefused) {
  const auto dir = fresh("npy_empty_side");
  // (1, 0, 8, 3): the resize would read before its buffer.
  write_bytes(dir / "test_images.npy",
              npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 0, 8, 3), }\n"));
  write_bytes(dir / "test_labels.npy",
              npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }\n", 1,
                        std::string(1, '\0')));
  const std::string problem = user_error([&] { NpyDataset::open("set", dir, 10, 4); });
  EXPECT_NE(problem.find("side"), std::string::npos) << problem;
  fs::remove_all(dir);
}

TEST(HostileNpy, FifoIsRefusedWithoutBlocking) {
  const auto dir = fresh("npy_fifo");
  ASSERT_EQ(::mkfifo((dir / "a.npy").c_str(), 0644), 0);
  EXPECT_NE(user_error([&] { read_npy(dir / "a.npy"); }).find("not a regular file"),
            std::string::npos);
  fs::remove_all(dir);
}

// ---- images -------------------------------------------------------------------------------

namespace {

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// A PNG that claims `w` x `h` pixels: signature, IHDR (with a valid CRC), nothing else.
std::vector<uint8_t> png_claiming(uint32_t w, uint32_t h) {
  std::string ihdr = "IHDR" + be32(w) + be32(h) + std::string("\x08\x02\x00\x00\x00", 5);
  const uint32_t crc = static_cast<uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(ihdr.data()), static_cast<uInt>(ihdr.size())));
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(crc);
  return {png.begin(), png.end()};
}

std::vector<uint8_t> progressive_jpeg(int w, int h) {
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  tjhandle tj = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(tj, rgb.data(), w, 0, h, TJPF_RGB, &out, &size, TJSAMP_420, 90,
                        TJFLAG_PROGRESSIVE),
            0);
  std::vector<uint8_t> jpeg(out, out + size);
  tjFree(out);
  tjDestroy(tj);
  return jpeg;
}

// Repeats the last scan (SOS to EOI) of a progressive JPEG until it has > 500 scans.
std::vector<uint8_t> scan_flood(const std::vector<uint8_t>& jpeg, int copies) {
  size_t last_sos = 0;
  for (size_t i = 0; i + 1 < jpeg.size(); ++i)
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA) last_sos = i;
  std::vector<uint8_t> out(jpeg.begin(), jpeg.end() - 2);  // without EOI
  const std::vector<uint8_t> scan(jpeg.begin() + static_cast<long>(last_sos), jpeg.end() - 2);
  for (int i = 0; i < copies; ++i) out.insert(out.end(), scan.begin(), scan.end());
  out.push_back(0xFF);
  out.push_back(0xD9);
  return out;
}

// Sets the SOF dimensions of a JPEG.
void set_jpeg_size(std::vector<uint8_t>& jpeg, uint16_t w, uint16_t h) {
  for (size_t i = 0; i + 9 < jpeg.size(); ++i)
    if (jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC2)) {
      jpeg[i + 5] = static_cast<uint8_t>(h >> 8);
      jpeg[i + 6] = static_cast<uint8_t>(h);
      jpeg[i + 7] = static_cast<uint8_t>(w >> 8);
      jpeg[i + 8] = static_cast<uint8_t>(w);
      return;
    }
}

}  // namespace

TEST(HostileImages, PixelBombsAreRefusedFromTheHeader) {
  const auto png = png_claiming(32000, 32000);  // 65 bytes, 4 GB of pixels
  EXPECT_LT(png.size(), 70u);
  try {
    probe(png.data(), png.size());
    FAIL() << "a 32000x32000 PNG was accepted";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds"), std::string::npos) << e.what();
  }
  auto jpeg = progressive_jpeg(16, 16);
  set_jpeg_size(jpeg, 50000, 50000);  // a progressive coefficient buffer of gigabytes
  EXPECT_THROW(probe(jpeg.data(), jpeg.size()), DecodeError);
  // A tighter configured cap applies too.
  const auto ok = progressive_jpeg(64, 64);
  EXPECT_THROW(probe(ok.data(), ok.size(), DecodeLimits{1000, 1 << 20}), DecodeError);
  EXPECT_NO_THROW(probe(ok.data(), ok.size()));
}

TEST(HostileImages, ScanFloodIsRefusedOnBothDecodePaths) {
  const auto flood = scan_flood(progressive_jpeg(32, 32), 600);
  const ImageInfo info = probe(flood.data(), flood.size());
  RgbImage out;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(decode(flood.data(), flood.size(), info, Scale{}, out), DecodeError);  // TurboJPEG
  int top = 0, left = 0;
  try {
    decode_region(flood.data(), flood.size(), info, Scale{}, PixelBox{0, 0, 32, 32}, out, &top,
                  &left);
    FAIL() << "600 scans accepted";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("scans"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  // The same file with few scans decodes.
  const auto fine = progressive_jpeg(32, 32);
  EXPECT_NO_THROW(decode_region(fine.data(), fine.size(), probe(fine.data(), fine.size()), Scale{},
                                PixelBox{0, 0, 32, 32}, out, &top, &left));
}

TEST(HostileImages, FifoAndOversizedFilesAreSkippedNotWaitedOn) {
  const auto dir = fresh("img_fifo");
  fs::create_directories(dir / "n01440764");
  ASSERT_EQ(::mkfifo((dir / "n01440764" / "x.JPEG").c_str(), 0644), 0);
  const auto jpeg = progressive_jpeg(8, 8);
  write_bytes(dir / "n01440764" / "y.JPEG", std::string(jpeg.begin(), jpeg.end()));
  // Not listed at all...
  const auto samples = list_numeric_folders(dir, 1);  // folder name is not a number: no class
  EXPECT_TRUE(samples.empty());
  fs::rename(dir / "n01440764", dir / "0");
  const auto listed = list_numeric_folders(dir, 1);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].path.filename(), "y.JPEG");
  // ...and refused at once if reached some other way.
  std::vector<uint8_t> bytes;
  EXPECT_THROW(read_file(dir / "0" / "x.JPEG", bytes), DecodeError);
  EXPECT_THROW(read_file(dir / "0" / "y.JPEG", bytes, 10), DecodeError);  // size cap
  EXPECT_NO_THROW(read_file(dir / "0" / "y.JPEG", bytes));
  fs::remove_all(dir);
}

// ---- IDX ----------------------------------------------------------------------------------

TEST(HostileIdx, GzipBombStopsAtThePromisedSize) {
  const auto dir = fresh("idx_bomb");
  const auto path = dir / "bomb-idx1-ubyte.gz";
  {
    gzFile f = gzopen(path.c_str(), "wb9");
    const std::string header = std::string("\0\0\x08\x01", 4) + be32(10);  // promises 10 bytes
    gzwrite(f, header.data(), static_cast<unsigned>(header.size()));
    const std::vector<char> zeros(1 << 20, 0);
    for (int i = 0; i < 256; ++i)
      gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));  // 256 MB
    gzclose(f);
  }
  EXPECT_LT(fs::file_size(path), 2u << 20);
  const auto start = std::chrono::steady_clock::now();
  const std::string problem = user_error([&] { data::read_idx_file(path); });
  EXPECT_NE(problem.find("more than 10"), std::string::npos) << problem;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));  // never inflated
  fs::remove_all(dir);
}

TEST(HostileIdx, TruncatedAndAbsurdHeaders) {
  const auto dir = fresh("idx_headers");
  write_bytes(dir / "a", std::string("\0\0\x08\x03", 4) + be32(0xFFFFFFFF) + be32(0xFFFFFFFF) +
                             be32(0xFFFFFFFF));
  EXPECT_NE(user_error([&] { data::read_idx_file(dir / "a"); }).find("promises more"),
            std::string::npos);
  write_bytes(dir / "b", std::string("\0\0\x08\x01", 4) + be32(1000) + "abc");
  EXPECT_NE(user_error([&] { data::read_idx_file(dir / "b"); }).find("truncated"),
            std::string::npos);
  write_bytes(dir / "c", std::string("\0\0\x08\x01", 4) + be32(3) + "abc");
  EXPECT_EQ(data::read_idx_file(dir / "c").numel(), 3);
  fs::remove_all(dir);
}

// ---- safetensors and checkpoints -----------------------------------------------------------

namespace {

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

}  // namespace

TEST(HostileSafetensors, DuplicateKeysAndHugeHeadersAreRefused) {
  const auto dir = fresh("st");
  write_bytes(dir / "dup.safetensors",
              safetensors_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                                "x"));
  EXPECT_NE(user_error([&] { io::read_safetensors(dir / "dup.safetensors"); }).find("twice"),
            std::string::npos);
  write_bytes(dir / "dupmeta.safetensors",
              safetensors_bytes(R"({"__metadata__":{"format":"a","format":"b"}})", ""));
  EXPECT_NE(
      user_error([&] { io::read_safetensors_header(dir / "dupmeta.safetensors"); }).find("twice"),
      std::string::npos);
  // A header length of 2^40 is refused before anything is allocated for it.
  std::string huge(8, '\0');
  const uint64_t n = uint64_t{1} << 40;
  std::memcpy(huge.data(), &n, 8);
  write_bytes(dir / "huge.safetensors", huge + "{}");
  EXPECT_NE(
      user_error([&] { io::read_safetensors_header(dir / "huge.safetensors"); }).find("limit"),
      std::string::npos);
  fs::remove_all(dir);
}

TEST(HostileCheckpoint, MetadataIsValidatedBeforeUse) {
  const auto dir = fresh("ckpt_meta");
  const auto save = [&](const io::Metadata& metadata) {
    io::write_safetensors(dir / "c.safetensors", {{"w", torch::zeros({2})}}, metadata);
    return user_error([&] { io::load_checkpoint(dir / "c.safetensors"); });
  };
  EXPECT_EQ(save({{"format", "lth-checkpoint-1"}, {"iteration", "5"}}), "");
  EXPECT_NE(save({{"format", "lth-checkpoint-1"}, {"iteration", "-5"}}).find("negative"),
            std::string::npos);
  EXPECT_NE(save({{"format", "lth-checkpoint-1"}, {"iteration", "99999999999999999999999"}})
                .find("not a number"),
            std::string::npos);
  EXPECT_NE(save({{"format", "lth-checkpoint-1"}, {"iteration", "1"}, {"best_acc", "nan"}})
                .find("best_acc"),
            std::string::npos);
  EXPECT_NE(save({{"format", "lth-checkpoint-1"}, {"iteration", "1"}, {"trainer", "[1]"}})
                .find("trainer"),
            std::string::npos);
  fs::remove_all(dir);
}

// ---- all of the above under an address-space limit -------------------------------------------

// The bombs again, in a child whose address space may grow by at most 1 GiB beyond what it
// already maps: an allocation the caps failed to prevent would fail (or crash) the child.
TEST(HostileMemory, BombsStayWithinAnAddressSpaceLimit) {
  const auto dir = fresh("memory");
  {
    gzFile f = gzopen((dir / "bomb.gz").c_str(), "wb9");
    const std::string header = std::string("\0\0\x08\x01", 4) + be32(10);
    gzwrite(f, header.data(), static_cast<unsigned>(header.size()));
    const std::vector<char> zeros(1 << 20, 0);
    for (int i = 0; i < 64; ++i) gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));
    gzclose(f);
  }
  write_bytes(dir / "wide.npy", npy_bytes("{'descr': '|u1', 'fortran_order': False, "
                                          "'shape': (4294967296, 4294967296), }\n"));
  auto jpeg_bomb = progressive_jpeg(16, 16);
  set_jpeg_size(jpeg_bomb, 50000, 50000);
  const auto png_bomb = png_claiming(32000, 32000);
  const auto flood = scan_flood(progressive_jpeg(32, 32), 600);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const rlim_t limit = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) +
                         (rlim_t{1} << 30);
    const rlimit rl{limit, limit};
    if (::setrlimit(RLIMIT_AS, &rl) != 0) ::_exit(10);
    int failures = 0;
    const std::vector<const std::vector<uint8_t>*> images = {&jpeg_bomb, &png_bomb, &flood};
    for (const auto* bytes : images) {
      std::vector<uint8_t> out(32 * 32 * 3);
      Rng rng(1);
      try {
        TransformSpec spec;
        spec.size = 32;
        spec.train = true;
        decode_and_transform(bytes->data(), bytes->size(), spec, rng, out.data());
        ++failures;
      } catch (const DecodeError&) {
      } catch (...) {
        ++failures;
      }
    }
    for (const auto& path : {dir / "bomb.gz", dir / "wide.npy"}) {
      try {
        if (path.extension() == ".gz")
          data::read_idx_file(path);
        else
          read_npy(path);
        ++failures;
      } catch (const UserError&) {
      } catch (...) {
        ++failures;
      }
    }
    ::_exit(failures);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of a signal";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "inputs that were not refused cleanly";
  fs::remove_all(dir);
}
