/*
 * Unit tests for ttrpc (shim/ttrpc*.c): the frame header, and a server running in a thread of
 * the test answering our client and raw sockets. Covered: a registered method's round trip,
 * unknown services and methods (Unimplemented, with ttrpc's messages), a request delivered one
 * byte at a time, an oversized frame (discarded, ResourceExhausted, the connection still
 * usable), even, reused and data stream ids, a malformed Request, unknown frame types, many
 * clients at once while another one stalls mid-frame, the connection limit, a deferred answer
 * (and one whose client left), a client that never reads, and Shutdown-style stop.
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "ttrpc.h"
#include "ttrpc/ttrpc.pb-c.h"

#define SVC "stratus.test.v1.Echo"

struct fixture {
	char dir[64];
	char path[128];
	struct ttrpc_server *srv;
	pthread_t thread;
	int run_result;
	int event_fd;			/* fires the deferred answers */
	struct ttrpc_call *deferred[4]; /* calls kept by the Later method */
	unsigned int ndeferred;
	struct ttrpc_server_config cfg;
};

static void echo(struct ttrpc_call *call, const uint8_t *payload, size_t len, void *opaque)
{
	(void)opaque;
	ttrpc_call_reply(call, payload, len);
}

static void fail_method(struct ttrpc_call *call, const uint8_t *payload, size_t len, void *opaque)
{
	(void)payload;
	(void)len;
	(void)opaque;
	ttrpc_call_fail(call, TTRPC_NOT_FOUND, "container %s not found", "abc");
}

static void stop_method(struct ttrpc_call *call, const uint8_t *payload, size_t len, void *opaque)
{
	struct fixture *f = opaque;

	(void)payload;
	(void)len;
	ttrpc_call_reply(call, NULL, 0);
	ttrpc_server_stop(f->srv);
}

static void later_method(struct ttrpc_call *call, const uint8_t *payload, size_t len, void *opaque)
{
	struct fixture *f = opaque;

	(void)payload;
	(void)len;
	assert_true(f->ndeferred < ARRAY_SIZE(f->deferred));
	f->deferred[f->ndeferred++] = call;
}

static void event_ready(int fd, uint32_t events, void *opaque)
{
	struct fixture *f = opaque;
	uint64_t v;

	(void)events;
	assert_int_equal(read(fd, &v, sizeof(v)), sizeof(v));
	/* Answer the kept calls, oldest first. */
	for (unsigned int i = 0; i < f->ndeferred; i++)
		ttrpc_call_reply(f->deferred[i], "late", 4);
	f->ndeferred = 0;
}

static void *server_thread(void *arg)
{
	struct fixture *f = arg;

	f->run_result = ttrpc_server_run(f->srv);
	return NULL;
}

static int setup_with(void **state, unsigned int max_conns, size_t max_output,
		      unsigned int max_calls)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct error err = { 0 };
	int fd;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test_ttrpc.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "unix://%s/s.sock", f->dir);
	f->cfg.max_connections = max_conns;
	f->cfg.max_pending_output = max_output;
	f->cfg.max_calls = max_calls;
	assert_int_equal(ttrpc_server_new(&f->cfg, &f->srv), 0);
	assert_int_equal(ttrpc_server_register(f->srv, SVC, "Echo", echo, f), 0);
	assert_int_equal(ttrpc_server_register(f->srv, SVC, "Fail", fail_method, f), 0);
	assert_int_equal(ttrpc_server_register(f->srv, SVC, "Stop", stop_method, f), 0);
	assert_int_equal(ttrpc_server_register(f->srv, SVC, "Later", later_method, f), 0);
	assert_int_equal(ttrpc_server_register(f->srv, SVC, "Echo", echo, f), -EEXIST);
	assert_int_equal(ttrpc_listen(f->path, &fd, &err), 0);
	assert_int_equal(ttrpc_server_add_listener(f->srv, fd), 0);
	f->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(f->event_fd >= 0);
	assert_int_equal(ttrpc_server_add_fd(f->srv, f->event_fd, EPOLLIN, event_ready, f), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, server_thread, f), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 0, 0, 0);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char sock[160];

	ttrpc_server_stop(f->srv);
	pthread_join(f->thread, NULL);
	assert_int_equal(f->run_result, 0);
	for (unsigned int i = 0; i < f->ndeferred; i++)
		ttrpc_call_fail(f->deferred[i], TTRPC_CANCELLED, "test over");
	ttrpc_server_destroy(f->srv);
	close(f->event_fd);
	snprintf(sock, sizeof(sock), "%s/s.sock", f->dir);
	unlink(sock);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct ttrpc_client *client_open(struct fixture *f)
{
	struct ttrpc_client *c = NULL;
	struct error err = { 0 };

	assert_int_equal(ttrpc_client_connect(f->path, &c, &err), 0);
	return c;
}

static int raw_open(struct fixture *f)
{
	struct sockaddr_un addr;
	unsigned int len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(ttrpc_sockaddr(f->path, &addr, &len), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, len), 0);
	return fd;
}

static void raw_send(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);

		assert_true(n > 0);
		b += n;
		len -= n;
	}
}

static void raw_send_frame(int fd, uint32_t id, uint8_t type, const void *p, size_t len)
{
	struct ttrpc_header h = { .length = (uint32_t)len, .stream_id = id, .type = type };
	uint8_t hdr[TTRPC_HEADER_LEN];

	ttrpc_header_encode(&h, hdr);
	raw_send(fd, hdr, sizeof(hdr));
	if (len)
		raw_send(fd, p, len);
}

static void raw_send_request(int fd, uint32_t id, const char *svc, const char *method,
			     const char *payload)
{
	uint8_t *req;
	size_t len;

	assert_int_equal(ttrpc_request_pack(svc, method, payload, strlen(payload), 0, &req, &len),
			 0);
	raw_send_frame(fd, id, TTRPC_TYPE_REQUEST, req, len);
	free(req);
}

/* 1 if fd has bytes (or EOF) within ms, else 0. */
static int raw_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms);
}

static void raw_read(int fd, void *p, size_t len)
{
	uint8_t *b = p;

	while (len) {
		ssize_t n;

		assert_int_equal(raw_readable(fd, 10000), 1);
		n = recv(fd, b, len, 0);
		assert_true(n > 0);
		b += n;
		len -= n;
	}
}

/* Read one Response frame: its stream id, status code, message and payload. */
static void raw_read_response(int fd, uint32_t *id, int *code, char *msg, size_t msg_len,
			      char *payload, size_t payload_len)
{
	uint8_t hdr[TTRPC_HEADER_LEN];
	struct ttrpc_header h;
	uint8_t *body;
	Ttrpc__Response *resp;

	raw_read(fd, hdr, sizeof(hdr));
	ttrpc_header_decode(hdr, &h);
	assert_int_equal(h.type, TTRPC_TYPE_RESPONSE);
	assert_true(h.length <= TTRPC_MESSAGE_MAX);
	body = malloc(h.length + 1);
	raw_read(fd, body, h.length);
	resp = ttrpc__response__unpack(NULL, h.length, body);
	assert_non_null(resp);
	*id = h.stream_id;
	*code = resp->status ? resp->status->code : 0;
	snprintf(msg, msg_len, "%s", resp->status ? resp->status->message : "");
	if (payload) {
		assert_true(resp->payload.len < payload_len);
		memcpy(payload, resp->payload.data, resp->payload.len);
		payload[resp->payload.len] = '\0';
	}
	ttrpc__response__free_unpacked(resp, NULL);
	free(body);
}

static void test_header(void **state)
{
	const uint8_t want[] = { 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x07, 0x01, 0x04 };
	struct ttrpc_header h = { .length = 0x102, .stream_id = 7, .type = 1, .flags = 4 }, back;
	uint8_t buf[TTRPC_HEADER_LEN];
	uint8_t *frame;
	size_t len;

	(void)state;
	ttrpc_header_encode(&h, buf);
	assert_memory_equal(buf, want, sizeof(want));
	ttrpc_header_decode(buf, &back);
	assert_int_equal(back.length, 0x102);
	assert_int_equal(back.stream_id, 7);
	assert_int_equal(back.type, 1);
	assert_int_equal(back.flags, 4);
	assert_int_equal(ttrpc_frame_build(1, 1, 0, "ab", 2, &frame, &len), 0);
	assert_int_equal(len, 12);
	assert_memory_equal(frame + 10, "ab", 2);
	free(frame);
	assert_int_equal(ttrpc_frame_build(1, 1, 0, "", TTRPC_MESSAGE_MAX + 1, &frame, &len),
			 -EMSGSIZE);
	assert_string_equal(ttrpc_code_name(TTRPC_UNIMPLEMENTED), "Unimplemented");
	assert_string_equal(ttrpc_code_name(99), "Code(?)");
}

static void test_sockaddr(void **state)
{
	struct sockaddr_un a;
	unsigned int len;
	char longpath[200];

	(void)state;
	assert_int_equal(ttrpc_sockaddr("unix:///run/x.sock", &a, &len), 0);
	assert_string_equal(a.sun_path, "/run/x.sock");
	assert_int_equal(ttrpc_sockaddr("@abstract", &a, &len), 0);
	assert_int_equal(a.sun_path[0], '\0');
	assert_memory_equal(a.sun_path + 1, "abstract", 8);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 9);
	assert_int_equal(ttrpc_sockaddr("", &a, &len), -EINVAL);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	longpath[0] = '/';
	assert_int_equal(ttrpc_sockaddr(longpath, &a, &len), -ENAMETOOLONG);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct ttrpc_client *c = client_open(f);
	struct ttrpc_status st;
	uint8_t *resp;
	size_t len;

	assert_int_equal(ttrpc_client_call(c, SVC, "Echo", "hello", 5, 10000, &st, &resp, &len), 0);
	assert_int_equal(st.code, TTRPC_OK);
	assert_int_equal(len, 5);
	assert_memory_equal(resp, "hello", 5);
	free(resp);
	/* An empty payload round-trips as an empty payload. */
	assert_int_equal(ttrpc_client_call(c, SVC, "Echo", NULL, 0, 10000, &st, &resp, &len), 0);
	assert_int_equal(st.code, TTRPC_OK);
	assert_int_equal(len, 0);
	assert_null(resp);
	/* A handler's error reaches the caller with its code and message. */
	assert_int_equal(ttrpc_client_call(c, SVC, "Fail", NULL, 0, 10000, &st, &resp, &len), 0);
	assert_int_equal(st.code, TTRPC_NOT_FOUND);
	assert_string_equal(st.message, "container abc not found");
	ttrpc_client_destroy(c);
}

static void test_unknown(void **state)
{
	struct fixture *f = *state;
	struct ttrpc_client *c = client_open(f);
	struct ttrpc_status st;
	uint8_t *resp;
	size_t len;

	assert_int_equal(
		ttrpc_client_call(c, "no.such.Service", "Echo", "x", 1, 10000, &st, &resp, &len),
		0);
	assert_int_equal(st.code, TTRPC_UNIMPLEMENTED);
	assert_string_equal(st.message, "service no.such.Service");
	assert_int_equal(ttrpc_client_call(c, SVC, "Nope", "x", 1, 10000, &st, &resp, &len), 0);
	assert_int_equal(st.code, TTRPC_UNIMPLEMENTED);
	assert_string_equal(st.message, "method Nope");
	/* The connection keeps working after errors. */
	assert_int_equal(ttrpc_client_call(c, SVC, "Echo", "ok", 2, 10000, &st, &resp, &len), 0);
	assert_int_equal(st.code, TTRPC_OK);
	free(resp);
	ttrpc_client_destroy(c);
}

static void test_partial_reads(void **state)
{
	struct fixture *f = *state;
	int fd = raw_open(f);
	uint8_t *req, *frame;
	size_t req_len, frame_len;
	char msg[256], payload[64];
	uint32_t id;
	int code;

	assert_int_equal(ttrpc_request_pack(SVC, "Echo", "slow", 4, 0, &req, &req_len), 0);
	assert_int_equal(
		ttrpc_frame_build(1, TTRPC_TYPE_REQUEST, 0, req, req_len, &frame, &frame_len), 0);
	for (size_t i = 0; i < frame_len; i++) {
		raw_send(fd, frame + i, 1);
		if (i % 7 == 0)
			usleep(1000);
		/* Nothing may come back before the frame is complete. */
		if (i + 1 < frame_len)
			assert_int_equal(raw_readable(fd, 0), 0);
	}
	raw_read_response(fd, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_int_equal(id, 1);
	assert_int_equal(code, TTRPC_OK);
	assert_string_equal(payload, "slow");
	free(req);
	free(frame);
	close(fd);
}

static void test_oversized(void **state)
{
	struct fixture *f = *state;
	int fd = raw_open(f);
	struct ttrpc_header h = { .length = TTRPC_MESSAGE_MAX + 1, .stream_id = 3, .type = 1 };
	uint8_t hdr[TTRPC_HEADER_LEN];
	size_t chunk = 65536, left = h.length;
	uint8_t *junk = calloc(1, chunk);
	char msg[256], payload[64];
	uint32_t id;
	int code;

	ttrpc_header_encode(&h, hdr);
	raw_send(fd, hdr, sizeof(hdr));
	while (left) {
		size_t n = MIN(left, chunk);

		raw_send(fd, junk, n);
		left -= n;
	}
	raw_read_response(fd, &id, &code, msg, sizeof(msg), NULL, 0);
	assert_int_equal(id, 3);
	assert_int_equal(code, TTRPC_RESOURCE_EXHAUSTED);
	assert_string_equal(msg, "message length 4194305 exceed maximum message size of 4194304");
	/* The oversized body was discarded exactly: the next frame is parsed normally. */
	raw_send_request(fd, 5, SVC, "Echo", "after");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_int_equal(id, 5);
	assert_int_equal(code, TTRPC_OK);
	assert_string_equal(payload, "after");
	free(junk);
	close(fd);

	/* A huge announced length followed by a hang-up costs nothing and crashes nothing. */
	fd = raw_open(f);
	h.length = 0xffffffff;
	ttrpc_header_encode(&h, hdr);
	raw_send(fd, hdr, sizeof(hdr));
	close(fd);
	/* Nor does a 4 MiB announcement that never arrives: other clients are served. */
	fd = raw_open(f);
	h.length = TTRPC_MESSAGE_MAX;
	ttrpc_header_encode(&h, hdr);
	raw_send(fd, hdr, sizeof(hdr));
	raw_send(fd, "abc", 3);
	{
		struct ttrpc_client *c = client_open(f);
		struct ttrpc_status st;
		uint8_t *resp;
		size_t len;

		assert_int_equal(ttrpc_client_call(c, SVC, "Echo", "x", 1, 10000, &st, &resp, &len),
				 0);
		assert_int_equal(st.code, TTRPC_OK);
		free(resp);
		ttrpc_client_destroy(c);
	}
	close(fd);
}

static void test_bad_stream_ids(void **state)
{
	struct fixture *f = *state;
	int fd = raw_open(f);
	char msg[256], payload[64];
	uint32_t id;
	int code;

	raw_send_request(fd, 2, SVC, "Echo", "even");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), NULL, 0);
	assert_int_equal(id, 2);
	assert_int_equal(code, TTRPC_INVALID_ARGUMENT);
	assert_string_equal(msg, "StreamID must be odd for client initiated streams");

	raw_send_request(fd, 7, SVC, "Echo", "seven");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_int_equal(id, 7);
	assert_int_equal(code, TTRPC_OK);
	assert_string_equal(payload, "seven");

	/* Reused, then lower: both refused. */
	raw_send_request(fd, 7, SVC, "Echo", "again");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), NULL, 0);
	assert_int_equal(id, 7);
	assert_int_equal(code, TTRPC_INVALID_ARGUMENT);
	assert_string_equal(msg, "StreamID cannot be re-used and must increment");
	raw_send_request(fd, 5, SVC, "Echo", "lower");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), NULL, 0);
	assert_int_equal(code, TTRPC_INVALID_ARGUMENT);

	/* Data on a stream that is not open. */
	raw_send_frame(fd, 9, TTRPC_TYPE_DATA, "zz", 2);
	raw_read_response(fd, &id, &code, msg, sizeof(msg), NULL, 0);
	assert_int_equal(id, 9);
	assert_int_equal(code, TTRPC_INVALID_ARGUMENT);
	assert_string_equal(msg, "StreamID is no longer active");

	/* Unknown frame types (and a response sent to the server) are ignored. */
	raw_send_frame(fd, 11, 0x7f, "??", 2);
	raw_send_frame(fd, 13, TTRPC_TYPE_RESPONSE, "", 0);
	/* A body that is not a Request. */
	raw_send_frame(fd, 15, TTRPC_TYPE_REQUEST, "\xff\xff\xff", 3);
	raw_read_response(fd, &id, &code, msg, sizeof(msg), NULL, 0);
	assert_int_equal(id, 15);
	assert_int_equal(code, TTRPC_INVALID_ARGUMENT);
	assert_non_null(strstr(msg, "unmarshal request error"));

	raw_send_request(fd, 17, SVC, "Echo", "still here");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_int_equal(id, 17);
	assert_string_equal(payload, "still here");
	close(fd);
}

struct worker {
	struct fixture *f;
	int index;
	int ok;
};

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct ttrpc_client *c = NULL;
	struct error err = { 0 };

	if (ttrpc_client_connect(w->f->path, &c, &err) < 0)
		return NULL;
	for (int i = 0; i < 50; i++) {
		char buf[64];
		struct ttrpc_status st;
		uint8_t *resp;
		size_t len;

		snprintf(buf, sizeof(buf), "client %d call %d", w->index, i);
		if (ttrpc_client_call(c, SVC, "Echo", buf, strlen(buf), 20000, &st, &resp, &len) <
		    0)
			break;
		if (st.code == TTRPC_OK && len == strlen(buf) && !memcmp(resp, buf, len))
			w->ok++;
		free(resp);
	}
	ttrpc_client_destroy(c);
	return NULL;
}

static void test_concurrent_clients(void **state)
{
	struct fixture *f = *state;
	struct worker w[8];
	pthread_t t[8];
	/* A client stalled in the middle of a frame must not hold anyone up. */
	int stalled = raw_open(f);

	raw_send(stalled, "\x00\x00\x00\x20\x00\x00", 6);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .f = f, .index = i };
		assert_int_equal(pthread_create(&t[i], NULL, worker_thread, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, 50);
	}
	close(stalled);
}

static void test_max_connections(void **state)
{
	struct fixture *f = *state;
	int a = raw_open(f), b = raw_open(f), c = raw_open(f);
	char buf[1];
	char msg[256], payload[64];
	uint32_t id;
	int code;

	/* Limit 2: the third connection is accepted and closed at once. */
	assert_int_equal(raw_readable(c, 10000), 1);
	assert_int_equal(recv(c, buf, 1, 0), 0);
	raw_send_request(b, 1, SVC, "Echo", "b");
	raw_read_response(b, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_string_equal(payload, "b");
	close(a);
	close(b);
	close(c);
}

static void test_deferred(void **state)
{
	struct fixture *f = *state;
	int fd = raw_open(f);
	uint64_t one = 1;
	char msg[256], payload[64];
	uint32_t id;
	int code;

	raw_send_request(fd, 1, SVC, "Later", "");
	/* Not answered until the event fires; other calls are answered meanwhile. */
	raw_send_request(fd, 3, SVC, "Echo", "first");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_int_equal(id, 3);
	assert_int_equal(write(f->event_fd, &one, sizeof(one)), sizeof(one));
	raw_read_response(fd, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_int_equal(id, 1);
	assert_string_equal(payload, "late");

	/* At most 2 unanswered calls per connection (setup_deferred): the third is refused. */
	raw_send_request(fd, 5, SVC, "Later", "");
	raw_send_request(fd, 7, SVC, "Later", "");
	raw_send_request(fd, 9, SVC, "Later", "");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), NULL, 0);
	assert_int_equal(id, 9);
	assert_int_equal(code, TTRPC_RESOURCE_EXHAUSTED);
	assert_string_equal(msg, "too many calls in flight on this connection");
	assert_int_equal(write(f->event_fd, &one, sizeof(one)), sizeof(one));
	raw_read_response(fd, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_int_equal(id, 5);
	assert_string_equal(payload, "late");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_int_equal(id, 7);

	/* A deferred call whose client hung up: the late answer is dropped. */
	raw_send_request(fd, 11, SVC, "Later", "");
	raw_send_request(fd, 13, SVC, "Echo", "sync");
	raw_read_response(fd, &id, &code, msg, sizeof(msg), payload, sizeof(payload));
	assert_int_equal(id, 13);
	close(fd);
	usleep(50000);
	assert_int_equal(write(f->event_fd, &one, sizeof(one)), sizeof(one));
	/* The server is still fine. */
	{
		struct ttrpc_client *c = client_open(f);
		struct ttrpc_status st;
		uint8_t *resp;
		size_t len;

		assert_int_equal(ttrpc_client_call(c, SVC, "Echo", "y", 1, 10000, &st, &resp, &len),
				 0);
		assert_int_equal(st.code, TTRPC_OK);
		free(resp);
		ttrpc_client_destroy(c);
	}
}

static void test_client_never_reads(void **state)
{
	struct fixture *f = *state;
	int fd = raw_open(f);
	uint8_t big[2048];
	uint8_t *req;
	size_t len;
	uint32_t id = 1;
	int sndbuf = 65536; /* bounded whatever the host's socket defaults */

	/* Requests whose answers pile up: the server stops reading this client (backlog limit
	 * 4 KiB) instead of buffering without bound, and keeps serving others. */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	memset(big, 'x', sizeof(big));
	assert_int_equal(ttrpc_request_pack(SVC, "Echo", big, sizeof(big), 0, &req, &len), 0);
	for (int i = 0; i < 2000; i++) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		if (poll(&p, 1, 200) != 1)
			break; /* our send buffer is full: the server stopped reading */
		raw_send_frame(fd, id, TTRPC_TYPE_REQUEST, req, len);
		id += 2;
	}
	free(req);
	/* ~60 here; all 2000 (4 MiB) would mean unbounded buffering somewhere. */
	assert_true(id < 2 * 1000);
	{
		struct ttrpc_client *c = client_open(f);
		struct ttrpc_status st;
		uint8_t *resp;
		size_t rlen;

		assert_int_equal(
			ttrpc_client_call(c, SVC, "Echo", "z", 1, 10000, &st, &resp, &rlen), 0);
		assert_int_equal(st.code, TTRPC_OK);
		free(resp);
		ttrpc_client_destroy(c);
	}
	close(fd);
}

static void test_stop_delivers_answer(void **state)
{
	struct fixture *f = *state;
	struct ttrpc_client *c = client_open(f);
	struct ttrpc_status st;
	uint8_t *resp;
	size_t len;

	assert_int_equal(ttrpc_client_call(c, SVC, "Stop", NULL, 0, 10000, &st, &resp, &len), 0);
	assert_int_equal(st.code, TTRPC_OK);
	pthread_join(f->thread, NULL);
	assert_int_equal(f->run_result, 0);
	assert_true(ttrpc_server_stopping(f->srv));
	/* Restart the loop so teardown's join has a thread to join. */
	assert_int_equal(pthread_create(&f->thread, NULL, server_thread, f), 0);
	ttrpc_client_destroy(c);
}

static void test_client_timeout(void **state)
{
	struct fixture *f = *state;
	struct ttrpc_client *c = client_open(f);
	struct ttrpc_status st;
	uint8_t *resp;
	size_t len;

	/* Later never answers by itself: the client gives up, and refuses further calls on a
	 * connection whose next frame it can no longer match. */
	assert_int_equal(ttrpc_client_call(c, SVC, "Later", NULL, 0, 200, &st, &resp, &len),
			 -ETIMEDOUT);
	assert_int_equal(ttrpc_client_call(c, SVC, "Echo", "a", 1, 200, &st, &resp, &len),
			 -ECONNRESET);
	ttrpc_client_destroy(c);
}

static int setup_two(void **state)
{
	return setup_with(state, 2, 0, 0);
}

static int setup_deferred(void **state)
{
	return setup_with(state, 0, 0, 2);
}

static int setup_small_output(void **state)
{
	return setup_with(state, 0, 4096, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_sockaddr),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_stream_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_connections, setup_two, teardown),
		cmocka_unit_test_setup_teardown(test_deferred, setup_deferred, teardown),
		cmocka_unit_test_setup_teardown(test_client_never_reads, setup_small_output,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop_delivers_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_timeout, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
