// lth: lottery tickets at ImageNet scale. Dispatches to the subcommands in cmd_*.cpp and
// turns user errors into one line on stderr and a non-zero exit status.
#include <c10/util/Exception.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "common/command_log.h"
#include "common/error.h"

namespace {

// "lth: MESSAGE" with one write, so that the lines of ranks failing together under
// `lth launch` do not interleave within a line.
void report_error(const std::string& message) {
  const std::string line = "lth: " + message + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // Keep freed memory mapped: glibc would otherwise give every large activation and gradient
  // buffer back to the kernel on free and fault it in (zeroed) again on the next step. Measured
  // in docs/PERFORMANCE.md ("The allocator setting"): fewer page faults and a faster training
  // step; no effect on the input pipeline. Same as GLIBC_TUNABLES mmap_max=0, trim_threshold
  // unlimited; set before anything large is allocated.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);
#endif
  // Log lines and warnings on stderr, each warning once (stdout carries results only).
  const lth::CommandLog command_log;
  CLI::App app{"lth: iterative magnitude pruning with weight rewinding (lottery tickets), in C++"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lth 0.1");
  lth::cli::add_train_command(app);
  lth::cli::add_imp_command(app);
  lth::cli::add_report_command(app);
  lth::cli::add_info_command(app);
  lth::cli::add_eval_command(app);
  lth::cli::add_make_imagenet_command(app);
  lth::cli::add_make_shards_command(app);
  lth::cli::add_prepare_imagenet_command(app);
  lth::cli::add_data_command(app);
  lth::cli::add_launch_command(app);
  lth::cli::add_lmc_command(app);
  lth::cli::add_export_command(app);
  lth::cli::add_convert_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    report_error(std::string(e.what()) + " (see --help)");
    return 2;
  } catch (const lth::UserError& e) {
    report_error(e.what());
    return 2;
  } catch (const std::filesystem::filesystem_error& e) {
    report_error(e.what());  // permission denied, disk full, ...
    return 2;
  } catch (const c10::Error& e) {
    // A LibTorch check on user data (e.g. a shape mismatch in a hand-made checkpoint).
    report_error(e.what_without_backtrace());
    return 3;
  } catch (const std::exception& e) {
    report_error(std::string("internal error: ") + e.what());
    return 4;
  }
  return 0;
}
