/*
 * The ttrpc client: synchronous calls over one Unix socket connection, stream ids 1, 3, 5, ...
 * The server's answer is untrusted too: a frame longer than 4 MiB, a malformed Response or a
 * stream id we never used fails the call with -EPROTO instead of being believed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ttrpc.h"
#include "ttrpc/ttrpc.pb-c.h"

struct ttrpc_client {
	int fd;
	uint32_t next_stream_id;
	bool broken; /* a failed call left the stream mid-frame: refuse further calls */
};

int ttrpc_client_new_fd(int fd, struct ttrpc_client **out)
{
	struct ttrpc_client *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->next_stream_id = 1;
	*out = c;
	return 0;
}

int ttrpc_client_connect(const char *address, struct ttrpc_client **out, struct error *err)
{
	struct sockaddr_un addr;
	unsigned int addr_len;
	_cleanup_close_ int fd = -1;
	int r;

	r = ttrpc_sockaddr(address, &addr, &addr_len);
	if (r < 0)
		return error_set(err, r, "%s: not a usable unix socket address", address);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set_errno(err, -errno, "socket");
	if (connect(fd, (struct sockaddr *)&addr, addr_len) < 0)
		return error_set_errno(err, -errno, "%s: connect", address);
	r = ttrpc_client_new_fd(fd, out);
	if (r < 0)
		return error_set_errno(err, r, "ttrpc client");
	fd = -1;
	return 0;
}

void ttrpc_client_destroy(struct ttrpc_client *client)
{
	if (!client)
		return;
	close(client->fd);
	free(client);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int timeout = -1, r;

	if (deadline >= 0) {
		int64_t left = deadline - now_ms();

		if (left <= 0)
			return -ETIMEDOUT;
		timeout = (int)MIN(left, (int64_t)INT32_MAX);
	}
	r = poll(&p, 1, timeout);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return errno == EPIPE ? -ECONNRESET : -errno;
			r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
		int r;

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			r = wait_fd(fd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* Read frames until the Response for stream_id; returns its body (malloc'd). */
static int read_response(struct ttrpc_client *c, uint32_t stream_id, int64_t deadline,
			 uint8_t **body, size_t *len)
{
	for (;;) {
		uint8_t hdr[TTRPC_HEADER_LEN];
		struct ttrpc_header h;
		_cleanup_free_ uint8_t *p = NULL;
		int r;

		r = read_all(c->fd, hdr, sizeof(hdr), deadline);
		if (r < 0)
			return r;
		ttrpc_header_decode(hdr, &h);
		if (h.length > TTRPC_MESSAGE_MAX)
			return -EPROTO;
		p = malloc(h.length ? h.length : 1);
		if (!p)
			return -ENOMEM;
		r = read_all(c->fd, p, h.length, deadline);
		if (r < 0)
			return r;
		if (h.type != TTRPC_TYPE_RESPONSE)
			continue; /* nothing else is expected on a unary client: skip it */
		if (h.stream_id != stream_id)
			return -EPROTO;
		*body = ptr_steal(&p);
		*len = h.length;
		return 0;
	}
}

int ttrpc_client_call(struct ttrpc_client *client, const char *service, const char *method,
		      const void *payload, size_t len, int timeout_ms, struct ttrpc_status *st,
		      uint8_t **resp, size_t *resp_len)
{
	_cleanup_free_ uint8_t *req = NULL;
	_cleanup_free_ uint8_t *frame = NULL;
	_cleanup_free_ uint8_t *body = NULL;
	size_t req_len, frame_len, body_len = 0;
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : -1;
	Ttrpc__Response *r_msg;
	uint32_t id;
	int r;

	*resp = NULL;
	*resp_len = 0;
	if (client->broken)
		return -ECONNRESET;
	if (client->next_stream_id > UINT32_MAX - 2)
		return -EOVERFLOW;
	id = client->next_stream_id;
	client->next_stream_id += 2;
	r = ttrpc_request_pack(service, method, payload, len,
			       timeout_ms > 0 ? (int64_t)timeout_ms * 1000000 : 0, &req, &req_len);
	if (r < 0)
		return r;
	r = ttrpc_frame_build(id, TTRPC_TYPE_REQUEST, 0, req, req_len, &frame, &frame_len);
	if (r < 0)
		return r;
	r = write_all(client->fd, frame, frame_len, deadline);
	if (r == 0)
		r = read_response(client, id, deadline, &body, &body_len);
	if (r < 0) {
		client->broken = true;
		return r;
	}
	r_msg = ttrpc__response__unpack(NULL, body_len, body);
	if (!r_msg)
		return -EPROTO;
	st->code = r_msg->status ? r_msg->status->code : TTRPC_OK;
	snprintf(st->message, sizeof(st->message), "%s",
		 r_msg->status && r_msg->status->message ? r_msg->status->message : "");
	if (r_msg->payload.len) {
		*resp = malloc(r_msg->payload.len);
		if (!*resp) {
			ttrpc__response__free_unpacked(r_msg, NULL);
			return -ENOMEM;
		}
		memcpy(*resp, r_msg->payload.data, r_msg->payload.len);
		*resp_len = r_msg->payload.len;
	}
	ttrpc__response__free_unpacked(r_msg, NULL);
	return 0;
}
