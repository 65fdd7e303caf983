# Pods (docs/pods.md), sourced by test_cli.sh with its variables and helpers ($stratus, $root,
# $work, $bundle, S, make_config, alive, expect_*). Only stratus, with CRI's annotations: one
# sandbox VM (`sleep 1000`), its members created inside it:
#   - a member naming no container, or a member, or a paused sandbox: one line, nothing left;
#     a member whose hook fails: undone in the guest too (its ID is created again later);
#   - member 1 (no namespace paths) prints and exits 3: run's relay exits 3, state stopped,
#     its own pid namespace (the sandbox's sleep unseen);
#   - member 2 joins the pid namespace by a host path (rewritten to the sandbox's): sees the
#     sandbox's sleep; one monitor for the pod; a rw bind (its write reaches the host) and a
#     ro one (writes refused; read-only in the host's mount table too, its rootfs not);
#     ps, exec, pause (the sandbox runs on), resume, kill, delete;
#   - member 5 binds the same two host directories the other way round (member 2's rw one ro,
#     its ro one rw) with root.readonly: host mounts ro where asked; its rw bind of the
#     directory member 2 looked up read-only first writes to the host, and member 2's rw bind
#     of the directory member 5 holds read-only still writes (the share's server keeps the
#     two mounts of one directory apart);
#   - a member with a terminal (--console-socket);
#   - delete --force of the sandbox under a running member: its relay exits 137, its delete
#     cleans up; no mount, process or state left.
pod_root=$bundle/rootfs
pod_host=$work/pod-host
mkdir -p "$pod_host/rw" "$pod_host/ro"
echo "read only" >"$pod_host/ro/in-ro"
# pod_bundle NAME TYPE ARGS [JQ]: $work/pod-NAME/config.json for a container of pod "pod-sb"
pod_bundle() {
	mkdir -p "$work/pod-$1"
	(cd "$work/spec" && jq --arg root "$pod_root" --arg type "$2" --argjson args "$3" \
		'.process.terminal = false | .process.args = $args | .root.path = $root
		| .annotations = {"io.kubernetes.cri.container-type": $type,
			"io.kubernetes.cri.sandbox-id": "pod-sb"} '"${4:-}" config.json) \
		>"$work/pod-$1/config.json"
}
mounts_under_root() { grep -c " $root/" /proc/self/mountinfo; }
# host_mode MEMBER NAME: ro or rw, the host mount of <pod share>/pod-MEMBER/NAME
host_mode() { findmnt -no OPTIONS "$root/pod-sb/pod/pod-$1/$2" | cut -d, -f1; }
# bind_of MEMBER DESTINATION: the m<N> name of that bind in the pod share
bind_of() { echo "m$(jq --arg d "$2" '.mounts | map(.destination) | index($d)' "$work/pod-$1/config.json")"; }
# processes whose command line is a stratus command under this test's --root, by comm
count_comm() {
	local n=0 p
	for p in $(pgrep -f -- "--root $root "); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && n=$((n + 1))
	done
	echo $n
}

pod_bundle m1 container '["sh", "-c", "echo from-m1; ps | grep -c \"[s]leep 1000\"; exit 3"]'
expect_failure "pod: a member whose sandbox does not exist" 1 \
	'^stratus: annotation io.kubernetes.cri.sandbox-id: container "pod-sb" does not exist$' \
	S create --bundle "$work/pod-m1" pod-m1
expect_nothing_left "pod: a member without its sandbox"

pod_bundle sb sandbox '["sleep", "1000"]'
timeout 600 "$stratus" --root "$root" create --bundle "$work/pod-sb" pod-sb </dev/null \
	>"$work/pod-sb.out" 2>&1
expect_eq "pod: the sandbox's create: exit 0" 0 $?
S start pod-sb
sb_monitor=$(S state pod-sb | jq -r .pid)
expect_eq "pod: the sandbox runs" running "$(S state pod-sb | jq -r .status)"
expect_eq "pod: the pod share is a shared bind mount, its tag in state.json" "shared m0" \
	"$(findmnt -no PROPAGATION "$root/pod-sb/pod") $(jq -r .stratus.podShare "$root/pod-sb/state.json")"

# member 1: its own namespaces; run (the relay is run's child) exits with its status
timeout 600 "$stratus" --root "$root" run --keep --pid-file "$work/pod-m1.pid" \
	--bundle "$work/pod-m1" pod-m1 </dev/null >"$work/pod-m1.out" 2>"$work/pod-m1.err"
expect_eq "pod: member 1 exits 3 (its relay's status)" 3 $?
expect_eq "pod: member 1's stdout, the sandbox's sleep not in its pid namespace" "from-m1 0" \
	"$(tr '\n' ' ' <"$work/pod-m1.out" | sed 's/ $//')"
expect_eq "pod: member 1's stderr empty" "" "$(cat "$work/pod-m1.err")"
expect_eq "pod: member 1 stopped, its relay gone" "stopped gone" \
	"$(S state pod-m1 | jq -r .status) $(alive "$(cat "$work/pod-m1.pid")" && echo alive || echo gone)"
expect_eq "pod: member 1 recorded its sandbox" pod-sb "$(jq -r .stratus.sandbox "$root/pod-m1/state.json")"
S delete pod-m1
expect_eq "pod: delete of a stopped member: exit 0, its directory in the pod share gone" "0 no" \
	"$? $([ -e "$root/pod-sb/pod/pod-m1" ] && echo yes || echo no)"

# member 2: the sandbox's pid namespace by a host path, a rw and a ro bind mount
pod_bundle m2 container '["sleep", "2000"]' "| .root.readonly = false | .linux.namespaces |= map(if .type == \"pid\"
	then .path = \"/proc/$sb_monitor/ns/pid\" else . end) | .mounts += [
	{\"destination\": \"/mnt/rw\", \"type\": \"bind\", \"source\": \"$pod_host/rw\", \"options\": [\"rbind\"]},
	{\"destination\": \"/mnt/ro\", \"type\": \"bind\", \"source\": \"$pod_host/ro\", \"options\": [\"rbind\", \"ro\"]}]"
timeout 600 "$stratus" --root "$root" create --bundle "$work/pod-m2" --pid-file "$work/pod-m2.pid" \
	pod-m2 </dev/null >"$work/pod-m2.out" 2>&1
expect_eq "pod: member 2's create: exit 0" 0 $?
relay=$(cat "$work/pod-m2.pid")
expect_eq "pod: member 2's pid is its relay (--pid-file, state)" "$relay stratus-relay created" \
	"$(S state pod-m2 | jq -r .pid) $(cat "/proc/$relay/comm") $(S state pod-m2 | jq -r .status)"
expect_eq "pod: one monitor for the pod, one relay" "1 1" \
	"$(count_comm stratus-monitor) $(count_comm stratus-relay)"
S start pod-m2
expect_eq "pod: member 2 runs" running "$(S state pod-m2 | jq -r .status)"
expect_eq "pod: member 2 sees the sandbox's sleep (the pid namespace joined)" 1 \
	"$(S exec pod-m2 sh -c 'ps | grep -c "[s]leep 1000"' </dev/null)"
S ps pod-m2 >"$work/pod-ps.txt"
expect_grep "pod: ps of member 2" '^0 +[0-9]+ +[0-9]+ +sleep' "$work/pod-ps.txt"
S exec pod-m2 sh -c 'echo from-member >/mnt/rw/out' </dev/null
expect_eq "pod: member 2's write in a rw bind reaches the host" from-member "$(cat "$pod_host/rw/out" 2>&1)"
expect_eq "pod: member 2 reads a ro bind" "read only" "$(S exec pod-m2 cat /mnt/ro/in-ro </dev/null)"
expect_failure "pod: a write in the ro bind is refused" 1 "Read-only file system" \
	S exec pod-m2 touch /mnt/ro/new
expect_eq "pod: member 2's host mounts: the ro bind ro, the rw bind and rootfs rw" "ro rw rw" \
	"$(host_mode m2 "$(bind_of m2 /mnt/ro)") $(host_mode m2 "$(bind_of m2 /mnt/rw)") $(host_mode m2 rootfs)"
# member 5: the same host directories, ro and rw the other way round, a read-only rootfs
pod_bundle m5 container '["sleep", "5000"]' "| .root.readonly = true | .mounts += [
	{\"destination\": \"/mnt/rw\", \"type\": \"bind\", \"source\": \"$pod_host/rw\", \"options\": [\"rbind\", \"ro\"]},
	{\"destination\": \"/mnt/ro\", \"type\": \"bind\", \"source\": \"$pod_host/ro\", \"options\": [\"rbind\", \"rw\"]}]"
timeout 600 "$stratus" --root "$root" create --bundle "$work/pod-m5" pod-m5 </dev/null \
	>"$work/pod-m5.out" 2>&1
expect_eq "pod: member 5's create: exit 0" 0 $?
S start pod-m5
expect_eq "pod: member 5's host mounts: ro bind ro, rw bind rw, rootfs ro (root.readonly)" \
	"ro rw ro" \
	"$(host_mode m5 "$(bind_of m5 /mnt/rw)") $(host_mode m5 "$(bind_of m5 /mnt/ro)") $(host_mode m5 rootfs)"
S exec pod-m5 sh -c 'echo from-m5 >/mnt/ro/out5' </dev/null
expect_eq "pod: member 5 writes through its rw bind of member 2's ro directory (host)" from-m5 \
	"$(cat "$pod_host/ro/out5" 2>&1)"
expect_eq "pod: member 5 reads member 2's file through its ro bind" from-member \
	"$(S exec pod-m5 cat /mnt/rw/out </dev/null)"
expect_failure "pod: member 5's write in its ro bind is refused" 1 "Read-only file system" \
	S exec pod-m5 touch /mnt/rw/new5
S exec pod-m2 sh -c 'echo again >/mnt/rw/out2' </dev/null
expect_eq "pod: member 2 still writes its rw bind after member 5's ro lookups (host)" again \
	"$(cat "$pod_host/rw/out2" 2>&1)"
expect_failure "pod: member 2's ro bind stays refused after member 5's rw writes" 1 \
	"Read-only file system" S exec pod-m2 touch /mnt/ro/new
expect_eq "pod: nothing written through either ro bind" "no no" \
	"$([ -e "$pod_host/rw/new5" ] && echo yes || echo no) $([ -e "$pod_host/ro/new" ] && echo yes || echo no)"
S delete --force pod-m5
expect_eq "pod: delete --force of member 5: exit 0, its mounts gone" "0 0" \
	"$? $(grep -c " $root/pod-sb/pod/pod-m5" /proc/self/mountinfo)"
S exec pod-m2 sh -c 'exit 42' </dev/null
expect_eq "pod: exec in a member: its status" 42 $?
S pause pod-m2
expect_eq "pod: pause of member 2: paused, the sandbox running" "0 paused running" \
	"$? $(S state pod-m2 | jq -r .status) $(S state pod-sb | jq -r .status)"
expect_eq "pod: the sandbox's processes run on while member 2 is frozen" alive \
	"$(timeout 120 "$stratus" --root "$root" exec pod-sb echo alive </dev/null)"
expect_failure "pod: exec in a paused member" 1 '^stratus: exec: container "pod-m2" is paused' \
	S exec pod-m2 true
S resume pod-m2
expect_eq "pod: resume of member 2" "0 running ok" \
	"$? $(S state pod-m2 | jq -r .status) $(S exec pod-m2 echo ok </dev/null)"
expect_failure "pod: a member of a member" 1 \
	'^stratus: annotation io.kubernetes.cri.sandbox-id: container "pod-m2" is not a pod sandbox' \
	sh -c "sed 's/\"pod-sb\"/\"pod-m2\"/' '$work/pod-m1/config.json' >'$work/pod-m1/c' &&
		mv '$work/pod-m1/c' '$work/pod-m1/config.json' &&
		exec '$stratus' --root '$root' create --bundle '$work/pod-m1' pod-bad"
S pause pod-sb
expect_eq "pod: a running member of a paused sandbox: state and list say paused" "paused paused" \
	"$(S state pod-m2 | jq -r .status) $(S list --format json | jq -r '.[] | select(.id == "pod-m2") | .status')"
pod_bundle m3 container '["sleep", "3000"]'
expect_failure "pod: a member of a paused sandbox" 1 \
	'^stratus: annotation io.kubernetes.cri.sandbox-id: container "pod-sb" is paused$' \
	S create --bundle "$work/pod-m3" pod-m3
S resume pod-sb
expect_eq "pod: the member is running again with its sandbox" running "$(S state pod-m2 | jq -r .status)"
expect_eq "pod: refused members left no state and no mount" "no no 0" \
	"$([ -e "$root/pod-bad" ] && echo yes || echo no) $([ -e "$root/pod-m3" ] && echo yes || echo no) \
$(grep -cE " $root/pod-sb/pod/pod-(bad|m3)[ /]" /proc/self/mountinfo)"
# a failure after the guest's CREATE (a hook) is undone there too: the ID comes again below
pod_bundle hook container '["sleep", "3000"]' '| .hooks = {"createRuntime": [{"path": "/bin/false"}]}'
expect_failure "pod: a member whose createRuntime hook fails" 1 \
	'^stratus: hooks\.createRuntime\[0\]: /bin/false: exit status 1$' \
	S create --bundle "$work/pod-hook" pod-m4
expect_eq "pod: the failed member left no state, mount or relay" "no 0 1" \
	"$([ -e "$root/pod-m4" ] && echo yes || echo no) $(grep -c " $root/pod-sb/pod/pod-m4" /proc/self/mountinfo) \
$(count_comm stratus-relay)"
# delete --force of a running member: the guest forgets it (the same ID can come again)
for i in 1 2; do
	timeout 600 "$stratus" --root "$root" create --bundle "$work/pod-m3" pod-m4 </dev/null \
		>"$work/pod-m4.out" 2>&1
	expect_eq "pod: create of member 4 (time $i)" "0 created" "$? $(S state pod-m4 | jq -r .status)"
	m4_relay=$(S state pod-m4 | jq -r .pid)
	S start pod-m4
	S delete --force pod-m4
	expect_eq "pod: delete --force of running member 4 (time $i): exit 0, its relay gone" "0 gone" \
		"$? $(alive "$m4_relay" && echo alive || echo gone)"
done
S kill pod-m2 KILL
for i in $(seq 100); do alive "$relay" || break; sleep 0.2; done
expect_eq "pod: kill KILL of member 2: stopped, the sandbox runs on" "stopped running" \
	"$(S state pod-m2 | jq -r .status) $(S state pod-sb | jq -r .status)"
S delete pod-m2
expect_eq "pod: delete of member 2: exit 0, its mounts gone" "0 1" "$? $(mounts_under_root)"

# a member with a terminal through --console-socket: the relay sends the pty's master
pod_bundle tty container '["sh"]' '| .process.terminal = true'
python3 "$here/cli/console-socket.py" "$work/pod-console.sock" "$work/pod-tty.out" \
	'[ -t 0 ] && [ -t 1 ] && echo is-a-tty; echo tty-$((6*7)); exit 7' &
receiver=$!
for i in $(seq 50); do [ -S "$work/pod-console.sock" ] && break; sleep 0.1; done
timeout 600 "$stratus" --root "$root" run --console-socket "$work/pod-console.sock" \
	--bundle "$work/pod-tty" pod-tty </dev/null >"$work/pod-tty.run" 2>&1
expect_eq "pod: a member's terminal: run exits with the shell's status" 7 $?
wait $receiver
expect_grep "pod: a member's terminal: a tty, input in, output out" '^tty-42' "$work/pod-tty.out"
expect_grep "pod: a member's terminal: stdin and stdout are a terminal" '^is-a-tty' "$work/pod-tty.out"

# member 3 runs when its sandbox is deleted with --force: the VM goes, its relay exits 137
timeout 600 "$stratus" --root "$root" run --keep --bundle "$work/pod-m3" pod-m3 </dev/null \
	>"$work/pod-m3.out" 2>&1 &
runner=$!
for i in $(seq 600); do [ "$(S state pod-m3 2>/dev/null | jq -r .status)" = running ] && break; sleep 0.2; done
expect_failure "pod: delete of a running sandbox" 1 \
	'^stratus: delete: container "pod-sb" is running: stop it first or use --force' S delete pod-sb
S delete --force pod-sb
expect_eq "pod: delete --force of the sandbox: exit 0, its monitor gone" "0 gone" \
	"$? $(alive "$sb_monitor" && echo alive || echo gone)"
wait $runner
expect_eq "pod: the member's relay exits 137 with the VM" 137 $?
expect_eq "pod: the member's state stays, stopped" stopped "$(S state pod-m3 | jq -r .status)"
S delete pod-m3
expect_eq "pod: delete of the member whose sandbox is gone" 0 $?
expect_eq "pod: no mount left under --root" 0 "$(mounts_under_root)"
expect_eq "pod: no monitor or relay left" "0 0" "$(count_comm stratus-monitor) $(count_comm stratus-relay)"
expect_nothing_left "pod"
# a failure above may have left mounts: never leave them to the test's rm -rf of $work
findmnt -rn -o TARGET | grep "^$root/" | sort -r | xargs -r umount -l 2>/dev/null
