#!/usr/bin/env bash
# Benchmark: virtio-vsock throughput through the Unix-socket backend with the in-process
# fake guest driver (tests/bench/bench_vsock.c), each direction, next to a plain Unix socket
# pair in the same run; best of RUNS. Target: each direction >= 70 % of the socket pair.
# Prints a table and writes it to $out.
# usage: virtio_vsock.sh BUILD_DIR [MIB] [RUNS] [OUT]
set -euo pipefail
build=$1
mib=${2:-1024}
runs=${3:-3}
out=${4:-$build/bench/virtio-vsock.txt}
bench=$build/tests/bench/bench-vsock
mkdir -p "$(dirname "$out")"

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for _ in $(seq "$runs"); do "$bench" "$mib" >>"$raw"; done
best() { awk -v n="$1" '$1 == n && $4 > b { b = $4 } END { printf "%.1f", b }' "$raw"; }
pair=$(best socketpair)
{
	echo "virtio-vsock throughput, $mib MiB per run, best of $runs ($(date -u +%F), $(nproc) cores)"
	echo
	echo "| path | MiB/s | vs socket pair |"
	echo "| --- | ---: | ---: |"
	echo "| Unix socket pair | $pair | 1.00 |"
	for c in vsock-host-to-guest vsock-guest-to-host; do
		v=$(best $c)
		echo "| $c | $v | $(awk -v a="$v" -v b="$pair" 'BEGIN { printf "%.2f", a / b }') |"
	done
} | tee "$out"
