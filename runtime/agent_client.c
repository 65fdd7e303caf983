/*
 * The host's agent client (agent_client.h): hybrid-vsock connect, HELLO, and request/reply by
 * id over one non-blocking stream with a deadline per call. Replies to requests that timed
 * out earlier arrive late and are dropped by id; anything else unexpected from the agent (a
 * reply of another type, an id from the future, a frame that does not decode) is a protocol
 * violation that marks the client broken. Errno values in the agent's error replies are
 * clamped to a real errno, so a hostile agent cannot turn a failure into a success. Every
 * guest message costs guest kernel time (docs/benchmarks.md): a connection's first request
 * rides with its CONNECT line, and requests that do not depend on each other go out together.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"
#include "agent_vsock.h"
#include "unix_path.h"

#ifndef STRATUS_VERSION
#define STRATUS_VERSION "dev"
#endif

#define CLIENT_ENTROPY_BYTES 64 /* sent by agent_client_connect() to a 1.2 agent */

void agent_client_init(struct agent_client *c, int timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	c->next_id = 1;
	agent_reader_init(&c->reader, AGENT_MAX_PAYLOAD);
}

void agent_client_destroy(struct agent_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	agent_reader_destroy(&c->reader);
	free(c->peer.software);
	c->peer.software = NULL;
	while (c->ev_count) {
		agent_msg_clear(&c->events[c->ev_head]);
		c->ev_head = (c->ev_head + 1) % AGENT_CLIENT_MAX_EVENTS;
		c->ev_count--;
	}
}

static int client_fail(struct agent_client *c, int r, const char *what)
{
	c->broken = true;
	snprintf(c->err, sizeof(c->err), "agent connection: %s: %s", what, strerror(-r));
	return r;
}

/* The next frame from the agent, decoded, by the deadline. */
static int client_recv(struct agent_client *c, struct agent_msg *m, int64_t deadline)
{
	for (;;) {
		int r = agent_reader_read(&c->reader, c->fd);

		if (r == 1) {
			r = agent_reader_take(&c->reader, m);
			return r < 0 ? client_fail(c, r, "undecodable frame from the agent") : 0;
		}
		if (r == 0)
			return client_fail(c, -ECONNRESET, "closed by the agent");
		if (r != -EAGAIN)
			return client_fail(c, r, "receiving");
		r = agent_vsock_wait(c->fd, POLLIN, deadline);
		if (r == -ETIMEDOUT) {
			snprintf(c->err, sizeof(c->err), "agent did not answer in time");
			return r;
		}
		if (r < 0)
			return client_fail(c, r, "poll");
	}
}

static void client_queue_event(struct agent_client *c, struct agent_msg *ev)
{
	if (c->ev_count == AGENT_CLIENT_MAX_EVENTS) {
		c->events_lost = true; /* exit records stay in the agent until acknowledged */
		agent_msg_clear(ev);
		return;
	}
	c->events[(c->ev_head + c->ev_count) % AGENT_CLIENT_MAX_EVENTS] = *ev;
	c->ev_count++;
}

/* A reply to a request that timed out before (ids only grow): drop it. */
static bool id_is_stale(uint32_t id, uint32_t current)
{
	return id != current && (uint32_t)(current - id) < (1u << 31);
}

/* Turn an error reply into a negative errno a hostile agent cannot make 0 or absurd. */
static int client_error_reply(struct agent_client *c, struct agent_msg *reply)
{
	uint32_t e = reply->u.error.errno_value;
	int r = (e > 0 && e < 4096) ? -(int)e : -EIO;

	snprintf(c->err, sizeof(c->err), "agent: %s: %s", agent_type_name(reply->type),
		 reply->u.error.message);
	agent_msg_clear(reply);
	return r;
}

static int client_wait_reply(struct agent_client *c, const struct agent_msg *req,
			     struct agent_msg *reply, int64_t deadline)
{
	for (;;) {
		int r = client_recv(c, reply, deadline);

		if (r < 0)
			return r;
		if (reply->flags == AGENT_FLAG_EVENT) {
			client_queue_event(c, reply);
			continue;
		}
		if (id_is_stale(reply->id, req->id)) {
			agent_msg_clear(reply);
			continue;
		}
		if (reply->id != req->id || reply->type != req->type) {
			agent_msg_clear(reply);
			return client_fail(c, -EPROTO, "reply does not match the request");
		}
		if (reply->flags & AGENT_FLAG_ERROR)
			return client_error_reply(c, reply);
		return 0;
	}
}

/* Give req the next id and encode it into buf (agent_buf_free it), with c->err on failure. */
static int client_encode(struct agent_client *c, struct agent_msg *req, struct agent_buf *buf)
{
	int r;

	req->flags = 0;
	req->id = c->next_id++;
	if (c->next_id == 0)
		c->next_id = 1;
	r = agent_msg_encode(req, buf);
	if (r < 0) {
		agent_buf_free(buf);
		snprintf(c->err, sizeof(c->err), "%s request: %s", agent_type_name(req->type),
			 strerror(-r));
	}
	return r;
}

/* Encode req (a fresh id) and send it whole before deadline. */
static int client_send(struct agent_client *c, struct agent_msg *req, int64_t deadline)
{
	struct agent_buf buf = { 0 };
	int r = client_encode(c, req, &buf);

	if (r < 0)
		return r;
	r = agent_vsock_send_all(c->fd, buf.data, buf.len, deadline);
	agent_buf_free(&buf);
	return r < 0 ? client_fail(c, r, "sending") : 0;
}

int agent_client_call(struct agent_client *c, struct agent_msg *req, struct agent_msg *reply,
		      int timeout_ms)
{
	int64_t deadline = agent_vsock_deadline(timeout_ms);
	int r;

	memset(reply, 0, sizeof(*reply));
	if (c->broken || c->fd < 0)
		return -ENOTCONN;
	r = client_send(c, req, deadline);
	if (r < 0)
		return r;
	return client_wait_reply(c, req, reply, deadline);
}

int agent_client_next_event(struct agent_client *c, struct agent_msg *ev, int timeout_ms)
{
	int64_t deadline = agent_vsock_deadline(timeout_ms);

	memset(ev, 0, sizeof(*ev));
	if (c->ev_count) {
		*ev = c->events[c->ev_head];
		c->ev_head = (c->ev_head + 1) % AGENT_CLIENT_MAX_EVENTS;
		c->ev_count--;
		return 0;
	}
	if (c->broken || c->fd < 0)
		return -ENOTCONN;
	for (;;) {
		int r = client_recv(c, ev, deadline);

		if (r < 0)
			return r;
		if (ev->flags == AGENT_FLAG_EVENT)
			return 0;
		if (!id_is_stale(ev->id, c->next_id)) {
			agent_msg_clear(ev);
			return client_fail(c, -EPROTO, "reply without a request");
		}
		agent_msg_clear(ev);
	}
}

static void hello_request(struct agent_msg *req)
{
	*req = (struct agent_msg){ .type = AGENT_HELLO };
	req->u.hello.major = AGENT_PROTO_MAJOR;
	req->u.hello.minor = AGENT_PROTO_MINOR;
	req->u.hello.software = "stratus " STRATUS_VERSION;
}

/* The agent's answer to our HELLO (req, already sent): its version must be one we speak. */
static int client_hello_reply(struct agent_client *c, const struct agent_msg *req, int64_t deadline)
{
	struct agent_msg reply;
	int r = client_wait_reply(c, req, &reply, deadline);

	if (r < 0) {
		char msg[AGENT_CLIENT_ERR_MAX - sizeof("handshake: ")];

		snprintf(msg, sizeof(msg), "%.*s", (int)sizeof(msg) - 1, c->err);
		snprintf(c->err, sizeof(c->err), "handshake: %s", msg);
		return r;
	}
	c->peer = reply.u.hello; /* take the strings */
	r = agent_version_check(&c->peer, c->err, sizeof(c->err));
	if (r < 0)
		c->broken = true;
	return r;
}

int agent_client_attach(struct agent_client *c, int fd)
{
	int64_t deadline = agent_vsock_deadline(c->timeout_ms);
	struct agent_msg req;
	int flags = fcntl(fd, F_GETFL);
	int r;

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		close(fd);
		return client_fail(c, -errno, "fcntl");
	}
	c->fd = fd;
	hello_request(&req);
	r = client_send(c, &req, deadline);
	if (r < 0)
		return r;
	return client_hello_reply(c, &req, deadline);
}

int agent_client_connect_plain(struct agent_client *c, const char *vsock_path)
{
	int64_t deadline = agent_vsock_deadline(c->timeout_ms);
	struct agent_buf buf = { 0 };
	struct agent_msg req;
	int fd, r;

	hello_request(&req);
	r = client_encode(c, &req, &buf);
	if (r < 0)
		return r;
	fd = agent_vsock_dial(vsock_path, c->err, sizeof(c->err));
	r = fd < 0 ? fd
		   : agent_vsock_send_connect(fd, AGENT_PORT_CONTROL, buf.data, buf.len, deadline);
	agent_buf_free(&buf);
	if (fd < 0)
		return fd;
	r = r ?: agent_vsock_read_ok(fd, deadline);
	if (r < 0) {
		agent_vsock_connect_error(r, vsock_path, AGENT_PORT_CONTROL, c->err,
					  sizeof(c->err));
		close(fd);
		return r;
	}
	c->fd = fd;
	return client_hello_reply(c, &req, deadline);
}

/*
 * Send reqs[0..n) back to back, then take their replies in order: one round trip to the guest
 * instead of n. On failure *failed is the request that failed (replies still on the way are
 * dropped later by id).
 */
static int client_call_all(struct agent_client *c, struct agent_msg *reqs, size_t n, size_t *failed)
{
	int64_t deadline = agent_vsock_deadline(c->timeout_ms);
	struct agent_msg reply;
	size_t i;
	int r = 0;

	*failed = 0;
	if (c->broken || c->fd < 0)
		return -ENOTCONN;
	for (i = 0; i < n; i++) {
		*failed = i;
		r = client_send(c, &reqs[i], deadline);
		if (r < 0)
			return r;
	}
	for (i = 0; i < n; i++) {
		*failed = i;
		r = client_wait_reply(c, &reqs[i], &reply, deadline);
		if (r < 0)
			return r;
		agent_msg_clear(&reply);
	}
	return 0;
}

int agent_client_connect(struct agent_client *c, const char *vsock_path)
{
	static const char *const what[] = { "set the guest clock", "add entropy to the guest" };
	struct agent_msg reqs[2] = { { .type = AGENT_SET_TIME }, { .type = AGENT_ADD_ENTROPY } };
	uint8_t seed[CLIENT_ENTROPY_BYTES];
	struct timespec ts;
	size_t n, failed;
	int r = agent_client_connect_plain(c, vsock_path);

	if (r < 0 || c->peer.minor < 1)
		return r;
	/* The guest has no RTC: give it our clock before anything is timestamped (1.1). */
	clock_gettime(CLOCK_REALTIME, &ts);
	reqs[0].u.set_time.realtime_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	n = 1;
	/* A guest restored from a snapshot shares its RNG state with its siblings (1.2). */
	if (c->peer.minor >= 2) {
		if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
			snprintf(c->err, sizeof(c->err), "getrandom for the guest's entropy: %s",
				 strerror(errno));
			return -errno;
		}
		reqs[1].u.add_entropy.data.v = seed;
		reqs[1].u.add_entropy.data.n = sizeof(seed);
		n = 2;
	}
	r = client_call_all(c, reqs, n, &failed);
	explicit_bzero(seed, sizeof(seed));
	if (r < 0) {
		char msg[AGENT_CLIENT_ERR_MAX - 32];

		snprintf(msg, sizeof(msg), "%.*s", (int)sizeof(msg) - 1, c->err);
		snprintf(c->err, sizeof(c->err), "%s: %s", what[failed], msg);
	}
	return r;
}

/* A request whose reply carries nothing the caller wants. */
static int call_simple(struct agent_client *c, struct agent_msg *req)
{
	struct agent_msg reply;
	int r = agent_client_call(c, req, &reply, c->timeout_ms);

	if (r == 0)
		agent_msg_clear(&reply);
	return r;
}

int agent_client_ping(struct agent_client *c)
{
	struct agent_msg req = { .type = AGENT_PING };

	return call_simple(c, &req);
}

static int call_pid(struct agent_client *c, struct agent_msg *req, uint32_t *pid)
{
	struct agent_msg reply;
	int r = agent_client_call(c, req, &reply, c->timeout_ms);

	if (r == 0 && pid)
		*pid = reply.u.pid.pid;
	return r;
}

int agent_client_create(struct agent_client *c, const struct agent_create *create, uint32_t *pid)
{
	struct agent_msg req = { .type = AGENT_CREATE, .u.create = *create };

	return call_pid(c, &req, pid);
}

int agent_client_exec(struct agent_client *c, const struct agent_exec *exec, uint32_t *pid)
{
	struct agent_msg req = { .type = AGENT_EXEC, .u.exec = *exec };

	return call_pid(c, &req, pid);
}

int agent_client_start(struct agent_client *c, const char *container_id)
{
	struct agent_msg req = { .type = AGENT_START };

	req.u.container.container_id = (char *)container_id;
	return call_simple(c, &req);
}

int agent_client_signal(struct agent_client *c, const char *container_id, const char *exec_id,
			int signal, uint32_t flags)
{
	struct agent_msg req = { .type = AGENT_SIGNAL };

	req.u.signal = (struct agent_signal){ (char *)container_id, (char *)exec_id,
					      (uint32_t)signal, flags };
	return call_simple(c, &req);
}

int agent_client_wait(struct agent_client *c, const char *container_id, const char *exec_id,
		      int timeout_ms, struct agent_msg *exit)
{
	struct agent_msg req = { .type = AGENT_WAIT };

	req.u.process = (struct agent_process_ref){ (char *)container_id, (char *)exec_id };
	return agent_client_call(c, &req, exit, timeout_ms);
}

int agent_client_ack_exit(struct agent_client *c, const char *container_id, const char *exec_id)
{
	struct agent_msg req = { .type = AGENT_ACK_EXIT };

	req.u.process = (struct agent_process_ref){ (char *)container_id, (char *)exec_id };
	return call_simple(c, &req);
}

int agent_client_resize(struct agent_client *c, const char *container_id, const char *exec_id,
			uint32_t rows, uint32_t cols)
{
	struct agent_msg req = { .type = AGENT_RESIZE };

	req.u.resize = (struct agent_resize){ (char *)container_id, (char *)exec_id, rows, cols };
	return call_simple(c, &req);
}

int agent_client_stats(struct agent_client *c, const char *container_id, struct agent_stats *out)
{
	struct agent_msg req = { .type = AGENT_STATS };
	struct agent_msg reply;
	int r;

	req.u.container.container_id = (char *)container_id;
	r = agent_client_call(c, &req, &reply, c->timeout_ms);
	if (r == 0)
		*out = reply.u.stats; /* only numbers: nothing to free */
	return r;
}

int agent_client_add_entropy(struct agent_client *c, const void *bytes, size_t len)
{
	struct agent_msg req = { .type = AGENT_ADD_ENTROPY };
	int r;

	if (len == 0 || len > AGENT_MAX_ENTROPY) {
		snprintf(c->err, sizeof(c->err), "ADD_ENTROPY: %zu bytes: send 1 to %d", len,
			 AGENT_MAX_ENTROPY);
		return -EINVAL;
	}
	req.u.add_entropy.data.v = (uint8_t *)bytes;
	req.u.add_entropy.data.n = (uint32_t)len;
	r = call_simple(c, &req);
	if (r < 0) {
		char msg[AGENT_CLIENT_ERR_MAX - sizeof("add entropy to the guest: ")];

		snprintf(msg, sizeof(msg), "%.*s", (int)sizeof(msg) - 1, c->err);
		snprintf(c->err, sizeof(c->err), "add entropy to the guest: %s", msg);
	}
	return r;
}

int agent_client_set_time(struct agent_client *c, uint64_t realtime_ns)
{
	struct agent_msg req = { .type = AGENT_SET_TIME };
	int r;

	req.u.set_time.realtime_ns = realtime_ns;
	r = call_simple(c, &req);
	if (r < 0) {
		char msg[AGENT_CLIENT_ERR_MAX - sizeof("set the guest clock: ")];

		snprintf(msg, sizeof(msg), "%.*s", (int)sizeof(msg) - 1, c->err);
		snprintf(c->err, sizeof(c->err), "set the guest clock: %s", msg);
	}
	return r;
}

int agent_client_update(struct agent_client *c, const char *container_id, const char *resources)
{
	struct agent_msg req = { .type = AGENT_UPDATE };

	req.u.update = (struct agent_update){ (char *)container_id, (char *)resources };
	return call_simple(c, &req);
}

int agent_client_delete(struct agent_client *c, const char *container_id, uint32_t flags)
{
	struct agent_msg req = { .type = AGENT_DELETE };

	req.u.del = (struct agent_delete){ (char *)container_id, flags };
	return call_simple(c, &req);
}

int agent_client_shutdown(struct agent_client *c)
{
	struct agent_msg req = { .type = AGENT_SHUTDOWN };

	return call_simple(c, &req);
}

/* A 1.3 request to an older agent would only get EOPNOTSUPP: say why before sending it. */
static int client_need_minor(struct agent_client *c, uint32_t minor, uint16_t type)
{
	if (c->peer.major == AGENT_PROTO_MAJOR && c->peer.minor >= minor)
		return 0;
	snprintf(c->err, sizeof(c->err),
		 "%s needs agent protocol %u.%u, the agent (%s) speaks %u.%u: use a matching "
		 "stratus-agent",
		 agent_type_name(type), AGENT_PROTO_MAJOR, minor,
		 c->peer.software ? c->peer.software : "?", c->peer.major, c->peer.minor);
	return -EOPNOTSUPP;
}

int agent_client_mount_share(struct agent_client *c, const char *tag, char **path)
{
	struct agent_msg req = { .type = AGENT_MOUNT_SHARE };
	struct agent_msg reply;
	int r = client_need_minor(c, 3, AGENT_MOUNT_SHARE);

	*path = NULL;
	if (r < 0)
		return r;
	if (!tag[0] || strlen(tag) > AGENT_MAX_TAG) {
		snprintf(c->err, sizeof(c->err), "MOUNT_SHARE: tag \"%.64s\": 1 to %d bytes", tag,
			 AGENT_MAX_TAG);
		return -EINVAL;
	}
	req.u.mount_share.tag = (char *)tag;
	r = agent_client_call(c, &req, &reply, c->timeout_ms);
	if (r < 0)
		return r;
	/* The path comes from the guest: bounded by the codec, and it must at least be one. */
	if (reply.u.share_path.path[0] != '/') {
		agent_msg_clear(&reply);
		snprintf(c->err, sizeof(c->err), "agent: MOUNT_SHARE %s: not an absolute path",
			 tag);
		return -EPROTO;
	}
	*path = reply.u.share_path.path; /* take the string */
	reply.u.share_path.path = NULL;
	return 0;
}

int agent_client_freeze(struct agent_client *c, const char *container_id, bool frozen)
{
	struct agent_msg req = { .type = AGENT_FREEZE };
	int r = client_need_minor(c, 3, AGENT_FREEZE);

	if (r < 0)
		return r;
	req.u.freeze = (struct agent_freeze){ (char *)container_id, frozen ? 1 : 0 };
	return call_simple(c, &req);
}

int agent_client_network(struct agent_client *c, const struct agent_network *n)
{
	struct agent_msg req = { .type = AGENT_NETWORK };
	int r = client_need_minor(c, 4, AGENT_NETWORK);

	if (r < 0)
		return r;
	req.u.network = *n;
	return call_simple(c, &req);
}

static const char *const stream_names[AGENT_STREAM_NR] = { "stdin", "stdout", "stderr", "pty" };

/* Dial the stdio port and send CONNECT with STREAM_ATTACH behind it; *fd is the stream. */
static int stream_begin(const char *vsock_path, const char *container_id, const char *exec_id,
			enum agent_stream stream, int64_t deadline, int *fd, char *err,
			size_t err_len)
{
	struct agent_msg req = { .type = AGENT_STREAM_ATTACH, .id = 1 };
	struct agent_buf buf = { 0 };
	int r;

	req.u.attach =
		(struct agent_stream_attach){ (char *)container_id, (char *)exec_id, stream };
	r = agent_msg_encode(&req, &buf);
	if (r < 0) {
		agent_buf_free(&buf);
		snprintf(err, err_len, "STREAM_ATTACH request: %s", strerror(-r));
		return r;
	}
	*fd = agent_vsock_dial(vsock_path, err, err_len);
	r = *fd < 0 ? *fd
		    : agent_vsock_send_connect(*fd, AGENT_PORT_STDIO, buf.data, buf.len, deadline);
	agent_buf_free(&buf);
	if (r < 0 && *fd >= 0)
		agent_vsock_connect_error(r, vsock_path, AGENT_PORT_STDIO, err, err_len);
	return r;
}

/* The device's OK, then the agent's reply to STREAM_ATTACH (id 1) on fd. */
static int stream_finish(const char *vsock_path, int fd, int64_t deadline, int timeout_ms,
			 char *err, size_t err_len)
{
	struct agent_msg req = { .type = AGENT_STREAM_ATTACH, .id = 1 }, reply;
	struct agent_client c;
	int r = agent_vsock_read_ok(fd, deadline);

	if (r < 0) {
		agent_vsock_connect_error(r, vsock_path, AGENT_PORT_STDIO, err, err_len);
		return r;
	}
	agent_client_init(&c, timeout_ms);
	c.fd = fd;
	/* The reader stops at the reply's last byte: the rest of the stream is stdio. */
	r = client_wait_reply(&c, &req, &reply, deadline);
	if (r == 0)
		agent_msg_clear(&reply);
	else
		snprintf(err, err_len, "%s", c.err);
	c.fd = -1;
	agent_client_destroy(&c);
	return r;
}

int agent_streams_open(const char *vsock_path, const char *container_id, const char *exec_id,
		       uint32_t stdio, int timeout_ms, int *fds, char *err, size_t err_len)
{
	int64_t deadline = agent_vsock_deadline(timeout_ms);
	char msg[AGENT_CLIENT_ERR_MAX];
	int s, failed = 0, r = 0;

	for (s = 0; s < AGENT_STREAM_NR; s++)
		fds[s] = -1;
	if (!stdio || stdio >> AGENT_STREAM_NR) {
		snprintf(err, err_len, "stdio streams: bad set 0x%x", stdio);
		return -EINVAL;
	}
	/*
	 * Every CONNECT first, each with its STREAM_ATTACH, then the answers: the guest takes the
	 * connections in one go instead of one round trip after another.
	 */
	for (s = 0; s < AGENT_STREAM_NR && r == 0; s++)
		if (stdio & AGENT_STDIO_BIT(s))
			r = stream_begin(vsock_path, container_id, exec_id, s, deadline, &fds[s],
					 msg, sizeof(msg));
	failed = s - 1;
	for (s = 0; s < AGENT_STREAM_NR && r == 0; s++)
		if (stdio & AGENT_STDIO_BIT(s))
			r = stream_finish(vsock_path, fds[failed = s], deadline, timeout_ms, msg,
					  sizeof(msg));
	if (r == 0)
		return 0;
	snprintf(err, err_len, "%s: %s", stream_names[failed], msg);
	for (s = 0; s < AGENT_STREAM_NR; s++) {
		if (fds[s] >= 0)
			close(fds[s]);
		fds[s] = -1;
	}
	return r;
}

int agent_stream_open(const char *vsock_path, const char *container_id, const char *exec_id,
		      enum agent_stream stream, int timeout_ms, char *err, size_t err_len)
{
	int fds[AGENT_STREAM_NR];
	int r;

	if ((unsigned int)stream >= AGENT_STREAM_NR) {
		snprintf(err, err_len, "stdio stream %d: no such stream", (int)stream);
		return -EINVAL;
	}
	r = agent_streams_open(vsock_path, container_id, exec_id, AGENT_STDIO_BIT(stream),
			       timeout_ms, fds, err, err_len);
	return r < 0 ? r : fds[stream];
}
