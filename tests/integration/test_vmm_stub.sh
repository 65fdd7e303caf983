#!/usr/bin/env bash
# VMM mechanics against the freestanding test guest (tests/integration/stub), which boots in
# milliseconds: serial output, the boot timer, every way a VM ends and its exit status,
# the instruction-emulation fallback, the command line's errors, virtio-mmio slots, -serial file:,
# -pidfile/-daemonize and SIGTERM.
# usage: test_vmm_stub.sh STRATUS_VMM STUB
source "$(dirname "$0")/lib.sh"
vmm=$1
stub=$2
need_file "$vmm" stratus-vmm
need_file "$stub" "the test stub"
need_kvm

# run_vmm NAME ARGS...: runs with a timeout, output in $work/NAME.out, log in $work/NAME.log
run_vmm() {
	local name=$1
	shift
	timeout 60 "$vmm" "$@" </dev/null >"$work/$name.out" 2>"$work/$name.log"
	echo $?
}

status=$(run_vmm hello -kernel "$stub" -append h)
expect_eq "PVH boot, guest poweroff: exit 0" 0 "$status"
expect_grep "PVH boot: serial output reaches stdout" '^stub: hello from PVH$' "$work/hello.out"
expect_grep "boot timer logged" 'guest boot completed in [0-9.]+ ms' "$work/hello.log"
expect_grep "poweroff logged" 'VM stopped: poweroff \(exit status 0\)' "$work/hello.log"

status=$(run_vmm reset -kernel "$stub" -append r)
expect_eq "i8042 reset: exit 3" 3 "$status"
expect_grep "i8042 reset logged" 'reset through the i8042' "$work/reset.log"

status=$(run_vmm triple -kernel "$stub" -append t)
expect_eq "triple fault: exit 4" 4 "$status"
expect_grep "triple fault logged" 'triple fault' "$work/triple.log"

status=$(run_vmm smp -kernel "$stub" -append p -smp 4 -m 64)
expect_eq "4 vCPUs, 64 MiB: exit 0" 0 "$status"

status=$(run_vmm pit -machine microvm,pit=on -kernel "$stub" -append h)
expect_eq "with an in-kernel PIT: exit 0" 0 "$status"

# The 64-bit entry runs the instructions KVM's emulator may lack (finished by the VMM on
# PVM hosts, native elsewhere): each result must be the architectural one.
status=$(run_vmm emu -kernel "$stub" -boot-entry linux64)
expect_eq "64-bit entry: exit 0" 0 "$status"
expect_grep "64-bit entry: serial output" '^stub: hello from 64-bit$' "$work/emu.out"
expect_grep "popcnt (register)" '^stub: popcnt=24$' "$work/emu.out"
expect_grep "popcnt (memory operand)" '^stub: popcnt_mem=24$' "$work/emu.out"
expect_grep "tzcnt" '^stub: tzcnt=8$' "$work/emu.out"
expect_grep "stac sets AC" '^stub: ac_after_stac=1$' "$work/emu.out"
expect_grep "clac clears AC" '^stub: ac_after_clac=0$' "$work/emu.out"
expect_grep "fwait" '^stub: fwait=1$' "$work/emu.out"
expect_grep "int3 reaches the guest's #BP handler twice" '^stub: breakpoints=2$' "$work/emu.out"
expect_grep "stub ran to the end" '^stub: done$' "$work/emu.out"

status=$(run_vmm pvh-forced -kernel "$stub" -boot-entry pvh -append h)
expect_eq "-boot-entry pvh" 0 "$status"

# virtio-mmio slots: one per -device, in order, on the guest command line (the stub does not
# drive virtio; the Linux boot test does).
status=$(run_vmm virtio -kernel "$stub" -append h -D -device virtio-rng-device,id=rng0 \
	-device virtio-rng-device)
expect_eq "two virtio-rng devices: exit 0" 0 "$status"
expect_grep "virtio-mmio slots on the guest command line" \
	'virtio_mmio.device=4K@0xd0001000:5 virtio_mmio.device=4K@0xd0002000:6 h$' "$work/virtio.log"

# -serial file:
status=$(run_vmm file -kernel "$stub" -append h -serial "file:$work/console.txt")
expect_eq "-serial file: exit 0" 0 "$status"
expect_grep "-serial file: console in the file" '^stub: hello from PVH$' "$work/console.txt"
expect_no_grep "-serial file: nothing on stdout" 'stub:' "$work/file.out"

# Console input: stdin reaches the guest (the stub echoes until 'q').
printf 'hello-inputq' | timeout 60 "$vmm" -kernel "$stub" -append e >"$work/echo.out" 2>"$work/echo.log"
expect_eq "console input from stdin: exit 0" 0 "$?"
expect_grep "console input from stdin echoed by the guest" 'hello-input' "$work/echo.out"

# -serial unix:PATH: a client gets the console both ways; the socket is removed at exit.
timeout 60 "$vmm" -kernel "$stub" -append e -serial "unix:$work/console.sock,server,nowait" \
	</dev/null >"$work/sock.out" 2>"$work/sock.log" &
pid=$!
for _ in $(seq 100); do [ -S "$work/console.sock" ] && break; sleep 0.05; done
printf 'via-socketq' | timeout 30 socat - "UNIX-CONNECT:$work/console.sock" >"$work/sock.client"
wait "$pid"
expect_eq "-serial unix: exit 0" 0 "$?"
expect_grep "-serial unix: input and output through the socket" '^via-socket$' "$work/sock.client"
[ -e "$work/console.sock" ] && fail "-serial unix: socket left behind" || pass "-serial unix: socket removed"

# -daemonize -pidfile: the parent returns once the VM runs; SIGTERM stops it cleanly.
status=$(run_vmm daemon -kernel "$stub" -append i -serial "file:$work/daemon.txt" \
	-daemonize -pidfile "$work/vmm.pid" -D "$work/daemon-debug.log")
expect_eq "-daemonize: the parent exits 0" 0 "$status"
pid=$(cat "$work/vmm.pid" 2>/dev/null || echo none)
if [ "$pid" != none ] && kill -0 "$pid" 2>/dev/null; then
	pass "-pidfile names the running VMM"
else
	fail "-pidfile: no running process '$pid'"
fi
wait_for '^stub: idle$' "$work/daemon.txt"
expect_grep "daemonized guest is running" '^stub: idle$' "$work/daemon.txt"
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then fail "SIGTERM: VMM still running"; kill -9 "$pid"; else pass "SIGTERM stops the VMM"; fi
expect_grep "SIGTERM: orderly shutdown logged" 'VM stopped: quit \(exit status 0\)' "$work/daemon-debug.log"
[ -e "$work/vmm.pid" ] && fail "pid file left behind" || pass "pid file removed on exit"

# SIGTERM in the foreground: exit status 0 (quit).
timeout 60 "$vmm" -kernel "$stub" -append i </dev/null >"$work/fg.out" 2>"$work/fg.log" &
pid=$!
wait_for '^stub: idle$' "$work/fg.out"
kill -TERM "$pid"
wait "$pid"
expect_eq "SIGTERM in the foreground: exit 0" 0 "$?"

# Bad command lines: one line on stderr, exit 2.
bad_cli() { expect_failure "$1" 2 "$2" "$vmm" "${@:3}"; }
bad_cli "unknown option" "unknown option '-bogus'" -kernel "$stub" -bogus
bad_cli "no kernel" "-kernel: a kernel image is required" -m 128
bad_cli "bad -m" "-m: 'lots'" -kernel "$stub" -m lots
bad_cli "-m with a bad suffix" "-m: '12x'" -kernel "$stub" -m 12x
bad_cli "-smp 0" "-smp: '0'" -kernel "$stub" -smp 0
bad_cli "missing value" "-append: missing value" -kernel "$stub" -append
bad_cli "bad machine" "unsupported machine type 'pc'" -machine pc -kernel "$stub"
bad_cli "bad serial" "-serial: 'tcp:1'" -kernel "$stub" -serial tcp:1
bad_cli "client serial socket" "only server sockets" -kernel "$stub" -serial unix:/tmp/x,nowait
bad_cli "unknown device" "-device: unknown device type 'virtio-foo'" -kernel "$stub" -device virtio-foo
bad_cli "rng= naming no -object" "no -object rng-random,id=r0 before it" -kernel "$stub" \
	-device virtio-rng-device,rng=r0

# Bad kernels: a clear error, exit 1, no crash.
bad_kernel() { expect_failure "$1" 1 "$2" "$vmm" "${@:3}"; }
: >"$work/empty"
head -c 4096 /dev/urandom >"$work/garbage"
head -c 100 "$stub" >"$work/truncated"
bad_kernel "missing kernel" "kernel: cannot open .*No such file" -kernel "$work/nope"
bad_kernel "empty kernel" "kernel: .*empty" -kernel "$work/empty"
bad_kernel "garbage kernel" "kernel: " -kernel "$work/garbage"
bad_kernel "truncated kernel" "kernel: " -kernel "$work/truncated"
bad_kernel "kernel is a directory" "kernel: " -kernel "$work"
bad_kernel "missing initrd" "initrd: cannot open" -kernel "$stub" -initrd "$work/nope"
cp "$stub" "$work/aarch64"
printf '\267' | dd of="$work/aarch64" bs=1 seek=18 conv=notrunc status=none # e_machine = EM_AARCH64
bad_kernel "aarch64 ELF" "kernel: ELF image is not x86_64" -kernel "$work/aarch64"

# No KVM, or no access to it: one clear line, exit 1.
if command -v unshare >/dev/null; then
	expect_failure "no /dev/kvm" 1 '/dev/kvm does not exist' \
		unshare -m sh -c 'mount -t tmpfs none /dev && exec "$0" -kernel "$1"' "$vmm" "$stub"
fi
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	cp "$stub" "$work/stub-copy" && chmod 755 "$work" && chmod 644 "$work/stub-copy"
	expect_failure "no access to /dev/kvm" 1 'cannot open /dev/kvm: Permission denied' \
		setpriv --reuid=65534 --regid=65534 --clear-groups "$vmm" -kernel "$work/stub-copy"
fi

finish
