#!/usr/bin/env bash
# Benchmark: virtio-fs cache modes with the real guest kernel, one boot. Three shares of
# identical content (an 8 MiB file, 1,000 small files), cache=auto, none and always; the
# guest (tests/integration/fs/fs-probe.c "bench") times re-reading the 8 MiB file, stat of
# the 1,000 names, and creating 200 4 KiB files on each. What decided the default cache
# mode (docs/virtio-fs.md). Prints the guest's lines and writes them to $out.
# usage: virtio_fs_cache.sh STRATUS_VMM VMLINUX [OUT]
set -euo pipefail
vmm=$1
kernel=$2
out=${3:-$(dirname "$vmm")/../bench/virtio-fs-cache.txt}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$top/tests/integration/console.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

for mode in auto none always; do
	mkdir -p "$work/$mode/files"
	head -c 8M /dev/urandom >"$work/$mode/big"
	for i in $(seq -w 0 999); do echo "$i" >"$work/$mode/files/f$i"; done
done
gcc -static -O2 -o "$work/fs-probe" "$top/tests/integration/fs/fs-probe.c"
cat >"$work/guest.sh" <<'GUEST'
#!/bin/sh
for mode in auto none always; do
	mkdir -p /$mode
	mount -t virtiofs $mode /$mode && /bin/fs-probe bench /$mode cache=$mode
done
GUEST
chmod +x "$work/guest.sh"
"$top/tests/integration/initramfs/make-test-initramfs.sh" --add "$work/guest.sh:/tests/bench.sh" \
	--add "$work/fs-probe:/bin/fs-probe" --applets "mkdir" "$work/initramfs.cpio" >/dev/null
timeout 1200 "$vmm" -kernel "$kernel" -initrd "$work/initramfs.cpio" -m 512 -smp 1 \
	-device virtio-fs-device,tag=auto,source="$work/auto",cache=auto \
	-device virtio-fs-device,tag=none,source="$work/none",cache=none \
	-device virtio-fs-device,tag=always,source="$work/always",cache=always \
	-append "quiet stratus_test_quick stratus_test_run=/tests/bench.sh" \
	</dev/null >"$work/out.raw" 2>"$work/log"
{
	echo "virtio-fs cache modes in the guest (Linux $(basename "$kernel"), one vCPU);" \
		"$(date -u +%F) on $(uname -r)"
	tr -d '\r' <"$work/out.raw" | grep '^FS bench='
} | tee "$out"
