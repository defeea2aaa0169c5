#include "data/holdout.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "common/error.h"
#include "common/rng.h"

namespace lth::data {
namespace {

// Fisher-Yates with a keyed generator: the same (seed, key) always gives the same order.
template <typename T>
void keyed_shuffle(std::vector<T>& items, uint64_t seed, std::string_view purpose, uint64_t key) {
  Rng rng = Rng::keyed(seed, purpose, key);
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);
}

std::vector<int64_t> uniform_draw(int64_t size, int64_t count, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(size));
  std::iota(all.begin(), all.end(), 0);
  keyed_shuffle(all, seed, "holdout-uniform", 0);
  all.resize(static_cast<size_t>(count));
  return all;
}

std::vector<int64_t> balanced_draw(const std::map<int64_t, std::vector<int64_t>>& by_class,
                                   int64_t count, uint64_t seed) {
  std::vector<std::vector<int64_t>> groups;
  for (const auto& [label, members] : by_class) {
    groups.push_back(members);
    keyed_shuffle(groups.back(), seed, "holdout-class", static_cast<uint64_t>(label));
  }
  // Round r takes the r-th image of every class that still has one; the classes are visited
  // in a seeded order so that the remainder of an uneven split falls on random classes.
  std::vector<size_t> order(groups.size());
  std::iota(order.begin(), order.end(), size_t{0});
  keyed_shuffle(order, seed, "holdout-order", 0);
  std::vector<int64_t> chosen;
  for (size_t round = 0; static_cast<int64_t>(chosen.size()) < count; ++round) {
    for (const size_t g : order) {
      if (round < groups[g].size() && static_cast<int64_t>(chosen.size()) < count) {
        chosen.push_back(groups[g][round]);
      }
    }
  }
  return chosen;
}

}  // namespace

std::vector<int64_t> choose_holdout(const Dataset& dataset, int64_t count, uint64_t seed) {
  const int64_t size = dataset.size();
  require(count > 0 && count < size,
          fmt::format("hold-out of {} images: must be between 1 and {} (the training set has {})",
                      count, size - 1, size));
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (int64_t i = 0; i < size; ++i) {
    const auto label = dataset.label(i);
    if (!label) {
      spdlog::warn("hold-out from {}: labels are not known without decoding; drawing {} images "
                   "uniformly instead of per class",
                   dataset.describe(), count);
      by_class.clear();
      break;
    }
    by_class[*label].push_back(i);
  }
  auto chosen = by_class.empty() ? uniform_draw(size, count, seed) : balanced_draw(by_class, count, seed);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

std::vector<int64_t> uniform_sample(int64_t size, int64_t count, uint64_t seed) {
  auto chosen = uniform_draw(size, std::clamp<int64_t>(count, 0, size), seed);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

std::vector<int64_t> complement(const std::vector<int64_t>& sorted_excluded, int64_t size) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(size - static_cast<int64_t>(sorted_excluded.size()), 0)));
  size_t e = 0;
  for (int64_t i = 0; i < size; ++i) {
    while (e < sorted_excluded.size() && sorted_excluded[e] < i) ++e;
    if (e < sorted_excluded.size() && sorted_excluded[e] == i) continue;
    out.push_back(i);
  }
  return out;
}

SubsetDataset::SubsetDataset(DatasetPtr base, std::vector<int64_t> indices, std::string name)
    : base_(std::move(base)), indices_(std::move(indices)), name_(std::move(name)) {
  for (const auto i : indices_) {
    require(i >= 0 && i < base_->size(), "internal: subset index out of range of " + base_->describe());
  }
}

std::optional<Example> SubsetDataset::get(int64_t index, Rng& rng) const {
  return base_->get(base_index(index), rng);
}

std::optional<int64_t> SubsetDataset::get_into(int64_t index, Rng& rng, uint8_t* slot) const {
  return base_->get_into(base_index(index), rng, slot);
}

std::optional<int64_t> SubsetDataset::label(int64_t index) const {
  return base_->label(base_index(index));
}

std::string SubsetDataset::describe() const {
  return fmt::format("{} ({} of {})", name_, size(), base_->describe());
}

HoldoutSplit split_holdout(const DatasetPtr& train, const DatasetPtr& train_eval, int64_t count,
                           uint64_t seed) {
  require(train->size() == train_eval->size(),
          "internal: the train split's two views differ in size");
  const auto held = choose_holdout(*train, count, seed);  // checks 0 < count < size
  HoldoutSplit split;
  split.train = std::make_shared<SubsetDataset>(train, complement(held, train->size()), "train less hold-out");
  split.holdout = std::make_shared<SubsetDataset>(train_eval, held, "hold-out");
  split.class_balanced = train->label(0).has_value();  // as choose_holdout decided
  return split;
}

}  // namespace lth::data
