#!/usr/bin/env bash
# scripts/gpu-check.sh: vgpu on a machine with an NVIDIA GPU (no network needed).
#
#   scripts/gpu-check.sh [--driver PATH] [--build DIR] [--quick]
#
# Starts gpu-server on the GPU's own driver and runs, through the stub (build/lib first in
# LD_LIBRARY_PATH, VGPU_SERVER pointing at that server):
#   corpus      the kernel corpus (build/bin/corpus_test), every kernel against a CPU reference
#   runtime     the nvcc-built runtime programs (build/tests/runtime/rt_*), static and shared cudart
#   e2e         the driver-API end-to-end program (memory, modules, launches)
#   nvml        NVML through build/lib/libnvidia-ml.so.1, checked against the CUDA driver
#   nvidia-smi  nvidia-smi (the default view and a CSV query) through the NVML stub
#   pytorch     a matmul, a few training steps of a small model, memory queries (CPU references)
#   cupy        a RawKernel, an elementwise kernel, a reduction and a matmul (NumPy references)
#   bench       vgpu-bench: null call, launch rate and copies through gpu-server vs in-process
#               on the native driver
# and prints a summary (PASS / FAIL / SKIP with the reason). Exit status 1 when a step failed,
# 2 when it could not start.
#
# --driver PATH   run gpu-server on this libcuda.so.1 instead of the GPU's (for example
#                 build/lib/emulated/libcuda.so.1, the emulated GPU: how this script runs on a
#                 machine without a GPU; the output says so). vgpu-bench then compares with
#                 in-process runs on the same library.
# --build DIR     the build tree (default: build, or VGPU_BUILD_DIR); built with cmake when it
#                 lacks gpu-server
# --quick         shorter runs (vgpu-bench --quick)
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
build=${VGPU_BUILD_DIR:-build}
driver=""
quick=0
while [ $# -gt 0 ]; do
    case "$1" in
    --driver) driver=${2:?--driver needs a path}; shift 2 ;;
    --build) build=${2:?--build needs a directory}; shift 2 ;;
    --quick) quick=1; shift ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (--help)" >&2; exit 2 ;;
    esac
done
case "$build" in /*) ;; *) build="$root/$build" ;; esac

say() { printf '%s\n' "$*"; }
hr() { say "------------------------------------------------------------------------------"; }

# ---- which driver ----------------------------------------------------------------------------
real_gpu=0
if [ -z "$driver" ]; then
    native=$(ldconfig -p 2>/dev/null | awk '$1 == "libcuda.so.1" { print $NF; exit }')
    if [ -z "$native" ] || ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
        say "gpu-check: no NVIDIA GPU here (no system libcuda.so.1, or nvidia-smi -L fails)."
        say "  To run the same checks on another driver, e.g. the emulated GPU:"
        say "    $0 --driver $build/lib/emulated/libcuda.so.1"
        exit 2
    fi
    driver=$native
    real_gpu=1
fi
case "$driver" in /*) ;; *) driver="$root/$driver" ;; esac
if [ ! -e "$driver" ]; then
    say "gpu-check: $driver does not exist"
    exit 2
fi
driver_dir=$(dirname "$driver")

hr
if [ $real_gpu = 1 ]; then
    say "gpu-check: REAL GPU, driver $driver"
    nvidia-smi -L | sed 's/^/  /'
else
    case "$driver" in
    */lib/emulated/*) what="the EMULATED GPU" ;;
    *) what="a driver given with --driver" ;;
    esac
    say "gpu-check: NOT A REAL GPU: gpu-server runs on $what ($driver)."
    say "  Every step runs as far as it can here; steps that need a GPU-only tool (PyTorch,"
    say "  CuPy, nvidia-smi) run only if it is installed, and are skipped otherwise."
fi
hr

# ---- build ---------------------------------------------------------------------------------------
if [ ! -x "$build/bin/gpu-server" ]; then
    say "gpu-check: building into $build (no gpu-server there yet)"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build "$build" -j"$(nproc)" >/dev/null || { say "gpu-check: the build failed"; exit 2; }
fi

# ---- the server ------------------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-gpu-check.XXXXXX") || exit 2
# Two emulated devices, so that the peer-access program has a peer (a real driver ignores this).
VGPU_EMU_DEVICES=2 "$build/bin/gpu-server" --listen 127.0.0.1:0 --port-file "$tmp/port" --driver "$driver" \
    --admin none 2>"$tmp/server.log" &
spid=$!
cleanup() {
    kill -TERM "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM HUP
for _ in $(seq 600); do
    [ -s "$tmp/port" ] && break
    if ! kill -0 "$spid" 2>/dev/null; then
        say "gpu-check: gpu-server did not start:"
        sed 's/^/  /' "$tmp/server.log"
        exit 2
    fi
    sleep 0.05
done
[ -s "$tmp/port" ] || { say "gpu-check: gpu-server did not listen"; exit 2; }
export VGPU_SERVER="127.0.0.1:$(cat "$tmp/port")"
say "gpu-server at $VGPU_SERVER: $(grep -m1 'driver' "$tmp/server.log" | sed 's/^vgpu\[[^]]*\] //')"

# The toolkit's libraries (libcudart.so for the -cudart shared programs) after the stub.
cuda_lib=$(sed -n 's/^CUDAToolkit_LIBRARY_DIR:PATH=//p' "$build/CMakeCache.txt" 2>/dev/null)
stub_path="$build/lib${cuda_lib:+:$cuda_lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
stub=(env LD_LIBRARY_PATH="$stub_path")

# ---- steps ---------------------------------------------------------------------------------------
results=()
failed=0
# step NAME SECONDS COMMAND...: runs it with a time limit (a shell function limits its own
# commands), output indented; PASS or FAIL.
step() {
    local name=$1 secs=$2
    shift 2
    hr
    say "[$name] $*"
    local t0=$(date +%s) rc
    if [ "$(type -t "$1")" = function ]; then
        "$@" >"$tmp/out" 2>&1
    else
        timeout "$secs" "$@" >"$tmp/out" 2>&1
    fi
    rc=$?
    sed 's/^/  /' "$tmp/out" | tail -n 60
    cat "$tmp/out" >>"$tmp/all.out"
    local dt=$(($(date +%s) - t0))
    if [ $rc = 0 ]; then
        results+=("PASS  $name (${dt}s)")
    else
        [ $rc = 124 ] && say "  (timed out after ${secs}s)"
        results+=("FAIL  $name (exit $rc, ${dt}s)")
        failed=1
    fi
    return $rc
}
skip() {
    hr
    say "[$1] skipped: $2"
    results+=("SKIP  $1: $2")
}

if [ -x "$build/bin/corpus_test" ]; then
    step corpus 1800 "${stub[@]}" "$build/bin/corpus_test"
else
    skip corpus "$build/bin/corpus_test not built"
fi

rt_progs=$(ls "$build"/tests/runtime/rt_*_static "$build"/tests/runtime/rt_*_shared 2>/dev/null)
if [ -n "$rt_progs" ]; then
    run_runtime() {
        local bad=0
        local gpus=2
        [ "$real_gpu" = 1 ] && gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
        for p in $rt_progs; do
            case "$(basename "$p")" in
            # In-process only (tests/runtime.cmake, RT_INPROC_PROGRAMS): a graph that captures
            # copies to client memory, and printf timed to the program's own synchronize.
            rt_graph_static | rt_graph_shared | rt_launch_static | rt_launch_shared)
                say "skip  $(basename "$p"): in-process only (tests/runtime.cmake)"
                continue ;;
            rt_peer_*)
                if [ "$gpus" -lt 2 ]; then
                    say "skip  $(basename "$p"): needs two GPUs ($gpus here)"
                    continue
                fi ;;
            esac
            if timeout 300 "${stub[@]}" "$p" >"$tmp/rt.out" 2>&1; then
                say "ok    $(basename "$p")"
            else
                say "FAIL  $(basename "$p"):"
                sed 's/^/        /' "$tmp/rt.out" | tail -n 20
                bad=1
            fi
        done
        return $bad
    }
    step runtime 3600 run_runtime
else
    skip runtime "no nvcc-built programs in $build/tests/runtime"
fi

if [ -x "$build/tests/remote_e2e_prog" ]; then
    step e2e 600 "${stub[@]}" "$build/tests/remote_e2e_prog" full "$build/tests/remote_kernels"
else
    skip e2e "$build/tests/remote_e2e_prog not built"
fi

if [ -x "$build/tests/remote_nvml_prog" ]; then
    step nvml 300 "${stub[@]}" "$build/tests/remote_nvml_prog" info
else
    skip nvml "$build/tests/remote_nvml_prog not built"
fi

if command -v nvidia-smi >/dev/null 2>&1; then
    smi=$(command -v nvidia-smi)
    run_smi() {
        # Symbols nvidia-smi binds that the stub lacks would end it at their first call.
        if command -v nm >/dev/null 2>&1; then
            nm -D --undefined-only "$smi" 2>/dev/null | awk '{ print $NF }' | grep '^nvml' | sort -u >"$tmp/smi.want"
            nm -D --defined-only "$build/lib/libnvidia-ml.so.1" | awk '{ print $NF }' | sort -u >"$tmp/smi.have"
            local missing
            missing=$(comm -23 "$tmp/smi.want" "$tmp/smi.have" | tr '\n' ' ')
            [ -n "$missing" ] && say "NOTE: nvidia-smi binds NVML functions the stub lacks: $missing"
        fi
        timeout 120 "${stub[@]}" "$smi" || return 1
        timeout 120 "${stub[@]}" "$smi" \
            --query-gpu=name,uuid,pci.bus_id,memory.total,memory.used,memory.free,utilization.gpu --format=csv ||
            return 1
        timeout 120 "${stub[@]}" "$smi" -L | grep -q 'GPU 0' || return 1
    }
    step nvidia-smi 300 run_smi
else
    skip nvidia-smi "nvidia-smi is not installed (remote_nvml_prog above checked the NVML stub)"
fi

if python3 -c 'import torch' >/dev/null 2>&1; then
    step pytorch 1200 env PYTORCH_NVML_BASED_CUDA_CHECK=1 LD_LIBRARY_PATH="$stub_path" \
        python3 "$root/scripts/gpu-check/torch_check.py"
else
    skip pytorch "PyTorch is not installed (python3 -c 'import torch' fails)"
fi

if python3 -c 'import cupy' >/dev/null 2>&1; then
    step cupy 1200 "${stub[@]}" python3 "$root/scripts/gpu-check/cupy_check.py"
else
    skip cupy "CuPy is not installed (python3 -c 'import cupy' fails)"
fi

if [ -x "$build/bin/vgpu-bench" ]; then
    bench_args=(--local-driver "$driver_dir")
    [ $quick = 1 ] && bench_args+=(--quick)
    if [ $real_gpu = 1 ]; then
        say "vgpu-bench: in-process on the native driver ($driver_dir) vs through gpu-server on it"
    fi
    step bench 1800 "$build/bin/vgpu-bench" "${bench_args[@]}"
else
    skip bench "$build/bin/vgpu-bench not built"
fi

# ---- the server's health and the summary -------------------------------------------------------
hr
if ! kill -0 "$spid" 2>/dev/null; then
    say "gpu-server died during the checks; its log:"
    tail -n 40 "$tmp/server.log" | sed 's/^/  /'
    failed=1
fi
# The stub names each driver (or NVML) function it does not forward once, in the program's log.
if grep -q 'is not supported' "$tmp/all.out" 2>/dev/null; then
    say "Functions the programs called that vgpu does not forward:"
    grep -o '[A-Za-z_0-9]* is not supported[^;]*' "$tmp/all.out" | sort | uniq -c | sort -rn | head -n 40 |
        sed 's/^/  /'
fi
hr
if [ $real_gpu = 1 ]; then
    say "Summary (real GPU, driver $driver):"
else
    say "Summary (NOT a real GPU: $driver):"
fi
for r in "${results[@]}"; do say "  $r"; done
exit $failed
