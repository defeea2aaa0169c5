#include "dist/shared_memory_group.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>
#include <torch/types.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace lth::dist {

struct SharedMemoryGroup::Header {
  std::atomic<uint64_t> magic;
  uint32_t world_size;
  uint32_t reserved;
  int64_t slot_bytes;
};

// One cache line per rank, so that a rank's arrivals do not bounce its peers' lines.
struct alignas(64) SharedMemoryGroup::RankLine {
  std::atomic<uint32_t> generation;   // the last barrier this rank arrived at (a futex word)
  std::atomic<uint32_t> sleepers;     // peers in FUTEX_WAIT on `generation`
  std::atomic<int32_t> pid;
  std::atomic<uint64_t> pid_namespace;  // inode of /proc/self/ns/pid; 0 = unknown
  // What this rank's current chunk in each slot set holds (bytes and dtype, see
  // chunk_shape), so that ranks disagreeing on a collective fail instead of summing stale
  // bytes. One per set: a rank may already describe its next chunk (in the other set)
  // while a slower peer still checks this one.
  std::atomic<uint64_t> shape[2];
};

namespace {

constexpr uint64_t kMagic = 0x6c74682d73686d31;  // "lth-shm1"
constexpr size_t kLine = 64;
constexpr size_t kPage = 4096;
// Below this many bytes read per rank, every rank sums all slots itself (one barrier);
// above it, each rank sums one segment and gathers the others' (two barriers, 1/N the reads).
constexpr int64_t kDirectSumBytes = 4 << 20;
// How long a rank spins before it sleeps on the futex: short, because on a machine with
// as many ranks as cores a spinning rank takes the core its peer or loader needs.
constexpr auto kSpin = std::chrono::microseconds(50);
// While asleep, how often a waiting rank checks that its peer's process still exists.
constexpr auto kLivenessPeriod = std::chrono::milliseconds(100);

static_assert(sizeof(std::atomic<uint32_t>) == 4 && std::atomic<uint32_t>::is_always_lock_free,
              "futex words must be plain lock-free 32-bit atomics");

size_t data_offset(int world_size) {
  const size_t header = kLine * (1 + static_cast<size_t>(world_size));
  return (header + kPage - 1) / kPage * kPage;
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Shared (not FUTEX_PRIVATE) operations: the word lives in memory mapped by several processes.
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
  // EAGAIN (already changed), EINTR and ETIMEDOUT all send the caller back to its checks.
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

bool reached(uint32_t seen, uint32_t generation) {
  return static_cast<int32_t>(seen - generation) >= 0;  // modulo 2^32
}

// A chunk's size and dtype in one word.
uint64_t chunk_shape(int64_t bytes, c10::ScalarType dtype) {
  return (static_cast<uint64_t>(bytes) << 8) | static_cast<uint64_t>(static_cast<uint8_t>(dtype));
}

std::string describe_shape(uint64_t shape) {
  return fmt::format("{} bytes of {}", shape >> 8, c10::toString(static_cast<c10::ScalarType>(shape & 0xff)));
}

// Removes segments that earlier jobs of this machine left behind when their rank 0 was
// killed during set-up (after creating the name, before every rank had mapped it): names
// of our pattern, /lth-<port>-<pid>-<hex>, whose pid is gone and which are over a minute
// old. Best effort: any doubt leaves the name alone.
void remove_stale_segments() {
  std::error_code error;
  const auto now = std::filesystem::file_time_type::clock::now();
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", error)) {
    const auto name = entry.path().filename().string();
    int port = 0, pid = 0;
    char hex[17] = {};
    if (std::sscanf(name.c_str(), "lth-%d-%d-%16[0-9a-f]", &port, &pid, hex) != 3 || pid <= 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code time_error;
    const auto modified = entry.last_write_time(time_error);
    if (time_error || now - modified < std::chrono::minutes(1)) continue;
    ::shm_unlink(("/" + name).c_str());
  }
}

uint64_t pid_namespace_inode() {
  struct stat st{};
  if (::stat("/proc/self/ns/pid", &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

std::string errno_text(const std::string& what) {
  return fmt::format("{}: {}", what, std::strerror(errno));
}

}  // namespace

int64_t default_slot_bytes(int world_size) {
  constexpr int64_t kMax = 2 << 20, kMin = 64 << 10, kSegment = 32 << 20;
  const int64_t fit = kSegment / (2 * std::max(world_size, 1)) / static_cast<int64_t>(kPage) * kPage;
  return std::clamp(fit, kMin, kMax);
}

size_t shared_memory_bytes(int world_size, int64_t slot_bytes) {
  return data_offset(world_size) + 2 * static_cast<size_t>(world_size) * static_cast<size_t>(slot_bytes);
}

SharedMemoryGroup::SharedMemoryGroup(std::string name, const SharedMemoryOptions& options, int64_t slot_bytes,
                                     void* base, size_t size)
    : name_(std::move(name)), rank_(options.rank), world_size_(options.world_size), timeout_(options.timeout),
      slot_bytes_(slot_bytes), base_(base), size_(size) {}

std::unique_ptr<SharedMemoryGroup> SharedMemoryGroup::create(const std::string& name,
                                                             const SharedMemoryOptions& options) {
  if (options.world_size < 2 || options.rank != 0) {
    throw std::runtime_error("shared memory: rank 0 of at least 2 ranks creates the segment");
  }
  const int64_t slot = options.slot_bytes > 0 ? options.slot_bytes : default_slot_bytes(options.world_size);
  if (slot % static_cast<int64_t>(kPage) != 0) throw std::runtime_error("shared memory: slot size must be whole pages");
  const size_t size = shared_memory_bytes(options.world_size, slot);
  remove_stale_segments();
  const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) throw std::runtime_error(errno_text("cannot create " + name));
  // Reserve the pages now: ftruncate alone would let a full /dev/shm kill us with SIGBUS at
  // the first write. posix_fallocate returns the error instead of setting errno.
  const int reserve = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  void* base = reserve == 0 ? ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  const int map_errno = errno;
  ::close(fd);
  if (base == MAP_FAILED) {
    ::shm_unlink(name.c_str());
    throw std::runtime_error(fmt::format("cannot reserve {} bytes for {}: {}", size, name,
                                         std::strerror(reserve != 0 ? reserve : map_errno)));
  }
  std::unique_ptr<SharedMemoryGroup> group;
  try {
    group.reset(new SharedMemoryGroup(name, options, slot, base, size));
  } catch (...) {
    ::munmap(base, size);
    ::shm_unlink(name.c_str());
    throw;
  }
  group->linked_ = true;
  auto* header = static_cast<Header*>(base);
  header->world_size = static_cast<uint32_t>(options.world_size);
  header->slot_bytes = slot;
  group->publish_identity();
  header->magic.store(kMagic, std::memory_order_release);
  return group;
}

std::unique_ptr<SharedMemoryGroup> SharedMemoryGroup::open(const std::string& name,
                                                           const SharedMemoryOptions& options) {
  const int64_t slot = options.slot_bytes > 0 ? options.slot_bytes : default_slot_bytes(options.world_size);
  const size_t size = shared_memory_bytes(options.world_size, slot);
  const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) throw std::runtime_error(errno_text("cannot open " + name));
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    const auto problem = errno_text("cannot inspect " + name);
    ::close(fd);
    throw std::runtime_error(problem);
  }
  const bool sized = static_cast<size_t>(st.st_size) == size;
  void* base = sized ? ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  const int map_errno = errno;
  ::close(fd);
  if (!sized) throw std::runtime_error(fmt::format("{} is not the segment of {} ranks", name, options.world_size));
  if (base == MAP_FAILED) throw std::runtime_error(fmt::format("cannot map {}: {}", name, std::strerror(map_errno)));
  std::unique_ptr<SharedMemoryGroup> group;
  try {
    group.reset(new SharedMemoryGroup(name, options, slot, base, size));
  } catch (...) {
    ::munmap(base, size);
    throw;
  }
  const auto* header = static_cast<const Header*>(base);
  if (header->magic.load(std::memory_order_acquire) != kMagic ||
      header->world_size != static_cast<uint32_t>(options.world_size) || header->slot_bytes != slot) {
    throw std::runtime_error(fmt::format("{} is not the segment of {} ranks", name, options.world_size));
  }
  group->publish_identity();
  return group;
}

SharedMemoryGroup::~SharedMemoryGroup() {
  if (linked_) ::shm_unlink(name_.c_str());
  ::munmap(base_, size_);
}

void SharedMemoryGroup::unlink_name() {
  if (linked_) ::shm_unlink(name_.c_str());
  linked_ = false;
}

bool SharedMemoryGroup::supports(const torch::Tensor& t) {
  if (!t.defined() || !t.device().is_cpu()) return false;
  // Listed, not isFloatingType/isIntegralType: newer LibTorch adds dtypes (float8, unsigned
  // 16-64 bit) that CPU add may not sum.
  switch (t.scalar_type()) {
    case c10::ScalarType::Float:
    case c10::ScalarType::Double:
    case c10::ScalarType::Half:
    case c10::ScalarType::BFloat16:
    case c10::ScalarType::Byte:
    case c10::ScalarType::Char:
    case c10::ScalarType::Short:
    case c10::ScalarType::Int:
    case c10::ScalarType::Long:
      return true;
    default:
      return false;
  }
}

SharedMemoryGroup::RankLine& SharedMemoryGroup::line(int rank) const {
  static_assert(sizeof(RankLine) == kLine, "one cache line per rank");
  return *reinterpret_cast<RankLine*>(static_cast<std::byte*>(base_) + kLine * (1 + static_cast<size_t>(rank)));
}

std::byte* SharedMemoryGroup::slot(int set, int rank) const {
  const size_t index = static_cast<size_t>(set) * static_cast<size_t>(world_size_) + static_cast<size_t>(rank);
  return static_cast<std::byte*>(base_) + data_offset(world_size_) + index * static_cast<size_t>(slot_bytes_);
}

void SharedMemoryGroup::publish_identity() {
  auto& mine = line(rank_);
  mine.pid.store(static_cast<int32_t>(::getpid()), std::memory_order_relaxed);
  mine.pid_namespace.store(pid_namespace_inode(), std::memory_order_release);
}

bool SharedMemoryGroup::peer_is_gone(int peer) const {
  const auto& theirs = line(peer);
  const uint64_t ns = theirs.pid_namespace.load(std::memory_order_acquire);
  // Another pid namespace (another container on this host): its pids mean nothing here.
  if (ns == 0 || ns != pid_namespace_inode()) return false;
  const int32_t pid = theirs.pid.load(std::memory_order_relaxed);
  if (pid <= 0 || pid == ::getpid()) return false;
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  // Still in the process table: dead but not yet reaped by its parent counts as gone.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && (text[close + 2] == 'Z' || text[close + 2] == 'X');
}

void SharedMemoryGroup::wait_for(int peer, uint32_t generation, std::chrono::steady_clock::time_point deadline) {
  auto& theirs = line(peer);
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (int spin = 0;; ++spin) {
    if (reached(theirs.generation.load(std::memory_order_acquire), generation)) return;
    cpu_relax();
    if ((spin & 63) == 63 && Clock::now() - start > kSpin) break;
  }
  while (true) {
    // Announce the sleep before the last look, so that an arrival either is seen here or
    // sees the sleeper and wakes it (both sides sequentially consistent).
    theirs.sleepers.fetch_add(1, std::memory_order_seq_cst);
    const uint32_t seen = theirs.generation.load(std::memory_order_seq_cst);
    if (!reached(seen, generation)) {
      const auto left = deadline - Clock::now();
      futex_wait(&theirs.generation, seen,
                 std::max<std::chrono::nanoseconds>(std::min<std::chrono::nanoseconds>(left, kLivenessPeriod),
                                                    std::chrono::nanoseconds(0)));
    }
    theirs.sleepers.fetch_sub(1, std::memory_order_seq_cst);
    if (reached(theirs.generation.load(std::memory_order_acquire), generation)) return;
    if (Clock::now() >= deadline) throw PeerLost(fmt::format("rank {} did not arrive", peer));
    if (peer_is_gone(peer)) {
      // It may have arrived, finished its last collective and exited normally since the
      // look above: only a peer gone without arriving is lost.
      if (reached(theirs.generation.load(std::memory_order_acquire), generation)) return;
      throw PeerLost(fmt::format("rank {} exited", peer));
    }
  }
}

void SharedMemoryGroup::arrive_and_wait() {
  const uint32_t generation = ++generation_;
  auto& mine = line(rank_);
  mine.generation.store(generation, std::memory_order_seq_cst);
  if (mine.sleepers.load(std::memory_order_seq_cst) > 0) futex_wake_all(&mine.generation);
  // One deadline for the whole barrier, however many peers are late.
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (int peer = 0; peer < world_size_; ++peer) {
    if (peer != rank_) wait_for(peer, generation, deadline);
  }
}

void SharedMemoryGroup::barrier() { arrive_and_wait(); }

void SharedMemoryGroup::reduce_chunk(std::byte* data, int64_t bytes, c10::ScalarType dtype) {
  // Every rank arrives at this call's barrier only after it has finished reading the
  // previous call's slots, so alternating two sets lets a rank write before slower peers
  // have read: they read the other set.
  const int set = static_cast<int>(calls_++ % 2);
  std::memcpy(slot(set, rank_), data, static_cast<size_t>(bytes));
  const uint64_t shape = chunk_shape(bytes, dtype);
  line(rank_).shape[set].store(shape, std::memory_order_relaxed);  // published by the barrier's store
  arrive_and_wait();
  for (int r = 0; r < world_size_; ++r) {
    const uint64_t theirs = line(r).shape[set].load(std::memory_order_relaxed);
    if (theirs != shape) {
      throw std::invalid_argument(fmt::format("shared memory all-reduce: rank {} sums {} where rank {} sums {}",
                                              r, describe_shape(theirs), rank_, describe_shape(shape)));
    }
  }
  const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
  const int64_t numel = bytes / element;
  const auto options = torch::TensorOptions().dtype(dtype);
  auto view = [&](std::byte* base, int64_t begin, int64_t count) {
    return torch::from_blob(base + begin * element, {count}, options);
  };
  // out = ((slot_0 + slot_1) + slot_2) + ... over [begin, begin + count)
  auto sum_in_rank_order = [&](int64_t begin, int64_t count) {
    auto out = view(data, begin, count);
    torch::add_out(out, view(slot(set, 0), begin, count), view(slot(set, 1), begin, count));
    for (int r = 2; r < world_size_; ++r) out.add_(view(slot(set, r), begin, count));
  };
  if (world_size_ <= 2 || bytes * world_size_ <= kDirectSumBytes) {
    sum_in_rank_order(0, numel);
    return;
  }
  // Reduce-scatter, then all-gather: this rank sums its segment and publishes it in its own
  // slot (no peer reads that segment of this slot), then copies the others' segments.
  auto segment = [&](int r) { return std::pair<int64_t, int64_t>{numel * r / world_size_, numel * (r + 1) / world_size_}; };
  const auto [begin, end] = segment(rank_);
  if (end > begin) {
    sum_in_rank_order(begin, end - begin);
    std::memcpy(slot(set, rank_) + begin * element, data + begin * element, static_cast<size_t>((end - begin) * element));
  }
  arrive_and_wait();
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) continue;
    const auto [b, e] = segment(r);
    std::memcpy(data + b * element, slot(set, r) + b * element, static_cast<size_t>((e - b) * element));
  }
}

void SharedMemoryGroup::all_reduce_sum(torch::Tensor& t) {
  if (!supports(t) || !t.is_contiguous()) {
    throw std::invalid_argument("shared memory all-reduce: needs a contiguous CPU tensor of an arithmetic type");
  }
  if (world_size_ < 2 || t.numel() == 0) return;
  const int64_t element = static_cast<int64_t>(t.element_size());
  const int64_t chunk = slot_bytes_ / element * element;
  auto* data = static_cast<std::byte*>(t.data_ptr());
  const int64_t bytes = t.numel() * element;
  for (int64_t done = 0; done < bytes; done += chunk) {
    reduce_chunk(data + done, std::min(chunk, bytes - done), t.scalar_type());
  }
}

}  // namespace lth::dist
