#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job: `lth imp` on its embedded default
# (IMP with weight rewinding, LeNet-300-100 on Fashion-MNIST; 3 replicates, the reinit and
# random_pruning controls, best weights chosen on a 5,000-image hold-out). Re-running
# resumes/reuses the run folder. Usage: scripts/run_default.sh [RUN_FOLDER]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh lth
# The embedded default (holdout 5000), three replicates, the two classic controls.
echo "== run: lth imp, the embedded default (about 2-3 min on 2 cores; it prints each phase)"
./build/lth imp --replicates 3 --branches reinit,random_pruning --save "${1:-runs/imp-fashion-mnist}"
