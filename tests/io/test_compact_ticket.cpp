// The compact ticket file (io/compact_ticket.h, `lth export`): round trips, bit layout, BN
// folding on real forward passes, the size bound on a real ResNet-50 ticket, and refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "compact_test_util.h"
#include "io/checkpoint.h"
#include "io/compact_ticket.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace lth::io {
namespace {

namespace fs = std::filesystem;
using testing::make_ticket;
using testing::ScratchDir;
using testing::ticket_model;

// Writes `ckpt` compactly to DIR/name and reads it back through the generic checkpoint loader
// (which must recognise the file by its metadata).
Checkpoint round_trip(const ScratchDir& dir, const std::string& name, const Checkpoint& ckpt,
                      const ExportOptions& options) {
  export_compact_ticket(dir / name, "ticket", ckpt, options);
  return load_checkpoint(dir / name);
}

// Equal as float32 bit patterns (so 0 and -0, or two NaNs, are told apart or matched exactly).
bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == torch::kFloat32 && b.scalar_type() == torch::kFloat32 &&
         a.sizes() == b.sizes() &&
         torch::equal(a.contiguous().view(torch::kInt32), b.contiguous().view(torch::kInt32));
}

TEST(CompactTicket, Float32RoundTripEqualsTheMaskedTicketBitForBit) {
  ScratchDir dir;
  const auto ticket = make_ticket(ticket_model("resnet20", 32, 10), 0.3);
  const auto back = round_trip(dir, "t.safetensors", ticket, {});
  EXPECT_EQ(back.iteration, ticket.iteration);
  EXPECT_EQ(back.config, ticket.config);
  ASSERT_TRUE(back.best_acc.has_value());
  EXPECT_EQ(*back.best_acc, *ticket.best_acc);
  EXPECT_TRUE(back.momentum.empty());
  ASSERT_EQ(back.state.size(), ticket.state.size());
  ASSERT_EQ(back.masks.size(), ticket.masks.size());
  for (const auto& [name, tensor] : ticket.state) {
    ASSERT_TRUE(back.state.count(name)) << name;
    const auto& got = back.state.at(name);
    EXPECT_EQ(got.scalar_type(), tensor.scalar_type()) << name;
    const auto mask = ticket.masks.find(name);
    if (mask == ticket.masks.end()) {
      EXPECT_TRUE(torch::equal(got, tensor)) << name;
      continue;
    }
    // Kept entries bit for bit; pruned entries read back as +0 (the ticket holds ±0 there,
    // as w * 0 leaves them).
    EXPECT_TRUE(same_bits(got, tensor * mask->second + 0.0f)) << name;
    EXPECT_TRUE(torch::equal(got, tensor)) << name;
    EXPECT_TRUE(torch::equal(back.masks.at(name), mask->second)) << name;
  }
  // The masks are real: about 30 % kept, and the file's density says so.
  const auto header = read_safetensors_header(dir / "t.safetensors");
  const double density = std::stod(header.metadata.at("density"));
  EXPECT_NEAR(density, 0.3, 1e-4);
  EXPECT_EQ(header.metadata.at("dtype"), "float32");
  EXPECT_EQ(header.metadata.at("fold_bn"), "false");
  EXPECT_EQ(nlohmann::json::parse(header.metadata.at("model"))["name"], "resnet20");
}

TEST(CompactTicket, FileHoldsValuesAndBitsInsteadOfDenseMaskedTensors) {
  ScratchDir dir;
  const auto ticket = make_ticket(ticket_model("resnet20", 32, 10), 0.2);
  export_compact_ticket(dir / "t.safetensors", "ticket", ticket, {});
  const auto file = read_safetensors(dir / "t.safetensors");
  for (const auto& [name, mask] : ticket.masks) {
    EXPECT_FALSE(file.tensors.count(name)) << name;
    EXPECT_FALSE(file.tensors.count("mask/" + name)) << name;
    const auto& values = file.tensors.at(name + ".values");
    const auto& bits = file.tensors.at(name + ".mask_bits");
    EXPECT_EQ(values.dim(), 1);
    EXPECT_EQ(values.numel(), mask.sum().item<int64_t>()) << name;
    EXPECT_EQ(bits.scalar_type(), torch::kUInt8);
    EXPECT_EQ(bits.numel(), (mask.numel() + 7) / 8) << name;
    // Values in the dense tensor's row-major order.
    const auto dense = ticket.state.at(name).flatten();
    EXPECT_TRUE(torch::equal(values, dense.masked_select(mask.flatten().to(torch::kBool))));
  }
  for (const char* name : {"bn1.running_var", "layer1.0.bn1.weight", "fc.weight", "pixel_mean"})
    EXPECT_TRUE(torch::equal(file.tensors.at(name), ticket.state.at(name))) << name;
}

TEST(CompactTicket, MaskBitsAreRowMajorLeastSignificantBitFirst) {
  // A 3x5 weight (15 entries: the last byte is half used) with a hand-chosen mask.
  const std::vector<int> keep = {1, 0, 0, 1, 1, 0, 1, 0, /**/ 0, 1, 1, 1, 0, 0, 1};
  Checkpoint ckpt;
  auto mask = torch::tensor(keep, torch::kFloat32).view({3, 5});
  ckpt.state["w"] = (torch::arange(1, 16, torch::kFloat32).view({3, 5})) * mask;
  ckpt.masks["w"] = mask;
  const auto file = encode_compact_ticket("hand", ckpt, {});
  const auto bits = file.tensors.at("w.mask_bits");
  ASSERT_EQ(bits.numel(), 2);
  // byte 0: bits 0,3,4,6 -> 1 + 8 + 16 + 64; byte 1: entries 8..14 -> bits 1,2,3,6.
  EXPECT_EQ(bits[0].item<int>(), 1 + 8 + 16 + 64);
  EXPECT_EQ(bits[1].item<int>(), 2 + 4 + 8 + 64);
  EXPECT_TRUE(torch::equal(file.tensors.at("w.values"),
                           torch::tensor({1.f, 4.f, 5.f, 7.f, 10.f, 11.f, 12.f, 15.f})));
  EXPECT_EQ(nlohmann::json::parse(file.metadata.at("masked"))["w"], nlohmann::json::array({3, 5}));
}

TEST(CompactTicket, HalfPrecisionValuesAreTheTicketRounded) {
  ScratchDir dir;
  const auto ticket = make_ticket(ticket_model("resnet20", 32, 10), 0.5);
  for (const auto dtype : {torch::kBFloat16, torch::kFloat16}) {
    const std::string file = values_dtype_name(dtype) + ".safetensors";
    ExportOptions options;
    options.dtype = dtype;
    const auto back = round_trip(dir, file, ticket, options);
    EXPECT_EQ(read_safetensors(dir / file).tensors.at("conv1.weight.values").scalar_type(), dtype);
    // bf16 keeps 8 significant bits, f16 11: round-to-nearest errs by at most 2^-8 and 2^-11
    // relative, plus half of f16's smallest subnormal (2^-25) for tiny weights.
    const double bound = dtype == torch::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    for (const auto& [name, mask] : ticket.masks) {
      const auto& want = ticket.state.at(name);
      const auto& got = back.state.at(name);
      EXPECT_TRUE(torch::equal(got, want.to(dtype).to(torch::kFloat32))) << name;
      const auto err =
          ((got - want).abs() - bound * want.abs() - std::ldexp(1.0, -25)).max().item<double>();
      EXPECT_LE(err, 0.0) << name;
      EXPECT_TRUE(torch::equal(back.masks.at(name), mask)) << name;
    }
    // Only the values are converted; BN statistics and the head stay float32 and exact.
    EXPECT_TRUE(torch::equal(back.state.at("fc.weight"), ticket.state.at("fc.weight")));
    EXPECT_TRUE(torch::equal(back.state.at("bn1.running_var"), ticket.state.at("bn1.running_var")));
  }
}

// Logits of `state` in a fresh network of `model`, eval mode.
torch::Tensor logits(const models::ModelConfig& model, const pruning::TensorMap& state,
                     const torch::Tensor& images) {
  auto net = models::make_network(model, 99);
  pruning::load_state(*net, state, "test");
  net->eval();
  torch::NoGradGuard no_grad;
  return net->forward(images);
}

void expect_folded_logits_match(const models::ModelConfig& model, double keep) {
  ScratchDir dir;
  const auto ticket = make_ticket(model, keep);
  ExportOptions options;
  options.fold_bn = true;
  const auto folded = round_trip(dir, "f.safetensors", ticket, options);
  // The file really is folded: no BN statistics stored, conv biases instead, and the conv
  // weights differ from the ticket's (scaled by gamma / sqrt(var + eps)).
  const auto file = read_safetensors(dir / "f.safetensors");
  EXPECT_FALSE(file.tensors.count("bn1.running_mean"));
  EXPECT_TRUE(file.tensors.count("conv1.bias"));
  EXPECT_EQ(file.metadata.at("fold_bn"), "true");
  EXPECT_FALSE(torch::equal(folded.state.at("conv1.weight"), ticket.state.at("conv1.weight")));
  for (const auto& [name, mask] : ticket.masks)
    EXPECT_TRUE(torch::equal(folded.masks.at(name), mask)) << name;

  auto gen = at::detail::createCPUGenerator(7);
  const auto images =
      torch::randint(0, 256, {2, model.image_size, model.image_size, 3}, gen, torch::kByte);
  const auto want = logits(model, ticket.state, images);
  const auto got = logits(model, folded.state, images);
  const double scale = want.abs().max().item<double>();
  ASSERT_GT(scale, 1e-3);  // the random head makes the logits non-trivial
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-4 * scale);
  EXPECT_TRUE(torch::equal(got.argmax(1), want.argmax(1)));
}

TEST(CompactTicket, FoldedBatchNormGivesTheSameLogitsResNet20) {
  expect_folded_logits_match(ticket_model("resnet20", 32, 10), 0.4);
}

TEST(CompactTicket, FoldedBatchNormGivesTheSameLogitsResNet50) {
  // 80 px: the ImageNet stem (7x7/2 conv, max-pool), bottlenecks and projection shortcuts.
  expect_folded_logits_match(ticket_model("resnet50", 80), 0.2);
}

TEST(CompactTicket, FoldingANetworkWithoutBatchNormChangesNothing) {
  const auto ticket = make_ticket(ticket_model("conv2", 32, 10), 0.5);
  ExportOptions options;
  options.fold_bn = true;
  const auto folded =
      decode_compact_ticket("conv2", encode_compact_ticket("conv2", ticket, options));
  for (const auto& [name, tensor] : ticket.state)
    EXPECT_TRUE(torch::equal(folded.state.at(name), tensor)) << name;
}

TEST(CompactTicket, ResNet50AtTicketDensityMeetsTheSizeBound) {
  // The issue's target: a ResNet-50 ticket at density 0.1074, pruned by lth's global magnitude
  // pruning of the initialised network, stored in at most 0.15 of the dense conv weights'
  // bytes plus the unmasked tensors (the header included).
  ScratchDir dir;
  const double density = 0.1074;
  const auto ticket = make_ticket(ticket_model("resnet50", 224), density);
  const auto s = export_compact_ticket(dir / "r50.safetensors", "r50", ticket, {});
  const auto file_bytes = static_cast<int64_t>(fs::file_size(dir / "r50.safetensors"));
  EXPECT_EQ(s.masked_tensors, 53);  // every conv of ResNet-50, stem and shortcuts included
  EXPECT_EQ(s.kept, std::llround(density * static_cast<double>(s.total)));
  const double d = static_cast<double>(s.kept) / static_cast<double>(s.total);
  // values + bits: exactly d·4n + ceil(n/8) per tensor.
  EXPECT_LE(static_cast<double>(s.compact_masked_bytes),
            (d + 1.0 / 32) * static_cast<double>(s.dense_masked_bytes) + s.masked_tensors);
  const double ratio = static_cast<double>(file_bytes - s.unmasked_bytes) /
                       static_cast<double>(s.dense_masked_bytes);
  EXPECT_LE(ratio, 0.15);
  std::printf(
      "ResNet-50 at density %.4f: file %lld bytes; conv weights dense %lld bytes; "
      "unmasked %lld bytes; (file - unmasked) / dense conv = %.4f; values + bits alone "
      "%.4f; whole file / dense checkpoint weights %.4f\n",
      d, static_cast<long long>(file_bytes), static_cast<long long>(s.dense_masked_bytes),
      static_cast<long long>(s.unmasked_bytes), ratio,
      static_cast<double>(s.compact_masked_bytes) / s.dense_masked_bytes,
      static_cast<double>(file_bytes) / (s.dense_masked_bytes + s.unmasked_bytes));
  RecordProperty("size_ratio", std::to_string(ratio));
}

// ---- refusals ------------------------------------------------------------------------

// Runs `load`, expects a one-line UserError naming `path` and containing `problem`.
template <typename F>
void expect_one_line_error(F&& load, const fs::path& path, const std::string& problem) {
  try {
    load();
    ADD_FAILURE() << "no error for " << path << " (expected '" << problem << "')";
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

class CompactTicketDamage : public ::testing::Test {
 protected:
  void SetUp() override {
    Checkpoint ckpt;
    auto mask = (torch::arange(20) % 3 != 0).to(torch::kFloat32).view({4, 5});
    ckpt.state["w"] = torch::arange(1, 21, torch::kFloat32).view({4, 5}) * mask;
    ckpt.state["b"] = torch::ones({4});
    ckpt.masks["w"] = mask;
    good_ = encode_compact_ticket("hand", ckpt, {});
  }

  // Writes a damaged copy of the good file and expects loading it to fail with `problem`.
  void expect_refused(const std::function<void(SafetensorsContent&)>& damage,
                      const std::string& problem) {
    auto copy = good_;
    for (auto& [name, tensor] : copy.tensors) tensor = tensor.clone();
    damage(copy);
    const auto path = dir_ / "bad.safetensors";
    fs::remove(path);
    write_safetensors(path, copy.tensors, copy.metadata);
    expect_one_line_error([&] { load_checkpoint(path); }, path, problem);
  }

  ScratchDir dir_;
  SafetensorsContent good_;
};

TEST_F(CompactTicketDamage, GoodFileLoads) {
  write_safetensors(dir_ / "good.safetensors", good_.tensors, good_.metadata);
  const auto back = load_checkpoint(dir_ / "good.safetensors");
  EXPECT_EQ(back.masks.at("w").sum().item<int>(), 13);
}

TEST_F(CompactTicketDamage, TruncatedFile) {
  const auto path = dir_ / "t.safetensors";
  write_safetensors(path, good_.tensors, good_.metadata);
  const auto bytes = testing::read_bytes(path);
  testing::write_bytes(path, bytes.substr(0, bytes.size() - 5));
  expect_one_line_error([&] { load_checkpoint(path); }, path, "truncated");
}

TEST_F(CompactTicketDamage, ValuesCountIsNotThePopcount) {
  expect_refused([](auto& c) { c.tensors["w.values"] = c.tensors["w.values"].narrow(0, 0, 12); },
                 "'w.values' has 12 entries but 'w.mask_bits' keeps 13");
}

TEST_F(CompactTicketDamage, ShapeDoesNotFitTheBits) {
  expect_refused([](auto& c) { c.metadata["masked"] = R"({"w": [5, 5]})"; },
                 "expected U8 [4] for shape [5, 5]");
}

TEST_F(CompactTicketDamage, SpareBitsSet) {
  expect_refused([](auto& c) { c.tensors["w.mask_bits"][2] = 0xff; }, "sets bits past the 20");
}

TEST_F(CompactTicketDamage, MissingMetadata) {
  expect_refused([](auto& c) { c.metadata.erase("masked"); }, "metadata has no 'masked'");
  expect_refused([](auto& c) { c.metadata.erase("dtype"); }, "metadata has no 'dtype'");
  expect_refused([](auto& c) { c.metadata["masked"] = "{"; }, "'masked' is not valid JSON");
}

TEST_F(CompactTicketDamage, MissingOrStrayTensors) {
  expect_refused([](auto& c) { c.tensors.erase("w.mask_bits"); }, "has no tensor 'w.mask_bits'");
  expect_refused([](auto& c) { c.tensors["v.values"] = torch::ones({2}); },
                 "'v.values' belongs to no entry");
}

TEST_F(CompactTicketDamage, ValuesDtypeDiffersFromTheMetadata) {
  expect_refused([](auto& c) { c.metadata["dtype"] = "bfloat16"; },
                 "expected a 1-D bfloat16 tensor");
}

TEST(CompactTicket, ExportRefusesNonTickets) {
  ScratchDir dir;
  Checkpoint no_masks;
  no_masks.state["w"] = torch::ones({3});
  expect_one_line_error([&] { encode_compact_ticket(dir.path().string(), no_masks, {}); },
                        dir.path(), "has no masks");
  Checkpoint unmasked = no_masks;
  unmasked.masks["w"] = torch::tensor({1.f, 0.f, 1.f});  // w[1] = 1 where the mask is 0
  expect_one_line_error([&] { encode_compact_ticket(dir.path().string(), unmasked, {}); },
                        dir.path(), "1 nonzero weights where its mask is 0");
}

TEST(CompactTicket, ExportNeverOverwrites) {
  ScratchDir dir;
  const auto path = dir / "existing.safetensors";
  testing::write_bytes(path, "keep me");
  Checkpoint ckpt;
  ckpt.state["w"] = torch::tensor({1.f, 0.f});
  ckpt.masks["w"] = torch::tensor({1.f, 0.f});
  expect_one_line_error([&] { export_compact_ticket(path, "src", ckpt, {}); }, path,
                        "already exists");
  EXPECT_EQ(testing::read_bytes(path), "keep me");
}

// ---- the documented NumPy reader ---------------------------------------------------------

// docs/FORMATS.md's snippet, run by /usr/bin/python3 against files lth wrote, compared with
// the dense ticket; the bit layout is checked by the script's own per-bit loop.
void expect_snippet_reads(const std::string& dtype, const ExportOptions& options) {
  ScratchDir dir;
  auto ticket = make_ticket(ticket_model("resnet20", 32, 10), 0.25);
  save_checkpoint(dir / "dense.safetensors", ticket);
  export_compact_ticket(dir / "compact.safetensors", "ticket", ticket, options);
  const std::string src = LTH_SOURCE_DIR;
  int status = 0;
  const auto out =
      testing::run_command("/usr/bin/python3 " + src + "/tests/io/check_compact_snippet.py " + src +
                               "/docs/FORMATS.md " + (dir / "compact.safetensors").string() + " " +
                               (dir / "dense.safetensors").string() + " " + dtype + " 2>&1",
                           &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("ok: 21 masked tensors"), std::string::npos) << out;
}

TEST(CompactTicket, DocumentedNumpySnippetReadsFloat32Exactly) {
  expect_snippet_reads("float32", {});
}

TEST(CompactTicket, DocumentedNumpySnippetReadsBfloat16) {
  ExportOptions options;
  options.dtype = torch::kBFloat16;
  expect_snippet_reads("bfloat16", options);
}

}  // namespace
}  // namespace lth::io
