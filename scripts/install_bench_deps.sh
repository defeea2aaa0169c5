#!/usr/bin/env bash
# Extra Debian packages for the benchmarks' peers (PyTorch, torchvision, PIL in Debian's
# /usr/bin/python3) on top of scripts/install_deps.sh. Not needed to build, test or run lth.
set -euo pipefail
bash "$(dirname "$0")/install_deps.sh"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  python3-torch python3-torchvision python3-pil python3-numpy
