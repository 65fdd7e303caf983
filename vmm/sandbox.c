/*
 * Dropping privileges and the optional jail (see sandbox.h). Order matters: the jail needs
 * CAP_SYS_ADMIN (mounts, pivot_root), the uid switch CAP_SETUID/SETGID, and the bounding
 * set CAP_SETPCAP, so capabilities go last; no_new_privs is set at the very end (it also
 * lets an unprivileged process install seccomp filters).
 */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cap-ng.h>

#include "log.h"
#include "sandbox.h"
#include "util.h"

int sandbox_close_inherited(void)
{
	if (close_range(3, ~0u, 0) == 0)
		return 0;
	/* Kernels before 5.9: close what /proc says is open, or a bounded range. */
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	return 0;
}

int sandbox_add_bind(struct sandbox_config *cfg, const char *path, struct error *err)
{
	_cleanup_free_ char *dir = NULL;
	char *slash;
	unsigned int i;

	if (!path || !path[0])
		return 0;
	dir = realpath(path, NULL);
	if (!dir) {
		/* A socket not created yet: its directory must exist. */
		_cleanup_free_ char *copy = strdup(path);

		if (!copy)
			return -ENOMEM;
		slash = strrchr(copy, '/');
		if (slash)
			*(slash == copy ? slash + 1 : slash) = '\0';
		dir = realpath(slash ? copy : ".", NULL);
		if (!dir)
			return error_set_errno(err, -errno, "-sandbox: cannot resolve %s", path);
	} else {
		struct stat st;

		if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
			slash = strrchr(dir, '/');
			*(slash == dir ? slash + 1 : slash) = '\0';
		}
	}
	if (!strcmp(dir, "/"))
		return error_set(err, -EINVAL,
				 "-sandbox: %s lies in /: the jail cannot bind the whole host",
				 path);
	for (i = 0; i < cfg->nr_binds; i++)
		if (!strcmp(cfg->binds[i], dir))
			return 0;
	if (cfg->nr_binds >= SANDBOX_MAX_BINDS)
		return error_set(err, -E2BIG, "-sandbox: at most %d directories to bind",
				 SANDBOX_MAX_BINDS);
	cfg->binds[cfg->nr_binds++] = dir;
	dir = NULL; /* kept for the process's lifetime */
	return 0;
}

int sandbox_add_dir(struct sandbox_config *cfg, const char *dir, struct error *err)
{
	struct stat st;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return error_set(err, -ENOTDIR, "-sandbox-bind: %s is not a directory", dir);
	return sandbox_add_bind(cfg, dir, err);
}

static int sandbox_mkdir_p(char *path)
{
	char *p;

	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int sandbox_bind(const char *root, const char *dir, struct error *err)
{
	char target[PATH_MAX];
	int r;

	if (snprintf(target, sizeof(target), "%s%s", root, dir) >= (int)sizeof(target))
		return error_set(err, -ENAMETOOLONG, "-sandbox: path too long: %s", dir);
	r = sandbox_mkdir_p(target);
	if (r < 0)
		return error_set_errno(err, r, "-sandbox: mkdir %s", target);
	if (mount(dir, target, NULL, MS_BIND | MS_REC, NULL) < 0)
		return error_set_errno(err, -errno, "-sandbox: bind %s", dir);
	/* Sockets and images only: nothing in there runs. */
	if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		return error_set_errno(err, -errno, "-sandbox: remount %s", dir);
	return 0;
}

/*
 * New namespaces, an empty tmpfs as the root with the bind mounts, pivot_root into it and
 * the old root detached: the host's file system is out of reach.
 */
static int sandbox_enter_jail(const struct sandbox_config *cfg, struct error *err)
{
	const char *root = cfg->jail_dir;
	unsigned int i;
	int r;

	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS) < 0)
		return error_set_errno(err, -errno, "-sandbox: unshare (needs CAP_SYS_ADMIN)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return error_set_errno(err, -errno, "-sandbox: make / private");
	if (mount("stratus-jail", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=64k,mode=0755") < 0)
		return error_set_errno(err, -errno, "-sandbox: tmpfs on %s", root);
	for (i = 0; i < cfg->nr_binds; i++) {
		r = sandbox_bind(root, cfg->binds[i], err);
		if (r < 0)
			return r;
	}
	if (chdir(root) < 0)
		return error_set_errno(err, -errno, "-sandbox: chdir %s", root);
	/* pivot_root(".", "."): the old root stacks under the new one; detach it. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return error_set_errno(err, -errno, "-sandbox: pivot_root into %s", root);
	if (umount2(".", MNT_DETACH) < 0)
		return error_set_errno(err, -errno, "-sandbox: detach the old root");
	if (chdir("/") < 0)
		return error_set_errno(err, -errno, "-sandbox: chdir /");
	/* The root itself: read-only from now on. */
	if (mount(NULL, "/", NULL,
		  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		log_debug("-sandbox: cannot make the jail's root read-only: %s", strerror(errno));
	sethostname("stratus-vmm", 11);
	log_info("sandbox: jailed in %s (%u directories bound)", root, cfg->nr_binds);
	return 0;
}

static int sandbox_rlimits(const struct sandbox_config *cfg, struct error *err)
{
	struct rlimit none = { 0, 0 };
	rlim_t nofile = cfg->max_fds ? cfg->max_fds : 4096;
	struct rlimit files = { nofile, nofile };

	/* No core dump: it would hold the guest's memory. */
	if (setrlimit(RLIMIT_CORE, &none) < 0)
		return error_set_errno(err, -errno, "setrlimit(RLIMIT_CORE)");
	if (cfg->jail_dir && setrlimit(RLIMIT_NOFILE, &files) < 0)
		return error_set_errno(err, -errno, "setrlimit(RLIMIT_NOFILE)");
	return 0;
}

static int sandbox_switch_ids(const struct sandbox_config *cfg, struct error *err)
{
	if (setgroups(0, NULL) < 0)
		return error_set_errno(err, -errno, "-runas: setgroups");
	if (setresgid(cfg->gid, cfg->gid, cfg->gid) < 0)
		return error_set_errno(err, -errno, "-runas: setresgid(%u)",
				       (unsigned int)cfg->gid);
	if (setresuid(cfg->uid, cfg->uid, cfg->uid) < 0)
		return error_set_errno(err, -errno, "-runas: setresuid(%u)",
				       (unsigned int)cfg->uid);
	return 0;
}

/* Every set, the bounding set and ambient ones included where we may change them. */
static int sandbox_drop_caps(struct error *err)
{
	capng_clear(CAPNG_SELECT_ALL);
	if (capng_apply(CAPNG_SELECT_ALL) == 0)
		return 0;
	/* Without CAP_SETPCAP the bounding set stays; an unprivileged process has none. */
	capng_clear(CAPNG_SELECT_CAPS);
	if (capng_apply(CAPNG_SELECT_CAPS) < 0)
		return error_set(err, -EPERM, "cannot drop capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return error_set_errno(err, -errno, "cannot clear the ambient capabilities");
	return 0;
}

int sandbox_apply(const struct sandbox_config *cfg, struct error *err)
{
	int r;

	if (cfg->jail_dir) {
		r = sandbox_enter_jail(cfg, err);
		if (r < 0)
			return r;
	}
	r = sandbox_rlimits(cfg, err);
	if (r < 0)
		return r;
	if (cfg->runas) {
		r = sandbox_switch_ids(cfg, err);
		if (r < 0)
			return r;
	}
	r = sandbox_drop_caps(err);
	if (r < 0)
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return error_set_errno(err, -errno, "prctl(PR_SET_NO_NEW_PRIVS)");
	return 0;
}
