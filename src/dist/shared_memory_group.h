#pragma once
// Sums and barriers between the ranks of one machine through a POSIX shared-memory segment,
// instead of Gloo's TCP loopback. On a CPU node every Gloo all-reduce crosses the kernel
// twice per byte and wakes a transport thread per message; here a rank copies its tensor
// into its slot of the segment, waits for its peers at a futex barrier, and sums the slots
// itself: memory copies and one wake-up per call. It is what the trainer's gradient
// all-reduce uses whenever every rank runs on the same host (process_group.cpp decides;
// LTH_DIST_SHM=0 turns it off).
//
// Sums are taken in rank order, ((x0 + x1) + x2) + ..., on every rank: the same bits on
// all ranks, and the same bits as one process accumulating N micro-batches' gradients.
//
// Layout of the segment: a header (magic, world size, slot size), one cache line per rank
// (its barrier generation, the number of ranks sleeping on it, its pid and pid namespace),
// then two sets of one slot per rank. Consecutive calls alternate sets, so a rank may write
// its next slot while a slower peer still reads the previous call's result.
//
// Failures: a peer that does not arrive within the timeout, or whose process is gone (pids
// are checked every 100 ms while waiting, when all ranks share a pid namespace), makes the
// waiting rank throw PeerLost with the problem in one line. Segments that a killed job left
// in /dev/shm (its rank 0 died during set-up, before the name was removed) are removed by
// the next job's rank 0 once their creator's pid is gone.
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace lth::dist {

class PeerLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SharedMemoryOptions {
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  // Bytes of one rank's slot: larger tensors are reduced in chunks of this size. 0 = the
  // default, 2 MiB, reduced so that the whole segment stays within 32 MiB (containers often
  // give /dev/shm only 64 MiB).
  int64_t slot_bytes = 0;
};

class SharedMemoryGroup {
 public:
  // Rank 0: creates the segment `name` (a POSIX shm name such as "/lth-123-4af0") and
  // reserves its memory, so that a full /dev/shm fails here rather than with SIGBUS later.
  // Throws std::runtime_error naming the problem.
  static std::unique_ptr<SharedMemoryGroup> create(const std::string& name, const SharedMemoryOptions& options);
  // The other ranks: maps rank 0's segment; throws std::runtime_error when it is missing or
  // was made for another world size or slot size.
  static std::unique_ptr<SharedMemoryGroup> open(const std::string& name, const SharedMemoryOptions& options);

  SharedMemoryGroup(const SharedMemoryGroup&) = delete;
  SharedMemoryGroup& operator=(const SharedMemoryGroup&) = delete;
  ~SharedMemoryGroup();

  // Removes the segment's name once every rank has mapped it: the memory stays until the
  // last rank unmaps it, and a killed job leaves nothing behind in /dev/shm.
  void unlink_name();

  // Whether all_reduce_sum takes this tensor: on the CPU, of an arithmetic dtype.
  static bool supports(const torch::Tensor& t);
  // In-place sum over ranks; `t` contiguous, on the CPU, the same shape and dtype everywhere
  // (ranks that disagree on a chunk's size or dtype throw std::invalid_argument).
  void all_reduce_sum(torch::Tensor& t);
  void barrier();

  int64_t slot_bytes() const { return slot_bytes_; }

 private:
  struct Header;
  struct RankLine;

  SharedMemoryGroup(std::string name, const SharedMemoryOptions& options, int64_t slot_bytes, void* base,
                    size_t size);
  RankLine& line(int rank) const;
  std::byte* slot(int set, int rank) const;
  void publish_identity();
  void arrive_and_wait();
  void wait_for(int peer, uint32_t generation, std::chrono::steady_clock::time_point deadline);
  bool peer_is_gone(int peer) const;
  void reduce_chunk(std::byte* data, int64_t bytes, c10::ScalarType dtype);

  std::string name_;
  int rank_;
  int world_size_;
  std::chrono::milliseconds timeout_;
  int64_t slot_bytes_;
  void* base_;
  size_t size_;
  uint32_t generation_ = 0;  // barriers passed; the same count on every rank
  uint64_t calls_ = 0;       // chunks reduced; picks the slot set
  bool linked_ = false;      // rank 0 still owns the name
};

// The segment's size for these options: what /dev/shm must hold.
size_t shared_memory_bytes(int world_size, int64_t slot_bytes);

// The default slot size for a world of `world_size` local ranks (SharedMemoryOptions).
int64_t default_slot_bytes(int world_size);

}  // namespace lth::dist
