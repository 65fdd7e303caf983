#!/usr/bin/env bash
# stratus-agent as PID 1 of a real microVM: ONE boot of the production initramfs
# (stratus-initramfs.cpio: the static agent as /init, nothing else), a busybox ext4 root
# filesystem (rootfs/make-busybox-rootfs.sh) as virtio-blk /dev/vda, and hybrid vsock. The
# host side is stratus-agentctl (agent/agentctl.c), the runtime's real agent client. Checks,
# all against that one VM: HELLO and PING; the PID-1 set-up on the console; containers from
# the block rootfs exiting 0, 1 and 137 (SIGKILL); env, cwd, hostname, user and groups;
# 10 MiB of stdout intact and in order; stderr apart; stdin through cat; a tty (the
# container's own /dev/pts/0: tty and stty work) with consoleSize and RESIZE; EXEC in a
# running container, with a tty too, PS (each process named by its command) and STATS;
# FREEZE and thaw (EXEC refused while frozen); MOUNT_SHARE of a tag without a device;
# SIGTERM to a trapping
# shell that is its container's PID 1; capabilities the config drops are gone; a seccomp
# rule blocks its syscall; a memory limit OOM-kills and is reported as OOM; no exit record
# left behind; PID 1 reaps orphans and has lo up; SHUTDOWN powers the VM off (VMM exit 0).
# Then a second, short boot without vsock: the agent logs the failure and powers off.
# usage: test_agent_vm.sh STRATUS_VMM VMLINUX INITRAMFS AGENTCTL
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/console.sh"
vmm=$1
kernel=$2
initramfs=$3
agentctl=$4
here=$(cd "$(dirname "$0")" && pwd)
need_file "$vmm" stratus-vmm
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_file "$initramfs" "the production initramfs (cmake target stratus-initramfs)"
need_file "$agentctl" stratus-agentctl
need_kvm
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }

sha() { sha256sum | cut -d' ' -f1; }

"$here/rootfs/make-busybox-rootfs.sh" "$work/rootfs" --ext4 "$work/rootfs.img" --size 64 ||
	{ fail "build the busybox rootfs image"; finish; }

sock=$work/vsock.sock
: >"$work/vm.raw"
timeout 1800 "$vmm" -kernel "$kernel" -initrd "$initramfs" -m 256 -smp 1 \
	-drive id=d0,file="$work/rootfs.img",if=none,format=raw -device virtio-blk-device,drive=d0 \
	-device vhost-vsock-device,id=vsock0,guest-cid=3,uds-path="$sock" \
	</dev/null >"$work/vm.raw" 2>"$work/vm.log" &
vm=$!
console=$work/console.out

if ! guest_wait "$work/vm.raw" "$console" "$vm" '^stratus-agent: protocol .* listening' 900; then
	fail "agent listening on the console"
	tail -n 30 "$console" "$work/vm.log"
	kill "$vm" 2>/dev/null
	finish
fi
pass "agent listening on the console"
expect_grep "PID 1: root bound, API filesystems mounted, lo up" \
	'^stratus-agent: pid 1: root bound, api filesystems mounted, lo up$' "$console"
expect_no_grep "PID 1: no set-up failure logged" \
	'^stratus-agent: (bind|mount|/dev/ptmx|loopback)' "$console"
expect_grep "PID 1: the guest's vsock CID is the one the VMM gave" '^stratus-agent: guest vsock cid 3$' \
	"$console"
expect_no_grep "PID 1: no argument refused" 'usage: stratus-agent' "$console"

# ctl ARGS...: one agentctl request; its stdout in $work/ctl.out, stderr in $work/ctl.err.
ctl() {
	timeout 600 "$agentctl" "$sock" "$@" >"$work/ctl.out" 2>"$work/ctl.err"
}
# expect_ctl WHAT ARGS...: the request succeeds
expect_ctl() {
	local what=$1
	shift
	if ctl "$@"; then pass "$what"; else
		fail "$what: agentctl $*: $(head -c 300 "$work/ctl.err")"
	fi
}

ctl hello
expect_grep "HELLO: the agent's software and protocol 1.x" \
	'^software=stratus-agent [0-9.]+ protocol=1\.[0-9]+$' "$work/ctl.out"
ctl ping
expect_eq "PING" pong "$(cat "$work/ctl.out")"
# MOUNT_SHARE (1.3): this VM has no virtio-fs device, so any tag is the mount's error.
ctl mount-share nosuch
expect_eq "MOUNT_SHARE of a tag without a device: refused" 125 "$?"
expect_grep "MOUNT_SHARE: the mount's error, on the agent's own directory" \
	'mount virtiofs on /run/stratus-shares/nosuch' "$work/ctl.err"

# The container: the busybox rootfs, the usual OCI mounts, the default capabilities of
# runc/Docker, its own pid, mount, ipc and uts namespaces.
mounts=(--mount proc:/proc:proc:nosuid,noexec,nodev
	--mount tmpfs:/dev:tmpfs:nosuid,strictatime,mode=755,size=65536k
	--mount devpts:/dev/pts:devpts:nosuid,noexec,newinstance,ptmxmode=0666,mode=0620
	--mount shm:/dev/shm:tmpfs:nosuid,noexec,nodev,mode=1777,size=65536k
	--mount sysfs:/sys:sysfs:nosuid,noexec,nodev,ro
	--mount cgroup:/sys/fs/cgroup:cgroup2:nosuid,noexec,nodev,relatime,ro)
caps='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW",
 "CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT",
 "CAP_KILL","CAP_AUDIT_WRITE"]'
jq -n --argjson caps "$caps" '{
	ociVersion: "1.0.2",
	process: {terminal: false, user: {uid: 0, gid: 0}, args: ["sh"],
		env: ["PATH=/bin:/sbin:/usr/bin", "HOME=/root"], cwd: "/",
		capabilities: {bounding: $caps, effective: $caps, permitted: $caps},
		noNewPrivileges: true},
	root: {path: "rootfs", readonly: false},
	hostname: "stratus-test",
	linux: {namespaces: [{type: "pid"}, {type: "mount"}, {type: "ipc"}, {type: "uts"}]}
}' >"$work/base.json"

# cfg NAME 'SHELL COMMAND' [JQ FILTER]: $work/NAME.json, the base config running sh -c COMMAND.
cfg() {
	jq --arg cmd "$2" ".process.args = [\"sh\", \"-c\", \$cmd] | ${3:-.}" "$work/base.json" \
		>"$work/$1.json"
}
# run ID CONFIG [STDIO FLAGS]: create, start, relay, wait, delete, ack; the status is $?.
n=0
run() {
	local id=$1-$((n += 1)) config=$2
	shift 2
	timeout 600 "$agentctl" "$sock" run "$id" --rootfs-block /dev/vda ext4 "${mounts[@]}" \
		--config "$work/$config.json" "$@" 2>"$work/run.err"
}
# expect_run WHAT WANT_STATUS ID CONFIG [STDIO FLAGS]
expect_run() {
	local what=$1 want=$2 status
	shift 2
	run "$@" >"$work/run.rec"
	status=$?
	# The exit record printed, not only agentctl's status (its own failures are 125).
	if [ "$status" = "$want" ] && grep -q " status=$want " "$work/run.rec"; then
		pass "$what: status $want"
	else
		fail "$what: status: expected $want, got $status: $(head -c 300 "$work/run.err")"
	fi
}
# Output files exist even when a run fails early, so the checks below fail cleanly.
for f in userns zombies env user big cat caps caps2 mkdir seccomp exec trap tty; do : >"$work/$f.out"; done
: >"$work/big.err"
: >"$work/seccomp.err"

# Exit codes and signals.
cfg exit0 'exit 0'
expect_run "exit 0" 0 exit exit0
cfg exit1 'exit 1'
expect_run "exit 1" 1 exit exit1
# (Without a pid namespace: a namespace's init cannot SIGKILL itself.)
cfg kill9 'kill -9 $$' '.linux.namespaces |= map(select(.type != "pid"))'
expect_run "killed by SIGKILL" 137 kill9 kill9
expect_grep "killed by SIGKILL: the record says signal 9" 'status=137 code=0 signal=9 oom=0' \
	"$work/run.rec"

# The rootfs, hostname, env and cwd.
cfg env 'echo "FOO=$FOO"; pwd; hostname; grep ^user: /etc/passwd' \
	'.process.env += ["FOO=bar  baz"] | .process.cwd = "/tmp"'
expect_run "env, cwd, hostname" 0 env env --stdout "$work/env.out"
expect_grep "env: FOO with spaces" '^FOO=bar  baz$' "$work/env.out"
expect_grep "cwd: /tmp" '^/tmp$' "$work/env.out"
expect_grep "hostname from config.json (uts namespace)" '^stratus-test$' "$work/env.out"
expect_grep "the rootfs is the busybox image on /dev/vda" '^user:x:1000:1000:' "$work/env.out"

# A real pivot_root, not a chroot (PID 1 made "/" a bind mount): only outside a chroot may
# a process create a user namespace.
cfg userns 'unshare -U true && echo userns-ok'
expect_run "pivot_root: a user namespace can be created in the container" 0 userns userns \
	--stdout "$work/userns.out" --stderr "$work/userns.err"
expect_eq "pivot_root: unshare -U works" userns-ok "$(cat "$work/userns.out")"

# User and groups.
cfg user 'id -u; id -g; grep ^Groups: /proc/self/status' \
	'.process.user = {uid: 1000, gid: 1000, additionalGids: [10, 100]}'
expect_run "user 1000:1000" 0 user user --stdout "$work/user.out"
expect_eq "user: uid and gid" "1000 1000" "$(head -n 2 "$work/user.out" | tr '\n' ' ' | sed 's/ $//')"
expect_grep "user: additional groups 10 100" '^Groups:[[:space:]]+10 100[[:space:]]*$' \
	"$work/user.out"

# 10 MiB of stdout, in order; stderr on its own stream.
big=10485760
cfg big "seq 1 1500000 | head -c $big; echo to-stderr >&2"
expect_run "10 MiB on stdout" 0 big big --stdout "$work/big.out" --stderr "$work/big.err"
expect_eq "10 MiB on stdout: size" "$big" "$(stat -c %s "$work/big.out" 2>/dev/null)"
expect_eq "10 MiB on stdout: intact and in order (sha256)" \
	"$(seq 1 1500000 | head -c $big | sha)" "$(sha <"$work/big.out")"
expect_eq "stderr apart" to-stderr "$(cat "$work/big.err" 2>/dev/null)"

# stdin through cat, and its end of file.
head -c 1M /dev/urandom >"$work/stdin.data"
cfg cat 'cat'
expect_run "stdin through cat" 0 cat cat --stdin "$work/stdin.data" --stdout "$work/cat.out"
expect_eq "stdin through cat: 1 MiB back, intact" "$(sha <"$work/stdin.data")" \
	"$(sha <"$work/cat.out")"

# A terminal: consoleSize, then RESIZE while it runs.
cfg tty 'tty; stty size; read line; stty size; echo "got $line"' \
	'.process.terminal = true | .process.consoleSize = {height: 24, width: 80}'
mkfifo "$work/tty.in"
tty_id=tty-$((n += 1))
timeout 600 "$agentctl" "$sock" run "$tty_id" --rootfs-block /dev/vda ext4 "${mounts[@]}" \
	--config "$work/tty.json" --tty --stdin "$work/tty.in" --stdout "$work/tty.out" \
	>"$work/tty.rec" 2>"$work/tty.err" &
tty_pid=$!
exec 3<>"$work/tty.in" # read-write: never blocks, even if agentctl failed
if wait_for '24 80' "$work/tty.out" 120; then pass "tty: consoleSize 24x80"; else
	fail "tty: consoleSize 24x80: $(head -c 300 "$work/tty.err")"
fi
expect_ctl "tty: RESIZE" resize "$tty_id" 30 100
echo hello >&3
exec 3>&-
wait "$tty_pid"
expect_eq "tty: status" 0 "$?"
tr -d '\r' <"$work/tty.out" >"$work/tty.txt"
expect_grep "tty: the new size" '^30 100$' "$work/tty.txt"
expect_grep "tty: stdin is the container's own /dev/pts/0" '^/dev/pts/0$' "$work/tty.txt"
expect_no_grep "tty: tty and stty find the terminal" 'not a tty|stty:' "$work/tty.txt"
expect_grep "tty: input read through the terminal" '^got hello$' "$work/tty.txt"

# EXEC in a running container, PS, STATS, then SIGKILL from the host.
cfg long 'exec sleep 100000'
expect_ctl "long-running container: create" create long --rootfs-block /dev/vda ext4 \
	"${mounts[@]}" --config "$work/long.json"
expect_ctl "long-running container: start" start long
jq '.process | .args = ["sh", "-c", "echo exec-ok; cat /proc/1/comm; exit 5"]' \
	"$work/base.json" >"$work/exec.json"
timeout 600 "$agentctl" "$sock" exec long e1 --process "$work/exec.json" \
	--stdout "$work/exec.out" >"$work/exec.rec" 2>"$work/exec.err"
expect_eq "exec: its exit code" 5 "$?"
expect_grep "exec: its output" '^exec-ok$' "$work/exec.out"
expect_grep "exec: in the container's pid namespace (pid 1 is the init)" '^sleep$' \
	"$work/exec.out"
# EXEC with a terminal: its pty from the container's devpts too (pts/0 is the first free).
jq '.process | .terminal = true | .consoleSize = {height: 40, width: 100} |
	.args = ["sh", "-c", "tty; stty size"]' "$work/base.json" >"$work/exectty.json"
timeout 600 "$agentctl" "$sock" exec long etty --process "$work/exectty.json" --tty \
	--stdout "$work/exectty.out" >"$work/exectty.rec" 2>"$work/exectty.err"
expect_eq "exec --tty: its exit code" 0 "$?"
tr -d '\r' <"$work/exectty.out" >"$work/exectty.txt"
expect_grep "exec --tty: a pty of the container's devpts" '^/dev/pts/[0-9]+$' "$work/exectty.txt"
expect_grep "exec --tty: consoleSize" '^40 100$' "$work/exectty.txt"
# PS names each process by its own command (busybox runs applets through /proc/self/exe).
jq '.process | .args = ["sleep", "100001"]' "$work/base.json" >"$work/exec2.json"
timeout 600 "$agentctl" "$sock" exec long e2 --process "$work/exec2.json" >/dev/null 2>&1 &
exec_pid=$!
for _ in $(seq 120); do
	ctl ps long
	grep -Eq '^[0-9]+ [0-9]+ 0 e2 sleep' "$work/ctl.out" && break
	sleep 1
done
expect_grep "ps: the init is listed" '^[0-9]+ [0-9]+ 0 - sleep' "$work/ctl.out"
expect_grep "ps: the exec'd sleep is listed as sleep" '^[0-9]+ [0-9]+ 0 e2 sleep' \
	"$work/ctl.out"
expect_no_grep "ps: no process named exe" ' exe$' "$work/ctl.out"
ctl stats long
expect_grep "stats: the container's cgroup counts its process" '^pids_current=[1-9]' \
	"$work/ctl.out"
# FREEZE (1.3, pods): the cgroup v2 freezer of the guest; EXEC waits for the thaw.
expect_ctl "freeze: answered once cgroup.events says frozen" freeze long
ctl stats long
expect_grep "freeze: STATS still answers" '^pids_current=[1-9]' "$work/ctl.out"
timeout 600 "$agentctl" "$sock" exec long efrozen --process "$work/exec.json" \
	>"$work/frozen.rec" 2>"$work/frozen.err"
expect_eq "freeze: EXEC refused while frozen (agentctl's own failure)" 125 "$?"
expect_grep "freeze: EXEC's error says paused" 'paused' "$work/frozen.err"
expect_ctl "thaw" thaw long
timeout 600 "$agentctl" "$sock" exec long ethawed --process "$work/exec.json" \
	--stdout "$work/thawed.out" >/dev/null 2>"$work/thawed.err"
expect_eq "thaw: EXEC runs again" 5 "$?"
expect_ctl "freeze again (SIGKILL reaches a frozen init)" freeze long
expect_ctl "SIGKILL to the init" signal long KILL
wait "$exec_pid" # the exec'd sleep dies with the init (pid namespace)
ctl wait long
expect_grep "SIGKILL to the init: killed, signal 9" 'status=137 code=0 signal=9 oom=0' \
	"$work/ctl.out"
expect_ctl "delete after exit" delete long
expect_ctl "ack the exit" ack long

# SIGTERM to a shell that traps it, as its container's PID 1.
cfg trap 'trap "echo got-TERM; exit 42" TERM; sleep 100000 & echo ready; wait $!'
expect_ctl "trapping shell: create" create trap --rootfs-block /dev/vda ext4 "${mounts[@]}" \
	--config "$work/trap.json" --stdout "$work/trap.out"
expect_ctl "trapping shell: start" start trap
if wait_for '^ready$' "$work/trap.out" 120; then pass "trapping shell: ready"; else
	fail "trapping shell: ready"
fi
expect_ctl "SIGTERM" signal trap TERM
ctl wait trap
expect_grep "SIGTERM: the trap ran, exit 42" 'status=42 code=42 signal=0' "$work/ctl.out"
wait_for 'got-TERM' "$work/trap.out" 30
expect_grep "SIGTERM: the trap's output" '^got-TERM$' "$work/trap.out"
ctl delete trap
ctl ack trap

# Capabilities: the default set has no CAP_SYS_ADMIN (bit 21); a config can drop more.
cfg caps 'grep -E "^Cap(Eff|Bnd):" /proc/self/status; mount -t tmpfs t /tmp 2>/dev/null ||
	echo mount-refused'
expect_run "default capabilities" 0 caps caps --stdout "$work/caps.out"
expect_grep "default capabilities: CapEff is Docker's set" '^CapEff:[[:space:]]+00000000a80425fb$' \
	"$work/caps.out"
expect_grep "default capabilities: CapBnd too" '^CapBnd:[[:space:]]+00000000a80425fb$' \
	"$work/caps.out"
expect_grep "without CAP_SYS_ADMIN, mount is refused" '^mount-refused$' "$work/caps.out"
cfg caps2 'grep -E "^Cap(Eff|Bnd):" /proc/self/status' \
	'.process.capabilities = {bounding: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL"],
	 effective: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL"],
	 permitted: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL"]}'
expect_run "three capabilities" 0 caps caps2 --stdout "$work/caps2.out"
expect_grep "three capabilities: CapEff" '^CapEff:[[:space:]]+0000000000000023$' "$work/caps2.out"
expect_grep "three capabilities: CapBnd" '^CapBnd:[[:space:]]+0000000000000023$' "$work/caps2.out"

# seccomp: mkdir and mkdirat fail with EPERM; without the rule mkdir works.
cfg mkdir 'mkdir /tmp/allowed && echo made'
expect_run "mkdir without seccomp" 0 mkdir mkdir --stdout "$work/mkdir.out"
expect_grep "mkdir without seccomp: made" '^made$' "$work/mkdir.out"
cfg seccomp 'mkdir /tmp/blocked; echo "rc=$?"' \
	'.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"],
	 syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1}]}'
expect_run "seccomp" 0 seccomp seccomp --stdout "$work/seccomp.out" --stderr "$work/seccomp.err"
expect_grep "seccomp: mkdir fails" '^rc=1$' "$work/seccomp.out"
expect_grep "seccomp: with EPERM" 'Operation not permitted' "$work/seccomp.err"

# A memory limit: the OOM killer ends the process, the record says OOM, STATS counts it.
cfg oom "awk 'BEGIN { s = \"x\"; while (1) s = s s }'" \
	'.linux.resources = {memory: {limit: 16777216}}'
expect_ctl "memory limit: create" create oom --rootfs-block /dev/vda ext4 "${mounts[@]}" \
	--config "$work/oom.json"
: >"$work/events.out"
timeout 900 "$agentctl" "$sock" events 2 600 >"$work/events.out" 2>"$work/events.err" &
events=$!
wait_for '^listening$' "$work/events.out" 60
expect_ctl "memory limit: start" start oom
ctl wait oom
expect_grep "memory limit: OOM-killed, reported as OOM" 'status=137 code=0 signal=9 oom=1' \
	"$work/ctl.out"
wait "$events"
expect_grep "memory limit: EVENT_OOM" '^oom oom oom_kill=1$' "$work/events.out"
expect_grep "memory limit: EVENT_EXIT with the OOM flag" '^exit oom - .*signal=9 oom=1' \
	"$work/events.out"
ctl stats oom
expect_grep "memory limit: STATS mem_limit" '^mem_limit=16777216$' "$work/ctl.out"
expect_grep "memory limit: STATS mem_oom_kill" '^mem_oom_kill=[1-9]' "$work/ctl.out"
ctl delete oom
ctl ack oom

# PID 1 reaps orphans: without a pid namespace, a container's background child is
# re-parented to the agent when its shell exits; no zombie may stay. lo is up.
nopidns='.linux.namespaces |= map(select(.type != "pid"))'
cfg orphan 'sleep 2 & exit 0' "$nopidns"
expect_run "orphan maker" 0 orphan orphan
cfg zombies 'sleep 5; grep -l "^State:.Z" /proc/[0-9]*/status; echo checked; cat /sys/class/net/lo/flags' \
	"$nopidns"
expect_run "zombie check" 0 zombies zombies --stdout "$work/zombies.out"
expect_eq "PID 1 reaped the orphan: no zombie; lo is up (IFF_UP|IFF_LOOPBACK)" "checked 0x9" \
	"$(tr '\n' ' ' <"$work/zombies.out" | sed 's/ $//')"

ctl list-exits
expect_eq "no exit record left unacknowledged" "" "$(cat "$work/ctl.out")"

# SHUTDOWN: the agent powers the VM off, the VMM exits 0.
expect_ctl "SHUTDOWN" shutdown
for _ in $(seq 1200); do kill -0 "$vm" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$vm" 2>/dev/null; then
	fail "SHUTDOWN: the VM powered off within 120 s"
	kill "$vm"
fi
wait "$vm"
expect_eq "SHUTDOWN: VMM exit status 0 (guest power-off)" 0 "$?"
tr -d '\r' <"$work/vm.raw" >"$console"
expect_no_grep "no kernel panic" 'Kernel panic' "$console"
expect_no_grep "no emulation failure" 'cannot emulate the instruction' "$work/vm.log"

# A second, short boot: no vsock device, and a kernel command-line word the kernel hands to
# init as an argument. PID 1 logs both and powers off rather than exit (which would panic).
timeout 900 "$vmm" -kernel "$kernel" -initrd "$initramfs" -m 256 -smp 1 \
	-append "stratus_stray_word" </dev/null >"$work/novsock.raw" 2>"$work/novsock.log"
expect_eq "no vsock device: the VM powers off (VMM exit 0, not a panic)" 0 "$?"
tr -d '\r' <"$work/novsock.raw" >"$work/novsock.out"
expect_grep "no vsock device: the agent says why" \
	'^stratus-agent: listen vsock:1024: the VM has no vsock device$' \
	"$work/novsock.out"
expect_grep "a stray kernel argument is ignored, not fatal" \
	'^stratus-agent: ignoring argument "stratus_stray_word"$' "$work/novsock.out"
finish
