#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test with ctest.
# VGPU_SANITIZE=1 builds into build-asan/ with AddressSanitizer and UBSan instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ "${VGPU_SANITIZE:-0}" = 1 ]; then
  export VGPU_BUILD_DIR=build-asan
  scripts/build.sh -DVGPU_SANITIZE=ON
else
  scripts/build.sh
fi
cd "${VGPU_BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" --timeout 600
