// Pruning by selection (pruning/top_select.h) against the rule it replaced: a full stable
// descending torch::sort of every candidate's score, kept up to round(remaining * keep).
// Masks must be equal exactly, ties included, for every strategy that selects by score.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/types.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common/rng.h"
#include "pruning/strategy.h"
#include "pruning/top_select.h"

namespace lth::pruning {
namespace {

// ------------------------------------------------------------------ the old rule, verbatim
// (strategy.cpp before selection): candidates = nonzero mask entries, flattened in name
// order; a stable descending sort of their scores; the first round(remaining * keep) kept.
using Score = std::function<torch::Tensor(const std::string&, const torch::Tensor&)>;

MaskSet reference_select(const std::vector<std::string>& names, const TensorMap& weights,
                         const MaskSet& previous, double keep_fraction, const Score& score,
                         MaskSet masks) {
  std::vector<torch::Tensor> positions, scores;
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (const auto& name : names) {
    const auto& mask = previous.at(name);
    auto alive = mask.flatten().cpu().nonzero().squeeze(1);
    positions.push_back(alive + offset);
    scores.push_back(score(name, weights.at(name).detach().cpu().to(torch::kFloat32).flatten())
                         .index_select(0, alive));
    offsets.push_back(offset);
    offset += mask.numel();
  }
  offsets.push_back(offset);
  const auto all_positions = torch::cat(positions);
  const auto all_scores = torch::cat(scores);
  const int64_t keep =
      std::llround(static_cast<double>(all_positions.numel()) * keep_fraction);
  auto order = std::get<1>(torch::sort(all_scores, /*stable=*/true, /*dim=*/0, /*descending=*/true));
  auto kept = all_positions.index_select(0, order.narrow(0, 0, keep));
  auto flat = torch::zeros({offset}, torch::kFloat32);
  flat.index_fill_(0, kept, 1.0);
  for (size_t i = 0; i < names.size(); ++i) {
    masks[names[i]] = flat.slice(0, offsets[i], offsets[i + 1])
                          .reshape(previous.at(names[i]).sizes())
                          .clone();
  }
  return masks;
}

MaskSet reference(const TensorMap& weights, const MaskSet& previous, double keep_fraction,
                  const Score& score, bool layerwise) {
  std::vector<std::string> names;
  for (const auto& [name, _] : previous) names.push_back(name);
  if (!layerwise) return reference_select(names, weights, previous, keep_fraction, score, {});
  MaskSet masks;
  for (const auto& name : names) {
    masks = reference_select({name}, weights, previous, keep_fraction, score, std::move(masks));
  }
  return masks;
}

const Score kAbs = [](const std::string&, const torch::Tensor& w) { return w.abs(); };
const Score kAsIs = [](const std::string&, const torch::Tensor& s) { return s; };

void expect_same(const MaskSet& got, const MaskSet& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [name, m] : want) {
    ASSERT_TRUE(got.count(name)) << what << ": no mask for " << name;
    const auto& g = got.at(name);
    EXPECT_EQ(g.scalar_type(), torch::kFloat32) << what << " " << name;
    EXPECT_EQ(g.sizes(), m.sizes()) << what << " " << name;
    EXPECT_TRUE(torch::equal(g, m))
        << what << ": " << name << " differs in "
        << g.ne(m).sum().item<int64_t>() << " of " << m.numel() << " entries (kept "
        << g.sum().item<int64_t>() << ", reference " << m.sum().item<int64_t>() << ")";
  }
}

// ------------------------------------------------------------------ random inputs
// Layers of assorted shapes, some larger than one selection block (16384), one all-pruned.
std::vector<std::pair<std::string, std::vector<int64_t>>> shapes() {
  return {{"a.weight", {16, 8, 3, 3}},   {"b.weight", {64, 32, 3, 3}}, {"c.weight", {7}},
          {"d.weight", {300, 100}},      {"e.weight", {1}},            {"f.weight", {50, 1, 2, 2}},
          {"g.weight", {128, 64, 1, 1}}, {"h.weight", {40, 1000}}};
}

enum class Values { Continuous, FewValues, SignedFewValues, OneValue, Narrow };

torch::Tensor draw(const std::vector<int64_t>& shape, Values kind, at::Generator& gen) {
  switch (kind) {
    case Values::Continuous:
      return torch::randn(shape, gen);
    case Values::FewValues:  // |w| from {0, 0.5, 1, 1.5}: masses of exact ties, signs mixed
      return (torch::randint(0, 4, shape, gen).to(torch::kFloat32) * 0.5) *
             (torch::randint(0, 2, shape, gen).to(torch::kFloat32) * 2 - 1);
    case Values::SignedFewValues: {  // scores of either sign, including -0 and +0
      auto v = torch::randint(-3, 4, shape, gen).to(torch::kFloat32) * 0.25;
      auto neg_zero = torch::randint(0, 2, shape, gen).to(torch::kBool) & v.eq(0);
      return torch::where(neg_zero, torch::full_like(v, -0.0), v);
    }
    case Values::OneValue:
      return torch::full(shape, -0.75f);
    case Values::Narrow: {  // distinct floats within one high-16-bit bin, with some ties
      auto steps = torch::randint(0, 200, shape, gen);
      return torch::full(shape, 1.0f) + steps.to(torch::kFloat32) * std::ldexp(1.0f, -23);
    }
  }
  return {};
}

struct Case {
  TensorMap weights;
  MaskSet masks;
};

// density < 0: the mask of "c.weight" is all zero and the others random with |density|.
Case make_case(uint64_t seed, Values kind, double density) {
  auto gen = at::detail::createCPUGenerator(seed);
  Case c;
  for (const auto& [name, shape] : shapes()) {
    c.weights[name] = draw(shape, kind, gen);
    if (density == 1.0) {
      c.masks[name] = torch::ones(shape);
    } else {
      c.masks[name] = torch::rand(shape, gen).lt(std::abs(density)).to(torch::kFloat32);
      if (density < 0 && name == "c.weight") c.masks[name].zero_();
    }
    c.weights[name].mul_(c.masks[name]);  // pruned entries are (signed) zeros, as after training
  }
  return c;
}

const std::vector<double> kFractions{1e-7, 1e-3, 0.05, 0.2, 0.5, 0.8, 0.95, 0.9999, 1.0};

TEST(SelectionMatchesSort, MagnitudeGlobalAndLayerwise) {
  uint64_t seed = 10;
  for (auto kind : {Values::Continuous, Values::FewValues, Values::OneValue, Values::Narrow}) {
    for (double density : {1.0, 0.8, 0.3, -0.5}) {
      const auto c = make_case(seed++, kind, density);
      for (double keep : kFractions) {
        const std::string what = "kind " + std::to_string(static_cast<int>(kind)) + " density " +
                                 std::to_string(density) + " keep " + std::to_string(keep);
        expect_same(prune("magnitude_global", {c.weights, c.masks, keep}),
                    reference(c.weights, c.masks, keep, kAbs, false), "global " + what);
        expect_same(prune("magnitude_layerwise", {c.weights, c.masks, keep}),
                    reference(c.weights, c.masks, keep, kAbs, true), "layerwise " + what);
      }
    }
  }
}

TEST(SelectionMatchesSort, ScoresOfAnySignWithTies) {  // prune_by_scores: SNIP, GraSP, SynFlow
  uint64_t seed = 100;
  for (auto kind : {Values::Continuous, Values::SignedFewValues, Values::OneValue, Values::Narrow}) {
    for (double density : {1.0, 0.6, -0.25}) {
      auto c = make_case(seed++, kind, density);
      auto neg = c.weights;  // GraSP negates its scores; pruned entries become -0
      for (auto& [_, s] : neg) s = s.neg();
      for (double keep : kFractions) {
        const std::string what = "kind " + std::to_string(static_cast<int>(kind)) + " density " +
                                 std::to_string(density) + " keep " + std::to_string(keep);
        expect_same(prune_by_scores(c.weights, c.masks, keep),
                    reference(c.weights, c.masks, keep, kAsIs, false), what);
        expect_same(prune_by_scores(neg, c.masks, keep),
                    reference(neg, c.masks, keep, kAsIs, false), "negated " + what);
      }
    }
  }
}

TEST(SelectionMatchesSort, RandomStrategiesUnchanged) {
  const auto c = make_case(7, Values::Continuous, 0.7);
  for (double keep : {0.01, 0.5, 1.0}) {
    for (bool layerwise : {false, true}) {
      const uint64_t seed = 3;
      // random_* scores: torch::rand per layer from a generator keyed by (seed, name), as
      // strategy.cpp draws them.
      const Score rand_scores = [&](const std::string& name, const torch::Tensor& w) {
        return torch::rand({w.numel()}, at::detail::createCPUGenerator(
                                            Rng::keyed(seed, "prune-random/" + name).next_u64()));
      };
      expect_same(prune(layerwise ? "random_layerwise" : "random_global",
                        {c.weights, c.masks, keep, seed}),
                  reference(c.weights, c.masks, keep, rand_scores, layerwise),
                  "random keep " + std::to_string(keep));
    }
  }
}

TEST(SelectionMatchesSort, EdgeCases) {
  // One layer; keep = 0 (round to zero), keep = all, a single candidate, no candidate.
  TensorMap w{{"x", torch::tensor({0.5f, -2.0f, 0.5f, 1.0f, -0.5f})}};
  MaskSet ones{{"x", torch::ones({5})}};
  for (double keep : {0.01, 0.1, 0.2, 0.4, 0.5, 0.6, 0.99, 1.0}) {
    expect_same(prune("magnitude_global", {w, ones, keep}), reference(w, ones, keep, kAbs, false),
                "one layer keep " + std::to_string(keep));
  }
  EXPECT_EQ(prune("magnitude_global", {w, ones, 0.01}).at("x").sum().item<int64_t>(), 0);
  const auto ties = prune("magnitude_global", {w, ones, 0.6}).at("x");  // 2, then first 0.5 of three
  EXPECT_TRUE(torch::equal(ties, torch::tensor({1.0f, 1.0f, 0.0f, 1.0f, 0.0f})));

  MaskSet one{{"x", torch::tensor({0.0f, 0.0f, 0.0f, 1.0f, 0.0f})}};
  expect_same(prune("magnitude_global", {w, one, 0.6}), reference(w, one, 0.6, kAbs, false), "single");
  MaskSet none{{"x", torch::zeros({5})}};
  EXPECT_EQ(prune("magnitude_global", {w, none, 1.0}).at("x").sum().item<int64_t>(), 0);
  EXPECT_EQ(prune("magnitude_layerwise", {w, none, 0.5}).at("x").sum().item<int64_t>(), 0);

  // Infinities, the largest finite floats, subnormals and zeros of both signs.
  const float inf = std::numeric_limits<float>::infinity();
  const float big = std::numeric_limits<float>::max(), tiny = std::numeric_limits<float>::denorm_min();
  TensorMap s{{"p", torch::tensor({-inf, inf, big, -big, tiny, -tiny, 0.0f, -0.0f, 0.0f, inf, -0.0f})},
              {"q", torch::tensor({-0.0f, tiny, -inf, 1.0f, -1.0f, big, 0.0f})}};
  MaskSet all{{"p", torch::ones({11})}, {"q", torch::ones({7})}};
  for (int keep = 0; keep <= 18; ++keep) {
    const double f = (keep + 0.25) / 18.0 > 1.0 ? 1.0 : (keep + 0.25) / 18.0;
    expect_same(prune_by_scores(s, all, f), reference(s, all, f, kAsIs, false),
                "extremes keep " + std::to_string(keep));
    expect_same(prune("magnitude_global", {s, all, f}), reference(s, all, f, kAbs, false),
                "extremes |.| keep " + std::to_string(keep));
  }

  // NaN scores rank above +inf and tie among themselves, as torch::sort orders them.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  TensorMap n{{"n", torch::tensor({1.0f, nan, inf, -nan, 2.0f, nan, -inf})}};
  MaskSet nall{{"n", torch::ones({7})}};
  for (double f : {0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0}) {
    expect_same(prune_by_scores(n, nall, f), reference(n, nall, f, kAsIs, false),
                "nan keep " + std::to_string(f));
    expect_same(prune("magnitude_global", {n, nall, f}), reference(n, nall, f, kAbs, false),
                "nan |.| keep " + std::to_string(f));
  }
}

TEST(SelectionMatchesSort, MasksOfOtherTypesAndDevicesOfTheInputs) {
  // Weights in float64 and masks as bool / float64 with non-0/1 entries: a candidate is any
  // nonzero mask entry, as nonzero() took it; the new masks are float32 0/1.
  auto c = make_case(55, Values::FewValues, 0.6);
  MaskSet weird;
  TensorMap doubles;
  int i = 0;
  for (const auto& [name, m] : c.masks) {
    if (i % 3 == 0) weird[name] = m.to(torch::kBool);
    else if (i % 3 == 1) weird[name] = m.to(torch::kFloat64) * -3.5;
    else weird[name] = m;
    doubles[name] = c.weights.at(name).to(torch::kFloat64);
    ++i;
  }
  for (double keep : {0.1, 0.5, 0.9}) {
    expect_same(prune("magnitude_global", {doubles, weird, keep}),
                reference(doubles, weird, keep, kAbs, false), "weird keep " + std::to_string(keep));
  }
  // Non-contiguous weights and masks (channels-last kernels) are read in logical order.
  TensorMap cl;
  MaskSet clm;
  for (const auto& [name, wt] : c.weights) {
    cl[name] = wt.dim() == 4 ? wt.contiguous(at::MemoryFormat::ChannelsLast) : wt;
    clm[name] = c.masks.at(name).dim() == 4
                    ? c.masks.at(name).contiguous(at::MemoryFormat::ChannelsLast)
                    : c.masks.at(name);
  }
  expect_same(prune("magnitude_global", {cl, clm, 0.5}), reference(c.weights, c.masks, 0.5, kAbs, false),
              "channels-last");
}

// ------------------------------------------------------------------ both ways, many threads
// The helper directly, on inputs large enough for a strided sample (stride > 1) and many
// blocks per thread: the sampled bracket and the histograms both give the sort's masks.
using detail::Path;
using detail::ScoredTensor;

std::function<int64_t(int64_t)> fraction(double keep) {
  return [keep](int64_t n) { return std::llround(static_cast<double>(n) * keep); };
}

std::vector<torch::Tensor> reference_keep_top(const std::vector<ScoredTensor>& ts, double keep) {
  TensorMap w;
  MaskSet m;
  std::map<std::string, bool> magnitude;
  for (size_t i = 0; i < ts.size(); ++i) {
    const std::string name = "t" + std::to_string(100 + i);  // names sort in input order
    w[name] = ts[i].scores.reshape(ts[i].mask.sizes());
    m[name] = ts[i].mask;
    magnitude[name] = ts[i].magnitude;
  }
  const Score score = [&](const std::string& name, const torch::Tensor& s) {
    return magnitude.at(name) ? s.abs() : s;
  };
  const auto masks = reference(w, m, keep, score, false);
  std::vector<torch::Tensor> out;
  for (const auto& [_, v] : masks) out.push_back(v);
  return out;
}

// On 1 and 3 threads; returns the way Path::Auto took (the same on both, by construction).
Path expect_both_ways_exact(const std::vector<ScoredTensor>& ts, double keep, const std::string& what) {
  const auto want = reference_keep_top(ts, keep);
  const int before = at::get_num_threads();
  Path taken = Path::Auto;
  for (int threads : {1, 3}) {
    at::set_num_threads(threads);
    const auto a = detail::keep_top(ts, fraction(keep), Path::Auto, &taken);
    const auto h = detail::keep_top(ts, fraction(keep), Path::Histogram);
    EXPECT_EQ(a.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_TRUE(torch::equal(a[i], want[i]))
          << what << " on " << threads << " threads ("
          << (taken == Path::Sample ? "sample" : "histogram") << "): tensor " << i << " differs in "
          << a[i].ne(want[i]).sum().item<int64_t>() << " entries";
      EXPECT_TRUE(torch::equal(h[i], want[i]))
          << what << " on " << threads << " threads (histogram forced): tensor " << i;
    }
  }
  at::set_num_threads(before);
  return taken;
}

std::vector<ScoredTensor> big_inputs(uint64_t seed, Values kind, double density, bool magnitude) {
  auto gen = at::detail::createCPUGenerator(seed);
  std::vector<ScoredTensor> ts;
  for (int64_t n : {90000, 7, 230000, 16384, 1}) {
    auto mask = density >= 1 ? torch::ones({n}) : torch::rand({n}, gen).lt(density).to(torch::kFloat32);
    ts.push_back({mask, draw({n}, kind, gen), magnitude});
  }
  return ts;
}

TEST(KeepTop, SampledBracketAndHistogramsBothMatchTheSort) {
  int sampled = 0, exact = 0;
  uint64_t seed = 300;
  for (auto kind : {Values::Continuous, Values::SignedFewValues, Values::Narrow, Values::OneValue}) {
    for (double density : {1.0, 0.7}) {
      const bool magnitude = seed % 2 == 0;
      const auto ts = big_inputs(seed++, kind, density, magnitude);
      for (double keep : {1e-5, 1e-4, 0.003, 0.2, 0.5, 0.8, 0.9999, 1.0}) {
        const auto taken = expect_both_ways_exact(
            ts, keep, "kind " + std::to_string(static_cast<int>(kind)) + " density " +
                          std::to_string(density) + " magnitude " + std::to_string(magnitude) +
                          " keep " + std::to_string(keep));
        (taken == Path::Sample ? sampled : exact)++;
        // Continuous scores: the sample brackets the threshold except where it holds nearly
        // nothing (a handful of candidates kept).
        if (kind == Values::Continuous && keep >= 0.003) {
          EXPECT_EQ(taken, Path::Sample) << keep;
        }
        // One value: the bracket holds every candidate, the histograms decide.
        if (kind == Values::OneValue) {
          EXPECT_EQ(taken, Path::Histogram) << keep;
        }
      }
    }
  }
  EXPECT_GT(sampled, 0);
  EXPECT_GT(exact, 0);
}

TEST(KeepTop, SampleThatMisleadsFallsBackToTheExactWay) {
  // Make exactly the sampled positions large: the sample puts the threshold among them, but
  // the top half also holds small ones.
  const int64_t n = int64_t{1} << 18, stride = detail::sample_stride(n);
  ASSERT_GT(stride, 1);
  auto scores = torch::rand({n}, at::detail::createCPUGenerator(8));
  scores.slice(0, stride / 2, n, stride).add_(10.0);
  const std::vector<ScoredTensor> ts{{torch::ones({n}), scores, false}};
  EXPECT_EQ(expect_both_ways_exact(ts, 0.5, "aliased sample"), Path::Histogram);
  // And the opposite: the sampled positions small, the others large.
  auto low = torch::rand({n}, at::detail::createCPUGenerator(9)).add_(10.0);
  low.slice(0, stride / 2, n, stride).sub_(10.0);
  EXPECT_EQ(expect_both_ways_exact({{torch::ones({n}), low, false}}, 0.9, "aliased sample, low"),
            Path::Histogram);
  // The positions between the sampled ones all equal to the median of the sampled ones: the
  // bracket looked narrow but holds nearly every candidate.
  auto tied = torch::full({n}, 0.5f);
  tied.slice(0, stride / 2, n, stride).copy_(torch::rand({(n - stride / 2 + stride - 1) / stride},
                                                         at::detail::createCPUGenerator(10)));
  EXPECT_EQ(expect_both_ways_exact({{torch::ones({n}), tied, false}}, 0.5, "tied between samples"),
            Path::Histogram);
  // Unaliased, the same data is bracketed by the sample.
  EXPECT_EQ(expect_both_ways_exact({{torch::ones({n}), torch::rand({n}), false}}, 0.5, "plain"),
            Path::Sample);
}

// Large enough for many blocks per thread, with the threshold inside a mass of ties spread
// over every block: the masks do not depend on the thread count.
TEST(SelectionThreads, SameMasksForEveryThreadCount) {
  auto gen = at::detail::createCPUGenerator(99);
  TensorMap w{{"big", torch::randint(0, 50, {1200000}, gen).to(torch::kFloat32)},
              {"mid", torch::randn({70000}, gen)}};
  MaskSet m{{"big", torch::rand({1200000}, gen).lt(0.8).to(torch::kFloat32)},
            {"mid", torch::ones({70000})}};
  TensorMap c{{"big", torch::randn({1200000}, gen)}, {"mid", torch::randn({70000}, gen)}};
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = prune("magnitude_global", {w, m, 0.37});
  const auto one_c = prune("magnitude_global", {c, m, 0.37});
  expect_same(one, reference(w, m, 0.37, kAbs, false), "1 thread, ties");
  expect_same(one_c, reference(c, m, 0.37, kAbs, false), "1 thread, continuous");
  for (int t : {2, 4, 7}) {
    at::set_num_threads(t);
    expect_same(prune("magnitude_global", {w, m, 0.37}), one, std::to_string(t) + " threads, ties");
    expect_same(prune("magnitude_global", {c, m, 0.37}), one_c, std::to_string(t) + " threads");
  }
  at::set_num_threads(before);
}

// The magnitude flag ranks by |scores| without materialising them.
TEST(KeepTop, MagnitudeFlagEqualsAbsoluteScores) {
  auto gen = at::detail::createCPUGenerator(5);
  auto s = torch::randint(-4, 5, {40000}, gen).to(torch::kFloat32);
  auto mask = torch::rand({40000}, gen).lt(0.5);
  const auto keep_half = [](int64_t n) { return n / 2; };
  auto a = detail::keep_top({{mask, s, true}}, keep_half);
  auto b = detail::keep_top({{mask, s.abs(), false}}, keep_half);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(torch::equal(a[0], b[0]));
  EXPECT_EQ(a[0].sum().item<int64_t>(), mask.sum().item<int64_t>() / 2);
}

}  // namespace
}  // namespace lth::pruning
