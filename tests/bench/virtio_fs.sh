#!/usr/bin/env bash
# Benchmark: the virtio-fs device and its FUSE server (fake driver, transport, fs.c,
# vmm/fuse_*.c) side by side with what a native program does for the same work, on one host
# directory, in one process (tests/bench/bench_fs.c says exactly what each side does): stat
# of a name (cache=none: LOOKUP+GETATTR; cache=auto: LOOKUP), CREATE+WRITE+RELEASE,
# READDIRPLUS over 10,000 names, 1 GiB sequential WRITE and READ in 1 MiB requests. A second
# run sends the same requests straight to the server (no device, ring or eventfds): the
# difference between the two is the transport. Prints both tables and writes them to $out.
# usage: virtio_fs.sh BUILD_DIR [ROUNDS] [OUT]
set -euo pipefail
build=$1
rounds=${2:-3}
out=${3:-$build/bench/virtio-fs.txt}
bench=$build/tests/bench/bench-fs
[ -x "$bench" ] || { echo "$0: $bench not built" >&2; exit 1; }
mkdir -p "$(dirname "$out")" "$build/bench"

# The share lives next to the build (a disk, like a container's rootfs; 1 GiB of file).
dir=$(mktemp -d "$build/bench/virtio-fs-share.XXXXXX")
trap 'rm -rf "$dir"' EXIT
{
	echo "virtio-fs (in-process, fake driver) vs native syscalls, same directory," \
		"${rounds} alternating rounds, medians; $(date -u +%F) on $(uname -r), $(nproc) cores"
	"$bench" "$dir" "$rounds"
	echo
	echo "The server alone (fuse_server_handle, no transport), same requests:"
	"$bench" "$dir" "$rounds" meta,create,readdir,native,server
} | tee "$out"
