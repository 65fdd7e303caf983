#!/bin/sh
# Guest side of the hotplug tests (test_seccomp.sh, test_kata_replay.sh): report every
# change of the virtio-blk disks' sizes on the console, with the first 16 bytes of a disk
# that has an image, until the host stops the VM.
echo "HOTPLUG ready"
last_vda=x
last_vdb=x
while true; do
	for d in vda vdb; do
		size=$(cat /sys/block/$d/size 2>/dev/null)
		eval last=\$last_$d
		if [ "$size" != "$last" ]; then
			echo "HOTPLUG $d size=$size"
			if [ -n "$size" ] && [ "$size" != 0 ]; then
				echo "HOTPLUG $d data=$(dd if=/dev/$d bs=16 count=1 2>/dev/null)"
			fi
			eval last_$d=\$size
		fi
	done
	sleep 1
done
