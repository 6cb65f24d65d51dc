#!/usr/bin/env bash
# Fuzzes one harness with libFuzzer: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#   TARGET   frame (frame header, message decoder, handshake), ptx (PTX parser and interpreter),
#            fatbin (image classification, fatbin walk, LZ4/zstd payloads); see tests/fuzz/.
#   SECONDS  how long to fuzz (-max_total_time).
# Builds build-fuzz/ with clang (-DVGPU_FUZZ=ON) when needed, then runs the target on one core
# from its seed corpus (build-fuzz/fuzz/seeds/TARGET, made from the kernel corpus at build time)
# plus what earlier runs found (build-fuzz/fuzz/corpus/TARGET), and prints executions, coverage
# and findings. Findings (crash-*, leak-*, timeout-*, oom-*) are written to
# build-fuzz/fuzz/artifacts/TARGET/; once fixed, each goes into tests/fuzz/regressions/TARGET/,
# which CI replays. The exit status is non-zero when there are findings.
# Reproduce one: build-fuzz/fuzz/fuzz_TARGET FILE (or build/fuzz/fuzz_replay_TARGET FILE, no clang).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 frame|ptx|fatbin SECONDS [libFuzzer flags...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
target=$1 seconds=$2
shift 2
case "$target" in frame|ptx|fatbin) ;; *) usage ;; esac
[[ "$seconds" =~ ^[0-9]+$ ]] || usage

scripts/install-deps.sh --fuzz
export PATH="/usr/local/cuda/bin:$PATH"
dir=${VGPU_FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$dir/CMakeCache.txt" ]; then
  CC=clang-19 CXX=clang++-19 cmake -S . -B "$dir" -DVGPU_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$dir" --target "fuzz_$target" -j"$(nproc)"

out=$dir/fuzz
corpus=$out/corpus/$target
artifacts=$out/artifacts/$target
log=$out/$target.log
mkdir -p "$corpus" "$artifacts"
marker=$out/.$target.started
touch "$marker"
# -timeout: an input that runs for 25 s is a hang (a PTX launch has an instruction budget, so
# no input should come near it); -rss_limit_mb: the most a hostile image may make us hold.
set +e
# -max_len for ptx: parsing and running a 40 KiB module costs ten times a 4 KiB one, and the
# seeds include every kernel as a module of its own. Flags given on the command line come later
# and win.
defaults=()
[ "$target" = ptx ] && defaults+=(-max_len=16384)
"$out/fuzz_$target" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "${defaults[@]}" "$@" \
  "$corpus" "$out/seeds/$target" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
new=$(find "$artifacts" -type f -newer "$marker")
echo "fuzz $target: ${execs:-?} executions (${rate:-?} exec/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?} (inputs/bytes)"
if [ -n "$new" ]; then
  echo "fuzz $target: findings:"
  echo "$new"
  exit 1
fi
echo "fuzz $target: no findings"
exit "$status"
