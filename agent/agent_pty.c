/*
 * The terminal of a process with process.terminal (as runc does it): the pty comes from the
 * container's own devpts, so that /proc/self/fd/0 -> /dev/pts/N resolves inside the
 * container and tty, stty and job control work there. The container's child opens /dev/ptmx
 * after its mounts (CREATE: after pivot_root; EXEC: in the joined mount namespace and root),
 * unlocks it, sets consoleSize, opens the slave with TIOCGPTPEER, binds it over /dev/console
 * (CREATE), makes it stdin, stdout, stderr and its controlling terminal, and sends the master
 * back to the agent over a unix socketpair with SCM_RIGHTS before it reports 'R'. The agent
 * takes the master once 'R' arrived (the fd is queued by then) and relays it; RESIZE uses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "agent_internal.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static int pty_fail(char *err, size_t err_len, const char *what)
{
	int e = errno ? errno : EIO;

	snprintf(err, err_len, "process.terminal: %s: %s", what, strerror(e));
	return -e;
}

static int send_fd(int sock, int fd)
{
	char byte = 'T';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	ssize_t n;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

int pty_child_setup(int sock, const struct process_spec *spec, bool console, char *err,
		    size_t err_len)
{
	struct winsize ws = { .ws_row = (unsigned short)spec->rows,
			      .ws_col = (unsigned short)spec->cols };
	char name[64];
	int master, slave;

	errno = 0;
	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return pty_fail(err, err_len, "open /dev/ptmx in the container");
	if (unlockpt(master) < 0)
		return pty_fail(err, err_len, "unlock the pty");
	if ((spec->rows || spec->cols) && ioctl(master, TIOCSWINSZ, &ws) < 0)
		return pty_fail(err, err_len, "process.consoleSize");
	if (ptsname_r(master, name, sizeof(name)) != 0)
		return pty_fail(err, err_len, "the pty's name");
	/* The slave of this very master, whatever /dev/pts is; by name on an old kernel. */
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0 && (errno == EINVAL || errno == ENOTTY))
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return pty_fail(err, err_len, "open the pty's slave");
	/* A terminal is also the container's /dev/console (created by mount_all). */
	if (console && mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0) {
		snprintf(err, err_len, "process.terminal: bind %s on /dev/console: %s", name,
			 strerror(errno));
		return -errno;
	}
	if (send_fd(sock, master) < 0)
		return pty_fail(err, err_len, "send the pty to the agent");
	close(master);
	close(sock);
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return pty_fail(err, err_len, "set the controlling tty");
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			return pty_fail(err, err_len, "make the pty stdio");
	if (slave > 2)
		close(slave);
	return 0;
}

int pty_recv_master(int sock)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	int fd = -1, r = -EPROTO;
	struct stat st;
	ssize_t n;

	do
		n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -EPROTO : -errno;
	/* Every fd that came is closed but one pty master: never trust what arrived. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = got;
			else
				close(got);
		}
	}
	if (n == 1 && !(msg.msg_flags & MSG_CTRUNC) && fd >= 0 && fstat(fd, &st) == 0 &&
	    S_ISCHR(st.st_mode))
		r = 0;
	if (r < 0 && fd >= 0)
		close(fd);
	return r < 0 ? r : fd;
}
