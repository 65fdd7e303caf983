#!/bin/sh
# /init of the stratus integration-test initramfs (busybox ash, PID 1).
#
# Marks boot complete on the MMIO boot timer, prints machine-readable
# "STRATUS-TEST key=value" lines on the console, runs a small fork, exec,
# pipe and signal sanity check, then does what the kernel command-line word
# stratus_test=<action> asks:
#   poweroff (default)  poweroff -f
#   reboot              reboot -f
#   panic               sysrq crash, or if that fails, init exits (panics)
#   idle                sleep forever
# stratus_test_quick skips the sanity checks; stratus_test_run=PATH runs a test program.
# Lines, in order: cpus=<n> cpus_online=<list> mem_kb=<kB> cmdline=<...>
# userspace-ok, boot-timer-write=ok|FAIL, check-<name>=ok|FAIL (and pvm-sim-* lines when the image has
# pvm-syscall-sim), sanity=ok|FAIL:<names>, action=<action>.

PATH=/bin
export PATH

report() { echo "STRATUS-TEST $*"; }

mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Boot timer: the VMM records the time of this write (no device: no effect).
boot_timer=ok
devmem 0xd0000000 8 123 2>/dev/null || boot_timer=FAIL
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp

# Count the CPUs in a list such as "0-3,6".
count_cpus() {
	n=0
	old_ifs=$IFS
	IFS=,
	for range in $1; do
		case $range in
		*-*) n=$((n + ${range#*-} - ${range%-*} + 1)) ;;
		?*) n=$((n + 1)) ;;
		esac
	done
	IFS=$old_ifs
	echo "$n"
}

online=$(cat /sys/devices/system/cpu/online)
report "cpus=$(count_cpus "$online")"
report "cpus_online=$online"
mem_kb=0
while read -r key value _; do
	if [ "$key" = MemTotal: ]; then
		mem_kb=$value
	fi
done </proc/meminfo
report "mem_kb=$mem_kb"
cmdline=$(cat /proc/cmdline)
report "cmdline=$cmdline"
report "userspace-ok"
report "boot-timer-write=$boot_timer"

failed=
check() {
	name=$1
	shift
	if "$@"; then
		report "check-$name=ok"
	else
		report "check-$name=FAIL"
		failed="${failed:+$failed,}$name"
	fi
}

# A pipe between two processes.
check_pipe() { [ "$(echo hi | /bin/cat)" = hi ]; }
# A child killed by a signal: the shell sees 128 + SIGTERM (the braces keep
# ash's "Terminated" off the console).
check_signal() {
	{ /bin/sh -c 'kill -TERM $$'; } 2>/dev/null
	[ $? -eq 143 ]
}
# A subshell (fork without exec) passes its exit status.
check_fork() {
	(exit 7)
	[ $? -eq 7 ]
}
# execve in a loop; an absolute path makes ash really exec, not run the applet.
check_exec() {
	i=0
	while [ $i -lt 20 ]; do
		/bin/true || return 1
		i=$((i + 1))
	done
}
# nanosleep stopped and continued returns through restart_syscall.
check_restart() {
	/bin/sleep 1 &
	pid=$!
	kill -STOP $pid && kill -CONT $pid && wait $pid
}
# A signal handler runs and the shell carries on (rt_sigreturn).
check_handler() {
	got=
	trap 'got=1' USR1
	kill -USR1 $$
	trap - USR1
	[ "$got" = 1 ]
}

# stratus_test_quick skips the checks (each exec costs ~0.4 s where guest kernel code is
# interpreted) for boots that only test how the VM ends.
case " $cmdline " in
*" stratus_test_quick "*) report "sanity=skipped" ;;
*)
	check pipe check_pipe
	check signal check_signal
	check fork check_fork
	check exec check_exec
	check restart check_restart
	check handler check_handler
	# Only in images built with --pvm-syscall-sim: the stratus.pvm_syscall fix-up.
	if [ -x /bin/pvm-syscall-sim ]; then
		check pvm-syscall-sim /bin/pvm-syscall-sim
	fi
	if [ -z "$failed" ]; then
		report "sanity=ok"
	else
		report "sanity=FAIL:$failed"
	fi
	;;
esac

# Device tests bring their own guest programs (make-test-initramfs.sh --add) and name
# them with stratus_test_run=PATH (several allowed): each runs in turn, and its exit
# status is reported as "STRATUS-TEST run=PATH status=N".
action=poweroff
for word in $cmdline; do
	case $word in
	stratus_test=*) action=${word#stratus_test=} ;;
	stratus_test_run=*)
		prog=${word#stratus_test_run=}
		"$prog"
		report "run=$prog status=$?"
		;;
	esac
done
report "action=$action"

case $action in
poweroff) poweroff -f ;;
reboot) reboot -f ;;
panic)
	echo c >/proc/sysrq-trigger
	exit 1 # init exiting panics the kernel ("Attempted to kill init")
	;;
idle)
	while :; do
		sleep 3600
	done
	;;
*) report "unknown-action=$action" ;;
esac
report "action-failed"
while :; do
	sleep 3600
done
