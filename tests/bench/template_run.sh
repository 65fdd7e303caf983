#!/usr/bin/env bash
# Benchmark: VM templates (docs/runtime.md "Templates") against cold boots, in one run:
#   1. building the template (`stratus template create`), once;
#   2. `stratus run /bin/true` in a busybox bundle (tests/integration/peers/
#      make-busybox-bundle.sh), exec -> exit timed by bench-run: RUNS restored from the
#      template, COLD cold-booted (STRATUS_TEMPLATE=0), medians and their ratio;
#   3. from the phase marks (runtime/phase.h) of the template runs: the restore (fork of the
#      monitor -> vm-restored: host-side time, the 10 ms target) and fork -> agent-ready;
#      create-done; medians;
#   4. the guest's bare fork + execv(/bin/true) + waitpid, measured in a container restored
#      from the template (guest/forkexec.c, static, 20 rounds, the median): the budget for
#      `run /bin/true` from a template is twice that;
#   5. host memory of CLONES idle containers (`sleep`) restored from the template against
#      CLONES cold-booted ones: PSS (/proc/PID/smaps_rollup) of each monitor and its virtio-fs
#      share processes, summed.
# Prints a table and writes it to OUT.
# usage: template_run.sh [-n RUNS] [-c COLD] [-m CLONES] [-o OUT] BUILD_DIR   (as root;
#        RUNS default 20, COLD default 5 (a cold boot here takes 10+ s), CLONES default 10,
#        OUT default BUILD_DIR/bench/template-run.txt; stratus is BUILD_DIR/stratus, its
#        guest kernel and initramfs next to it or STRATUS_KERNEL/STRATUS_INITRAMFS)
set -euo pipefail

die() { echo "template_run: error: $*" >&2; exit 1; }
usage="usage: $0 [-n RUNS] [-c COLD] [-m CLONES] [-o OUT] BUILD_DIR"
runs=20 cold=5 clones=10 out=
number() { [[ $2 =~ ^[0-9]+$ ]] || die "$1: needs a number, not '$2'"; echo "$2"; }
while getopts n:c:m:o: opt; do
	case $opt in
	n) runs=$(number -n "$OPTARG") ;;
	c) cold=$(number -c "$OPTARG") ;;
	m) clones=$(number -m "$OPTARG") ;;
	o) out=$OPTARG ;;
	*) die "$usage" ;;
	esac
done
shift $((OPTIND - 1))
[[ $# -eq 1 ]] || die "$usage"
[[ $runs -ge 1 ]] || die "-n: at least 1 run"
build=$(cd "$1" && pwd) || die "BUILD_DIR $1 not found"
out=${out:-$build/bench/template-run.txt}
stratus=$build/stratus
run=$build/tests/bench/bench-run
[[ -x $stratus ]] || die "$stratus not found"
[[ -x $run ]] || die "$run not found (cmake --build $build --target bench-run)"
[[ $(id -u) = 0 ]] || die "must run as root"
command -v jq >/dev/null || die "jq not installed"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$out")"

work=$(mktemp -d /tmp/stratus-template-run.XXXXXX)
export STRATUS_TEMPLATE_DIR=$work/templates
S() { "$stratus" --root "$work/root" "$@"; }
cleanup() {
	local id
	for id in $(S list -q 2>/dev/null); do timeout 60 "$stratus" --root "$work/root" delete --force "$id" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT
"$here/../integration/peers/make-busybox-bundle.sh" "$work/bundle" -- /bin/true >/dev/null
cc -O2 -static -o "$work/bundle/rootfs/forkexec" "$here/guest/forkexec.c" ||
	die "cannot build guest/forkexec.c statically (libc6-dev)"
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# config ARGS_JSON: the bundle's process.args
config() { jq --argjson a "$1" '.process.args = $a' "$work/bundle/config.json" >"$work/c.json" && mv "$work/c.json" "$work/bundle/config.json"; }

# The machine may be shared: its load is part of the result (ratios are of one run).
load() { cut -d' ' -f1 /proc/loadavg; }
load_start=$(load)

# 1. the template
t0=$(date +%s%N)
tdir=$(S template create) || die "stratus template create failed"
build_ms=$((($(date +%s%N) - t0) / 1000000))
snapshot_mib=$(du -m "$tdir/snapshot" | cut -f1)

# 2, 3. run /bin/true: from the template (phases logged), then cold
config '["/bin/true"]'
one() { # MODE ID
	local env=()
	[[ $1 = cold ]] && env=(STRATUS_TEMPLATE=0)
	(cd "$work/bundle" && env "${env[@]}" "$run" timeout -k 10 300 "$stratus" --debug \
		--log "$work/phases-$2.json" --log-format json --root "$work/root" run "$2") </dev/null
	timeout 60 "$stratus" --root "$work/root" delete --force "$2" >/dev/null 2>&1 || true
}
one template warm >/dev/null # page cache
for i in $(seq "$runs"); do one template "t$i" >>"$work/template.runs"; done
for i in $(seq "$cold"); do one cold "c$i" >>"$work/cold.runs"; done
bad=$(cat "$work"/*.runs | awk '$3 != 0' | wc -l)
t_ms=$(awk '{print $1}' "$work/template.runs" | median)
c_ms=$( [[ $cold -gt 0 ]] && awk '{print $1}' "$work/cold.runs" | median || echo)
# phase NAME FILE: its ms since the CLI started
phase() { jq -r --arg n "$1" '.msg | select(startswith("phase " + $n + " ")) | split(" ")[2]' "$2" | head -n 1; }
for i in $(seq "$runs"); do
	f=$work/phases-t$i.json
	fork=$(phase fork "$f") restored=$(phase vm-restored "$f") ready=$(phase agent-ready "$f")
	done_=$(phase create-done "$f") created=$(phase created "$f") started=$(phase started "$f")
	[[ -n $restored ]] || { echo "template_run: warning: run t$i was not restored" >&2; continue; }
	echo "$fork $restored $ready $done_ $created $started" >>"$work/phases"
done
restore_ms=$(awk '{printf "%.3f\n", $2 - $1}' "$work/phases" | median)
ready_ms=$(awk '{printf "%.3f\n", $3 - $1}' "$work/phases" | median)
created_ms=$(awk '{print $4}' "$work/phases" | median)
# the agent's round trips: stdio streams + CREATE, and start's own connection + START
to_created_ms=$(awk 'NF >= 5 {printf "%.3f\n", $5 - $3}' "$work/phases" | median)
to_started_ms=$(awk 'NF >= 6 {printf "%.3f\n", $6 - $4}' "$work/phases" | median)
restored_runs=$(wc -l <"$work/phases")

# 4. the guest's bare fork + exec + wait, in a restored container
config '["/forkexec", "20", "/bin/true"]'
(cd "$work/bundle" && S run fe </dev/null >"$work/forkexec.out" 2>&1) || die "forkexec in the guest: $(head -n 1 "$work/forkexec.out")"
S delete --force fe >/dev/null 2>&1 || true
fe_ms=$(grep -E '^[0-9.]+$' "$work/forkexec.out" | median)

# 5. memory of idle clones against cold-booted VMs
config '["sleep", "100000"]'
pss_kib() { # PID...: the summed Pss of these processes
	local p total=0 v
	for p in "$@"; do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		total=$((total + ${v:-0}))
	done
	echo $total
}
memory() { # MODE: MiB of PSS for $clones idle containers, started one after the other
	local env=() i pids=() m
	[[ $1 = cold ]] && env=(STRATUS_TEMPLATE=0)
	for i in $(seq "$clones"); do
		(cd "$work/bundle" && env "${env[@]}" timeout 300 "$stratus" --root "$work/root" run --detach "$1-$i") \
			</dev/null >/dev/null 2>&1 || die "$1 container $i did not start"
	done
	sleep 5 # idle
	for i in $(seq "$clones"); do
		m=$(S state "$1-$i" | jq -r .pid)
		pids+=("$m" $(pgrep -P "$m" || true))
	done
	echo "scale=1; $(pss_kib "${pids[@]}") / 1024" | bc
	for i in $(seq "$clones"); do S delete --force "$1-$i" >/dev/null 2>&1 || true; done
}
mem_t=n/a mem_c=n/a
if [[ $clones -gt 0 ]]; then
	mem_t=$(memory template)
	mem_c=$(memory cold)
fi

ratio() { [[ -n $1 && -n $2 && $2 != n/a && $1 != n/a ]] && printf '%.2f' "$(echo "$1 / $2" | bc -l)" || echo n/a; }
{
	echo "VM templates against cold boots; $(date -u +%F) on $(uname -r), $(nproc) cores; kvm_pvm: $([[ -d /sys/module/kvm_pvm ]] && echo yes || echo no)"
	printf '%-52s %12s\n' "template build (stratus template create)" "$build_ms ms"
	printf '%-52s %12s\n' "template snapshot on disk" "$snapshot_mib MiB"
	printf '%-52s %12s   %s\n' "restore: monitor fork -> vm-restored (host)" "$restore_ms ms" "target <= 10 ms; median of $restored_runs"
	printf '%-52s %12s\n' "restore: monitor fork -> agent-ready" "$ready_ms ms"
	printf '%-52s %12s\n' "restore: CLI start -> create-done" "$created_ms ms"
	printf '%-52s %12s\n' "agent-ready -> created (stdio streams, CREATE)" "${to_created_ms:-n/a} ms"
	printf '%-52s %12s\n' "create-done -> started (start connects, START)" "${to_started_ms:-n/a} ms"
	printf '%-52s %12s   %s\n' "run /bin/true from the template (median of $runs)" "$t_ms ms" ""
	printf '%-52s %12s   %s\n' "run /bin/true cold-booted (median of $cold)" "${c_ms:-n/a} ms" "template/cold $(ratio "$t_ms" "${c_ms:-}")"
	printf '%-52s %12s   %s\n' "guest fork+exec+wait of /bin/true (median of 20)" "$fe_ms ms" "run from template / it: $(ratio "$t_ms" "$fe_ms") (target <= 2)"
	printf '%-52s %12s\n' "PSS of $clones idle containers from the template" "$mem_t MiB"
	printf '%-52s %12s   %s\n' "PSS of $clones idle cold-booted containers" "$mem_c MiB" "template/cold $(ratio "$mem_t" "$mem_c")"
	printf '%-52s %12s\n' "runs that did not exit 0" "$bad"
	printf '%-52s %12s\n' "host load average (1 min), start / end" "$load_start / $(load)"
} | tee "$out"
