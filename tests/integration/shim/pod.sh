# shellcheck shell=bash
# shim/pod.sh (sourced by test_shim.sh, its helpers and variables set): section 7, a pod in one
# VM (docs/pods.md). ctr writes the annotations containerd's CRI plugin writes: the sandbox's
# `start` makes the pod's shim, every member's joins it, and libstratus creates the members in
# the sandbox's VM. One VM for the whole section.

# ---- 7. a pod -----------------------------------------------------------------------------------
pod=pod1
sandbox_ann=(--annotation io.kubernetes.cri.container-type=sandbox
	--annotation "io.kubernetes.cri.sandbox-id=$pod")
member_ann=(--annotation io.kubernetes.cri.container-type=container
	--annotation "io.kubernetes.cri.sandbox-id=$pod")
# pod_pids COMM: the pod's processes of that name (the shim and everything it forked carry
# the sandbox's "-id pod1 "): stratus-monitor (the VM), stratus-relay (members, execs).
pod_pids() {
	local p
	for p in $(peers_pids_mentioning "-id $pod "); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && echo "$p"
	done
	return 0
}

# the events of the section, to find each TaskExit's container id (see section 2)
ctr -a "$ctd_sock" -n peers events >"$work/pod-events.out" 2>&1 &
pod_events=$!
for i in $(seq 120); do
	c namespaces label peers stratus-pod-probe="$i" >/dev/null 2>&1
	grep -q '/namespaces/update' "$work/pod-events.out" && break
	sleep 0.5
done

c run -d --null-io "${sandbox_ann[@]}" --runtime $rt "$image" $pod sleep 1000 \
	>/dev/null 2>"$work/pod.err"
expect_eq "pod: run -d the sandbox: exit status" 0 $?
wait_status $pod RUNNING 120 ||
	fail "pod: sandbox not RUNNING ($(task_status $pod)): $(cat "$work/pod.err")"
sandbox_pid=$(c task ls | awk -v id=$pod '$1 == id { print $2 }')

# members run to their end: output, exit status, TaskExit named after the member
run_out "pod: member echo hi" 0 hi run --rm "${member_ann[@]}" --runtime $rt "$image" pm1 echo hi
run_out "pod: member exit 3, stderr apart" 3 out run --rm "${member_ann[@]}" --runtime $rt \
	"$image" pm2 sh -c 'echo out; echo err >&2; exit 3'
expect_eq "pod: member exit 3: stderr" err "$(cat "$work/err")"
# (in the sandbox's pid namespace, where it is not the init a SIGKILL of its own cannot end)
run_out "pod: member killed by SIGKILL: 137" 137 "" run --rm "${member_ann[@]}" \
	--with-ns "pid:/proc/$sandbox_pid/ns/pid" --runtime $rt "$image" pm3 sh -c 'kill -9 $$'
# a member's own pid namespace: ps sees itself only; with the sandbox's (--with-ns, the
# sandbox task's host pid as CRI writes it), it sees the sandbox's sleep too
c run --rm "${member_ann[@]}" --runtime $rt "$image" pm4 ps </dev/null >"$work/pm4.out" \
	2>"$work/pm4.err"
expect_eq "pod: member ps: exit status" 0 $?
expect_grep "pod: member ps: sees its own ps" ' ps$' "$work/pm4.out"
expect_no_grep "pod: member ps: does not see the sandbox's sleep" 'sleep 1000' "$work/pm4.out"
c run --rm "${member_ann[@]}" --with-ns "pid:/proc/$sandbox_pid/ns/pid" --runtime $rt "$image" \
	pm5 ps </dev/null >"$work/pm5.out" 2>"$work/pm5.err"
expect_eq "pod: member ps in the sandbox's pid namespace: exit status" 0 $?
expect_grep "pod: member ps in the sandbox's pid namespace: sees its sleep" 'sleep 1000' \
	"$work/pm5.out"

# a detached member: the VM is still the sandbox's only
c run -d --null-io --memory-limit 16777216 "${member_ann[@]}" --runtime $rt "$image" pm6 \
	sh -c 'while :; do sleep 999 & wait; done' >/dev/null 2>"$work/pm6.err"
expect_eq "pod: run -d a member: exit status" 0 $?
wait_status pm6 RUNNING 120 ||
	fail "pod: pm6 not RUNNING ($(task_status pm6)): $(cat "$work/pm6.err")"
expect_eq "pod: one monitor (one VM) for the sandbox and its members" 1 \
	"$(pod_pids stratus-monitor | wc -l)"
expect_eq "pod: one shim for the pod" 1 "$(pod_pids containerd-shim | wc -l)"
expect_eq "pod: no shim of a member's own" "" "$(peers_pids_mentioning "-id pm")"
# (its sh forks the sleep once it runs: wait for it)
for i in $(seq 60); do
	c task ps pm6 >"$work/pm6-ps.out" 2>&1
	[ "$(grep -cE '^[0-9]+ ' "$work/pm6-ps.out")" = 2 ] && break
	sleep 0.5
done
expect_eq "pod: task ps of a member: its sh and its sleep" 2 \
	"$(grep -cE '^[0-9]+ ' "$work/pm6-ps.out")"
[ "$(grep -cE '^[0-9]+ ' "$work/pm6-ps.out")" = 2 ] || sed 's/^/    | /' "$work/pm6-ps.out"
# a container naming a member as its sandbox reaches the pod's shim (pm6's address), and
# libstratus refuses it: its one line is ctr's error; the pod goes on
c run --rm --annotation io.kubernetes.cri.container-type=container \
	--annotation io.kubernetes.cri.sandbox-id=pm6 --runtime $rt "$image" pbad true \
	</dev/null >/dev/null 2>"$work/pbad.err"
expect_eq "pod: a member of a member: refused" 1 $?
expect_grep "pod: a member of a member: libstratus says why" \
	'annotation io.kubernetes.cri.sandbox-id: container .pm6. is not a pod sandbox' \
	"$work/pbad.err"
expect_eq "pod: a refused member leaves the pod running" "RUNNING RUNNING" \
	"$(task_status $pod) $(task_status pm6)"
expect_eq "pod: a refused member leaves no state" "" "$(find "$work/shimroot" -name pbad)"
c task metrics pm6 >"$work/pm6-metrics.out" 2>&1
expect_eq "pod: task metrics of a member: exit status" 0 $?
expect_grep "pod: task metrics of a member: memory usage" 'memory\.usage_in_bytes|memory.usage' \
	"$work/pm6-metrics.out"
pm6_pid=$(c task ls | awk '$1 == "pm6" { print $2 }')
relay_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$pm6_pid/status")
echo "# a member's relay: ${relay_kib:-?} KiB resident"
run_out "pod: exec in a member" 4 in-pm6 task exec --exec-id x1 pm6 sh -c 'echo in-pm6; exit 4'
c task exec --exec-id x2 pm6 ps </dev/null >"$work/pm6-exec-ps.out" 2>&1
expect_grep "pod: exec in a member: ps sees the member's sleep" 'sleep 999' "$work/pm6-exec-ps.out"
expect_no_grep "pod: exec in a member: ps does not see the sandbox's" 'sleep 1000' \
	"$work/pm6-exec-ps.out"
# OOM in a member: its TaskOOM comes on the sandbox's event connection, naming the member
c task exec --exec-id x4 pm6 dd if=/dev/zero of=/dev/null bs=32M count=1 </dev/null \
	>/dev/null 2>&1
expect_eq "pod: exec beyond a member's memory limit: killed (137)" 137 $?
wait_for '/tasks/oom' "$work/pod-events.out" 60 || true
expect_grep "pod: TaskOOM of a member names it" '/tasks/oom.*"container_id":"pm6"' \
	"$work/pod-events.out"
# pause a member: the sandbox (and the VM) go on
c task pause pm6 >/dev/null 2>"$work/pm6-pause.err"
expect_eq "pod: task pause of a member: exit status" 0 $?
expect_eq "pod: task pause of a member: PAUSED" PAUSED "$(task_status pm6)"
expect_eq "pod: the sandbox runs while a member is paused" RUNNING "$(task_status $pod)"
run_out "pod: exec in the sandbox while a member is paused" 0 up task exec --exec-id s1 $pod \
	echo up
c task resume pm6 >/dev/null 2>"$work/pm6-resume.err"
expect_eq "pod: task resume of a member: exit status" 0 $?
expect_eq "pod: task resume of a member: RUNNING" RUNNING "$(task_status pm6)"
run_out "pod: exec in a resumed member" 0 back task exec --exec-id x3 pm6 echo back
# a member with a terminal
if command -v script >/dev/null; then
	SHELL=/bin/sh timeout -k 10 300 script -qefc "stty rows 33 cols 101; $(printf '%q ' ctr \
		-a "$ctd_sock" -n peers run -t --rm "${member_ann[@]}" --runtime $rt "$image" pm7 \
		sh -c '[ -t 1 ] && echo is-a-tty; exit 6')" "$work/pm7.out" </dev/null >/dev/null 2>&1
	expect_eq "pod: run -t of a member: exit status" 6 $?
	expect_grep "pod: run -t of a member: stdout is a terminal" 'is-a-tty' "$work/pm7.out"
fi
# kill a member: 137, the sandbox goes on
c task kill -s SIGKILL pm6 >/dev/null 2>"$work/pm6-kill.err"
expect_eq "pod: task kill of a member: exit status" 0 $?
wait_status pm6 STOPPED 120
expect_eq "pod: task kill of a member: STOPPED" STOPPED "$(task_status pm6)"
expect_eq "pod: the sandbox runs after a member was killed" RUNNING "$(task_status $pod)"
c task delete pm6 >"$work/pm6-delete.out" 2>&1
expect_grep "pod: task delete of a killed member: 137" 'exit code 137|status 137' \
	"$work/pm6-delete.out"
c container delete pm6 >/dev/null 2>&1
expect_eq "pod: container delete of a member" 0 $?
# TaskExit names the member
kill "$pod_events" 2>/dev/null
wait "$pod_events" 2>/dev/null
expect_grep "pod: TaskExit of a member names it" \
	'/tasks/exit.*"container_id":"pm2".*"exit_status":3' "$work/pod-events.out"
expect_grep "pod: TaskExit of a killed member names it" \
	'/tasks/exit.*"container_id":"pm6".*"exit_status":137' "$work/pod-events.out"

# the sandbox's VM ends with it: a member still running stops (137) and stays until deleted
c run -d --null-io "${member_ann[@]}" --runtime $rt "$image" pm8 sleep 999 >/dev/null \
	2>"$work/pm8.err"
wait_status pm8 RUNNING 120 ||
	fail "pod: pm8 not RUNNING ($(task_status pm8)): $(cat "$work/pm8.err")"
c task kill -s SIGKILL $pod >/dev/null 2>&1
wait_status $pod STOPPED 120
wait_status pm8 STOPPED 120
expect_eq "pod: the sandbox killed: it and its member STOPPED" "STOPPED STOPPED" \
	"$(task_status $pod) $(task_status pm8)"
c task delete pm8 >"$work/pm8-delete.out" 2>&1
expect_grep "pod: a member whose VM went: 137" 'exit code 137|status 137' "$work/pm8-delete.out"
c container delete pm8 >/dev/null 2>&1
expect_eq "pod: container delete of a member whose VM went" 0 $?

# the members are gone, the sandbox last
expect_eq "pod: no member relay left" "" "$(pod_pids stratus-relay)"
c task delete $pod >/dev/null 2>&1
expect_eq "pod: task delete of the sandbox" "" "$(task_status $pod)"
c container delete $pod >/dev/null 2>&1
for i in $(seq 60); do
	[ -z "$(peers_pids_mentioning "-id $pod ")" ] && break
	sleep 0.5
done
expect_eq "pod: no shim, monitor or relay of the pod left" "" \
	"$(peers_pids_mentioning "-id $pod ")"
expect_eq "pod: no mount left under the state root" "" "$(peers_mounts_under "$work/shimroot")"
expect_eq "pod: nothing left under the state root" "" "$(find "$work/shimroot" -mindepth 2)"
expect_eq "pod: no shim socket left" "" "$(ls -A "$work/s")"

# ---- 8. a pod's shim dies ------------------------------------------------------------------------
# containerd runs `containerd-shim-stratus-v2 delete` for the sandbox and the member at once:
# the VM, the member's relay, their mounts and state must all go (one more VM).
pod=pod2
sandbox_ann=(--annotation io.kubernetes.cri.container-type=sandbox
	--annotation "io.kubernetes.cri.sandbox-id=$pod")
member_ann=(--annotation io.kubernetes.cri.container-type=container
	--annotation "io.kubernetes.cri.sandbox-id=$pod")
c run -d --null-io "${sandbox_ann[@]}" --runtime $rt "$image" $pod sleep 1000 \
	>/dev/null 2>"$work/pod2.err"
wait_status $pod RUNNING 120 ||
	fail "pod2: sandbox not RUNNING ($(task_status $pod)): $(cat "$work/pod2.err")"
c run -d --null-io "${member_ann[@]}" --runtime $rt "$image" pk1 sleep 999 >/dev/null \
	2>"$work/pk1.err"
wait_status pk1 RUNNING 120 ||
	fail "pod2: pk1 not RUNNING ($(task_status pk1)): $(cat "$work/pk1.err")"
expect_eq "pod2: a monitor and a relay" "1 1" \
	"$(pod_pids stratus-monitor | wc -l) $(pod_pids stratus-relay | wc -l)"
for p in $(pod_pids containerd-shim); do kill -KILL "$p"; done
# until the VM, the relay and containerd's `shim delete` processes (-id pk1 for the member's)
# are gone
for i in $(seq 120); do
	[ -z "$(peers_pids_mentioning "-id $pod ")$(peers_pids_mentioning "-id pk1 ")" ] && break
	sleep 0.5
done
expect_eq "pod2: shim killed: no monitor or relay left" "" "$(peers_pids_mentioning "-id $pod ")"
expect_eq "pod2: shim killed: containerd's clean-up ended" "" "$(peers_pids_mentioning "-id pk1 ")"
c task delete pk1 >/dev/null 2>&1
c task delete $pod >/dev/null 2>&1
c container delete pk1 $pod >/dev/null 2>&1
expect_eq "pod2: shim killed: no task or container left" "" "$(c task ls -q; c container ls -q)"
expect_eq "pod2: shim killed: no mount left under the state root" "" \
	"$(peers_mounts_under "$work/shimroot")"
expect_eq "pod2: shim killed: nothing left under the state root" "" \
	"$(find "$work/shimroot" -mindepth 2)"
expect_eq "pod2: shim killed: its socket removed" "" "$(ls -A "$work/s")"
