#!/bin/sh
# Guest side of test_virtio_net.sh: two virtio-net NICs, found by MAC. The first
# (52:54:00:00:00:01, mtu=9000 offered: Linux then posts chains of pages) gets
# 10.99.0.2/24 and pings the host's tap at 10.99.0.1, with 9000-byte packets too; the
# second (a random MAC, fd= backend, MTU 1500: 1526-byte buffers) 10.98.0.2/24 pings
# 10.98.0.1, with full 1514-byte frames too.
# Prints "NET key=value" lines; exits non-zero if a step fails.
report() { echo "NET $*"; }

nic_with_mac() {
	for dev in /sys/class/net/*; do
		[ "$(cat "$dev/address")" = "$1" ] && echo "${dev##*/}" && return 0
	done
	return 1
}

ls /sys/class/net | tr '\n' ' ' | sed 's/^/NET nics=/'
echo
first=$(nic_with_mac 52:54:00:00:00:01) || { report "first=missing"; exit 1; }
report "first=$first mtu=$(cat /sys/class/net/$first/mtu)"
second=
for dev in /sys/class/net/*; do
	name=${dev##*/}
	[ "$name" != lo ] && [ "$name" != "$first" ] && second=$name
done
[ -n "$second" ] || { report "second=missing"; exit 1; }
report "second=$second mac=$(cat /sys/class/net/$second/address)"

ip link set lo up
ip addr add 10.99.0.2/24 dev "$first" && ip link set "$first" up || exit 2
ip addr add 10.98.0.2/24 dev "$second" && ip link set "$second" up || exit 3
status=0
# Generous: guest kernel code may be interpreted (PVM) and the first ARP takes a while.
if ping -c 3 -W 20 10.99.0.1 >/tmp/ping0 2>&1; then report "ping-first=ok"; else
	report "ping-first=FAIL"; status=4; fi
if ping -c 3 -W 20 10.98.0.1 >/tmp/ping1 2>&1; then report "ping-second=ok"; else
	report "ping-second=FAIL"; status=5; fi
# Frames of the full MTU both ways: 8972 (1472) bytes of ICMP data + 28 of headers.
if ping -c 1 -W 20 -s 8972 10.99.0.1 >/tmp/ping2 2>&1; then report "ping-jumbo=ok"; else
	report "ping-jumbo=FAIL"; status=6; fi
if ping -c 1 -W 20 -s 1472 10.98.0.1 >/tmp/ping3 2>&1; then report "ping-full=ok"; else
	report "ping-full=FAIL"; status=7; fi
cat /tmp/ping0 /tmp/ping1 /tmp/ping2 /tmp/ping3 | sed 's/^/NET ping: /'
grep -E 'eth|lo' /proc/net/dev | sed 's/^ */NET dev: /'
exit $status
