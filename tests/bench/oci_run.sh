#!/usr/bin/env bash
# Benchmark: `RUNTIME run` of /bin/true in a busybox bundle (tests/integration/peers/
# make-busybox-bundle.sh), from exec of the runtime to its exit, for crun, runc and stratus
# side by side: alternating runs, each timed by bench-run (CLOCK_MONOTONIC fork -> reap, peak
# RSS of the runtime's reaped process tree). A runtime whose first run fails is printed as
# FAILED with its error line and left out, never aborting the others. Prints a table of
# medians with ratios against crun and runc and writes it to OUT.
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
one() {
	local n=$1 id=$2
	(cd "$work/bundle" && "$run" timeout -k 10 300 "${bin[$n]}" --root "$work/root-$n" run "$id")
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
