#pragma once
// Internal to pruning/strategy.cpp (and its tests): keeps the highest scores among candidate
// positions spread over several tensors by selection instead of a full sort.
//
// The result is exactly that of the rule it replaced: flatten every tensor (row-major) and
// concatenate them in the given order; take the candidates (mask entry != 0); sort their
// scores with a stable descending torch::sort; keep the first `keep`. So equal scores go to
// the lower global position; -0 and +0 are equal; every NaN ranks above +inf (as torch::sort
// orders them) and NaNs tie among themselves.
//
// How: each float score maps to a 32-bit key with the same order (NaNs and zeros folded as
// above). A strided sample (about one position in 256, 1 k to 64 k of them) brackets the
// threshold, the keep-th largest key, within +-5 standard errors of its rank. One pass over
// the data then writes the masks of the candidates surely above or below the bracket and
// collects those inside it in position order (under 2 % of them on ResNet-50), among which
// nth_element finds the threshold; the first ties by position are kept. Where the sample
// misleads (the threshold falls outside the bracket) or the bracket would hold a quarter of
// the candidates or more (masses of ties), an exact histogram selection decides instead: the
// keys' high 16 bits, then the low 16 bits within the threshold's bin, then a pass writing the
// masks with the ties counted per fixed-size block and resolved by a prefix over the blocks.
// Every pass runs over fixed blocks with lth::parallel_for (common/parallel.h) on the configured
// intra-op threads, and only integer counts are combined across threads, so the masks depend neither on the
// thread count nor on which of the two ways decided.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace lth::pruning::detail {

struct ScoredTensor {
  torch::Tensor mask;      // CPU, any dtype and shape: candidates are the entries != 0
  torch::Tensor scores;    // CPU float32, as many elements as `mask`, same row-major order
  bool magnitude = false;  // rank by |scores| (without materialising it) instead of scores
};

enum class Path {
  Auto,       // the sampled bracket, the histograms where it cannot decide
  Sample,     // (reported only) the sampled bracket decided
  Histogram,  // the histograms only (tests)
};

// The sample looks at positions stride/2, stride/2 + stride, ... of the concatenated inputs,
// with this stride for that many positions in all (exposed for tests).
int64_t sample_stride(int64_t positions);

// keep_of(number of candidates) -> how many of them to keep, in [0, candidates]; a pure
// function (it may be called more than once, and with an estimate first).
// Returns, per input, a new CPU contiguous float32 0/1 tensor shaped like its mask; `taken`,
// if given, receives the way that decided (Sample or Histogram).
std::vector<torch::Tensor> keep_top(const std::vector<ScoredTensor>& tensors,
                                    const std::function<int64_t(int64_t)>& keep_of,
                                    Path path = Path::Auto, Path* taken = nullptr);

}  // namespace lth::pruning::detail
