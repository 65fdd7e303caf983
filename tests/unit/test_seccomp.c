/*
 * The seccomp allow-lists (vmm/seccomp.c): every entry names a real syscall, nothing is
 * listed twice, the counts stay within the targets, each thread type has what it cannot
 * run without, and an installed filter really kills on a syscall off its list and on the
 * argument filters (PROT_EXEC, socket families, ioctl requests). The filters are tried in
 * forked children, which die by SIGSYS or exit 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <cmocka.h>

#include "seccomp.h"

static void test_entries_resolve(void **state)
{
	const struct seccomp_rule *rules;
	unsigned int nr, i;

	(void)state;
	rules = seccomp_rules(&nr);
	assert_true(nr > 0);
	for (i = 0; i < nr; i++) {
		if (seccomp_resolve(rules[i].syscall) < 0)
			fail_msg("rule %u: '%s' is not a syscall here", i, rules[i].syscall);
		assert_non_null(rules[i].section);
		assert_true(rules[i].threads != 0);
		assert_true((rules[i].threads & ~(SECCOMP_ALL | SECCOMP_FSPROC)) == 0);
		assert_true(rules[i].arg < 6);
		if (rules[i].op != SECCOMP_ARG_ANY)
			assert_non_null(rules[i].what);
	}
	assert_int_equal(seccomp_resolve("no_such_syscall"), -1);
}

static void test_no_duplicates(void **state)
{
	const struct seccomp_rule *rules;
	unsigned int nr, i, j;

	(void)state;
	rules = seccomp_rules(&nr);
	for (i = 0; i < nr; i++) {
		for (j = i + 1; j < nr; j++) {
			const struct seccomp_rule *a = &rules[i], *b = &rules[j];

			if (!(a->threads & b->threads) || strcmp(a->syscall, b->syscall))
				continue;
			/* Same syscall twice for one thread: only with different argument values. */
			if (a->op == SECCOMP_ARG_ANY || b->op == SECCOMP_ARG_ANY ||
			    (a->op == b->op && a->arg == b->arg && a->mask == b->mask &&
			     a->value == b->value))
				fail_msg("'%s' is listed twice (rules %u and %u)", a->syscall, i,
					 j);
		}
	}
}

static bool has_rule(unsigned int thread, const char *syscall, const char *what)
{
	const struct seccomp_rule *rules;
	unsigned int nr, i;

	rules = seccomp_rules(&nr);
	for (i = 0; i < nr; i++)
		if ((rules[i].threads & thread) && !strcmp(rules[i].syscall, syscall) &&
		    (!what || (rules[i].what && !strcmp(rules[i].what, what))))
			return true;
	return false;
}

static void test_counts_and_essentials(void **state)
{
	(void)state;
	assert_true(seccomp_count(SECCOMP_MAIN) <= SECCOMP_MAX_MAIN);
	assert_true(seccomp_count(SECCOMP_VCPU) <= SECCOMP_MAX_VCPU);
	/* The VMM process: every thread type it runs, together (issue 8: <= 45). */
	assert_int_equal(SECCOMP_ALL, SECCOMP_MAIN | SECCOMP_VCPU);
	assert_true(seccomp_count(SECCOMP_ALL) <= SECCOMP_MAX_UNION);
	assert_true(seccomp_count(SECCOMP_ALL) >= seccomp_count(SECCOMP_MAIN));
	/* A virtio-fs share's process, counted on its own. */
	assert_true(seccomp_count(SECCOMP_FSPROC) <= SECCOMP_MAX_FSPROC);
	assert_true(has_rule(SECCOMP_VCPU, "ioctl", "KVM_RUN"));
	assert_false(has_rule(SECCOMP_MAIN, "ioctl", "KVM_RUN"));
	assert_true(has_rule(SECCOMP_MAIN, "epoll_wait", NULL));
	assert_true(has_rule(SECCOMP_MAIN, "exit_group", NULL));
	assert_true(has_rule(SECCOMP_VCPU, "exit", NULL));
	assert_true(has_rule(SECCOMP_FSPROC, "epoll_wait", NULL));
	assert_true(has_rule(SECCOMP_FSPROC, "exit_group", NULL));
	assert_true(has_rule(SECCOMP_FSPROC, "openat", NULL));
	/* The fs process has no KVM at all, and no way to signal or reach other processes. */
	assert_false(has_rule(SECCOMP_FSPROC, "ioctl", NULL));
	assert_false(has_rule(SECCOMP_FSPROC, "tgkill", NULL));
	assert_false(has_rule(SECCOMP_FSPROC, "kill", NULL));
	assert_false(has_rule(SECCOMP_FSPROC, "socket", NULL));
	assert_false(has_rule(SECCOMP_FSPROC, "connect", NULL));
	/* ...and the VMM no file-system work: the FUSE server's syscalls are the process's. */
	assert_false(has_rule(SECCOMP_ALL, "mkdirat", NULL));
	assert_false(has_rule(SECCOMP_ALL, "unlinkat", NULL));
	assert_false(has_rule(SECCOMP_ALL, "fchownat", NULL));
	assert_false(has_rule(SECCOMP_ALL, "setxattr", NULL));
	/* What a VMM taken over by the guest must never do. */
	assert_false(has_rule(SECCOMP_ALL | SECCOMP_FSPROC, "execve", NULL));
	assert_false(has_rule(SECCOMP_ALL | SECCOMP_FSPROC, "clone", NULL));
	assert_false(has_rule(SECCOMP_ALL | SECCOMP_FSPROC, "clone3", NULL));
	assert_false(has_rule(SECCOMP_ALL | SECCOMP_FSPROC, "fork", NULL));
	assert_false(has_rule(SECCOMP_ALL | SECCOMP_FSPROC, "ptrace", NULL));
	assert_false(has_rule(SECCOMP_ALL | SECCOMP_FSPROC, "mount", NULL));
	/* the test hook's syscall */
	assert_false(has_rule(SECCOMP_ALL | SECCOMP_FSPROC, "getppid", NULL));
}

enum probe {
	PROBE_NOTHING,
	PROBE_GETPPID,
	PROBE_MMAP_RW,
	PROBE_MMAP_EXEC,
	PROBE_SOCKET_UNIX,
	PROBE_SOCKET_INET,
	PROBE_IOCTL_KVM_RUN,
	PROBE_IOCTL_KVM_CREATE_VM,
};

/* In a child: install the filter, make the probe, leave with a syscall the list allows. */
static int run_probe(enum seccomp_thread thread, enum probe probe)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct error err = { 0 };
		void *p;

		if (seccomp_install(thread, SECCOMP_KILL, &err) < 0)
			syscall(SYS_exit, 100);
		switch (probe) {
		case PROBE_GETPPID:
			syscall(SYS_getppid);
			break;
		case PROBE_MMAP_RW:
		case PROBE_MMAP_EXEC:
			p = mmap(NULL, 4096,
				 PROT_READ | (probe == PROBE_MMAP_EXEC ? PROT_EXEC : PROT_WRITE),
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				syscall(SYS_exit, 101);
			break;
		case PROBE_SOCKET_UNIX:
		case PROBE_SOCKET_INET:
			syscall(SYS_socket, probe == PROBE_SOCKET_UNIX ? AF_UNIX : AF_INET,
				SOCK_STREAM, 0);
			break;
		case PROBE_IOCTL_KVM_RUN:
			syscall(SYS_ioctl, -1, KVM_RUN, 0); /* EBADF, once allowed */
			break;
		case PROBE_IOCTL_KVM_CREATE_VM:
			syscall(SYS_ioctl, -1, KVM_CREATE_VM, 0);
			break;
		default:
			break;
		}
		syscall(thread == SECCOMP_THREAD_VCPU ? SYS_exit : SYS_exit_group, 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return -WTERMSIG(status);
	return WEXITSTATUS(status);
}

static void test_filters_kill(void **state)
{
	(void)state;
	if (!seccomp_available())
		skip(); /* sanitizer build: no filter is installed */
	assert_int_equal(run_probe(SECCOMP_THREAD_MAIN, PROBE_NOTHING), 0);
	assert_int_equal(run_probe(SECCOMP_THREAD_VCPU, PROBE_NOTHING), 0);
	assert_int_equal(run_probe(SECCOMP_THREAD_MAIN, PROBE_GETPPID), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_THREAD_VCPU, PROBE_GETPPID), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_PROC_FS, PROBE_NOTHING), 0);
	assert_int_equal(run_probe(SECCOMP_PROC_FS, PROBE_GETPPID), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_PROC_FS, PROBE_IOCTL_KVM_RUN), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_PROC_FS, PROBE_SOCKET_UNIX), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_PROC_FS, PROBE_MMAP_EXEC), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_THREAD_MAIN, PROBE_MMAP_RW), 0);
	assert_int_equal(run_probe(SECCOMP_THREAD_MAIN, PROBE_MMAP_EXEC), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_THREAD_VCPU, PROBE_MMAP_EXEC), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_THREAD_MAIN, PROBE_SOCKET_UNIX), 0);
	assert_int_equal(run_probe(SECCOMP_THREAD_MAIN, PROBE_SOCKET_INET), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_THREAD_VCPU, PROBE_SOCKET_UNIX), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_THREAD_VCPU, PROBE_IOCTL_KVM_RUN), 0);
	assert_int_equal(run_probe(SECCOMP_THREAD_MAIN, PROBE_IOCTL_KVM_RUN), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_THREAD_VCPU, PROBE_IOCTL_KVM_CREATE_VM), -SIGSYS);
	assert_int_equal(run_probe(SECCOMP_THREAD_MAIN, PROBE_IOCTL_KVM_CREATE_VM), -SIGSYS);
}

static void test_off_installs_nothing(void **state)
{
	struct error err = { 0 };
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (seccomp_install(SECCOMP_THREAD_VCPU, SECCOMP_OFF, &err) < 0)
			_exit(100);
		syscall(SYS_getppid);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries_resolve),	      cmocka_unit_test(test_no_duplicates),
		cmocka_unit_test(test_counts_and_essentials), cmocka_unit_test(test_filters_kill),
		cmocka_unit_test(test_off_installs_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
