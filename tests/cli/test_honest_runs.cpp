// Issue 17, "runs that never claim what did not happen": one test per finding, each through
// the lth binary as a user would run it (paths typed with slashes, odd but real data,
// resumed runs, output redirected). Only the binary is used, so the same file also runs
// against older builds.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "test_util.h"

namespace lth {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::fresh_dir;
using testing::read_file;
using testing::run_command;
using testing::run_lth;

json read_json(const fs::path& path) { return json::parse(read_file(path)); }

std::vector<json> events(const fs::path& metrics) {
  std::vector<json> out;
  std::istringstream lines(read_file(metrics));
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

int count_events(const fs::path& metrics, const std::string& name, const std::string& set = "") {
  int n = 0;
  for (const auto& e : events(metrics))
    n += e.value("event", "") == name && (set.empty() || e.value("set", "") == set);
  return n;
}

// Lines of `text` that hold both `a` and `b`.
int lines_with(const std::string& text, const std::string& a, const std::string& b) {
  int n = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    n += line.find(a) != std::string::npos && line.find(b) != std::string::npos;
  return n;
}

// Whether any object in `j` has `key` with a number as its value.
bool has_number_at(const json& j, const std::string& key) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items())
      if ((k == key && v.is_number()) || has_number_at(v, key)) return true;
  } else if (j.is_array()) {
    for (const auto& v : j)
      if (has_number_at(v, key)) return true;
  }
  return false;
}

// A tiny LeNet run on the synthetic dataset: seconds.
std::string synthetic_train(const std::string& extra) {
  return "train --data_name synthetic --model lenet300_100 --batch_size 32 --optim_ni 4 --eval_every 2 "
         "--eval_batch_size 128 --num_workers 0 --threads 1 --seed 1 " + extra;
}

// A tiny ResNet-20 run on a generated ImageNet layout.
std::string imagenet_train(const fs::path& root, const std::string& extra) {
  return "train --data_root " + root.string() +
         " --model resnet20 --image_size 16 --batch_size 4 --optim_ni 2 --eval_every 2 --eval_batch_size 16 "
         "--num_workers 0 --threads 1 --seed 1 " + extra;
}

fs::path make_imagenet(const std::string& name, const std::string& format = "folders", int classes = 4) {
  const auto root = fresh_dir(name);
  const auto r = run_lth("make-imagenet --out " + root.string() + " --classes " + std::to_string(classes) +
                         " --per_class 4 --test_per_class 2 --size 24 --seed 1 --no_odd_files --format " +
                         format + " --shard_size 8");
  EXPECT_EQ(r.status, 0) << r.output;
  return root;
}

void truncate_all(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) fs::resize_file(e.path(), 0);
}

// A tiny lth imp config (synthetic data, LeNet), for resumes and lmc.
fs::path imp_config(const fs::path& dir) {
  const auto path = fs::path(dir.string() + ".toml");
  std::ofstream(path) << R"([data]
name = "synthetic"
holdout = 64
[model]
name = "lenet300_100"
[train]
batch_size = 32
lr = 0.05
eval_every = 2
eval_batch_size = 128
num_workers = 0
[imp]
rewind_iterations = 2
cycle_iterations = 4
cycles = 1
prunable = "conv+linear"
[run]
seed = 3
threads = 1
)";
  return path;
}

// Why 1: the README's own usage, `--save=./save/imagenet2012/` with its trailing slash,
// from the first command to the next one reading its checkpoints.
TEST(HonestRuns, PathsAsTheReadmeTypesThem) {
  const auto dir = fresh_dir("honest_paths");
  fs::create_directories(dir);
  const std::string cd = "cd " + dir.string() + " && " + LTH_BINARY + " ";
  auto r = run_command(cd + synthetic_train("--prunable conv+linear --constant_lr=true --periodic_ckpt=true "
                                            "--save=./save/imagenet2012/"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "save/imagenet2012/config.toml"));
  r = run_command(cd + synthetic_train("--prunable conv+linear "
                                       "--matching_ckpt=./save/imagenet2012/iter_000002.safetensors "
                                       "--previous_ckpt=./save/imagenet2012/iter_000002.safetensors "
                                       "--save=./save/imagenet2012/000/"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "save/imagenet2012/000/summary.json"));
  // The same folder again, typed another way: refused, and nothing new is left behind.
  r = run_command(cd + synthetic_train("--prunable conv+linear --save=" + (dir / "save//imagenet2012/000").string()));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("already exists"), std::string::npos) << r.output;
  r = run_command(cd + synthetic_train("--prunable conv+linear --previous_ckpt=absent.safetensors --save=./new/run/"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_FALSE(fs::exists(dir / "new"));
  fs::remove_all(dir);
}

// Why 2: `lth lmc` on a folder that holds another start's analysis refuses with the
// difference instead of printing the old result (or resuming it under a new name), and a
// second lth lmc on a folder in use stops at once.
TEST(HonestRuns, LmcRefusesOtherSettingsAndHoldsTheLock) {
  const auto run = fresh_dir("honest_lmc_run"), out = fresh_dir("honest_lmc_out");
  auto r = run_lth("imp --config " + imp_config(run).string() + " --save " + run.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string common = " --points 3 --bn_batches 0 --train_sample 0 --iterations 2 --save " + out.string();
  r = run_lth("lmc --run " + run.string() + " --start " + (run / "000/init.safetensors").string() + common);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto first = read_json(out / "lmc.json");
  r = run_lth("lmc --run " + run.string() + " --start " + (run / "001/init.safetensors").string() + common);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("other settings"), std::string::npos) << r.output;
  EXPECT_EQ(read_json(out / "lmc.json"), first);
  // The same analysis again (the path typed differently) reads the result back.
  r = run_lth("lmc --run " + run.string() + "/ --start " + (run / "000/./init.safetensors").string() + common);
  EXPECT_EQ(r.status, 0) << r.output;
  // A folder another process holds: refused before anything runs.
  const auto busy = fresh_dir("honest_lmc_busy");
  fs::create_directories(busy);
  r = run_command("flock " + (busy / ".lth.lock").string() + " " + LTH_BINARY + " lmc --run " + run.string() +
                  " --start " + (run / "000/init.safetensors").string() +
                  " --points 3 --bn_batches 0 --train_sample 0 --iterations 2 --save " + busy.string() +
                  " 2>&1 && echo SECOND-RAN-UNDER-THE-LOCK");
  // flock runs lth while it holds the lock: lth itself must refuse.
  EXPECT_EQ(r.output.find("SECOND-RAN-UNDER-THE-LOCK"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(busy / "lmc.json"));
  fs::remove_all(run);
  fs::remove_all(out);
  fs::remove_all(busy);
}

// Why 3: the training samples seen and skipped are in metrics.jsonl, and training on no
// readable sample is an error, not a model that "trained" with loss 0.
TEST(HonestRuns, TrainingCountsItsSamplesAndRefusesToTrainOnNothing) {
  const auto save = fresh_dir("honest_counts");
  auto r = run_lth(synthetic_train("--prunable conv+linear --save " + save.string()));
  ASSERT_EQ(r.status, 0) << r.output;
  int evals = 0;
  for (const auto& e : events(save / "metrics.jsonl")) {
    if (e.value("event", "") != "eval") continue;
    ++evals;
    ASSERT_TRUE(e.contains("train_samples")) << e.dump();
    EXPECT_EQ(e["train_samples"].get<int64_t>(), 2 * 32) << e.dump();  // 2 iterations of 32
    EXPECT_EQ(e["train_skipped"].get<int64_t>(), 0) << e.dump();
  }
  EXPECT_EQ(evals, 2);

  const auto root = make_imagenet("honest_unreadable_train");
  truncate_all(root / "imagenet" / "train");  // every training JPEG empty
  const auto broken = fresh_dir("honest_nothing");
  r = run_lth(imagenet_train(root, "--save " + broken.string()));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("no readable training sample"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(broken / "best_acc.safetensors"));
  fs::remove_all(save);
  fs::remove_all(root);
  fs::remove_all(broken);
}

// Why 4: a test set with no readable image is no result (null, "no readable images"),
// never 0 %; an empty validation shard fails before the run folder exists.
TEST(HonestRuns, AnUnreadableTestSetIsNoResultNotZero) {
  const auto root = make_imagenet("honest_sketch");
  truncate_all(root / "imagenet-sketch");
  const auto run = fresh_dir("honest_sketch_run"), save = run / "000";  // a one-cycle run
  auto r = run_lth(imagenet_train(root, "--save " + save.string()));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto summary = read_json(save / "summary.json");
  const auto& sketch = summary["test"]["imagenet-sketch"];
  EXPECT_TRUE(sketch["acc"].is_null()) << summary.dump();
  EXPECT_EQ(sketch["count"], 0) << summary.dump();
  EXPECT_GT(sketch["skipped"].get<int64_t>(), 0) << summary.dump();
  EXPECT_TRUE(summary["test"]["imagenet"]["acc"].is_number());
  r = run_lth("report --no_plots " + run.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("no readable images"), std::string::npos) << r.output;
  const auto results = read_json(run / "results.json");  // IN-S is no score, not 0
  EXPECT_FALSE(has_number_at(results, "imagenet-sketch")) << results.dump();
  EXPECT_TRUE(has_number_at(results, "imagenet")) << results.dump();

  const auto shards = make_imagenet("honest_empty_val", "tfrecord");
  for (const auto& e : fs::recursive_directory_iterator(shards / "imagenet2012"))
    if (e.path().filename().string().find("validation.tfrecord") != std::string::npos) fs::resize_file(e.path(), 0);
  const auto never = fresh_dir("honest_empty_val_run");
  r = run_lth(imagenet_train(shards, "--save " + never.string()));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_FALSE(fs::exists(never)) << r.output;
  fs::remove_all(root);
  fs::remove_all(run);
  fs::remove_all(shards);
}

// The number of classes of a checkpoint's head, from its safetensors header.
int64_t head_classes(const fs::path& checkpoint) {
  const std::string bytes = read_file(checkpoint);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  return json::parse(bytes.substr(8, n))["fc.weight"]["shape"][0].get<int64_t>();
}

// Why 5: classes.txt in the shards' folder is used; a TFDS version folder as --data_root
// keeps the test sets beside its builder; a version folder without dataset_info.json says so.
TEST(HonestRuns, DataIsFoundWhereTheDocsSay) {
  const auto wds = make_imagenet("honest_wds", "webdataset", 3);
  ASSERT_TRUE(fs::exists(wds / "classes.txt"));
  fs::rename(wds / "classes.txt", wds / "train" / "classes.txt");
  const auto wsave = fresh_dir("honest_wds_run");
  auto r = run_lth(imagenet_train(wds, "--save " + wsave.string()));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(head_classes(wsave / "best_acc.safetensors"), 3);

  const auto tfds = make_imagenet("honest_tfds", "tfrecord");
  const auto version = tfds / "imagenet2012" / "5.1.0";
  ASSERT_TRUE(fs::exists(version / "dataset_info.json"));
  const auto tsave = fresh_dir("honest_tfds_run");
  r = run_lth(imagenet_train(version, "--save " + tsave.string() + "/"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto summary = read_json(tsave / "summary.json");
  for (const char* set : {"imagenet", "imagenet-v2", "imagenet-r", "imagenet-sketch"})
    EXPECT_TRUE(summary["test"].contains(set)) << set << " missing: " << summary["test"].dump();

  fs::remove(version / "dataset_info.json");
  const auto none = fresh_dir("honest_tfds_noinfo");
  r = run_lth(imagenet_train(version, "--save " + none.string()));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("dataset_info.json"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("is not a folder"), std::string::npos) << r.output;
  fs::remove_all(wds);
  fs::remove_all(wsave);
  fs::remove_all(tfds);
  fs::remove_all(tsave);
}

// Why 6: config.toml follows a run grown by replicates and a smaller count is refused; a
// cycle resumed after it finished training logs its end events once; lth report refuses a
// folder that is not a run and reads a damaged summary.json from metrics.jsonl.
TEST(HonestRuns, ResumeAndReportKeepTheBooksStraight) {
  const auto run = fresh_dir("honest_replicates");
  const auto config = imp_config(run).string() + " --cycles 0";
  auto r = run_lth("imp --config " + config + " --replicates 2 --save " + run.string());
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_lth("imp --config " + config + " --replicates 3 --save " + run.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(run / "replicate_2" / "000" / "summary.json"));
  EXPECT_NE(read_file(run / "config.toml").find("replicates = 3"), std::string::npos) << read_file(run / "config.toml");
  r = run_lth("imp --config " + config + " --replicates 2 --save " + run.string());
  EXPECT_EQ(r.status, 2) << r.output;

  // Stopped after training but before summary.json (here: removed): the rerun tests again
  // and writes summary.json, but its cycle and test events are logged once.
  const auto cycle = run / "replicate_0" / "000";
  fs::remove(cycle / "summary.json");
  r = run_lth("imp --config " + config + " --replicates 3 --save " + run.string());
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_TRUE(fs::exists(cycle / "summary.json"));
  EXPECT_EQ(count_events(cycle / "metrics.jsonl", "cycle"), 1) << read_file(cycle / "metrics.jsonl");
  EXPECT_EQ(count_events(cycle / "metrics.jsonl", "test_final", "synthetic"), 1);
  EXPECT_EQ(count_events(cycle / "metrics.jsonl", "test", "synthetic"), 1);

  // A damaged summary costs a note, not the report.
  const std::string text = read_file(cycle / "summary.json");
  std::ofstream(cycle / "summary.json", std::ios::trunc) << text.substr(0, text.size() / 2);
  r = run_lth("report --no_plots " + (run / "replicate_0").string());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("read from metrics.jsonl instead"), std::string::npos) << r.output;

  // Not a run: refused, and nothing is written there.
  const auto data = fresh_dir("honest_not_a_run");
  fs::create_directories(data / "imagenet");
  r = run_lth("report " + data.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_FALSE(fs::exists(data / "report.md"));
  fs::remove_all(run);
  fs::remove_all(data);
}

// Why 7: results on stdout, warnings on stderr and each once; the WebDataset rule said;
// LeNet trains with `lth train`'s defaults; lth info counts LeNet at its own input size;
// make-imagenet's --format error names every format.
TEST(HonestRuns, OutputSaysWhatHappenedWhereItBelongs) {
  const auto root = make_imagenet("honest_output");  // 4 class folders, not 1000: a warning
  const auto save = fresh_dir("honest_output_run");
  auto r = run_lth(imagenet_train(root, "--save " + save.string()));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(lines_with(r.output, "[warning]", "class folders instead of the 1000"), 1) << r.output;
  const std::string eval = std::string(LTH_BINARY) + " eval --ckpt " + (save / "best_acc.safetensors").string() +
                           " --data_root " + root.string() + " --image_size 16 --threads 1";
  const auto stdout_only = run_command("( " + eval + " 2>/dev/null )");
  ASSERT_EQ(stdout_only.status, 0) << stdout_only.output;
  EXPECT_NE(stdout_only.output.find("imagenet-sketch"), std::string::npos) << stdout_only.output;
  EXPECT_EQ(stdout_only.output.find("warn"), std::string::npos) << stdout_only.output;
  const auto stderr_only = run_command("( " + eval + " >/dev/null )");
  EXPECT_EQ(lines_with(stderr_only.output, "[warning]", "class folders instead of the 1000"), 1)
      << stderr_only.output;

  // A tar whose members are not grouped by key (no --sort=name): the message counts keys.
  const auto wds = make_imagenet("honest_unsorted", "webdataset");
  const auto shard = wds / "train" / "train-000000.tar";
  const auto members = fresh_dir("honest_unsorted_members");
  fs::create_directories(members);
  const auto list = members.string() + ".list";  // every image first, then every label
  r = run_command("tar -xf " + shard.string() + " -C " + members.string() + " && cd " + members.string() +
                  " && find . -type f ! -name '*.cls' | sort > " + list + " && find . -type f -name '*.cls' | sort >> " +
                  list + " && tar -cf " + shard.string() + " -T " + list);
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_lth(imagenet_train(wds, "--save " + fresh_dir("honest_unsorted_run").string()));
  EXPECT_NE(r.output.find("8 of 8 keys"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tar --sort=name"), std::string::npos) << r.output;

  const auto lenet = fresh_dir("honest_lenet");
  r = run_lth("train --data_name synthetic --model lenet300_100 --batch_size 32 --optim_ni 2 --eval_every 2 "
              "--num_workers 0 --threads 1 --save " + lenet.string());
  EXPECT_EQ(r.status, 0) << r.output;

  r = run_lth("info --model lenet300_100 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["counts"]["total"], 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10);

  r = run_lth("make-imagenet --out " + fresh_dir("honest_format").string() + " --format zip");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("folders"), std::string::npos) << r.output;
  for (const auto& d : {root, save, wds, members, lenet}) fs::remove_all(d);
  fs::remove(list);
}

}  // namespace
}  // namespace lth
