#!/usr/bin/env bash
# Container networking end to end (docs/networking.md), with one VM: a container namespace
# and a peer namespace joined by a veth (eth0 10.N.M.2/24 with MTU 1400 and a default route
# via .1 in the container's; .1 in the peer's), a busybox container whose config.json names
# the container namespace running a long sleep (a pod sandbox, as CRI makes it). Then: create
# added a tap and ingress qdiscs with u32 filters in that namespace and booted cold (no
# template built); the peer pings the guest (its kernel answers); in the container eth0 has
# the veth's MAC, the MTU, the address and the default route; the container connects to a
# `nc -l` in the peer namespace and its bytes arrive; a pod member with the same path sees
# the same eth0 and default route (it joins the sandbox's network in the VM). After delete
# no qdisc is left on the veth and no tap in the namespace. A network path that is no
# network namespace is refused naming linux.namespaces[N].path.
# As root (ip netns); skipped otherwise and without /dev/kvm, except under CI=true.
# usage: net.sh STRATUS VMLINUX INITRAMFS
source "$(dirname "$0")/../lib.sh"
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
stratus=$(abs "$1")
kernel=$(abs "$2")
initramfs=$(abs "$3")
here=$(cd "$(dirname "$0")/.." && pwd)
need_file "$stratus" stratus
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_file "$initramfs" "the production initramfs (cmake target stratus-initramfs)"
need_kvm
for tool in ip tc jq busybox; do
	command -v $tool >/dev/null && continue
	[ "${CI:-}" = true ] && { echo "FAIL: $tool not installed (CI=true)"; exit 1; }
	echo "SKIP: $tool not installed"
	exit 77
done
if [ "$(id -u)" != 0 ]; then
	[ "${CI:-}" = true ] && { echo "FAIL: not root (CI=true: ip netns needs root)"; exit 1; }
	echo "SKIP: ip netns needs root"
	exit 77
fi
root=$work/root
S() { "$stratus" --root "$root" "$@"; }
export STRATUS_KERNEL=$kernel STRATUS_INITRAMFS=$initramfs
export STRATUS_TEMPLATE_DIR=$work/templates

cns=stratus-net-$$-c
pns=stratus-net-$$-p
net=10.$((200 + $$ % 50)).$(($$ / 50 % 250 + 1))
cleanup() {
	"$stratus" --root "$root" delete --force n1-m >/dev/null 2>&1
	"$stratus" --root "$root" delete --force n1 >/dev/null 2>&1
	[ -n "${ncpid:-}" ] && kill "$ncpid" 2>/dev/null
	ip netns del "$cns" 2>/dev/null
	ip netns del "$pns" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$cns" && ip netns add "$pns" &&
	ip -n "$cns" link add eth0 type veth peer name peer0 netns "$pns" &&
	ip -n "$cns" link set eth0 mtu 1400 &&
	ip -n "$cns" addr add "$net.2/24" dev eth0 &&
	ip -n "$cns" link set eth0 up && ip -n "$cns" link set lo up &&
	ip -n "$cns" route add default via "$net.1" &&
	ip -n "$pns" link set peer0 mtu 1400 &&
	ip -n "$pns" addr add "$net.1/24" dev peer0 &&
	ip -n "$pns" link set peer0 up && ip -n "$pns" link set lo up ||
	{ fail "make the namespaces and the veth"; finish; exit; }
mac=$(ip netns exec "$cns" cat /sys/class/net/eth0/address)

bundle=$work/bundle
"$here/rootfs/make-busybox-rootfs.sh" "$bundle/rootfs" >/dev/null ||
	{ fail "build the busybox rootfs"; finish; exit; }
mkdir -p "$work/spec"
(cd "$work/spec" && "$stratus" spec) || { fail "stratus spec"; finish; exit; }
# make_config NETNS-PATH [TYPE [BUNDLE]]: sleep 600 in that network namespace; with TYPE, a
# container of pod n1 as CRI annotates it (sandbox, or a member in BUNDLE on the same rootfs)
make_config() {
	mkdir -p "${3:-$bundle}"
	jq --arg p "$1" --arg type "${2:-}" --arg root "$bundle/rootfs" \
		'.process.terminal = false | .process.args = ["sleep", "600"] | .root.path = $root |
		.linux.namespaces |= map(if .type == "network" then .path = $p else . end) |
		if $type != "" then .annotations = {"io.kubernetes.cri.container-type": $type,
			"io.kubernetes.cri.sandbox-id": "n1"} else . end' \
		"$work/spec/config.json" >"${3:-$bundle}/config.json"
}

# Not a network namespace: refused before anything is made.
make_config /proc/self/ns/uts
n=$(jq '[.linux.namespaces[].type] | index("network")' "$bundle/config.json")
expect_failure "a uts namespace as the network path" 1 \
	"^stratus: linux.namespaces\[$n\]\.path: /proc/self/ns/uts: not a network namespace$" \
	S create --bundle "$bundle" bad

# n1 is a pod sandbox (CRI's pod network namespace): its member n1-m joins its network.
make_config "/var/run/netns/$cns" sandbox
timeout 600 "$stratus" --root "$root" --debug create --bundle "$bundle" n1 \
	</dev/null >"$work/create.out" 2>"$work/create.err"
expect_eq "create with a network namespace path: exit 0" 0 "$?"
S start n1 || fail "start"
expect_grep "create: the tap" "tun type tap" <(ip -n "$cns" -d link show)
tc -n "$cns" qdisc show dev eth0 >"$work/qdisc.txt"
expect_grep "create: an ingress qdisc on eth0" "qdisc ingress ffff:" "$work/qdisc.txt"
tc -n "$cns" filter show dev eth0 ingress >"$work/filter.txt"
expect_grep "create: a u32 filter redirecting eth0's ingress" "mirred \(Egress Redirect to device stratus[0-9]+\)" \
	"$work/filter.txt"
expect_grep "create: booted cold (monitor.log)" "a cold boot \(a template has no NIC\)" \
	"$root/n1/monitor.log"
expect_eq "create: no template built" "" "$(ls -A "$work/templates" 2>/dev/null)"

ip netns exec "$pns" busybox ping -c 3 -W 30 "$net.2" >"$work/ping.txt" 2>&1
expect_eq "the peer pings the guest" 0 "$?"
expect_eq "eth0 has the veth's MAC" "$mac" "$(S exec n1 cat /sys/class/net/eth0/address)"
expect_eq "eth0 has the veth's MTU" 1400 "$(S exec n1 cat /sys/class/net/eth0/mtu)"
S exec n1 ip addr show eth0 >"$work/addr.txt" 2>&1
expect_grep "ip addr: the address" "inet $net\.2/24" "$work/addr.txt"
S exec n1 ip route >"$work/route.txt" 2>&1
expect_grep "ip route: the default route" "^default via $net\.1 dev eth0" "$work/route.txt"

ip netns exec "$pns" busybox nc -l -p 7777 >"$work/nc.out" &
ncpid=$!
sleep 1
S exec n1 sh -c "echo hello-from-the-container | nc -w 30 $net.1 7777"
if wait_for "^hello-from-the-container$" "$work/nc.out" 60; then
	pass "the container's bytes reach nc -l in the peer namespace"
else
	fail "the container's bytes reach nc -l in the peer namespace: got '$(cat "$work/nc.out")'"
fi
kill "$ncpid" 2>/dev/null
wait "$ncpid" 2>/dev/null
ncpid=

# A member of the pod: the same network path, joined in the sandbox's VM, the same NIC.
make_config "/var/run/netns/$cns" container "$work/member"
timeout 300 "$stratus" --root "$root" create --bundle "$work/member" n1-m </dev/null \
	>"$work/member.out" 2>&1
expect_eq "a pod member with the network path: create exit 0" 0 "$?"
S start n1-m
expect_eq "the member sees the sandbox's eth0" "$mac" "$(S exec n1-m cat /sys/class/net/eth0/address)"
S exec n1-m ip route >"$work/member-route.txt" 2>&1
expect_grep "the member has the default route" "^default via $net\.1 dev eth0" "$work/member-route.txt"
S delete --force n1-m
expect_eq "the member's delete: exit 0" 0 "$?"

S delete --force n1
expect_eq "delete: exit 0" 0 "$?"
expect_no_grep "delete: no qdisc left on eth0" "ingress" <(tc -n "$cns" qdisc show dev eth0)
expect_no_grep "delete: no tap left" "tun type tap" <(ip -n "$cns" -d link show)
expect_eq "delete: nothing left under --root" "" "$(ls -A "$root" 2>/dev/null)"
finish
