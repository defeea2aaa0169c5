#include "eval/evaluator.h"

#include <ATen/core/grad_mode.h>
#include <torch/types.h>

#include "data/loader.h"
#include "models/autocast.h"

namespace lth::eval {
namespace {

// Per-bin sums [bins, 3] = (count, sum confidence, sum correct), plus scalars, as one
// tensor so a single all-reduce combines every rank's partial results.
struct Accumulator {
  explicit Accumulator(int bins) : sums(torch::zeros({bins * 3 + 4}, torch::kFloat64)), bins(bins) {}
  torch::Tensor sums;  // [bins*3 | count, correct, nll_sum, skipped]
  int bins;

  void add(const torch::Tensor& log_probs, const torch::Tensor& labels, int64_t skipped) {
    auto lp = log_probs.to(torch::kFloat64);
    auto [max_lp, predicted] = lp.max(1);
    auto correct = predicted.eq(labels).to(torch::kFloat64);
    auto nll = -lp.gather(1, labels.unsqueeze(1)).squeeze(1);
    auto confidence = max_lp.exp();
    auto bin = (confidence * bins).floor().clamp_max(bins - 1).to(torch::kInt64);
    auto acc = sums.accessor<double, 1>();
    auto bin_a = bin.accessor<int64_t, 1>();
    auto conf_a = confidence.accessor<double, 1>();
    auto corr_a = correct.accessor<double, 1>();
    for (int64_t i = 0; i < bin.size(0); ++i) {
      acc[bin_a[i] * 3] += 1;
      acc[bin_a[i] * 3 + 1] += conf_a[i];
      acc[bin_a[i] * 3 + 2] += corr_a[i];
    }
    acc[bins * 3] += static_cast<double>(labels.size(0));
    acc[bins * 3 + 1] += correct.sum().item<double>();
    acc[bins * 3 + 2] += nll.sum().item<double>();
    acc[bins * 3 + 3] += static_cast<double>(skipped);
  }

  EvalResult result() const {
    auto acc = sums.accessor<double, 1>();
    EvalResult r;
    r.count = static_cast<int64_t>(acc[bins * 3]);
    r.skipped = static_cast<int64_t>(acc[bins * 3 + 3]);
    if (r.count == 0) return r;
    r.accuracy = acc[bins * 3 + 1] / r.count;
    r.nll = acc[bins * 3 + 2] / r.count;
    for (int b = 0; b < bins; ++b) {
      if (acc[b * 3] > 0) r.ece += std::abs(acc[b * 3 + 1] - acc[b * 3 + 2]) / r.count;
    }
    return r;
  }
};

// Maps full-label-space labels to positions within `subset` (sorted class ids).
torch::Tensor project_labels(const torch::Tensor& labels, const torch::Tensor& subset) {
  return torch::searchsorted(subset, labels);
}

}  // namespace

EvalResult evaluate(models::Network& net, const data::DatasetPtr& dataset, const EvalOptions& options) {
  // An empty set (a 0-byte shard, docs/DATA.md) is a count of 0, not an error: callers
  // report it as no result. Every rank returns here alike, so no collective is left waiting.
  if (dataset->size() == 0) return EvalResult{};
  data::LoaderOptions lo;
  lo.batch_size = options.batch_size * options.world_size;
  lo.num_workers = options.num_workers;
  lo.prefetch_factor = options.prefetch_factor;
  lo.shuffle = false;
  lo.drop_last = false;
  lo.repeat = false;
  lo.rank = options.rank;
  lo.world_size = options.world_size;
  data::Loader loader(dataset, lo);

  const bool was_training = net.is_training();
  net.eval();
  at::NoGradGuard no_grad;
  const auto subset =
      torch::tensor(options.class_subset.empty() ? std::vector<int64_t>{} : options.class_subset,
                    torch::kInt64);
  const auto subset_on_device = subset.to(options.device);
  Accumulator acc(options.ece_bins);
  while (auto batch = loader.next()) {
    if (batch->images.size(0) == 0) {
      acc.add(torch::zeros({0, 1}), torch::zeros({0}, torch::kInt64), batch->skipped);
      continue;
    }
    torch::Tensor logits;
    {
      const models::AutocastGuard autocast(options.precision, options.device);
      logits = net.forward(batch->images.to(options.device)).to(torch::kFloat32);
    }
    auto labels = batch->labels;
    if (subset.numel() > 0) {
      logits = logits.index_select(1, subset_on_device);
      labels = project_labels(labels, subset);
    }
    acc.add(torch::log_softmax(logits, 1).cpu(), labels, batch->skipped);
  }
  if (options.all_reduce_sum) options.all_reduce_sum(acc.sums);
  if (was_training) net.train();
  return acc.result();
}

}  // namespace lth::eval
