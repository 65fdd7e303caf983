# shellcheck shell=bash
# shim/net.sh (sourced by test_shim.sh, its helpers and variables set): sections 9 and 10,
# container networking through the shim (docs/networking.md), as containerd users give a
# container a network: `ctr run --with-ns network:/var/run/netns/NAME`, and CRI's pod network
# namespace, which the sandbox and every member name. Two `ip netns` namespaces joined by a
# veth: eth0 NET.2/24 with a default route via NET.1 in the container's, peer0 NET.1/24 in the
# peer's. Two VMs.

shimnet_c=stratus-shimnet-$$-c
shimnet_p=stratus-shimnet-$$-p
shimnet_path=/var/run/netns/$shimnet_c
net=10.124.$(($$ % 250 + 1))
shimnet_nc=
shimnet_cleanup() {
	[ -n "$shimnet_nc" ] && kill "$shimnet_nc" 2>/dev/null
	ip netns del "$shimnet_c" 2>/dev/null
	ip netns del "$shimnet_p" 2>/dev/null
	return 0
}
# containerd's clean-up first (its tasks' delete removes their tc filters), then the namespaces
trap 'cleanup; shimnet_cleanup' EXIT

# shimnet_listen PORT: a `nc -l` in the peer namespace, its bytes in $work/nc-PORT.out
shimnet_listen() {
	ip netns exec "$shimnet_p" busybox nc -l -p "$1" >"$work/nc-$1.out" 2>&1 &
	shimnet_nc=$!
	local i
	for i in $(seq 300); do
		ip netns exec "$shimnet_p" ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
}
# shimnet_received WHAT PORT TEXT: the peer's nc got TEXT
shimnet_received() {
	if wait_for "^$3\$" "$work/nc-$2.out" 60; then pass "$1"; else
		fail "$1: got '$(cat "$work/nc-$2.out")'"
	fi
	kill "$shimnet_nc" 2>/dev/null
	wait "$shimnet_nc" 2>/dev/null
	shimnet_nc=
}
# shimnet_nothing_left WHAT: no ingress qdisc on eth0, no tap in the namespace
shimnet_nothing_left() {
	expect_no_grep "$1: no ingress qdisc left on eth0" ingress \
		<(tc -n "$shimnet_c" qdisc show dev eth0)
	expect_no_grep "$1: no tap left" "tun type tap" <(ip -n "$shimnet_c" -d link show)
}

if ! command -v ip >/dev/null || ! command -v tc >/dev/null || ! command -v busybox >/dev/null; then
	fail "net: ip, tc and busybox are needed (packaging/deps.txt: iproute2, busybox-static)"
elif ! { ip netns add "$shimnet_c" && ip netns add "$shimnet_p" &&
	ip -n "$shimnet_c" link add eth0 type veth peer name peer0 netns "$shimnet_p" &&
	ip -n "$shimnet_c" addr add "$net.2/24" dev eth0 &&
	ip -n "$shimnet_c" link set eth0 up && ip -n "$shimnet_c" link set lo up &&
	ip -n "$shimnet_c" route add default via "$net.1" &&
	ip -n "$shimnet_p" addr add "$net.1/24" dev peer0 &&
	ip -n "$shimnet_p" link set peer0 up && ip -n "$shimnet_p" link set lo up; }; then
	fail "net: make the namespaces and the veth"
else
	mac=$(ip netns exec "$shimnet_c" cat /sys/class/net/eth0/address)

	# ---- 9. ctr run --with-ns network:PATH ----------------------------------------------------
	shimnet_listen 7777
	c run --rm --with-ns "network:$shimnet_path" --runtime $rt "$image" net1 sh -c \
		"cat /sys/class/net/eth0/address; ip addr show eth0; ip route
		ping -c 1 -W 30 $net.1 && echo ping-ok
		echo hello-from-ctr | nc -w 30 $net.1 7777" </dev/null >"$work/net1.out" 2>"$work/net1.err"
	status=$?
	expect_eq "net: run --with-ns network: exit status" 0 $status
	[ $status = 0 ] || sed 's/^/    | /' "$work/net1.err" | tail -n 5
	expect_grep "net: eth0 has the veth's MAC" "^$mac\$" "$work/net1.out"
	expect_grep "net: eth0 has the veth's address" "inet $net\.2/24 " "$work/net1.out"
	expect_grep "net: the default route" "^default via $net\.1 dev eth0" "$work/net1.out"
	expect_grep "net: the peer answers the container's ping" '^ping-ok$' "$work/net1.out"
	shimnet_received "net: the container's bytes reach nc -l in the peer namespace" 7777 \
		hello-from-ctr
	shimnet_nothing_left "net: after run --rm"

	# ---- 10. a pod in the namespace: sandbox and member -----------------------------------------
	netpod=netpod1
	c run -d --null-io --annotation io.kubernetes.cri.container-type=sandbox \
		--annotation "io.kubernetes.cri.sandbox-id=$netpod" --with-ns "network:$shimnet_path" \
		--runtime $rt "$image" $netpod sleep 1000 >/dev/null 2>"$work/netpod.err"
	expect_eq "net pod: run -d the sandbox: exit status" 0 $?
	wait_status $netpod RUNNING 120 ||
		fail "net pod: sandbox not RUNNING ($(task_status $netpod)): $(cat "$work/netpod.err")"
	expect_grep "net pod: eth0's ingress redirected to a tap" \
		"mirred \(Egress Redirect to device stratus[0-9]+\)" \
		<(tc -n "$shimnet_c" filter show dev eth0 ingress)
	ip netns exec "$shimnet_p" busybox ping -c 3 -W 30 "$net.2" >"$work/netpod-ping.out" 2>&1
	expect_eq "net pod: the peer pings the sandbox's VM" 0 $?
	expect_eq "net pod: exec in the sandbox: eth0's MAC" "$mac" \
		"$(c task exec --exec-id nx1 $netpod cat /sys/class/net/eth0/address 2>&1)"
	shimnet_listen 7778
	c run --rm --annotation io.kubernetes.cri.container-type=container \
		--annotation "io.kubernetes.cri.sandbox-id=$netpod" --with-ns "network:$shimnet_path" \
		--runtime $rt "$image" netm1 sh -c \
		"cat /sys/class/net/eth0/address; ip addr show eth0; ip route
		echo hello-from-member | nc -w 30 $net.1 7778" </dev/null >"$work/netm1.out" \
		2>"$work/netm1.err"
	status=$?
	expect_eq "net pod: a member: exit status" 0 $status
	[ $status = 0 ] || sed 's/^/    | /' "$work/netm1.err" | tail -n 5
	expect_grep "net pod: the member sees the sandbox's eth0" "^$mac\$" "$work/netm1.out"
	expect_grep "net pod: the member's eth0 has the address" "inet $net\.2/24 " "$work/netm1.out"
	expect_grep "net pod: the member has the default route" "^default via $net\.1 dev eth0" \
		"$work/netm1.out"
	shimnet_received "net pod: the member's bytes reach nc -l in the peer namespace" 7778 \
		hello-from-member
	n=0
	for p in $(peers_pids_mentioning "-id $netpod "); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = stratus-monitor ] && n=$((n + 1))
	done
	expect_eq "net pod: one VM for the sandbox and its member" 1 $n

	c task kill -s SIGKILL $netpod >/dev/null 2>&1
	wait_status $netpod STOPPED 120
	c task delete $netpod >/dev/null 2>&1
	c container delete $netpod >/dev/null 2>&1
	expect_eq "net pod: sandbox deleted" 0 $?
	for i in $(seq 60); do
		[ -z "$(peers_pids_mentioning "-id $netpod ")" ] && break
		sleep 0.5
	done
	expect_eq "net pod: no shim or monitor of the pod left" "" \
		"$(peers_pids_mentioning "-id $netpod ")"
	shimnet_nothing_left "net pod: after the sandbox's delete"
fi
