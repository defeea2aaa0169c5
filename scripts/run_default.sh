#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job: `lth imp` on its embedded default
# (IMP with weight rewinding, LeNet-300-100 on Fashion-MNIST). Re-running resumes/reuses
# the run folder. Usage: scripts/run_default.sh [RUN_FOLDER]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh lth
./build/lth imp --save "${1:-runs/imp-fashion-mnist}"
