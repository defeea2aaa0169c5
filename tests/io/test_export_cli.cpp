// `lth export`, and `lth info --ckpt` / `lth eval --ckpt` on its files: the commands a user
// runs, on a real ticket and a generated ImageNet-layout data root.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "compact_test_util.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace lth::io {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

struct Run {
  int status = -1;
  std::string output;  // stdout and stderr
};

Run lth(const std::string& args) {
  Run run;
  int raw = 0;
  run.output = testing::run_command(std::string(LTH_BINARY) + " " + args + " 2>&1", &raw);
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return run;
}

nlohmann::json json_of(const fs::path& path) {
  return nlohmann::json::parse(testing::read_bytes(path));
}

// One line, "lth: ...", naming `path`, exit status 2.
void expect_user_error(const Run& run, const std::string& path, const std::string& problem) {
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_EQ(run.output.rfind("lth: ", 0), 0u) << run.output;
  EXPECT_EQ(run.output.find('\n'), run.output.size() - 1) << run.output;
  EXPECT_NE(run.output.find(path), std::string::npos) << run.output;
  EXPECT_NE(run.output.find(problem), std::string::npos) << run.output;
}

class ExportCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir;
    // 1000 classes: the generated root is ImageNet-layout (7 of the 1000 classes present).
    const auto ticket = testing::make_ticket(testing::ticket_model("resnet20", 32, 1000), 0.3);
    save_checkpoint(path("ticket.safetensors"), ticket);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string path(const std::string& name) { return (*dir_ / name).string(); }

  static ScratchDir* dir_;
};
ScratchDir* ExportCli::dir_ = nullptr;

TEST_F(ExportCli, ExportedFilesEvaluateLikeTheTicket) {
  const std::string ticket = path("ticket.safetensors");
  auto r = lth("export --ckpt " + ticket + " --to " + path("compact.safetensors"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("density 0.3000"), std::string::npos) << r.output;
  r = lth("export --ckpt " + ticket + " --fold_bn --to " + path("folded.safetensors"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("21 BatchNorms folded"), std::string::npos) << r.output;
  r = lth("export --ckpt " + ticket + " --dtype bfloat16 --to " + path("bf16.safetensors"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_LT(fs::file_size(path("compact.safetensors")), fs::file_size(ticket) / 2);

  // info reads both formats and agrees on the masks.
  r = lth("info --ckpt " + ticket + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto dense_info = nlohmann::json::parse(r.output);
  EXPECT_EQ(dense_info["format"], "lth-checkpoint-1");
  for (const char* file : {"compact.safetensors", "folded.safetensors", "bf16.safetensors"}) {
    r = lth("info --ckpt " + path(file) + " --json");
    ASSERT_EQ(r.status, 0) << r.output;
    const auto info = nlohmann::json::parse(r.output);
    EXPECT_EQ(info["format"], "lth-compact-ticket-1") << file;
    EXPECT_EQ(info["kept"], dense_info["kept"]) << file;
    EXPECT_EQ(info["masked"], dense_info["masked"]) << file;
    EXPECT_EQ(info["model"], "resnet20") << file;
    EXPECT_EQ(info["iteration"], dense_info["iteration"]) << file;
  }
  EXPECT_NEAR(dense_info["density"].get<double>(), 0.3, 1e-4);
  r = lth("info --ckpt " + path("folded.safetensors"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("values float32, BN folded"), std::string::npos) << r.output;

  // eval: the same accuracies on every test set (the folded file's NLL within float32
  // rounding of the ticket's; the unfolded file's exactly).
  const std::string root = path("data");
  r = lth("make-imagenet --out " + root +
          " --classes 7 --per_class 2 --test_per_class 6 --size 40 --seed 5");
  ASSERT_EQ(r.status, 0) << r.output;
  std::map<std::string, nlohmann::json> results;
  for (const char* file : {"ticket.safetensors", "compact.safetensors", "folded.safetensors"}) {
    const std::string json = path(std::string(file) + ".eval.json");
    r = lth("eval --ckpt " + path(file) + " --data_root " + root +
            " --image_size 32 --threads 1 --num_workers 1 --json " + json);
    ASSERT_EQ(r.status, 0) << r.output;
    results[file] = json_of(json)["test"];
  }
  const auto& want = results["ticket.safetensors"];
  ASSERT_EQ(want.size(), 5u) << want.dump();
  for (const auto& [set, w] : want.items()) {
    EXPECT_GT(w["count"].get<int64_t>(), 0) << set;
    const auto& compact = results["compact.safetensors"][set];
    const auto& folded = results["folded.safetensors"][set];
    EXPECT_EQ(compact["acc"], w["acc"]) << set;
    EXPECT_EQ(compact["nll"], w["nll"]) << set;
    EXPECT_EQ(folded["acc"], w["acc"]) << set;
    EXPECT_NEAR(folded["nll"].get<double>(), w["nll"].get<double>(),
                1e-4 * std::abs(w["nll"].get<double>()))
        << set;
  }
}

TEST_F(ExportCli, NeverOverwrites) {
  const std::string to = path("taken.safetensors");
  testing::write_bytes(to, "mine");
  const auto r = lth("export --ckpt " + path("ticket.safetensors") + " --to " + to);
  expect_user_error(r, to, "already exists");
  EXPECT_EQ(testing::read_bytes(to), "mine");
}

TEST_F(ExportCli, BadInputsAreOneLineAndExitTwo) {
  const std::string good = path("good.safetensors");
  fs::remove(good);
  ASSERT_EQ(lth("export --ckpt " + path("ticket.safetensors") + " --to " + good).status, 0);
  const std::string bytes = testing::read_bytes(good);

  const std::string truncated = path("truncated.safetensors");
  testing::write_bytes(truncated, bytes.substr(0, bytes.size() - 100));
  auto content = read_safetensors(good);
  content.tensors["conv1.weight.values"] = content.tensors["conv1.weight.values"].narrow(0, 1, 10);
  const std::string miscounted = path("miscounted.safetensors");
  fs::remove(miscounted);
  write_safetensors(miscounted, content.tensors, content.metadata);
  content = read_safetensors(good);
  content.metadata["masked"] = R"({"conv1.weight": [16, 3, 3, 4]})";
  const std::string misshaped = path("misshaped.safetensors");
  fs::remove(misshaped);
  write_safetensors(misshaped, content.tensors, content.metadata);
  content = read_safetensors(good);
  content.metadata.erase("masked");
  const std::string no_metadata = path("no_metadata.safetensors");
  fs::remove(no_metadata);
  write_safetensors(no_metadata, content.tensors, content.metadata);

  const std::vector<std::pair<std::string, std::string>> cases = {
      {truncated, "truncated"},
      {miscounted, "'conv1.weight.values' has 10 entries but 'conv1.weight.mask_bits' keeps"},
      {misshaped, "for shape [16, 3, 3, 4]"},
      {no_metadata, "metadata has no 'masked'"},
  };
  // eval shares info's load path (io::load_checkpoint): one case shows it (each run of lth
  // costs seconds).
  expect_user_error(lth("eval --ckpt " + miscounted + " --data_root " + path("nowhere")),
                    miscounted, "'conv1.weight.values' has 10 entries");
  for (const auto& [file, problem] : cases) {
    expect_user_error(lth("info --ckpt " + file), file, problem);
    expect_user_error(lth("export --ckpt " + file + " --to " + path("out.safetensors")), file,
                      problem);
    EXPECT_FALSE(fs::exists(path("out.safetensors")));
  }

  // Not a ticket: a checkpoint without masks.
  Checkpoint plain;
  plain.state["w"] = torch::ones({4});
  const std::string maskless = path("maskless.safetensors");
  fs::remove(maskless);
  save_checkpoint(maskless, plain);
  expect_user_error(lth("export --ckpt " + maskless + " --to " + path("out.safetensors")), maskless,
                    "has no masks");
  // A bad --dtype is refused by the flag parser, before anything is read.
  const auto r =
      lth("export --ckpt " + good + " --to " + path("out.safetensors") + " --dtype int8");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--dtype"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("out.safetensors")));
}

}  // namespace
}  // namespace lth::io
