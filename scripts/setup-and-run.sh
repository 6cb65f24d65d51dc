#!/usr/bin/env bash
# The README's first command: installs what is needed, builds, starts gpu-server (on the GPU when
# there is one, else on the emulated GPU), runs an unmodified CUDA program through the stub, then
# vgpu-bench (in-process emulated driver vs remote through gpu-server), and stops the server.
# Arguments go to vgpu-bench (e.g. --quick, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/install-deps.sh
echo "== building"
scripts/build.sh
build="$root/${VGPU_BUILD_DIR:-build}"

workdir=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

echo "== starting gpu-server"
VGPU_LOG=${VGPU_LOG:-info} "$build/bin/gpu-server" --listen 127.0.0.1:0 --port-file "$workdir/port" \
  2> >(sed 's/^/   [gpu-server] /' >&2) &
server_pid=$!
for _ in $(seq 100); do
  [ -s "$workdir/port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "gpu-server failed to start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$workdir/port" ] || { echo "gpu-server did not start listening" >&2; exit 1; }
export VGPU_SERVER="127.0.0.1:$(cat "$workdir/port")"
echo "   listening on $VGPU_SERVER"

# A plain `nvcc prog.cu` build (static CUDA runtime), run unmodified through the stub.
echo "== running an unmodified CUDA program (tests/runtime/rt_vector.cu, built by plain nvcc) through the stub"
LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$build/tests/runtime/rt_vector_static"

echo "== vgpu-bench"
"$build/bin/vgpu-bench" "$@"
