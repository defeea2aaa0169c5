#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/file_util.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace lth::io {
namespace {

using testing::read_bytes;
using testing::ScratchDir;
using testing::write_bytes;

const torch::ScalarType kAllTypes[] = {
    torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kInt64,
    torch::kInt32,   torch::kInt16,   torch::kInt8,    torch::kUInt8,    torch::kBool};

// Values that exercise every bit pattern class a dtype has: signs, extremes, -0, NaN, inf.
torch::Tensor sample(torch::ScalarType type) {
  if (type == torch::kBool) return torch::tensor({1, 0, 0, 1, 1, 0}, torch::kBool).reshape({2, 3});
  if (torch::isFloatingType(type)) {
    const double inf = std::numeric_limits<double>::infinity();
    return torch::tensor({-0.0, 1.5, -2.25e-3, inf, -inf, std::nan("")}, torch::kFloat64)
        .to(type)
        .reshape({2, 3});
  }
  return torch::tensor({0, 1, -1, 100, -100, 7}, torch::kInt64).to(type).reshape({2, 3});
}

bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0);
}

TensorMap every_dtype() {
  TensorMap tensors;
  for (const auto type : kAllTypes) {
    const std::string name = safetensors_dtype(type);
    tensors[name + "/matrix"] = sample(type);
    tensors[name + "/scalar"] = sample(type).reshape(-1)[1].clone();  // 0-d
    tensors[name + "/empty"] = torch::empty({0}, torch::TensorOptions().dtype(type));
    tensors[name + "/empty2d"] = torch::empty({2, 0}, torch::TensorOptions().dtype(type));
  }
  return tensors;
}

TEST(Safetensors, RoundTripIsBitExactForEveryDtype) {
  ScratchDir dir;
  const TensorMap tensors = every_dtype();
  const Metadata metadata{{"format", "test"}, {"empty", ""}, {"unicode", "δ → ∞"}};
  write_safetensors(dir / "a.safetensors", tensors, metadata);
  const SafetensorsContent back = read_safetensors(dir / "a.safetensors");
  EXPECT_EQ(back.metadata, metadata);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    EXPECT_TRUE(same_bytes(back.tensors.at(name), tensor)) << name;
    EXPECT_TRUE(back.tensors.at(name).is_contiguous());
  }
  EXPECT_EQ(back.tensors.at("F32/scalar").dim(), 0);
}

TEST(Safetensors, WritesNonContiguousTensorsByValue) {
  ScratchDir dir;
  const torch::Tensor base = torch::arange(12, torch::kFloat32).reshape({3, 4});
  write_safetensors(dir / "t.safetensors", {{"t", base.t()}, {"s", base.slice(1, 1, 3)}}, {});
  const auto back = read_safetensors(dir / "t.safetensors");
  EXPECT_TRUE(torch::equal(back.tensors.at("t"), base.t()));
  EXPECT_TRUE(torch::equal(back.tensors.at("s"), base.slice(1, 1, 3)));
}

TEST(Safetensors, LayoutFollowsTheReference) {
  ScratchDir dir;
  write_safetensors(
      dir / "a.safetensors",
      {{"b", torch::ones({3}, torch::kInt8)}, {"a", torch::ones({2}, torch::kFloat64)}},
      {{"k", "v"}});
  const std::string bytes = read_bytes(dir / "a.safetensors");
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  EXPECT_EQ(length % 8, 0u);  // padded with spaces so data starts 8-aligned
  EXPECT_EQ(bytes.size(), 8 + length + 16 + 3);
  const auto header = nlohmann::json::parse(bytes.substr(8, length));
  EXPECT_EQ(header["a"]["data_offsets"], nlohmann::json({0, 16}));  // sorted by name
  EXPECT_EQ(header["b"]["data_offsets"], nlohmann::json({16, 19}));
  EXPECT_EQ(header["__metadata__"]["k"], "v");
  const SafetensorsHeader parsed = read_safetensors_header(dir / "a.safetensors");
  EXPECT_EQ(parsed.data_start, 8 + length);
  EXPECT_EQ(parsed.tensors.at("b").dtype, "I8");
  EXPECT_EQ(parsed.tensors.at("b").shape, std::vector<int64_t>{3});
}

TEST(Safetensors, NoMetadataMeansNoMetadataEntry) {
  ScratchDir dir;
  write_safetensors(dir / "a.safetensors", {{"x", torch::zeros({1})}}, {});
  const std::string bytes = read_bytes(dir / "a.safetensors");
  EXPECT_EQ(bytes.find("__metadata__"), std::string::npos);
  EXPECT_TRUE(read_safetensors(dir / "a.safetensors").metadata.empty());
}

TEST(Safetensors, RejectsUnsupportedDtypes) {
  ScratchDir dir;
  EXPECT_THROW(write_safetensors(dir / "a.safetensors",
                                 {{"c", torch::zeros({2}, torch::kComplexFloat)}}, {}),
               UserError);
  EXPECT_FALSE(std::filesystem::exists(dir / "a.safetensors"));
}

// ---- the independent reader ----------------------------------------------------------

double value_of(const nlohmann::json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "nan") return std::nan("");
    return s == "inf" ? std::numeric_limits<double>::infinity()
                      : -std::numeric_limits<double>::infinity();
  }
  return v.get<double>();
}

bool same_value(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
}

TEST(Safetensors, IndependentPythonReaderAgrees) {
  ScratchDir dir;
  TensorMap tensors = every_dtype();
  tensors["I64/big"] = torch::tensor({int64_t{1} << 53, -(int64_t{1} << 40)}, torch::kInt64);
  const Metadata metadata{{"format", "lth-test"}, {"note", "quotes \" and \\ survive"}};
  const auto file = dir / "py.safetensors";
  write_safetensors(file, tensors, metadata);

  const std::string script = std::string(LTH_SOURCE_DIR) + "/tests/io/read_safetensors.py";
  int status = 0;
  const std::string out =
      testing::run_command("/usr/bin/python3 '" + script + "' '" + file.string() + "'", &status);
  ASSERT_EQ(status, 0) << out;
  const auto parsed = nlohmann::json::parse(out);
  EXPECT_EQ(parsed["metadata"].get<Metadata>(), metadata);
  EXPECT_EQ(parsed["header_length"].get<uint64_t>() % 8, 0u);
  std::vector<std::string> names;
  for (const auto& [name, _] : tensors) names.push_back(name);
  EXPECT_EQ(parsed["order"].get<std::vector<std::string>>(), names);  // data in sorted-name order
  for (const auto& [name, tensor] : tensors) {
    const auto& entry = parsed["tensors"][name];
    EXPECT_EQ(entry["dtype"], safetensors_dtype(tensor.scalar_type())) << name;
    EXPECT_EQ(entry["shape"].get<std::vector<int64_t>>(), tensor.sizes().vec()) << name;
    const torch::Tensor flat = tensor.reshape(-1).to(torch::kFloat64);
    ASSERT_EQ(entry["values"].size(), static_cast<size_t>(flat.numel())) << name;
    for (int64_t i = 0; i < flat.numel(); ++i)
      EXPECT_TRUE(same_value(value_of(entry["values"][i]), flat[i].item<double>()))
          << name << "[" << i << "]";
  }
}

// ---- malformed files -----------------------------------------------------------------

std::string file_with(const std::string& header, const std::string& data) {
  const uint64_t length = header.size();
  return std::string(reinterpret_cast<const char*>(&length), 8) + header + data;
}

// Expects read_safetensors (and the header-only reader) to throw UserError naming the
// file and containing `problem`.
void expect_rejected(const std::filesystem::path& file, const std::string& problem) {
  for (int header_only = 0; header_only < 2; ++header_only) {
    try {
      if (header_only)
        read_safetensors_header(file);
      else
        read_safetensors(file);
      ADD_FAILURE() << "no error for " << file << " (" << problem << ")";
    } catch (const UserError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(file.string() + ": ", 0), 0u) << message;
      EXPECT_NE(message.find(problem), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

TEST(Safetensors, MissingFileNamesTheFile) {
  ScratchDir dir;
  expect_rejected(dir / "nope.safetensors", "no such file");
}

TEST(Safetensors, TruncatedFilesAreRejectedAtEveryCut) {
  ScratchDir dir;
  write_safetensors(dir / "good.safetensors", {{"w", torch::arange(64, torch::kFloat32)}},
                    {{"k", "v"}});
  const std::string bytes = read_bytes(dir / "good.safetensors");
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  const struct {
    size_t cut;
    const char* problem;
  } cuts[] = {{0, "too short"},
              {5, "too short"},
              {8, "header length"},
              {8 + length / 2, "header length"},
              {8 + length, "truncated"},
              {8 + length + 100, "truncated"},
              {bytes.size() - 1, "truncated"}};
  for (const auto& [cut, problem] : cuts) {
    const auto file = dir / ("cut" + std::to_string(cut) + ".safetensors");
    write_bytes(file, bytes.substr(0, cut));
    expect_rejected(file, problem);
  }
}

TEST(Safetensors, MalformedHeadersAreRejected) {
  ScratchDir dir;
  const std::string f32x2 = std::string(8, '\0');
  const struct {
    const char* name;
    std::string bytes;
    const char* problem;
  } cases[] = {
      {"garbage", file_with("{this is not json", f32x2), "not valid JSON"},
      {"array", file_with("[1, 2]", ""), "not a JSON object"},
      {"huge_length", std::string("\xff\xff\xff\xff\x00\x00\x00\x00", 8) + "{}", "header length"},
      {"dtype", file_with(R"({"x":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "ab"),
       "unsupported dtype 'F8_E4M3'"},
      {"shape", file_with(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2),
       "span 8"},
      {"negative", file_with(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2),
       "non-negative"},
      {"reversed", file_with(R"({"x":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", ""),
       "end < begin"},
      {"overlap",
       file_with(
           R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
           f32x2),
       "overlap"},
      {"beyond", file_with(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f32x2),
       "beyond the end"},
      {"gap", file_with(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32x2),
       "belong to no tensor"},
      {"trailing", file_with(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32x2),
       "trailing"},
      {"metadata", file_with(R"({"__metadata__":{"k":3}})", ""), "not a string"},
      {"missing_key", file_with(R"({"x":{"dtype":"F32","shape":[1]}})", "abcd"), "data_offsets"},
      {"bool", file_with(R"({"x":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", "\x01\x07"),
       "BOOL"},
  };
  for (const auto& c : cases) {
    const auto file = dir / (std::string(c.name) + ".safetensors");
    write_bytes(file, c.bytes);
    if (std::string(c.name) == "bool") {  // only visible once the data is read
      EXPECT_NO_THROW(read_safetensors_header(file));
      EXPECT_THROW(read_safetensors(file), UserError);
      continue;
    }
    expect_rejected(file, c.problem);
  }
}

TEST(Safetensors, AcceptsFilesWithoutPaddingOrTensors) {
  ScratchDir dir;
  write_bytes(dir / "empty.safetensors", file_with("{}", ""));
  EXPECT_TRUE(read_safetensors(dir / "empty.safetensors").tensors.empty());
  write_bytes(dir / "odd.safetensors",
              file_with(R"({"x":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})", "abc"));
  EXPECT_EQ(read_safetensors(dir / "odd.safetensors").tensors.at("x")[2].item<uint8_t>(), 'c');
}

// ---- atomic writes -------------------------------------------------------------------

// Writes go to fresh exclusive temporaries, never to a predictable name: a leftover (or
// planted) "<name>.tmp" is not touched by them; the run folder's lock removes leftovers.
TEST(Safetensors, LeftoverTemporaryIsIgnoredAndNeverWrittenThrough) {
  ScratchDir dir;
  const auto file = dir / "a.safetensors";
  write_safetensors(file, {{"x", torch::ones({4})}}, {});
  write_bytes(dir / "a.safetensors.tmp", "torn write from a crashed process");
  EXPECT_TRUE(torch::equal(read_safetensors(file).tensors.at("x"), torch::ones({4})));
  write_safetensors(file, {{"x", torch::zeros({2})}}, {});
  EXPECT_EQ(read_bytes(dir / "a.safetensors.tmp"), "torn write from a crashed process");
  EXPECT_TRUE(torch::equal(read_safetensors(file).tensors.at("x"), torch::zeros({2})));
  EXPECT_EQ(remove_stale_temporaries(dir.path()).size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(dir / "a.safetensors.tmp"));
}

// Failing writes must leave the previous file byte-for-byte and no temporary behind.
class FailedWrite : public ::testing::Test {
 protected:
  void SetUp() override {
    write_safetensors(file_, {{"x", torch::ones({4})}}, {{"v", "old"}});
    old_ = read_bytes(file_);
  }
  void expect_old_file_intact() {
    EXPECT_EQ(read_bytes(file_), old_);
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path()))
      EXPECT_FALSE(is_stale_temporary(entry.path())) << entry.path();
  }
  ScratchDir dir_;
  std::filesystem::path file_ = dir_ / "a.safetensors";
  std::string old_;
};

// Root ignores folder permissions, so as root the write is attempted in a child process
// that has given up its privileges (uid/gid "nobody").
TEST_F(FailedWrite, ReadOnlyFolder) {
  namespace fs = std::filesystem;
  fs::permissions(dir_.path(), fs::perms::owner_read | fs::perms::owner_exec |
                                   fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec);
  const pid_t child = ::fork();
  if (child == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    try {
      write_safetensors(file_, {{"x", torch::zeros({4})}}, {});
    } catch (const UserError& e) {
      ::_exit(std::string(e.what()).rfind(file_.string() + ": cannot write", 0) == 0 ? 0 : 2);
    }
    ::_exit(1);  // the write succeeded
  }
  int status = -1;
  ::waitpid(child, &status, 0);
  fs::permissions(dir_.path(), fs::perms::owner_all);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "1: write succeeded, 2: wrong message, 3: could not drop privileges";
  expect_old_file_intact();
}

// No descriptor left (RLIMIT_NOFILE at the three standard streams, in a child): the
// temporary cannot be created, for root too.
TEST_F(FailedWrite, TemporaryCannotBeCreated) {
  const pid_t child = ::fork();
  if (child == 0) {
    const rlimit limit{3, 3};
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(3);
    try {
      write_safetensors(file_, {{"x", torch::zeros({4})}}, {});
    } catch (const UserError& e) {
      ::_exit(std::string(e.what()).find(file_.string() + ": cannot write") != std::string::npos ? 0 : 2);
    }
    ::_exit(1);
  }
  int status = -1;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: write succeeded, 2: wrong message, 3: setrlimit failed";
  expect_old_file_intact();
}

// A file size limit makes write() fail half-way, as a full disk would.
TEST_F(FailedWrite, DiskFullHalfWay) {
  struct rlimit saved {};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ::setrlimit(RLIMIT_FSIZE, &small);
  EXPECT_THROW(write_safetensors(file_, {{"x", torch::zeros({100000})}}, {}), UserError);
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  expect_old_file_intact();
}

}  // namespace
}  // namespace lth::io
