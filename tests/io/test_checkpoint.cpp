#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace lth::io {
namespace {

using testing::ScratchDir;

Checkpoint sample_checkpoint() {
  Checkpoint ckpt;
  ckpt.iteration = 47000;
  ckpt.state["conv1.weight"] = torch::randn({4, 3, 3, 3});
  ckpt.state["bn1.running_var"] = torch::rand({4});
  ckpt.state["fc.weight"] = torch::randn({10, 4});
  ckpt.masks["conv1.weight"] = (torch::rand({4, 3, 3, 3}) > 0.5).to(torch::kFloat32);
  ckpt.masks["fc.weight"] = torch::ones({10, 4});
  ckpt.momentum["conv1.weight"] = torch::randn({4, 3, 3, 3});
  ckpt.config = {{"model", "resnet50"}, {"lr", 0.8}, {"nested", {{"a", {1, 2}}}}};
  ckpt.best_acc = 0.7648123456789;
  ckpt.trainer = {{"loss_scale", 65536.0}, {"epoch", 3}};
  return ckpt;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(Checkpoint, RoundTrip) {
  ScratchDir dir;
  const Checkpoint ckpt = sample_checkpoint();
  save_checkpoint(dir / "c.safetensors", ckpt);
  const Checkpoint back = load_checkpoint(dir / "c.safetensors");
  EXPECT_EQ(back.iteration, 47000);
  EXPECT_EQ(back.config, ckpt.config);
  EXPECT_EQ(back.trainer, ckpt.trainer);
  ASSERT_TRUE(back.best_acc.has_value());
  EXPECT_EQ(*back.best_acc, *ckpt.best_acc);  // bit-exact through the text metadata
  ASSERT_EQ(back.state.size(), 3u);
  for (const auto& [name, t] : ckpt.state)
    EXPECT_TRUE(torch::equal(back.state.at(name), t)) << name;
  ASSERT_EQ(back.masks.size(), 2u);
  for (const auto& [name, m] : ckpt.masks) {
    EXPECT_EQ(back.masks.at(name).scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(back.masks.at(name), m)) << name;
  }
  ASSERT_EQ(back.momentum.size(), 1u);
  EXPECT_TRUE(torch::equal(back.momentum.at("conv1.weight"), ckpt.momentum.at("conv1.weight")));
}

TEST(Checkpoint, OnDiskLayoutFollowsTheContract) {
  ScratchDir dir;
  save_checkpoint(dir / "c.safetensors", sample_checkpoint());
  const SafetensorsContent raw = read_safetensors(dir / "c.safetensors");
  const torch::Tensor mask = raw.tensors.at("mask/conv1.weight");
  EXPECT_EQ(mask.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(((mask == 0) | (mask == 1)).all().item<bool>());
  EXPECT_TRUE(raw.tensors.count("momentum/conv1.weight"));
  EXPECT_TRUE(raw.tensors.count("conv1.weight"));
  EXPECT_EQ(raw.metadata.at("format"), "lth-checkpoint-1");
  EXPECT_EQ(raw.metadata.at("iteration"), "47000");
  EXPECT_EQ(nlohmann::json::parse(raw.metadata.at("config"))["model"], "resnet50");
  EXPECT_EQ(std::stod(raw.metadata.at("best_acc")), 0.7648123456789);
  EXPECT_EQ(nlohmann::json::parse(raw.metadata.at("trainer"))["epoch"], 3);
}

TEST(Checkpoint, WeightsOnlyWithoutBestAcc) {
  ScratchDir dir;
  Checkpoint ckpt;
  ckpt.iteration = 1000;
  ckpt.state["w"] = torch::ones({2});
  save_checkpoint(dir / "c.safetensors", ckpt);
  EXPECT_EQ(read_safetensors(dir / "c.safetensors").metadata.count("best_acc"), 0u);
  const Checkpoint back = load_checkpoint(dir / "c.safetensors");
  EXPECT_FALSE(back.best_acc.has_value());
  EXPECT_TRUE(back.masks.empty());
  EXPECT_TRUE(back.momentum.empty());
}

TEST(Checkpoint, RejectsNonBinaryMaskOnSave) {
  ScratchDir dir;
  Checkpoint ckpt = sample_checkpoint();
  ckpt.masks["fc.weight"][0][0] = 0.5;
  const std::string message = error_of([&] { save_checkpoint(dir / "c.safetensors", ckpt); });
  EXPECT_NE(message.find("mask/fc.weight has values other than 0 and 1"), std::string::npos)
      << message;
  EXPECT_FALSE(std::filesystem::exists(dir / "c.safetensors"));
}

TEST(Checkpoint, RejectsMaskOfWrongShapeOrWithoutParameter) {
  ScratchDir dir;
  Checkpoint ckpt = sample_checkpoint();
  ckpt.masks["fc.weight"] = torch::ones({4, 10});
  EXPECT_NE(error_of([&] { save_checkpoint(dir / "c.safetensors", ckpt); }).find("shape"),
            std::string::npos);
  ckpt = sample_checkpoint();
  ckpt.masks["layer9.weight"] = torch::ones({1});
  EXPECT_NE(error_of([&] { save_checkpoint(dir / "c.safetensors", ckpt); }).find("no parameter"),
            std::string::npos);
}

TEST(Checkpoint, LoadRejectsForeignAndInconsistentFiles) {
  ScratchDir dir;
  const auto plain = dir / "plain.safetensors";
  write_safetensors(plain, {{"w", torch::ones({2})}}, {});
  EXPECT_EQ(
      error_of([&] { load_checkpoint(plain); }),
      plain.string() + ": not an lth checkpoint (format missing, expected 'lth-checkpoint-1')");
  const auto other = dir / "other.safetensors";
  write_safetensors(other, {{"w", torch::ones({2})}}, {{"format", "pt"}});
  EXPECT_EQ(error_of([&] { load_checkpoint(other); }),
            other.string() + ": not an lth checkpoint (format 'pt', expected 'lth-checkpoint-1')");

  const Metadata good{{"format", "lth-checkpoint-1"}, {"iteration", "5"}};
  const auto shape = dir / "shape.safetensors";
  write_safetensors(
      shape, {{"w", torch::ones({2, 3})}, {"mask/w", torch::ones({3, 2}, torch::kUInt8)}}, good);
  const std::string shape_error = error_of([&] { load_checkpoint(shape); });
  EXPECT_NE(shape_error.find(shape.string() + ": mask/w has shape [3, 2] but w has shape [2, 3]"),
            std::string::npos)
      << shape_error;
  const auto values = dir / "values.safetensors";
  write_safetensors(
      values, {{"w", torch::ones({2})}, {"mask/w", torch::tensor({0, 2}, torch::kUInt8)}}, good);
  EXPECT_NE(error_of([&] { load_checkpoint(values); }).find("other than 0 and 1"),
            std::string::npos);
  const auto iteration = dir / "iteration.safetensors";
  write_safetensors(iteration, {{"w", torch::ones({2})}},
                    {{"format", "lth-checkpoint-1"}, {"iteration", "12x"}});
  EXPECT_NE(error_of([&] { load_checkpoint(iteration); }).find("'iteration' is not a number"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_checkpoint(dir / "missing.safetensors"); }).find("no such file"),
            std::string::npos);
}

TEST(Checkpoint, AtomicAgainstLeftoverTemporary) {
  ScratchDir dir;
  const auto file = dir / "last.safetensors";
  Checkpoint ckpt = sample_checkpoint();
  save_checkpoint(file, ckpt);
  testing::write_bytes(file.string() + ".tmp", std::string(100, 'x'));  // a crashed save
  EXPECT_EQ(load_checkpoint(file).iteration, 47000);
  ckpt.iteration = 48000;
  save_checkpoint(file, ckpt);
  EXPECT_EQ(load_checkpoint(file).iteration, 48000);
  // Saves write to fresh exclusive names: the leftover is never written through.
  EXPECT_EQ(testing::read_bytes(file.string() + ".tmp"), std::string(100, 'x'));
}

TEST(Checkpoint, FailedSaveKeepsThePreviousFile) {
  ScratchDir dir;
  const auto file = dir / "last.safetensors";
  save_checkpoint(file, sample_checkpoint());
  const std::string before = testing::read_bytes(file);
  Checkpoint next = sample_checkpoint();
  next.iteration = 1;
  // A child with no descriptor to spare (RLIMIT_NOFILE 3) cannot create the temporary.
  const pid_t child = ::fork();
  if (child == 0) {
    const rlimit limit{3, 3};
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(3);
    try {
      save_checkpoint(file, next);
    } catch (const UserError&) {
      ::_exit(0);
    }
    ::_exit(1);
  }
  int status = -1;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the save succeeded, 3: setrlimit failed";
  EXPECT_EQ(testing::read_bytes(file), before);
}

TEST(Checkpoint, PythonReadsMasksAsUint8) {
  ScratchDir dir;
  const auto file = dir / "c.safetensors";
  save_checkpoint(file, sample_checkpoint());
  const std::string script = std::string(LTH_SOURCE_DIR) + "/tests/io/read_safetensors.py";
  int status = 0;
  const auto out = nlohmann::json::parse(
      testing::run_command("/usr/bin/python3 '" + script + "' '" + file.string() + "'", &status));
  ASSERT_EQ(status, 0);
  EXPECT_EQ(out["tensors"]["mask/fc.weight"]["dtype"], "U8");
  EXPECT_EQ(out["metadata"]["format"], "lth-checkpoint-1");
}

// The numpy snippets in docs/FORMATS.md, run as written against a checkpoint we wrote.
std::vector<std::string> python_blocks(const std::string& markdown) {
  std::vector<std::string> blocks;
  const std::string open = "```python\n", close = "```\n";
  for (size_t at = markdown.find(open); at != std::string::npos; at = markdown.find(open, at)) {
    at += open.size();
    const size_t end = markdown.find(close, at);
    blocks.push_back(markdown.substr(at, end - at));
  }
  return blocks;
}

TEST(Checkpoint, DocumentedNumpySnippetReadsIt) {
  ScratchDir dir;
  const Checkpoint ckpt = sample_checkpoint();
  save_checkpoint(dir / "c.safetensors", ckpt);
  const auto blocks =
      python_blocks(testing::read_bytes(std::string(LTH_SOURCE_DIR) + "/docs/FORMATS.md"));
  ASSERT_GE(blocks.size(), 2u);
  std::string usage = blocks[1];
  const std::string example = "run/003/init.safetensors";
  ASSERT_NE(usage.find(example), std::string::npos);
  usage.replace(usage.find(example), example.size(), (dir / "c.safetensors").string());
  const std::string script = blocks[0] + usage +
                             "print(json.dumps({'iteration': iteration, 'density': float(density), "
                             "'conv1': float(weights['conv1.weight'].astype(np.float64).sum()), "
                             "'mask_dtype': str(tensors['mask/fc.weight'].dtype)}))\n";
  testing::write_bytes(dir / "snippet.py", script);
  int status = 0;
  const std::string out =
      testing::run_command("/usr/bin/python3 '" + (dir / "snippet.py").string() + "'", &status);
  ASSERT_EQ(status, 0) << out;
  const auto result = nlohmann::json::parse(out);
  EXPECT_EQ(result["iteration"], 47000);
  EXPECT_EQ(result["mask_dtype"], "uint8");
  const double kept =
      (ckpt.masks.at("conv1.weight").sum() + ckpt.masks.at("fc.weight").sum()).item<double>();
  EXPECT_DOUBLE_EQ(result["density"].get<double>(), kept / (108 + 40));
  EXPECT_NEAR(result["conv1"].get<double>(), ckpt.state.at("conv1.weight").sum().item<double>(),
              1e-4);
}

}  // namespace
}  // namespace lth::io
