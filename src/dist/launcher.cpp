#include "dist/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "common/error.h"
#include "common/threads.h"

extern char** environ;

namespace lth::dist {
namespace {

using Clock = std::chrono::steady_clock;

// --- RAII helpers --------------------------------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::pair<Fd, Fd> make_pipe(int flags) {
  int fds[2];
  if (::pipe2(fds, flags) != 0) throw UserError(fmt::format("launch: pipe: {}", std::strerror(errno)));
  return {Fd(fds[0]), Fd(fds[1])};
}

// The self-pipe: signal handlers write the signal number, the supervision loop polls it.
std::atomic<int> g_signal_fd{-1};

extern "C" void on_signal(int signo) {
  const int saved = errno;
  const int fd = g_signal_fd.load();
  if (fd >= 0) {
    const auto byte = static_cast<unsigned char>(signo);
    [[maybe_unused]] const auto n = ::write(fd, &byte, 1);
  }
  errno = saved;
}

// Installs the handlers for SIGCHLD and the forwarded signals for its lifetime.
class SignalPipe {
 public:
  SignalPipe() {
    auto [read_end, write_end] = make_pipe(O_CLOEXEC | O_NONBLOCK);
    read_ = std::move(read_end);
    write_ = std::move(write_end);
    int expected = -1;
    if (!g_signal_fd.compare_exchange_strong(expected, write_.get())) {
      throw UserError("launch: already supervising ranks in this process");
    }
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < kSignals; ++i) {
      action.sa_flags = SA_RESTART | (kAll[i] == SIGCHLD ? SA_NOCLDSTOP : 0);
      ::sigaction(kAll[i], &action, &previous_[i]);
    }
  }
  ~SignalPipe() {
    for (size_t i = 0; i < kSignals; ++i) ::sigaction(kAll[i], &previous_[i], nullptr);
    g_signal_fd.store(-1);
  }
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  // Waits up to `timeout_ms` for a signal; returns the forwarded signals that arrived.
  std::vector<int> wait(int timeout_ms) {
    pollfd p{read_.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    std::vector<int> received;
    if (ready <= 0) return received;
    unsigned char buffer[64];
    ssize_t n;
    while ((n = ::read(read_.get(), buffer, sizeof buffer)) > 0) {
      for (ssize_t i = 0; i < n; ++i) {
        if (buffer[i] != SIGCHLD) received.push_back(buffer[i]);
      }
    }
    return received;
  }

  static sigset_t handled_set() {
    sigset_t set;
    sigemptyset(&set);
    for (const int s : kAll) sigaddset(&set, s);
    return set;
  }

  static constexpr int kAll[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  static constexpr size_t kSignals = sizeof(kAll) / sizeof(kAll[0]);

 private:
  Fd read_;
  Fd write_;
  struct sigaction previous_[kSignals] {};
};

// Blocks the handled signals in this thread for its lifetime (around fork).
class SignalBlock {
 public:
  SignalBlock() {
    const sigset_t set = SignalPipe::handled_set();
    ::pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~SignalBlock() { ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  SignalBlock(const SignalBlock&) = delete;
  SignalBlock& operator=(const SignalBlock&) = delete;
  const sigset_t& previous() const { return previous_; }

 private:
  sigset_t previous_;
};

// argv / envp arrays that stay valid while the object lives (built before fork).
class CStrings {
 public:
  explicit CStrings(std::vector<std::string> strings) : strings_(std::move(strings)) {
    for (auto& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  char* const* get() { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

// One rank's child process; killed (whole process group) and reaped if still running when
// destroyed, so no path out of launch() leaves a child behind.
class RankProcess {
 public:
  RankProcess(int rank, int local_rank, pid_t pid) : rank_(rank), local_rank_(local_rank), pid_(pid) {}
  ~RankProcess() {
    if (!running_) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  RankProcess(const RankProcess&) = delete;
  RankProcess& operator=(const RankProcess&) = delete;

  // Reaps the child if it has exited; true if it is still running.
  bool poll() {
    if (!running_) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      running_ = false;
      status_ = status;
    }
    return running_;
  }
  void signal(int signo) const {
    if (!running_) return;
    if (::kill(-pid_, signo) != 0) ::kill(pid_, signo);  // group, else the process itself
  }
  bool running() const { return running_; }
  bool failed() const { return !running_ && !(WIFEXITED(status_) && WEXITSTATUS(status_) == 0); }
  std::string describe() const {
    const std::string who = fmt::format("rank {} (local rank {}, pid {})", rank_, local_rank_, pid_);
    if (WIFEXITED(status_)) return fmt::format("{} exited with status {}", who, WEXITSTATUS(status_));
    if (WIFSIGNALED(status_)) {
      const int s = WTERMSIG(status_);
      const char* name = ::strsignal(s);
      return fmt::format("{} was killed by signal {} ({})", who, s, name ? name : "?");
    }
    return fmt::format("{} ended with wait status {}", who, status_);
  }

 private:
  int rank_;
  int local_rank_;
  pid_t pid_;
  bool running_ = true;
  int status_ = 0;
};

// The program's path: as given if it holds a '/', else the first executable on PATH.
std::string resolve_program(const std::string& name) {
  auto executable = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) {
    require(executable(name), fmt::format("launch: {}: not an executable file", name));
    return name;
  }
  const char* path_env = std::getenv("PATH");
  const std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    const std::string dir = end > begin ? path.substr(begin, end - begin) : ".";
    const std::string candidate = dir + "/" + name;
    if (executable(candidate)) return candidate;
    begin = end + 1;
  }
  throw UserError(fmt::format("launch: {}: command not found on PATH", name));
}

// `threads`: the OMP_NUM_THREADS a rank gets when the launcher's environment has none.
std::vector<std::string> rank_environment(const LaunchOptions& o, int local_rank, int threads) {
  std::vector<std::pair<std::string, std::string>> ours = {
      {"RANK", std::to_string(o.node_rank * o.nproc + local_rank)},
      {"WORLD_SIZE", std::to_string(o.nproc * o.nnodes)},
      {"LOCAL_RANK", std::to_string(local_rank)},
      {"LOCAL_WORLD_SIZE", std::to_string(o.nproc)},
      {"GROUP_RANK", std::to_string(o.node_rank)},
      {"MASTER_ADDR", o.master_addr},
      {"MASTER_PORT", std::to_string(o.master_port)},
  };
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (omp == nullptr || *omp == '\0') ours.emplace_back("OMP_NUM_THREADS", std::to_string(threads));
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& [key, value] : ours) replaced = replaced || key == name;
    if (!replaced) env.push_back(entry);
  }
  for (const auto& [key, value] : ours) env.push_back(key + "=" + value);
  return env;
}

// Forks one rank. The child leads its own process group, dies with the launcher, gets the
// default signal dispositions and the launcher's original signal mask, then execs.
pid_t spawn(const std::string& program, CStrings& argv, CStrings& envp, const sigset_t& original_mask) {
  auto [exec_read, exec_write] = make_pipe(O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw UserError(fmt::format("launch: fork: {}", std::strerror(errno)));
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    struct sigaction deflt {};
    deflt.sa_handler = SIG_DFL;
    sigemptyset(&deflt.sa_mask);
    for (const int s : SignalPipe::kAll) ::sigaction(s, &deflt, nullptr);
    ::sigprocmask(SIG_SETMASK, &original_mask, nullptr);
    ::execve(program.c_str(), argv.get(), envp.get());
    const int err = errno;
    [[maybe_unused]] const auto n = ::write(exec_write.get(), &err, sizeof err);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent, so kill(-pid) works at once
  exec_write.reset();
  int err = 0;
  ssize_t n;
  while ((n = ::read(exec_read.get(), &err, sizeof err)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof err)) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    throw UserError(fmt::format("launch: cannot execute {}: {}", program, std::strerror(err)));
  }
  return pid;
}

void validate(const LaunchOptions& o) {
  require(o.nproc >= 1 && o.nproc <= 4096, fmt::format("launch: --nproc {}: must be in [1, 4096]", o.nproc));
  // WORLD_SIZE = nproc * nnodes must fit what the ranks accept (process_group.cpp reads it
  // as an integer in [1, 2^20]); checked in 64 bits, so no product wraps negative.
  require(o.nnodes >= 1 && o.nnodes <= (1 << 20),
          fmt::format("launch: --nnodes {}: must be in [1, {}]", o.nnodes, 1 << 20));
  require(int64_t{o.nproc} * int64_t{o.nnodes} <= (1 << 20),
          fmt::format("launch: --nproc {} x --nnodes {}: more than {} ranks in all", o.nproc,
                      o.nnodes, 1 << 20));
  require(o.node_rank >= 0 && o.node_rank < o.nnodes,
          fmt::format("launch: --node_rank {}: must be in [0, {})", o.node_rank, o.nnodes));
  require(o.master_port >= 1 && o.master_port <= 65535,
          fmt::format("launch: --master_port {}: must be in [1, 65535]", o.master_port));
  require(!o.master_addr.empty(), "launch: --master_addr must not be empty");
  require(std::isfinite(o.grace_seconds) && o.grace_seconds >= 0 && o.grace_seconds <= 86400,
          fmt::format("launch: --grace_period {}: must be a number of seconds in [0, 86400]",
                      o.grace_seconds));
  require(!o.command.empty(), "launch: no command to run (put it after --)");
}

}  // namespace

void launch(const LaunchOptions& options) {
  validate(options);
  const std::string program = resolve_program(options.command.front());
  // Each rank's share of the cores the launcher may use (its affinity mask), as torchrun
  // caps OMP_NUM_THREADS: ranks that each took every core oversubscribed it nproc-fold.
  const int threads = std::max(1, hardware_threads() / options.nproc);
  SignalPipe signals;
  std::vector<std::unique_ptr<RankProcess>> ranks;
  {
    SignalBlock block;  // no handler runs in a child between fork and exec
    for (int local = 0; local < options.nproc; ++local) {
      CStrings argv(options.command);
      CStrings envp(rank_environment(options, local, threads));
      const pid_t pid = spawn(program, argv, envp, block.previous());
      ranks.push_back(std::make_unique<RankProcess>(options.node_rank * options.nproc + local, local, pid));
    }
  }

  const RankProcess* first_failure = nullptr;
  int interrupted_by = 0;
  std::optional<Clock::time_point> kill_at;
  auto signal_all = [&](int signo) {
    for (auto& r : ranks) r->signal(signo);
  };
  auto stop_all = [&] {
    signal_all(SIGTERM);
    kill_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(options.grace_seconds));
  };

  for (;;) {
    bool any_running = false;
    for (auto& r : ranks) {
      if (r->poll()) {
        any_running = true;
      } else if (r->failed() && first_failure == nullptr && interrupted_by == 0) {
        first_failure = r.get();
        stop_all();
      }
    }
    if (!any_running) break;
    if (kill_at && Clock::now() >= *kill_at) {
      signal_all(SIGKILL);
      kill_at.reset();
    }
    for (const int signo : signals.wait(100)) {
      if (interrupted_by == 0 && first_failure == nullptr) {
        interrupted_by = signo;
        signal_all(signo);
        kill_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(options.grace_seconds));
      } else {
        signal_all(SIGKILL);  // a second signal: stop now
      }
    }
  }

  if (first_failure != nullptr) {
    throw UserError(fmt::format("launch: {}; stopped the other ranks", first_failure->describe()));
  }
  if (interrupted_by != 0) {
    const char* name = ::strsignal(interrupted_by);
    throw UserError(fmt::format("launch: interrupted by signal {} ({}); forwarded it to every rank",
                                interrupted_by, name ? name : "?"));
  }
}

}  // namespace lth::dist
