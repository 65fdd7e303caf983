#!/bin/sh
# Guest half of tests/integration/test_virtio_fs.sh, run by the test initramfs's init as
# stratus_test_run=/tests/fs.sh. Three shares: "share" (cache=auto, writable), "rodata"
# (readonly=on, cache=always) and "nocache" (cache=none). Prints "FS key=value" lines for the
# host; the last step writes and fsyncs a file, reports it, and waits for the host to
# SIGKILL the VMM (durability).
r() { echo "FS $*"; }

mkdir -p /mnt /ro /nc
if mount -t virtiofs share /mnt; then r "mount=ok"; else r "mount=FAIL"; fi
if mount -t virtiofs -o ro rodata /ro; then r "mount-ro=ok"; else r "mount-ro=FAIL"; fi
if mount -t virtiofs nocache /nc; then r "mount-nc=ok"; else r "mount-nc=FAIL"; fi

/bin/fs-probe all /mnt

# 10,000 names the host made; 1,000 the guest makes.
/bin/fs-probe count /mnt/many
r "ls-many=$(ls /mnt/many | wc -l)"
/bin/fs-probe mkmany /mnt/made 1000

# A busybox root file system, untarred onto the share (the host diffs it afterwards).
if mkdir /mnt/rootfs && tar -xf /data/rootfs.tar -C /mnt/rootfs; then r "untar=ok"; else
	r "untar=FAIL"
fi

# The read-only share: reads work, every write is refused (by the device too: the mount
# is ro here, so the host test also checks the device said EROFS via a remount rw).
r "ro-read=$(cat /ro/hello)"
mount -o remount,rw /ro 2>/dev/null
if echo x >/ro/new 2>/dev/null; then r "ro-write=ALLOWED"; else r "ro-write=refused"; fi
if rm /ro/hello 2>/dev/null; then r "ro-unlink=ALLOWED"; else r "ro-unlink=refused"; fi

# cache=none: straight to the host and back.
echo nocache-data >/nc/f
r "nc-read=$(cat /nc/f)"

# A device node on the share is the guest's device: /dev/null semantics, host never opens it.
if mknod /mnt/devnull c 1 3 && echo x >/mnt/devnull && [ -z "$(cat /mnt/devnull)" ]; then
	r "devnode=ok"
else
	r "devnode=FAIL"
fi

sync
/bin/fs-probe durable /mnt/durable.txt &
# The host now kills one share's process (the VMM and the guest must go on: these ticks keep
# coming on the console), then SIGKILLs the VMM. Nothing here touches a share any more.
i=0
while :; do
	i=$((i + 1))
	echo "FS tick=$i"
	sleep 1
done
