/*
 * One ttrpc client connection of the server (ttrpc_server.c runs the loop): frames are read
 * incrementally (header, then a body buffer that grows with the bytes actually received, so a
 * client announcing 4 MiB and sending 10 bytes costs 10 bytes), every frame that cannot be
 * served is answered the way containerd/ttrpc's server.go answers it, requests are dispatched
 * by (service, method), and answers are queued in an output buffer flushed as the socket
 * allows. A client that stops reading stops being read once its backlog passes
 * max_pending_output. A handler may keep its call and answer later: the call names its
 * connection by id, so an answer for a client that has left is dropped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ttrpc/ttrpc.pb-c.h"
#include "ttrpc_internal.h"

static struct conn *conn_find(struct ttrpc_server *srv, uint64_t id)
{
	for (struct conn *c = srv->conns; c; c = c->next)
		if (c->id == id && !c->src.dead)
			return c;
	return NULL;
}

size_t ttrpc_conn_backlog(const struct conn *c)
{
	return c->out_len - c->out_off;
}

void ttrpc_conn_kill(struct conn *c)
{
	if (c->src.dead)
		return;
	c->src.dead = true;
	epoll_ctl(c->srv->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
}

/* Watch for input unless the client is not reading or the server stops; output if queued. */
void ttrpc_conn_update_events(struct conn *c)
{
	struct epoll_event ev = { .data.ptr = &c->src };
	uint32_t want = 0;

	if (c->src.dead)
		return;
	if (!atomic_load(&c->srv->stopping) && ttrpc_conn_backlog(c) < c->srv->max_output)
		want |= EPOLLIN;
	if (ttrpc_conn_backlog(c))
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev.events = want;
	if (epoll_ctl(c->srv->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		ttrpc_conn_kill(c);
		return;
	}
	c->events = want;
}

void ttrpc_conn_flush(struct conn *c)
{
	while (ttrpc_conn_backlog(c) && !c->src.dead) {
		ssize_t n = send(c->fd, c->out + c->out_off, ttrpc_conn_backlog(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				ttrpc_conn_kill(c);
			break;
		}
		c->out_off += n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		/* A big answer's buffer is not kept for an idle connection. */
		if (c->out_cap > 256 * 1024) {
			free(c->out);
			c->out = NULL;
			c->out_cap = 0;
		}
	}
}

static int conn_queue(struct conn *c, const uint8_t *data, size_t len)
{
	if (c->out_off && c->out_len + len > c->out_cap) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = MAX(c->out_cap * 2, c->out_len + len);
		uint8_t *p = realloc(c->out, cap);

		if (!p)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	return 0;
}

/* Queue a Response frame on stream_id and try to send it right away. */
static void conn_respond(struct conn *c, uint32_t stream_id, int code, const char *message,
			 const void *payload, size_t len)
{
	_cleanup_free_ uint8_t *resp = NULL;
	_cleanup_free_ uint8_t *frame = NULL;
	size_t resp_len, frame_len;
	int r;

	if (c->src.dead)
		return;
	r = ttrpc_response_pack(code, message, payload, len, &resp, &resp_len);
	if (r == 0 && resp_len > TTRPC_MESSAGE_MAX) {
		char msg[128];

		free(ptr_steal(&resp));
		snprintf(msg, sizeof(msg),
			 "response of %zu bytes exceeds maximum message size of %u", resp_len,
			 TTRPC_MESSAGE_MAX);
		r = ttrpc_response_pack(TTRPC_RESOURCE_EXHAUSTED, msg, NULL, 0, &resp, &resp_len);
	}
	if (r == 0)
		r = ttrpc_frame_build(stream_id, TTRPC_TYPE_RESPONSE, 0, resp, resp_len, &frame,
				      &frame_len);
	if (r == 0)
		r = conn_queue(c, frame, frame_len);
	if (r < 0) {
		ttrpc_conn_kill(c);
		return;
	}
	ttrpc_conn_flush(c);
	ttrpc_conn_update_events(c);
}

static void call_finish(struct ttrpc_call *call, int code, const char *message, const void *payload,
			size_t len)
{
	struct conn *c = conn_find(call->srv, call->conn_id);

	if (c) {
		c->pending_calls--;
		conn_respond(c, call->stream_id, code, message, payload, len);
		ttrpc_conn_update_events(c);
	}
	free(call);
}

void ttrpc_call_reply(struct ttrpc_call *call, const void *payload, size_t len)
{
	call_finish(call, TTRPC_OK, "", payload, len);
}

void ttrpc_call_fail(struct ttrpc_call *call, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	call_finish(call, code == TTRPC_OK ? TTRPC_UNKNOWN : code, msg, NULL, 0);
}

int64_t ttrpc_call_timeout_nano(const struct ttrpc_call *call)
{
	return call->timeout_nano;
}

uint32_t ttrpc_call_stream_id(const struct ttrpc_call *call)
{
	return call->stream_id;
}

static void dispatch_request(struct conn *c, uint32_t stream_id, const uint8_t *body, size_t len)
{
	struct ttrpc_server *srv = c->srv;
	Ttrpc__Request *req;
	struct method *m, *found = NULL;
	bool service_known = false;
	struct ttrpc_call *call;

	req = ttrpc__request__unpack(NULL, len, body);
	if (!req) {
		conn_respond(c, stream_id, TTRPC_INVALID_ARGUMENT,
			     "unmarshal request error: malformed ttrpc.Request", NULL, 0);
		return;
	}
	for (m = srv->methods; m; m = m->next) {
		if (strcmp(m->service, req->service))
			continue;
		service_known = true;
		if (!strcmp(m->method, req->method)) {
			found = m;
			break;
		}
	}
	if (!found) {
		char msg[512];

		if (service_known)
			snprintf(msg, sizeof(msg), "method %s", req->method);
		else
			snprintf(msg, sizeof(msg), "service %s", req->service);
		conn_respond(c, stream_id, TTRPC_UNIMPLEMENTED, msg, NULL, 0);
		ttrpc__request__free_unpacked(req, NULL);
		return;
	}
	/* Kept calls (Wait) cost memory until answered: a client gets a bounded number. */
	if (c->pending_calls >= srv->max_calls) {
		conn_respond(c, stream_id, TTRPC_RESOURCE_EXHAUSTED,
			     "too many calls in flight on this connection", NULL, 0);
		ttrpc__request__free_unpacked(req, NULL);
		return;
	}
	call = calloc(1, sizeof(*call));
	if (!call) {
		conn_respond(c, stream_id, TTRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
		ttrpc__request__free_unpacked(req, NULL);
		return;
	}
	call->srv = srv;
	call->conn_id = c->id;
	call->stream_id = stream_id;
	call->timeout_nano = req->timeout_nano;
	c->pending_calls++;
	found->fn(call, req->payload.data, req->payload.len, found->opaque);
	ttrpc__request__free_unpacked(req, NULL);
}

/* One whole frame within the size limit (containerd/ttrpc server.go's checks, in its order). */
static void handle_frame(struct conn *c, const struct ttrpc_header *h, const uint8_t *body)
{
	if (h->stream_id % 2 != 1) {
		conn_respond(c, h->stream_id, TTRPC_INVALID_ARGUMENT,
			     "StreamID must be odd for client initiated streams", NULL, 0);
		return;
	}
	if (h->type == TTRPC_TYPE_DATA) {
		/* No streaming methods are served, so no data stream is ever active. */
		conn_respond(c, h->stream_id, TTRPC_INVALID_ARGUMENT,
			     "StreamID is no longer active", NULL, 0);
		return;
	}
	if (h->type != TTRPC_TYPE_REQUEST)
		return; /* ignored for forward compatibility, as ttrpc does */
	if (h->stream_id <= c->last_stream_id) {
		conn_respond(c, h->stream_id, TTRPC_INVALID_ARGUMENT,
			     "StreamID cannot be re-used and must increment", NULL, 0);
		return;
	}
	c->last_stream_id = h->stream_id;
	dispatch_request(c, h->stream_id, body, h->length);
}

static void frame_reset(struct conn *c)
{
	c->hdr_got = 0;
	c->in_body = false;
	c->body_got = 0;
}

/* Consume up to len bytes of input: returns how many were used. */
static size_t conn_consume(struct conn *c, const uint8_t *p, size_t len)
{
	size_t used = 0, n;

	if (c->discard) {
		n = MIN(len, c->discard);
		c->discard -= n;
		if (!c->discard) {
			char msg[128];

			snprintf(msg, sizeof(msg),
				 "message length %u exceed maximum message size of %u", c->h.length,
				 TTRPC_MESSAGE_MAX);
			conn_respond(c, c->h.stream_id, TTRPC_RESOURCE_EXHAUSTED, msg, NULL, 0);
			frame_reset(c);
		}
		return n;
	}
	if (!c->in_body) {
		n = MIN(len, TTRPC_HEADER_LEN - c->hdr_got);
		memcpy(c->hdr + c->hdr_got, p, n);
		c->hdr_got += n;
		used = n;
		if (c->hdr_got < TTRPC_HEADER_LEN)
			return used;
		ttrpc_header_decode(c->hdr, &c->h);
		if (c->h.length > TTRPC_MESSAGE_MAX) {
			c->discard = c->h.length;
			return used;
		}
		c->in_body = true;
		p += n;
		len -= n;
	}
	n = MIN(len, c->h.length - c->body_got);
	if (c->body_got + n > c->body_cap) {
		size_t cap = MAX((size_t)TTRPC_BODY_INITIAL, c->body_cap * 2);
		uint8_t *b;

		cap = MIN(MAX(cap, c->body_got + n), (size_t)c->h.length);
		b = realloc(c->body, cap);
		if (!b) {
			ttrpc_conn_kill(c);
			return used + n;
		}
		c->body = b;
		c->body_cap = cap;
	}
	if (n)
		memcpy(c->body + c->body_got, p, n);
	c->body_got += n;
	used += n;
	if (c->body_got == c->h.length) {
		struct ttrpc_header h = c->h;

		frame_reset(c);
		handle_frame(c, &h, c->body);
		/* A big body buffer is not kept around for an idle connection. */
		if (c->body_cap > 64 * 1024) {
			free(c->body);
			c->body = NULL;
			c->body_cap = 0;
		}
	}
	return used;
}

void ttrpc_conn_readable(struct conn *c)
{
	uint8_t buf[16384];
	size_t budget = TTRPC_READ_BUDGET;

	while (budget && !c->src.dead && ttrpc_conn_backlog(c) < c->srv->max_output &&
	       !atomic_load(&c->srv->stopping)) {
		ssize_t n = recv(c->fd, buf, MIN(sizeof(buf), budget), MSG_DONTWAIT);
		size_t off = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				ttrpc_conn_kill(c);
			break;
		}
		if (n == 0) {
			/* Like ttrpc's server: the client is gone, so is the connection (what is
			 * queued gets one last try; deferred answers are dropped). */
			ttrpc_conn_flush(c);
			ttrpc_conn_kill(c);
			break;
		}
		budget -= n;
		while (off < (size_t)n && !c->src.dead)
			off += conn_consume(c, buf + off, n - off);
	}
	ttrpc_conn_update_events(c);
}

struct conn *ttrpc_conn_new(struct ttrpc_server *srv, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->src.kind = SOURCE_CONN;
	c->srv = srv;
	c->id = ++srv->next_conn_id;
	c->fd = fd;
	c->events = EPOLLIN;
	ev.data.ptr = &c->src;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

void ttrpc_conn_free(struct conn *c)
{
	close(c->fd);
	free(c->body);
	free(c->out);
	free(c);
}

/* Free what died during the last batch of events. */