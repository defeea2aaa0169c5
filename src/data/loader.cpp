#include "data/loader.h"

#include <algorithm>
#include <numeric>

#include "common/error.h"

namespace lth::data {

Loader::Loader(DatasetPtr dataset, LoaderOptions options, LoaderPosition start)
    : dataset_(std::move(dataset)), options_(options), start_(start) {
  require(options_.batch_size > 0, "batch size must be positive");
  require(options_.world_size >= 1 && options_.rank >= 0 && options_.rank < options_.world_size,
          "invalid rank " + std::to_string(options_.rank) + " of world size " +
              std::to_string(options_.world_size));
  require(options_.batch_size % options_.world_size == 0,
          "batch size " + std::to_string(options_.batch_size) + " is not divisible by world size " +
              std::to_string(options_.world_size));
  require(options_.num_workers >= 0, "--num_workers must be >= 0");
  require(options_.prefetch_factor >= 1, "--prefetch_factor must be >= 1");
  const int64_t n = dataset_->size();
  require(n > 0, "dataset " + dataset_->describe() + " is empty");
  per_rank_batch_ = options_.batch_size / options_.world_size;
  batches_per_epoch_ = options_.drop_last ? n / options_.batch_size
                                          : (n + options_.batch_size - 1) / options_.batch_size;
  if (const auto* sharded = dynamic_cast<const shards::ShardOrdered*>(dataset_.get());
      sharded && options_.drop_last) {
    shard_layout_ = sharded->shard_layout();
    if (!shard_layout_.records_per_file.empty()) {
      int64_t smallest = n;
      for (int r = 0; r < options_.world_size; ++r) {
        smallest = std::min(smallest, shards::rank_sample_count(shard_layout_, r, options_.world_size));
      }
      batches_per_epoch_ = smallest / per_rank_batch_;
    }
  }
  require(batches_per_epoch_ > 0, "dataset " + dataset_->describe() + " has " + std::to_string(n) +
                                      " samples, fewer than one batch of " +
                                      std::to_string(options_.batch_size));
  for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

Loader::Ticket Loader::ticket(int64_t k) const {
  const int64_t absolute = start_.epoch * batches_per_epoch_ + start_.batch + k;
  return Ticket{absolute / batches_per_epoch_, absolute % batches_per_epoch_};
}

bool Loader::finite_end(int64_t k) const {
  return !options_.repeat && ticket(k).epoch > start_.epoch;
}

Loader::Order Loader::permutation(int64_t epoch) const {
  {
    std::lock_guard<std::mutex> lock(perm_mutex_);
    auto it = permutations_.find(epoch);
    if (it != permutations_.end()) return it->second;
  }
  // Built outside the lock: an ImageNet epoch is 1.28M entries and other workers need not wait.
  auto order = std::make_shared<std::vector<int64_t>>(dataset_->size());
  std::iota(order->begin(), order->end(), 0);
  if (!shard_layout_.records_per_file.empty()) {
    *order = shards::rank_order(shard_layout_, options_.seed, epoch, options_.rank,
                                options_.world_size, options_.shuffle);
  } else if (options_.shuffle) {
    Rng rng = Rng::keyed(options_.seed, "shuffle", static_cast<uint64_t>(epoch));
    for (int64_t i = static_cast<int64_t>(order->size()) - 1; i > 0; --i) {
      std::swap((*order)[i], (*order)[rng.below(static_cast<uint64_t>(i + 1))]);
    }
  }
  std::lock_guard<std::mutex> lock(perm_mutex_);
  // A small cache: evict the epoch farthest from this one (the window spans few epochs).
  while (permutations_.size() >= 4) {
    auto farthest = permutations_.begin();
    for (auto it = permutations_.begin(); it != permutations_.end(); ++it) {
      if (std::abs(it->first - epoch) > std::abs(farthest->first - epoch)) farthest = it;
    }
    permutations_.erase(farthest);
  }
  return permutations_.emplace(epoch, std::move(order)).first->second;
}

std::vector<int64_t> Loader::indices_of(const Ticket& t) const {
  const Order keep_alive = permutation(t.epoch);
  const auto& order = *keep_alive;
  const int64_t n = static_cast<int64_t>(order.size());
  const int64_t begin = t.index * options_.batch_size;
  const int64_t end = std::min(n, begin + options_.batch_size);
  std::vector<int64_t> out;
  if (options_.drop_last) {
    // Stream order is already this rank's own: its batches follow one another.
    const int64_t from = shard_layout_.records_per_file.empty()
                             ? begin + options_.rank * per_rank_batch_
                             : t.index * per_rank_batch_;
    for (int64_t j = from; j < from + per_rank_batch_; ++j) out.push_back(order[j]);
  } else {
    // Round-robin within the batch, so a short last batch is still split evenly.
    for (int64_t j = begin + options_.rank; j < end; j += options_.world_size) out.push_back(order[j]);
  }
  return out;
}

Batch Loader::load(const Ticket& t) const {
  const auto indices = indices_of(t);
  const ImageShape shape = dataset_->shape();
  Batch batch;
  batch.epoch = t.epoch;
  batch.index = t.index;
  auto images = torch::empty({static_cast<int64_t>(indices.size()), shape.height, shape.width,
                              shape.channels},
                             torch::kUInt8);
  std::vector<int64_t> labels;
  labels.reserve(indices.size());
  int64_t filled = 0;
  // Each sample is written straight into its row of the batch (no tensor of its own); an
  // unreadable one leaves its row to the next sample.
  const int64_t row = shape.height * shape.width * shape.channels;
  uint8_t* const base = images.data_ptr<uint8_t>();
  for (const int64_t i : indices) {
    Rng rng = Rng::keyed(options_.seed, "sample", static_cast<uint64_t>(t.epoch),
                         static_cast<uint64_t>(i));
    const auto label = dataset_->get_into(i, rng, base + filled * row);
    if (!label) {
      ++batch.skipped;
      continue;
    }
    ++filled;
    labels.push_back(*label);
  }
  batch.images = filled == images.size(0) ? images : images.narrow(0, 0, filled).clone();
  batch.labels = torch::tensor(labels, torch::kInt64);
  return batch;
}

void Loader::worker_loop() {
  const int64_t window = static_cast<int64_t>(options_.num_workers) * options_.prefetch_factor;
  for (;;) {
    int64_t k;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] {
        return stopping_ || error_ || next_to_claim_ < next_to_return_ + window;
      });
      if (stopping_ || error_ || finite_end(next_to_claim_)) return;
      k = next_to_claim_++;
    }
    try {
      Batch batch = load(ticket(k));
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(k, std::move(batch));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    ready_cv_.notify_all();
  }
}

std::optional<Batch> Loader::next() {
  if (finite_end(next_to_return_)) return std::nullopt;
  if (workers_.empty()) return load(ticket(next_to_return_++));
  std::unique_lock<std::mutex> lock(mutex_);
  ready_cv_.wait(lock, [&] { return error_ || ready_.count(next_to_return_) > 0; });
  if (error_) std::rethrow_exception(error_);
  auto node = ready_.extract(next_to_return_++);
  lock.unlock();
  work_cv_.notify_all();
  return std::move(node.mapped());
}

LoaderPosition Loader::position() const {
  const Ticket t = ticket(next_to_return_);
  return LoaderPosition{t.epoch, t.index};
}

}  // namespace lth::data
