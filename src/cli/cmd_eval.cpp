// `lth eval --ckpt FILE --data_root DIR`: accuracy, NLL and calibration error of a checkpoint
// on every test set found under the data root (see eval/suite.h), with ImageNet-R/-A logits
// restricted to the classes they cover; sets not found are listed as skipped. Prints a
// table; --json writes {"test": {set: {acc, nll, ece, count, skipped}}, "absent": [...]}
// (accuracies are fractions in JSON, percentages in the table, as in summary.json).
// Declared in cli/commands.h: void add_eval_command(CLI::App& app);
#include <torch/types.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"
#include "common/threads.h"
#include "eval/evaluator.h"
#include "eval/suite.h"
#include "imp/experiment.h"
#include "infer/engine.h"
#include "io/checkpoint.h"
#include "io/file_util.h"
#include "models/network.h"
#include "pruning/mask.h"

namespace lth::cli {
namespace {

struct EvalFlags {
  std::string ckpt;
  std::string data_root;
  std::string json;
  std::string sets;  // comma-separated subset of set names
  std::string strict_data = "false";
  int64_t image_size = 0;
  int64_t batch_size = 256;
  int64_t num_workers = 2;
  int64_t threads = 0;
  std::string device = "auto";
  std::string val_labels;
  std::string v2_variant = "matched-frequency";
  std::string engine = "auto";  // infer/engine.h: sparse, dense or auto
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The network a checkpoint was trained as: name, width and padding rule from its config,
// classes from the head's shape, pixel statistics from its stored buffers.
models::ModelConfig model_config_of(const io::Checkpoint& ckpt, const std::string& path,
                                    int64_t image_size) {
  models::ModelConfig m;
  m.name = io::checkpoint_setting<std::string>(ckpt, path, "model", "name", "");
  require(!m.name.empty(), path + ": checkpoint config names no model (model.name)");
  m.width = io::checkpoint_setting<int64_t>(ckpt, path, "model", "width", 1);
  m.padding = models::parse_padding(io::checkpoint_padding(ckpt, path));
  const auto fc = ckpt.state.find("fc.weight");
  require(fc != ckpt.state.end() && fc->second.dim() == 2,
          path + ": no 2-D fc.weight (classifier head)");
  m.num_classes = fc->second.size(0);
  m.in_channels = 3;
  m.image_size = image_size;
  for (const char* name : {"pixel_mean", "pixel_std"}) {
    const auto it = ckpt.state.find(name);
    require(it != ckpt.state.end(), path + ": missing buffer " + std::string(name));
    const auto v = it->second.to(torch::kFloat64).contiguous();
    std::vector<double> values(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
    m.in_channels = static_cast<int64_t>(values.size());
    (std::string(name) == "pixel_mean" ? m.pixel_mean : m.pixel_std) = values;
  }
  return m;
}

void print_table(const nlohmann::json& results, const eval::TestSuite& suite) {
  std::printf("%-18s %8s %8s %8s %8s %8s %8s\n", "test set", "images", "skipped", "classes",
              "acc %", "NLL", "ECE %");
  for (const auto& set : suite.present) {
    const auto& r = results.at(set.name);
    const std::string classes = set.class_subset.empty() ? std::to_string(suite.num_classes)
                                                         : std::to_string(set.class_subset.size());
    if (!r["acc"].is_number()) {  // nothing was read: no accuracy, never 0 %
      std::printf("%-18s %8d %8lld %8s   no readable images: no result\n", set.name.c_str(), 0,
                  static_cast<long long>(r["skipped"].get<int64_t>()), classes.c_str());
      continue;
    }
    std::printf("%-18s %8lld %8lld %8s %8.2f %8.4f %8.2f\n", set.name.c_str(),
                static_cast<long long>(r["count"].get<int64_t>()),
                static_cast<long long>(r["skipped"].get<int64_t>()), classes.c_str(),
                100.0 * r["acc"].get<double>(), r["nll"].get<double>(),
                100.0 * r["ece"].get<double>());
  }
  for (const auto& a : suite.absent) {
    std::printf("%-18s skipped: not found at %s\n", a.name.c_str(), a.path.string().c_str());
  }
}

void run_eval(EvalFlags& f) {
  f.data_root = user_path_text(f.data_root);
  configure_threads(static_cast<int>(f.threads));
  infer::EngineOptions engine;
  engine.mode = infer::parse_engine_mode(f.engine);  // a bad flag fails before any loading
  const auto ckpt = io::load_checkpoint(f.ckpt);
  int64_t size = f.image_size;
  if (size == 0) size = io::checkpoint_setting<int64_t>(ckpt, f.ckpt, "data", "image_size", 0);
  if (size == 0) size = 224;

  eval::SuiteOptions so;
  so.image_size = size;
  so.strict = parse_bool("--strict_data", f.strict_data);
  so.only = split_commas(f.sets);
  so.val_labels = f.val_labels;
  so.v2_variant = f.v2_variant;
  const auto suite = eval::discover_test_suite(f.data_root, so);
  if (suite.present.empty()) {
    std::string looked;
    for (const auto& a : suite.absent) looked += (looked.empty() ? "" : ", ") + a.path.string();
    throw UserError("no test set found under " + f.data_root + " (looked for " + looked +
                    " and <Name>_x<S>/test_images.npy)");
  }

  const auto mc = model_config_of(ckpt, f.ckpt, size);
  require(mc.num_classes >= suite.num_classes,
          f.ckpt + ": the network has " + std::to_string(mc.num_classes) + " classes but " +
              f.data_root + " has " + std::to_string(suite.num_classes));
  auto net = models::make_network(mc, 0);
  pruning::load_state(*net, ckpt.state, f.ckpt);  // parameters and BN statistics
  const auto device = imp::resolve_device(f.device);
  net->to(device);
  // The sparse engine (CPU only): "auto" runs it only where some layer is below its
  // crossover density, and LibTorch's own forward otherwise (and on other devices).
  require(engine.mode != infer::EngineMode::Sparse || device.is_cpu(),
          "--engine sparse: the sparse engine runs on the CPU only (use --device cpu)");
  if (!device.is_cpu()) engine.mode = infer::EngineMode::Dense;
  net = infer::prepare_for_inference(net, engine);
  if (const auto* compiled = dynamic_cast<const infer::CompiledNetwork*>(net.get())) {
    std::cerr << "engine " << infer::engine_mode_name(engine.mode) << ": "
              << compiled->sparse_layer_count() << " of " << compiled->layers().size()
              << " layers sparse\n"
              << infer::describe_plan(*compiled);
  } else {
    std::cerr << "engine " << infer::engine_mode_name(engine.mode) << ": dense (LibTorch)\n";
  }

  nlohmann::json test = nlohmann::json::object();
  for (const auto& set : suite.present) {
    eval::EvalOptions eo;
    eo.batch_size = f.batch_size;
    eo.num_workers = static_cast<int>(f.num_workers);
    eo.device = device;
    eo.class_subset = set.class_subset;
    // The precision the checkpoint was trained in, as the reference evaluates.
    eo.precision = models::resolve_precision(
        io::checkpoint_setting<std::string>(ckpt, f.ckpt, "train", "precision", "fp32"),
        io::checkpoint_setting<bool>(ckpt, f.ckpt, "train", "mixed_precision", false), device);
    std::cerr << "evaluating " << set.dataset->describe() << "\n";
    const auto r = eval::evaluate(*net, set.dataset, eo);
    const auto value = [&r](double v) {
      return r.count > 0 ? nlohmann::json(v) : nlohmann::json(nullptr);
    };
    test[set.name] = {
        {"acc", value(r.accuracy)},
        {"nll", value(r.nll)},
        {"ece", value(r.ece)},
        {"count", r.count},
        {"skipped", r.skipped},
        {"classes", set.class_subset.empty() ? suite.num_classes
                                             : static_cast<int64_t>(set.class_subset.size())}};
  }
  print_table(test, suite);
  if (!f.json.empty()) {
    nlohmann::json out = {{"checkpoint", f.ckpt},
                          {"iteration", ckpt.iteration},
                          {"data_root", f.data_root},
                          {"image_size", size},
                          {"test", test},
                          {"absent", nlohmann::json::array()}};
    for (const auto& a : suite.absent)
      out["absent"].push_back({{"name", a.name}, {"path", a.path.string()}});
    // Atomic and checked: a full disk is a UserError naming the file, not a torn JSON.
    io::write_text_atomically(f.json, out.dump(2) + "\n");
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval",
      "Test a checkpoint on every ImageNet test set under --data_root (IN, V2, R, A, Sketch)");
  auto f = std::make_shared<EvalFlags>();
  cmd->add_option(
         "--ckpt", f->ckpt,
         "checkpoint (.safetensors, or a reference .ckpt), e.g. RUN/003/best_acc.safetensors")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--data_root", f->data_root,
                  "folder holding imagenet/val, imagenet-v2, imagenet-r, ...")
      ->required();
  cmd->add_option("--json", f->json, "also write the results here");
  cmd->add_option("--sets", f->sets, "only these sets, comma-separated (e.g. imagenet,imagenet-r)");
  cmd->add_option("--image_size", f->image_size, "input size (0 = the checkpoint's, else 224)")
      ->capture_default_str();
  cmd->add_option("--batch_size", f->batch_size, "evaluation batch size")->capture_default_str();
  cmd->add_option("--num_workers", f->num_workers, "data loader threads")->capture_default_str();
  cmd->add_option("--threads", f->threads, kThreadsHelp)->capture_default_str();
  cmd->add_option("--device", f->device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--engine", f->engine,
                  "sparse (skip pruned weights, CPU), dense (LibTorch) or auto (sparse layers "
                  "below their measured crossover, where the whole plan is estimated to pay)")
      ->capture_default_str();
  cmd->add_option("--strict_data", f->strict_data, "unreadable images are errors, not logged skips")
      ->capture_default_str();
  cmd->add_option("--val_labels", f->val_labels,
                  "label file of a flat validation folder: wnids or ILSVRC2012 ids per line in "
                  "file-name order, "
                  "or image_id,wnid CSV (docs/DATA.md)");
  cmd->add_option("--v2_variant", f->v2_variant,
                  "ImageNet-V2 release folder read: matched-frequency, threshold0.7, top-images")
      ->capture_default_str();
  cmd->callback([f] { run_eval(*f); });
}

}  // namespace lth::cli
