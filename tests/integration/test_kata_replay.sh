#!/usr/bin/env bash
# Kata Containers' StratoVirt driver (src/runtime/virtcontainers/stratovirt.go) replayed
# against stratus-vmm: the argv exactly as its createParams() builds it for an initrd guest
# (-name, -uuid, -smp, -m, -kernel, -append, -qmp, -D, -disable-seccomp, -machine, -initrd,
# then the devices: rng as -object + -device, vsock), booting our test kernel; the QMP
# handshake of waitVM() (greeting, version check, qmp_capabilities, disconnect) and of
# qmpSetup() for hotplug; hotplugBlk(): blockdev-add as govmm sends it, device_add with
# driver virtio-blk-mmio and addr "0" (Kata's slot for vda), later device_del waiting for
# DEVICE_DELETED; StopVM(): SIGKILL.
# Two deviations, both forced: vsock takes uds-path= instead of vhostfd= (our vsock is in
# userspace, there is no vhost-vsock fd to pass), and the -append words end with our test
# init's (what to run). Kata's parameters keep the console off (8250.nr_uarts=0), so the
# guest reports what it saw by writing it into the hot-added disk (hotplug/guest-kata.sh).
# usage: test_kata_replay.sh STRATUS_VMM VMLINUX
source "$(dirname "$0")/lib.sh"
vmm=$1
kernel=$2
here=$(cd "$(dirname "$0")" && pwd)
need_file "$vmm" stratus-vmm
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_kvm

"$here/initramfs/make-test-initramfs.sh" --add "$here/hotplug/guest-kata.sh:/tests/kata.sh" \
	--applets "dd sync" "$work/kata-containers-initrd.img" >/dev/null
{ printf 'kata rootfs blk!'; head -c 4M /dev/zero; } >"$work/container.img"
vm_path=$work/vm/0123456789abcdef
mkdir -p "$vm_path"
sock=$vm_path/qmp.socket
id=0123456789abcdef
uuid=5b1a3a8e-2f64-4c1b-9a37-0c3e5d7f9b21
# getKernelParams(): user params (none), defaults, microvm's, then the non-debug ones.
params="reboot=k panic=1 net.ifnames=0 ramdom.trust_cpu=on pci=off iommu=off acpi=off quiet 8250.nr_uarts=0 agent.log_vport=1025"

"$vmm" -name "sandbox-$id" -uuid "$uuid" -smp 1 -m 256 -kernel "$kernel" \
	-append "$params stratus_test_quick stratus_test_run=/tests/kata.sh stratus_test=idle" \
	-qmp "unix:$sock,server,nowait" -D -disable-seccomp \
	-machine type=microvm,dump-guest-core=off -initrd "$work/kata-containers-initrd.img" \
	-object rng-random,id=objrng0,filename=/dev/urandom \
	-device virtio-rng-device,rng=objrng0,id=virtio-rng0 \
	-device vhost-vsock-device,id=vsock-id,guest-cid=3,uds-path="$vm_path/kata.hvsock" \
	</dev/null >"$work/stdout" 2>"$work/stderr" &
vmm_pid=$!

# waitVM(): connect every 50 ms until the socket answers, check the greeting, negotiate,
# disconnect.
qmp_open() {
	local i
	for i in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
	coproc QMP { socat - "UNIX-CONNECT:$sock"; }
	IFS= read -r -t 10 greeting <&"${QMP[0]}"
	greeting=${greeting%$'\r'}
}
qmp_cmd() { # JSON: the reply (events to $work/events)
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
qmp_close() {
	exec {QMP[1]}>&-
	wait "$QMP_PID" 2>/dev/null
}
: >"$work/events"
qmp_open
expect_eq "waitVM: QMP major version (govmm reads it)" 5 "$(echo "$greeting" | jq -r .QMP.version.qemu.major)"
expect_eq "waitVM: capabilities is an array" array "$(echo "$greeting" | jq -r '.QMP.capabilities | type')"
expect_eq "waitVM: qmp_capabilities" '{"return":{}}' "$(qmp_cmd '{"execute":"qmp_capabilities"}')"
qmp_close
expect_eq "the VMM runs after Kata's handshake" yes "$(kill -0 $vmm_pid 2>/dev/null && echo yes)"
expect_grep "-uuid logged" "VM uuid $uuid" "$work/stderr"

# hotplugBlk(AddDevice) for the container's rootfs: a new QMP connection (qmpSetup).
qmp_open
expect_eq "qmpSetup: qmp_capabilities" '{"return":{}}' "$(qmp_cmd '{"execute":"qmp_capabilities"}')"
expect_eq "blockdev-add (govmm)" '{"return":{}}' \
	"$(qmp_cmd '{"execute":"blockdev-add","arguments":{"driver":"raw","file":{"aio":"native","driver":"file","filename":"'"$work/container.img"'"},"node-name":"drive-c0ffee","read-only":false}}')"
expect_eq "device_add virtio-blk-mmio addr 0 (vda)" '{"return":{}}' \
	"$(qmp_cmd '{"execute":"device_add","arguments":{"addr":"0","drive":"drive-c0ffee","driver":"virtio-blk-mmio","id":"drive-c0ffee"}}')"

# The guest saw the disk: it wrote the size and the first bytes it read at byte 4096.
saw() { dd if="$work/container.img" bs=512 skip=8 count=1 2>/dev/null | tr -d '\0' | head -1; }
for _ in $(seq 1200); do saw | grep -q GUEST-SAW && break; sleep 0.5; done
expect_eq "guest: vda appeared with the image's size and data" \
	"GUEST-SAW size=8192 data=kata rootfs blk!" "$(saw)"

# hotplugBlk(RemoveDevice): device_del, then govmm waits for DEVICE_DELETED of that id.
expect_eq "device_del" '{"return":{}}' "$(qmp_cmd '{"execute":"device_del","arguments":{"id":"drive-c0ffee"}}')"
qmp_cmd '{"execute":"query-status"}' >/dev/null
expect_eq "DEVICE_DELETED for the device (govmm's filter: data.device)" drive-c0ffee \
	"$(jq -r 'select(.event == "DEVICE_DELETED") | .data.device' "$work/events")"
qmp_close

# StopVM(): SIGKILL, nothing else.
kill -KILL "$vmm_pid"
wait "$vmm_pid" 2>/dev/null
expect_eq "StopVM: the VMM is gone" no "$(kill -0 $vmm_pid 2>/dev/null && echo yes || echo no)"
expect_grep "Kata's -disable-seccomp: said loudly" 'SECCOMP FILTERS DISABLED' "$work/stderr"
expect_grep "hot-add into Kata's slot 0" 'hot-added .*container.img .* in slot 0' "$work/stderr"
expect_no_grep "no error logged" 'error:' "$work/stderr"

finish
