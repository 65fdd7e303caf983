#!/usr/bin/env bash
# Benchmark: virtio-blk reads through the whole device path (fake driver, transport,
# blk.c) side by side with plain preadv on the same host file, in one process
# (tests/bench/bench_blk.c): 1 MiB sequential reads (MiB/s) and 4 KiB random reads (IOPS),
# alternating rounds, CPU time per request. Prints the table and writes it to $out.
# usage: virtio_blk.sh BUILD_DIR [SECONDS_PER_ROUND] [ROUNDS] [OUT]
set -euo pipefail
build=$1
seconds=${2:-1}
rounds=${3:-9}
out=${4:-$build/bench/virtio-blk.txt}
bench=$build/tests/bench/bench-blk
mkdir -p "$(dirname "$out")"
[ -x "$bench" ] || { echo "$0: $bench not built" >&2; exit 1; }

# A 256 MiB image next to the build, read once so both paths hit the page cache.
image=$(mktemp "$build/bench/virtio-blk-image.XXXXXX")
trap 'rm -f "$image"' EXIT
head -c 256M /dev/urandom >"$image"
cat "$image" >/dev/null
{
	echo "virtio-blk vs preadv, same file (page cache), ${rounds} alternating rounds of ${seconds} s, medians;" \
		"$(date -u +%F) on $(uname -r), $(nproc) cores"
	"$bench" "$image" "$seconds" "$rounds"
} | tee "$out"
