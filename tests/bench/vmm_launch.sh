#!/usr/bin/env bash
# Benchmark: VMM launch -> exit of the freestanding stub guest (PVH entry, prints a line,
# triple-faults), stratus-vmm side by side with QEMU's microvm on the same KVM, alternating
# runs. Prints a table of medians and ratios and writes it to $out.
# usage: vmm_launch.sh BUILD_DIR [RUNS] [OUT]
set -euo pipefail
build=$1
runs=${2:-20}
out=${3:-$build/bench/vmm-launch.txt}
vmm=$build/vmm/stratus-vmm
stub=$build/tests/integration/stub/stratus-test-stub
run=$build/tests/bench/bench-run
mkdir -p "$(dirname "$out")"

stratus_cmd=("$vmm" -kernel "$stub" -append t -m 128 -serial none)
qemu_cmd=(qemu-system-x86_64 -M microvm,x-option-roms=off,isa-serial=on,rtc=off -enable-kvm
	-cpu host -m 128 -nodefaults -nographic -no-reboot -serial null -kernel "$stub" -append t)

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$build/bench/stratus.runs"
: >"$build/bench/qemu.runs"
"${stratus_cmd[@]}" >/dev/null 2>&1 || true # warm the page cache for both
"${qemu_cmd[@]}" >/dev/null 2>&1 || true
for _ in $(seq "$runs"); do
	"$run" "${stratus_cmd[@]}" >>"$build/bench/stratus.runs"
	"$run" "${qemu_cmd[@]}" >>"$build/bench/qemu.runs"
done
s_ms=$(awk '{print $1}' "$build/bench/stratus.runs" | median)
q_ms=$(awk '{print $1}' "$build/bench/qemu.runs" | median)
s_rss=$(awk '{print $2}' "$build/bench/stratus.runs" | median)
q_rss=$(awk '{print $2}' "$build/bench/qemu.runs" | median)
s_bad=$(awk '$3 != 4' "$build/bench/stratus.runs" | wc -l)
q_bad=$(awk '$3 != 0' "$build/bench/qemu.runs" | wc -l)
{
	echo "VMM launch -> stub guest triple fault -> exit; $runs alternating runs each; $(date -u +%F) on $(uname -r), $(nproc) cores"
	printf '%-34s %12s %14s %10s\n' "VMM" "median ms" "peak RSS MiB" "bad exits"
	printf '%-34s %12.2f %14.2f %10d\n' "stratus-vmm" "$s_ms" "$(echo "$s_rss / 1024" | bc -l)" "$s_bad"
	printf '%-34s %12.2f %14.2f %10d\n' "qemu-system-x86_64 -M microvm" "$q_ms" "$(echo "$q_rss / 1024" | bc -l)" "$q_bad"
	printf 'ratio stratus/qemu: time %.3f, peak RSS %.3f (targets: <= 0.25, RSS <= 3 MiB)\n' \
		"$(echo "$s_ms / $q_ms" | bc -l)" "$(echo "$s_rss / $q_rss" | bc -l)"
} | tee "$out"
