#pragma once
// What the benchmarks record about the machine beside each figure (bench/prune,
// bench/train_step): own CPU time, memory, and how much of the CPUs other processes used
// while a figure was taken, so that a busy machine shows in the results instead of
// silently lowering them. Linux only (/proc, getrusage).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace lth::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

inline double own_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

inline long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

inline double max_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

inline double current_rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// Busy CPU seconds of the whole machine since boot (user nice system irq softirq steal).
inline double busy_cpu_seconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  std::vector<long long> v;
  stat >> cpu;
  for (long long x; v.size() < 8 && stat >> x;) v.push_back(x);
  v.resize(8, 0);
  const long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  return static_cast<double>(busy) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

inline std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

inline int cpu_count() { return std::max(1, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))); }

// CPU used by other processes while a figure was taken: (machine busy - own) / (wall * ncpu).
class CpuWatch {
 public:
  CpuWatch() : t0_(Clock::now()), busy0_(busy_cpu_seconds()), own0_(own_cpu_seconds()) {}
  double foreign_fraction() const {
    const double wall = std::max(seconds_since(t0_), 1e-9);
    const double foreign = (busy_cpu_seconds() - busy0_) - (own_cpu_seconds() - own0_);
    return std::max(0.0, foreign) / (wall * cpu_count());
  }
  double own_cpu() const { return own_cpu_seconds() - own0_; }
  nlohmann::json report() const {
    return {{"wall_s", round_to(seconds_since(t0_), 1)},
            {"foreign_cpu_frac", round_to(foreign_fraction(), 3)},
            {"loadavg_end", loadavg()}};
  }

 private:
  Clock::time_point t0_;
  double busy0_, own0_;
};

// Waits (up to max_wait s) until other processes use < 10% of the CPUs, as the Python peers
// do; returns the last measured share.
inline double wait_quiet(double max_wait) {
  const auto t0 = Clock::now();
  auto sample = [] {
    CpuWatch w;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    return w.foreign_fraction();
  };
  double frac = sample();
  while (frac >= 0.10 && seconds_since(t0) < max_wait) {
    std::fprintf(stderr, "# machine busy (%.0f%% of CPUs used by others); waiting\n", 100 * frac);
    std::this_thread::sleep_for(std::chrono::seconds(8));
    frac = sample();
  }
  return round_to(frac, 3);
}

}  // namespace lth::bench
