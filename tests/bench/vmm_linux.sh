#!/usr/bin/env bash
# Benchmark: the real guest kernel on stratus-vmm. For each run: VMM start -> guest init
# (boot timer), -> busybox userspace (first console line of the test init), and the VMM's
# resident memory excluding guest RAM while the guest idles (from /proc/PID/smaps: every
# mapping but the guest-RAM one). Medians; table printed and written to $out.
# QEMU cannot boot this kernel on a PVM host's KVM (it cannot finish the instructions
# KVM's emulator lacks), so its row says so instead of a number there.
# usage: vmm_linux.sh BUILD_DIR VMLINUX INITRAMFS [RUNS] [OUT]
set -euo pipefail
build=$1
kernel=$2
initrd=$3
runs=${4:-3}
out=${5:-$build/bench/vmm-linux.txt}
vmm=$build/vmm/stratus-vmm
mem_mib=128
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# RSS in kB of every mapping except guest RAM (the anonymous mapping of exactly -m bytes).
vmm_rss_kb() {
	awk -v ram_kb=$((mem_mib * 1024)) '
		/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); skip = 0 }
		/^Size:/ { skip = ($2 == ram_kb) }
		/^Rss:/ { if (!skip) total += $2 }
		END { print total }' "/proc/$1/smaps"
}

for i in $(seq "$runs"); do
	start=$(date +%s.%N)
	"$vmm" -kernel "$kernel" -initrd "$initrd" -m $mem_mib \
		-append "quiet stratus_test=idle stratus_test_quick" </dev/null \
		>"$work/console" 2>"$work/log" &
	pid=$!
	for _ in $(seq 1200); do grep -q 'STRATUS-TEST userspace-ok' "$work/console" 2>/dev/null && break; sleep 0.05; done
	user=$(echo "($(date +%s.%N) - $start) * 1000" | bc -l)
	sleep 2 # let the guest settle into idle
	vmm_rss_kb "$pid" >>"$work/rss"
	sed -n 's/.*guest boot completed in \([0-9.]*\) ms.*/\1/p' "$work/log" >>"$work/init"
	echo "$user" >>"$work/user"
	kill -TERM "$pid"
	wait "$pid" || true
done
init=$(median <"$work/init")
user=$(median <"$work/user")
rss=$(median <"$work/rss")
{
	echo "Linux guest (guest-kernel-config vmlinux, test initramfs, $mem_mib MiB, 1 vCPU); $runs runs; $(date -u +%F) on $(uname -r)$( [ -e /sys/module/kvm_pvm ] && echo ', PVM host (guest kernel code interpreted)')"
	printf '%-30s %16s %22s %22s\n' VMM "start->init ms" "start->userspace ms" "VMM RSS w/o RAM MiB"
	printf '%-30s %16.0f %22.0f %22.2f\n' stratus-vmm "$init" "$user" "$(echo "$rss / 1024" | bc -l)"
	if [ -e /sys/module/kvm_pvm ]; then
		printf '%-30s %s\n' "qemu-system-x86_64 -M microvm" "cannot boot this kernel on a PVM host (dies on INT3/XRSTOR emulation failures)"
	fi
	echo "targets: VMM RSS excluding guest RAM <= 3 MiB (StratoVirt claims < 4 MB, Firecracker <= 5 MiB)"
} | tee "$out"
