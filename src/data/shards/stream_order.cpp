#include "data/shards/stream_order.h"

#include <numeric>

#include "common/rng.h"

namespace lth::data::shards {
namespace {

bool whole_files(const ShardLayout& layout, int world_size) {
  return static_cast<int64_t>(layout.records_per_file.size()) >= world_size;
}

}  // namespace

int64_t rank_sample_count(const ShardLayout& layout, int rank, int world_size) {
  const auto& sizes = layout.records_per_file;
  if (whole_files(layout, world_size)) {
    int64_t n = 0;
    for (size_t f = static_cast<size_t>(rank); f < sizes.size(); f += static_cast<size_t>(world_size)) n += sizes[f];
    return n;
  }
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  return total / world_size + (rank < total % world_size ? 1 : 0);
}

std::vector<int64_t> rank_order(const ShardLayout& layout, uint64_t seed, int64_t epoch, int rank,
                                int world_size, bool shuffle) {
  const auto& sizes = layout.records_per_file;
  std::vector<int64_t> first(sizes.size() + 1, 0);  // index of each file's first record
  for (size_t f = 0; f < sizes.size(); ++f) first[f + 1] = first[f] + sizes[f];

  const bool whole = whole_files(layout, world_size);
  std::vector<int64_t> files;
  for (size_t f = whole ? static_cast<size_t>(rank) : 0; f < sizes.size();
       f += whole ? static_cast<size_t>(world_size) : 1) {
    files.push_back(static_cast<int64_t>(f));
  }
  const auto e = static_cast<uint64_t>(epoch);
  if (shuffle) {
    Rng rng = Rng::keyed(seed, "shard_files", e, static_cast<uint64_t>(rank));
    for (int64_t i = static_cast<int64_t>(files.size()) - 1; i > 0; --i) {
      std::swap(files[i], files[rng.below(static_cast<uint64_t>(i + 1))]);
    }
  }
  std::vector<int64_t> stream;  // records in reading order
  stream.reserve(static_cast<size_t>(rank_sample_count(layout, rank, world_size)));
  for (const int64_t f : files) {
    for (int64_t i = first[f]; i < first[f + 1]; ++i) {
      if (whole || i % world_size == rank) stream.push_back(i);
    }
  }
  if (!shuffle || layout.shuffle_buffer <= 1) return stream;

  // The shuffle buffer: fill it, then for each arriving record emit a random slot's record
  // and put the new one in its place; at the end drain the buffer in random order.
  Rng rng = Rng::keyed(seed, "shuffle_buffer", e, static_cast<uint64_t>(rank));
  const size_t capacity = static_cast<size_t>(layout.shuffle_buffer);
  std::vector<int64_t> buffer, out;
  buffer.reserve(std::min(capacity, stream.size()));
  out.reserve(stream.size());
  for (const int64_t i : stream) {
    if (buffer.size() < capacity) {
      buffer.push_back(i);
      continue;
    }
    const size_t slot = static_cast<size_t>(rng.below(buffer.size()));
    out.push_back(buffer[slot]);
    buffer[slot] = i;
  }
  while (!buffer.empty()) {
    const size_t slot = static_cast<size_t>(rng.below(buffer.size()));
    out.push_back(buffer[slot]);
    buffer[slot] = buffer.back();
    buffer.pop_back();
  }
  return out;
}

}  // namespace lth::data::shards
