#!/usr/bin/env bash
# Build and run one libFuzzer target for a bounded time, starting from its committed seed
# corpus (tests/fuzz/corpus/TARGET, never written to). Exits non-zero on a crash, a leak, a
# sanitizer report or a hang, with the reproducer under $STRATUS_FUZZ_BUILD_DIR/artifacts.
# usage: tests/fuzz/run.sh TARGET SECONDS      e.g. tests/fuzz/run.sh virtq 60
# Needs clang with libFuzzer (Debian 12: clang, libclang-rt-14-dev; see packaging/deps.txt).
set -euo pipefail

if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
	echo "usage: $0 TARGET SECONDS" >&2
	exit 2
fi
target=$1
seconds=$2
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${STRATUS_FUZZ_BUILD_DIR:-$top/build-fuzz}
seeds=$top/tests/fuzz/corpus/$target

if ! command -v clang >/dev/null; then
	echo "$0: clang not found (install clang and libclang-rt-14-dev)" >&2
	exit 1
fi
if [ ! -d "$seeds" ]; then
	echo "$0: no seed corpus at $seeds" >&2
	exit 1
fi
CC=clang cmake -S "$top" -B "$build" -DSTRATUS_FUZZ=ON -DBUILD_TESTING=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target "fuzz_$target" -j "$(nproc)" >/dev/null

# New inputs go to a scratch corpus: the committed seeds stay as they are.
work=$(mktemp -d "${TMPDIR:-/tmp}/stratus-fuzz-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/artifacts"
# libFuzzer's progress lines go to a log; on failure its tail (the report) is printed.
log=$build/fuzz-$target.log
if ! ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
	"$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-max_len=8192 -print_final_stats=1 -artifact_prefix="$build/artifacts/" "$work" "$seeds" \
	>"$log" 2>&1; then
	tail -n 80 "$log" >&2
	echo "fuzz_$target: FAILED (full log: $log, reproducer under $build/artifacts)" >&2
	exit 1
fi
grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$log" || true
echo "fuzz_$target: ${seconds} s, no crash"
