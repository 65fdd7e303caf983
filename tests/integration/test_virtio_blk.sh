#!/usr/bin/env bash
# virtio-blk with the real guest kernel: two disks in one boot. vda (writable, 8 MiB of
# random bytes, serial "disk0serial") gets 3 MiB + 1536 bytes written at sector 75 through
# the guest's page cache, fsync'ed, read back from the device, and 1 MiB discarded; vdb
# (readonly=on, direct=on, 1 MiB with a pattern written here) is read with O_DIRECT and
# must refuse writes. The guest script is tests/integration/blk/guest-blk.sh; afterwards
# the images are checked here, on the host.
# usage: test_virtio_blk.sh STRATUS_VMM VMLINUX
source "$(dirname "$0")/lib.sh"
vmm=$1
kernel=$2
here=$(cd "$(dirname "$0")" && pwd)
need_file "$vmm" stratus-vmm
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_kvm

sha() { sha256sum | cut -d' ' -f1; }

# The images and the data, made here so the host knows what to expect.
head -c 8M /dev/urandom >"$work/vda.img"
head -c 3147264 /dev/urandom >"$work/pattern"
seq -f 'stratus block %08g' 0 49999 | head -c 1M >"$work/vdb.img"
vdb_before=$(sha <"$work/vdb.img")
vdb_expect=$(dd if="$work/vdb.img" bs=512 skip=9 count=129 2>/dev/null | sha)
zeros_1m=$(head -c 1M /dev/zero | sha)

"$here/initramfs/make-test-initramfs.sh" --add "$here/blk/guest-blk.sh:/tests/blk.sh" \
	--add "$work/pattern:/data/pattern" \
	--applets "dd sha256sum cut blockdev blkdiscard sync" "$work/initramfs.cpio" >/dev/null

timeout 600 "$vmm" -kernel "$kernel" -initrd "$work/initramfs.cpio" -m 256 -smp 1 -D \
	-drive id=d0,file="$work/vda.img" -device virtio-blk-device,drive=d0,id=blk0,serial=disk0serial \
	-drive id=d1,file="$work/vdb.img",readonly=on,direct=on \
	-device virtio-blk-device,drive=d1,id=blk1 \
	-append "quiet stratus_test_quick stratus_test_run=/tests/blk.sh stratus_test=poweroff" \
	</dev/null >"$work/blk.raw" 2>"$work/blk.log"
status=$?
tr -d '\r' <"$work/blk.raw" >"$work/blk.out"
out=$work/blk.out
grep '^BLK ' "$out" | sed 's/^/    guest: /'

expect_eq "guest poweroff: exit status 0" 0 "$status"
expect_grep "guest script ran to the end" '^STRATUS-TEST run=/tests/blk.sh status=0' "$out"
expect_grep "vda: 8 MiB = 16384 sectors, writable" '^BLK vda-size=16384 vda-ro=0$' "$out"
expect_grep "vda: serial from GET_ID" '^BLK vda-serial=disk0serial$' "$out"
expect_grep "vdb: 1 MiB, read-only (VIRTIO_BLK_F_RO)" '^BLK vdb-size=2048 vdb-ro=1$' "$out"
expect_grep "vda: write + fsync succeeded" '^BLK vda-write=ok$' "$out"
expect_grep "vda: the guest reads back what it wrote" \
	"^BLK vda-readback=$(sha <"$work/pattern")\$" "$out"
expect_grep "vda: discard succeeded" '^BLK vda-discard=ok$' "$out"
expect_grep "vda: discarded range reads as zeros" "^BLK vda-discarded=$zeros_1m\$" "$out"
expect_grep "vdb: O_DIRECT read of the host's pattern" "^BLK vdb-read=$vdb_expect\$" "$out"
expect_grep "vdb: a write is refused" '^BLK vdb-write=refused$' "$out"

# On the host: the guest's data is in the image, at sector 75, and the rest is intact.
expect_eq "host: guest's data landed in vda.img at sector 75" "$(sha <"$work/pattern")" \
	"$(dd if="$work/vda.img" bs=512 skip=75 count=6147 2>/dev/null | sha)"
expect_eq "host: discarded MiB of vda.img is zeros" "$zeros_1m" \
	"$(dd if="$work/vda.img" bs=1M skip=4 count=1 2>/dev/null | sha)"
expect_eq "host: vda.img keeps its size" 8388608 "$(stat -c %s "$work/vda.img")"
expect_eq "host: vdb.img unchanged" "$vdb_before" "$(sha <"$work/vdb.img")"

expect_grep "blk0: the driver negotiated VERSION_1" 'blk0: driver ready, features 0x1[0-9a-f]{8}$' \
	"$work/blk.log"
expect_grep "blk0: served requests" 'blk0: served [1-9][0-9]* requests' "$work/blk.log"
expect_no_grep "no device needed a reset" 'needs reset' "$work/blk.log"

# Refused up front, with one line naming the problem.
expect_failure "missing image" 1 'blk9: cannot open .*/missing.img' \
	"$vmm" -kernel "$kernel" -drive id=d9,file="$work/missing.img" \
	-device virtio-blk-device,drive=d9,id=blk9
expect_failure "image locked by another writer" 1 'in use by another process' \
	"$vmm" -kernel "$kernel" -drive id=d0,file="$work/vda.img" \
	-device virtio-blk-device,drive=d0,id=a -drive id=d1,file="$work/vda.img" \
	-device virtio-blk-device,drive=d1,id=b

finish
