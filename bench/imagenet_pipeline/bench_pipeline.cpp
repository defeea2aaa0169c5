// Input-pipeline throughput of data/imagenet on a folder of JPEGs (ImageFolder layout:
// ROOT/<class>/<file>), measured the way the peer script torchvision_loader.py measures
// torchvision: files read from the page cache, uint8 224x224 batches of 64 out, one cold
// pass first, then timed passes. Prints one JSON object (and writes it with --json).
//
//   decode_full_1core   TurboJPEG full-size decode of preloaded bytes (vs tjbench / PIL)
//   train_1core         Loader, 0 workers: read + decode + reference train crop/resize/flip
//   train_1core_nodct   the same with DCT-domain scaling off
//   train_all           Loader with one worker per core
//   eval_1core/eval_all the eval transform (centre crop + resize)
// With --generate N, first writes N ImageNet-sized synthetic JPEGs (make-imagenet, 500 px).
#include <spdlog/spdlog.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/threads.h"
#include "data/imagenet/class_index.h"
#include "data/imagenet/codec.h"
#include "data/imagenet/folder_dataset.h"
#include "data/imagenet/synthetic_imagenet.h"
#include "data/loader.h"

namespace fs = std::filesystem;
namespace img = lth::data::imagenet;
using Clock = std::chrono::steady_clock;

namespace {

// CPU seconds used by this process (all threads): robust to other processes' load, unlike
// wall time, on a shared machine.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Any-named class folders (the peers' data use wnid-like names that are not real wnids).
std::vector<img::Sample> list_samples(const fs::path& root) {
  std::vector<fs::path> classes;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) classes.push_back(e.path());
  std::sort(classes.begin(), classes.end());
  std::vector<img::Sample> out;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(classes[c])) {
      const auto ext = e.path().extension().string();
      if (ext == ".JPEG" || ext == ".jpeg" || ext == ".jpg") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) out.push_back({f, int64_t(c)});
  }
  return out;
}

nlohmann::json decode_only(const std::vector<img::Sample>& samples, double min_seconds) {
  std::vector<std::vector<uint8_t>> blobs(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) img::read_file(samples[i].path, blobs[i]);
  img::RgbImage image;
  int64_t n = 0;
  double pixels = 0;
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  while (seconds_since(t0) < min_seconds) {
    for (const auto& b : blobs) {
      const auto info = img::probe(b.data(), b.size());
      img::decode(b.data(), b.size(), info, img::Scale{}, image);
      pixels += double(info.width) * info.height;
      ++n;
    }
  }
  const double dt = seconds_since(t0);
  const double cpu = cpu_seconds() - c0;
  return {{"img_per_s", n / dt}, {"src_mpix_per_s", pixels / dt / 1e6}, {"images", n},
          {"cpu_s", cpu}, {"img_per_cpu_s", n / cpu}};
}

// Where the CPU time of one train sample goes, stage by stage, one thread: the pipeline's
// steps (pipeline.cpp) called one by one through the public API, the resize writing
// straight into a batch slot as the loader has it do.
double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return 1e6 * double(ts.tv_sec) + 1e-3 * double(ts.tv_nsec);
}

nlohmann::json train_stages(const std::vector<img::Sample>& samples, int size, double min_seconds) {
  std::vector<uint8_t> bytes;
  img::RgbImage image;
  auto batch = torch::empty({64, size, size, 3}, torch::kUInt8);
  const size_t slot = size_t(size) * size * 3;
  double t_read = 0, t_probe = 0, t_decode = 0, t_resize = 0;
  int64_t n = 0;
  const auto t0 = Clock::now();
  while (seconds_since(t0) < min_seconds) {
    for (size_t i = 0; i < samples.size(); ++i) {
      lth::Rng rng = lth::Rng::keyed(0, "sample", 0, i);
      const double a = thread_cpu_us();
      img::read_file(samples[i].path, bytes);
      const double b = thread_cpu_us();
      const auto info = img::probe(bytes.data(), bytes.size());
      const auto crop = img::train_crop(info.height, info.width, size, rng);
      const double c = thread_cpu_us();
      int top = 0, left = 0;
      img::decode_region(bytes.data(), bytes.size(), info, img::Scale{},
                         img::PixelBox{crop.top, crop.left, crop.height, crop.width}, image, &top,
                         &left);
      const double d = thread_cpu_us();
      img::resize_bicubic(image.pixels.data(), image.height, image.width,
                          img::Region{double(crop.top - top), double(crop.left - left),
                                      double(crop.height), double(crop.width)},
                          size, size, rng.coin(0.5), batch.data_ptr<uint8_t>() + (n % 64) * slot);
      const double e = thread_cpu_us();
      t_read += b - a, t_probe += c - b, t_decode += d - c, t_resize += e - d;
      ++n;
    }
  }
  const double dn = double(n);
  return {{"images", n},
          {"cpu_us_read", t_read / dn},
          {"cpu_us_probe_crop", t_probe / dn},
          {"cpu_us_decode_region", t_decode / dn},
          {"cpu_us_resize_flip_into_slot", t_resize / dn}};
}

// Images per second through the Loader: one cold pass over the data, then whole passes
// until min_seconds have elapsed.
nlohmann::json through_loader(const lth::data::DatasetPtr& ds, int workers, int64_t batch,
                              double min_seconds) {
  lth::data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.num_workers = workers;
  lo.shuffle = true;
  lo.drop_last = true;
  lo.repeat = true;
  lth::data::Loader loader(ds, lo);
  const int64_t per_epoch = loader.batches_per_epoch();
  int64_t skipped = 0;
  for (int64_t b = 0; b < per_epoch; ++b) skipped += loader.next()->skipped;  // cold pass
  int64_t images = 0, passes = 0;
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  do {
    for (int64_t b = 0; b < per_epoch; ++b) {
      const auto batch = loader.next();
      images += batch->images.size(0);
      skipped += batch->skipped;
    }
    ++passes;
  } while (seconds_since(t0) < min_seconds);
  const double dt = seconds_since(t0);
  const double cpu = cpu_seconds() - c0;
  return {{"img_per_s", images / dt}, {"images", images},   {"passes", passes},
          {"workers", workers},       {"skipped", skipped}, {"cpu_s", cpu},
          {"img_per_cpu_s", images / cpu}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"data/imagenet input-pipeline benchmark"};
  std::string root, json_path;
  int size = 224, threads = 0, generate = 0;
  bool generate_only = false;
  std::vector<std::string> only;
  int64_t batch = 64;
  double seconds = 4.0;
  app.add_option("--root", root, "folder of class folders of JPEGs (or where --generate writes)")
      ->required();
  app.add_option("--size", size, "output side");
  app.add_option("--batch", batch, "batch size");
  app.add_option("--seconds", seconds, "minimum timed seconds per figure");
  app.add_option("--threads", threads, "workers for the all-cores figures (0 = all cores)");
  app.add_option("--generate", generate,
                 "first write this many 500-px synthetic JPEGs under --root");
  app.add_flag("--generate_only", generate_only, "stop after --generate");
  app.add_option("--json", json_path, "also write the result here");
  app.add_option("--only", only, "measure only these figures (e.g. train_1core), for profiling");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::warn);
  torch::set_num_threads(1);  // the pipeline itself is single-threaded per worker
  const int all = threads > 0 ? threads : lth::hardware_threads();
  fs::path images_root = root;
  if (generate > 0) {
    img::MakeImagenetOptions o;
    o.out = root;
    o.classes = 10;
    o.per_class = std::max(1, generate / 10);
    o.test_per_class = 1;
    o.size = 500;
    o.odd_files = false;
    img::make_synthetic_imagenet(o);
    images_root = fs::path(root) / "imagenet" / "train";
    if (generate_only) return 0;
  }
  const auto samples = list_samples(images_root);
  if (samples.empty()) {
    std::fprintf(stderr, "no JPEGs under %s\n", images_root.c_str());
    return 1;
  }
  auto make = [&](bool train, bool dct) {
    img::FolderOptions o;
    o.size = size;
    o.train = train;
    o.dct_scaling = dct;
    return std::make_shared<img::ImageFolderDataset>("bench", samples, 1000, std::vector<int64_t>{},
                                                     o);
  };
  nlohmann::json out = {{"script", "bench_imagenet_pipeline"},
                        {"root", images_root.string()},
                        {"images", samples.size()},
                        {"size", size},
                        {"batch", batch},
                        {"all_cores", all}};
  auto wanted = [&](const std::string& name) {
    return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
  };
  if (!only.empty() && wanted("train_stages"))  // a diagnostic, not in the default set
    out["train_stages"] = train_stages(samples, size, seconds);
  if (wanted("decode_full_1core")) out["decode_full_1core"] = decode_only(samples, seconds);
  if (wanted("train_1core")) out["train_1core"] = through_loader(make(true, true), 0, batch, seconds);
  if (wanted("train_1core_nodct"))
    out["train_1core_nodct"] = through_loader(make(true, false), 0, batch, seconds);
  if (wanted("train_all")) out["train_all"] = through_loader(make(true, true), all, batch, seconds);
  if (wanted("eval_1core")) out["eval_1core"] = through_loader(make(false, true), 0, batch, seconds);
  if (wanted("eval_all")) out["eval_all"] = through_loader(make(false, true), all, batch, seconds);
  std::printf("%s\n", out.dump().c_str());
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
