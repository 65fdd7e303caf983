#!/bin/sh
# Guest half of tests/integration/test_virtio_blk.sh, run by the test initramfs's init as
# stratus_test_run=/tests/blk.sh. /dev/vda is a writable 8 MiB image of random bytes,
# /dev/vdb a read-only 1 MiB image with a pattern the host wrote; /data/pattern is 3 MiB
# + 1536 bytes to write to vda at sector 75. Prints "BLK key=value" lines for the host.
r() { echo "BLK $*"; }
hash() { sha256sum | cut -d' ' -f1; }

r "vda-size=$(cat /sys/block/vda/size) vda-ro=$(cat /sys/block/vda/ro)"
r "vda-serial=$(cat /sys/block/vda/serial)"
r "vdb-size=$(cat /sys/block/vdb/size) vdb-ro=$(blockdev --getro /dev/vdb)"

# Through the page cache, an odd sector and a length that is not a whole page, then fsync
# (FLUSH); dropping the cache makes the read-back come from the device.
if dd if=/data/pattern of=/dev/vda bs=64k oflag=seek_bytes seek=38400 conv=notrunc,fsync \
	2>/dev/null; then r "vda-write=ok"; else r "vda-write=FAIL"; fi
sync
echo 3 >/proc/sys/vm/drop_caches
r "pattern=$(hash </data/pattern)"
r "vda-readback=$(dd if=/dev/vda bs=64k iflag=skip_bytes,count_bytes skip=38400 \
	count=3147264 2>/dev/null | hash)"

# DISCARD: 1 MiB at 4 MiB reads back as zeros (and the host checks the image).
if blkdiscard -o 4194304 -l 1048576 /dev/vda; then r "vda-discard=ok"; else r "vda-discard=FAIL"; fi
echo 3 >/proc/sys/vm/drop_caches
r "vda-discarded=$(dd if=/dev/vda bs=64k skip=64 count=16 2>/dev/null | hash)"

# The read-only disk: O_DIRECT read of 64 KiB + 512 at sector 9; a write must fail.
r "vdb-read=$(dd if=/dev/vdb bs=66048 iflag=direct,skip_bytes skip=4608 count=1 2>/dev/null | hash)"
if dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=notrunc 2>/dev/null; then
	r "vdb-write=allowed"
else
	r "vdb-write=refused"
fi
r "done"
