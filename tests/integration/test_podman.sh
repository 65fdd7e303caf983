#!/usr/bin/env bash
# podman 4 driving an OCI runtime through conmon, the way users run containers: a private,
# rootful podman (peers/podman-private.sh: its own storage, runroot, containers.conf,
# cgroupfs, file events, no network), the local busybox image (peers/make-busybox-image.sh,
# `podman load`), then:
#   1. run --rm echo hi: prints hi; exit codes 0, 1, 3 and 137 (podman kill -s KILL while
#      run waits) arrive as podman run's status; args, env, cwd and user.
#   2. stdin through -i; a terminal through -it (script(1) gives podman a pty): `tty` names a
#      /dev/pts device, `stty size` is the caller's terminal size, the shell's exit status
#      arrives.
#   3. a detached container: logs, exec (output, status, env, exec -it), pause/unpause (state
#      and exec afterwards), stop (TERM reaches a trapping init: its exit code 42).
#   4. kill: -s USR1 reaches a trapping init, default kill gives 137 (podman wait).
#   5. rm -f of a running container.
#   6. a CNI bridge network of the test's own (peers/podman-net.sh: podman network create in
#      the private network config dir, a unique bridge, a free 10.123.X.0/24): run --rm
#      --network sees eth0 with an address of the subnet and the default route via the
#      gateway, which answers its ping; a detached container: exec sees eth0 with podman's
#      address and MAC, the host pings it over the bridge, its nc reaches a listener on the
#      bridge's address; after rm, CNI's teardown ran (no lease, no nat rule) and network rm
#      took the bridge; the clean-up leaves iptables and /var/lib/cni as they were.
# Afterwards nothing is left: no container, no conmon/runtime/monitor process, no mount
# under the private directory, no container process (the marker sleep), nothing in the
# runtime's --root (a wrapper of the runtime adds --root /tmp/pmrt.XXXXXX).
# usage: test_podman.sh RUNTIME   (stratus, crun, runc, ...; as root; skipped otherwise)
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peers/podman-private.sh"
source "$here/peers/podman-net.sh"

runtime=${1:?usage: test_podman.sh RUNTIME}
case $runtime in
*/*) runtime=$(realpath -s "$runtime") ;;
*) runtime=$(command -v "$runtime") || { echo "FAIL: runtime $1 not found"; exit 1; } ;;
esac
need_file "$runtime" "the runtime"
[ "$(id -u)" = 0 ] || { echo "SKIP: podman tests need root"; exit 77; }
for tool in podman conmon script jq ip iptables busybox python3; do
	command -v $tool >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
case $(basename "$runtime") in stratus*) need_kvm ;; esac

image=localhost/stratus-busybox:latest
marker=$((100000 + $$ % 100000)) # `sleep $marker`: finds a leaked container process
podman_private_setup "$work/podman" "$runtime"
cleanup() {
	[ -n "${nc_pid:-}" ] && kill "$nc_pid" 2>/dev/null
	podman_private_cleanup
	podman_net_cleanup
	rm -rf "$work"
}
trap cleanup EXIT
echo "# runtime $runtime, podman $(podman --version | awk '{print $3}'), in $work"

# run_out WHAT EXPECTED-STATUS EXPECTED-OUTPUT PODMAN-ARGS...: output and status of a command
run_out() {
	local what=$1 want_status=$2 want_out=$3 status
	shift 3
	pm "$@" </dev/null >"$work/out" 2>"$work/err"
	status=$?
	expect_eq "$what: exit status" "$want_status" "$status"
	expect_eq "$what: output" "$want_out" "$(tr -d '\r' <"$work/out")"
	[ "$status" = "$want_status" ] || sed 's/^/    | /' "$work/err" | tail -n 5
}

# state NAME: podman's status of a container
state() { pm inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }

# wait_state NAME STATUS [SECONDS]
wait_state() {
	local i
	for i in $(seq $((${3:-60} * 2))); do
		[ "$(state "$1")" = "$2" ] && return 0
		sleep 0.5
	done
	return 1
}

# ---- the image --------------------------------------------------------------------------
"$here/peers/make-busybox-image.sh" "$work/busybox.tar" --name "$image" >/dev/null ||
	{ echo "FAIL: make-busybox-image.sh"; exit 1; }
pm load -i "$work/busybox.tar" >"$work/load.out" 2>&1
expect_grep "podman load names the image" "Loaded image.*$image" "$work/load.out"
expect_eq "the image's command" '[sh]' "$(pm image inspect -f '{{.Config.Cmd}}' "$image")"

# ---- 1. run and exit codes ----------------------------------------------------------------
R=(run --rm --network none)
run_out "run echo hi" 0 hi "${R[@]}" "$image" echo hi
run_out "run exit 1" 1 "" "${R[@]}" "$image" sh -c 'exit 1'
run_out "run exit 3" 3 "" "${R[@]}" "$image" sh -c 'exit 3'
# kill -9 of the container while `podman run` waits: run's status is 137.
pm run --rm --network none --name k9 "$image" sh -c "echo up; sleep $marker" \
	</dev/null >"$work/k9.out" 2>"$work/k9.err" &
k9=$!
wait_for '^up' "$work/k9.out" 120 || fail "run k9: never printed up: $(cat "$work/k9.err")"
pm kill -s KILL k9 >/dev/null 2>"$work/kill.err"
expect_eq "kill -s KILL of a running container: exit status" 0 $?
wait $k9
expect_eq "run: the container killed by KILL: exit status" 137 $?
run_out "run: args, env, cwd, user" 0 "a b|V=1|/tmp|1000:1000" "${R[@]}" -e V=1 -w /tmp \
	-u 1000:1000 "$image" sh -c 'echo "$1 $2|V=$V|$(pwd)|$(id -u):$(id -g)"' sh a b
expect_eq "run --rm leaves no container" "" "$(pm ps -aq)"

# ---- 2. stdin and a terminal --------------------------------------------------------------
printf 'line one\nline two\n' | pm run --rm -i --network none "$image" cat >"$work/cat.out" 2>&1
expect_eq "run -i: stdin reaches the container" "line one|line two" \
	"$(paste -sd'|' "$work/cat.out")"
in_pty "$work/tty.out" "$pm_dir/podman" run --rm -it --network none "$image" \
	sh -c 'tty; stty size; [ -t 1 ] && echo is-a-tty; exit 5' </dev/null
status=$?
expect_eq "run -it: exit status" 5 "$status"
expect_grep "run -it: tty names a pty" '^/dev/pts/[0-9]+$' "$work/tty.out"
expect_grep "run -it: the terminal has the caller's size" '^30 100' "$work/tty.out"
expect_grep "run -it: stdout is a terminal" '^is-a-tty' "$work/tty.out"
# Input typed on the terminal reaches an interactive shell, which echoes it.
{
	sleep 1
	printf 'echo typed-$((6 * 7))\n'
	sleep 1
	printf 'exit 9\n'
} | in_pty "$work/tty2.out" "$pm_dir/podman" run --rm -it --network none "$image" sh
status=$?
expect_eq "run -it sh: exit status of the typed exit" 9 "$status"
expect_grep "run -it sh: typed input runs" 'typed-42' "$work/tty2.out"

# ---- 3. a detached container ----------------------------------------------------------------
pm run -d --name c1 --network none "$image" \
	sh -c "trap 'echo got-term; exit 42' TERM; echo log-line; echo err-line >&2; while :; do sleep $marker & wait; done" \
	>"$work/c1.id" 2>"$work/c1.err"
expect_eq "run -d: exit status" 0 $?
if wait_state c1 running 120; then pass "run -d: running"; else
	fail "run -d: not running ($(state c1))"
	sed 's/^/    | /' "$work/c1.err"
fi
for i in $(seq 60); do pm logs c1 >"$work/logs" 2>&1; grep -q err-line "$work/logs" && break; sleep 1; done
expect_grep "logs: stdout" '^log-line' "$work/logs"
expect_grep "logs: stderr" '^err-line' "$work/logs"
run_out "exec echo" 0 from-exec exec c1 echo from-exec
run_out "exec exit status" 7 "" exec c1 sh -c 'exit 7'
run_out "exec -e -w -u" 0 "X=y /etc 1000" exec -e X=y -w /etc -u 1000 c1 sh -c 'echo "X=$X $(pwd) $(id -u)"'
run_out "exec sees the init's processes" 0 yes exec c1 sh -c "ps | grep -q '[s]leep $marker' && echo yes"
in_pty "$work/exec-tty.out" "$pm_dir/podman" exec -it c1 sh -c 'tty; exit 4' </dev/null
expect_eq "exec -it: exit status" 4 $?
expect_grep "exec -it: a pty" '^/dev/pts/[0-9]+$' "$work/exec-tty.out"

pm pause c1 >/dev/null 2>"$work/pause.err"
expect_eq "pause: exit status" 0 $?
expect_eq "pause: state" paused "$(state c1)"
pm unpause c1 >/dev/null 2>"$work/unpause.err"
expect_eq "unpause: exit status" 0 $?
expect_eq "unpause: state" running "$(state c1)"
run_out "exec after unpause" 0 still-here exec c1 echo still-here

pm stop -t 60 c1 >/dev/null 2>"$work/stop.err"
expect_eq "stop: exit status" 0 $?
expect_eq "stop: state" exited "$(state c1)"
expect_eq "stop: TERM reached the trapping init (exit 42)" 42 \
	"$(pm inspect -f '{{.State.ExitCode}}' c1)"
pm logs c1 >"$work/logs" 2>&1
expect_grep "stop: the trap ran" '^got-term' "$work/logs"
pm rm c1 >/dev/null 2>&1
expect_eq "rm of a stopped container" 0 $?

# ---- 4. kill ----------------------------------------------------------------------------------
pm run -d --name c2 --network none "$image" \
	sh -c "trap 'echo got-usr1' USR1; echo ready; while :; do sleep $marker & wait; done" \
	>/dev/null 2>"$work/c2.err"
wait_state c2 running 120 || fail "c2: not running ($(state c2)): $(cat "$work/c2.err")"
for i in $(seq 60); do pm logs c2 2>/dev/null | grep -q ready && break; sleep 1; done
pm kill -s USR1 c2 >/dev/null 2>"$work/kill.err"
expect_eq "kill -s USR1: exit status" 0 $?
for i in $(seq 60); do pm logs c2 >"$work/logs" 2>&1; grep -q got-usr1 "$work/logs" && break; sleep 1; done
expect_grep "kill -s USR1: the trap ran" '^got-usr1' "$work/logs"
expect_eq "kill -s USR1: still running" running "$(state c2)"
pm kill c2 >/dev/null 2>"$work/kill.err"
expect_eq "kill: exit status" 0 $?
expect_eq "kill: podman wait gives 137" 137 "$(pm wait c2 2>/dev/null)"
expect_eq "kill: state" exited "$(state c2)"
pm rm c2 >/dev/null 2>&1

# ---- 5. rm -f of a running container ---------------------------------------------------------
pm run -d --name c3 --network none "$image" sh -c "while :; do sleep $marker & wait; done" \
	>/dev/null 2>"$work/c3.err"
wait_state c3 running 120 || fail "c3: not running ($(state c3)): $(cat "$work/c3.err")"
pm rm -f -t 0 c3 >/dev/null 2>"$work/rm.err"
expect_eq "rm -f: exit status" 0 $?
expect_eq "rm -f: the container is gone" "" "$(pm ps -aq)"

# ---- 6. a bridge network -------------------------------------------------------------------
# A subnet no route of the host's uses, a bridge name no link has.
x=$(($$ % 200 + 20))
while ip -4 route show | grep -q "^10\.123\.$x\." && [ $x -lt 254 ]; do x=$((x + 1)); done
net=stnet$$ sub=10.123.$x gw=10.123.$x.1
if ! podman_net_setup "$net" "$net" "$sub.0/24" 2>"$work/net.err"; then
	fail "network create $net: $(tr '\n' ' ' <"$work/net.err")"
else
	expect_eq "network create: the bridge of our own" "$net" \
		"$(pm network inspect -f '{{.NetworkInterface}}' "$net" 2>&1)"
	pm run --rm --network "$net" "$image" sh -c \
		"ip addr show eth0; ip route; ping -c 1 -W 30 $gw && echo ping-ok" \
		</dev/null >"$work/net1.out" 2>"$work/net1.err"
	status=$?
	expect_eq "run --network: exit status" 0 "$status"
	[ "$status" = 0 ] || sed 's/^/    | /' "$work/net1.err" | tail -n 5
	expect_grep "run --network: eth0 has an address of the subnet" \
		"inet $sub\.[0-9]+/24 .*eth0" "$work/net1.out"
	expect_grep "run --network: the default route via the gateway" "^default via $gw dev eth0" \
		"$work/net1.out"
	expect_grep "run --network: the gateway answers its ping" '^ping-ok$' "$work/net1.out"

	# a detached container: podman's view of its network is what the guest has
	nc_port=$((20000 + $$ % 20000))
	pm run -d --name n1 --network "$net" "$image" sh -c "while :; do sleep $marker & wait; done" \
		>/dev/null 2>"$work/n1.err"
	wait_state n1 running 120 || fail "n1: not running ($(state n1)): $(cat "$work/n1.err")"
	# a listener on the bridge's address only (the bridge has it since the first container;
	# busybox nc cannot bind an address)
	python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(600)
c, _ = s.accept(); c.settimeout(60); d = b""
while (b := c.recv(4096)): d += b
sys.stdout.buffer.write(d)' "$gw" "$nc_port" >"$work/nc.out" 2>"$work/nc.err" &
	nc_pid=$!
	for i in $(seq 300); do ss -Hltn "src $gw:$nc_port" | grep -q . && break; sleep 0.1; done
	ip=$(pm inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" n1 2>&1)
	mac=$(pm inspect -f "{{(index .NetworkSettings.Networks \"$net\").MacAddress}}" n1 2>&1)
	expect_grep "inspect: the container's address is in the subnet" "^$sub\.[0-9]+\$" <(echo "$ip")
	pm exec n1 ip addr show eth0 >"$work/n1-addr.out" 2>&1
	expect_grep "exec: eth0 has podman's address" "inet $ip/24 " "$work/n1-addr.out"
	expect_eq "exec: eth0 has podman's MAC" "$mac" \
		"$(pm exec n1 cat /sys/class/net/eth0/address 2>&1 | tr -d '\r')"
	busybox ping -c 1 -W 30 "$ip" >"$work/ping.out" 2>&1
	expect_eq "the host pings the container over the bridge" 0 $?
	pm exec n1 sh -c "echo hello-over-the-bridge | nc -w 30 $gw $nc_port" >/dev/null 2>&1
	if wait_for '^hello-over-the-bridge$' "$work/nc.out" 60; then
		pass "exec: nc reaches a listener on the bridge's address"
	else
		fail "exec: nc reaches a listener on the bridge's address: got '$(cat "$work/nc.out")'"
	fi
	kill "$nc_pid" 2>/dev/null
	wait "$nc_pid" 2>/dev/null
	nc_pid=
	# kill, wait, rm rather than rm -f (section 5): podman gives a container 5 s after its
	# SIGKILL before rm -f fails, which a loaded host can exceed
	pm kill n1 >/dev/null 2>"$work/rm.err" && pm wait n1 >/dev/null 2>>"$work/rm.err" &&
		pm rm n1 >/dev/null 2>>"$work/rm.err"
	status=$?
	expect_eq "kill, wait and rm of a container on the network: exit status" 0 $status
	[ "$status" = 0 ] || sed 's/^/    | /' "$work/rm.err" | tail -n 5
	# CNI's DEL ran for both containers: no lease, no masquerade rule naming the network
	expect_eq "after rm: no address leased" "" \
		"$(ls /var/lib/cni/networks/"$net" 2>/dev/null | grep -E '^[0-9.]+$')"
	expect_eq "after rm: no nat rule of the network" "" "$(podman_net_iptables | grep '^nat')"
	pm network rm "$net" >/dev/null 2>"$work/netrm.err"
	status=$?
	expect_eq "network rm: exit status" 0 $status
	[ "$status" = 0 ] || sed 's/^/    | /' "$work/netrm.err" | tail -n 5
	expect_eq "network rm: the bridge is gone" "" "$(ip link show "$net" 2>/dev/null)"
fi
podman_net_cleanup
expect_eq "clean-up: no iptables rule of the network left" "" "$(pmnet_name=$net podman_net_iptables)"
expect_eq "clean-up: no firewall chain of ours left" "" "$(podman_net_own_chains)"
expect_eq "clean-up: no bridge left" "" "$(ip link show "$net" 2>/dev/null)"
expect_eq "clean-up: no host-local state left" "" "$(ls -d /var/lib/cni/networks/"$net" 2>/dev/null)"
expect_eq "clean-up: net.ipv4.ip_forward as before" "$pmnet_ip_forward" "$(cat /proc/sys/net/ipv4/ip_forward)"

# ---- nothing left ------------------------------------------------------------------------------
sleep 1
expect_eq "no container left" "" "$(pm ps -aq)"
left=$(pm_leftover_pids | while read -r p; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)
expect_eq "no conmon/runtime process left" "" "$left"
expect_eq "no container process left" "" "$(peers_pids_mentioning "sleep $marker")"
expect_eq "nothing left in the runtime's --root" "" "$(find "$pm_runtime_root" -mindepth 1 | head -n 3)"
expect_eq "no mount left but the storage's own" "" \
	"$(pm_leftover_mounts | grep -v -e "^$pm_dir/root/overlay\$" -e "^$pm_dir/root\$")"
finish
