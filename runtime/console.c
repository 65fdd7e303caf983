/*
 * Host ptys and --console-socket (see console.h).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#include "console.h"

int console_set_raw(int fd, struct termios *saved)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -errno;
	if (saved)
		*saved = t;
	cfmakeraw(&t);
	return tcsetattr(fd, TCSANOW, &t) < 0 ? -errno : 0;
}

int console_get_size(int fd, uint32_t *rows, uint32_t *cols)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		return -errno;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return 0;
}

int console_open_pty(uint32_t rows, uint32_t cols, bool ctty, int *master, int *slave,
		     struct error *err)
{
	_cleanup_close_ int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), s = -1;
	char name[64];
	int r;

	if (m < 0)
		return error_set_errno(err, -errno, "terminal: cannot open a pty");
	if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
		return error_set_errno(err, -errno, "terminal: cannot unlock the pty");
	s = open(name, O_RDWR | O_CLOEXEC | (ctty ? 0 : O_NOCTTY));
	if (s < 0)
		return error_set_errno(err, -errno, "terminal: cannot open %s", name);
	r = console_set_raw(s, NULL);
	if (r < 0)
		return error_set_errno(err, r, "terminal: raw mode on %s", name);
	if (rows && cols) {
		struct winsize ws = { .ws_row = (unsigned short)rows,
				      .ws_col = (unsigned short)cols };

		if (ioctl(m, TIOCSWINSZ, &ws) < 0)
			return error_set_errno(err, -errno, "terminal: window size");
	}
	*master = fd_steal(&m);
	*slave = fd_steal(&s);
	return 0;
}

int console_send_fd(const char *path, int fd, struct error *err)
{
	_cleanup_close_ int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	char name[64] = "/dev/ptmx";
	struct iovec iov;
	struct msghdr msg = { 0 };
	struct cmsghdr *cmsg;

	if (strlen(path) >= sizeof(addr.sun_path))
		return error_set(err, -ENAMETOOLONG, "--console-socket: path too long: %s", path);
	strcpy(addr.sun_path, path);
	if (sock < 0)
		return error_set_errno(err, -errno, "--console-socket: socket");
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return error_set_errno(err, -errno, "--console-socket: cannot connect to %s", path);
	if (ptsname_r(fd, name, sizeof(name)) != 0)
		snprintf(name, sizeof(name), "/dev/ptmx");
	iov.iov_base = name;
	iov.iov_len = strlen(name);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control;
	msg.msg_controllen = sizeof(control);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
		return error_set_errno(err, -errno, "--console-socket: cannot send to %s", path);
	return 0;
}
