#!/usr/bin/env bash
# virtio-net with the real guest kernel, in a private network namespace (root only): two
# NICs in one boot, one on a tap stratus-vmm opens by name (mac and mtu=9000 given), one on
# a tap handed over as an inherited fd (random MAC, MTU 1500). The guest (tests/integration/
# net/guest-net.sh) finds them by MAC, checks the MTU, gives them addresses and pings the
# host's end of each tap, with frames of the full MTU too (9014 and 1514 bytes). Then QMP migrate must refuse:
# a VM with a NIC is never snapshotted (docs/vmm.md "virtio-net"). Also: bad backends are
# refused with one line naming the device.
# usage: test_virtio_net.sh STRATUS_VMM VMLINUX
source "$(dirname "$0")/lib.sh"
vmm=$1
kernel=$2
here=$(cd "$(dirname "$0")" && pwd)
need_file "$vmm" stratus-vmm
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_kvm
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! unshare --net true 2>/dev/null; then
	echo "SKIP: needs root, /dev/net/tun and network namespaces"
	exit 77
fi
command -v socat >/dev/null || { echo "FAIL: socat not found (packaging/deps.txt)"; exit 1; }
source "$here/snapshot/common.sh"

# Refusals, no boot: an fd that is not open, one that is not a datagram backend.
expect_failure "fd=N not open" 1 'net0: fd 9: not an open file descriptor' \
	"$vmm" -kernel "$kernel" -netdev tap,id=n0,fd=9 -device virtio-net-device,netdev=n0,id=net0
expect_failure "fd=N a regular file" 1 'net0: fd 9: neither a tap .* nor a datagram socket' \
	"$vmm" -kernel "$kernel" -netdev tap,id=n0,fd=9 -device virtio-net-device,netdev=n0,id=net0 \
	9<"$kernel"

"$here/initramfs/make-test-initramfs.sh" --add "$here/net/guest-net.sh:/tests/net.sh" \
	--applets "ip ping ls tr sed grep" "$work/initramfs.cpio" >/dev/null

unshare --net python3 "$here/net/launch.py" -- timeout 600 "$vmm" -kernel "$kernel" \
	-initrd "$work/initramfs.cpio" -m 256 -smp 1 -D -qmp "unix:$work/net.qmp,server,nowait" \
	-append "quiet stratus_test_quick stratus_test_run=/tests/net.sh stratus_test=idle" \
	</dev/null >"$work/net.raw" 2>"$work/net.log" &
pids+=($!)
launcher=$!
if ! wait_for '^STRATUS-TEST run=/tests/net.sh status=' "$work/net.raw" 600; then
	fail "the guest script did not finish"
fi
qmp "$work/net.qmp" "$work/migrate.qmp" \
	"{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$work/net.snap\"}}" \
	'{"execute":"quit"}'
wait "$launcher"
status=$?
tr -d '\r' <"$work/net.raw" >"$work/net.out"
out=$work/net.out
grep -E '^(NET|HOST) ' "$out" | sed 's/^/    /'

expect_eq "QMP quit: exit status 0" 0 "$status"
expect_grep "guest script ran to the end" '^STRATUS-TEST run=/tests/net.sh status=0' "$out"
expect_grep "NIC 1: found by its MAC, MTU from the device (F_MTU)" '^NET first=eth[0-9]+ mtu=9000$' \
	"$out"
expect_grep "NIC 2: a random locally administered MAC" \
	'^NET second=eth[0-9]+ mac=.[26ae](:[0-9a-f]{2}){5}$' "$out"
expect_grep "NIC 1 (ifname=): ping the host's tap" '^NET ping-first=ok$' "$out"
expect_grep "NIC 2 (fd=): ping the host's tap" '^NET ping-second=ok$' "$out"
expect_grep "NIC 1: 9014-byte frames both ways (page chains)" '^NET ping-jumbo=ok$' "$out"
expect_grep "NIC 2: 1514-byte frames both ways (1526-byte buffers)" '^NET ping-full=ok$' "$out"
expect_grep "host: stnet0 saw the guest's frames" '^HOST stnet0 rx=[1-9]' "$out"
expect_grep "host: stnet1 saw the guest's frames" '^HOST stnet1 rx=[1-9]' "$out"
expect_grep "the Linux driver negotiated VERSION_1" 'net0: driver ready, features 0x1[0-9a-f]{8}$' \
	"$work/net.log"
expect_grep "migrate refused for a VM with a NIC" \
	'"error":.*virtio-net: a VM with a network device cannot be snapshotted' "$work/migrate.qmp"
expect_no_grep "no snapshot file left" . <(ls "$work/net.snap" 2>/dev/null)
expect_no_grep "no device needed a reset" 'needs reset' "$work/net.log"
expect_grep "the refusal is logged" 'error: migrate: virtio-net: a VM with a network device' \
	"$work/net.log"
expect_no_grep "no other error, no seccomp violation" 'error: [^m]|SIGSYS|Traceback' "$work/net.log"

finish
