#!/usr/bin/env bash
# containerd 1.6 and its io.containerd.runc.v2 shim driving an OCI runtime: a containerd of
# the test's own (peers/containerd-private.sh: config.toml, root, state, gRPC and ttrpc
# sockets in a temp dir, the CRI plugin off, its own network namespace), the local busybox
# image (peers/make-busybox-image.sh, `ctr images import`), then with ctr:
#   1. run --rm echo hi prints hi; exit codes 0, 1, 3 arrive as ctr run's status, and 137
#      when `ctr task kill -s SIGKILL` ends the container while run waits; args, env, cwd.
#   2. run -t (script(1) gives ctr a 30x100 pty): tty names a /dev/pts device, stty size
#      becomes the caller's size, typed input reaches sh, the typed exit status is run's.
#   3. a detached container (run -d, output to a log file): task ls RUNNING, task exec
#      (output, status, exec -t), task ps, task pause/resume, task kill -s SIGUSR1 to a
#      trapping init, task kill (TERM: the trap's exit code 42), task delete (reports 42).
#   4. task kill -s SIGKILL, task delete (137), and task delete -f of a running task.
# Afterwards: no task or container, and once containerd stops, no shim, no runtime process,
# no container process (the marker sleep), no mount under the temp dir, no shim socket, no
# container left in the runtime's --root (DIR/runc: ctr run --runc-root).
# usage: test_containerd.sh RUNTIME   (stratus, crun, runc, ...; as root; skipped otherwise)
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peers/containerd-private.sh"

runtime=${1:?usage: test_containerd.sh RUNTIME}
case $runtime in
*/*) runtime=$(realpath -s "$runtime") ;;
*) runtime=$(command -v "$runtime") || { echo "FAIL: runtime $1 not found"; exit 1; } ;;
esac
need_file "$runtime" "the runtime"
[ "$(id -u)" = 0 ] || { echo "SKIP: containerd tests need root"; exit 77; }
for tool in containerd ctr containerd-shim-runc-v2 unshare script; do
	command -v $tool >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
case $(basename "$runtime") in stratus*) need_kvm ;; esac

image=localhost/stratus-busybox:latest
marker=$((200000 + $$ % 100000)) # `sleep $marker`: finds a leaked container process
cleanup() {
	containerd_private_stop
	rm -rf "$work"
}
trap cleanup EXIT
containerd_private_start "$work/containerd" "$runtime" || { echo "FAIL: containerd"; exit 1; }
echo "# runtime $runtime, $(containerd --version | awk '{print $1, $3}'), in $work"

# run_out WHAT EXPECTED-STATUS EXPECTED-OUTPUT CTR-ARGS...: output and status of a command
run_out() {
	local what=$1 want_status=$2 want_out=$3 status
	shift 3
	c "$@" </dev/null >"$work/out" 2>"$work/err"
	status=$?
	expect_eq "$what: exit status" "$want_status" "$status"
	expect_eq "$what: output" "$want_out" "$(tr -d '\r' <"$work/out")"
	[ "$status" = "$want_status" ] || sed 's/^/    | /' "$work/err" | tail -n 5
}

C=(ctr -a "$ctd_sock" -n peers)

# ---- the image --------------------------------------------------------------------------
"$here/peers/make-busybox-image.sh" "$work/busybox.tar" --name "$image" >/dev/null ||
	{ echo "FAIL: make-busybox-image.sh"; exit 1; }
c images import "$work/busybox.tar" >"$work/import.out" 2>&1
expect_eq "images import: exit status" 0 $?
expect_eq "images import names the image" "$image" "$(c images ls -q 2>/dev/null)"

# ---- 1. run and exit codes ----------------------------------------------------------------
run_out "run echo hi" 0 hi run --rm "${ctd_run_args[@]}" "$image" r1 echo hi
run_out "run exit 1" 1 "" run --rm "${ctd_run_args[@]}" "$image" r2 sh -c 'exit 1'
run_out "run exit 3" 3 "" run --rm "${ctd_run_args[@]}" "$image" r3 sh -c 'exit 3'
run_out "run: args, env, cwd" 0 "a b|V=1|/tmp|0" run --rm \
	"${ctd_run_args[@]}" --env V=1 --cwd /tmp "$image" r4 \
	sh -c 'echo "$1 $2|V=$V|$(pwd)|$(id -u)"' sh a b
cr --rm "$image" k9 sh -c "echo up; sleep $marker" </dev/null >"$work/k9.out" 2>"$work/k9.err" &
k9=$!
wait_for '^up' "$work/k9.out" 120 || fail "run k9: never printed up: $(cat "$work/k9.err")"
c task kill -s SIGKILL k9 >/dev/null 2>"$work/kill.err"
expect_eq "task kill -s SIGKILL: exit status" 0 $?
wait $k9
expect_eq "run: the container killed by SIGKILL: exit status" 137 $?
expect_eq "run --rm leaves no container" "" "$(c container ls -q)"

# ---- 2. a terminal ------------------------------------------------------------------------
# ctr sets the terminal's size only after the task has started: wait (30 s at most) for it.
size_loop='i=0; until [ "$(stty size 2>/dev/null)" = "30 100" ] || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done'
in_pty "$work/tty.out" "${C[@]}" run -t --rm "${ctd_run_args[@]}" "$image" t1 \
	sh -c "$size_loop; tty; stty size; [ -t 1 ] && echo is-a-tty; exit 5" </dev/null
expect_eq "run -t: exit status" 5 $?
expect_grep "run -t: tty names a pty" '^/dev/pts/[0-9]+$' "$work/tty.out"
expect_grep "run -t: the terminal has the caller's size" '^30 100' "$work/tty.out"
expect_grep "run -t: stdout is a terminal" '^is-a-tty' "$work/tty.out"
{
	sleep 2
	printf 'echo typed-$((6 * 7))\n'
	sleep 2
	printf 'exit 9\n'
} | in_pty "$work/tty2.out" "${C[@]}" run -t --rm "${ctd_run_args[@]}" "$image" t2 sh
expect_eq "run -t sh: exit status of the typed exit" 9 $?
expect_grep "run -t sh: typed input runs" 'typed-42' "$work/tty2.out"

# ---- 3. a detached container ----------------------------------------------------------------
cr -d --log-uri "file://$work/d1.log" "$image" d1 \
	sh -c "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep $marker & wait; done" \
	>/dev/null 2>"$work/d1.err"
expect_eq "run -d: exit status" 0 $?
wait_status d1 RUNNING 120 || fail "run -d: not RUNNING ($(task_status d1)): $(cat "$work/d1.err")"
wait_for '^ready' "$work/d1.log" 120 || fail "run -d: no output in the log file"
run_out "task exec echo" 0 from-exec task exec --exec-id e1 d1 echo from-exec
run_out "task exec exit status" 7 "" task exec --exec-id e2 d1 sh -c 'exit 7'
run_out "task exec --cwd --user" 0 "/etc 1000" task exec --exec-id e3 --cwd /etc --user 1000 \
	d1 sh -c 'echo "$(pwd) $(id -u)"'
run_out "task exec sees the init's processes" 0 yes task exec --exec-id e4 d1 \
	sh -c "ps | grep -q '[s]leep $marker' && echo yes"
in_pty "$work/exec-tty.out" "${C[@]}" task exec -t --exec-id e5 d1 sh -c 'tty; exit 4' </dev/null
expect_eq "task exec -t: exit status" 4 $?
expect_grep "task exec -t: a pty" '^/dev/pts/[0-9]+$' "$work/exec-tty.out"
c task ps d1 >"$work/ps.out" 2>&1
expect_eq "task ps: exit status" 0 $?
expect_grep "task ps: lists the init" '^[0-9]+ ' "$work/ps.out"

c task pause d1 >/dev/null 2>"$work/pause.err"
expect_eq "task pause: exit status" 0 $?
expect_eq "task pause: status" PAUSED "$(task_status d1)"
c task resume d1 >/dev/null 2>"$work/resume.err"
expect_eq "task resume: exit status" 0 $?
expect_eq "task resume: status" RUNNING "$(task_status d1)"
run_out "task exec after resume" 0 still-here task exec --exec-id e6 d1 echo still-here

c task kill -s SIGUSR1 d1 >/dev/null 2>"$work/kill.err"
expect_eq "task kill -s SIGUSR1: exit status" 0 $?
wait_for '^got-usr1' "$work/d1.log" 60
expect_grep "task kill -s SIGUSR1: the trap ran" '^got-usr1' "$work/d1.log"
expect_eq "task kill -s SIGUSR1: still RUNNING" RUNNING "$(task_status d1)"
c task kill d1 >/dev/null 2>"$work/kill.err"
expect_eq "task kill (TERM): exit status" 0 $?
wait_status d1 STOPPED 120
expect_eq "task kill (TERM): STOPPED" STOPPED "$(task_status d1)"
expect_grep "task kill (TERM): the trap ran" '^got-term' "$work/d1.log"
c task delete d1 >"$work/delete.out" 2>&1
expect_eq "task delete: exit status" 0 $?
expect_grep "task delete: the init's exit status 42" 'exit code 42' "$work/delete.out"
c container delete d1 >/dev/null 2>&1
expect_eq "container delete" 0 $?

# ---- 4. kill -s SIGKILL and delete -f ----------------------------------------------------------
cr -d --null-io "$image" d2 sh -c "while :; do sleep $marker & wait; done" >/dev/null 2>"$work/d2.err"
wait_status d2 RUNNING 120 || fail "d2: not RUNNING ($(task_status d2)): $(cat "$work/d2.err")"
c task kill -s SIGKILL d2 >/dev/null 2>"$work/kill.err"
expect_eq "task kill -s SIGKILL: exit status" 0 $?
wait_status d2 STOPPED 120
expect_eq "task kill -s SIGKILL: STOPPED" STOPPED "$(task_status d2)"
c task delete d2 >"$work/delete.out" 2>&1
expect_grep "task delete: exit status 137" 'exit code 137' "$work/delete.out"
c container delete d2 >/dev/null 2>&1
cr -d --null-io "$image" d3 sh -c "while :; do sleep $marker & wait; done" >/dev/null 2>"$work/d3.err"
wait_status d3 RUNNING 120 || fail "d3: not RUNNING ($(task_status d3)): $(cat "$work/d3.err")"
c task delete -f d3 >/dev/null 2>"$work/delete.err"
expect_eq "task delete -f of a running task: exit status" 0 $?
expect_eq "task delete -f: no task left" "" "$(c task ls -q)"
c container delete d3 >/dev/null 2>&1
expect_eq "no container left" "" "$(c container ls -q)"

# ---- nothing left ------------------------------------------------------------------------------
containerd_private_stop
sleep 1
left=$(ctd_leftover_pids | while read -r p; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)
expect_eq "no shim/runtime process left" "" "$left"
expect_eq "no container process left" "" "$(peers_pids_mentioning "sleep $marker")"
expect_eq "no mount left" "" "$(peers_mounts_under "$ctd_dir")"
left=
for id in r1 r2 r3 r4 k9 t1 t2 d1 d2 d3; do
	[ -e "$(ctd_shim_socket $id)" ] && left+="$id "
done
expect_eq "no shim socket left in /run/containerd/s" "" "$left"
expect_eq "nothing left in the runtime's --root" "" "$(find "$ctd_dir/runc" -mindepth 2 | head -n 3)"
finish
