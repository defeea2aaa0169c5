// Read-and-decode throughput of the same pictures from three layouts, in one run:
// folders (one JPEG per file), a TFDS data dir (TFRecord shards) and WebDataset tar shards,
// all written by `lth make-imagenet` / `lth make-shards` (ImageNet-sized pictures by default).
// For each layout:
//   read_1core    bytes of every sample in index order, checked (CRC, Example parse, tar
//                 member) but not decoded: the container's own cost
//   train_1core   Loader, 0 workers: read + decode + the reference train crop/resize/flip
//   train_all     Loader, one worker per core
//   stream_all    (shards only) the same in the TFDS/WebDataset stream order
//                 (per-rank files, shuffle buffer) instead of the global permutation
// Each figure is the best of --rounds passes after one warm-up pass (files in the page
// cache), as images per second of wall time and per CPU-second of this process.
// Prints a Markdown table and writes JSON with --json.
#include <spdlog/spdlog.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <functional>
#include <map>
#include <thread>

#include "data/imagenet/synthetic_imagenet.h"
#include "data/loader.h"
#include "data/registry.h"
#include "data/shards/convert.h"
#include "data/shards/shard_dataset.h"

namespace fs = std::filesystem;
namespace sh = lth::data::shards;
using Clock = std::chrono::steady_clock;

namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Rate {
  double wall = 0, cpu = 0;  // images per second / per CPU-second
};

// One measurement: `images` per call of `pass`. Rounds of all measurements are interleaved
// (round 1 of every layout, then round 2, ...), so a load change on this shared machine
// hits every layout alike; the best round of each is reported.
struct Measure {
  std::string layout, what;
  int64_t images = 0;
  std::function<void()> pass;
  Rate best;
};

void run_round(Measure& m, bool timed) {
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  m.pass();
  if (!timed) return;
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = cpu_seconds() - c0;
  m.best.wall = std::max(m.best.wall, m.images / wall);
  m.best.cpu = std::max(m.best.cpu, m.images / cpu);
}

Measure loader_measure(const std::string& layout, const std::string& what, lth::data::DatasetPtr ds,
                       int workers, int64_t batch) {
  lth::data::LoaderOptions o;
  o.batch_size = batch;
  o.num_workers = workers;
  o.seed = 1;
  o.shuffle = true;
  o.drop_last = true;
  o.repeat = true;
  const int64_t per_epoch = lth::data::Loader(ds, lth::data::LoaderOptions{batch, 0}).batches_per_epoch();
  // A fresh loader per pass: an idle one would prefetch while other layouts are measured.
  return Measure{layout, what, per_epoch * batch, [ds, o, per_epoch] {
                   lth::data::Loader loader(ds, o);
                   for (int64_t b = 0; b < per_epoch; ++b) loader.next();
                 }, {}};
}

// Folder layout: read each file whole (what the folder reader does before decoding).
Measure folder_read(const fs::path& root) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root / "imagenet/train"))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return Measure{"folders", "read", static_cast<int64_t>(files.size()), [files] {
    std::vector<char> buf;
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary | std::ios::ate);
      buf.resize(static_cast<size_t>(in.tellg()));
      in.seekg(0);
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    }
  }, {}};
}

Measure shard_read(const std::string& layout, lth::data::DatasetPtr keep) {
  const auto* ds = dynamic_cast<const sh::ShardDataset*>(keep.get());
  return Measure{layout, "read", ds->size(), [keep, ds] {
    for (int64_t i = 0; i < ds->size(); ++i) {
      try {
        (void)ds->raw(i);
      } catch (const std::exception&) {
      }
    }
  }, {}};
}

lth::data::DatasetPtr open(const fs::path& root, const std::string& order) {
  lth::data::DataConfig c;
  c.name = "imagenet";
  c.root = root.string();
  c.image_size = 224;
  c.shard_order = order;
  return lth::data::make_dataset(c, lth::data::Split::Train);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"read-and-decode throughput: folders vs TFRecord shards vs tar shards"};
  std::string work = "/tmp/lth_bench_shards", json_out;
  int images = 800, rounds = 3, size = 500, shard_size = 256;
  int64_t batch = 32;
  app.add_option("--work", work, "scratch folder (rewritten)")->capture_default_str();
  app.add_option("--images", images, "train pictures (10 classes)")->capture_default_str();
  app.add_option("--size", size, "long side of the pictures (500 = ImageNet-like)")->capture_default_str();
  app.add_option("--shard_size", shard_size, "samples per shard")->capture_default_str();
  app.add_option("--rounds", rounds, "timed passes per figure (best is reported)")->capture_default_str();
  app.add_option("--batch", batch, "loader batch")->capture_default_str();
  app.add_option("--json", json_out, "write the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::err);
  torch::set_num_threads(1);

  const fs::path base = work;
  fs::remove_all(base);
  lth::data::imagenet::MakeImagenetOptions g;
  g.out = base / "folders";
  g.classes = 10;
  g.per_class = std::max(1, images / 10);
  g.test_per_class = 1;
  g.size = size;
  g.seed = 5;
  g.odd_files = false;
  lth::data::imagenet::make_synthetic_imagenet(g);
  sh::convert_folders_to_shards({base / "folders", base / "tfds", sh::ShardFormat::TFRecord, shard_size});
  sh::convert_folders_to_shards({base / "folders", base / "wds", sh::ShardFormat::WebDataset, shard_size});

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  nlohmann::json out = {{"images", g.classes * g.per_class}, {"size", size}, {"shard_size", shard_size},
                        {"rounds", rounds}, {"cores", cores}, {"batch", batch}};
  std::vector<Measure> measures;
  for (const auto& [name, dir] : {std::pair{"folders", base / "folders"}, std::pair{"tfrecord", base / "tfds"},
                                  std::pair{"webdataset tar", base / "wds"}}) {
    const auto ds = open(dir, "global");
    const bool shard = dynamic_cast<const sh::ShardDataset*>(ds.get()) != nullptr;
    measures.push_back(shard ? shard_read(name, ds) : folder_read(dir));
    measures.push_back(loader_measure(name, "train_1core", ds, 0, batch));
    measures.push_back(loader_measure(name, "train_all", ds, cores, batch));
    if (shard) measures.push_back(loader_measure(name, "stream_all", open(dir, "stream"), cores, batch));
  }
  for (auto& m : measures) run_round(m, false);  // warm: page cache, allocator, decoder
  for (int r = 0; r < rounds; ++r) {
    for (auto& m : measures) run_round(m, true);
  }
  std::cout << "Images per second of wall time (per CPU-second of this process in brackets), best of "
            << rounds << " interleaved rounds\n\n"
            << "| layout | read + check, 1 core | read + decode + train transform, 1 core | same, " << cores
            << " workers | same, stream order, " << cores << " workers |\n|---|--:|--:|--:|--:|\n";
  for (const char* layout : {"folders", "tfrecord", "webdataset tar"}) {
    std::map<std::string, Rate> row;
    for (const auto& m : measures) {
      if (m.layout == layout) row[m.what] = m.best;
    }
    nlohmann::json j;
    for (const auto& [what, r] : row) j[what] = {{"wall", r.wall}, {"per_cpu_s", r.cpu}};
    out[layout] = j;
    const auto cell = [&](const char* what) {
      if (!row.count(what)) return std::string("-");
      char text[64];
      std::snprintf(text, sizeof text, "%.0f (%.0f)", row[what].wall, row[what].cpu);
      return std::string(text);
    };
    std::printf("| %s | %s | %s | %s | %s |\n", layout, cell("read").c_str(), cell("train_1core").c_str(),
                cell("train_all").c_str(), cell("stream_all").c_str());
  }
  if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << "\n";
  fs::remove_all(base);
  return 0;
}
