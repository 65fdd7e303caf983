#!/usr/bin/env bash
# QMP block hotplug with the real guest kernel, and the Linux guest's full workload under the
# seccomp filters: one boot with a -drive disk (vda), an empty slot (vdb), vsock, rng, the
# console in a file and QMP. The guest script (tests/integration/hotplug/guest-hotplug.sh)
# prints each change of the disks' sizes; the host hot-adds an image into the slot
# (blockdev-add, device_add addr 1: the guest sees the capacity change interrupt and reads
# the image), removes it (device_del, DEVICE_DELETED), deletes the node, and checks the
# errors (a slot that does not exist or holds the -drive disk, an unknown node, removing a
# disk that was not hot-plugged). stop/cont and a vsock connection run in between.
# usage: test_hotplug.sh STRATUS_VMM VMLINUX
source "$(dirname "$0")/lib.sh"
vmm=$1
kernel=$2
here=$(cd "$(dirname "$0")" && pwd)
need_file "$vmm" stratus-vmm
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_kvm

"$here/initramfs/make-test-initramfs.sh" --add "$here/hotplug/guest-hotplug.sh:/tests/hotplug.sh" \
	--applets "dd" "$work/initramfs.cpio" >/dev/null
{ printf 'cold disk here!!'; head -c 1M /dev/zero; } >"$work/cold.img"
{ printf 'stratus hotplug!'; head -c 2M /dev/zero; } >"$work/hot.img" # 4096 sectors + 16 bytes
head -c 1M /dev/zero >"$work/other.img"
sock=$work/qmp.sock
console=$work/console

"$vmm" -kernel "$kernel" -initrd "$work/initramfs.cpio" -m 256 -smp 2 -D \
	-drive id=cold,file="$work/cold.img" -device virtio-blk-device,drive=cold,id=blk0 \
	-device virtio-blk-device,id=slot1 -machine microvm,blk-slots=2 \
	-device virtio-rng-device,id=rng0 \
	-device vhost-vsock-device,id=vsock0,guest-cid=3,uds-path="$work/vsock.sock" \
	-serial "file:$console" -qmp "unix:$sock,server,nowait" \
	-append "quiet stratus_test_quick stratus_test_run=/tests/hotplug.sh stratus_test=poweroff" \
	</dev/null >"$work/vmm.out" 2>"$work/vmm.log" &
vmm_pid=$!

# QMP as a coprocess: qmp_cmd JSON prints the reply; events go to $work/events.
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
coproc QMP { socat - "UNIX-CONNECT:$sock"; }
IFS= read -r -t 10 greeting <&"${QMP[0]}"
qmp_cmd() {
	local line
	printf '%s\n' "$1" >&"${QMP[1]}"
	while IFS= read -r -t 30 line <&"${QMP[0]}"; do
		line=${line%$'\r'}
		case $line in
		'{"timestamp"'*) echo "$line" >>"$work/events" ;;
		*) echo "$line"; return 0 ;;
		esac
	done
	echo "(no reply)"
}
: >"$work/events"
expect_eq "QMP greeting" QMP "$(echo "$greeting" | jq -r 'keys[0]')"
expect_eq "qmp_capabilities" '{"return":{}}' "$(qmp_cmd '{"execute":"qmp_capabilities"}')"

# Boots take seconds where guest kernel code is interpreted: wait for the guest script.
clean() { tr -d '\r' <"$console"; }
wait_guest() { # PATTERN SECONDS
	local i
	for i in $(seq $(($2 * 10))); do
		clean | grep -Eq -- "$1" && return 0
		sleep 0.1
	done
	return 1
}
wait_guest '^HOTPLUG vdb size=0$' 600
expect_eq "guest: the -drive disk is vda, 2048 sectors" yes \
	"$(clean | grep -q '^HOTPLUG vda size=2048$' && echo yes)"
expect_eq "guest: vda holds the image" yes "$(clean | grep -q '^HOTPLUG vda data=cold disk here!!$' && echo yes)"
expect_eq "guest: the empty slot is vdb, capacity 0" yes "$(clean | grep -q '^HOTPLUG vdb size=0$' && echo yes)"
if ! grep -q 'not installed in a sanitizer build' "$work/vmm.log"; then
	expect_eq "filters on: Seccomp 2" 2 "$(grep '^Seccomp:' /proc/$vmm_pid/status | cut -f2)"
fi

# The conversation Kata's StratoVirt driver has (govmm's JSON).
add='{"execute":"blockdev-add","arguments":{"driver":"raw","node-name":"drive-1","read-only":false,"file":{"driver":"file","filename":"'"$work/hot.img"'","aio":"native"},"cache":{"direct":false,"no-flush":false}}}'
expect_eq "blockdev-add" '{"return":{}}' "$(qmp_cmd "$add")"
expect_eq "device_add into slot 1" '{"return":{}}' \
	"$(qmp_cmd '{"execute":"device_add","arguments":{"id":"drive-1","driver":"virtio-blk-mmio","drive":"drive-1","addr":"1"}}')"
wait_guest '^HOTPLUG vdb size=4096$' 120
expect_eq "guest: vdb grew to 4096 sectors (configuration change interrupt)" yes \
	"$(clean | grep -q '^HOTPLUG vdb size=4096$' && echo yes)"
wait_guest '^HOTPLUG vdb data=' 60
expect_eq "guest: vdb reads the hot-added image" yes \
	"$(clean | grep -q '^HOTPLUG vdb data=stratus hotplug!$' && echo yes)"

# Errors, each a GenericError naming the problem.
# expect_error WHAT PATTERN JSON: the reply is an error matching PATTERN ("class: desc")
expect_error() {
	local reply
	reply=$(qmp_cmd "$3")
	echo "$reply" | jq -r '.error.class + ": " + .error.desc' >"$work/error" 2>&1
	expect_grep "$1" "$2" "$work/error"
}
expect_error "device_add: the node is in use" "GenericError: Parameter 'drive': node 'drive-1' is already in use" \
	'{"execute":"device_add","arguments":{"id":"x","driver":"virtio-blk-mmio","drive":"drive-1","addr":"1"}}'
expect_eq "blockdev-add of a second node" '{"return":{}}' \
	"$(qmp_cmd '{"execute":"blockdev-add","arguments":{"node-name":"n2","read-only":true,"file":{"driver":"file","filename":"'"$work/other.img"'"}}}')"
expect_error "device_add: slot 0 holds the -drive disk" \
	"GenericError: addr 0: the slot holds the -drive disk 'blk0'" \
	'{"execute":"device_add","arguments":{"id":"x","driver":"virtio-blk-mmio","drive":"n2","addr":"0"}}'
expect_error "device_add: no such slot" "GenericError: addr 5: no such slot \\(virtio-blk slots are 0 to 1\\)" \
	'{"execute":"device_add","arguments":{"id":"x","driver":"virtio-blk-mmio","drive":"n2","addr":"5"}}'
expect_error "device_add: the slot is taken" "GenericError: addr 1: the slot is in use by device 'drive-1'" \
	'{"execute":"device_add","arguments":{"id":"x","driver":"virtio-blk-mmio","drive":"n2","addr":"1"}}'
expect_error "device_add: no free slot" "GenericError: no free virtio-blk slot" \
	'{"execute":"device_add","arguments":{"id":"x","driver":"virtio-blk-mmio","drive":"n2"}}'
expect_error "device_add: unknown node" "GenericError: Parameter 'drive': no block node 'nope'" \
	'{"execute":"device_add","arguments":{"id":"x","driver":"virtio-blk-mmio","drive":"nope"}}'
expect_error "device_add: duplicate id" "GenericError: Duplicate device ID 'drive-1'" \
	'{"execute":"device_add","arguments":{"id":"drive-1","driver":"virtio-blk-mmio","drive":"n2"}}'
expect_error "device_del: a -drive disk" "GenericError: Device 'blk0' was not hot-plugged" \
	'{"execute":"device_del","arguments":{"id":"blk0"}}'
expect_error "blockdev-del: a node in use" "GenericError: Node 'drive-1' is in use" \
	'{"execute":"blockdev-del","arguments":{"node-name":"drive-1"}}'
expect_error "blockdev-add: a missing image" "GenericError: Could not open '$work/missing.img'" \
	'{"execute":"blockdev-add","arguments":{"node-name":"m","file":{"driver":"file","filename":"'"$work/missing.img"'"}}}'
expect_eq "blockdev-del of the unused node" '{"return":{}}' \
	"$(qmp_cmd '{"execute":"blockdev-del","arguments":{"node-name":"n2"}}')"

# Pause and resume with a disk attached; a vsock client nobody in the guest listens for.
expect_eq "stop" '{"return":{}}' "$(qmp_cmd '{"execute":"stop"}')"
expect_eq "cont" '{"return":{}}' "$(qmp_cmd '{"execute":"cont"}')"
printf 'CONNECT 4321\n' | timeout 20 socat -t 5 - "UNIX-CONNECT:$work/vsock.sock" >"$work/vsock.out" 2>&1
expect_eq "vsock: a port nobody listens on is refused (connection closed, no OK)" no \
	"$(grep -q '^OK' "$work/vsock.out" && echo yes || echo no)"

# Removal: the reply, then DEVICE_DELETED; the guest sees capacity 0 again.
expect_eq "device_del" '{"return":{}}' "$(qmp_cmd '{"execute":"device_del","arguments":{"id":"drive-1"}}')"
qmp_cmd '{"execute":"query-status"}' >/dev/null # the event after the reply: read it
expect_grep "DEVICE_DELETED with a timestamp" \
	'^\{"timestamp":\{"seconds":[0-9]+,"microseconds":[0-9]+\},"event":"DEVICE_DELETED","data":\{"device":"drive-1","path":"/machine/peripheral/drive-1"\}\}$' \
	"$work/events"
wait_for 'device .drive-1. removed' "$work/vmm.log" 10
for _ in $(seq 600); do [ "$(clean | grep -c '^HOTPLUG vdb size=0$')" -ge 2 ] && break; sleep 0.1; done
expect_eq "guest: vdb is empty again" 2 "$(clean | grep -c '^HOTPLUG vdb size=0$')"
expect_eq "blockdev-del" '{"return":{}}' "$(qmp_cmd '{"execute":"blockdev-del","arguments":{"node-name":"drive-1"}}')"
# The slot takes another image.
expect_eq "blockdev-add again" '{"return":{}}' "$(qmp_cmd "$add")"
expect_eq "device_add again (first free slot)" '{"return":{}}' \
	"$(qmp_cmd '{"execute":"device_add","arguments":{"id":"again","driver":"virtio-blk-mmio","drive":"drive-1"}}')"
for _ in $(seq 600); do [ "$(clean | grep -c '^HOTPLUG vdb size=4096$')" -ge 2 ] && break; sleep 0.1; done
expect_eq "guest: vdb has an image again" 2 "$(clean | grep -c '^HOTPLUG vdb size=4096$')"

exec {QMP[1]}>&-
kill -TERM "$vmm_pid"
wait "$vmm_pid"
expect_eq "SIGTERM: exit 0 (nothing killed by the filters)" 0 "$?"
expect_grep "hot-add logged" 'slot1: hot-added .*hot.img' "$work/vmm.log"
expect_grep "rng served the guest" 'rng0: driver ready' "$work/vmm.log"
expect_grep "vsock driver up" 'vsock0: driver ready' "$work/vmm.log"
expect_no_grep "no device needed a reset" 'needs reset' "$work/vmm.log"

finish
