#!/usr/bin/env bash
# Copies the C++ dependencies lth builds against (besides LibTorch), as this Debian machine
# has them installed, into <repo>/.gpu_deps/root, for a GPU machine that has CUDA PyTorch,
# CMake and a compiler but none of these libraries and no network (the `device` tool's
# machines: see /work/.library/device/README.md). Run it here, then name .gpu_deps in the
# device run's `carry`; bench/gpu/run.sh finds it there.
#
#   bench/gpu/bundle_deps.sh        (prints the bundle's size; must fit the 64 MiB carry)
#
# Header-only: CLI11, nlohmann-json, toml++ (plus its shared library), gloo's headers
# (used only if the CUDA LibTorch brings none). Shared libraries with their runtime
# dependencies: fmt, spdlog, libturbojpeg, libpng, plplot (and its cairo drivers). Static:
# GoogleTest. Debian 12 builds (glibc 2.36, libstdc++ of GCC 12, the C++11 string ABI),
# which run on newer distributions such as Ubuntu 24.04.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${DEST:-$REPO/.gpu_deps/root}
PACKAGES=(libfmt-dev libfmt9 libspdlog-dev libspdlog1.10 libcli11-dev nlohmann-json3-dev
          libtomlplusplus-dev libtomlplusplus3 libturbojpeg0-dev libturbojpeg0 libpng-dev libpng16-16
          libplplot-dev libplplot17 libcsirocsa0 libcsironn0 libqsastime0 libshp2 libhpdf-2.3.0
          libltdl7 libqhull-r8.0 plplot-driver-cairo libplplot-data libgtest-dev googletest libgloo-dev
          zlib1g-dev zlib1g)

if [ -d "$REPO/.git" ] && ! grep -qx '/.gpu_deps/' "$REPO/.git/info/exclude" 2>/dev/null; then
  echo '/.gpu_deps/' >> "$REPO/.git/info/exclude"
fi
rm -rf "$DEST"
mkdir -p "$DEST"
# copy FLAG FILE: FILE to the same path under DEST (-a: as is, a link stays a link; -L: its target).
copy() { mkdir -p "$DEST$(dirname "$2")" && cp "$1" "$2" "$DEST$2"; }
for p in "${PACKAGES[@]}"; do
  dpkg-query -W "$p" > /dev/null 2>&1 || { echo "bundle_deps.sh: package $p is not installed here" >&2; exit 1; }
  # Files and symlinks the package installed (no documentation, no folders).
  while IFS= read -r f; do
    case $f in /usr/share/doc/* | /usr/share/man/* | /usr/src/*) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then copy -a "$f"; fi
  done < <(dpkg -L "$p")
done
# The plplot drivers' own libraries (cairo, pango and their dependencies) are on any
# machine with a desktop stack, but not on a minimal one: copy what the driver links.
driver=$(find "$DEST" -name 'cairo.so' -path '*plplot*' | head -n 1)
if [ -n "$driver" ]; then
  ldd "$driver" | awk '/=> \//{print $3}' | while read -r lib; do
    case $(basename "$lib") in libc.so* | libm.so* | libstdc++.so* | libgcc_s.so* | libpthread.so* | libdl.so*) continue ;; esac
    [ -e "$DEST$lib" ] || copy -L "$lib"
  done
fi
du -sh "$DEST"
