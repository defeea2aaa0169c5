// The reference's Flax checkpoints, against an independent writer and forward pass
// (tests/io/flax_reference.py: Python, NumPy, Debian's python3-msgpack; no Flax, no JAX).
#include "io/flax_checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/checkpoint.h"
#include "io/checkpoint_sniff.h"
#include "io/msgpack.h"
#include "models/network.h"
#include "pruning/mask.h"
#include "pruning/strategy.h"
#include "test_util.h"

namespace lth::io {
namespace {

const std::string kScript = std::string(LTH_SOURCE_DIR) + "/tests/io/flax_reference.py";

std::string reference(const std::string& args, int* status) {
  return testing::run_command("/usr/bin/python3 '" + kScript + "' " + args + " 2>&1", status);
}

void reference_ok(const std::string& args) {
  int status = 0;
  const std::string out = reference(args, &status);
  ASSERT_EQ(status, 0) << args << "\n" << out;
}

// The data of a .npy file (version 1.0 header), as a tensor of `shape` and `dtype`.
torch::Tensor read_npy_data(const std::filesystem::path& path, std::vector<int64_t> shape,
                            torch::ScalarType dtype) {
  const std::string bytes = testing::read_bytes(path);
  const size_t header = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  auto t = torch::empty(shape, dtype);
  const size_t size = t.numel() * t.element_size();
  EXPECT_EQ(bytes.size(), 10 + header + size) << path;
  std::memcpy(t.data_ptr(), bytes.data() + 10 + header, std::min(size, bytes.size() - 10 - header));
  return t;
}

// As lth eval builds it: the converted config's model, the head's classes, the pixel statistics.
models::NetworkPtr network_of(const Checkpoint& ckpt, int64_t image_size, models::Padding padding) {
  models::ModelConfig m;
  m.name = ckpt.config["model"]["name"];
  m.num_classes = ckpt.state.at("fc.weight").size(0);
  m.in_channels = 3;
  m.image_size = image_size;
  m.padding = padding;
  const auto mean = ckpt.state.at("pixel_mean").to(torch::kFloat64);
  const auto std_ = ckpt.state.at("pixel_std").to(torch::kFloat64);
  m.pixel_mean.assign(mean.data_ptr<double>(), mean.data_ptr<double>() + 3);
  m.pixel_std.assign(std_.data_ptr<double>(), std_.data_ptr<double>() + 3);
  auto net = models::make_network(m, 0);
  pruning::load_state(*net, ckpt.state, "test");
  net->eval();
  return net;
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got.to(torch::kFloat64) - want.to(torch::kFloat64)).norm() / want.to(torch::kFloat64).norm())
      .item<double>();
}

struct Case {
  std::string model;
  int64_t stem;
  int64_t size;
  int64_t classes;
};

class ReferenceLogits : public ::testing::TestWithParam<Case> {};

// The reference's forward pass (SAME padding, its pixel statistics) on its own checkpoint
// gives the logits lth computes on the file: ResNet-18 with the 7x7/2 stem and max-pool
// (72x72 input: odd sizes deeper down), ResNet-50 with the 3x3 stem (16x16: the layout is
// what matters, and the NumPy pass is slow), CIFAR ResNet-20.
TEST_P(ReferenceLogits, MatchTheIndependentForwardPass) {
  const Case c = GetParam();
  testing::ScratchDir dir;
  const auto file = dir / "ref.ckpt";
  reference_ok("write '" + file.string() + "' --model " + c.model + " --stem " + std::to_string(c.stem) +
               " --classes " + std::to_string(c.classes) + " --images 2 --size " + std::to_string(c.size) +
               " --out '" + dir.path().string() + "'");
  ASSERT_EQ(detect_checkpoint_format(file), CheckpointFormat::Reference);
  const auto ckpt = load_checkpoint(file);  // recognised by content, whatever the name
  EXPECT_EQ(ckpt.config["model"]["name"], c.model);
  EXPECT_EQ(ckpt.config["model"]["padding"], "same");
  EXPECT_EQ(ckpt.config["data"]["image_size"], c.stem == 7 ? 224 : 32);
  const auto images = read_npy_data(dir / "images.npy", {2, c.size, c.size, 3}, torch::kUInt8);
  const auto want = read_npy_data(dir / "logits.npy", {2, c.classes}, torch::kFloat32);
  torch::NoGradGuard no_grad;
  const auto got = network_of(ckpt, c.size, models::Padding::Same)->forward(images);
  EXPECT_LE(relative_error(got, want), 1e-4);
  EXPECT_TRUE(torch::equal(got.argmax(1), want.argmax(1)));
  if (c.stem == 7) {
    // The padding rule matters: symmetric padding on the same weights is measurably off.
    const auto symmetric = network_of(ckpt, c.size, models::Padding::Symmetric)->forward(images);
    EXPECT_GT(relative_error(symmetric, want), 1e-3);
  }
}

INSTANTIATE_TEST_SUITE_P(Flax, ReferenceLogits,
                         ::testing::Values(Case{"resnet18", 7, 72, 10}, Case{"resnet50", 3, 16, 10},
                                           Case{"resnet20", 3, 32, 10}),
                         [](const auto& info) { return info.param.model; });

TEST(FlaxCheckpoint, ConvertsNamesLayoutsAndMasks) {
  testing::ScratchDir dir;
  const auto file = dir / "r20.ckpt";
  reference_ok("write '" + file.string() + "' --model resnet20 --classes 7 --density 0.5");
  std::vector<std::string> notes;
  const auto ckpt = read_flax_checkpoint(file, &notes);
  // ResNet-20: stem + 9 blocks x 2 convs + 2 projection shortcuts.
  EXPECT_EQ(ckpt.masks.size(), 21u);
  EXPECT_EQ(ckpt.state.at("conv1.weight").sizes(), (std::vector<int64_t>{16, 3, 3, 3}));
  EXPECT_EQ(ckpt.state.at("layer2.0.downsample.0.weight").sizes(), (std::vector<int64_t>{32, 16, 1, 1}));
  EXPECT_EQ(ckpt.state.at("fc.weight").sizes(), (std::vector<int64_t>{7, 64}));
  EXPECT_EQ(ckpt.state.at("layer3.2.bn2.num_batches_tracked").item<int64_t>(), 0);
  EXPECT_EQ(ckpt.state.count("layer1.0.downsample.0.weight"), 0u);
  for (const auto& [name, mask] : ckpt.masks) {
    // Pruned weights are exactly zero where the mask is, and masks are 0/1 float32.
    EXPECT_EQ(mask.scalar_type(), torch::kFloat32);
    EXPECT_EQ((ckpt.state.at(name) * (1 - mask)).abs().sum().item<float>(), 0.0f) << name;
  }
  const auto density = ckpt.masks.at("layer3.1.conv2.weight").mean().item<double>();
  EXPECT_NEAR(density, 0.5, 0.05);
  ASSERT_EQ(notes.size(), 4u);
  EXPECT_NE(notes[0].find("resnet20"), std::string::npos);

  // Without params_mask (a never-pruned file) every conv kernel gets an all-ones mask.
  const auto dense = dir / "dense.ckpt";
  reference_ok("write '" + dense.string() + "' --model resnet20 --classes 7 --no-mask");
  const auto d = read_flax_checkpoint(dense);
  EXPECT_EQ(d.masks.size(), 21u);
  EXPECT_EQ(d.masks.at("layer2.0.conv1.weight").min().item<float>(), 1.0f);
  EXPECT_FALSE(d.config["reference"]["params_mask"].get<bool>());
}

// lth's pruning of a converted checkpoint gives the masks the reference's formula gives
// (RECIPE.md "Pruning", implemented again in NumPy): magnitude_reference with the formula's
// ties kept, magnitude_global where the file has no ties at the threshold.
TEST(FlaxCheckpoint, PruningMatchesTheReferenceFormula) {
  testing::ScratchDir dir;
  for (const bool ties : {true, false}) {
    const auto src = dir / (ties ? "ties.ckpt" : "plain.ckpt");
    const auto out = dir / (ties ? "ties_pruned.ckpt" : "plain_pruned.ckpt");
    reference_ok("write '" + src.string() + "' --model resnet20 --classes 10 --seed 3" +
                 (ties ? " --ties" : ""));
    auto ckpt = load_checkpoint(src);
    const auto before = pruning::count_kept(ckpt.masks);
    ckpt.masks = pruning::prune(ties ? "magnitude_reference" : "magnitude_global",
                                {ckpt.state, ckpt.masks, 0.8, 0});
    const auto kept = pruning::count_kept(ckpt.masks);
    const auto exact = std::llround(0.8 * static_cast<double>(before));
    if (ties)
      EXPECT_GT(kept, exact) << "the file should have ties at the threshold";
    else
      EXPECT_EQ(kept, exact);
    write_flax_checkpoint(out, ckpt);
    int status = 0;
    const auto report = reference("check-prune '" + src.string() + "' '" + out.string() + "' --ratio 0.8" +
                                      (ties ? "" : " --exact"),
                                  &status);
    EXPECT_EQ(status, 0) << report;
  }
}

// The Python snippet of docs/FORMATS.md ("The reference's checkpoints") reads a file our
// writer wrote, as written there.
TEST(FlaxCheckpoint, DocumentedSnippetReadsOurFile) {
  testing::ScratchDir dir;
  reference_ok("write '" + (dir / "r.ckpt").string() + "' --model resnet20 --classes 3");
  write_flax_checkpoint(dir / "ours.ckpt", read_flax_checkpoint(dir / "r.ckpt"));
  const std::string doc = testing::read_bytes(std::string(LTH_SOURCE_DIR) + "/docs/FORMATS.md");
  const size_t at = doc.find("```python\nimport msgpack");
  ASSERT_NE(at, std::string::npos);
  std::string snippet = doc.substr(at + 10, doc.find("```\n", at + 10) - at - 10);
  const std::string example = "best_acc.ckpt";
  ASSERT_NE(snippet.find(example), std::string::npos);
  snippet.replace(snippet.find(example), example.size(), (dir / "ours.ckpt").string());
  testing::write_bytes(dir / "snippet.py", snippet);
  int status = 0;
  const auto out = testing::run_command("/usr/bin/python3 '" + (dir / "snippet.py").string() + "'", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "(3, 3, 3, 16)\n");
}

// ---- hostile files ------------------------------------------------------------------------

std::string error_of(const std::filesystem::path& path) {
  try {
    read_flax_checkpoint(path);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// A small valid file to damage: ResNet-20, built by the writer under test from a converted
// reference file.
class HostileFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    reference_ok("write '" + (dir_ / "ok.ckpt").string() + "' --model resnet20 --classes 3");
    bytes_ = testing::read_bytes(dir_ / "ok.ckpt");
  }
  std::string error_for(const std::string& bytes) {
    testing::write_bytes(dir_ / "bad.ckpt", bytes);
    return error_of(dir_ / "bad.ckpt");
  }
  // Rewrites the tree in Python (the independent implementation) and returns the error.
  std::string error_after(const std::string& python_edit) {
    testing::write_bytes(dir_ / "edit.py", "import sys; sys.path.insert(0, '" + std::string(LTH_SOURCE_DIR) +
                                               "/tests/io')\nimport flax_reference as fr, numpy as np, "
                                               "msgpack\nt = fr.restore(sys.argv[1])\nt = {k: v for k, v in t.items()}\n" +
                                               python_edit + "\nopen(sys.argv[2], 'wb').write(fr.to_bytes(t))\n");
    int status = 0;
    const auto out = testing::run_command("/usr/bin/python3 '" + (dir_ / "edit.py").string() + "' '" +
                                              (dir_ / "ok.ckpt").string() + "' '" + (dir_ / "bad.ckpt").string() +
                                              "' 2>&1",
                                          &status);
    EXPECT_EQ(status, 0) << out;
    return error_of(dir_ / "bad.ckpt");
  }
  testing::ScratchDir dir_;
  std::string bytes_;
};

TEST_F(HostileFiles, TruncatedAnywhere) {
  ASSERT_EQ(error_of(dir_ / "ok.ckpt"), "");
  for (size_t n : {size_t{1}, size_t{9}, size_t{200}, bytes_.size() / 2, bytes_.size() - 1}) {
    const auto e = error_for(bytes_.substr(0, n));
    EXPECT_EQ(e.rfind((dir_ / "bad.ckpt").string() + ": ", 0), 0u) << n << ": " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos);
  }
  EXPECT_NE(error_for(bytes_.substr(0, bytes_.size() / 2)).find("truncated MessagePack"), std::string::npos);
  EXPECT_NE(error_for(bytes_ + "x").find("1 bytes after the end"), std::string::npos);
}

TEST_F(HostileFiles, TreeProblemsNameTheKey) {
  const auto has = [](const std::string& e, const std::string& what) {
    return e.find(what) != std::string::npos ? ::testing::AssertionSuccess()
                                             : ::testing::AssertionFailure() << e;
  };
  EXPECT_TRUE(has(error_after("del t['batch_stats']"), "batch_stats: missing"));
  EXPECT_TRUE(has(error_after("t['opt_state'] = {}"), "opt_state: unexpected key"));
  EXPECT_TRUE(has(error_after("del t['params']['ext']['BatchNorm_4']"), "params/ext/BatchNorm_4: missing"));
  EXPECT_TRUE(has(error_after("t['params']['ext']['Dense_0'] = {}"), "params/ext/Dense_0: unexpected key"));
  EXPECT_TRUE(has(error_after("t['params']['ext']['Conv_3']['kernel'] = np.zeros((3, 3, 16, 17), np.float32)"),
                  "params/ext/Conv_3/kernel: has shape [3, 3, 16, 17], resnet20 expects [3, 3, 16, 16]"));
  EXPECT_TRUE(has(error_after("del t['params']['ext']['Conv_20']; del t['params']['ext']['BatchNorm_20']"),
                  "no ResNet lth builds has this layout"));
  EXPECT_TRUE(has(error_after("t['params']['cls'] = np.zeros((64, 3), np.float32) * np.nan"),
                  "params/cls: holds a non-finite value"));
  EXPECT_TRUE(has(error_after("t['batch_stats']['BatchNorm_2']['var'] = -np.ones(16, np.float32)"),
                  "batch_stats/BatchNorm_2/var: holds a negative variance"));
  EXPECT_TRUE(has(error_after("t['params_mask']['ext']['Conv_1']['kernel'] = np.full((3, 3, 16, 16), 2, np.float32)"),
                  "params_mask/ext/Conv_1/kernel: mask holds values other than 0 and 1"));
  EXPECT_TRUE(has(error_after("t['image_stats']['s'] = np.zeros(3, np.float32)"), "image_stats/s: holds a value <= 0"));
  EXPECT_TRUE(has(error_after("t['params']['cls'] = t['params']['cls'].astype(np.complex64)"),
                  "params/cls: unsupported dtype 'complex64'"));
  EXPECT_TRUE(has(error_after("t['params']['ext']['Conv_0']['kernel'] = msgpack.ExtType(3, b'x')"),
                  "params/ext/Conv_0/kernel: a NumPy scalar"));
  EXPECT_TRUE(has(error_after("t['params']['cls'] = msgpack.ExtType(1, msgpack.packb(((64, 3), 'float32', b'\\0' * 10)))"),
                  "params/cls: array of shape [64, 3] and dtype float32 needs 768 bytes, its data has 10"));
  EXPECT_TRUE(has(error_after("t['params']['cls'] = msgpack.ExtType(1, msgpack.packb(((2**40, 2**40, 0), 'float32', b'')))"),
                  "params/cls: array shape"));
  EXPECT_TRUE(has(error_after("t['params']['cls'] = {'__msgpack_chunked_array__': True, 'shape': [64, 3]}"),
                  "chunked above 2^30 bytes"));
  EXPECT_TRUE(has(error_after("t['params']['cls'] = 1.5"), "params/cls: is a MessagePack float, expected an array"));
  EXPECT_TRUE(has(error_after("t['params']['ext']['Conv_0'] = {'kernel': {'a': {'b': {'c': {}}}}}"),
                  "nested deeper than 6 levels"));
}

// Checkpoints written before model.padding existed were computed with symmetric padding.
TEST(FlaxCheckpoint, PaddingOfACheckpoint) {
  Checkpoint old;
  EXPECT_EQ(checkpoint_padding(old, "old"), "symmetric");
  old.config = {{"model", {{"name", "resnet50"}, {"width", 1}}}};
  EXPECT_EQ(checkpoint_padding(old, "old"), "symmetric");
  old.config["model"]["padding"] = "same";
  EXPECT_EQ(checkpoint_padding(old, "old"), "same");
  old.config["model"]["padding"] = 3;
  EXPECT_THROW(checkpoint_padding(old, "old"), UserError);
}

TEST(FlaxCheckpoint, WriterRefusesWhatHasNoPlace) {
  testing::ScratchDir dir;
  reference_ok("write '" + (dir / "r20.ckpt").string() + "' --model resnet20 --classes 3");
  auto ckpt = read_flax_checkpoint(dir / "r20.ckpt");
  auto extra = ckpt;
  extra.state["fc.bias"] = torch::zeros({3});
  EXPECT_THROW(write_flax_checkpoint(dir / "x.ckpt", extra), UserError);
  auto wide = ckpt;
  wide.config["model"]["width"] = 2;
  EXPECT_THROW(write_flax_checkpoint(dir / "x.ckpt", wide), UserError);
  auto lenet = ckpt;
  lenet.config["model"]["name"] = "lenet300_100";
  EXPECT_THROW(write_flax_checkpoint(dir / "x.ckpt", lenet), UserError);
  auto shape = ckpt;
  shape.state["layer1.0.conv1.weight"] = torch::zeros({16, 16, 1, 1});
  EXPECT_THROW(write_flax_checkpoint(dir / "x.ckpt", shape), UserError);
  EXPECT_FALSE(std::filesystem::exists(dir / "x.ckpt"));
}

}  // namespace
}  // namespace lth::io
