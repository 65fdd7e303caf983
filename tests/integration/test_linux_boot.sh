#!/usr/bin/env bash
# The real guest kernel on stratus-vmm: boots our vmlinux with the busybox test initramfs
# (tests/integration/initramfs) and checks what its userspace reports. One boot serves
# most checks (boots take seconds on hosts that interpret guest kernel code); the other
# ways a guest ends (reboot, panic, triple fault) and the 64-bit entry get a boot each.
# usage: test_linux_boot.sh STRATUS_VMM VMLINUX INITRAMFS
source "$(dirname "$0")/lib.sh"
vmm=$1
kernel=$2
initrd=$3
need_file "$vmm" stratus-vmm
need_file "$kernel" "the guest kernel (guest-kernel-config/build-kernel.sh)"
need_file "$initrd" "the test initramfs (tests/integration/initramfs/make-test-initramfs.sh)"
need_kvm

# A kernel too big for the guest memory: a clear error, no boot.
timeout 60 "$vmm" -kernel "$kernel" -m 16 </dev/null >"$work/small.out" 2>"$work/small.err"
expect_eq "kernel too big for -m 16: exit 1" 1 "$?"
expect_grep "kernel too big for -m 16: message" 'kernel: .*(does not fit|too small|too big)' "$work/small.err"

# The host may not allow SMP; on hardware KVM and on our PVM hosts it does.
smp=${STRATUS_TEST_SMP:-2}
marker="stratus.test_marker=a1b2c3 quoted=\"x y\""

# boot NAME VMM-ARGS... -- : 10 minutes at most; output in $work/NAME.out, log in NAME.log
boot() {
	local name=$1
	shift
	timeout 600 "$vmm" -kernel "$kernel" -initrd "$initrd" "$@" </dev/null \
		>"$work/$name.raw" 2>"$work/$name.log"
	local status=$?
	tr -d '\r' <"$work/$name.raw" >"$work/$name.out" # the guest tty writes CRLF
	echo $status
}

# With a virtio-rng device and the debug log (-D, on stderr) to see the driver at work.
status=$(boot main -m 256 -smp "$smp" -device virtio-rng-device,id=rng0 -D \
	-append "quiet $marker stratus_test=poweroff")
out=$work/main.out
expect_eq "guest poweroff: exit status 0" 0 "$status"
expect_grep "busybox userspace runs" '^STRATUS-TEST userspace-ok' "$out"
expect_grep "guest sees $smp vCPUs" "^STRATUS-TEST cpus=$smp\$" "$out"
mem_kb=$(sed -n 's/^STRATUS-TEST mem_kb=\([0-9]*\).*/\1/p' "$out")
if [ -n "$mem_kb" ] && [ "$mem_kb" -gt $((200 * 1024)) ] && [ "$mem_kb" -le $((256 * 1024)) ]; then
	pass "guest memory: MemTotal ${mem_kb} kB for -m 256"
else
	fail "guest memory: MemTotal '${mem_kb}' kB for -m 256"
fi
expect_grep "command line reaches the guest intact" \
	"^STRATUS-TEST cmdline=.*stratus.test_marker=a1b2c3 quoted=\"x y\" stratus_test=poweroff" "$out"
for check in pipe signal fork exec restart handler; do
	expect_grep "guest userspace: $check" "^STRATUS-TEST check-$check=ok" "$out"
done
expect_grep "boot timer: the VMM logged guest init" 'guest boot completed in [0-9.]+ ms' "$work/main.log"
expect_grep "poweroff logged" 'VM stopped: poweroff \(exit status 0\)' "$work/main.log"
expect_no_grep "no emulation failure" 'cannot emulate the instruction' "$work/main.log"
# Linux's virtio_mmio + virtio_rng: VIRTIO_F_VERSION_1 (bit 32) negotiated, the queue set
# up, and the kernel's hwrng thread served (which needs interrupts to work).
expect_grep "virtio-rng: the guest driver negotiated VERSION_1" \
	'rng0: driver ready, features 0x1[0-9a-f]{8}$' "$work/main.log"
expect_grep "virtio-rng: queue set up" 'rng0: queue 0 ready, [0-9]+ entries' "$work/main.log"
expect_grep "virtio-rng: the guest read random bytes" 'rng0: served [1-9][0-9]* requests' \
	"$work/main.log"
expect_no_grep "virtio-rng: never needed a reset" 'needs reset' "$work/main.log"

status=$(boot reboot -m 128 -machine microvm,pit=on -boot-entry linux64 -append "quiet stratus_test=reboot stratus_test_quick")
expect_eq "64-bit entry with a PIT, guest reboot (i8042): exit status 3" 3 "$status"
expect_grep "64-bit entry reaches userspace" '^STRATUS-TEST userspace-ok' "$work/reboot.out"
expect_grep "reboot logged" 'reset through the i8042' "$work/reboot.log"

status=$(boot panic -m 128 -append "quiet stratus_test=panic stratus_test_quick")
expect_eq "guest kernel panic: exit status 5" 5 "$status"
expect_grep "panic logged" 'guest kernel panicked' "$work/panic.log"

# reboot=t: the kernel's own triple fault (empty IDT, then INT3).
status=$(boot triple -m 128 -append "quiet reboot=t stratus_test=reboot stratus_test_quick")
expect_eq "guest triple fault: exit status 4" 4 "$status"
expect_grep "triple fault logged" 'triple fault' "$work/triple.log"

finish
