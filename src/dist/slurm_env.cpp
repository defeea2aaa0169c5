#include "dist/slurm_env.h"

#include <fmt/format.h>

#include <cctype>

#include "common/env.h"
#include "common/error.h"

namespace lth::dist {
namespace {

constexpr size_t kMaxHosts = size_t{1} << 20;

class HostlistParser {
 public:
  HostlistParser(const std::string& text, const std::string& variable) : text_(text), variable_(variable) {}

  std::vector<std::string> expand() {
    if (text_.empty()) fail("empty host list");
    std::vector<std::string> hosts;
    size_t begin = 0;
    int depth = 0;
    for (size_t i = 0; i <= text_.size(); ++i) {
      const char c = i < text_.size() ? text_[i] : ',';
      if (c == '[') {
        if (depth > 0) fail("nested '['");
        depth = 1;
      } else if (c == ']') {
        if (depth == 0) fail("']' without '['");
        depth = 0;
      } else if (c == ',' && depth == 0) {
        expand_entry(text_.substr(begin, i - begin), hosts);
        begin = i + 1;
      } else if (std::isspace(static_cast<unsigned char>(c)) || c == '\0') {
        fail("whitespace in host list");
      }
    }
    if (depth != 0) fail("unclosed '['");
    return hosts;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw UserError(fmt::format("environment variable {}={}: malformed Slurm host list ({})", variable_, text_, why));
  }

  // One entry: literal parts and bracket groups, expanded to every combination in order.
  void expand_entry(const std::string& entry, std::vector<std::string>& hosts) {
    if (entry.empty()) fail("empty entry");
    std::vector<std::vector<std::string>> parts;
    size_t count = 1;
    size_t i = 0;
    while (i < entry.size()) {
      if (entry[i] == '[') {
        const size_t close = entry.find(']', i);
        if (close == std::string::npos) fail("unclosed '['");
        parts.push_back(expand_group(entry.substr(i + 1, close - i - 1)));
        i = close + 1;
      } else {
        const size_t open = entry.find('[', i);
        const size_t end = open == std::string::npos ? entry.size() : open;
        parts.push_back({entry.substr(i, end - i)});
        i = end;
      }
      count *= parts.back().size();  // each factor <= kMaxHosts, checked right away
      if (count + hosts.size() > kMaxHosts) fail(fmt::format("more than {} hosts", kMaxHosts));
    }
    std::vector<std::string> expanded{""};
    for (const auto& choices : parts) {
      std::vector<std::string> next;
      next.reserve(expanded.size() * choices.size());
      for (const auto& head : expanded) {
        for (const auto& tail : choices) next.push_back(head + tail);
      }
      expanded = std::move(next);
    }
    hosts.insert(hosts.end(), expanded.begin(), expanded.end());
  }

  // "001-004,007" -> 001 002 003 004 007.
  std::vector<std::string> expand_group(const std::string& group) {
    if (group.empty()) fail("empty '[]'");
    std::vector<std::string> out;
    size_t begin = 0;
    while (begin <= group.size()) {
      size_t end = group.find(',', begin);
      if (end == std::string::npos) end = group.size();
      const std::string range = group.substr(begin, end - begin);
      if (range.empty()) fail("empty range in '[" + group + "]'");
      const size_t dash = range.find('-');
      const std::string lo_text = range.substr(0, dash);
      const std::string hi_text = dash == std::string::npos ? lo_text : range.substr(dash + 1);
      const uint64_t lo = number(lo_text, range);
      const uint64_t hi = number(hi_text, range);
      if (hi < lo) fail("reversed range '" + range + "'");
      if (hi - lo >= kMaxHosts || out.size() + (hi - lo + 1) > kMaxHosts) {
        fail(fmt::format("more than {} hosts", kMaxHosts));
      }
      // Slurm pads every number of a range to the width of its first bound (`[08-10]`).
      const size_t width = lo_text.size();
      for (uint64_t n = lo; n <= hi; ++n) out.push_back(fmt::format("{:0{}}", n, width));
      begin = end + 1;
    }
    return out;
  }

  uint64_t number(const std::string& digits, const std::string& range) const {
    if (digits.empty() || digits.size() > 18) fail("bad range '" + range + "'");
    for (const char c : digits) {
      if (!std::isdigit(static_cast<unsigned char>(c))) fail("bad range '" + range + "'");
    }
    return std::stoull(digits);
  }

  const std::string& text_;
  const std::string& variable_;
};

}  // namespace

std::vector<std::string> expand_hostlist(const std::string& hostlist, const std::string& variable) {
  return HostlistParser(hostlist, variable).expand();
}

uint16_t slurm_port(uint64_t job_id) { return static_cast<uint16_t>(15000 + job_id % 10000); }

std::optional<SlurmRank> read_slurm_rank() {
  const auto procid = env_value("SLURM_PROCID");
  const auto ntasks = env_value("SLURM_NTASKS");
  if (!procid || !ntasks) return std::nullopt;
  SlurmRank r;
  r.world_size = static_cast<int>(parse_env_int("SLURM_NTASKS", *ntasks, 1, 1 << 20));
  r.rank = static_cast<int>(parse_env_int("SLURM_PROCID", *procid, 0, r.world_size - 1));
  r.local_rank = r.rank;
  if (const auto v = env_value("SLURM_LOCALID")) {
    r.local_rank = static_cast<int>(parse_env_int("SLURM_LOCALID", *v, 0, r.world_size - 1));
  }
  if (r.world_size == 1) return r;  // no rendezvous needed

  if (const auto addr = env_value("MASTER_ADDR")) {
    r.master_addr = *addr;
  } else {
    const char* name = "SLURM_JOB_NODELIST";
    auto list = env_value(name);
    if (!list) {
      name = "SLURM_STEP_NODELIST";
      list = env_value(name);
    }
    require(list.has_value(), fmt::format("SLURM_NTASKS={} but neither MASTER_ADDR nor SLURM_JOB_NODELIST "
                                          "(or SLURM_STEP_NODELIST) is set: no host for the rendezvous",
                                          r.world_size));
    r.master_addr = expand_hostlist(*list, name).front();
  }
  if (const auto port = env_value("MASTER_PORT")) {
    r.master_port = static_cast<uint16_t>(parse_env_int("MASTER_PORT", *port, 1, 65535));
  } else {
    const auto job = env_value("SLURM_JOB_ID");
    require(job.has_value(), fmt::format("SLURM_NTASKS={} but neither MASTER_PORT nor SLURM_JOB_ID is set: "
                                         "no port for the rendezvous",
                                         r.world_size));
    const auto id = parse_env_int("SLURM_JOB_ID", *job, 0, int64_t{1} << 62);
    r.master_port = slurm_port(static_cast<uint64_t>(id));
  }
  return r;
}

}  // namespace lth::dist
