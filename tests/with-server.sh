#!/bin/sh
# with-server.sh BUILD_DIR COMMAND [ARGS...]
#
# Runs COMMAND against a fresh gpu-server on the emulated GPU: starts
# BUILD_DIR/bin/gpu-server on a free loopback port and a Unix socket, runs COMMAND with
# VGPU_SERVER pointing at it (the TCP port; the Unix socket, so shared memory, when
# VGPU_TEST_TRANSPORT=shm) and BUILD_DIR/lib (the stub libcuda.so.1) first in LD_LIBRARY_PATH,
# then stops the server with SIGTERM. Exits with COMMAND's status, or 1 when the server failed to start, died while COMMAND
# ran, or did not stop cleanly.
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR COMMAND [ARGS...]" >&2
    exit 2
fi
build=$(cd "$1" && pwd) || exit 2
shift
server="$build/bin/gpu-server"
if [ ! -x "$server" ]; then
    echo "with-server.sh: $server not found (build the gpu-server target)" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-with-server.XXXXXX") || exit 1
portfile="$tmp/port"
"$server" --listen 127.0.0.1:0 --listen "unix:$tmp/gpu.sock" --port-file "$portfile" --driver emulated &
spid=$!
cleanup() {
    kill -TERM "$spid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup INT TERM HUP

# Wait for the port file (the server writes it atomically once it listens).
tries=0
while [ ! -s "$portfile" ]; do
    if ! kill -0 "$spid" 2>/dev/null; then
        wait "$spid"
        echo "with-server.sh: gpu-server exited before listening (status $?)" >&2
        rm -rf "$tmp"
        exit 1
    fi
    tries=$((tries + 1))
    if [ $tries -gt 600 ]; then
        echo "with-server.sh: gpu-server did not start listening" >&2
        cleanup
        exit 1
    fi
    sleep 0.05
done
port=$(cat "$portfile")

addr="127.0.0.1:$port"
if [ "${VGPU_TEST_TRANSPORT:-tcp}" = shm ]; then
    addr="unix:$tmp/gpu.sock"
fi
VGPU_SERVER="$addr" LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"
status=$?

if ! kill -0 "$spid" 2>/dev/null; then
    wait "$spid"
    echo "with-server.sh: gpu-server died while the command ran (status $?)" >&2
    rm -rf "$tmp"
    exit 1
fi
kill -TERM "$spid"
wait "$spid"
sstatus=$?
rm -rf "$tmp"
if [ $sstatus -ne 0 ]; then
    echo "with-server.sh: gpu-server exited with status $sstatus on SIGTERM" >&2
    exit 1
fi
exit $status
