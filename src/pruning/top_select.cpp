#include "pruning/top_select.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/types.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <type_traits>

#include "common/parallel.h"

namespace lth::pruning::detail {
namespace {

constexpr int64_t kBlock = int64_t{1} << 14;    // elements per block (the unit of tie order)
constexpr int64_t kGrain = 16;                  // at least this many blocks per thread
constexpr int64_t kMaxSamples = int64_t{1} << 16;  // positions sampled to bracket the threshold
constexpr double kSigmas = 5.0;                 // bracket half-width, in standard errors
constexpr uint32_t kBins = uint32_t{1} << 16;   // histogram bins per pass (16 bits each)

// A key with the order of the stable descending torch::sort: larger key = kept first.
template <bool Magnitude>
inline uint32_t key_of(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  if (Magnitude) u &= 0x7fffffffu;
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;  // NaN: above +inf, all NaNs equal
  u = u == 0x80000000u ? 0u : u;                     // -0 == +0
  const uint32_t key = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return nan ? 0xffffffffu : key;
}

struct Layer {
  const float* mask_f = nullptr;  // exactly one of mask_f / mask_b
  const bool* mask_b = nullptr;
  const float* scores = nullptr;
  bool magnitude = false;
  float* out = nullptr;
  int64_t numel = 0;
};

struct Block {
  size_t layer;
  int64_t begin, end;
};

// Calls f(magnitude, mask) with magnitude a std::bool_constant and mask the typed pointer, so
// that the loops inside f are compiled for each combination.
template <typename F>
decltype(auto) dispatch(const Layer& l, F&& f) {
  if (l.mask_f) {
    return l.magnitude ? f(std::true_type{}, l.mask_f) : f(std::false_type{}, l.mask_f);
  }
  return l.magnitude ? f(std::true_type{}, l.mask_b) : f(std::false_type{}, l.mask_b);
}

// Calls f(i, key) for each candidate i in [begin, end) of layer l, in order.
template <typename F>
void for_candidates(const Layer& l, int64_t begin, int64_t end, F&& f) {
  dispatch(l, [&](auto magnitude, const auto* mask) {
    using M = std::remove_cv_t<std::remove_pointer_t<decltype(mask)>>;
    for (int64_t i = begin; i < end; ++i) {
      if (mask[i] != M(0)) f(i, key_of<decltype(magnitude)::value>(l.scores[i]));
    }
  });
}

// ------------------------------------------------------------------ by a sampled bracket
// A strided sample of the candidates brackets the threshold: keys above `hi` are surely kept,
// keys below `lo` surely not. One pass over the data writes the masks for the sure ones and
// collects the few candidates in [lo, hi] (in position order); the threshold among those is
// found by nth_element and they are set afterwards. If the sample misled (the threshold is
// outside the bracket) or too many candidates fall inside it (masses of ties), returns false
// without a usable result and the histogram selection below decides instead.

struct Entry {
  uint32_t offset;  // within its block
  uint32_t key;
};

struct BlockCounts {
  int64_t alive = 0, sure = 0;
};

// One block of the bracketing pass: out = 1 for candidates with key > hi, else 0; the
// candidates with lo <= key <= hi appended to `found` in order. The loop over the data has no
// branch (the compiler vectorises it) and flags the bracket's candidates in `flags`; a scan of
// the flags, eight at a time, then picks out the few that are set.
template <bool Magnitude, typename M>
BlockCounts bracket_block(const M* __restrict mask, const float* __restrict scores,
                          float* __restrict out, int64_t n, uint32_t lo, uint32_t hi,
                          uint8_t* __restrict flags, std::vector<Entry>& found) {
  uint32_t alive = 0, sure = 0, inside = 0;  // n <= kBlock
  for (int64_t i = 0; i < n; ++i) {
    // (Written with ?: rather than bool arithmetic, which GCC 12 does not vectorise.)
    const uint32_t a = mask[i] != M(0) ? 1u : 0u;
    const uint32_t k = key_of<Magnitude>(scores[i]);
    const uint32_t above = k > hi ? a : 0u;
    const uint32_t in = (k >= lo && k <= hi) ? a : 0u;
    out[i] = above ? 1.0f : 0.0f;
    flags[i] = static_cast<uint8_t>(in);
    alive += a;
    sure += above;
    inside += in;
  }
  if (inside > 0) {
    found.reserve(inside);
    const auto take = [&](int64_t i) {
      found.push_back({static_cast<uint32_t>(i), key_of<Magnitude>(scores[i])});
    };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t word;
      std::memcpy(&word, flags + i, sizeof word);
      for (; word != 0; word &= word - 1) {  // each set flag is bit 0 of its byte
        take(i + __builtin_ctzll(word) / 8);
      }
    }
    for (; i < n; ++i) {
      if (flags[i]) take(i);
    }
  }
  return {alive, sure};
}

bool select_by_sample(const std::vector<Layer>& layers, const std::vector<Block>& blocks,
                      const std::function<int64_t(int64_t)>& keep_of) {
  int64_t total = 0;
  for (const auto& l : layers) total += l.numel;
  if (total == 0) return false;

  // 1. Sample: every stride-th position, as keys of the candidates among them.
  const int64_t stride = sample_stride(total);
  std::vector<uint32_t> sample;
  int64_t looked = 0;
  size_t li = 0;
  int64_t start = 0;  // global position of layers[li]
  for (int64_t p = stride / 2; p < total; p += stride, ++looked) {
    while (p >= start + layers[li].numel) start += layers[li++].numel;
    for_candidates(layers[li], p - start, p - start + 1,
                   [&](int64_t, uint32_t k) { sample.push_back(k); });
  }
  const auto s = static_cast<int64_t>(sample.size());
  if (s == 0) return false;
  const int64_t estimate = std::llround(static_cast<double>(s) * total / looked);
  const int64_t estimate_keep = keep_of(estimate);
  if (estimate <= 0 || estimate_keep <= 0) return false;
  const double p = std::min(1.0, static_cast<double>(estimate_keep) / estimate);
  const double margin = kSigmas * std::sqrt(s * p * (1 - p)) + 8;
  // Ranks are 1-based from the largest: the threshold is expected near rank p * s.
  const auto rank_hi = static_cast<int64_t>(std::floor(p * s - margin));
  const auto rank_lo = static_cast<int64_t>(std::ceil(p * s + margin));
  const auto kth_largest = [&](int64_t r) {
    std::nth_element(sample.begin(), sample.begin() + (r - 1), sample.end(), std::greater<>());
    return sample[r - 1];
  };
  const uint32_t hi = rank_hi < 1 ? 0xffffffffu : kth_largest(rank_hi);  // keys > hi: kept
  const uint32_t lo = rank_lo > s ? 0u : kth_largest(rank_lo);           // keys < lo: not
  // How many candidates the bracket will hold: more than a quarter of all (a mass of ties)
  // makes the histograms the cheaper way; during the pass, twice as many stops it.
  const auto in_sample = std::count_if(sample.begin(), sample.end(),
                                       [&](uint32_t k) { return k >= lo && k <= hi; });
  const double predicted = static_cast<double>(in_sample) * total / looked;
  if (predicted > total / 4.0) return false;
  const auto cap = static_cast<int64_t>(2 * predicted) + (int64_t{1} << 16);

  // 2. One pass: masks of the sure candidates, counts, and the bracket's candidates.
  const auto nblocks = static_cast<int64_t>(blocks.size());
  std::vector<std::vector<Entry>> bracket(blocks.size());
  std::vector<int64_t> alive(blocks.size(), 0), above(blocks.size(), 0);
  std::atomic<int64_t> collected{0};
  std::atomic<bool> overflow{false};
  lth::parallel_for(0, nblocks, kGrain, [&](int64_t b0, int64_t b1) {
    std::vector<uint8_t> flags(kBlock);
    for (int64_t b = b0; b < b1 && !overflow.load(std::memory_order_relaxed); ++b) {
      const auto& blk = blocks[b];
      const auto& l = layers[blk.layer];
      auto& found = bracket[b];
      const auto counts = dispatch(l, [&](auto magnitude, const auto* mask) {
        return bracket_block<decltype(magnitude)::value>(mask + blk.begin, l.scores + blk.begin,
                                                         l.out + blk.begin, blk.end - blk.begin,
                                                         lo, hi, flags.data(), found);
      });
      alive[b] = counts.alive;
      above[b] = counts.sure;
      const auto size = static_cast<int64_t>(found.size());
      if (collected.fetch_add(size, std::memory_order_relaxed) + size > cap) overflow = true;
    }
  });
  if (overflow) return false;

  // 3. The threshold among the bracket's candidates; the first ties by position kept.
  int64_t candidates = 0, sure = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    candidates += alive[b];
    sure += above[b];
  }
  const int64_t keep = keep_of(candidates);
  TORCH_CHECK(keep >= 0 && keep <= candidates, "keep_top: cannot keep ", keep, " of ", candidates);
  const int64_t in_bracket = collected.load();
  if (keep == 0 || sure >= keep || sure + in_bracket < keep) return false;  // outside the bracket
  std::vector<uint32_t> keys;
  keys.reserve(static_cast<size_t>(in_bracket));
  for (const auto& found : bracket) {
    for (const auto& e : found) keys.push_back(e.key);
  }
  const int64_t need = keep - sure;  // 1 <= need <= in_bracket
  std::nth_element(keys.begin(), keys.begin() + (need - 1), keys.end(), std::greater<>());
  const uint32_t t = keys[need - 1];
  int64_t ties = need;
  for (auto k : keys) ties -= k > t;
  for (size_t b = 0; b < blocks.size(); ++b) {
    float* out = layers[blocks[b].layer].out + blocks[b].begin;
    for (const auto& e : bracket[b]) {
      if (e.key > t) {
        out[e.offset] = 1.0f;
      } else if (e.key == t && ties > 0) {
        out[e.offset] = 1.0f;
        --ties;
      }
    }
  }
  return true;
}

// ------------------------------------------------------------------ by histograms
// Exact for every input: the high 16 bits of the keys, then the low 16 bits within the bin of
// the keep-th largest, give the threshold; then the masks are written, ties counted per block
// and the first of them kept by a prefix over the blocks.

// Histogram of bin(key) over the candidates whose key passes `select`, summed over all blocks
// (integer sums: the same for every thread count).
template <typename Select, typename Bin>
std::vector<int64_t> histogram(const std::vector<Layer>& layers, const std::vector<Block>& blocks,
                               Select select, Bin bin) {
  std::vector<int64_t> total(kBins, 0);
  std::mutex merge;
  lth::parallel_for(0, static_cast<int64_t>(blocks.size()), kGrain, [&](int64_t b0, int64_t b1) {
    std::vector<uint32_t> local(kBins, 0);
    int64_t pending = 0;
    const auto flush = [&] {
      std::lock_guard<std::mutex> lock(merge);
      for (uint32_t i = 0; i < kBins; ++i) total[i] += local[i];
      std::fill(local.begin(), local.end(), 0u);
      pending = 0;
    };
    for (int64_t b = b0; b < b1; ++b) {
      const auto& blk = blocks[b];
      for_candidates(layers[blk.layer], blk.begin, blk.end, [&](int64_t, uint32_t k) {
        if (select(k)) ++local[bin(k)];
      });
      pending += blk.end - blk.begin;
      if (pending > (int64_t{1} << 31)) flush();  // no bin can overflow 32 bits
    }
    flush();
  });
  return total;
}

// The bin, counted from the top, holding the k-th largest entry (1 <= k <= sum), and the
// number of entries in the bins above it.
std::pair<uint32_t, int64_t> bin_of_kth(const std::vector<int64_t>& hist, int64_t k) {
  int64_t above = 0;
  for (uint32_t b = kBins; b-- > 0;) {
    if (above + hist[b] >= k) return {b, above};
    above += hist[b];
  }
  TORCH_INTERNAL_ASSERT(false, "keep_top: k beyond the histogram");
  return {0, 0};
}

// out = 1 for candidates with key >= least (a 64-bit bound: 2^32 keeps none), else 0;
// returns the number of candidates with key == t.
template <bool Magnitude, typename M>
int64_t write_block(const M* __restrict mask, const float* __restrict scores, float* __restrict out,
                    int64_t n, uint64_t least, uint32_t t) {
  uint32_t ties = 0;  // n <= kBlock
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t a = mask[i] != M(0) ? 1u : 0u;
    const uint32_t k = key_of<Magnitude>(scores[i]);
    out[i] = (a != 0 && k >= least) ? 1.0f : 0.0f;
    ties += k == t ? a : 0u;
  }
  return ties;
}

void select_by_histogram(const std::vector<Layer>& layers, const std::vector<Block>& blocks,
                         const std::function<int64_t(int64_t)>& keep_of) {
  const auto nblocks = static_cast<int64_t>(blocks.size());
  const auto high = histogram(layers, blocks, [](uint32_t) { return true; },
                              [](uint32_t k) { return k >> 16; });
  int64_t candidates = 0;
  for (auto c : high) candidates += c;
  const int64_t keep = keep_of(candidates);
  TORCH_CHECK(keep >= 0 && keep <= candidates, "keep_top: cannot keep ", keep, " of ", candidates);
  if (keep == 0) {
    for (const auto& l : layers) std::fill(l.out, l.out + l.numel, 0.0f);
    return;
  }
  const auto [hbin, above_h] = bin_of_kth(high, keep);
  const auto low = histogram(
      layers, blocks, [h = hbin](uint32_t k) { return (k >> 16) == h; },
      [](uint32_t k) { return k & 0xffffu; });
  const auto [lbin, above_l] = bin_of_kth(low, keep - above_h);
  // The threshold key t is the keep-th largest: everything above it is kept, and `ties` of
  // the candidates equal to it (the first by position), of `ties_total`.
  const uint32_t t = (hbin << 16) | lbin;
  const int64_t ties = keep - above_h - above_l, ties_total = low[lbin];

  // Masks for key > t, or key >= t when every tie is kept; ties counted per block.
  const bool all_ties = ties == ties_total;
  const uint64_t least = all_ties ? uint64_t{t} : uint64_t{t} + 1;  // 2^32: none
  std::vector<int64_t> block_ties(blocks.size(), 0);
  lth::parallel_for(0, nblocks, kGrain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const auto& blk = blocks[b];
      const auto& l = layers[blk.layer];
      block_ties[b] = dispatch(l, [&](auto magnitude, const auto* mask) {
        return write_block<decltype(magnitude)::value>(mask + blk.begin, l.scores + blk.begin,
                                                       l.out + blk.begin, blk.end - blk.begin,
                                                       least, t);
      });
    }
  });
  if (all_ties) return;

  // The first `ties` candidates equal to t, by position.
  std::vector<int64_t> budget(blocks.size(), 0);
  int64_t left = ties;
  for (size_t b = 0; b < blocks.size() && left > 0; ++b) {
    budget[b] = std::min(left, block_ties[b]);
    left -= budget[b];
  }
  lth::parallel_for(0, nblocks, kGrain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      if (budget[b] == 0) continue;
      const auto& blk = blocks[b];
      const auto& l = layers[blk.layer];
      int64_t taken = 0;
      for_candidates(l, blk.begin, blk.end, [&](int64_t i, uint32_t k) {
        if (k == t && taken < budget[b]) {
          l.out[i] = 1.0f;
          ++taken;
        }
      });
    }
  });
}

}  // namespace

int64_t sample_stride(int64_t positions) {
  // Each sampled position costs about two cache misses, each candidate in the bracket a few
  // ns; the bracket narrows as 1/sqrt(samples). About positions / 256 samples, at least 1024
  // and at most 64 k, balances the two from one layer to all of ResNet-50.
  const int64_t samples = std::clamp<int64_t>(positions / 256, 1024, kMaxSamples);
  return std::max<int64_t>(1, positions / samples);
}

std::vector<torch::Tensor> keep_top(const std::vector<ScoredTensor>& tensors,
                                    const std::function<int64_t(int64_t)>& keep_of,
                                    Path path, Path* taken) {
  // Inputs as contiguous CPU buffers (held alive here), outputs allocated.
  std::vector<torch::Tensor> held, outs;
  std::vector<Layer> layers;
  std::vector<Block> blocks;
  for (const auto& t : tensors) {
    auto mask = t.mask.cpu();
    if (mask.scalar_type() != torch::kFloat32 && mask.scalar_type() != torch::kBool) mask = mask.ne(0);
    mask = mask.contiguous();
    auto s = t.scores.cpu().contiguous();
    TORCH_CHECK(s.scalar_type() == torch::kFloat32, "keep_top: scores must be float32");
    TORCH_CHECK(s.numel() == mask.numel(), "keep_top: ", s.numel(), " scores for a mask of ",
                mask.numel());
    auto out = torch::empty(mask.sizes(), torch::kFloat32);
    Layer l;
    if (mask.scalar_type() == torch::kFloat32) l.mask_f = mask.data_ptr<float>();
    else l.mask_b = mask.data_ptr<bool>();
    l.scores = s.data_ptr<float>();
    l.magnitude = t.magnitude;
    l.out = out.data_ptr<float>();
    l.numel = mask.numel();
    for (int64_t b = 0; b < l.numel; b += kBlock) {
      blocks.push_back({layers.size(), b, std::min(b + kBlock, l.numel)});
    }
    layers.push_back(l);
    held.push_back(mask);
    held.push_back(s);
    outs.push_back(out);
  }
  const bool sampled = path != Path::Histogram && select_by_sample(layers, blocks, keep_of);
  if (!sampled) select_by_histogram(layers, blocks, keep_of);
  if (taken) *taken = sampled ? Path::Sample : Path::Histogram;
  return outs;
}

}  // namespace lth::pruning::detail
