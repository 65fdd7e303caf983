/*
 * PID-1 duties of stratus-agent in the guest (docs/architecture.md "Boot",
 * packaging/initramfs/README.md): "/" made a bind mount so that containers can pivot_root,
 * the API filesystems a container host needs (/proc, /sys, /dev, /dev/pts, /dev/shm, /run,
 * /tmp, cgroup2 at /sys/fs/cgroup), the console as stdin/stdout/stderr for our logs, the
 * loopback interface up, and the power-off that replaces exiting (PID 1 must never exit: the
 * kernel would panic). Only done when the agent really is PID 1 (and not --no-init), so the
 * same binary runs in the native tests. Reaping is the core's: its signalfd catches every
 * SIGCHLD and waitpid(-1) collects orphans too.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
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

/* One write per line, so lines from several places never interleave on the console. */
void agent_init_log(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "stratus-agent: ");
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	if (write(STDERR_FILENO, line, strlen(line)) < 0) {
		/* nowhere else to say it */
	}
}

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

/*
 * Make "/" a bind mount of the initramfs instead of the initramfs (rootfs) mount itself.
 * pivot_root(2) refuses to move the rootfs mount (EINVAL: it has no parent), which would
 * leave containers in a chroot, which a process with CAP_SYS_CHROOT can leave and in which
 * unshare(CLONE_NEWUSER) fails. A bind of rootfs moved onto "/" has a parent, so containers
 * get a real pivot_root. This costs no copy (switch_root to a tmpfs would copy the agent).
 */
static int root_bind(void)
{
	static const char dir[] = "/.stratus-root";
	int r = 0;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mount("/", dir, NULL, MS_BIND, NULL) < 0 || chdir(dir) < 0 ||
	    mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
		r = -errno;
	rmdir(dir); /* under the new root it is an empty directory again */
	return r;
}

/* The loopback interface up (what ip link set lo up does): containers may expect it. */
static int loopback_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		r = -errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			r = -errno;
	}
	close(fd);
	return r;
}

int agent_init_pid1(void)
{
	int failed = 0, r;

	/* The kernel starts /init with the console as fd 0-2 when /dev/console exists. */
	umask(022);
	if (chdir("/") < 0)
		failed = -errno;
	r = root_bind();
	if (r < 0) {
		failed = r;
		agent_init_log("bind the initramfs on /: %s", strerror(-r));
	}
	for (size_t i = 0; i < sizeof(api_mounts) / sizeof(api_mounts[0]); i++) {
		const struct api_mount *m = &api_mounts[i];

		mkdir(m->target, 0755);
		if (mount(m->source, m->target, m->fstype, m->flags, m->data) < 0 &&
		    errno != EBUSY) {
			failed = -errno;
			agent_init_log("mount %s on %s: %s", m->fstype, m->target, strerror(errno));
		}
		if (i == 2)
			console_stdio(); /* /dev exists now: log to the console */
	}
	/* /dev/ptmx must be the new devpts instance's, for posix_openpt. */
	unlink("/dev/ptmx");
	if (symlink("pts/ptmx", "/dev/ptmx") < 0) {
		failed = -errno;
		agent_init_log("/dev/ptmx: %s", strerror(errno));
	}
	r = loopback_up();
	if (r < 0) {
		failed = r;
		agent_init_log("loopback lo up: %s", strerror(-r));
	}
	if (failed == 0)
		agent_init_log("pid 1: root bound, api filesystems mounted, lo up");
	return failed;
}

int agent_init_vsock_cid(void)
{
	unsigned int cid = VMADDR_CID_ANY;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && (cid == VMADDR_CID_ANY || cid > INT32_MAX))
		r = -ENODEV; /* no vsock device: nobody could ever connect */
	return r < 0 ? r : (int)cid;
}

void agent_init_poweroff(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* Only if the kernel refused: never return, never exit. */
	agent_init_log("power off: %s; halting here", strerror(errno));
	for (;;)
		pause();
}
