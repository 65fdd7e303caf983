/*
 * PID-1 duties of stratus-agent in the guest (docs/architecture.md "Boot"): the API
 * filesystems a container host needs (/proc, /sys, /dev, /dev/pts, /dev/shm, /run, /tmp,
 * cgroup2 at /sys/fs/cgroup) and the console as stdin/stdout/stderr for our logs. Only done
 * when the agent really is PID 1 (and not --no-init), so the same binary runs in the native
 * tests. Reaping is the core's: its signalfd catches every SIGCHLD, grandchildren included.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"

struct api_mount {
	const char *source, *target, *fstype;
	unsigned long flags;
	const char *data;
};

static const struct api_mount api_mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755" },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	  "newinstance,ptmxmode=0666,mode=0620" },
	{ "shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
	{ "run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755" },
	{ "tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
	{ "cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
};

static void console_stdio(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		dup2(fd, i);
	if (fd > 2)
		close(fd);
}

int agent_init_pid1(void)
{
	int failed = 0;

	for (size_t i = 0; i < sizeof(api_mounts) / sizeof(api_mounts[0]); i++) {
		const struct api_mount *m = &api_mounts[i];

		mkdir(m->target, 0755);
		if (mount(m->source, m->target, m->fstype, m->flags, m->data) < 0 &&
		    errno != EBUSY) {
			fprintf(stderr, "stratus-agent: mount %s on %s: %s\n", m->fstype, m->target,
				strerror(errno));
			failed = -errno;
		}
		if (i == 2)
			console_stdio(); /* /dev exists now: log to the console */
	}
	/* /dev/ptmx must be the new devpts instance's, for posix_openpt. */
	unlink("/dev/ptmx");
	if (symlink("pts/ptmx", "/dev/ptmx") < 0)
		fprintf(stderr, "stratus-agent: /dev/ptmx: %s\n", strerror(errno));
	return failed;
}
