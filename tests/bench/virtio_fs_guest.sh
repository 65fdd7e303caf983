#!/usr/bin/env bash
# Benchmark: virtio-fs against virtio-blk (ext4) in ONE boot of the real guest kernel
# (issue 6, "In a real guest"). The VM gets a virtio-fs share (cache=auto, the default) of
# an empty host directory and an empty ext4 image (mkfs.ext4 on the host, no root needed)
# as /dev/vda; inside the guest (tests/bench/guest/virtio_fs_guest.sh, timed by
# tests/bench/guest/fs_bench.c) on each:
#   untar of a busybox rootfs tarball (tests/integration/rootfs/make-busybox-rootfs.sh, from
#   the initramfs), then syncfs;
#   FILES (default 10,000) empty files created, lstat'ed, unlinked, then syncfs.
# After the run the host checks the untarred tree in the share against the rootfs it came
# from. Guest kernel code is interpreted on this host (PVM, ~270 ns per guest instruction),
# so both columns are dominated by the guest kernel; the ratio is the point. Prints a table
# and writes it to OUT.
# usage: [FILES=N] virtio_fs_guest.sh STRATUS_VMM VMLINUX [OUT]
set -euo pipefail
vmm=$1
kernel=$2
out=${3:-$(dirname "$vmm")/../bench/virtio_fs_guest.txt}
files=${FILES:-10000}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$top/tests/integration/console.sh"
[ -x "$vmm" ] || { echo "$0: no stratus-vmm at $vmm" >&2; exit 1; }
[ -f "$kernel" ] || { echo "$0: no guest kernel at $kernel" >&2; exit 1; }
[[ $files =~ ^[0-9]+$ && $files -ge 1 && $files -le 50000 ]] ||
	{ echo "$0: FILES must be 1 to 50000" >&2; exit 1; }
command -v mkfs.ext4 >/dev/null || { echo "$0: mkfs.ext4 not found (e2fsprogs)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
work=$(mktemp -d /tmp/stratus-fs-guest.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$top/tests/integration/rootfs/make-busybox-rootfs.sh" "$work/rootfs" >/dev/null
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
entries=$(tar -tf "$work/rootfs.tar" | wc -l)
echo "$files" >"$work/nfiles"
gcc -static -O2 -Wall -Wextra -o "$work/fs_bench" "$here/guest/fs_bench.c"
"$top/tests/integration/initramfs/make-test-initramfs.sh" \
	--add "$work/fs_bench:/tests/fs_bench" --add "$work/rootfs.tar:/tests/rootfs.tar" \
	--add "$work/nfiles:/tests/nfiles" \
	--add "$here/guest/virtio_fs_guest.sh:/tests/virtio_fs_guest.sh" \
	--applets "mkdir tar umount" "$work/initrd.cpio" >/dev/null
mkdir "$work/share"
# ext4 with room for the files: 256 MiB sparse, an inode per 8 KiB (32768 inodes).
mkfs.ext4 -q -F -i 8192 "$work/disk.img" 256M >/dev/null

start=$(date +%s)
timeout 7200 "$vmm" -kernel "$kernel" -initrd "$work/initrd.cpio" -m 512 -smp 1 \
	-drive id=d0,file="$work/disk.img" -device virtio-blk-device,drive=d0,id=blk0 \
	-device virtio-fs-device,id=fs0,tag=share,source="$work/share" \
	-append "quiet stratus_test_quick stratus_test_run=/tests/virtio_fs_guest.sh" \
	</dev/null >"$work/vm.raw" 2>"$work/vm.log" || true
tr -d '\r' <"$work/vm.raw" >"$work/vm.out"
if ! grep -q '^STRATUS-TEST fsbench-done' "$work/vm.out" ||
	grep -Eq 'fsbench-fail| FAIL-' "$work/vm.out"; then
	echo "$0: the guest run failed:" >&2
	grep 'STRATUS-TEST' "$work/vm.out" >&2 || tail -30 "$work/vm.out" "$work/vm.log" >&2
	exit 1
fi
# What the guest untarred is on the host, entry for entry (names, types, modes, contents).
if ! diff -r --no-dereference "$work/rootfs" "$work/share/untar" >"$work/diff" 2>&1; then
	echo "$0: the share's untarred tree differs from the rootfs:" >&2
	head -20 "$work/diff" >&2
	exit 1
fi

# ms LABEL WHAT: the guest's time for it
ms() { sed -n "s/^STRATUS-TEST fsbench $1 $2 ms=\([0-9.]*\)$/\1/p" "$work/vm.out"; }
row() {
	local fs blk
	fs=$(ms virtio-fs "$2")
	blk=$(ms virtio-blk "$2")
	echo "| $1 | $fs | $blk | $(awk -v a="$fs" -v b="$blk" 'BEGIN { printf "%.2f", a / b }') |"
}
{
	echo "virtio-fs (cache=auto) vs virtio-blk ext4, same VM (1 vCPU, 512 MiB, Linux" \
		"$(basename "$kernel")); $(date -u +%F) on $(uname -r), $(nproc) host cores;" \
		"VM wall time $(($(date +%s) - start)) s"
	echo
	echo "| in the guest | virtio-fs ms | virtio-blk ext4 ms | fs / blk |"
	echo "| --- | ---: | ---: | ---: |"
	row "untar busybox rootfs ($entries entries)" untar
	row "untar, then syncfs" untar+sync
	row "create $files empty files" create
	row "lstat $files files" stat
	row "unlink $files files" unlink
	row "syncfs after the files" sync
} | tee "$out"
