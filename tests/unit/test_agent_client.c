/*
 * Unit tests for the host's agent client (runtime/agent_client.c) against a fake agent: a
 * thread speaking the protocol through the same codec on a socketpair, or behind a fake
 * hybrid-vsock listener on a Unix socket (CONNECT/OK). Covered: the handshake and a major
 * version mismatch, every typed request, events that arrive while a request waits, an
 * agent error reply, a request that times out and its late reply, and a hostile agent
 * (wrong ids, errno 0, garbage, an oversized frame, a hang-up). Also the vsock CONNECT
 * line and a stdio stream whose raw bytes follow the STREAM_ATTACH reply in the same write,
 * the three stdio streams opened together, a later connection's handshake without SET_TIME
 * or ADD_ENTROPY, and the 1.3 requests (MOUNT_SHARE, FREEZE), refused before sending to an older agent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_client.h"

enum mode {
	NORMAL,
	MAJOR2,
	REFUSE_HELLO,
	FUTURE_ID,
	ERRNO_ZERO,
	GARBAGE,
	OVERSIZED,
	HANG_UP,
	SLOW_FIRST_PING,
	REFUSE_SET_TIME,
};

struct fake {
	enum mode mode;
	int fd, listen_fd;
	const char *vsock_answer; /* NULL: close after CONNECT */
	char connect_line[64];
	bool early; /* the first request came in the CONNECT line's write */
	unsigned int pings, resize_rows, create_mounts, set_times;
	unsigned int minor; /* HELLO's reply: 0 answers 1.4 */
	unsigned int entropy_calls, entropy_len;
	unsigned int shares, freezes, frozen; /* 1.3 requests seen, FREEZE's last flag */
	char freeze_id[64];
	unsigned int networks;	 /* 1.4 */
	char network_name[16];	 /* NETWORK's first interface */
	uint32_t network_routes; /* and its route count */
	uint8_t entropy[AGENT_MAX_ENTROPY];
	uint64_t set_time_ns;
	char create_rootfs[64], update_resources[64];
	pthread_t thread;
};

static void fake_send(struct fake *f, const struct agent_msg *m)
{
	struct agent_buf b = { 0 };

	if (agent_msg_encode(m, &b) == 0 && write(f->fd, b.data, b.len) < 0)
		perror("fake agent: write");
	agent_buf_free(&b);
}

static void fake_reply(struct fake *f, const struct agent_msg *req, struct agent_msg *reply)
{
	reply->type = req->type;
	reply->flags = AGENT_FLAG_REPLY;
	reply->id = req->id;
	fake_send(f, reply);
}

static void fake_error(struct fake *f, const struct agent_msg *req, int e, const char *msg)
{
	struct agent_buf b = { 0 };

	agent_encode_error(req->type, req->id, e, msg, &b);
	if (write(f->fd, b.data, b.len) < 0)
		perror("fake agent: write");
	agent_buf_free(&b);
}

/* PING in the hostile modes. Returns false to hang up. */
static bool fake_ping(struct fake *f, const struct agent_msg *req)
{
	struct agent_msg reply = { 0 };
	static const uint8_t garbage[AGENT_HDR_LEN] = "not a frame at!";
	uint8_t big[AGENT_HDR_LEN];

	f->pings++;
	switch (f->mode) {
	case FUTURE_ID:
		reply = (struct agent_msg){ .type = AGENT_PING,
					    .flags = AGENT_FLAG_REPLY,
					    .id = req->id + 5 };
		fake_send(f, &reply);
		return true;
	case ERRNO_ZERO:
		fake_error(f, req, 0, "all good, honest");
		return true;
	case GARBAGE:
		return write(f->fd, garbage, sizeof(garbage)) > 0;
	case OVERSIZED:
		agent_header_encode(&(struct agent_header){ AGENT_MAGIC, AGENT_PING,
							    AGENT_FLAG_REPLY, req->id,
							    AGENT_MAX_PAYLOAD + 1 },
				    big);
		return write(f->fd, big, sizeof(big)) > 0;
	case HANG_UP:
		return false;
	case SLOW_FIRST_PING:
		if (f->pings == 1)
			usleep(300 * 1000);
		break;
	default:
		break;
	}
	fake_reply(f, req, &reply);
	return true;
}

static void fake_event_exit(struct fake *f)
{
	struct agent_msg ev = { .type = AGENT_EVENT_EXIT, .flags = AGENT_FLAG_EVENT };

	ev.u.exit =
		(struct agent_exit){ "c1", "e1", 77, 9, AGENT_EXIT_SIGNALED | AGENT_EXIT_OOM, 1 };
	fake_send(f, &ev);
}

/* One request; false to hang up. */
static bool fake_handle(struct fake *f, struct agent_msg *req)
{
	struct agent_msg reply = { 0 };

	switch (req->type) {
	case AGENT_HELLO:
		if (f->mode == REFUSE_HELLO) {
			fake_error(f, req, EPROTONOSUPPORT, "agent speaks 7.0");
			return true;
		}
		reply.u.hello = (struct agent_hello){ f->mode == MAJOR2 ? 2 : 1,
						      f->minor ? f->minor : 4, "fake-agent" };
		break;
	case AGENT_PING:
		return fake_ping(f, req);
	case AGENT_CREATE:
		f->create_mounts = req->u.create.mounts.n;
		snprintf(f->create_rootfs, sizeof(f->create_rootfs), "%s",
			 req->u.create.rootfs_source);
		reply.u.pid.pid = 42;
		break;
	case AGENT_START: {
		struct agent_msg ev = { .type = AGENT_EVENT_OOM, .flags = AGENT_FLAG_EVENT };

		ev.u.oom = (struct agent_oom){ "c1", 1 };
		fake_send(f, &ev); /* an event before the reply: the client queues it */
		break;
	}
	case AGENT_EXEC:
		reply.u.pid.pid = 77;
		break;
	case AGENT_SIGNAL:
		if (strcmp(req->u.signal.exec_id, "gone") == 0) {
			fake_error(f, req, ESRCH, "signal: no such process");
			return true;
		}
		break;
	case AGENT_WAIT:
		fake_event_exit(f);
		reply.u.exit = (struct agent_exit){ "c1", "e1", 77, 9, AGENT_EXIT_SIGNALED, 1 };
		break;
	case AGENT_RESIZE:
		f->resize_rows = req->u.resize.rows;
		break;
	case AGENT_ADD_ENTROPY:
		f->entropy_calls++;
		f->entropy_len = req->u.add_entropy.data.n;
		memcpy(f->entropy, req->u.add_entropy.data.v, f->entropy_len);
		break;
	case AGENT_SET_TIME:
		f->set_times++;
		f->set_time_ns = req->u.set_time.realtime_ns;
		if (f->mode == REFUSE_SET_TIME) {
			fake_error(f, req, EPERM, "settimeofday: Operation not permitted");
			return true;
		}
		break;
	case AGENT_UPDATE:
		snprintf(f->update_resources, sizeof(f->update_resources), "%s",
			 req->u.update.resources);
		break;
	case AGENT_MOUNT_SHARE: {
		char path[128];

		f->shares++;
		if (!strcmp(req->u.mount_share.tag, "nosuch")) {
			fake_error(f, req, ENOENT, "MOUNT_SHARE nosuch: mount: No such device");
			return true;
		}
		/* A hostile agent's answer that is no absolute path. */
		snprintf(path, sizeof(path), "%s%s",
			 strcmp(req->u.mount_share.tag, "relative") ? "/run/stratus-shares/" : "",
			 req->u.mount_share.tag);
		reply.u.share_path.path = path;
		fake_reply(f, req, &reply);
		return true;
	}
	case AGENT_FREEZE:
		f->freezes++;
		f->frozen = req->u.freeze.frozen;
		snprintf(f->freeze_id, sizeof(f->freeze_id), "%s", req->u.freeze.container_id);
		break;
	case AGENT_NETWORK:
		f->networks++;
		if (req->u.network.ifaces.n)
			snprintf(f->network_name, sizeof(f->network_name), "%s",
				 req->u.network.ifaces.v[0].name);
		f->network_routes = req->u.network.routes.n;
		if (req->u.network.ifaces.n && !strcmp(req->u.network.ifaces.v[0].name, "eth9")) {
			fake_error(f, req, ENODEV, "NETWORK: interfaces[0] (eth9): no NIC");
			return true;
		}
		break;
	case AGENT_STATS:
		reply.u.stats.mem_usage = 4096;
		reply.u.stats.pids_limit = AGENT_STATS_NO_LIMIT;
		break;
	case AGENT_SHUTDOWN:
		fake_reply(f, req, &reply);
		return false;
	case AGENT_STREAM_ATTACH: {
		struct agent_buf b = { 0 };

		/* The reply and the first stdout bytes in one write. */
		reply = (struct agent_msg){ .type = req->type,
					    .flags = AGENT_FLAG_REPLY,
					    .id = req->id };
		agent_msg_encode(&reply, &b);
		if (write(f->fd, b.data, b.len) < 0 || write(f->fd, "hello stdout", 12) < 0)
			perror("fake agent: write");
		agent_buf_free(&b);
		return false;
	}
	default:
		break;
	}
	fake_reply(f, req, &reply);
	return true;
}

/* The fake hybrid-vsock device: the CONNECT line, then the answer. */
static bool fake_vsock_accept(struct fake *f)
{
	size_t len = 0;

	f->fd = accept(f->listen_fd, NULL, NULL);
	if (f->fd < 0)
		return false;
	while (len + 1 < sizeof(f->connect_line) && read(f->fd, f->connect_line + len, 1) == 1)
		if (f->connect_line[len++] == '\n')
			break;
	f->early = poll(&(struct pollfd){ .fd = f->fd, .events = POLLIN }, 1, 0) == 1;
	if (!f->vsock_answer)
		return false;
	return write(f->fd, f->vsock_answer, strlen(f->vsock_answer)) > 0;
}

static void *fake_run(void *opaque)
{
	struct fake *f = opaque;
	struct agent_reader r;

	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	if (f->listen_fd >= 0 && !fake_vsock_accept(f))
		goto out;
	for (;;) {
		struct agent_msg req;
		bool more;
		int e = agent_reader_read(&r, f->fd);

		if (e != 1)
			break;
		e = agent_reader_take(&r, &req);
		if (e == -ENOMSG) {
			fake_error(f, &req, EOPNOTSUPP, "unknown request type");
			continue;
		}
		if (e < 0)
			break;
		more = fake_handle(f, &req);
		agent_msg_clear(&req);
		if (!more)
			break;
	}
out:
	agent_reader_destroy(&r);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	return NULL;
}

/* A client attached to a fake agent over a socketpair; minor: its HELLO's (0: 4). */
static int start_pair_minor(struct fake *f, struct agent_client *c, enum mode mode, int timeout_ms,
			    unsigned int minor)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->minor = minor;
	f->listen_fd = -1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->fd = sv[1];
	assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
	agent_client_init(c, timeout_ms);
	return agent_client_attach(c, sv[0]);
}

static int start_pair(struct fake *f, struct agent_client *c, enum mode mode, int timeout_ms)
{
	return start_pair_minor(f, c, mode, timeout_ms, 0);
}

static void stop(struct fake *f, struct agent_client *c)
{
	agent_client_destroy(c); /* the fake sees end of stream */
	pthread_join(f->thread, NULL);
}

static void test_handshake(void **state)
{
	struct fake f;
	struct agent_client c;

	(void)state;
	assert_int_equal(start_pair(&f, &c, NORMAL, 2000), 0);
	assert_int_equal(c.peer.major, 1);
	assert_int_equal(c.peer.minor, 4);
	assert_string_equal(c.peer.software, "fake-agent");
	assert_int_equal(agent_client_ping(&c), 0);
	stop(&f, &c);
}

static void test_version_mismatch(void **state)
{
	struct fake f;
	struct agent_client c;

	(void)state;
	assert_int_equal(start_pair(&f, &c, MAJOR2, 2000), -EPROTONOSUPPORT);
	assert_non_null(strstr(c.err, "speaks 2.4"));
	assert_int_equal(agent_client_ping(&c), -ENOTCONN);
	stop(&f, &c);

	assert_int_equal(start_pair(&f, &c, REFUSE_HELLO, 2000), -EPROTONOSUPPORT);
	assert_string_equal(c.err, "handshake: agent: HELLO: agent speaks 7.0");
	stop(&f, &c);
}

static void test_requests_and_events(void **state)
{
	struct agent_mount m = { "share0/data", "/data", "bind", { NULL, 0 } };
	struct agent_create create = { "c1", AGENT_ROOTFS_VIRTIOFS, "rootfs0", "", "", 0, { &m, 1 },
				       "{}" };
	struct agent_exec exec = { "c1", "e1", 0, "{\"args\":[\"true\"]}" };
	struct agent_stats stats;
	struct agent_msg exit, ev;
	struct fake f;
	struct agent_client c;
	uint32_t pid = 0;

	(void)state;
	assert_int_equal(start_pair(&f, &c, NORMAL, 2000), 0);
	assert_int_equal(agent_client_create(&c, &create, &pid), 0);
	assert_int_equal(pid, 42);
	assert_int_equal(agent_client_start(&c, "c1"), 0);
	assert_int_equal(agent_client_exec(&c, &exec, &pid), 0);
	assert_int_equal(pid, 77);
	assert_int_equal(agent_client_signal(&c, "c1", "e1", 15, 0), 0);
	assert_int_equal(agent_client_signal(&c, "c1", "gone", 15, 0), -ESRCH);
	assert_string_equal(c.err, "agent: SIGNAL: signal: no such process");
	assert_int_equal(agent_client_resize(&c, "c1", "e1", 50, 132), 0);
	assert_int_equal(agent_client_wait(&c, "c1", "e1", -1, &exit), 0);
	assert_int_equal(exit.u.exit.status, 9);
	assert_string_equal(exit.u.exit.exec_id, "e1");
	agent_msg_clear(&exit);
	assert_int_equal(agent_client_ack_exit(&c, "c1", "e1"), 0);
	assert_int_equal(agent_client_stats(&c, "c1", &stats), 0);
	assert_int_equal(stats.mem_usage, 4096);
	assert_int_equal(agent_client_update(&c, "c1", "{\"pids\": {\"limit\": 5}}"), 0);
	assert_int_equal(agent_client_delete(&c, "c1", AGENT_DELETE_FORCE), 0);

	/* The events that came in while START and WAIT waited, in order. */
	assert_int_equal(agent_client_next_event(&c, &ev, 0), 0);
	assert_int_equal(ev.type, AGENT_EVENT_OOM);
	assert_string_equal(ev.u.oom.container_id, "c1");
	agent_msg_clear(&ev);
	assert_int_equal(agent_client_next_event(&c, &ev, 0), 0);
	assert_int_equal(ev.type, AGENT_EVENT_EXIT);
	assert_int_equal(ev.u.exit.flags, AGENT_EXIT_SIGNALED | AGENT_EXIT_OOM);
	agent_msg_clear(&ev);
	assert_int_equal(agent_client_next_event(&c, &ev, 50), -ETIMEDOUT);
	assert_false(c.broken);

	assert_int_equal(agent_client_shutdown(&c), 0);
	stop(&f, &c);
	assert_int_equal(f.create_mounts, 1);
	assert_string_equal(f.create_rootfs, "rootfs0");
	assert_int_equal(f.resize_rows, 50);
	assert_string_equal(f.update_resources, "{\"pids\": {\"limit\": 5}}");
	assert_int_equal(f.set_times, 0); /* attach does not set the clock; connect does */
}

/* 1.3: MOUNT_SHARE and FREEZE to a 1.3 agent, and refused before sending to a 1.2 one. */
static void test_pod_requests(void **state)
{
	struct fake f;
	struct agent_client c;
	char *path = (char *)"unset";

	(void)state;
	assert_int_equal(start_pair(&f, &c, NORMAL, 2000), 0);
	assert_int_equal(agent_client_mount_share(&c, "m3", &path), 0);
	assert_string_equal(path, "/run/stratus-shares/m3");
	free(path);
	assert_int_equal(agent_client_mount_share(&c, "nosuch", &path), -ENOENT);
	assert_null(path);
	assert_string_equal(c.err, "agent: MOUNT_SHARE: MOUNT_SHARE nosuch: mount: No such device");
	assert_int_equal(agent_client_mount_share(&c, "relative", &path), -EPROTO);
	assert_null(path);
	assert_non_null(strstr(c.err, "not an absolute path"));
	assert_false(c.broken);
	assert_int_equal(agent_client_freeze(&c, "member1", true), 0);
	assert_int_equal(f.frozen, 1);
	assert_int_equal(agent_client_freeze(&c, "member1", false), 0);
	assert_int_equal(agent_client_ping(&c), 0); /* ordered after the fake's updates */
	assert_int_equal(f.frozen, 0);
	assert_string_equal(f.freeze_id, "member1");
	stop(&f, &c);
	assert_int_equal(f.shares, 3);
	assert_int_equal(f.freezes, 2);

	/* A 1.2 agent does not know them: a clear error, and nothing on the wire. */
	assert_int_equal(start_pair_minor(&f, &c, NORMAL, 2000, 2), 0);
	assert_int_equal(agent_client_mount_share(&c, "m3", &path), -EOPNOTSUPP);
	assert_null(path);
	assert_string_equal(c.err, "MOUNT_SHARE needs agent protocol 1.3, the agent (fake-agent) "
				   "speaks 1.2: use a matching stratus-agent");
	assert_int_equal(agent_client_freeze(&c, "member1", true), -EOPNOTSUPP);
	assert_non_null(strstr(c.err, "FREEZE needs agent protocol 1.3"));
	assert_false(c.broken);
	assert_int_equal(agent_client_ping(&c), 0);
	stop(&f, &c);
	assert_int_equal(f.shares, 0);
	assert_int_equal(f.freezes, 0);
}

/* 1.4: NETWORK's body reaches the agent, its error comes back; refused to a 1.3 agent. */
static void test_network(void **state)
{
	uint8_t mac[AGENT_NET_MAC_LEN] = { 0x02, 0, 0, 0, 0, 7 };
	struct agent_net_iface iface = { { mac, AGENT_NET_MAC_LEN }, "eth0", 1500 };
	struct agent_net_route routes[2] = { { 0, 0, 0, 0x0a000001, 0 },
					     { 0, 0x0a000000, 8, 0, 0 } };
	struct agent_network n = { { &iface, 1 }, { NULL, 0 }, { routes, 2 } };
	struct fake f;
	struct agent_client c;

	(void)state;
	assert_int_equal(start_pair(&f, &c, NORMAL, 2000), 0);
	assert_int_equal(agent_client_network(&c, &n), 0);
	iface.name = "eth9";
	assert_int_equal(agent_client_network(&c, &n), -ENODEV);
	assert_string_equal(c.err, "agent: NETWORK: NETWORK: interfaces[0] (eth9): no NIC");
	assert_false(c.broken);
	stop(&f, &c);
	assert_int_equal(f.networks, 2);
	assert_string_equal(f.network_name, "eth9");
	assert_int_equal(f.network_routes, 2);

	assert_int_equal(start_pair_minor(&f, &c, NORMAL, 2000, 3), 0);
	assert_int_equal(agent_client_network(&c, &n), -EOPNOTSUPP);
	assert_string_equal(c.err, "NETWORK needs agent protocol 1.4, the agent (fake-agent) "
				   "speaks 1.3: use a matching stratus-agent");
	assert_int_equal(agent_client_ping(&c), 0);
	stop(&f, &c);
	assert_int_equal(f.networks, 0);
}

/* A request that times out; its late reply is dropped when the next one is read. */
static void test_timeout_and_late_reply(void **state)
{
	struct fake f;
	struct agent_client c;

	(void)state;
	assert_int_equal(start_pair(&f, &c, SLOW_FIRST_PING, 100), 0);
	assert_int_equal(agent_client_ping(&c), -ETIMEDOUT);
	assert_false(c.broken);
	c.timeout_ms = 2000;
	assert_int_equal(agent_client_ping(&c), 0);
	assert_int_equal(f.pings, 2);
	stop(&f, &c);
}

static void test_hostile_agent(void **state)
{
	static const struct {
		enum mode mode;
		int expect;
	} cases[] = {
		{ FUTURE_ID, -EPROTO },	  { ERRNO_ZERO, -EIO },	    { GARBAGE, -EPROTO },
		{ OVERSIZED, -EMSGSIZE }, { HANG_UP, -ECONNRESET },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f;
		struct agent_client c;

		assert_int_equal(start_pair(&f, &c, cases[i].mode, 2000), 0);
		assert_int_equal(agent_client_ping(&c), cases[i].expect);
		if (cases[i].mode != ERRNO_ZERO) {
			assert_true(c.broken);
			assert_int_equal(agent_client_ping(&c), -ENOTCONN);
		}
		stop(&f, &c);
	}
}

/* A fake vsock device listening on a Unix socket; serves the agent protocol after OK. */
static void start_vsock(struct fake *f, char *path, size_t path_len, const char *answer)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->vsock_answer = answer;
	snprintf(path, path_len, "/tmp/stratus-agent-client-test.%d", getpid());
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	unlink(path);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(f->listen_fd, 4), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void stop_vsock(struct fake *f, char *path)
{
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	unlink(path);
}

static void test_vsock_connect(void **state)
{
	struct agent_client c;
	struct fake f;
	char path[108], err[256], long_path[200];
	int fd;

	(void)state;
	start_vsock(&f, path, sizeof(path), "OK 1073741824\n");
	agent_client_init(&c, 2000);
	struct timespec before, after;
	clock_gettime(CLOCK_REALTIME, &before);
	assert_int_equal(agent_client_connect(&c, path), 0);
	clock_gettime(CLOCK_REALTIME, &after);
	assert_string_equal(f.connect_line, "CONNECT 1024\n");
	assert_int_equal(agent_client_ping(&c), 0);
	agent_client_destroy(&c);
	stop_vsock(&f, path);
	/* The fake speaks 1.4: connect sent it our clock, right after HELLO. */
	assert_int_equal(f.set_times, 1);
	assert_true(f.set_time_ns >= (uint64_t)before.tv_sec * 1000000000u + before.tv_nsec);
	assert_true(f.set_time_ns <= (uint64_t)after.tv_sec * 1000000000u + after.tv_nsec);
	/* And 64 fresh random bytes (1.2): not all zero, different on the next connect. */
	uint8_t first[64], zero[64] = { 0 };

	assert_int_equal(f.entropy_calls, 1);
	assert_int_equal(f.entropy_len, 64);
	assert_memory_not_equal(f.entropy, zero, 64);
	memcpy(first, f.entropy, 64);
	start_vsock(&f, path, sizeof(path), "OK 1073741824\n");
	agent_client_init(&c, 2000);
	assert_int_equal(agent_client_connect(&c, path), 0);
	agent_client_destroy(&c);
	stop_vsock(&f, path);
	assert_int_equal(f.entropy_calls, 1);
	assert_memory_not_equal(f.entropy, first, 64);
	/* A 1.1 agent gets the clock but no ADD_ENTROPY, which it would not know. */
	start_vsock(&f, path, sizeof(path), "OK 1073741824\n");
	f.minor = 1;
	agent_client_init(&c, 2000);
	assert_int_equal(agent_client_connect(&c, path), 0);
	assert_int_equal(agent_client_ping(&c), 0);
	agent_client_destroy(&c);
	stop_vsock(&f, path);
	assert_int_equal(f.set_times, 1);
	assert_int_equal(f.entropy_calls, 0);
	/*
	 * SET_TIME and ADD_ENTROPY go out together: a refused SET_TIME is reported as such, and
	 * ADD_ENTROPY's reply, still on its way, does not confuse the next request.
	 */
	start_vsock(&f, path, sizeof(path), "OK 1073741824\n");
	f.mode = REFUSE_SET_TIME;
	agent_client_init(&c, 2000);
	assert_int_equal(agent_client_connect(&c, path), -EPERM);
	assert_non_null(strstr(c.err, "set the guest clock: "));
	assert_non_null(strstr(c.err, "settimeofday"));
	assert_int_equal(agent_client_ping(&c), 0);
	agent_client_destroy(&c);
	stop_vsock(&f, path);
	assert_int_equal(f.entropy_calls, 1);
	assert_int_equal(f.pings, 1);
	/* Bad lengths never reach the wire. */
	agent_client_init(&c, 2000);
	assert_int_equal(agent_client_add_entropy(&c, zero, 0), -EINVAL);
	assert_non_null(strstr(c.err, "ADD_ENTROPY"));
	agent_client_destroy(&c);

	start_vsock(&f, path, sizeof(path), NULL); /* the guest RSTs: the device hangs up */
	assert_int_equal(agent_vsock_connect(path, 1024, 2000, err, sizeof(err)), -ECONNREFUSED);
	assert_non_null(strstr(err, "nothing listens on guest vsock port 1024"));
	stop_vsock(&f, path);

	start_vsock(&f, path, sizeof(path), "NOPE\n");
	assert_int_equal(agent_vsock_connect(path, 1024, 2000, err, sizeof(err)), -EPROTO);
	stop_vsock(&f, path);

	assert_int_equal(agent_vsock_connect(path, 1024, 2000, err, sizeof(err)), -ENOENT);
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	fd = agent_vsock_connect(long_path, 1024, 2000, err, sizeof(err));
	assert_int_equal(fd, -ENAMETOOLONG);
}

static void test_stream_open(void **state)
{
	struct fake f;
	char path[108], err[256], buf[32] = "";
	ssize_t n;
	int fd;

	(void)state;
	start_vsock(&f, path, sizeof(path), "OK 1073741825\n");
	fd = agent_stream_open(path, "c1", "e1", AGENT_STREAM_STDOUT, 2000, err, sizeof(err));
	assert_true(fd >= 0);
	assert_string_equal(f.connect_line, "CONNECT 1025\n");
	stop_vsock(&f, path); /* the fake has written everything and closed */
	n = read(fd, buf, sizeof(buf) - 1);
	assert_int_equal(n, 12);
	assert_string_equal(buf, "hello stdout");
	close(fd);
}

/*
 * A later connection to a VM (the CLI's verbs, relays): HELLO alone, sent with the CONNECT
 * line, and the same version check; no SET_TIME or ADD_ENTROPY.
 */
static void test_connect_plain(void **state)
{
	struct agent_client c;
	struct fake f;
	char path[108];

	(void)state;
	start_vsock(&f, path, sizeof(path), "OK 1073741824\n");
	agent_client_init(&c, 2000);
	assert_int_equal(agent_client_connect_plain(&c, path), 0);
	assert_int_equal(c.peer.minor, 4);
	assert_int_equal(agent_client_ping(&c), 0);
	agent_client_destroy(&c);
	stop_vsock(&f, path);
	assert_string_equal(f.connect_line, "CONNECT 1024\n");
	assert_true(f.early);
	assert_int_equal(f.pings, 1);
	assert_int_equal(f.set_times, 0);
	assert_int_equal(f.entropy_calls, 0);

	start_vsock(&f, path, sizeof(path), "OK 1073741824\n");
	f.mode = MAJOR2;
	agent_client_init(&c, 2000);
	assert_int_equal(agent_client_connect_plain(&c, path), -EPROTONOSUPPORT);
	assert_true(c.broken);
	agent_client_destroy(&c);
	stop_vsock(&f, path);

	start_vsock(&f, path, sizeof(path), NULL);
	agent_client_init(&c, 2000);
	assert_int_equal(agent_client_connect_plain(&c, path), -ECONNREFUSED);
	assert_non_null(strstr(c.err, "nothing listens on guest vsock port 1024"));
	agent_client_destroy(&c);
	stop_vsock(&f, path);
}

/* A fake stdio port taking n connections before it answers any (as a busy guest may). */
struct fake_streams {
	int listen_fd, refuse; /* refuse: the stream answered with an error, -1: none */
	unsigned int n, accepted, early, send_failed;
	uint32_t attached; /* AGENT_STDIO_BIT()s of the STREAM_ATTACHs seen */
	char exec_id[16];
	pthread_t thread;
};

static void fake_streams_answer(struct fake_streams *fs, int fd)
{
	static const char *const names[] = { "stdin", "stdout", "stderr", "pty" };
	struct agent_msg req, reply = { .flags = AGENT_FLAG_REPLY };
	struct agent_buf b = { 0 };
	struct agent_reader r;

	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	/* send(MSG_NOSIGNAL): the client hangs up all its streams once one is refused */
	if (send(fd, "OK 1073741825\n", 14, MSG_NOSIGNAL) != 14 || agent_reader_read(&r, fd) != 1 ||
	    agent_reader_take(&r, &req) < 0)
		goto out;
	if (req.type == AGENT_STREAM_ATTACH && req.u.attach.stream < AGENT_STREAM_NR) {
		fs->attached |= AGENT_STDIO_BIT(req.u.attach.stream);
		snprintf(fs->exec_id, sizeof(fs->exec_id), "%s", req.u.attach.exec_id);
		if ((int)req.u.attach.stream == fs->refuse) {
			agent_encode_error(req.type, req.id, EEXIST, "already attached", &b);
		} else {
			reply.type = req.type;
			reply.id = req.id;
			agent_msg_encode(&reply, &b);
		}
		/* the reply and the stream's first bytes in one write */
		if (send(fd, b.data, b.len, MSG_NOSIGNAL) < 0 ||
		    send(fd, names[req.u.attach.stream], strlen(names[req.u.attach.stream]),
			 MSG_NOSIGNAL) < 0)
			fs->send_failed++;
	}
	agent_msg_clear(&req);
out:
	agent_buf_free(&b);
	agent_reader_destroy(&r);
}

static void *fake_streams_run(void *opaque)
{
	struct fake_streams *fs = opaque;
	int fds[AGENT_STREAM_NR];

	while (fs->accepted < fs->n) {
		struct pollfd p = { .fd = fs->listen_fd, .events = POLLIN };
		char c = 0;
		int fd;

		if (poll(&p, 1, 3000) != 1)
			break; /* the client waits for an answer before its next CONNECT */
		fd = accept(fs->listen_fd, NULL, NULL);
		if (fd < 0)
			break;
		while (c != '\n' && read(fd, &c, 1) == 1)
			;
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		fs->early += poll(&p, 1, 0) == 1;
		fds[fs->accepted++] = fd;
	}
	for (unsigned int i = 0; i < fs->accepted; i++) {
		if (fs->accepted == fs->n)
			fake_streams_answer(fs, fds[i]);
		close(fds[i]);
	}
	return NULL;
}

static int streams_open(struct fake_streams *fs, uint32_t stdio, unsigned int n, int refuse,
			int *fds, char *err, size_t err_len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int r;

	memset(fs, 0, sizeof(*fs));
	fs->n = n;
	fs->refuse = refuse;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "/tmp/stratus-agent-client-test.%d",
		 getpid());
	unlink(addr.sun_path);
	fs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fs->listen_fd >= 0);
	assert_int_equal(bind(fs->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(fs->listen_fd, 4), 0);
	assert_int_equal(pthread_create(&fs->thread, NULL, fake_streams_run, fs), 0);
	r = agent_streams_open(addr.sun_path, "c1", "e7", stdio, 5000, fds, err, err_len);
	pthread_join(fs->thread, NULL);
	close(fs->listen_fd);
	unlink(addr.sun_path);
	return r;
}

/*
 * The three stdio streams are opened together: every CONNECT (each with its STREAM_ATTACH in
 * the same write) goes out before any answer is awaited; each fd then carries its stream.
 */
static void test_streams_open(void **state)
{
	static const char *const names[] = { "stdin", "stdout", "stderr" };
	uint32_t all = AGENT_STDIO_BIT(AGENT_STREAM_STDIN) | AGENT_STDIO_BIT(AGENT_STREAM_STDOUT) |
		       AGENT_STDIO_BIT(AGENT_STREAM_STDERR);
	struct fake_streams fs;
	int fds[AGENT_STREAM_NR];
	char err[256], buf[16];

	(void)state;
	assert_int_equal(streams_open(&fs, all, 3, -1, fds, err, sizeof(err)), 0);
	assert_int_equal(fs.accepted, 3);
	assert_int_equal(fs.early, 3);
	assert_int_equal(fs.attached, all);
	assert_string_equal(fs.exec_id, "e7");
	assert_int_equal(fds[AGENT_STREAM_PTY], -1);
	for (int s = AGENT_STREAM_STDIN; s <= AGENT_STREAM_STDERR; s++) {
		ssize_t n;

		assert_true(fds[s] >= 0);
		memset(buf, 0, sizeof(buf));
		n = read(fds[s], buf, sizeof(buf) - 1);
		assert_int_equal(n, (ssize_t)strlen(names[s]));
		assert_string_equal(buf, names[s]);
		close(fds[s]);
	}

	/* One stream refused: the error names it, and no stream is left open. */
	assert_int_equal(streams_open(&fs, all, 3, AGENT_STREAM_STDERR, fds, err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "stderr: "));
	assert_non_null(strstr(err, "already attached"));
	for (int s = 0; s < AGENT_STREAM_NR; s++)
		assert_int_equal(fds[s], -1);

	/* No set, or a stream that does not exist, is refused before anything is sent. */
	assert_int_equal(streams_open(&fs, 0, 0, -1, fds, err, sizeof(err)), -EINVAL);
	assert_int_equal(streams_open(&fs, 1u << AGENT_STREAM_NR, 0, -1, fds, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(fs.accepted, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_version_mismatch),
		cmocka_unit_test(test_requests_and_events),
		cmocka_unit_test(test_pod_requests),
		cmocka_unit_test(test_network),
		cmocka_unit_test(test_timeout_and_late_reply),
		cmocka_unit_test(test_hostile_agent),
		cmocka_unit_test(test_vsock_connect),
		cmocka_unit_test(test_stream_open),
		cmocka_unit_test(test_connect_plain),
		cmocka_unit_test(test_streams_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
