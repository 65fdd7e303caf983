#!/usr/bin/env bash
# Benchmark: snapshots (docs/snapshots.md).
#  1. Restore time: the stub guest, snapshotted while it waits for console input (action
#     'e'), restored RUNS times; from exec to the vCPUs starting (the VMM's own log clock,
#     which starts at exec: the "starting" line comes right before the vCPU threads run the
#     restored state) and exec to exit (the clone echoes one byte of its piped console
#     input and powers off), against a cold boot of the same stub doing the same.
#  2. Memory: N Linux guests (test initramfs, stratus_test=idle, 256 MiB) cold-booted, then
#     N clones restored from one snapshot of such a guest; RSS and PSS (shared pages split
#     between their users) of the VMM processes, once idle.
#  3. virtio-fs (docs/snapshots.md "virtio-fs"): such a guest with a virtio-fs slot,
#     snapshotted, its file on tmpfs (/dev/shm, as /run usually is); N clones restored
#     keeping the slot (MAP_PRIVATE, as in 2), then N giving it a directory (guest RAM is
#     then a shared memfd the share's process maps: the snapshot's data is copied in).
#     Exec to vCPUs, the copy (MiB, ms, from the VMM's debug log), RSS and PSS once idle
#     (the VMM and the share's process together).
# The snapshotted VMs have -qmp for migrate but no virtio-blk hotplug slots (blk-slots=0), so
# the clones need no -qmp of their own (docs/vmm.md). Prints a table and writes it to $out.
# usage: vmm_snapshot.sh BUILD_DIR [RUNS] [CLONES] [OUT]
set -euo pipefail
build=$(cd "$1" && pwd)
runs=${2:-20}
clones=${3:-4}
out=${4:-$build/bench/vmm-snapshot.txt}
vmm=$build/vmm/stratus-vmm
stub=$build/tests/integration/stub/stratus-test-stub
kernel=${STRATUS_KERNEL:-$build/vmlinux}
initrd=${STRATUS_TEST_INITRAMFS:-$build/test-initramfs.cpio}
work=$(mktemp -d /tmp/stratus-bench.XXXXXX)
shm=$(mktemp -d "${STRATUS_BENCH_TMPFS:-/dev/shm}/stratus-bench.XXXXXX" 2>/dev/null || mktemp -d "$work/shm.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work" "$shm"
}
trap cleanup EXIT
mkdir -p "$(dirname "$out")"

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# qmp SOCKET COMMAND...: negotiate, send, wait for every reply.
qmp() {
	local sock=$1 want=$(($# - 1)) i
	shift
	: >"$work/qmp.out"
	{
		echo '{"execute":"qmp_capabilities"}'
		printf '%s\n' "$@"
		for ((i = 0; i < 1200; i++)); do
			[ "$(grep -c '"return"\|"error"' "$work/qmp.out")" -ge $want ] && break
			sleep 0.1
		done
	} | timeout 180 socat - "UNIX-CONNECT:$sock" >"$work/qmp.out"
}

wait_log() { # wait_log PATTERN FILE SECONDS
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -Eq -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "vmm_snapshot: timed out waiting for /$1/ in $2" >&2
	return 1
}

# kB of RSS and PSS of the processes given, summed (smaps_rollup).
mem_of() {
	local pid rss=0 pss=0 r p
	for pid in "$@"; do
		r=$(awk '/^Rss:/ {print $2}' "/proc/$pid/smaps_rollup")
		p=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
		rss=$((rss + r))
		pss=$((pss + p))
	done
	echo "$rss $pss"
}

# ---- 1. restore time, stub ----
timeout 60 "$vmm" -kernel "$stub" -append e -machine microvm,blk-slots=0 -qmp "unix:$work/stub.qmp,server,nowait" \
	</dev/null >/dev/null 2>"$work/stub-src.log" &
pids+=($!)
wait_log 'starting' "$work/stub-src.log" 10
sleep 0.2
qmp "$work/stub.qmp" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$work/stub.snap\"}}" \
	'{"execute":"quit"}'
grep -q '"status"\|"return":{}' "$work/qmp.out" || { echo "vmm_snapshot: migrate failed" >&2; exit 1; }
save_ms=$(sed -n 's/.*snapshot written to .* in \([0-9.]*\) ms/\1/p' "$work/stub-src.log")

: >"$work/restore.runs"
: >"$work/cold.runs"
: >"$work/restore.start"
: >"$work/cold.start"
# timed OUT LOG ARGS...: exec to exit in ms (bash's clock around one run; the console
# input is a pipe, which bench-run cannot give, so its fork costs both sides alike).
timed() {
	local out=$1 log=$2 start end status
	shift 2
	start=$(date +%s%N)
	printf xq | timeout 30 "$vmm" "$@" -D "$log" >/dev/null 2>&1
	status=$?
	end=$(date +%s%N)
	echo "$(echo "($end - $start) / 1000000" | bc -l) $status" >>"$out"
	sed -n 's/^\[ *\([0-9.]*\)\] info: VM with.*starting$/\1/p' "$log" >>"${out%.runs}.start"
}
"$vmm" -incoming "file:$work/stub.snap" </dev/null >/dev/null 2>&1 & # warm the page cache
sleep 0.5
kill $! 2>/dev/null || true
for i in $(seq "$runs"); do
	timed "$work/restore.runs" "$work/r$i.log" -incoming "file:$work/stub.snap"
	timed "$work/cold.runs" "$work/c$i.log" -kernel "$stub" -append e
done
r_start=$(awk '{printf "%.3f\n", $1 * 1000}' "$work/restore.start" | median)
c_start=$(awk '{printf "%.3f\n", $1 * 1000}' "$work/cold.start" | median)
r_exit=$(awk '{print $1}' "$work/restore.runs" | median)
c_exit=$(awk '{print $1}' "$work/cold.runs" | median)
r_bad=$(awk '$2 != 0' "$work/restore.runs" | wc -l)
c_bad=$(awk '$2 != 0' "$work/cold.runs" | wc -l)

# ---- 2. memory of N Linux guests, cold vs clones ----
linux_args=(-m 256 -smp 1 -serial none -device virtio-rng-device)
cold_pids=()
for i in $(seq "$clones"); do
	"$vmm" -kernel "$kernel" -initrd "$initrd" "${linux_args[@]}" \
		-append "quiet stratus_test_quick stratus_test=idle" </dev/null >/dev/null \
		2>"$work/cold$i.log" &
	cold_pids+=($!)
	pids+=($!)
done
for i in $(seq "$clones"); do wait_log 'guest boot completed' "$work/cold$i.log" 900; done
sleep 5 # init reaches its sleep
read -r cold_rss cold_pss < <(mem_of "${cold_pids[@]}")
kill "${cold_pids[@]}"
wait "${cold_pids[@]}" 2>/dev/null || true

"$vmm" -kernel "$kernel" -initrd "$initrd" "${linux_args[@]}" \
	-machine microvm,blk-slots=0 -qmp "unix:$work/linux.qmp,server,nowait" -append "quiet stratus_test_quick stratus_test=idle" \
	</dev/null >/dev/null 2>"$work/template.log" &
pids+=($!)
wait_log 'guest boot completed' "$work/template.log" 900
sleep 5
qmp "$work/linux.qmp" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$work/linux.snap\"}}" \
	'{"execute":"quit"}'
snap_disk=$(du -k "$work/linux.snap" | cut -f1)
clone_pids=()
for i in $(seq "$clones"); do
	"$vmm" -incoming "file:$work/linux.snap" "${linux_args[@]}" </dev/null >/dev/null \
		2>"$work/clone$i.log" &
	clone_pids+=($!)
	pids+=($!)
done
for i in $(seq "$clones"); do wait_log 'VM with .*starting' "$work/clone$i.log" 60; done
sleep 5
read -r clone_rss clone_pss < <(mem_of "${clone_pids[@]}")
linux_restore=$(sed -n 's/^\[ *\([0-9.]*\)\] info: VM with.*starting$/\1/p' "$work"/clone*.log |
	awk '{printf "%.3f\n", $1 * 1000}' | median)
kill "${clone_pids[@]}"
wait "${clone_pids[@]}" 2>/dev/null || true

# ---- 3. virtio-fs: a slot kept (MAP_PRIVATE) vs given a directory (copy into shared memory) ----
mkdir -p "$work/share"
"$vmm" -kernel "$kernel" -initrd "$initrd" "${linux_args[@]}" -device virtio-fs-device,id=fs0,tag=data \
	-machine microvm,blk-slots=0 -qmp "unix:$work/fs.qmp,server,nowait" -append "quiet stratus_test_quick stratus_test=idle" \
	</dev/null >/dev/null 2>"$work/fs-template.log" &
pids+=($!)
wait_log 'guest boot completed' "$work/fs-template.log" 900
sleep 5
qmp "$work/fs.qmp" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"file:$shm/linux-fs.snap\"}}" \
	'{"execute":"quit"}'
fs_snap_data=$(du -k "$shm/linux-fs.snap" | cut -f1)
# kB allocated in the guest-RAM memfds of the VMMs given: shmem pages the copy wrote are
# not in any RSS until the guest maps them.
memfd_kb() {
	local pid fd kb=0
	for pid in "$@"; do
		for fd in /proc/"$pid"/fd/*; do
			case $(readlink "$fd" 2>/dev/null || true) in /memfd:guest-ram*) kb=$((kb + $(stat -L -c '%b * %B / 1024' "$fd"))) ;; esac
		done
	done
	echo "$kb"
}
# fs_clones NAME DEVICE: N clones at once with that -device; sets fs_start, fs_rss, fs_pss,
# fs_memfd.
fs_clones() {
	local name=$1 device=$2 i vmms=() all=()
	for i in $(seq "$clones"); do
		"$vmm" -incoming "file:$shm/linux-fs.snap" "${linux_args[@]}" -device "$device" \
			-D "$work/$name$i.log" </dev/null >/dev/null 2>&1 &
		vmms+=($!)
		pids+=($!)
	done
	for i in $(seq "$clones"); do wait_log 'VM with .*starting' "$work/$name$i.log" 60; done
	sleep 5
	for i in "${vmms[@]}"; do all+=("$i" $(pgrep -P "$i" || true)); done
	read -r fs_rss fs_pss < <(mem_of "${all[@]}")
	fs_memfd=$(memfd_kb "${vmms[@]}")
	fs_start=$(sed -n 's/^\[ *\([0-9.]*\)\] info: VM with.*starting$/\1/p' "$work/$name"*.log |
		awk '{printf "%.3f\n", $1 * 1000}' | median)
	kill "${vmms[@]}"
	wait "${vmms[@]}" 2>/dev/null || true
}
fs_clones slot virtio-fs-device,id=fs0,tag=data
slot_start=$fs_start slot_rss=$fs_rss slot_pss=$fs_pss
fs_clones share "virtio-fs-device,id=fs0,tag=data,source=$work/share"
share_start=$fs_start share_rss=$fs_rss share_pss=$fs_pss share_memfd=$fs_memfd
copy_ms=$(sed -n 's/.*guest memory: [0-9.]* MiB copied .* in \([0-9.]*\) ms$/\1/p' "$work"/share*.log | median)
copy_mib=$(sed -n 's/.*guest memory: \([0-9.]*\) MiB copied .*/\1/p' "$work"/share1.log)

mib() { echo "$1 / 1024" | bc -l; }
{
	echo "Snapshots: $runs runs each (stub), $clones Linux guests of 256 MiB; $(date -u +%F) on $(uname -r), $(nproc) cores"
	printf '%-44s %14s %14s %6s\n' "stub guest" "to vCPUs ms" "to exit ms" "bad"
	printf '%-44s %14.2f %14.2f %6d\n' "restore (-incoming, echo 1 byte, poweroff)" "$r_start" "$r_exit" "$r_bad"
	printf '%-44s %14.2f %14.2f %6d\n' "cold boot (same stub, same work)" "$c_start" "$c_exit" "$c_bad"
	printf 'stub snapshot written in %s ms (QMP migrate)\n' "$save_ms"
	printf 'Linux guest restore: %.2f ms from exec to vCPUs (median of %d clones); snapshot file %d MiB on disk\n' \
		"$linux_restore" "$clones" $((snap_disk / 1024))
	printf '%-44s %14s %14s\n' "$clones Linux guests, idle" "RSS MiB" "PSS MiB"
	printf '%-44s %14.1f %14.1f\n' "cold boots" "$(mib "$cold_rss")" "$(mib "$cold_pss")"
	printf '%-44s %14.1f %14.1f\n' "clones of one snapshot" "$(mib "$clone_rss")" "$(mib "$clone_pss")"
	printf 'clones/cold: RSS %.3f, PSS %.3f\n' "$(echo "$clone_rss / $cold_rss" | bc -l)" \
		"$(echo "$clone_pss / $cold_pss" | bc -l)"
	printf 'Linux guest with a virtio-fs slot, snapshot on %s (%d MiB of data)\n' \
		"$(df --output=fstype "$shm" | tail -n 1)" $((fs_snap_data / 1024))
	printf '%-44s %14s %14s %14s\n' "$clones clones, idle" "to vCPUs ms" "RSS MiB" "PSS MiB"
	printf '%-44s %14.2f %14.1f %14.1f\n' "slot kept (MAP_PRIVATE of the file)" "$slot_start" \
		"$(mib "$slot_rss")" "$(mib "$slot_pss")"
	printf '%-44s %14.2f %14.1f %14.1f\n' "given a share (copied into a shared memfd)" \
		"$share_start" "$(mib "$share_rss")" "$(mib "$share_pss")"
	printf 'copy into shared memory: %s MiB in %s ms (median); the clones'"'"' memfds hold %.1f MiB (not in RSS until touched)\n' \
		"$copy_mib" "$copy_ms" "$(mib "$share_memfd")"
} | tee "$out"
