#include "dist/process_group.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <ATen/core/grad_mode.h>
#include <torch/types.h>

#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>

#include "common/env.h"
#include "common/error.h"
#include "dist/shared_memory_group.h"
#include "dist/slurm_env.h"

namespace lth::dist {
namespace {

// First line of an exception's message, without LibTorch's backtrace.
std::string one_line(const std::exception& e) {
  std::string text;
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    text = c10_error->what_without_backtrace();
  } else {
    text = e.what();
  }
  const auto newline = text.find('\n');
  if (newline != std::string::npos) text.resize(newline);
  constexpr size_t kMax = 300;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}

// --- c10d communicator -------------------------------------------------------------------

class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<c10d::ProcessGroup> group,
                   const ProcessGroupEnv& env, torch::Device comm_device,
                   std::unique_ptr<SharedMemoryGroup> local)
      : store_(std::move(store)), group_(std::move(group)), local_(std::move(local)), rank_(env.rank),
        world_size_(env.world_size), timeout_(env.timeout), device_(comm_device) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  std::string transport() const override {
    if (local_) return "shared memory";
    return device_.is_cuda() ? "nccl" : "gloo";
  }

  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override {
    for_each_bucket(tensors, [&](torch::Tensor& flat) { reduce_now(flat); });
  }

  std::unique_ptr<PendingCollective> start_all_reduce_sum(torch::Tensor flat) override {
    // Through shared memory the sum runs on the caller's thread: it is deferred to wait(), so
    // the backward pass is never interrupted and each step meets its peers once, at the end.
    if (local_ && SharedMemoryGroup::supports(flat) && flat.is_contiguous()) {
      return std::make_unique<Deferred>(this, std::move(flat));
    }
    // Gloo reducing CUDA tensors is staged through host memory: no overlap to gain there.
    if (flat.device() != device_ || !flat.is_contiguous()) return Communicator::start_all_reduce_sum(flat);
    std::vector<torch::Tensor> bucket{std::move(flat)};
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = group_->allreduce(bucket, allreduce_options());
    } catch (const std::exception& e) {
      throw lost_contact("all_reduce", one_line(e));
    }
    return std::make_unique<Pending>(this, std::move(work));
  }

  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    require(root >= 0 && root < world_size_, fmt::format("broadcast: root {} is not a rank", root));
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.timeout = timeout_;
    for_each_bucket(tensors, [&](torch::Tensor& flat) {
      std::vector<torch::Tensor> bucket{flat};
      run("broadcast", [&] { return group_->broadcast(bucket, options); });
    });
  }

  void barrier() override {
    if (local_) {
      run_local("barrier", [&] { local_->barrier(); });
      return;
    }
    c10d::BarrierOptions options;
    options.timeout = timeout_;
    run("barrier", [&] { return group_->barrier(options); });
  }

 private:
  c10d::AllreduceOptions allreduce_options() const {
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    options.timeout = timeout_;
    return options;
  }

  // One contiguous tensor on the communication device, summed over ranks now.
  void reduce_now(torch::Tensor& flat) {
    if (local_ && SharedMemoryGroup::supports(flat)) {
      run_local("all_reduce", [&] { local_->all_reduce_sum(flat); });
      return;
    }
    std::vector<torch::Tensor> bucket{flat};
    run("all_reduce", [&] { return group_->allreduce(bucket, allreduce_options()); });
  }

  // Runs `op` once per dtype on one flat tensor on the communication device, then copies the
  // result back into the caller's tensors. A single contiguous tensor already on that device
  // is used in place, without a copy.
  void for_each_bucket(std::vector<torch::Tensor>& tensors, const std::function<void(torch::Tensor&)>& op) {
    at::NoGradGuard no_grad;
    std::map<c10::ScalarType, std::vector<size_t>> by_dtype;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].defined() && tensors[i].numel() > 0) by_dtype[tensors[i].scalar_type()].push_back(i);
    }
    for (const auto& [dtype, indices] : by_dtype) {
      if (indices.size() == 1) {
        auto& t = tensors[indices[0]];
        if (t.is_contiguous() && t.device() == device_) {
          op(t);
          continue;
        }
      }
      std::vector<torch::Tensor> views;
      views.reserve(indices.size());
      for (const auto i : indices) views.push_back(tensors[i].reshape({-1}).to(device_));
      auto flat = torch::cat(views);
      op(flat);
      int64_t offset = 0;
      for (const auto i : indices) {
        auto& t = tensors[i];
        t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
        offset += t.numel();
      }
    }
  }

  // A started all-reduce; waiting maps failures to the same one-line error as run().
  class Pending final : public PendingCollective {
   public:
    Pending(const C10dCommunicator* owner, c10::intrusive_ptr<c10d::Work> work)
        : owner_(owner), work_(std::move(work)) {}
    ~Pending() override {
      if (!work_) return;
      try {
        owner_->finish(*work_, "all_reduce");
      } catch (...) {  // a destructor must not throw; the caller is already unwinding
      }
    }
    void wait() override {
      auto work = std::move(work_);
      if (work) owner_->finish(*work, "all_reduce");
    }

   private:
    const C10dCommunicator* owner_;
    c10::intrusive_ptr<c10d::Work> work_;
  };

  // A shared-memory all-reduce, run when waited on. One dropped unwaited is not run: the
  // rank is unwinding from an error, and starting a collective its peers may never join
  // would only hold up its exit (they see its process gone instead). The communicator is
  // then out of step with its peers, so any later collective on it throws.
  class Deferred final : public PendingCollective {
   public:
    Deferred(C10dCommunicator* owner, torch::Tensor flat) : owner_(owner), flat_(std::move(flat)) {}
    ~Deferred() override {
      if (flat_.defined()) owner_->out_of_step_ = true;
    }
    void wait() override {
      if (!flat_.defined()) return;
      auto flat = std::move(flat_);
      owner_->reduce_now(flat);
    }

   private:
    C10dCommunicator* owner_;
    torch::Tensor flat_;
  };

  UserError lost_contact(const char* what, const std::string& problem) const {
    return UserError(fmt::format("rank {}: lost contact with peer during {} ({}) (timeout {} s); "
                                 "another rank has probably stopped: check its log",
                                 rank_, what, problem,
                                 std::chrono::duration_cast<std::chrono::seconds>(timeout_).count()));
  }

  // Waits for `work` within the timeout. On NCCL (no blocking wait) this only orders the
  // current stream after the collective; the host goes on.
  void finish(c10d::Work& work, const char* what) const {
    std::string problem;
    try {
      if (work.wait(timeout_)) return;
      problem = "did not complete";
    } catch (const std::exception& e) {
      problem = one_line(e);
    }
    throw lost_contact(what, problem);
  }

  void run(const char* what, const std::function<c10::intrusive_ptr<c10d::Work>()>& op) {
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = op();
    } catch (const std::exception& e) {
      throw lost_contact(what, one_line(e));
    }
    finish(*work, what);
  }

  void run_local(const char* what, const std::function<void()>& op) const {
    require(!out_of_step_, fmt::format("rank {}: {} after an abandoned collective: this rank is out of step "
                                       "with its peers (internal error)", rank_, what));
    try {
      op();
    } catch (const PeerLost& e) {
      throw lost_contact(what, e.what());
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;  // kept alive for the group's lifetime
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  std::unique_ptr<SharedMemoryGroup> local_;  // all ranks on this host, CPU tensors
  bool out_of_step_ = false;                  // a Deferred sum was dropped unrun
  int rank_;
  int world_size_;
  std::chrono::milliseconds timeout_;
  torch::Device device_;
};

// What makes two ranks able to share /dev/shm: the same machine (host name and boot id) and
// the same IPC namespace. A mismatch the check misses only fails the open, which falls back.
std::string host_identity() {
  std::array<char, 256> name{};
  ::gethostname(name.data(), name.size() - 1);
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  struct stat ipc{};
  const auto ipc_namespace = ::stat("/proc/self/ns/ipc", &ipc) == 0 ? static_cast<uint64_t>(ipc.st_ino) : 0;
  return fmt::format("{}|{}|{}", name.data(), boot, ipc_namespace);
}

// When every rank runs on this host and wants it (LTH_DIST_SHM), they map one
// shared-memory segment (rank 0 creates it) for their CPU sums and barriers; nullptr
// otherwise, or when any rank cannot map it (then all use Gloo, and the rank that failed
// says why on stderr). Every rank takes the same decision: each reads every rank's answers
// from the store, so ranks started with different LTH_DIST_SHM agree on Gloo.
std::unique_ptr<SharedMemoryGroup> join_shared_memory(c10d::Store& store, const ProcessGroupEnv& env) {
  auto key = [](const char* what, int rank) { return fmt::format("lth/shm/{}/{}", what, rank); };
  auto bytes = [](const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); };
  auto text = [](const std::vector<uint8_t>& value) { return std::string(value.begin(), value.end()); };
  const auto host = fmt::format("{}|shm={}", host_identity(), env.shared_memory ? 1 : 0);
  store.set(key("host", env.rank), bytes(host));
  bool agree = true;
  for (int r = 0; r < env.world_size; ++r) agree = text(store.get(key("host", r))) == host && agree;
  // Ranks on several machines, or some started with LTH_DIST_SHM=0.
  if (!agree || !env.shared_memory) return nullptr;
  SharedMemoryOptions options;
  options.rank = env.rank;
  options.world_size = env.world_size;
  options.timeout = env.timeout;
  std::unique_ptr<SharedMemoryGroup> group;
  std::string problem;
  if (env.rank == 0) {
    const auto name = fmt::format("/lth-{}-{}-{:08x}", env.master_port, ::getpid(), std::random_device{}());
    try {
      group = SharedMemoryGroup::create(name, options);
    } catch (const std::exception& e) {
      problem = e.what();
    }
    store.set("lth/shm/name", bytes(group ? name : ""));
  } else {
    const auto name = text(store.get("lth/shm/name"));
    try {
      if (!name.empty()) group = SharedMemoryGroup::open(name, options);
    } catch (const std::exception& e) {
      problem = e.what();
    }
  }
  store.set(key("ok", env.rank), bytes(group ? "1" : "0"));
  bool everyone = true;
  for (int r = 0; r < env.world_size; ++r) everyone = text(store.get(key("ok", r))) == "1" && everyone;
  // Every rank has mapped the segment or given up: its name can go.
  if (group) group->unlink_name();
  if (!problem.empty()) {
    fmt::print(stderr, "lth: rank {}: no shared memory between this machine's ranks ({}); collectives use Gloo\n",
               env.rank, problem);
  }
  return everyone ? std::move(group) : nullptr;
}

std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices(const ProcessGroupEnv& env) {
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  std::string name;
  for (size_t i = 0; i <= env.gloo_interfaces.size(); ++i) {
    if (i == env.gloo_interfaces.size() || env.gloo_interfaces[i] == ',') {
      if (!name.empty()) devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      name.clear();
    } else {
      name += env.gloo_interfaces[i];
    }
  }
  if (!devices.empty()) return devices;
  // All ranks on this machine: the loopback interface always works. Otherwise bind to the
  // address this host's name resolves to, as PyTorch does (GLOO_SOCKET_IFNAME overrides).
  if (is_loopback(env.master_addr)) {
    devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return devices;
}

// Makes the rank's GPU current so that kCUDA without an index means that GPU everywhere.
void select_cuda_device(torch::Device device) {
  if (!device.is_cuda() || !device.has_index()) return;
  if (c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA)) {
    c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);
  }
}

}  // namespace

ProcessGroupEnv read_process_group_env() {
  ProcessGroupEnv env;
  const auto world = env_value("WORLD_SIZE");
  if (world) env.world_size = static_cast<int>(parse_env_int("WORLD_SIZE", *world, 1, 1 << 20));
  if (const auto v = env_value("LTH_DIST_TIMEOUT")) {
    env.timeout = std::chrono::seconds(parse_env_int("LTH_DIST_TIMEOUT", *v, 1, 7 * 24 * 3600));
  }
  if (const auto v = env_value("LTH_DIST_SHM")) env.shared_memory = parse_env_int("LTH_DIST_SHM", *v, 0, 1) == 1;
  // A task of Slurm's `srun` (dist/slurm_env.h), unless torchrun-style variables are set.
  if (!world && !env_value("RANK")) {
    if (const auto slurm = read_slurm_rank(); slurm && slurm->world_size > 1) {
      env.world_size = slurm->world_size;
      env.rank = slurm->rank;
      env.local_rank = slurm->local_rank;
      env.master_addr = slurm->master_addr;
      env.master_port = slurm->master_port;
      if (const auto v = env_value("GLOO_SOCKET_IFNAME")) env.gloo_interfaces = *v;
      return env;
    }
  }
  if (env.world_size == 1) return env;
  const auto rank = env_value("RANK");
  require(rank.has_value(), fmt::format("WORLD_SIZE={} but RANK is not set (start ranks with `lth launch`)",
                                        env.world_size));
  env.rank = static_cast<int>(parse_env_int("RANK", *rank, 0, env.world_size - 1));
  env.local_rank = env.rank;
  if (const auto v = env_value("LOCAL_RANK")) {
    env.local_rank = static_cast<int>(parse_env_int("LOCAL_RANK", *v, 0, env.world_size - 1));
  }
  const auto addr = env_value("MASTER_ADDR");
  require(addr.has_value(), fmt::format("WORLD_SIZE={} but MASTER_ADDR is not set (start ranks with `lth launch`)",
                                        env.world_size));
  env.master_addr = *addr;
  const auto port = env_value("MASTER_PORT");
  require(port.has_value(), fmt::format("WORLD_SIZE={} but MASTER_PORT is not set (start ranks with `lth launch`)",
                                        env.world_size));
  env.master_port = static_cast<uint16_t>(parse_env_int("MASTER_PORT", *port, 1, 65535));
  if (const auto v = env_value("GLOO_SOCKET_IFNAME")) env.gloo_interfaces = *v;
  return env;
}

torch::Device rank_device(torch::Device requested, const ProcessGroupEnv& env) {
  if (requested.is_cuda() && !requested.has_index()) {
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  return requested;
}

CommunicatorPtr make_communicator(const ProcessGroupEnv& env, torch::Device device) {
  require(env.world_size >= 1 && env.rank >= 0 && env.rank < env.world_size,
          fmt::format("invalid rank {} of world size {}", env.rank, env.world_size));
  if (env.world_size == 1) return std::make_shared<Communicator>();
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(env.timeout);
  const auto seconds = env.timeout.count();
  device = rank_device(device, env);
  select_cuda_device(device);

  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions options;
    options.port = env.master_port;
    options.isServer = env.rank == 0;
    options.numWorkers = static_cast<size_t>(env.world_size);
    options.waitWorkers = true;
    options.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  } catch (const std::exception& e) {
    throw UserError(fmt::format("rank {}: cannot {} the rendezvous at {}:{} ({}) (timeout {} s)", env.rank,
                                env.rank == 0 ? "host" : "reach", env.master_addr, env.master_port,
                                one_line(e), seconds));
  }

  c10::intrusive_ptr<c10d::ProcessGroup> group;
  torch::Device comm_device = torch::kCPU;
  try {
#ifdef USE_C10D_NCCL
    if (device.is_cuda()) {
      // No blocking wait: Work::wait only orders the compute stream after the collective, so
      // the host never stalls on communication. A collective that fails or outlives the
      // timeout is caught by NCCL's asynchronous error handling: the group's watchdog aborts
      // the communicator and ends the process (its log names the collective and the timeout),
      // and `lth launch` then stops the other ranks. As PyTorch's DDP does by default.
      ::setenv("NCCL_ASYNC_ERROR_HANDLING", "1", /*overwrite=*/0);
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, options);
      comm_device = device;
    }
#endif
    if (!group) {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      options->devices = gloo_devices(env);
      group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
    }
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    throw UserError(fmt::format("rank {}: lost contact with peer while connecting the {} ranks through {}:{} "
                                "({}) (timeout {} s); are all ranks started, with the same MASTER_ADDR, "
                                "MASTER_PORT and WORLD_SIZE?",
                                env.rank, env.world_size, env.master_addr, env.master_port, one_line(e),
                                seconds));
  }
  std::unique_ptr<SharedMemoryGroup> local;
  if (comm_device.is_cpu()) {
    try {
      local = join_shared_memory(*store, env);
    } catch (const std::exception& e) {
      throw UserError(fmt::format("rank {}: lost contact with peer while setting up shared memory ({}) "
                                  "(timeout {} s)", env.rank, one_line(e), seconds));
    }
  }
  return std::make_shared<C10dCommunicator>(std::move(store), std::move(group), env, comm_device,
                                            std::move(local));
}

CommunicatorPtr make_communicator(torch::Device device) {
  return make_communicator(read_process_group_env(), device);
}

int64_t broadcast_from_root(Communicator& comm, int64_t value) {
  std::vector<torch::Tensor> v{torch::tensor({value}, torch::kInt64)};
  comm.broadcast(v, /*root=*/0);
  return v[0].item<int64_t>();
}

}  // namespace lth::dist
