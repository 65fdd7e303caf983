# shellcheck shell=bash
# shim/single.sh (sourced by test_shim.sh, its helpers and variables set): one container per
# VM, sections 1-6 of test_shim.sh's header.

# ---- 1. run --rm ----------------------------------------------------------------------------
run_out "run echo hi" 0 hi run --rm --runtime $rt "$image" r1 echo hi
run_out "run: exit 3, stderr apart" 3 out run --rm --runtime $rt "$image" r2 \
	sh -c 'echo out; echo err >&2; exit 3'
expect_eq "run: stderr" err "$(cat "$work/err")"

# ---- 1b. host cgroups (docs/runtime.md "Host cgroup", docs/shim.md "Runtime options") -------
# ctr run --cgroup sets linux.cgroupsPath: the VM's monitor is in it in every hierarchy (the
# ones checked: memory, pids, cgroup v2, as this host has them), nothing the runtime says
# reaches the container's stderr, and the directories made are gone with the task. Then
# `shim start` as containerd 1.6 runs it for runc-type options (an Any holding a
# containerd.runc.v1.Options on stdin): its server joins ShimCgroup.
# cg_mount and cg_of: lib.sh
cgtag=stratus-shim-test-$$-$RANDOM
cghiers=
for h in memory pids ""; do
	[ -n "$(cg_mount "$h")" ] && cghiers="$cghiers ${h:-v2}"
done
cghier() { [ "$1" = v2 ] || echo "$1"; }
c run --rm --cgroup "/$cgtag/c1" --runtime $rt "$image" cg1 sh -c 'echo ready; exec sleep 1000' \
	</dev/null >"$work/cg1.out" 2>"$work/cg1.err" &
cg1=$!
wait_status cg1 RUNNING 120 || fail "run --cgroup: not RUNNING ($(task_status cg1)): $(cat "$work/cg1.err")"
monitor=$(c task ls 2>/dev/null | awk '$1 == "cg1" { print $2 }')
for h in $cghiers; do
	expect_eq "run --cgroup: the monitor's $h cgroup" "/$cgtag/c1" \
		"$(cg_of "$(cghier $h)" "/proc/$monitor/cgroup" 2>/dev/null)"
done
wait_for '^ready' "$work/cg1.out" 60
c task kill -s SIGKILL cg1 >/dev/null 2>&1
wait $cg1
expect_eq "run --cgroup: killed (137)" 137 $?
expect_eq "run --cgroup: its stdout" ready "$(cat "$work/cg1.out")"
expect_eq "run --cgroup: nothing of the runtime's on its stderr" "" "$(cat "$work/cg1.err")"
for h in $cghiers; do
	d=$(cg_mount "$(cghier $h)")/$cgtag
	expect_eq "run --cgroup: $d gone with the task" gone "$([ -e "$d" ] && echo left || echo gone)"
done
# shim start with ShimCgroup (an existing cgroup, as containerd's runc shim wants it)
mkdir -p "$work/cgshim"
echo '{}' >"$work/cgshim/config.json"
for h in $cghiers; do mkdir "$(cg_mount "$(cghier $h)")/$cgtag-shim"; done
python3 -c 'import sys
c = sys.argv[1].encode(); o = b"\x1a" + bytes([len(c)]) + c; t = b"containerd.runc.v1.Options"
sys.stdout.buffer.write(b"\x0a" + bytes([len(t)]) + t + b"\x12" + bytes([len(o)]) + o)' \
	"/$cgtag-shim" >"$work/cgshim.opts"
(cd "$work/cgshim" && "$shim" -namespace peers -address "$work/cgshim.sock" \
	-publish-binary /bin/true -id cgshim start <"$work/cgshim.opts" >"$work/cgshim.out" 2>&1)
expect_eq "shim start with ShimCgroup: exit 0" 0 $?
expect_grep "shim start with ShimCgroup: only the address" '^unix://[^ ]*$' "$work/cgshim.out"
server=$(peers_pids_mentioning "-id cgshim -address")
for h in $cghiers; do
	expect_eq "shim start with ShimCgroup: the server's $h cgroup" "/$cgtag-shim" \
		"$(cg_of "$(cghier $h)" "/proc/$server/cgroup" 2>/dev/null)"
done
[ -n "$server" ] && kill -TERM $server
for i in $(seq 100); do [ -z "$(peers_pids_mentioning "-id cgshim -address")" ] && break; sleep 0.1; done
for h in $cghiers; do rmdir "$(cg_mount "$(cghier $h)")/$cgtag-shim"; done

# ---- 2. a detached task -------------------------------------------------------------------------
c run -d --null-io --memory-limit 16777216 --runtime $rt "$image" d1 \
	sh -c 'while :; do sleep 1000 & wait; done' \
	>/dev/null 2>"$work/d1.err"
expect_eq "run -d: exit status" 0 $?
wait_status d1 RUNNING 120 || fail "run -d: not RUNNING ($(task_status d1)): $(cat "$work/d1.err")"
c task ps d1 >"$work/ps.out" 2>&1
expect_eq "task ps: exit status" 0 $?
expect_grep "task ps: lists processes" '^[0-9]+ ' "$work/ps.out"
c task metrics d1 >"$work/metrics.out" 2>&1
expect_eq "task metrics: exit status" 0 $?
expect_grep "task metrics: memory usage" 'memory\.usage_in_bytes|memory.usage' "$work/metrics.out"
c task pause d1 >/dev/null 2>"$work/pause.err"
expect_eq "task pause: exit status" 0 $?
expect_eq "task pause: status" PAUSED "$(task_status d1)"
c task exec --exec-id p1 d1 true </dev/null >/dev/null 2>"$work/pexec.err"
expect_eq "task exec into a paused task: refused" 1 $?
expect_grep "task exec into a paused task: says so" 'is paused' "$work/pexec.err"
c task resume d1 >/dev/null 2>"$work/resume.err"
expect_eq "task resume: exit status" 0 $?
expect_eq "task resume: status" RUNNING "$(task_status d1)"
# exec: output and exit status; stdout and stderr apart.
run_out "task exec: exit 5" 5 out task exec --exec-id e1 d1 sh -c 'echo out; echo err >&2; exit 5'
expect_eq "task exec: stderr" err "$(cat "$work/err")"
# 1 MiB through the exec's stdout, none of it lost before the exit is reported.
c task exec --exec-id e1b d1 sh -c 'head -c 1048576 /dev/zero | tr "\0" x; exit 7' \
	</dev/null >"$work/big.out" 2>"$work/big.err"
expect_eq "task exec: 1 MiB of output, exit 7" "7 1048576" "$? $(wc -c <"$work/big.out")"
# a detached exec: its id is taken while it runs; kill with --exec-id; ps sees it.
c task exec -d --exec-id e2 d1 sleep 1000 </dev/null >/dev/null 2>"$work/e2.err"
expect_eq "task exec -d: exit status" 0 $?
c task exec --exec-id e2 d1 true </dev/null >/dev/null 2>"$work/dup.err"
expect_eq "task exec: a running exec id again is refused" 1 $?
expect_grep "task exec: already exists" 'already exists' "$work/dup.err"
c task ps d1 >"$work/ps2.out" 2>&1
expect_eq "task ps: sh, its sleep and the exec's sleep" 3 "$(grep -cE '^[0-9]+ ' "$work/ps2.out")"
c task kill --exec-id e2 -s SIGKILL d1 >/dev/null 2>"$work/e2kill.err"
expect_eq "task kill --exec-id: exit status" 0 $?
# a missing binary: containerd's error (the agent's execve failure), ctr exits 1.
c task exec --exec-id e3 d1 /no/such/binary </dev/null >/dev/null 2>"$work/missing.err"
expect_eq "task exec of a missing binary: ctr's exit status" 1 $?
expect_grep "task exec of a missing binary: says why" 'no/such/binary.*(No such file|not found)' \
	"$work/missing.err"
# In the guest: print the tty, wait (up to 60 s) for the window size ctr sends (ResizePty),
# print it. One line: script(1) runs it through /bin/sh, which has no $'...' quoting.
wait_size='tty; i=0; while [ "$(stty size)" != "33 101" ] && [ $i -lt 120 ]; do sleep 0.5; i=$((i+1)); done; echo size $(stty size)'
# a terminal: the process's stdio is a pty of the container's devpts, and ctr's window size
# arrives through ResizePty (script(1)'s pty gets 33x101 first; the loop waits for the resize).
if command -v script >/dev/null; then
	SHELL=/bin/sh timeout -k 10 300 script -qefc "stty rows 33 cols 101; $(printf '%q ' ctr \
		-a "$ctd_sock" -n peers task exec -t --exec-id e4 d1 sh -c "$wait_size; exit 4")" \
		"$work/exectty.out" </dev/null >/dev/null 2>&1
	expect_eq "task exec -t: exit status" 4 $?
	expect_grep "task exec -t: a /dev/pts terminal" '/dev/pts/[0-9]+' "$work/exectty.out"
	expect_grep "task exec -t: ResizePty reached it" 'size 33 101' "$work/exectty.out"
fi
# OOM: an exec beyond the task's 16 MiB is OOM-killed: 137, and TaskOOM on /tasks/oom.
# ctr itself in the background (not the c wrapper's subshell), so that kill reaches it; events
# published before it subscribed are lost, so wait until it sees a probe (a namespace label).
ctr -a "$ctd_sock" -n peers events >"$work/events.out" 2>&1 &
events_pid=$!
for i in $(seq 120); do
	c namespaces label peers stratus-probe="$i" >/dev/null 2>&1
	grep -q '/namespaces/update' "$work/events.out" && break
	sleep 0.5
done
expect_grep "ctr events: subscribed" '/namespaces/update' "$work/events.out"
c task exec --exec-id e5 d1 dd if=/dev/zero of=/dev/null bs=32M count=1 </dev/null \
	>/dev/null 2>&1
expect_eq "task exec beyond the memory limit: killed (137)" 137 $?
wait_for '/tasks/oom' "$work/events.out" 60 || true
expect_grep "TaskOOM published" '/tasks/oom.*d1' "$work/events.out"
expect_grep "TaskExecAdded published" '/tasks/exec-added.*d1' "$work/events.out"
expect_grep "TaskExecStarted published" '/tasks/exec-started.*d1' "$work/events.out"
kill "$events_pid" 2>/dev/null
wait "$events_pid" 2>/dev/null
c task kill -s SIGKILL d1 >/dev/null 2>"$work/kill.err"
expect_eq "task kill -s SIGKILL: exit status" 0 $?
wait_status d1 STOPPED 120
expect_eq "task kill -s SIGKILL: STOPPED" STOPPED "$(task_status d1)"
c task delete d1 >"$work/delete.out" 2>&1
expect_grep "task delete: exit status 137" 'exit code 137|status 137' "$work/delete.out"
c container delete d1 >/dev/null 2>&1
expect_eq "container delete" 0 $?

# ---- 3. stdin ------------------------------------------------------------------------------------
# ctr asks for CloseIO when its stdin ends, but only once the task exists: the input's end
# comes after the container said ready (a FIFO the test holds open until then).
mkfifo "$work/in.fifo"
c run --rm --runtime $rt "$image" i1 sh -c 'echo ready; cat; echo eof' <"$work/in.fifo" \
	>"$work/in.out" 2>"$work/in.err" &
i1=$!
exec 7>"$work/in.fifo"
wait_for '^ready' "$work/in.out" 120 || fail "run i1: never printed ready: $(cat "$work/in.err")"
printf 'line1\nline2\n' >&7
exec 7>&-
wait $i1
expect_eq "run with stdin: exit status" 0 $?
expect_eq "run with stdin: cat saw the input and its EOF (CloseIO)" "ready
line1
line2
eof" "$(cat "$work/in.out")"

# ---- 4. a terminal ---------------------------------------------------------------------------------
if command -v script >/dev/null; then
	SHELL=/bin/sh timeout -k 10 300 script -qefc "stty rows 33 cols 101; $(printf '%q ' ctr \
		-a "$ctd_sock" -n peers run -t --rm --runtime $rt "$image" t1 sh -c \
		"[ -t 1 ] && echo is-a-tty; $wait_size; exit 5")" "$work/tty.out" </dev/null \
		>/dev/null 2>&1
	expect_eq "run -t: exit status" 5 $?
	expect_grep "run -t: stdout is a terminal" 'is-a-tty' "$work/tty.out"
	expect_grep "run -t: ResizePty reached the init's pty" 'size 33 101' "$work/tty.out"
fi

# ---- 5. the shim dies -------------------------------------------------------------------------------
# containerd runs `containerd-shim-stratus-v2 delete`, which must take the orphaned VM down.
c run -d --null-io --runtime $rt "$image" k1 sh -c 'while :; do sleep 1000 & wait; done' \
	>/dev/null 2>"$work/k1.err"
wait_status k1 RUNNING 120 || fail "k1: not RUNNING ($(task_status k1)): $(cat "$work/k1.err")"
for p in $(peers_pids_mentioning "-id k1 "); do
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = containerd-shim ] && kill -KILL "$p"
done
for i in $(seq 120); do
	[ -z "$(peers_pids_mentioning "-id k1 ")" ] && break
	sleep 0.5
done
expect_eq "shim killed: no monitor left" "" "$(peers_pids_mentioning "-id k1 ")"
c task delete k1 >/dev/null 2>&1
c container delete k1 >/dev/null 2>&1
expect_eq "shim killed: nothing left under the state root" "" "$(find "$work/shimroot" -mindepth 2)"
expect_eq "shim killed: its socket removed" "" "$(ls -A "$work/s")"
[ -z "$(ls -A "$work/s")" ] || ss -xlp 2>/dev/null | grep -F "$work/s" | sed 's/^/    | /'

# ---- 6. 20 containers in a row ----------------------------------------------------------------------
# Each run --rm boots a VM, runs /bin/true and removes everything; the checks below (and the
# per-round ones here) find nothing left behind by any of them.
bad=
for i in $(seq 20); do
	c run --rm --runtime $rt "$image" "loop$i" /bin/true </dev/null >/dev/null \
		2>"$work/loop.err" || bad="$bad $i($?: $(tail -n 1 "$work/loop.err"))"
done
expect_eq "20 x run --rm /bin/true: all exit 0" "" "$bad"
expect_eq "20 x run --rm: no monitor or shim left" "" "$(peers_pids_mentioning "-id loop")"
expect_eq "20 x run --rm: no mount left" "" "$(peers_mounts_under "$work" | grep loop)"
expect_eq "20 x run --rm: no state left" "" "$(find "$work/shimroot" -mindepth 2 -name 'loop*')"
expect_eq "20 x run --rm: no shim socket left" "" "$(ls -A "$work/s")"
