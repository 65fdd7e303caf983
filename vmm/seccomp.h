/*
 * The VMM's seccomp filters (libseccomp): one allow-list per thread type, installed by each
 * thread before the guest runs (vCPU threads before their first KVM_RUN, the main thread
 * after set-up and before the vCPUs are released). Anything else kills the whole process
 * (SCMP_ACT_KILL_PROCESS; the kernel logs it, docs/vmm.md says where to look), or, in the
 * debug mode, is only logged.
 *
 * The lists are one table in seccomp.c, one section per subsystem or device: a device that
 * needs a syscall adds one line in its section. `stratus-vmm -print-seccomp` prints them.
 */
#ifndef STRATUS_VMM_SECCOMP_H
#define STRATUS_VMM_SECCOMP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

enum seccomp_thread {
	SECCOMP_THREAD_MAIN, /* the main thread: event loop, devices' queues, QMP, sockets */
	SECCOMP_THREAD_VCPU, /* a vCPU thread: KVM_RUN and its exits */
	/*
	 * Not a thread of the VMM: the process that serves one virtio-fs share (fs_process.c),
	 * forked before the filters; its list is counted apart from the VMM's.
	 */
	SECCOMP_PROC_FS,
	SECCOMP_NR_THREADS,
};

#define SECCOMP_MAIN   (1u << SECCOMP_THREAD_MAIN)
#define SECCOMP_VCPU   (1u << SECCOMP_THREAD_VCPU)
#define SECCOMP_FSPROC (1u << SECCOMP_PROC_FS)
#define SECCOMP_ALL    (SECCOMP_MAIN | SECCOMP_VCPU) /* every thread of the VMM process */
/* The old name of the virtio-fs section's mask (the FUSE server ran on an I/O thread). */
#define SECCOMP_IOTHREAD SECCOMP_FSPROC

/* Targets: how many distinct syscalls a thread type may have (the unit test checks). */
#define SECCOMP_MAX_MAIN   40
#define SECCOMP_MAX_VCPU   20
#define SECCOMP_MAX_UNION  45 /* the VMM process: main and vCPU threads together */
#define SECCOMP_MAX_FSPROC 50 /* a virtio-fs process: ~29 file syscalls of its FUSE server */

enum seccomp_mode {
	SECCOMP_OFF,  /* no filter (-disable-seccomp) */
	SECCOMP_KILL, /* a syscall off the list kills the process (the default) */
	SECCOMP_LOG, /* a syscall off the list is allowed and logged by the kernel (-seccomp-log) */
};

/* How a rule restricts one argument (none, equal, or (arg & mask) == value). */
enum seccomp_arg_op {
	SECCOMP_ARG_ANY,
	SECCOMP_ARG_EQ,
	SECCOMP_ARG_MASKED_EQ,
};

struct seccomp_rule {
	const char *section; /* the subsystem or device that needs it */
	const char *syscall; /* the name libseccomp resolves */
	unsigned int threads;
	enum seccomp_arg_op op;
	unsigned int arg; /* which argument (0-based) */
	uint64_t mask, value;
	const char *what; /* the value's name, e.g. "KVM_RUN" */
};

/* The table (for -print-seccomp and the unit tests). */
const struct seccomp_rule *seccomp_rules(unsigned int *nr);

/* The syscall number of a rule's name on this architecture, or -1 if it has none. */
int seccomp_resolve(const char *syscall);

/* False in sanitizer builds, where seccomp_install() installs nothing. */
bool seccomp_available(void);

/* Distinct syscalls allowed to any of the thread types in the mask threads. */
unsigned int seccomp_count(unsigned int threads);

/*
 * Install the calling thread's filter. 0, or a negative errno with the reason in err.
 * SECCOMP_OFF does nothing. In a sanitizer build (ASan's runtime makes syscalls of its own)
 * the filter is not installed and a warning says so.
 */
int seccomp_install(enum seccomp_thread thread, enum seccomp_mode mode, struct error *err);

/* Print the VMM's lists, their union, then the virtio-fs process's list. */
void seccomp_print(FILE *out);

const char *seccomp_thread_name(enum seccomp_thread thread);

/*
 * Test hook: when STRATUS_VMM_TEST_FORBIDDEN names this thread type ("main", "vcpu", "fs"),
 * make a syscall that is on no list (the filter must kill the process). Called by each
 * thread right after seccomp_install(); documented in docs/vmm.md as a test hook only.
 */
void seccomp_test_hook(enum seccomp_thread thread);

#endif
