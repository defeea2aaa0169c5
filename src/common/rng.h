#pragma once
// Deterministic random numbers keyed by what they are for.
//
// Every random choice in lth (init, shuffling, crops, flips, random pruning) draws from an
// Rng made by `Rng::keyed(seed, purpose, a, b)`, so that a result depends only on the
// seed and on *what* is being drawn (e.g. epoch and sample index), never on thread
// scheduling or on how many draws happened before. The generator is xoshiro256**,
// seeded through splitmix64; it is a small value type, cheap to create per sample.
#include <cstdint>
#include <string_view>

namespace lth {

class Rng {
 public:
  explicit Rng(uint64_t seed);
  // A generator for `purpose` (e.g. "shuffle", "crop"), further keyed by up to two indices.
  static Rng keyed(uint64_t seed, std::string_view purpose, uint64_t a = 0, uint64_t b = 0);

  uint64_t next_u64();
  double uniform();                          // [0, 1)
  double uniform(double low, double high);   // [low, high)
  uint64_t below(uint64_t n);                // uniform integer in [0, n), unbiased
  bool coin(double p_true = 0.5);

 private:
  uint64_t s_[4];
};

// Mixes a 64-bit value (splitmix64 finaliser); exposed for deriving seeds.
uint64_t mix64(uint64_t x);

}  // namespace lth
