#!/usr/bin/env bash
# VMM hardening against the stub guest (tests/integration/stub): the seccomp lists and
# their counts, every way a VM ends still working under the filters, a forbidden syscall
# from each thread type killing the VMM (the STRATUS_VMM_TEST_FORBIDDEN test hook), the
# capability drop, no_new_privs and the filter seen in /proc, -disable-seccomp and
# -seccomp-log, the jail (-sandbox: the VMM cannot see host paths) and -runas.
# The Linux guest workload under the filters (blk + vsock + rng + hotplug) is in
# test_hotplug.sh.
# usage: test_seccomp.sh STRATUS_VMM STUB
source "$(dirname "$0")/lib.sh"
vmm=$1
stub=$2
need_file "$vmm" stratus-vmm
need_file "$stub" "the test stub"
need_kvm

# run_vmm NAME ARGS...: exit status; output in $work/NAME.out, log in $work/NAME.log
run_vmm() {
	local name=$1
	shift
	timeout 60 "$vmm" "$@" </dev/null >"$work/$name.out" 2>"$work/$name.log"
	echo $?
}

# The lists and their counts (targets: vCPU <= 20, main <= 40, both <= 45).
"$vmm" -print-seccomp >"$work/lists" 2>&1
expect_eq "-print-seccomp: exit 0" 0 "$?"
count() { sed -n "s/^$1: \([0-9]*\) syscalls$/\1/p" "$work/lists"; }
main_n=$(count "main thread")
vcpu_n=$(count "vcpu thread")
any_n=$(count "VMM process (main and vcpu threads)")
fs_n=$(count "fs process (one per virtio-fs share)")
expect_eq "main thread: at most 40 syscalls ($main_n)" yes "$([ "${main_n:-99}" -le 40 ] && echo yes)"
expect_eq "vCPU thread: at most 20 syscalls ($vcpu_n)" yes "$([ "${vcpu_n:-99}" -le 20 ] && echo yes)"
expect_eq "main and vCPU threads together: at most 45 syscalls ($any_n)" yes "$([ "${any_n:-99}" -le 45 ] && echo yes)"
expect_eq "a virtio-fs share's process: at most 50 syscalls ($fs_n)" yes "$([ "${fs_n:-99}" -le 50 ] && echo yes)"
expect_grep "vCPU list: ioctl KVM_RUN" '^  ioctl +kvm +KVM_RUN$' "$work/lists"
expect_grep "main list: mmap without PROT_EXEC" '^  mmap +libc +without PROT_EXEC$' "$work/lists"
expect_no_grep "no list allows execve" '^  execve ' "$work/lists"

# Every way a VM ends, under the filters (the default).
expect_eq "poweroff under the filters: exit 0" 0 "$(run_vmm hello -kernel "$stub" -append h)"
expect_grep "serial output under the filters" '^stub: hello from PVH$' "$work/hello.out"
expect_eq "reset under the filters: exit 3" 3 "$(run_vmm reset -kernel "$stub" -append r)"
expect_eq "triple fault under the filters: exit 4" 4 "$(run_vmm triple -kernel "$stub" -append t)"
expect_eq "4 vCPUs under the filters: exit 0" 0 "$(run_vmm smp -kernel "$stub" -append p -smp 4)"
expect_eq "instruction fix-ups (vCPU thread) under the filters: exit 0" 0 \
	"$(run_vmm emu -kernel "$stub" -boot-entry linux64)"
expect_grep "the 64-bit stub ran to the end" '^stub: done$' "$work/emu.out"
printf 'xyzq' | timeout 60 "$vmm" -kernel "$stub" -append e >"$work/echo.out" 2>"$work/echo.log"
expect_eq "console input under the filters: exit 0" 0 "$?"
expect_grep "console input echoed" 'xyz' "$work/echo.out"

# A forbidden syscall from each thread type kills the whole VMM (SIGSYS: 128 + 31).
for thread in main vcpu; do
	status=$(STRATUS_VMM_TEST_FORBIDDEN=$thread run_vmm forbid-$thread -kernel "$stub" -append b)
	expect_eq "forbidden syscall on the $thread thread: killed by SIGSYS" 159 "$status"
	expect_grep "forbidden syscall on the $thread thread: the hook ran" \
		"STRATUS_VMM_TEST_FORBIDDEN=$thread: calling getppid" "$work/forbid-$thread.log"
	expect_no_grep "forbidden syscall on the $thread thread: not allowed" 'was allowed' \
		"$work/forbid-$thread.log"
done
status=$(STRATUS_VMM_TEST_FORBIDDEN=vcpu run_vmm disabled -kernel "$stub" -append h -disable-seccomp)
expect_eq "-disable-seccomp: the forbidden syscall goes through, exit 0" 0 "$status"
expect_grep "-disable-seccomp: said loudly" 'SECCOMP FILTERS DISABLED' "$work/disabled.log"
expect_grep "-disable-seccomp: really no filter" 'getppid\(\) was allowed' "$work/disabled.log"
status=$(STRATUS_VMM_TEST_FORBIDDEN=main run_vmm logmode -kernel "$stub" -append h -seccomp-log)
expect_eq "-seccomp-log: the forbidden syscall is only logged, exit 0" 0 "$status"
expect_grep "-seccomp-log: said so" 'seccomp-log: syscalls off the seccomp lists are only logged' \
	"$work/logmode.log"

# A running VM: capabilities, no_new_privs and the filter of every thread in /proc; QMP and
# the serial socket work under the filters; SIGTERM ends it cleanly.
start_busy() { # NAME ARGS...: starts the busy stub in the background, pid in $busy
	local name=$1
	shift
	"$vmm" -kernel "$stub" -append b -smp 2 "$@" </dev/null >"$work/$name.out" \
		2>"$work/$name.log" &
	busy=$!
}
mkdir -p "$work/run"
sock=$work/run/qmp.sock
start_busy busy -qmp "unix:$sock,server,nowait" -serial "unix:$work/run/con.sock,server,nowait"
for _ in $(seq 100); do [ -S "$sock" ] && [ -S "$work/run/con.sock" ] && break; sleep 0.05; done
sleep 0.5
status_of() { grep "^$1:" "/proc/$busy/status" | cut -f2-; }
expect_eq "CapEff is empty" 0000000000000000 "$(status_of CapEff)"
expect_eq "CapPrm is empty" 0000000000000000 "$(status_of CapPrm)"
expect_eq "CapInh is empty" 0000000000000000 "$(status_of CapInh)"
expect_eq "CapAmb is empty" 0000000000000000 "$(status_of CapAmb)"
if [ "$(id -u)" = 0 ]; then
	expect_eq "CapBnd is empty (started as root)" 0000000000000000 "$(status_of CapBnd)"
fi
expect_eq "NoNewPrivs: 1" 1 "$(status_of NoNewPrivs)"
expect_eq "Seccomp: 2 (filter mode)" 2 "$(status_of Seccomp)"
threads=0
filtered=0
for task in /proc/$busy/task/*; do
	case $(cat "$task/comm") in stratus-vmm | vcpu*) ;; *) continue ;; esac # not KVM's
	threads=$((threads + 1))
	[ "$(grep '^Seccomp:' "$task/status" | cut -f2)" = 2 ] &&
		[ "$(grep '^CapEff:' "$task/status" | cut -f2)" = 0000000000000000 ] &&
		[ "$(grep '^CapPrm:' "$task/status" | cut -f2)" = 0000000000000000 ] &&
		filtered=$((filtered + 1))
done
expect_eq "every thread (main + 2 vCPUs): filtered, no capabilities" "3 3" "$threads $filtered"
printf '{"execute":"qmp_capabilities"}\n{"execute":"stop"}\n{"execute":"query-status"}\n{"execute":"cont"}\n{"execute":"query-status"}\n' |
	timeout 10 socat -t 2 - "UNIX-CONNECT:$sock" >"$work/qmp.out" 2>&1
expect_grep "QMP under the filters: paused" '"status":"paused"' "$work/qmp.out"
expect_grep "QMP under the filters: running again" '"status":"running"' "$work/qmp.out"
timeout 2 socat -u "UNIX-CONNECT:$work/run/con.sock" - >"$work/con.out" 2>/dev/null
expect_grep "serial socket under the filters" '\.\.\.' "$work/con.out"
kill -TERM "$busy"
wait "$busy"
expect_eq "SIGTERM under the filters: exit 0" 0 "$?"
expect_eq "QMP socket removed at exit" no "$([ -e "$sock" ] && echo yes || echo no)"

# A virtio-fs share: served by a process of its own (docs/virtio-fs.md, "Process"), so the
# VMM still holds nothing; the process is filtered and keeps at most the file capabilities.
# Its death (SIGKILL, or a forbidden syscall) is logged and leaves the VMM running.
mkdir -p "$work/share"
fs_children() { # the VMM's fs-* children
	for h in $(cat /proc/"$busy"/task/*/children 2>/dev/null); do
		case $(cat "/proc/$h/comm" 2>/dev/null) in fs-*) echo "$h" ;; esac
	done
}
qmp_status() {
	printf '{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n' |
		timeout 10 socat -t 2 - "UNIX-CONNECT:$sock" 2>&1 | grep -o '"status":"[a-z]*"'
}
start_busy fs -qmp "unix:$sock,server,nowait" -D \
	-device virtio-fs-device,id=share0,tag=t0,source="$work/share"
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
sleep 0.5
expect_eq "with a share: CapEff is empty" 0000000000000000 "$(status_of CapEff)"
expect_eq "with a share: NoNewPrivs: 1, Seccomp: 2" "1 2" "$(status_of NoNewPrivs) $(status_of Seccomp)"
helper=$(fs_children)
expect_eq "the share's process: a child named fs-share0" fs-share0 "$(cat "/proc/${helper:-0}/comm" 2>&1)"
hstatus() { grep "^$1:" "/proc/${helper:-0}/status" | cut -f2-; }
expect_eq "the share's process: NoNewPrivs: 1, Seccomp: 2" "1 2" "$(hstatus NoNewPrivs) $(hstatus Seccomp)"
file_caps=$((0x800001f)) # CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID MKNOD
expect_eq "the share's process: only file capabilities" "0 0 0" \
	"$(((0x$(hstatus CapEff)) & ~file_caps)) $(((0x$(hstatus CapPrm)) & ~file_caps)) $(((0x$(hstatus CapBnd)) & ~file_caps))"
if [ "$(id -u)" = 0 ]; then
	expect_eq "the share's process: its own mount namespace" yes \
		"$([ "$(readlink "/proc/$helper/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] && echo yes)"
	expect_eq "the share's process: its root holds only /proc" proc "$(ls "/proc/$helper/root")"
fi
kill -KILL "${helper:-0}"
for _ in $(seq 100); do grep -q "was killed by signal 9" "$work/fs.log" && break; sleep 0.05; done
expect_grep "the share's process killed: logged" "share0: the share's process ${helper:-x} was killed by signal 9" "$work/fs.log"
expect_eq "the share's process killed: reaped" no "$([ -e "/proc/${helper:-0}" ] && echo yes || echo no)"
expect_eq "the share's process killed: QMP still answers" '"status":"running"' "$(qmp_status)"
kill -TERM "$busy"
wait "$busy"
expect_eq "the share's process killed: SIGTERM, exit 0" 0 "$?"

STRATUS_VMM_TEST_FORBIDDEN=fs start_busy forbid-fs -qmp "unix:$sock,server,nowait" \
	-device virtio-fs-device,id=share0,tag=t0,source="$work/share"
for _ in $(seq 200); do grep -q "was killed by signal" "$work/forbid-fs.log" && break; sleep 0.05; done
expect_grep "forbidden syscall in the share's process: the hook ran" \
	"STRATUS_VMM_TEST_FORBIDDEN=fs: calling getppid" "$work/forbid-fs.log"
expect_grep "forbidden syscall in the share's process: it is killed (SIGSYS)" \
	"share0: the share's process [0-9]+ was killed by signal 31" "$work/forbid-fs.log"
expect_eq "forbidden syscall in the share's process: the VMM runs on" '"status":"running"' "$(qmp_status)"
expect_eq "forbidden syscall in the share's process: no child left" "" "$(fs_children)"
kill -TERM "$busy"
wait "$busy"
expect_eq "forbidden syscall in the share's process: SIGTERM, exit 0" 0 "$?"

start_busy fs-end -device virtio-fs-device,id=share0,tag=t0,source="$work/share" \
	-device virtio-fs-device,id=share1,tag=t1,source="$work/share"
sleep 1
helpers=$(fs_children | xargs)
expect_eq "two shares: two processes" 2 "$(echo "$helpers" | wc -w)"
kill -TERM "$busy"
wait "$busy"
expect_eq "two shares: SIGTERM, exit 0" 0 "$?"
left=$(for h in $helpers; do [ -e "/proc/$h" ] && echo "$h"; done)
expect_eq "two shares: no process left after the VMM ended" "" "$left"

# The jail: new mount and network namespaces, a root holding only the socket directory.
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$work/jail" "$work/images" "$work/outside"
	head -c 1M /dev/zero >"$work/images/in.img"
	head -c 1M /dev/zero >"$work/outside/out.img"
	chmod 0777 "$work/images" "$work/outside"
	chmod 0666 "$work/images/in.img" "$work/outside/out.img"
	start_busy jailed -qmp "unix:$sock,server,nowait" -sandbox "$work/jail" \
		-sandbox-bind "$work/images" -runas 65534:65534 \
		-device virtio-fs-device,id=share0,tag=t0,source="$work/share"
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	sleep 0.5
	expect_eq "jail: another mount namespace" yes \
		"$([ "$(readlink /proc/$busy/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] && echo yes)"
	expect_eq "jail: another network namespace" yes \
		"$([ "$(readlink /proc/$busy/ns/net)" != "$(readlink /proc/self/ns/net)" ] && echo yes)"
	expect_eq "jail: the host's /etc is out of sight" no \
		"$([ -e /proc/$busy/root/etc/passwd ] && echo yes || echo no)"
	expect_eq "jail: the host's /work is out of sight" no \
		"$([ -e "/proc/$busy/root$(dirname "$vmm")" ] && echo yes || echo no)"
	expect_eq "jail: the socket directory is bound in" yes \
		"$([ -S "/proc/$busy/root$sock" ] && echo yes || echo no)"
	expect_eq "jail: -sandbox-bind's directory is bound in" yes \
		"$([ -f "/proc/$busy/root$work/images/in.img" ] && echo yes || echo no)"
	expect_eq "jail: the root holds nothing else" "$(echo "$work" | cut -d/ -f2)" \
		"$(ls /proc/$busy/root)"
	expect_eq "-runas: uid 65534" "65534	65534	65534	65534" "$(status_of Uid)"
	expect_eq "-runas: gid 65534" "65534	65534	65534	65534" "$(status_of Gid)"
	expect_eq "jailed: CapEff is empty" 0000000000000000 "$(status_of CapEff)"
	expect_eq "jailed: Seccomp: 2" 2 "$(status_of Seccomp)"
	helper=$(fs_children)
	expect_eq "jailed: the share's process serves, jailed too" "fs-share0 proc" \
		"$(cat "/proc/${helper:-0}/comm" 2>&1) $(ls "/proc/${helper:-0}/root" 2>&1)"
	expect_eq "jailed: the share's process runs as -runas's uid, no capabilities" \
		"65534	65534	65534	65534 0000000000000000" \
		"$(grep '^Uid:' "/proc/${helper:-0}/status" | cut -f2-) $(grep '^CapEff:' "/proc/${helper:-0}/status" | cut -f2)"
	{
		echo '{"execute":"qmp_capabilities"}'
		echo '{"execute":"query-status"}'
		echo '{"execute":"blockdev-add","arguments":{"node-name":"in","file":{"driver":"file","filename":"'"$work/images/in.img"'"}}}'
		echo '{"execute":"blockdev-add","arguments":{"node-name":"out","file":{"driver":"file","filename":"'"$work/outside/out.img"'"}}}'
	} | timeout 10 socat -t 1 - "UNIX-CONNECT:$sock" | tr -d '\r' >"$work/jqmp.out" 2>&1
	expect_grep "jailed: QMP answers" '"status":"running"' "$work/jqmp.out"
	expect_eq "jailed: an image in a bound directory can be hot-added" '{"return":{}}' \
		"$(sed -n 4p "$work/jqmp.out")"
	expect_grep "jailed: an image elsewhere on the host cannot be opened" \
		"Could not open '$work/outside/out.img': No such file or directory" "$work/jqmp.out"
	kill -TERM "$busy"
	wait "$busy"
	expect_eq "jailed: SIGTERM, exit 0" 0 "$?"
	expect_grep "jailed: logged" 'sandbox: jailed in' "$work/jailed.log"
fi

# Bad options: one line naming the option.
expect_failure "-runas without a gid" 2 "-runas: '1000' must be UID:GID" \
	"$vmm" -kernel "$stub" -runas 1000
expect_failure "-sandbox relative" 2 "-sandbox: 'jail' must be an absolute directory" \
	"$vmm" -kernel "$stub" -sandbox jail
expect_failure "-sandbox-bind of a missing directory" 1 "-sandbox-bind: /nonexistent is not a directory" \
	"$vmm" -kernel "$stub" -append h -sandbox "$work/jail" -sandbox-bind /nonexistent
expect_failure "-sandbox without a directory" 1 "-sandbox: tmpfs on /nonexistent" \
	"$vmm" -kernel "$stub" -append h -sandbox /nonexistent/jail

finish
