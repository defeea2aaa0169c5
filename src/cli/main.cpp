// lth: lottery tickets at ImageNet scale. Dispatches to the subcommands in cmd_*.cpp and
// turns user errors into one line on stderr and a non-zero exit status.
#include <c10/util/Exception.h>

#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
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
  lth::cli::add_launch_command(app);
  lth::cli::add_lmc_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "lth: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const lth::UserError& e) {
    std::cerr << "lth: " << e.what() << "\n";
    return 2;
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << "lth: " << e.what() << "\n";  // permission denied, disk full, ...
    return 2;
  } catch (const c10::Error& e) {
    // A LibTorch check on user data (e.g. a shape mismatch in a hand-made checkpoint).
    std::cerr << "lth: " << e.what_without_backtrace() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "lth: internal error: " << e.what() << "\n";
    return 4;
  }
  return 0;
}
