/*
 * Hybrid vsock from the host (agent_vsock.h): dial the VMM's Unix socket, CONNECT to a guest
 * port, read the device's OK; deadlines for the agent client.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"
#include "agent_vsock.h"
#include "unix_path.h"

#define VSOCK_LINE_MAX 32

int64_t agent_vsock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t agent_vsock_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : agent_vsock_now_ms() + timeout_ms;
}

/* Wait for events on fd until the deadline (-1: none): 0, -ETIMEDOUT or -errno. */
int agent_vsock_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int left = deadline < 0 ? -1
					: (int)(deadline > agent_vsock_now_ms()
							? deadline - agent_vsock_now_ms()
							: 0);
		int n = poll(&p, 1, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		return n == 0 ? -ETIMEDOUT : 0;
	}
}

int agent_vsock_send_all(int fd, const uint8_t *data, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = agent_vsock_wait(fd, POLLOUT, deadline);

			if (r < 0)
				return r;
			continue;
		}
		if (n < 0)
			return -errno;
		data += n;
		len -= n;
	}
	return 0;
}

/* Read the device's "OK <port>\n" one byte at a time: what follows belongs to the stream. */
int agent_vsock_read_ok(int fd, int64_t deadline)
{
	char line[VSOCK_LINE_MAX + 1];
	size_t len = 0;

	while (len < VSOCK_LINE_MAX) {
		ssize_t n = read(fd, line + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			int r = agent_vsock_wait(fd, POLLIN, deadline);

			if (r < 0)
				return r;
			continue;
		}
		/* hung up before OK (a reset if our first request was still unread) */
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return -ECONNREFUSED;
		if (n < 0)
			return -errno;
		if (line[len++] == '\n')
			break;
	}
	line[len] = '\0';
	if (len < 5 || strncmp(line, "OK ", 3) != 0 || line[len - 1] != '\n' ||
	    strspn(line + 3, "0123456789") != len - 4)
		return -EPROTO;
	return 0;
}

/* A non-blocking stream connected to the hybrid-vsock socket at path, or a negative errno. */
int agent_vsock_dial(const char *path, char *err, size_t err_len)
{
	struct sockaddr_un addr;
	int fd, r, dirfd;

	r = unix_addr_fill(&addr, path, &dirfd);
	if (r < 0) {
		snprintf(err, err_len, "%s: vsock socket path: %s", path, strerror(-r));
		return r;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, err_len, "socket: %s", strerror(-r));
		if (dirfd >= 0)
			close(dirfd);
		return r;
	}
	r = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ? -errno : 0;
	if (dirfd >= 0)
		close(dirfd);
	if (r < 0) {
		snprintf(err, err_len, "%s: connect: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

/*
 * Send "CONNECT <port>\n" and, in the same write, the first bytes of the stream (first, len;
 * may be empty): the device reads the line and not a byte past it, and forwards the rest once
 * the guest has accepted, so a request needs no round trip of its own.
 */
int agent_vsock_send_connect(int fd, uint32_t port, const uint8_t *first, size_t len,
			     int64_t deadline)
{
	uint8_t buf[VSOCK_LINE_MAX + 256];
	int n = snprintf((char *)buf, sizeof(buf), "CONNECT %u\n", port);
	int r;

	if (len <= sizeof(buf) - (size_t)n) {
		if (len)
			memcpy(buf + n, first, len);
		return agent_vsock_send_all(fd, buf, n + len, deadline);
	}
	r = agent_vsock_send_all(fd, buf, n, deadline);
	return r ?: agent_vsock_send_all(fd, first, len, deadline);
}

/* What a failed CONNECT (r < 0) means, for a person. */
void agent_vsock_connect_error(int r, const char *path, uint32_t port, char *err, size_t err_len)
{
	if (r == -ECONNREFUSED)
		snprintf(err, err_len, "%s: nothing listens on guest vsock port %u (agent not up?)",
			 path, port);
	else if (r == -EPROTO)
		snprintf(err, err_len, "%s: bad answer to CONNECT %u from the vsock device", path,
			 port);
	else
		snprintf(err, err_len, "%s: CONNECT %u: %s", path, port, strerror(-r));
}

int agent_vsock_connect(const char *path, uint32_t port, int timeout_ms, char *err, size_t err_len)
{
	int64_t deadline = agent_vsock_deadline(timeout_ms);
	int fd = agent_vsock_dial(path, err, err_len);
	int r;

	if (fd < 0)
		return fd;
	r = agent_vsock_send_connect(fd, port, NULL, 0, deadline);
	if (r == 0)
		r = agent_vsock_read_ok(fd, deadline);
	if (r == 0)
		return fd;
	agent_vsock_connect_error(r, path, port, err, err_len);
	close(fd);
	return r;
}
