#pragma once
// `lth data check`: is the data under --data_root what a full ImageNet run needs? One row per
// set (train, val, V2, R, A, Sketch): the layout recognised, images and classes against the
// official counts (train 1,281,167 in 1000; val 50,000 = 50 per class; V2 10,000 per variant;
// R 30,000 in 200; A 7,500 in 200; Sketch 50,889 in 1000), classes missing (train: also
// classes with fewer images than the smallest real class, 732: a half-extracted folder) or
// extra, label sanity (val labels spread over every class; with the devkit in the data root,
// every ILSVRC2012_val_<k> file's label against its ground truth, naming the devkit-order
// mistake -- id k taken as the k-th sorted class -- when that is what happened), a decode of
// a random sample of each set (`full`: every file) listing unreadable files, and the measured
// decode + train-transform throughput per core with the cores a global batch needs at a step
// rate. The official tars in the data root are checked too (indexes, truncation, devkit).
// What it cannot check: whether a picture shows its class (labels are checked against the
// devkit or the CSV, never against the pixels), and, without a devkit, the val label order.
// `subset`: the data is a deliberate subset (lth make-imagenet --classes K): counts are
// compared between sets (val classes within train's, every class with val images), not with
// the official numbers.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lth::data::check {

struct CheckOptions {
  std::filesystem::path data_root;
  std::string val_labels;
  std::string v2_variant = "matched-frequency";
  bool full = false;          // decode every file, not a sample
  int64_t sample = 256;       // images decoded per set in the quick form
  bool subset = false;
  int64_t image_size = 224;
  int64_t global_batch = 1024;
  double step_rate = 0;       // steps/s for the cores estimate (0: cores per step/s)
  uint64_t seed = 0;
  bool test_sets = true;      // also the five test sets (absent ones are not problems)
};

struct SetRow {
  std::string set, layout, path;
  int64_t images = 0, classes = 0;
  int64_t official_images = 0, official_classes = 0;
  int64_t decoded = 0, unreadable = 0;
  bool present = false, needed = false;
  std::string note;
};

struct CheckReport {
  std::vector<SetRow> rows;
  std::vector<std::string> problems;  // one line each; any = the data is not ready
  std::vector<std::string> unreadable;  // "set: unreadable: FILE" lines (also not ready)
  std::vector<std::string> notes;     // what was not (or could not be) checked
  double images_per_second_per_core = 0;
  double cores_needed = 0;            // for global_batch at step_rate (or per step/s)
  bool ok() const { return problems.empty() && unreadable.empty(); }
};

CheckReport check_data(const CheckOptions& options);
// The table and summary lines (stdout of `lth data check`).
std::string format_report(const CheckReport& report, const CheckOptions& options);

}  // namespace lth::data::check
