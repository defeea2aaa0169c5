// bench_sparse_inference: images/s of lth's sparse engine (infer/engine.h, mode auto: each
// layer sparse or dense by its measured crossover) and of lth's dense LibTorch forward, on
// ResNet-50 with masks of three families (masks.h) at several densities, at each batch size
// and thread count. Both engines run the same Network::forward on the same uint8 images and
// the same masked weights, alternately for each (mask, batch, threads).
//
// Per (mask, batch, threads): one untimed warm-up of each engine, then the engines' timed
// batches interleaved (sparse, dense, sparse, dense, ...), at least --reps each and at least
// --min-seconds each; the median time per batch gives images/s. Interleaving puts both
// figures of a row in the same seconds: this host's speed drifts by 10-20 % from one minute
// to the next (the same LibTorch forward timed one engine after the other differed by up to
// 1.1x), which timing the engines back to back put into their ratio. Also recorded: the ideal
// speedup (conv + head MACs of the dense network over those of the nonzero weights), the weight
// bytes each engine holds, the engine's sparse layer count, the share of the CPUs other
// processes used meanwhile, and each layer's density for every mask (one "mask" JSON line).
// Every result is a JSON line on stdout; bench/sparse_inference/summarize.py makes the table.
//
// Example: bench_sparse_inference --families uniform --densities 1,0.1074 --batches 1,32 --threads
// 1,2
#include <ATen/Parallel.h>
#include <malloc.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench_models.h"
#include "common/threads.h"
#include "infer/engine.h"
#include "machine_state.h"
#include "masks.h"
#include "models/network.h"

namespace {

using namespace lth;
using namespace lth::bench;
using nlohmann::json;

template <typename T>
std::vector<T> parse_list(const std::string& s) {
  std::vector<T> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) continue;
    std::stringstream v(item);
    T x;
    v >> x;
    out.push_back(x);
  }
  return out;
}

// Median seconds per batch of each network's forward, their timed batches interleaved;
// `cpu_per_batch` gets this process's CPU seconds per timed batch of each (less sensitive
// than wall time to other processes taking the cores).
std::vector<double> time_interleaved(const std::vector<models::Network*>& nets,
                                     const torch::Tensor& images, int reps, double min_seconds,
                                     std::vector<double>& cpu_per_batch) {
  torch::NoGradGuard no_grad;
  for (auto* net : nets) net->forward(images);  // warm-up: first-touch allocations, offsets
  std::vector<std::vector<double>> times(nets.size());
  std::vector<double> cpu(nets.size(), 0.0), wall(nets.size(), 0.0);
  const auto enough = [&] {
    for (size_t k = 0; k < nets.size(); ++k)
      if (static_cast<int>(times[k].size()) < reps || wall[k] < min_seconds) return false;
    return true;
  };
  while (!enough() && times[0].size() < 1000) {
    for (size_t k = 0; k < nets.size(); ++k) {
      const double cpu0 = own_cpu_seconds();
      const auto t = Clock::now();
      const auto y = nets[k]->forward(images);
      times[k].push_back(seconds_since(t));
      wall[k] += times[k].back();
      cpu[k] += own_cpu_seconds() - cpu0;
    }
  }
  std::vector<double> medians;
  cpu_per_batch.clear();
  for (size_t k = 0; k < nets.size(); ++k) {
    medians.push_back(median(times[k]));
    cpu_per_batch.push_back(cpu[k] / static_cast<double>(times[k].size()));
  }
  return medians;
}

}  // namespace

int main(int argc, char** argv) {
  // As lth's main (src/cli/main.cpp): freed buffers stay mapped, so every forward does not
  // fault its activations in again; both engines (and LIBXSMM) run under it.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
  CLI::App app{"lth sparse engine vs LibTorch dense on masked ResNet-50"};
  std::string model = "resnet50", families = "uniform,erk,global",
              densities = "1,0.2097,0.1074,0.018";
  std::string batches = "1,32", threads = "1," + std::to_string(hardware_threads());
  std::string isa = "auto", engines = "sparse,dense";
  int64_t image_size = 224;
  int reps = 3;
  double min_seconds = 1.0, wait = 0;
  app.add_option("--model", model)->capture_default_str();
  app.add_option("--image-size", image_size)->capture_default_str();
  app.add_option("--families", families, "uniform, erk, global")->capture_default_str();
  app.add_option("--densities", densities)->capture_default_str();
  app.add_option("--batches", batches)->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--reps", reps)->capture_default_str();
  app.add_option("--min-seconds", min_seconds, "per figure")->capture_default_str();
  app.add_option("--isa", isa, "auto, avx512, avx2, portable")->capture_default_str();
  app.add_option("--engines", engines, "lth engines to time: sparse, dense")->capture_default_str();
  app.add_option("--wait-quiet", wait, "seconds to wait for other processes to go idle")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const auto names = parse_list<std::string>(engines);
    if (names.empty()) throw UserError("--engines: no engine named (sparse, dense)");
    for (const auto& name : names)
      if (name != "sparse" && name != "dense")
        throw UserError("--engines: unknown engine '" + name + "' (sparse, dense)");
    auto cfg = model_config(model);
    cfg.image_size = image_size;
    auto net = models::make_network(cfg, 0);
    net->eval();
    {
      // lth's init zeroes the last BN scale of every block and the head; a trained network
      // has neither, and a zero scale would let the engine skip whole layers after folding.
      torch::NoGradGuard no_grad;
      auto g = at::detail::createCPUGenerator(2);
      for (auto& p : net->named_parameters()) {
        if (net->kind_of(p.key()) == models::ParamKind::Norm &&
            p.key().find(".weight") != std::string::npos)
          p.value().fill_(1.0);
        if (net->kind_of(p.key()) == models::ParamKind::Head)
          p.value().copy_(torch::randn(p.value().sizes(), g) * 0.01);
      }
    }
    std::map<std::string, torch::Tensor> init;
    for (const auto& p : net->named_parameters()) init[p.key()] = p.value().detach().clone();
    auto gen = at::detail::createCPUGenerator(1);
    const double quiet = wait > 0 ? wait_quiet(wait) : -1;

    for (const auto& family : parse_list<std::string>(families)) {
      for (double d : parse_list<double>(densities)) {
        if (d >= 1.0 && family != parse_list<std::string>(families).front())
          continue;  // one dense mask
        {
          torch::NoGradGuard no_grad;
          const auto masks = family_masks(family, *net, init, d);
          for (auto& p : net->named_parameters()) {
            p.value().copy_(init.at(p.key()));
            const auto m = masks.find(p.key());
            if (m != masks.end()) p.value().mul_(m->second);
          }
        }
        infer::EngineOptions eo;
        eo.isa = infer::parse_isa(isa);
        const auto compiled = infer::compile(net, eo);  // for the MAC counts and the table
        const auto engine = infer::prepare_for_inference(net, eo);
        int64_t dense_bytes = 0, sparse_bytes = 0, conv_kept = 0, conv_total = 0;
        json layers = json::array();
        for (const auto& s : compiled->layers()) {
          sparse_bytes += s.weight_bytes;
          layers.push_back({{"name", s.name},
                            {"shape", s.shape},
                            {"density", round_to(s.density, 5)},
                            {"sparse", s.sparse}});
        }
        for (const auto& p : net->named_parameters()) {
          dense_bytes += p.value().numel() * 4;
          if (net->kind_of(p.key()) == models::ParamKind::ConvKernel) {
            conv_total += p.value().numel();
            conv_kept += (p.value() != 0).sum().item<int64_t>();
          }
        }
        const double ideal = static_cast<double>(compiled->dense_macs()) /
                             std::max<int64_t>(1, compiled->sparse_macs());
        const double actual = static_cast<double>(conv_kept) / conv_total;
        std::cout << json{{"kind", "mask"},
                          {"family", family},
                          {"density", d},
                          {"conv_density", round_to(actual, 5)},
                          {"ideal_speedup", round_to(ideal, 3)},
                          {"layers", layers}}
                         .dump()
                  << std::endl;
        std::fprintf(stderr,
                     "# %s %.4f: conv density %.4f, ideal %.2fx, %lld of %zu layers sparse\n%s",
                     family.c_str(), d, actual, ideal,
                     static_cast<long long>(compiled->sparse_layer_count()),
                     compiled->layers().size(), infer::describe_plan(*compiled).c_str());
        for (int64_t batch : parse_list<int64_t>(batches)) {
          const auto images =
              torch::randint(0, 256, {batch, image_size, image_size, 3}, gen, torch::kByte);
          for (int t : parse_list<int>(threads)) {
            at::set_num_threads(t);
            std::vector<models::Network*> nets;
            for (const auto& name : names)
              nets.push_back(name == "sparse" ? engine.get() : net.get());
            CpuWatch watch;
            std::vector<double> cpus;
            const auto medians = time_interleaved(nets, images, reps, min_seconds, cpus);
            for (size_t k = 0; k < names.size(); ++k) {
              const char* which = names[k].c_str();
              const bool sparse = names[k] == "sparse";
              const double s = medians[k], cpu = cpus[k];
              json r = {
                  {"kind", "time"},
                  {"engine", std::string("lth_") + which},
                  {"family", family},
                  {"density", d},
                  {"conv_density", round_to(actual, 5)},
                  {"ideal_speedup", round_to(ideal, 3)},
                  {"batch", batch},
                  {"threads", t},
                  {"sec_per_batch", round_to(s, 5)},
                  {"img_s", round_to(batch / s, 2)},
                  {"cpu_s_per_img", round_to(cpu / batch, 5)},
                  {"weight_mb",
                   round_to((sparse && engine != net ? sparse_bytes : dense_bytes) / 1e6, 2)},
                  {"sparse_layers", sparse ? compiled->sparse_layer_count() * (engine != net) : 0},
                  {"max_rss_mb", round_to(max_rss_mb(), 0)},
                  {"isa", infer::isa_name(eo.isa)},
                  {"start_quiet_frac", quiet}};
              r.update(watch.report());
              std::cout << r.dump() << std::endl;
              std::fprintf(stderr,
                           "%-6s %-7s d=%-6g batch %3lld threads %d: %8.2f img/s, %.4f CPU s/img\n",
                           which, family.c_str(), d, static_cast<long long>(batch), t, batch / s,
                           cpu / batch);
            }
          }
        }
      }
    }
  } catch (const UserError& e) {
    std::fprintf(stderr, "bench_sparse_inference: %s\n", e.what());
    return 2;
  }
  return 0;
}
