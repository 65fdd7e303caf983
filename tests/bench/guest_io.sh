#!/usr/bin/env bash
# Benchmark: virtio-blk and virtio-vsock as a real guest sees them, in ONE boot of the test
# initramfs with a 64 MiB scratch raw image (vda) and a vsock device. Measured inside the
# guest by tests/integration/vsock/vsock_guest.c (its bench-* and disk-* modes, built
# static), driven by tests/bench/guest/guest_io.sh:
#   virtio-blk sequential write and read, 16 MiB in 1 MiB O_DIRECT requests (as dd bs=1M
#   oflag/iflag=direct would issue them; the write ends with fsync: FLUSH);
#   4 KiB O_DIRECT reads at random 4 KiB-aligned offsets for 5 s (IOPS);
#   vsock guest → host 8 MiB to a socat listener on <uds-path>_5000, host → guest 8 MiB
#   from socat through the hybrid-vsock CONNECT.
# Guest kernel code is interpreted on this host (PVM: ~270 ns per guest instruction), so
# these figures are the guest kernel's cost, not the device's; QEMU cannot boot a guest on
# this host's KVM, so there is no peer row. Prints a table and writes it to OUT.
# usage: guest_io.sh BUILD_DIR VMLINUX [OUT]
set -euo pipefail
build=$1
kernel=$2
out=${3:-$build/bench/guest-io.txt}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$top/tests/integration/console.sh"
vmm=$build/vmm/stratus-vmm
[ -x "$vmm" ] || { echo "$0: no stratus-vmm at $vmm" >&2; exit 1; }
[ -f "$kernel" ] || { echo "$0: no guest kernel at $kernel" >&2; exit 1; }
command -v socat >/dev/null || { echo "$0: socat not installed" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
work=$(mktemp -d /tmp/stratus-guest-io.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

gcc -static -O2 -o "$work/vsock_guest" "$top/tests/integration/vsock/vsock_guest.c"
"$top/tests/integration/initramfs/make-test-initramfs.sh" \
	--add "$work/vsock_guest:/tests/vsock_guest" \
	--add "$here/guest/guest_io.sh:/tests/guest_io.sh" "$work/initrd.cpio" >/dev/null
truncate -s 64M "$work/disk.img"
sock=$work/vsock.sock

socat -u UNIX-LISTEN:"${sock}_5000" OPEN:/dev/null &
pids+=($!)
"$vmm" -kernel "$kernel" -initrd "$work/initrd.cpio" -m 256 -smp 1 \
	-drive id=d0,file="$work/disk.img" -device virtio-blk-device,drive=d0,id=blk0 \
	-device vhost-vsock-device,id=vsock0,guest-cid=3,uds-path="$sock" \
	-append "quiet stratus_test_quick stratus_test_run=/tests/guest_io.sh stratus_test=idle" \
	</dev/null >"$work/vm.raw" 2>"$work/vm.log" &
vm=$!
pids+=($vm)

# console_wait REGEX SECONDS: until the guest console shows it (console.sh)
console_wait() { guest_wait "$work/vm.raw" "$work/vm.out" "$vm" "$1" "$2"; }

if ! console_wait '^STRATUS-TEST vsock-listening port=1235' 900; then
	echo "$0: the guest did not get to the host → guest run" >&2
	tail -30 "$work/vm.out" "$work/vm.log" >&2
	exit 1
fi
(printf 'CONNECT 1235\n'; head -c 8M /dev/zero) | timeout 600 socat -u - UNIX-CONNECT:"$sock"
console_wait '^STRATUS-TEST bench-done' 600 || { echo "$0: no bench-done" >&2; exit 1; }
grep -q bench-fail "$work/vm.out" && { grep bench-fail "$work/vm.out" >&2; exit 1; }

# field NAME: "bytes ns" of the guest's line for NAME
field() { sed -n "s/^STRATUS-TEST bench $1 bytes=\([0-9]*\) ns=\([0-9]*\)$/\1 \2/p" "$work/vm.out"; }
mibs() { field "$1" | awk '{ printf "%.1f MiB/s", $1 / 1048576 / ($2 / 1e9) }'; }
iops() { field "$1" | awk '{ printf "%.0f IOPS", $1 / 4096 / ($2 / 1e9) }'; }
{
	echo "In-guest I/O, one boot, 1 vCPU, 256 MiB ($(date -u +%F), $(nproc) host cores)"
	echo
	echo "| measurement (inside the guest) | result |"
	echo "| --- | ---: |"
	echo "| virtio-blk sequential write, 1 MiB O_DIRECT, 16 MiB | $(mibs disk-seq-write) |"
	echo "| virtio-blk sequential read, 1 MiB O_DIRECT, 16 MiB | $(mibs disk-seq-read) |"
	echo "| virtio-blk random read, 4 KiB O_DIRECT, 5 s | $(iops disk-rand-read) |"
	echo "| vsock guest → host, 8 MiB | $(mibs vsock-send) |"
	echo "| vsock host → guest, 8 MiB | $(mibs vsock-recv) |"
} | tee "$out"
