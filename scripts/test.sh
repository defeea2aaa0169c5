#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
# The test binaries and the lth they run; the benchmarks build in .ci/run (or scripts/build.sh).
bash scripts/build.sh lth lth_tests
cd "${LTH_BUILD_DIR:-build}"
jobs=$(nproc)  # one test per core; no two multi-process dist tests at once (RESOURCE_LOCK)
echo "== test: $(ctest -N | sed -n 's/^Total Tests: //p') test suites (one process each), $jobs at a time (ctest prints each as it ends)"
start=$(date +%s)
ctest --output-on-failure -j"$jobs" --timeout 600
echo "== test: done in $(( $(date +%s) - start )) s"
