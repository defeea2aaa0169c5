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
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
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

template <typename F>
Rate best_of(int rounds, int64_t images, F&& pass) {
  pass();  // warm: page cache, allocator, decoder state
  Rate best;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    pass();
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu = cpu_seconds() - c0;
    best.wall = std::max(best.wall, images / wall);
    best.cpu = std::max(best.cpu, images / cpu);
  }
  return best;
}

Rate loader_rate(lth::data::DatasetPtr ds, int workers, int rounds, int64_t batch) {
  lth::data::LoaderOptions o;
  o.batch_size = batch;
  o.num_workers = workers;
  o.seed = 1;
  o.shuffle = true;
  o.drop_last = true;
  o.repeat = true;
  lth::data::Loader loader(ds, o);
  const int64_t per_epoch = loader.batches_per_epoch();
  return best_of(rounds, per_epoch * batch, [&] {
    for (int64_t b = 0; b < per_epoch; ++b) loader.next();
  });
}

// Folder layout: read each file whole (what the folder reader does before decoding).
Rate folder_read_rate(const fs::path& root, int rounds) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(root / "imagenet/train"))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<char> buf;
  return best_of(rounds, static_cast<int64_t>(files.size()), [&] {
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      buf.assign(std::istreambuf_iterator<char>(in), {});
    }
  });
}

Rate shard_read_rate(const sh::ShardDataset& ds, int rounds) {
  return best_of(rounds, ds.size(), [&] {
    for (int64_t i = 0; i < ds.size(); ++i) {
      try {
        (void)ds.raw(i);
      } catch (const std::exception&) {
      }
    }
  });
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
  std::cout << "| layout | read img/s (1 core) | train img/s 1 core | train img/CPU-s 1 core | train img/s "
            << cores << " workers | stream order img/s " << cores << " workers |\n|---|--:|--:|--:|--:|--:|\n";
  for (const auto& [name, dir] : {std::pair{"folders", base / "folders"}, std::pair{"tfrecord", base / "tfds"},
                                  std::pair{"webdataset tar", base / "wds"}}) {
    const auto ds = open(dir, "global");
    const auto* shard = dynamic_cast<const sh::ShardDataset*>(ds.get());
    const Rate read = shard ? shard_read_rate(*shard, rounds) : folder_read_rate(dir, rounds);
    const Rate one = loader_rate(ds, 0, rounds, batch);
    const Rate all = loader_rate(ds, cores, rounds, batch);
    Rate stream;
    if (shard) stream = loader_rate(open(dir, "stream"), cores, rounds, batch);
    out[name] = {{"read_1core", read.wall}, {"train_1core", one.wall}, {"train_1core_per_cpu_s", one.cpu},
                 {"train_all", all.wall}, {"stream_all", shard ? stream.wall : 0.0}};
    std::printf("| %s | %.0f | %.1f | %.1f | %.1f | %s |\n", name, read.wall, one.wall, one.cpu, all.wall,
                shard ? std::to_string(static_cast<int>(stream.wall + 0.5)).c_str() : "-");
    std::fflush(stdout);
  }
  if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << "\n";
  fs::remove_all(base);
  return 0;
}
