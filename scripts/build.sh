#!/usr/bin/env bash
# Configures and builds vgpu into build/ (extra arguments go to cmake's configure step,
# e.g. -DVGPU_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
cmake -S . -B "${VGPU_BUILD_DIR:-build}" "$@" >/dev/null
cmake --build "${VGPU_BUILD_DIR:-build}" -j"$(nproc)"
