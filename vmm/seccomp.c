/*
 * The seccomp allow-lists (see seccomp.h) and their installation with libseccomp.
 *
 * The table is grouped by who needs a syscall: the C library, the event loop, KVM, and one
 * section per device or subsystem. A device that needs another syscall (or ioctl request)
 * adds one line to its own section; the unit test (tests/unit/test_seccomp.c) then checks
 * that the name resolves, that nothing is listed twice and that the counts stay within the
 * targets of seccomp.h. The lists were found with `strace -f` of real workloads (the stub
 * guest, a Linux guest with blk + vsock + rng, a QMP session with stop/cont and hotplug, a
 * serial socket client, SIGTERM) and are checked by tests/integration/test_seccomp.sh.
 *
 * Arguments are filtered where it is cheap and meaningful: ioctl by request number, mmap
 * and mprotect never with PROT_EXEC, socket only AF_UNIX. Request numbers are compared on
 * their low 32 bits, which is what the kernel looks at (the request is an unsigned int).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include LIBSECCOMP_HEADER /* libseccomp's <seccomp.h>; ours is "seccomp.h" */

#include "log.h"
#include "seccomp.h"
#include "util.h"

#define ALLOW(sec, name, thr)                                    \
	{                                                        \
		.section = sec, .syscall = #name, .threads = thr \
	}
#define ALLOW_EQ(sec, name, thr, argi, val)                                             \
	{                                                                               \
		.section = sec, .syscall = #name, .threads = thr, .op = SECCOMP_ARG_EQ, \
		.arg = argi, .value = val, .what = #val                                 \
	}
/* (arg & mask) == 0: e.g. no PROT_EXEC */
#define ALLOW_WITHOUT(sec, name, thr, argi, bits)                                              \
	{                                                                                      \
		.section = sec, .syscall = #name, .threads = thr, .op = SECCOMP_ARG_MASKED_EQ, \
		.arg = argi, .mask = bits, .value = 0, .what = "without " #bits                \
	}
#define IOCTL(sec, thr, request)                                                                 \
	{                                                                                        \
		.section = sec, .syscall = "ioctl", .threads = thr, .op = SECCOMP_ARG_MASKED_EQ, \
		.arg = 1, .mask = 0xffffffffu, .value = (uint32_t)(request), .what = #request    \
	}

static const struct seccomp_rule seccomp_table[] = {
	/* The C library: malloc/free, threads, signals, pthread_kill, clocks. */
	ALLOW("libc", read, SECCOMP_MAIN | SECCOMP_FSPROC),
	ALLOW("libc", write, SECCOMP_ALL | SECCOMP_FSPROC), /* the log, eventfds, the console */
	ALLOW("libc", close, SECCOMP_MAIN | SECCOMP_FSPROC),
	ALLOW("libc", futex, SECCOMP_ALL),
	ALLOW("libc", rt_sigprocmask, SECCOMP_ALL),
	ALLOW("libc", rt_sigreturn, SECCOMP_ALL),	      /* the vCPU kick's handler */
	ALLOW("libc", madvise, SECCOMP_ALL | SECCOMP_FSPROC), /* free() */
	ALLOW_WITHOUT("libc", mmap, SECCOMP_ALL | SECCOMP_FSPROC, 2, PROT_EXEC),
	ALLOW_WITHOUT("libc", mprotect, SECCOMP_VCPU, 2, PROT_EXEC), /* thread malloc arenas */
	ALLOW("libc", munmap, SECCOMP_ALL | SECCOMP_FSPROC),
	ALLOW("libc", brk, SECCOMP_ALL | SECCOMP_FSPROC),
	ALLOW("libc", getpid, SECCOMP_ALL), /* pthread_kill() */
	/* pthread_kill(): kicking vCPUs; SIGKILL to a virtio-fs process (its pid is its tid) */
	ALLOW("libc", tgkill, SECCOMP_ALL),
	ALLOW("libc", clock_gettime, SECCOMP_ALL | SECCOMP_FSPROC), /* when the vDSO cannot */
	ALLOW("libc", exit, SECCOMP_VCPU),			    /* a vCPU thread returns */
	ALLOW("libc", gettid, SECCOMP_VCPU),			    /* glibc's thread exit */
	ALLOW("libc", exit_group, SECCOMP_MAIN | SECCOMP_FSPROC),

	/* The event loops (event_loop.c): the VMM's, and each virtio-fs process's. */
	ALLOW("event loop", epoll_wait, SECCOMP_MAIN | SECCOMP_FSPROC),
	ALLOW("event loop", epoll_ctl, SECCOMP_MAIN | SECCOMP_FSPROC),

	/* KVM after set-up: the vCPU loop and its exits (vcpu.c, arch/x86_64/exits.c). */
	IOCTL("kvm", SECCOMP_VCPU, KVM_RUN),
	IOCTL("kvm", SECCOMP_VCPU, KVM_GET_REGS),
	IOCTL("kvm", SECCOMP_VCPU, KVM_SET_REGS),
	IOCTL("kvm", SECCOMP_VCPU, KVM_GET_SREGS),
	IOCTL("kvm", SECCOMP_VCPU, KVM_TRANSLATE),
	IOCTL("kvm", SECCOMP_VCPU, KVM_GET_VCPU_EVENTS),
	IOCTL("kvm", SECCOMP_VCPU, KVM_SET_VCPU_EVENTS),
	IOCTL("kvm", SECCOMP_VCPU, KVM_KVMCLOCK_CTRL), /* pause */
	/* Interrupts: device models raise them from either thread. */
	IOCTL("kvm", SECCOMP_ALL, KVM_IRQ_LINE),
	/* virtio-mmio (mmio_kvm.c): a driver's QueueReady or reset (vCPU), hotplug (main). */
	IOCTL("virtio-mmio", SECCOMP_ALL, KVM_IOEVENTFD),
	IOCTL("virtio-mmio", SECCOMP_ALL, KVM_IRQFD),

	/* Serial console (devices/serial.c): the terminal restored at exit, socket output. */
	IOCTL("serial", SECCOMP_MAIN, TCSETS),
	ALLOW("serial", sendto, SECCOMP_VCPU),

	/* QMP (qmp_server.c): the client socket, getfd's SCM_RIGHTS, the rate-limit timer. */
	ALLOW("qmp", accept4, SECCOMP_MAIN),
	ALLOW("qmp", recvmsg, SECCOMP_MAIN),
	ALLOW("qmp", sendto, SECCOMP_MAIN),
	ALLOW("qmp", recvfrom, SECCOMP_MAIN),
	ALLOW("qmp", timerfd_settime, SECCOMP_MAIN),
	ALLOW("qmp", poll, SECCOMP_MAIN),   /* the last replies, at exit */
	ALLOW("qmp", unlink, SECCOMP_MAIN), /* sockets removed at exit */

	/* virtio-vsock (vsock.c, vsock_conn.c): guest connections to PATH_<port>. */
	ALLOW_EQ("vsock", socket, SECCOMP_MAIN, 0, AF_UNIX),
	ALLOW("vsock", connect, SECCOMP_MAIN),
	ALLOW("vsock", setsockopt, SECCOMP_MAIN),
	ALLOW("vsock", shutdown, SECCOMP_MAIN),
	ALLOW("vsock", sendmsg, SECCOMP_MAIN),

	/* virtio-rng (rng.c). */
	ALLOW("rng", getrandom, SECCOMP_MAIN),

	/*
	 * virtio-net (net.c) needs nothing of its own: one frame per read/write (libc above;
	 * no readv/writev, a bounce buffer instead), the backend in an epoll set (event loop),
	 * the tap opened (/dev/net/tun, TUNSETIFF) in vm_create, before the filters.
	 */

	/* virtio-blk (blk.c): requests, and images opened by QMP blockdev-add (hotplug). */
	ALLOW("blk", preadv, SECCOMP_MAIN),
	ALLOW("blk", pwritev, SECCOMP_MAIN),
	ALLOW("blk", fdatasync, SECCOMP_MAIN),
	ALLOW("blk", fallocate, SECCOMP_MAIN),
	ALLOW("blk", openat, SECCOMP_MAIN),
	ALLOW("blk", flock, SECCOMP_MAIN),
	ALLOW("blk", lseek, SECCOMP_MAIN),
	ALLOW("blk", statx, SECCOMP_MAIN), /* direct=on: O_DIRECT alignment */
	IOCTL("blk", SECCOMP_MAIN, BLKSSZGET),

	/*
	 * virtio-fs (fs.c, fs_process.c): the VMM side, on the main loop, reaps a share's
	 * process that died (a pidfd made before the filters); a vCPU thread resetting the
	 * device waits for the process's answer (bounded) on their socket.
	 */
	ALLOW("virtio-fs", waitid, SECCOMP_MAIN),
	ALLOW("virtio-fs", read, SECCOMP_VCPU),
	ALLOW("virtio-fs", poll, SECCOMP_VCPU),
	/*
	 * virtio-fs (fs_process.c, fuse_*.c): each share's own process, its FUSE server making
	 * every call relative to an O_PATH fd (docs/virtio-fs.md, "Syscalls"), its socket to
	 * the VMM (send with MSG_NOSIGNAL). fstat/fstatat are newfstatat, futimens is
	 * utimensat in glibc.
	 */
	ALLOW("virtio-fs", sendto, SECCOMP_FSPROC),
	ALLOW("virtio-fs", openat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", openat2, SECCOMP_FSPROC),
	ALLOW("virtio-fs", newfstatat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", statx, SECCOMP_FSPROC), /* a node's key: (dev, ino, mount id) */
	ALLOW("virtio-fs", fstatfs, SECCOMP_FSPROC),
	ALLOW("virtio-fs", getdents64, SECCOMP_FSPROC),
	ALLOW("virtio-fs", lseek, SECCOMP_FSPROC),
	ALLOW("virtio-fs", preadv, SECCOMP_FSPROC),
	ALLOW("virtio-fs", pwritev, SECCOMP_FSPROC),
	ALLOW("virtio-fs", fsync, SECCOMP_FSPROC),
	ALLOW("virtio-fs", fdatasync, SECCOMP_FSPROC),
	ALLOW("virtio-fs", ftruncate, SECCOMP_FSPROC),
	ALLOW("virtio-fs", fallocate, SECCOMP_FSPROC),
	ALLOW("virtio-fs", copy_file_range, SECCOMP_FSPROC),
	ALLOW("virtio-fs", readlinkat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", symlinkat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", mknodat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", mkdirat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", unlinkat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", renameat, SECCOMP_FSPROC), /* glibc's renameat2 without flags */
	ALLOW("virtio-fs", renameat2, SECCOMP_FSPROC),
	ALLOW("virtio-fs", linkat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", fchmodat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", fchmod, SECCOMP_FSPROC),
	ALLOW("virtio-fs", fchownat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", utimensat, SECCOMP_FSPROC),
	ALLOW("virtio-fs", setxattr, SECCOMP_FSPROC),
	ALLOW("virtio-fs", getxattr, SECCOMP_FSPROC),
	ALLOW("virtio-fs", listxattr, SECCOMP_FSPROC),
	ALLOW("virtio-fs", removexattr, SECCOMP_FSPROC),

	/*
	 * Snapshots (QMP migrate, snapshot.c, arch/x86_64/snapshot.c): the paused vCPUs' and
	 * the VM's state read from the main thread, the file written with pwritev/fdatasync
	 * (listed above) under a temporary name, then renamed.
	 */
	ALLOW("snapshot", rename, SECCOMP_MAIN),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_REGS),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_SREGS),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_FPU),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_XSAVE),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_XSAVE2),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_XCRS),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_MSRS),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_MSR_INDEX_LIST),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_MP_STATE),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_LAPIC),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_VCPU_EVENTS),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_DEBUGREGS),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_IRQCHIP),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_PIT2),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_GET_CLOCK),
	IOCTL("snapshot", SECCOMP_MAIN, KVM_CHECK_EXTENSION),
};

const struct seccomp_rule *seccomp_rules(unsigned int *nr)
{
	*nr = ARRAY_SIZE(seccomp_table);
	return seccomp_table;
}

const char *seccomp_thread_name(enum seccomp_thread thread)
{
	static const char *const names[] = {
		[SECCOMP_THREAD_MAIN] = "main",
		[SECCOMP_THREAD_VCPU] = "vcpu",
		[SECCOMP_PROC_FS] = "fs",
	};

	return (unsigned int)thread < ARRAY_SIZE(names) ? names[thread] : "?";
}

unsigned int seccomp_count(unsigned int threads)
{
	unsigned int i, j, n = 0;

	for (i = 0; i < ARRAY_SIZE(seccomp_table); i++) {
		bool seen = false;

		if (!(seccomp_table[i].threads & threads))
			continue;
		for (j = 0; j < i && !seen; j++)
			seen = (seccomp_table[j].threads & threads) &&
			       !strcmp(seccomp_table[j].syscall, seccomp_table[i].syscall);
		n += !seen;
	}
	return n;
}

static int seccomp_add(scmp_filter_ctx ctx, const struct seccomp_rule *rule, struct error *err)
{
	int nr = seccomp_syscall_resolve_name(rule->syscall);
	struct scmp_arg_cmp cmp;
	int r;

	if (nr == __NR_SCMP_ERROR)
		return error_set(err, -EINVAL, "seccomp: unknown syscall '%s'", rule->syscall);
	switch (rule->op) {
	case SECCOMP_ARG_EQ:
		cmp = (struct scmp_arg_cmp){ rule->arg, SCMP_CMP_EQ, rule->value, 0 };
		r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, &cmp);
		break;
	case SECCOMP_ARG_MASKED_EQ:
		cmp = (struct scmp_arg_cmp){ rule->arg, SCMP_CMP_MASKED_EQ, rule->mask,
					     rule->value };
		r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, &cmp);
		break;
	default:
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
	if (r < 0)
		return error_set_errno(err, r, "seccomp: rule for %s%s%s", rule->syscall,
				       rule->what ? " " : "", rule->what ? rule->what : "");
	return 0;
}

int seccomp_resolve(const char *syscall)
{
	int nr = seccomp_syscall_resolve_name(syscall);

	return nr == __NR_SCMP_ERROR ? -1 : nr;
}

static bool seccomp_sanitizer_build(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#else
	return false;
#endif
#else
	return false;
#endif
}

bool seccomp_available(void)
{
	return !seccomp_sanitizer_build();
}

int seccomp_install(enum seccomp_thread thread, enum seccomp_mode mode, struct error *err)
{
	unsigned int bit = 1u << thread, i;
	scmp_filter_ctx ctx;
	int r = 0;

	if (mode == SECCOMP_OFF)
		return 0;
	if (seccomp_sanitizer_build()) {
		log_once(LOG_WARN, "seccomp: not installed in a sanitizer build (ASan's runtime "
				   "makes syscalls of its own)");
		return 0;
	}
	ctx = seccomp_init(mode == SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return error_set(err, -ENOMEM, "seccomp: cannot create the %s filter",
				 seccomp_thread_name(thread));
	/* Hot paths first: a binary tree of syscalls, and ioctl (KVM_RUN) checked at once. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	seccomp_syscall_priority(ctx, seccomp_syscall_resolve_name("ioctl"), 255);
	for (i = 0; i < ARRAY_SIZE(seccomp_table) && r == 0; i++)
		if (seccomp_table[i].threads & bit)
			r = seccomp_add(ctx, &seccomp_table[i], err);
	if (r == 0) {
		r = seccomp_load(ctx);
		if (r < 0)
			error_set_errno(err, r, "seccomp: cannot load the %s filter",
					seccomp_thread_name(thread));
	}
	seccomp_release(ctx);
	return r;
}

static void seccomp_print_list(FILE *out, unsigned int t, const char *kind)
{
	unsigned int i;

	fprintf(out, "%s %s: %u syscalls\n", seccomp_thread_name(t), kind, seccomp_count(1u << t));
	for (i = 0; i < ARRAY_SIZE(seccomp_table); i++) {
		const struct seccomp_rule *rule = &seccomp_table[i];

		if (rule->threads & (1u << t))
			fprintf(out, "  %-16s %-12s %s\n", rule->syscall, rule->section,
				rule->what ? rule->what : "");
	}
}

void seccomp_print(FILE *out)
{
	seccomp_print_list(out, SECCOMP_THREAD_MAIN, "thread");
	seccomp_print_list(out, SECCOMP_THREAD_VCPU, "thread");
	fprintf(out, "VMM process (main and vcpu threads): %u syscalls\n",
		seccomp_count(SECCOMP_ALL));
	/* Another process (fs_process.c): counted on its own. */
	seccomp_print_list(out, SECCOMP_PROC_FS, "process (one per virtio-fs share)");
}

void seccomp_test_hook(enum seccomp_thread thread)
{
	const char *which = getenv("STRATUS_VMM_TEST_FORBIDDEN");

	if (!which || strcmp(which, seccomp_thread_name(thread)))
		return;
	log_warn("STRATUS_VMM_TEST_FORBIDDEN=%s: calling getppid(), which no list allows", which);
	syscall(SYS_getppid);
	log_error("STRATUS_VMM_TEST_FORBIDDEN: getppid() was allowed (no filter, or -seccomp-log)");
}
