#!/bin/sh
# Guest half of tests/bench/virtio_fs_guest.sh, run by the test initramfs's /init
# (stratus_test_run=/tests/virtio_fs_guest.sh): the same work on the virtio-fs share (tag
# "share", cache=auto) and on an ext4 file system on virtio-blk (/dev/vda), timed in the
# guest by /tests/fs_bench. The two alternate so neither always runs on a colder guest.
n=$(cat /tests/nfiles)
mkdir -p /mnt/fs /mnt/blk
mount -t virtiofs share /mnt/fs || echo "STRATUS-TEST fsbench-fail mount-virtiofs"
mount -t ext4 /dev/vda /mnt/blk || echo "STRATUS-TEST fsbench-fail mount-ext4"
mkdir /mnt/fs/untar /mnt/blk/untar /mnt/fs/files /mnt/blk/files
/tests/fs_bench untar virtio-fs /tests/rootfs.tar /mnt/fs/untar
/tests/fs_bench untar virtio-blk /tests/rootfs.tar /mnt/blk/untar
/tests/fs_bench files virtio-blk /mnt/blk/files "$n"
/tests/fs_bench files virtio-fs /mnt/fs/files "$n"
umount /mnt/blk || echo "STRATUS-TEST fsbench-fail umount-ext4"
echo "STRATUS-TEST fsbench-done"
