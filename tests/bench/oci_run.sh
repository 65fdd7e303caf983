#!/usr/bin/env bash
# Benchmark: `RUNTIME run` of /bin/true in a busybox bundle (tests/integration/peers/
# make-busybox-bundle.sh), from exec of the runtime to its exit, for crun, runc and stratus
# side by side: alternating runs, each timed by bench-run (CLOCK_MONOTONIC fork -> reap, peak
# RSS of the runtime's reaped process tree). A runtime whose first run fails is printed as
# FAILED with its error line and left out, never aborting the others. Prints a table of
# medians with ratios against crun and runc and writes it to OUT; then where stratus's time
# goes, from the phase marks its CLI and monitor log at --debug (runtime/phase.h: ms since the
# CLI started, each interval "host" or "guest"), medians per phase, the host-side total against
# its 20 ms target, written to OUT's directory as oci-run-phases.txt.
# usage: oci_run.sh [-n RUNS] [-o OUT] BUILD_DIR   (as root; RUNS default 20,
#        OUT default BUILD_DIR/bench/oci-run.txt; stratus is BUILD_DIR/stratus, its guest
#        kernel and initramfs next to it or STRATUS_KERNEL/STRATUS_INITRAMFS)
set -euo pipefail

die() { echo "oci_run: error: $*" >&2; exit 1; }
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
out=${out:-$build/bench/oci-run.txt}
run=$build/tests/bench/bench-run
[[ -x $run ]] || die "$run not found (cmake --build $build --target bench-run)"
[[ $(id -u) = 0 ]] || die "must run as root (runc and crun create namespaces and cgroups)"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$out")"

work=$(mktemp -d /tmp/stratus-oci-run.XXXXXX)
names=(crun runc stratus)
declare -A bin=([crun]=$(command -v crun || echo /usr/bin/crun)
	[runc]=$(command -v runc || echo /usr/sbin/runc) [stratus]=$build/stratus)
declare -A status=() why=()
cleanup() {
	local n id
	for n in "${names[@]}"; do
		[[ -x ${bin[$n]} && -d $work/root-$n ]] || continue
		for id in $("${bin[$n]}" --root "$work/root-$n" list -q 2>/dev/null); do
			timeout 60 "${bin[$n]}" --root "$work/root-$n" delete --force "$id" >/dev/null 2>&1 || true
		done
	done
	rm -rf "$work"
}
trap cleanup EXIT
"$here/../integration/peers/make-busybox-bundle.sh" "$work/bundle" -- /bin/true

# one NAME ID: a run of NAME in the bundle, bounded to 300 s; then its container removed.
# stratus logs its phases (--debug adds a handful of lines, nothing per guest exit).
one() {
	local n=$1 id=$2 debug=()
	[[ $n = stratus ]] && debug=(--debug --log "$work/phases-$id.json" --log-format json)
	(cd "$work/bundle" && "$run" timeout -k 10 300 "${bin[$n]}" "${debug[@]}" --root "$work/root-$n" run "$id")
	timeout 60 "${bin[$n]}" --root "$work/root-$n" delete --force "$id" >/dev/null 2>&1 || true
}

# A first run of each, outside the measurements: warms the page cache, and a runtime that
# fails here is reported with its error and left out.
for n in "${names[@]}"; do
	: >"$work/$n.runs"
	if [[ ! -x ${bin[$n]} ]]; then
		status[$n]=FAILED why[$n]="${bin[$n]} not found"
		continue
	fi
	set +e
	(cd "$work/bundle" && timeout -k 10 300 "${bin[$n]}" --root "$work/root-$n" run warm </dev/null \
		>"$work/$n.warm.out" 2>"$work/$n.warm.err")
	rc=$?
	set -e
	timeout 60 "${bin[$n]}" --root "$work/root-$n" delete --force warm >/dev/null 2>&1 || true
	if [[ $rc -eq 0 ]]; then status[$n]=ok; else
		status[$n]=FAILED
		why[$n]="exit $rc: $(grep -m1 . "$work/$n.warm.err" || echo 'no message')"
	fi
done

for i in $(seq "$runs"); do
	for n in "${names[@]}"; do
		[[ ${status[$n]} = ok ]] && one "$n" "bench-$i" </dev/null >>"$work/$n.runs"
	done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A ms=() rss=() bad=()
for n in "${names[@]}"; do
	[[ ${status[$n]} = ok ]] || continue
	ms[$n]=$(awk '{print $1}' "$work/$n.runs" | median)
	rss[$n]=$(awk '{print $2}' "$work/$n.runs" | median)
	bad[$n]=$(awk '$3 != 0' "$work/$n.runs" | wc -l)
done
# ratio NAME BASE: NAME's median time over BASE's, or n/a
ratio() {
	if [[ -n ${ms[$1]:-} && -n ${ms[$2]:-} ]]; then printf '%.2f' "$(echo "${ms[$1]} / ${ms[$2]}" | bc -l)"
	else echo n/a; fi
}
{
	echo "RUNTIME run /bin/true in a busybox bundle, exec -> exit; $runs alternating runs each; $(date -u +%F) on $(uname -r), $(nproc) cores"
	printf '%-10s %12s %14s %10s %9s %9s\n' runtime "median ms" "peak RSS MiB" "bad exits" "vs crun" "vs runc"
	for n in "${names[@]}"; do
		if [[ ${status[$n]} = ok ]]; then
			printf '%-10s %12.2f %14.2f %10d %9s %9s\n' "$n" "${ms[$n]}" \
				"$(echo "${rss[$n]} / 1024" | bc -l)" "${bad[$n]}" "$(ratio "$n" crun)" "$(ratio "$n" runc)"
		else
			printf '%-10s %12s %14s %10s %9s %9s   %s\n' "$n" FAILED - - - - "${why[$n]}"
		fi
	done
} | tee "$out"

# Where stratus's time goes: per run, the phase marks in time order, each interval named by the
# mark that ends it; what is left of the wall time after the last mark is exec, start-up and
# exit of the stratus process itself (host). Medians per phase over the runs.
[[ ${status[stratus]} = ok ]] || exit 0
phases_out=$(dirname "$out")/oci-run-phases.txt
python3 - "$work" "$runs" <<'PY' | tee "$phases_out"
import json, statistics, sys

work, runs = sys.argv[1], int(sys.argv[2])
what = {
    "config": "CLI start-up, config.json parsed and checked, guest assets found",
    "fork": "state directory, lock, rootfs shares planned, monitor forked",
    "template-built": "create had to build the VM template first (boot, agent, snapshot)",
    "vm-built": "monitor: VM built (memory, devices, kernel and initramfs loaded)",
    "vm-restored": "monitor: VM restored from the template (copy into shared memory)",
    "agent-ready": "guest kernel boot, agent up, connected and handshaken",
    "created": "CREATE: the agent mounts the rootfs, prepares the container",
    "create-done": "ready reported; state.json, hooks, pid file",
    "started": "START: the agent execs the process; state.json",
    "exited": "the process runs; its exit reaches the monitor",
    "vm-stopped": "stdio drained, SHUTDOWN, the guest powers off",
    "monitor-joined": "monitor: supervisor thread joined, QMP closed",
    "vm-destroyed": "monitor: vm_destroy (vCPU threads, devices, share process, KVM)",
    "reaped": "monitor exits (the kernel frees what is left); reaped by stratus run",
    "deleted": "delete: state directory removed",
    "exec+exit": "exec and start-up of stratus before its first mark, and its exit",
}
walls = [float(l.split()[0]) for l in open(f"{work}/stratus.runs") if l.strip()]
per, side, host, guest = {}, {}, [], []
for i, wall in zip(range(1, runs + 1), walls):
    marks = []
    try:
        for line in open(f"{work}/phases-bench-{i}.json"):
            msg = json.loads(line).get("msg", "")
            if msg.startswith("phase "):
                _, name, ms, _, s = msg.split()
                marks.append((float(ms), name, s))
    except (OSError, ValueError):
        continue
    if not marks:
        continue
    marks.sort()
    prev, h, g = 0.0, 0.0, 0.0
    for ms, name, s in marks:
        per.setdefault(name, []).append(ms - prev)
        side[name] = s
        h, g = (h + ms - prev, g) if s == "host" else (h, g + ms - prev)
        prev = ms
    per.setdefault("exec+exit", []).append(wall - prev)
    side["exec+exit"] = "host"
    host.append(h + wall - prev)
    guest.append(g)
if not host:
    sys.exit("oci_run: no phase marks in the stratus runs' --debug logs")
med = lambda v: statistics.median(v)
print(f"stratus run /bin/true: where the time goes, medians of {len(host)} runs (--debug phase marks)")
print(f"{'phase (the interval ending at the mark)':<80} {'side':<6} {'median ms':>10}")
# a mark this table does not know yet is printed too, never dropped from the breakdown
for name in list(what) + sorted(set(per) - set(what)):
    if name in per:
        label = what.get(name, "(no description)") + " [" + name + "]"
        print(f"{label:<80} {side[name]:<6} {med(per[name]):>10.2f}")
print(f"{'host-side total (everything but the guest executing; target <= 20 ms)':<80} "
      f"{'host':<6} {med(host):>10.2f}")
print(f"{'guest total (the host waiting for the guest)':<80} {'guest':<6} {med(guest):>10.2f}")
print(f"{'end to end (bench-run wall, fork -> reap)':<80} {'':<6} {med(walls):>10.2f}")
PY
