#!/usr/bin/env bash
# Benchmark: how tight the seccomp filters are, and QMP latency under them.
#  1. Syscalls allowed per thread type (stratus-vmm -print-seccomp) against the syscalls each
#     thread type really makes once its filter is in, from `strace -f` of a workload: the
#     Linux guest with blk + a hotplug slot + vsock + rng + a virtio-fs share booted, file
#     work on the share, QMP stop/cont and a hot-add/remove, a vsock client, a serial socket
#     client, SIGTERM. A thread's calls count from the seccomp(SECCOMP_SET_MODE_FILTER) that
#     installed its filter on. Allowed but unused are error and teardown paths. The share's
#     process (fs-ID, forked by the VMM) is another process and is reported apart.
#  2. `strace -f -c` of the same workload (the whole tree), and from the full trace the
#     distinct syscalls per process, set-up included: the VMM, the share's process.
#  3. QMP query-status round trip under the filters: median, p99 and max of 1,000 (bench-qmp).
# Prints the tables and writes them to $out.
# usage: vmm_seccomp.sh BUILD_DIR [OUT]   (STRATUS_KERNEL: guest kernel, default BUILD_DIR/vmlinux)
set -euo pipefail
build=$(cd "$1" && pwd)
out=${2:-$build/bench/vmm-seccomp.txt}
here=$(cd "$(dirname "$0")" && pwd)
vmm=$build/vmm/stratus-vmm
stub=$build/tests/integration/stub/stratus-test-stub
kernel=${STRATUS_KERNEL:-$build/vmlinux}
work=$(mktemp -d /tmp/stratus-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"
command -v strace >/dev/null || { echo "vmm_seccomp: strace is needed" >&2; exit 1; }

# File work on the virtio-fs share first, then the hotplug guest.
cat >"$work/fswork.sh" <<'EOF'
#!/bin/sh
mkdir -p /mnt/share
if mount -t virtiofs share /mnt/share && mkdir /mnt/share/d && echo data >/mnt/share/d/f &&
	cat /mnt/share/d/f >/dev/null && mv /mnt/share/d/f /mnt/share/d/g && ls -l /mnt/share/d &&
	ln -s g /mnt/share/d/l && chmod 600 /mnt/share/d/g && rm -r /mnt/share/d && sync; then
	echo "FSWORK ok"
else
	echo "FSWORK FAIL"
fi
EOF
chmod +x "$work/fswork.sh"
mkdir -p "$work/share"
"$here/../integration/initramfs/make-test-initramfs.sh" \
	--add "$here/../integration/hotplug/guest-hotplug.sh:/tests/hotplug.sh" \
	--add "$work/fswork.sh:/tests/fswork.sh" --applets "dd mkdir ls mv ln chmod rm sync" \
	"$work/initramfs.cpio" >/dev/null
head -c 4M /dev/zero >"$work/disk.img"
head -c 1M /dev/zero >"$work/hot.img"
"$vmm" -print-seccomp >"$work/lists"

# The workload under strace (-f: every thread; -qq: no attach messages).
run_workload() { # STRACE-ARGS...
	local sock=$work/qmp.sock
	rm -f "$sock" "$work"/*.sock*
	strace "$@" "$vmm" -kernel "$kernel" -initrd "$work/initramfs.cpio" -m 256 -smp 2 \
		-drive id=d0,file="$work/disk.img" -device virtio-blk-device,drive=d0,id=blk0 \
		-device virtio-rng-device,id=rng0 \
		-device vhost-vsock-device,id=v0,guest-cid=3,uds-path="$work/vsock.sock" \
		-device virtio-fs-device,id=share0,tag=share,source="$work/share" \
		-serial "unix:$work/con.sock,server,nowait" -qmp "unix:$sock,server,nowait" \
		-machine microvm,blk-slots=2 \
		-append "quiet stratus_test_quick stratus_test_run=/tests/fswork.sh stratus_test_run=/tests/hotplug.sh stratus_test=idle" \
		</dev/null >"$work/vmm.out" 2>"$work/vmm.log" &
	local pid=$!
	for _ in $(seq 200); do [ -S "$sock" ] && [ -S "$work/con.sock" ] && break; sleep 0.1; done
	timeout 600 socat -u "UNIX-CONNECT:$work/con.sock" "OPEN:$work/console,creat" &
	local con=$!
	for _ in $(seq 6000); do grep -q 'HOTPLUG vdb size=0' "$work/console" 2>/dev/null && break; sleep 0.1; done
	{
		echo '{"execute":"qmp_capabilities"}'
		echo '{"execute":"stop"}'
		echo '{"execute":"cont"}'
		echo '{"execute":"blockdev-add","arguments":{"node-name":"n1","file":{"driver":"file","filename":"'"$work/hot.img"'"}}}'
		echo '{"execute":"device_add","arguments":{"id":"hot1","driver":"virtio-blk-mmio","drive":"n1","addr":"1"}}'
		sleep 3
		echo '{"execute":"device_del","arguments":{"id":"hot1"}}'
		echo '{"execute":"blockdev-del","arguments":{"node-name":"n1"}}'
		sleep 1
	} | socat -t 2 - "UNIX-CONNECT:$sock" >"$work/qmp.out"
	printf 'CONNECT 5000\n' | timeout 10 socat -t 2 - "UNIX-CONNECT:$work/vsock.sock" >/dev/null 2>&1 || true
	sleep 1
	kill -TERM "$(pgrep -P "$pid" stratus-vmm || echo "$pid")"
	wait "$pid" || true
	kill "$con" 2>/dev/null || true
}
run_workload -f -qq -o "$work/trace"
run_workload -f -c -o "$work/summary"

# Per thread: syscall names after the thread's own seccomp(). The main thread is the pid
# that execve'd; the share's process is the one that named itself fs-*; the others are vCPU
# threads.
main_tid=$(awk '/execve\(/ {print $1; exit}' "$work/trace")
fs_pids=$(awk '/prctl\(PR_SET_NAME, "fs-/ {print $1}' "$work/trace" | sort -u | xargs)
grep -q 'FSWORK ok' "$work/console" || echo "vmm_seccomp: the guest's file work on the share failed" >&2
awk -v main="$main_tid" -v fs=" $fs_pids " '
	{ tid = $1; call = $2; sub(/\(.*/, "", call) }
	call ~ /^(<|\+\+\+|---)/ { next }
	$0 ~ /<\.\.\. / { next }
	call == "seccomp" && /filter=/ && / = 0$/ { filtered[tid] = 1; next }
	filtered[tid] { print (index(fs, " " tid " ") ? "fs" : tid == main ? "main" : "vcpu"), call }
' "$work/trace" | sort -u >"$work/used"
# Per process, set-up included: every call of the VMM's threads, and of the share's process
# from its fork on.
awk -v fs=" $fs_pids " '
	{ tid = $1; call = $2; sub(/\(.*/, "", call) }
	call ~ /^(<|\+\+\+|---)/ || $0 ~ /<\.\.\. / { next }
	{ print (index(fs, " " tid " ") ? "fs" : "vmm"), call }
' "$work/trace" | sort -u >"$work/used-by-process"
allowed() { # THREAD: the names the list allows
	awk -v t="$1 (thread|process)" '$0 ~ "^" t {on = 1; next} /^[a-zA-Z]/ {on = 0} on {print $1}' "$work/lists" | sort -u
}
{
	echo "seccomp filters vs. a real workload (Linux guest: blk + hotplug slot + vsock + rng + a virtio-fs share with file work, QMP, serial socket, SIGTERM); $(date -u +%F) on $(uname -r)"
	printf '%-8s %8s %6s %16s\n' "thread" "allowed" "used" "allowed, unused"
	for t in main vcpu fs; do
		allowed "$t" >"$work/allowed.$t"
		grep "^$t " "$work/used" | cut -d' ' -f2 | sort -u >"$work/used.$t"
		unused=$(comm -23 "$work/allowed.$t" "$work/used.$t" | tr '\n' ' ')
		printf '%-8s %8d %6d   %s\n' "$t" "$(wc -l <"$work/allowed.$t")" \
			"$(wc -l <"$work/used.$t")" "${unused:-none}"
		outside=$(comm -13 "$work/allowed.$t" "$work/used.$t" | tr '\n' ' ')
		[ -z "$outside" ] || echo "  $t used syscalls off its list (the filter would kill): $outside"
	done
	printf '%-8s %8d %6d   (main and vcpu together: the VMM process)\n' "vmm" \
		"$(sort -u "$work/allowed.main" "$work/allowed.vcpu" | wc -l)" \
		"$(grep -E '^(main|vcpu) ' "$work/used" | cut -d' ' -f2 | sort -u | wc -l)"
	echo "  (fs: one virtio-fs share's process, a process of its own, listed apart from the VMM's)"
	echo
	echo "strace -f of the same workload, distinct syscalls per process, set-up included: VMM $(grep -c '^vmm ' "$work/used-by-process"), the share's process $(grep -c '^fs ' "$work/used-by-process") (from its fork on)"
	echo "strace -f -c of the same workload (whole process tree, set-up included): $(awk '/^-+ /{n++} n==1 && $NF != "syscall" && NF>=5 {c++} END {print c}' "$work/summary") distinct syscalls; top 10 by calls:"
	awk '$NF != "syscall" && $NF != "total" && NF >= 5 && $1 ~ /^[0-9.]+$/ {print $4, $NF}' "$work/summary" |
		sort -rn | head -10 | awk '{printf "  %-20s %10d\n", $2, $1}'
} >"$work/table"

# QMP latency under the filters: the idle stub, 1,000 query-status.
"$vmm" -kernel "$stub" -append i -serial none -qmp "unix:$work/lat.sock,server,nowait" \
	-machine microvm,blk-slots=0 </dev/null >/dev/null 2>&1 &
busy=$!
for _ in $(seq 100); do [ -S "$work/lat.sock" ] && break; sleep 0.05; done
read -r med p99 max n < <("$build/tests/bench/bench-qmp" "$work/lat.sock" 1000)
kill -TERM "$busy"
wait "$busy" || true
{
	cat "$work/table"
	echo
	printf 'QMP query-status round trip under the filters (%d, paced under the rate limit): median %.1f us, p99 %.1f us, max %.1f us\n' \
		"$n" "$med" "$p99" "$max"
} | tee "$out"
