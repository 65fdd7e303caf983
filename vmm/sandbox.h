/*
 * What the VMM gives up before the guest runs (docs/vmm.md, Security): inherited file
 * descriptors, every capability (effective, permitted, inheritable, bounding, ambient), the
 * right to gain privileges (PR_SET_NO_NEW_PRIVS), and optionally its view of the host: a
 * jail (-sandbox DIR) with new mount, IPC, network and UTS namespaces, an empty root, only
 * the directories the VM still needs bind-mounted in, rlimits, and an unprivileged uid/gid
 * (-runas UID:GID). Files opened before (the kernel, images, /dev/kvm, sockets) stay usable.
 * The seccomp filters (seccomp.h) come last, once the threads exist.
 */
#ifndef STRATUS_VMM_SANDBOX_H
#define STRATUS_VMM_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

#define SANDBOX_MAX_BINDS 8

struct sandbox_config {
	const char *jail_dir; /* -sandbox DIR: the new root's mount point; NULL: no jail */
	/* directories bind-mounted at the same path inside the jail (socket directories) */
	const char *binds[SANDBOX_MAX_BINDS];
	unsigned int nr_binds;
	bool runas; /* -runas UID:GID */
	uid_t uid;
	gid_t gid;
	unsigned int max_fds; /* RLIMIT_NOFILE in the jail (0: 4096) */
};

/* Close every inherited descriptor but 0, 1 and 2 (called first thing in main). */
int sandbox_close_inherited(void);

/*
 * Add a directory to bind into the jail: path itself if it is a directory, else the
 * directory it lies in (a socket's); duplicates ignored.
 */
int sandbox_add_bind(struct sandbox_config *cfg, const char *path, struct error *err);
/* Add a directory, which must exist (-sandbox-bind). */
int sandbox_add_dir(struct sandbox_config *cfg, const char *dir, struct error *err);

/*
 * Enter the jail (if any), switch uid/gid (if asked), drop every capability and set
 * no_new_privs. Call once set-up is done and before any vCPU thread exists: capabilities
 * and ids are per thread and threads created later inherit them.
 */
int sandbox_apply(const struct sandbox_config *cfg, struct error *err);

#endif
