#!/usr/bin/env bash
# Benchmark: `ctr run --rm IMAGE ID /bin/true` through containerd 1.6 with our shim
# (io.containerd.stratus.v2) against io.containerd.runc.v2 with runc, same image (the local
# busybox one), same private containerd (tests/integration/peers/containerd-private.sh),
# alternating runs, each timed from exec of ctr to its exit (bench-run). Then where our
# shim's time goes:
#   - the shim's own time: the shim runs with STRATUS_SHIM_TIMING=1 and, when it exits, logs
#     the time its Task handlers took and the part of it spent in libstratus's
#     container_create/start/delete (booting the VM, the agent's set-up, the teardown);
#     the difference is what the shim itself adds per container (medians over the runs);
#   - the shim's `start` (containerd runs it before the first Create; it forks the server
#     and prints its address), timed alone on a scratch bundle;
#   - `stratus run` of a busybox bundle with the same command: the VM without containerd.
# Prints a table of medians and writes it to OUT.
# usage: shim_run.sh [-n RUNS] [-o OUT] BUILD_DIR   (as root with /dev/kvm, containerd, ctr and
#        runc; RUNS default 20; OUT default BUILD_DIR/bench/shim_run.txt; the shim is
#        BUILD_DIR/shim/containerd-shim-stratus-v2, the guest BUILD_DIR/vmlinux and
#        BUILD_DIR/stratus-initramfs.cpio or STRATUS_KERNEL/STRATUS_INITRAMFS)
set -euo pipefail

die() { echo "shim_run: error: $*" >&2; exit 1; }
usage="usage: $0 [-n RUNS] [-o OUT] BUILD_DIR"
runs=20 out=
while getopts n:o: opt; do
	case $opt in
	n) [[ $OPTARG =~ ^[1-9][0-9]*$ ]] || die "-n: needs a positive number of runs, not '$OPTARG'"
		runs=$OPTARG ;;
	o) out=$OPTARG ;;
	*) die "$usage" ;;
	esac
done
shift $((OPTIND - 1))
[[ $# -eq 1 ]] || die "$usage"
build=$(cd "$1" && pwd) || die "BUILD_DIR $1 not found"
out=${out:-$build/bench/shim_run.txt}
run=$build/tests/bench/bench-run
shim=$build/shim/containerd-shim-stratus-v2
[[ -x $run ]] || die "$run not found (cmake --build $build --target bench-run)"
[[ -x $shim ]] || die "$shim not found (cmake --build $build)"
[[ $(id -u) = 0 ]] || die "must run as root (containerd, runc, /dev/kvm)"
for tool in containerd ctr runc unshare bc; do
	command -v $tool >/dev/null || die "$tool not installed"
done
export STRATUS_KERNEL=${STRATUS_KERNEL:-$build/vmlinux}
export STRATUS_INITRAMFS=${STRATUS_INITRAMFS:-$build/stratus-initramfs.cpio}
[[ -f $STRATUS_KERNEL && -f $STRATUS_INITRAMFS ]] ||
	die "no guest: $STRATUS_KERNEL, $STRATUS_INITRAMFS (build them, or set STRATUS_KERNEL/STRATUS_INITRAMFS)"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/peers/containerd-private.sh"
mkdir -p "$(dirname "$out")"

work=$(mktemp -d /tmp/stratus-shim-run.XXXXXX)
mkdir -p "$work/bin" "$work/s" "$work/shimroot"
ln -s "$shim" "$work/bin/containerd-shim-stratus-v2"
export PATH=$work/bin:$PATH
export STRATUS_SHIM_ROOT=$work/shimroot STRATUS_SHIM_SOCKET_DIR=$work/s STRATUS_SHIM_TIMING=1
image=localhost/stratus-busybox:latest
cleanup() {
	containerd_private_stop
	for p in $(peers_pids_mentioning "$work"); do kill -KILL "$p" 2>/dev/null || true; done
	for m in $(peers_mounts_under "$work"); do umount -l "$m" 2>/dev/null || true; done
	timeout 60 "$build/stratus" --root "$work/stratus-root" delete --force bench >/dev/null 2>&1 || true
	# containerd may still be writing its metadata as it goes: retry, and never fail the
	# bench (its table is written) over a work directory that outlived it
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		rm -rf "$work" 2>/dev/null && return 0
		sleep 0.5
	done
	echo "shim_run: warning: $work left behind" >&2
}
trap cleanup EXIT
containerd_private_start "$work/containerd" "$(command -v runc)" || die "containerd did not start"
"$here/../integration/peers/make-busybox-image.sh" "$work/busybox.tar" --name "$image" >/dev/null
c images import "$work/busybox.tar" >/dev/null
"$here/../integration/peers/make-busybox-bundle.sh" "$work/bundle" -- /bin/true >/dev/null

# one NAME ID: one timed run ("WALL_MS PEAK_RSS_KB STATUS"), stdin from /dev/null.
one() {
	case $1 in
	stratus) "$run" ctr -a "$ctd_sock" -n peers run --rm --runtime io.containerd.stratus.v2 \
		"$image" "$2" /bin/true ;;
	runc) "$run" ctr -a "$ctd_sock" -n peers run --rm "${ctd_run_args[@]}" \
		--runtime io.containerd.runc.v2 "$image" "$2" /bin/true ;;
	cli) (cd "$work/bundle" && "$run" timeout -k 10 300 "$build/stratus" --root \
		"$work/stratus-root" run "$2")
		timeout 60 "$build/stratus" --root "$work/stratus-root" delete --force "$2" \
			>/dev/null 2>&1 || true ;;
	esac </dev/null
}
names=(stratus runc cli)
for n in "${names[@]}"; do
	one "$n" "warm-$n" >"$work/$n.warm" || true
	read -r _ _ st <"$work/$n.warm" || st=none
	[[ $st = 0 ]] || die "$n: the warm-up run failed (status $st)"
	: >"$work/$n.runs"
done
for i in $(seq "$runs"); do
	for n in "${names[@]}"; do
		one "$n" "bench-$n-$i" >>"$work/$n.runs"
	done
done

# The shim's `start`, alone: a scratch bundle, exec to the printed address; then its server
# is stopped (SIGTERM) before the next round.
mkdir -p "$work/startbundle"
echo '{"ociVersion":"1.0.2"}' >"$work/startbundle/config.json"
: >"$work/start.runs"
for i in $(seq "$runs"); do
	t0=$(date +%s%N)
	(cd "$work/startbundle" && TTRPC_ADDRESS=$ctd_sock.ttrpc "$shim" -namespace bench \
		-address "$ctd_sock" -publish-binary /bin/true -id "start-$i" start) >/dev/null
	t1=$(date +%s%N)
	awk -v us=$(((t1 - t0) / 1000)) 'BEGIN { printf "%.3f 0 0\n", us / 1000 }' >>"$work/start.runs"
	pids=$(peers_pids_mentioning "-id start-$i ")
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pids; do # it removes its socket as it goes: wait for that
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A ms=() bad=()
for n in "${names[@]}" start; do
	ms[$n]=$(awk '{print $1}' "$work/$n.runs" | median)
	bad[$n]=$(awk '$3 != 0' "$work/$n.runs" | wc -l)
done
# The shims' timing lines reach containerd's log through the shims' log FIFOs.
sleep 2
grep -o 'timing: shim bench-stratus-[0-9]*: Task handlers .*' "$work/containerd/containerd.log" |
	sed 's/.*Task handlers \([0-9.]*\) ms, of which libstratus create\/start\/delete \([0-9.]*\) ms: the shim.s own \([0-9.]*\) ms.*/\1 \2 \3/' \
	>"$work/timing" || true
timed=$(wc -l <"$work/timing")
# ... and per method: "NAME MS" lines, then each name's median
grep -o 'timing: shim bench-stratus-[0-9]*: own ms per method:.*' "$work/containerd/containerd.log" |
	sed 's/.*per method://' | awk '{ for (i = 1; i < NF; i += 2) print $i, $(i + 1) }' \
	>"$work/methods" || true
methods=
for m in $(awk '{print $1}' "$work/methods" | sort -u); do
	methods="$methods $m $(awk -v m="$m" '$1 == m { print $2 }' "$work/methods" | median)"
done
handlers=$(awk '{print $1}' "$work/timing" | median)
lib=$(awk '{print $2}' "$work/timing" | median)
own=$(awk '{print $3}' "$work/timing" | median)
{
	echo "ctr run --rm IMAGE ID /bin/true, exec -> exit; $runs alternating runs each; $(date -u +%F) on $(uname -r), $(nproc) cores; $(containerd --version | awk '{print $1, $3}'), $(runc --version | head -n 1)"
	printf '%-44s %12s %10s\n' "what" "median ms" "bad exits"
	printf '%-44s %12.2f %10d\n' "ctr run, io.containerd.stratus.v2" "${ms[stratus]}" "${bad[stratus]}"
	printf '%-44s %12.2f %10d\n' "ctr run, io.containerd.runc.v2 + runc" "${ms[runc]}" "${bad[runc]}"
	printf '%-44s %12.2f\n' "ratio stratus / runc" "$(echo "${ms[stratus]} / ${ms[runc]}" | bc -l)"
	printf '%-44s %12.2f %10d\n' "stratus run (CLI, busybox bundle)" "${ms[cli]}" "${bad[cli]}"
	printf '%-44s %12.2f\n' "ctr run stratus - stratus run" "$(echo "${ms[stratus]} - ${ms[cli]}" | bc -l)"
	printf '%-44s %12.2f\n' "shim start (fork, socket, address)" "${ms[start]}"
	if [[ $timed -gt 0 ]]; then
		printf '%-44s %12.2f   (%d shims)\n' "shim Task handlers, total" "$handlers" "$timed"
		printf '%-44s %12.2f\n' "  in libstratus create/start/delete (VM)" "$lib"
		printf '%-44s %12.2f\n' "  the shim's own (target < 30)" "$own"
		echo "  the shim's own per method, medians (ms):$methods"
	else
		echo "shim timing: no STRATUS_SHIM_TIMING line in containerd's log"
	fi
} | tee "$out"
