/*
 * Unit tests for the agent protocol codec and frame reader (proto/agent_proto.c,
 * agent_frame.c): a round trip of every message of the catalogue, every truncation of every
 * frame (of the stream and of the payload), oversized frames refused before buffering,
 * unknown types, bad flags and ids, counts and lengths past their caps, embedded NULs, the
 * encoder's own caps, a stream fed one byte at a time (by hand and through a socket), and
 * the version check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_proto.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static char *mount_opts[] = { "rbind", "ro", "nosuid" };
static struct agent_mount mounts[] = {
	{ "proc", "/proc", "proc", { NULL, 0 } },
	{ "share0/etc-hosts", "/etc/hosts", "bind", { mount_opts, 3 } },
};
static char *json = "{\"ociVersion\":\"1.1.0\",\"process\":{\"args\":[\"sh\"]}}";
static struct agent_exit exit_records[] = {
	{ "c1", "", 1, 0, 0, 1700000000000000000ull },
	{ "c1", "exec-7", 77, 9, AGENT_EXIT_SIGNALED | AGENT_EXIT_OOM, 42 },
};
static struct agent_process_info procs[] = {
	{ 1, 0, 0, "", "sh" },
	{ 77, 1, 1000, "exec-7", "sleep 100" },
};

/* One sample of every (type, flags) the catalogue has, with every field non-trivial. */
static uint8_t entropy_sample[] = { 0x00, 0xff, 0x00, 0x41, 0x7f, 0x00 }; /* NULs are data */

static uint8_t net_mac[AGENT_NET_MAC_LEN] = { 0x02, 0x42, 0x0a, 0x58, 0x00, 0x02 };
static struct agent_net_iface net_ifaces[] = { { { net_mac, AGENT_NET_MAC_LEN }, "eth0", 1450 } };
static struct agent_net_addr net_addrs[] = { { 0, 0x0a580002, 24 } };
static struct agent_net_route net_routes[] = { { 0, 0, 0, 0x0a580001, 100 },
					       { 0, 0xc0a80000, 16, 0, 0 } };

static const struct agent_msg samples[] = {
	{ .type = AGENT_HELLO, .flags = 0, .id = 1, .u.hello = { 1, 0, "stratus 0.1.0" } },
	{ .type = AGENT_HELLO,
	  .flags = AGENT_FLAG_REPLY,
	  .id = 1,
	  .u.hello = { 1, 3, "stratus-agent 0.1.0" } },
	{ .type = AGENT_PING, .flags = 0, .id = 2 },
	{ .type = AGENT_PING, .flags = AGENT_FLAG_REPLY, .id = 2 },
	{ .type = AGENT_CREATE,
	  .flags = 0,
	  .id = 3,
	  .u.create = { "c1",
			AGENT_ROOTFS_BLOCK,
			"/dev/vda",
			"ext4",
			"discard",
			AGENT_STDIO_BIT(AGENT_STREAM_STDOUT) | AGENT_STDIO_BIT(AGENT_STREAM_STDERR),
			{ mounts, 2 },
			NULL } },
	{ .type = AGENT_CREATE, .flags = AGENT_FLAG_REPLY, .id = 3, .u.pid = { 1 } },
	{ .type = AGENT_START, .flags = 0, .id = 4, .u.container = { "c1" } },
	{ .type = AGENT_START, .flags = AGENT_FLAG_REPLY, .id = 4 },
	{ .type = AGENT_DELETE, .flags = 0, .id = 5, .u.del = { "c1", AGENT_DELETE_FORCE } },
	{ .type = AGENT_DELETE, .flags = AGENT_FLAG_REPLY, .id = 5 },
	{ .type = AGENT_EXEC,
	  .flags = 0,
	  .id = 6,
	  .u.exec = { "c1", "exec-7", AGENT_STDIO_BIT(AGENT_STREAM_PTY), "{\"args\":[\"top\"]}" } },
	{ .type = AGENT_EXEC, .flags = AGENT_FLAG_REPLY, .id = 6, .u.pid = { 77 } },
	{ .type = AGENT_SIGNAL,
	  .flags = 0,
	  .id = 7,
	  .u.signal = { "c1", "", 15, AGENT_SIGNAL_ALL } },
	{ .type = AGENT_SIGNAL, .flags = AGENT_FLAG_REPLY, .id = 7 },
	{ .type = AGENT_WAIT, .flags = 0, .id = 8, .u.process = { "c1", "exec-7" } },
	{ .type = AGENT_WAIT,
	  .flags = AGENT_FLAG_REPLY,
	  .id = 8,
	  .u.exit = { "c1", "exec-7", 77, 9, AGENT_EXIT_SIGNALED, 123456789 } },
	{ .type = AGENT_ACK_EXIT, .flags = 0, .id = 9, .u.process = { "c1", "exec-7" } },
	{ .type = AGENT_ACK_EXIT, .flags = AGENT_FLAG_REPLY, .id = 9 },
	{ .type = AGENT_LIST_EXITS, .flags = 0, .id = 10 },
	{ .type = AGENT_LIST_EXITS,
	  .flags = AGENT_FLAG_REPLY,
	  .id = 10,
	  .u.exits = { { exit_records, 2 } } },
	{ .type = AGENT_RESIZE, .flags = 0, .id = 11, .u.resize = { "c1", "exec-7", 50, 132 } },
	{ .type = AGENT_RESIZE, .flags = AGENT_FLAG_REPLY, .id = 11 },
	{ .type = AGENT_PS, .flags = 0, .id = 12, .u.container = { "c1" } },
	{ .type = AGENT_PS,
	  .flags = AGENT_FLAG_REPLY,
	  .id = 12,
	  .u.ps = { AGENT_PS_TRUNCATED, { procs, 2 } } },
	{ .type = AGENT_STATS, .flags = 0, .id = 13, .u.container = { "c1" } },
	{ .type = AGENT_STATS,
	  .flags = AGENT_FLAG_REPLY,
	  .id = 13,
	  .u.stats = { 1, 2, 3, 4, 5, 6, 7, AGENT_STATS_NO_LIMIT, 9, 10, 11, 12, 13 } },
	{ .type = AGENT_SHUTDOWN, .flags = 0, .id = 14, .u.shutdown = { 0 } },
	{ .type = AGENT_SHUTDOWN, .flags = AGENT_FLAG_REPLY, .id = 14 },
	{ .type = AGENT_STREAM_ATTACH,
	  .flags = 0,
	  .id = 15,
	  .u.attach = { "c1", "exec-7", AGENT_STREAM_STDERR } },
	{ .type = AGENT_STREAM_ATTACH, .flags = AGENT_FLAG_REPLY, .id = 15 },
	{ .type = AGENT_EVENT_EXIT,
	  .flags = AGENT_FLAG_EVENT,
	  .id = 0,
	  .u.exit = { "c1", "", 1, 0, 0, 1700000000000000000ull } },
	{ .type = AGENT_EVENT_OOM, .flags = AGENT_FLAG_EVENT, .id = 0, .u.oom = { "c1", 3 } },
	{ .type = AGENT_EXEC,
	  .flags = AGENT_FLAG_REPLY | AGENT_FLAG_ERROR,
	  .id = 16,
	  .u.error = { ENOENT, "exec: /bin/nope: No such file or directory" } },
	{ .type = 0x7777,
	  .flags = AGENT_FLAG_REPLY | AGENT_FLAG_ERROR,
	  .id = 17,
	  .u.error = { EOPNOTSUPP, "unknown" } },
	/* 1.1 */
	{ .type = AGENT_SET_TIME, .flags = 0, .id = 18, .u.set_time = { 1764072000123456789ull } },
	{ .type = AGENT_SET_TIME, .flags = AGENT_FLAG_REPLY, .id = 18 },
	{ .type = AGENT_UPDATE,
	  .flags = 0,
	  .id = 19,
	  .u.update = { "c1", "{\"pids\": {\"limit\": 10}}" } },
	{ .type = AGENT_UPDATE, .flags = AGENT_FLAG_REPLY, .id = 19 },
	/* 1.2 */
	{ .type = AGENT_ADD_ENTROPY,
	  .flags = 0,
	  .id = 20,
	  .u.add_entropy = { { entropy_sample, sizeof(entropy_sample) } } },
	{ .type = AGENT_ADD_ENTROPY, .flags = AGENT_FLAG_REPLY, .id = 20 },
	/* 1.3 */
	{ .type = AGENT_MOUNT_SHARE, .flags = 0, .id = 21, .u.mount_share = { "m3" } },
	{ .type = AGENT_MOUNT_SHARE,
	  .flags = AGENT_FLAG_REPLY,
	  .id = 21,
	  .u.share_path = { "/run/stratus-shares/m3" } },
	{ .type = AGENT_FREEZE, .flags = 0, .id = 22, .u.freeze = { "c1", 1 } },
	{ .type = AGENT_FREEZE, .flags = AGENT_FLAG_REPLY, .id = 22 },
	/* 1.4 */
	{ .type = AGENT_NETWORK,
	  .flags = 0,
	  .id = 23,
	  .u.network = { { net_ifaces, 1 }, { net_addrs, 1 }, { net_routes, 2 } } },
	{ .type = AGENT_NETWORK, .flags = AGENT_FLAG_REPLY, .id = 23 },
};

static struct agent_msg sample(size_t i)
{
	struct agent_msg m = samples[i];

	if (m.type == AGENT_CREATE && m.flags == 0)
		m.u.create.oci_config = json;
	return m;
}

static struct agent_buf encode(const struct agent_msg *m)
{
	struct agent_buf b = { 0 };

	assert_int_equal(agent_msg_encode(m, &b), 0);
	return b;
}

/* Feed a whole buffer to a fresh reader, which must end exactly at its end with a frame. */
static int decode(const uint8_t *data, size_t len, struct agent_msg *out)
{
	struct agent_reader r;
	ssize_t used;
	int e;

	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	used = agent_reader_feed(&r, data, len);
	if (used < 0) {
		agent_reader_destroy(&r);
		return used;
	}
	assert_int_equal(used, len);
	assert_true(r.ready);
	e = agent_reader_take(&r, out);
	agent_reader_destroy(&r);
	return e;
}

static void test_round_trip_every_message(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMS(samples); i++) {
		struct agent_msg m = sample(i), out;
		struct agent_buf a = encode(&m), b;

		assert_int_equal(decode(a.data, a.len, &out), 0);
		assert_int_equal(out.type, m.type);
		assert_int_equal(out.flags, m.flags);
		assert_int_equal(out.id, m.id);
		b = encode(&out); /* every field survived: the bytes are the same */
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
		agent_msg_clear(&out);
		agent_buf_free(&a);
		agent_buf_free(&b);
	}
}

/* The 1.1 messages keep their values, and an over-cap resources blob is refused. */
static void test_v1_1_messages(void **state)
{
	static char big[AGENT_MAX_RESOURCES + 2];
	struct agent_msg m = { .type = AGENT_SET_TIME, .id = 1 }, out;
	struct agent_buf b;

	(void)state;
	m.u.set_time.realtime_ns = UINT64_MAX - 1;
	b = encode(&m);
	assert_int_equal(b.len, AGENT_HDR_LEN + 8);
	assert_int_equal(decode(b.data, b.len, &out), 0);
	assert_true(out.u.set_time.realtime_ns == UINT64_MAX - 1);
	agent_buf_free(&b);
	m = (struct agent_msg){ .type = AGENT_UPDATE, .id = 2 };
	m.u.update = (struct agent_update){ "c1", "{}" };
	b = encode(&m);
	assert_int_equal(decode(b.data, b.len, &out), 0);
	assert_string_equal(out.u.update.container_id, "c1");
	assert_string_equal(out.u.update.resources, "{}");
	agent_msg_clear(&out);
	agent_buf_free(&b);
	memset(big, 'x', sizeof(big) - 1);
	m.u.update.resources = big;
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	agent_buf_free(&b);
	assert_string_equal(agent_type_name(AGENT_SET_TIME), "SET_TIME");
	assert_string_equal(agent_type_name(AGENT_UPDATE), "UPDATE");
}

static void test_round_trip_fields(void **state)
{
	struct agent_msg m = sample(4), out; /* CREATE */
	struct agent_buf b = encode(&m);

	(void)state;
	assert_int_equal(decode(b.data, b.len, &out), 0);
	assert_string_equal(out.u.create.container_id, "c1");
	assert_string_equal(out.u.create.rootfs_source, "/dev/vda");
	assert_int_equal(out.u.create.mounts.n, 2);
	assert_int_equal(out.u.create.mounts.v[0].options.n, 0);
	assert_null(out.u.create.mounts.v[0].options.v);
	assert_string_equal(out.u.create.mounts.v[1].options.v[2], "nosuid");
	assert_string_equal(out.u.create.oci_config, json);
	agent_msg_clear(&out);
	agent_buf_free(&b);
}

/* Decoded strings are never NULL, even when the sender had NULL for "". */
static void test_empty_strings(void **state)
{
	struct agent_msg m = { .type = AGENT_EXEC,
			       .flags = 0,
			       .id = 1,
			       .u.exec = { NULL, NULL, 0, NULL } },
			 out;
	struct agent_buf b = encode(&m);

	(void)state;
	assert_int_equal(decode(b.data, b.len, &out), 0);
	assert_string_equal(out.u.exec.container_id, "");
	assert_string_equal(out.u.exec.process, "");
	agent_msg_clear(&out);
	agent_buf_free(&b);
}

static void test_truncated_everywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMS(samples); i++) {
		struct agent_msg m = sample(i), out;
		struct agent_buf b = encode(&m);
		uint32_t payload = b.len - AGENT_HDR_LEN;

		/* A stream cut anywhere: the reader takes it all and waits for more. */
		for (size_t cut = 0; cut < b.len; cut++) {
			struct agent_reader r;

			agent_reader_init(&r, AGENT_MAX_PAYLOAD);
			assert_int_equal(agent_reader_feed(&r, b.data, cut), cut);
			assert_false(r.ready);
			assert_int_equal(agent_reader_take(&r, &out), -EAGAIN);
			agent_reader_destroy(&r);
		}
		/* A frame whose length covers only part of the payload: malformed. */
		for (uint32_t cut = 0; cut < payload; cut++) {
			struct agent_header h;

			assert_int_equal(agent_header_decode(b.data, AGENT_MAX_PAYLOAD, &h), 0);
			h.len = cut;
			assert_int_equal(agent_msg_decode(&h, b.data + AGENT_HDR_LEN, &out),
					 -EBADMSG);
			assert_int_equal(out.id, m.id); /* enough to answer with an error */
		}
		agent_buf_free(&b);
	}
}

static void put_header(uint8_t *p, uint16_t type, uint16_t flags, uint32_t id, uint32_t len)
{
	struct agent_header h = { AGENT_MAGIC, type, flags, id, len };

	agent_header_encode(&h, p);
}

static void test_oversized_refused_before_buffering(void **state)
{
	uint8_t frame[AGENT_HDR_LEN + 8] = { 0 };
	struct agent_reader r;

	(void)state;
	put_header(frame, AGENT_PING, 0, 1, AGENT_MAX_PAYLOAD + 1);
	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	assert_int_equal(agent_reader_feed(&r, frame, sizeof(frame)), -EMSGSIZE);
	assert_null(r.payload);
	assert_int_equal(agent_reader_feed(&r, frame, sizeof(frame)), -EMSGSIZE); /* sticky */
	agent_reader_destroy(&r);

	/* A reader with a smaller limit (the agent's stdio port) uses it. */
	put_header(frame, AGENT_PING, 0, 1, 4097);
	agent_reader_init(&r, 4096);
	assert_int_equal(agent_reader_feed(&r, frame, sizeof(frame)), -EMSGSIZE);
	agent_reader_destroy(&r);
	put_header(frame, AGENT_PING, 0, 1, UINT32_MAX);
	agent_reader_init(&r, UINT32_MAX);
	assert_int_equal(agent_reader_feed(&r, frame, sizeof(frame)), -EMSGSIZE);
	agent_reader_destroy(&r);
}

static void test_bad_magic(void **state)
{
	uint8_t frame[AGENT_HDR_LEN] = { 0 };
	struct agent_reader r;

	(void)state;
	put_header(frame, AGENT_PING, 0, 1, 0);
	frame[0] ^= 1;
	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	assert_int_equal(agent_reader_feed(&r, frame, sizeof(frame)), -EPROTO);
	agent_reader_destroy(&r);
}

static void test_unknown_type_answered(void **state)
{
	uint8_t frame[AGENT_HDR_LEN + 4] = { 0 };
	struct agent_msg out, err;
	struct agent_buf b = { 0 };

	(void)state;
	put_header(frame, 0x7777, 0, 99, 4);
	assert_int_equal(decode(frame, sizeof(frame), &out), -ENOMSG);
	assert_int_equal(out.id, 99);
	/* The agent's answer, which the host decodes whatever the type. */
	assert_int_equal(agent_encode_error(out.type, out.id, EOPNOTSUPP, "unknown type", &b), 0);
	assert_int_equal(decode(b.data, b.len, &err), 0);
	assert_int_equal(err.u.error.errno_value, EOPNOTSUPP);
	assert_string_equal(err.u.error.message, "unknown type");
	assert_int_equal(err.id, 99);
	agent_msg_clear(&err);
	agent_buf_free(&b);
	/* A known type in the wrong direction: an event that is a request, a reply to an event. */
	put_header(frame, AGENT_EVENT_OOM, 0, 5, 4);
	assert_int_equal(decode(frame, sizeof(frame), &out), -ENOMSG);
	put_header(frame, AGENT_HELLO, AGENT_FLAG_EVENT, 0, 4);
	assert_int_equal(decode(frame, sizeof(frame), &out), -ENOMSG);
}

static void test_bad_flags_and_ids(void **state)
{
	static const struct {
		uint16_t flags;
		uint32_t id;
	} bad[] = { { 0, 0 },
		    { AGENT_FLAG_REPLY, 0 },
		    { AGENT_FLAG_EVENT, 3 },
		    { AGENT_FLAG_ERROR, 1 },
		    { 0x8, 1 },
		    { AGENT_FLAG_REPLY | AGENT_FLAG_EVENT, 1 },
		    { AGENT_FLAG_REPLY | AGENT_FLAG_ERROR, 0 } };
	uint8_t frame[AGENT_HDR_LEN];
	struct agent_msg out, m = { .type = AGENT_PING, .flags = AGENT_FLAG_EVENT, .id = 0 };
	struct agent_buf b = { 0 };

	(void)state;
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		put_header(frame, AGENT_PING, bad[i].flags, bad[i].id, 0);
		assert_int_equal(decode(frame, sizeof(frame), &out), -EBADMSG);
	}
	assert_int_equal(agent_msg_encode(&m, &b), -ENOMSG);
	m = (struct agent_msg){ .type = AGENT_PING, .flags = 0, .id = 0 };
	assert_int_equal(agent_msg_encode(&m, &b), -EINVAL);
	m = (struct agent_msg){ .type = 0x7777, .flags = 0, .id = 1 };
	assert_int_equal(agent_msg_encode(&m, &b), -ENOMSG);
	assert_int_equal(b.len, 0);
	agent_buf_free(&b);
}

/* A hand-built payload: little-endian u32s and raw strings. */
struct wire {
	uint8_t b[256];
	size_t len;
};

static void w32(struct wire *w, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		w->b[w->len++] = v >> (8 * i);
}

static void wstr(struct wire *w, const char *s, size_t len)
{
	w32(w, len);
	memcpy(w->b + w->len, s, len);
	w->len += len;
}

static int decode_payload(uint16_t type, uint16_t flags, const struct wire *w)
{
	struct agent_header h = { AGENT_MAGIC, type, flags, flags & AGENT_FLAG_EVENT ? 0 : 1,
				  w->len };
	struct agent_msg out;
	int e = agent_msg_decode(&h, w->b, &out);

	if (e == 0)
		agent_msg_clear(&out);
	return e;
}

static void test_caps_and_bad_lengths(void **state)
{
	struct wire w;

	(void)state;
	/* CREATE with 257 mounts: over the cap before anything is allocated. */
	w = (struct wire){ 0 };
	wstr(&w, "c1", 2), w32(&w, 1), wstr(&w, "t", 1), wstr(&w, "", 0), wstr(&w, "", 0);
	w32(&w, 0), w32(&w, AGENT_MAX_MOUNTS + 1);
	assert_int_equal(decode_payload(AGENT_CREATE, 0, &w), -E2BIG);
	/* 200 mounts in cap, but not the bytes for them. */
	w.len -= 4, w32(&w, 200);
	assert_int_equal(decode_payload(AGENT_CREATE, 0, &w), -EBADMSG);
	/* A count of UINT32_MAX. */
	w.len -= 4, w32(&w, UINT32_MAX);
	assert_int_equal(decode_payload(AGENT_CREATE, 0, &w), -E2BIG);
	/* A mount with 65 options. */
	w.len -= 4, w32(&w, 1);
	wstr(&w, "s", 1), wstr(&w, "/t", 2), wstr(&w, "bind", 4), w32(&w, AGENT_MAX_OPTIONS + 1);
	assert_int_equal(decode_payload(AGENT_CREATE, 0, &w), -E2BIG);
	/* A container id one past its cap, and one longer than the payload. */
	w = (struct wire){ 0 };
	w32(&w, AGENT_MAX_ID + 1);
	assert_int_equal(decode_payload(AGENT_START, 0, &w), -E2BIG);
	w = (struct wire){ 0 };
	w32(&w, 10), w32(&w, 0);
	assert_int_equal(decode_payload(AGENT_START, 0, &w), -EBADMSG);
	/* An embedded NUL. */
	w = (struct wire){ 0 };
	wstr(&w, "c\0x", 3);
	assert_int_equal(decode_payload(AGENT_START, 0, &w), -EBADMSG);
	/* Bytes after the last field: a later minor version's, ignored. */
	w = (struct wire){ 0 };
	wstr(&w, "c1", 2), w32(&w, 0xdeadbeef);
	assert_int_equal(decode_payload(AGENT_START, 0, &w), 0);
	/* Exit records past the cap. */
	w = (struct wire){ 0 };
	w32(&w, AGENT_MAX_EXITS + 1);
	assert_int_equal(decode_payload(AGENT_LIST_EXITS, AGENT_FLAG_REPLY, &w), -E2BIG);
}

/* ADD_ENTROPY: any byte values, up to 512 bytes; more, or fewer than announced, refused. */
static void test_v1_2_add_entropy(void **state)
{
	static uint8_t bytes[AGENT_MAX_ENTROPY + 1];
	struct agent_msg m = { .type = AGENT_ADD_ENTROPY, .id = 1 }, out;
	struct agent_buf b = { 0 };
	struct wire w;

	(void)state;
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 7);
	m.u.add_entropy.data.v = bytes;
	m.u.add_entropy.data.n = AGENT_MAX_ENTROPY;
	b = encode(&m);
	assert_int_equal(b.len, AGENT_HDR_LEN + 4 + AGENT_MAX_ENTROPY);
	assert_int_equal(decode(b.data, b.len, &out), 0);
	assert_int_equal(out.u.add_entropy.data.n, AGENT_MAX_ENTROPY);
	assert_memory_equal(out.u.add_entropy.data.v, bytes, AGENT_MAX_ENTROPY);
	agent_msg_clear(&out);
	agent_buf_free(&b);
	m.u.add_entropy.data.n = AGENT_MAX_ENTROPY + 1;
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	assert_int_equal(b.len, 0);
	agent_buf_free(&b);
	/* Empty decodes (the agent refuses it), NULL data. */
	w = (struct wire){ 0 };
	w32(&w, 0);
	assert_int_equal(decode_payload(AGENT_ADD_ENTROPY, 0, &w), 0);
	/* Over the cap, and longer than the payload. */
	w = (struct wire){ 0 };
	w32(&w, AGENT_MAX_ENTROPY + 1);
	assert_int_equal(decode_payload(AGENT_ADD_ENTROPY, 0, &w), -E2BIG);
	w = (struct wire){ 0 };
	w32(&w, 8), w32(&w, 0);
	assert_int_equal(decode_payload(AGENT_ADD_ENTROPY, 0, &w), -EBADMSG);
	assert_string_equal(agent_type_name(AGENT_ADD_ENTROPY), "ADD_ENTROPY");
}

/* MOUNT_SHARE and FREEZE: their values, the tag's and the path's caps both ways. */
static void test_v1_3_messages(void **state)
{
	static char tag[AGENT_MAX_TAG + 2], path[AGENT_MAX_PATH + 2];
	struct agent_msg m = { .type = AGENT_MOUNT_SHARE, .id = 1 }, out;
	struct agent_buf b = { 0 };
	struct wire w;

	(void)state;
	memset(tag, 't', AGENT_MAX_TAG);
	m.u.mount_share.tag = tag; /* exactly at the cap */
	b = encode(&m);
	assert_int_equal(decode(b.data, b.len, &out), 0);
	assert_int_equal(strlen(out.u.mount_share.tag), AGENT_MAX_TAG);
	agent_msg_clear(&out);
	agent_buf_free(&b);
	tag[AGENT_MAX_TAG] = 't';
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	assert_int_equal(b.len, 0);
	agent_buf_free(&b);
	w = (struct wire){ 0 };
	wstr(&w, tag, AGENT_MAX_TAG + 1);
	assert_int_equal(decode_payload(AGENT_MOUNT_SHARE, 0, &w), -E2BIG);
	w = (struct wire){ 0 };
	w32(&w, 5), w.b[w.len++] = 'm'; /* 5 bytes announced, 1 there */
	assert_int_equal(decode_payload(AGENT_MOUNT_SHARE, 0, &w), -EBADMSG);

	/* The reply's path: up to AGENT_MAX_PATH. */
	m = (struct agent_msg){ .type = AGENT_MOUNT_SHARE, .flags = AGENT_FLAG_REPLY, .id = 1 };
	memset(path, 'p', AGENT_MAX_PATH);
	path[0] = '/';
	m.u.share_path.path = path;
	b = encode(&m);
	assert_int_equal(decode(b.data, b.len, &out), 0);
	assert_int_equal(strlen(out.u.share_path.path), AGENT_MAX_PATH);
	agent_msg_clear(&out);
	agent_buf_free(&b);
	path[AGENT_MAX_PATH] = 'p';
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	agent_buf_free(&b);
	/* An over-cap path from a hostile agent is refused by the length, before any copy. */
	uint8_t hdr_and_len[AGENT_HDR_LEN + 4];
	struct agent_header h = { AGENT_MAGIC, AGENT_MOUNT_SHARE, AGENT_FLAG_REPLY, 1, 4 };

	hdr_and_len[AGENT_HDR_LEN] = (AGENT_MAX_PATH + 1) & 0xff;
	hdr_and_len[AGENT_HDR_LEN + 1] = (AGENT_MAX_PATH + 1) >> 8;
	hdr_and_len[AGENT_HDR_LEN + 2] = hdr_and_len[AGENT_HDR_LEN + 3] = 0;
	assert_int_equal(agent_msg_decode(&h, hdr_and_len + AGENT_HDR_LEN, &out), -E2BIG);

	/* FREEZE: the id and the flag; a missing flag is malformed; the id's cap. */
	m = (struct agent_msg){ .type = AGENT_FREEZE, .id = 2 };
	m.u.freeze = (struct agent_freeze){ "pod-member", 0xfffffffe };
	b = encode(&m);
	assert_int_equal(b.len, AGENT_HDR_LEN + 4 + 10 + 4);
	assert_int_equal(decode(b.data, b.len, &out), 0);
	assert_string_equal(out.u.freeze.container_id, "pod-member");
	assert_int_equal(out.u.freeze.frozen, 0xfffffffe);
	agent_msg_clear(&out);
	agent_buf_free(&b);
	w = (struct wire){ 0 };
	wstr(&w, "c1", 2);
	assert_int_equal(decode_payload(AGENT_FREEZE, 0, &w), -EBADMSG);
	w = (struct wire){ 0 };
	w32(&w, AGENT_MAX_ID + 1);
	assert_int_equal(decode_payload(AGENT_FREEZE, 0, &w), -E2BIG);
	assert_string_equal(agent_type_name(AGENT_MOUNT_SHARE), "MOUNT_SHARE");
	assert_string_equal(agent_type_name(AGENT_FREEZE), "FREEZE");
}

/* NETWORK: its fields, the MAC's and the name's caps, and the three counts' caps both ways. */
static void test_v1_4_network(void **state)
{
	static struct agent_net_iface ifaces[AGENT_MAX_NET_IFACES + 1];
	static struct agent_net_addr addrs[AGENT_MAX_NET_ADDRS + 1];
	static struct agent_net_route routes[AGENT_MAX_NET_ROUTES + 1];
	uint8_t mac[AGENT_NET_MAC_LEN + 1] = { 0x02, 0, 0, 0, 0, 1, 7 };
	char name[AGENT_MAX_IFNAME + 2];
	struct agent_msg m = { .type = AGENT_NETWORK, .id = 1 }, out;
	struct agent_buf b = { 0 };
	struct wire w;

	(void)state;
	memset(name, 'n', AGENT_MAX_IFNAME);
	name[AGENT_MAX_IFNAME] = '\0';
	for (size_t i = 0; i <= AGENT_MAX_NET_IFACES; i++)
		ifaces[i] = (struct agent_net_iface){ { mac, AGENT_NET_MAC_LEN }, name, 9000 };
	for (size_t i = 0; i <= AGENT_MAX_NET_ADDRS; i++)
		addrs[i] = (struct agent_net_addr){ i % AGENT_MAX_NET_IFACES, 0x0a000000 + i, 32 };
	for (size_t i = 0; i <= AGENT_MAX_NET_ROUTES; i++)
		routes[i] = (struct agent_net_route){ 0, 0x0a000000 + (i << 8), 24, 0x0a000001, i };
	m.u.network.ifaces.v = ifaces;
	m.u.network.ifaces.n = AGENT_MAX_NET_IFACES;
	m.u.network.addrs.v = addrs;
	m.u.network.addrs.n = AGENT_MAX_NET_ADDRS;
	m.u.network.routes.v = routes;
	m.u.network.routes.n = AGENT_MAX_NET_ROUTES;
	b = encode(&m); /* every count and length exactly at its cap */
	assert_int_equal(decode(b.data, b.len, &out), 0);
	assert_int_equal(out.u.network.ifaces.n, AGENT_MAX_NET_IFACES);
	assert_int_equal(out.u.network.ifaces.v[15].mac.n, AGENT_NET_MAC_LEN);
	assert_memory_equal(out.u.network.ifaces.v[15].mac.v, mac, AGENT_NET_MAC_LEN);
	assert_string_equal(out.u.network.ifaces.v[15].name, name);
	assert_int_equal(out.u.network.ifaces.v[15].mtu, 9000);
	assert_int_equal(out.u.network.addrs.v[63].addr, 0x0a00003f);
	assert_int_equal(out.u.network.addrs.v[63].iface, 63 % AGENT_MAX_NET_IFACES);
	assert_int_equal(out.u.network.routes.v[127].dst, 0x0a007f00);
	assert_int_equal(out.u.network.routes.v[127].gateway, 0x0a000001);
	assert_int_equal(out.u.network.routes.v[127].metric, 127);
	agent_msg_clear(&out);
	agent_buf_free(&b);
	/* One past each cap: the encoder refuses and leaves nothing. */
	m.u.network.ifaces.n++;
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	m.u.network.ifaces.n--, m.u.network.addrs.n++;
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	m.u.network.addrs.n--, m.u.network.routes.n++;
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	m.u.network.routes.n--, ifaces[0].mac.n = AGENT_NET_MAC_LEN + 1;
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	ifaces[0].mac.n = AGENT_NET_MAC_LEN, name[AGENT_MAX_IFNAME] = 'n';
	name[AGENT_MAX_IFNAME + 1] = '\0';
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	assert_int_equal(b.len, 0);
	agent_buf_free(&b);
	/* And the decoder: counts past the caps, a MAC of 7, a name of 16, short payloads. */
	w = (struct wire){ 0 };
	w32(&w, AGENT_MAX_NET_IFACES + 1);
	assert_int_equal(decode_payload(AGENT_NETWORK, 0, &w), -E2BIG);
	w = (struct wire){ 0 };
	w32(&w, 0), w32(&w, AGENT_MAX_NET_ADDRS + 1);
	assert_int_equal(decode_payload(AGENT_NETWORK, 0, &w), -E2BIG);
	w = (struct wire){ 0 };
	w32(&w, 0), w32(&w, 0), w32(&w, AGENT_MAX_NET_ROUTES + 1);
	assert_int_equal(decode_payload(AGENT_NETWORK, 0, &w), -E2BIG);
	w = (struct wire){ 0 };
	w32(&w, 1), w32(&w, AGENT_NET_MAC_LEN + 1), wstr(&w, "0123456789", 10);
	assert_int_equal(decode_payload(AGENT_NETWORK, 0, &w), -E2BIG);
	w = (struct wire){ 0 };
	w32(&w, 1), w32(&w, 0), wstr(&w, name, AGENT_MAX_IFNAME + 1);
	assert_int_equal(decode_payload(AGENT_NETWORK, 0, &w), -E2BIG);
	w = (struct wire){ 0 };
	w32(&w, 0), w32(&w, 0), w32(&w, 2), w32(&w, 0), w32(&w, 0); /* 2 routes, 8 bytes */
	assert_int_equal(decode_payload(AGENT_NETWORK, 0, &w), -EBADMSG);
	w = (struct wire){ 0 };
	w32(&w, 0), w32(&w, 0); /* no route count */
	assert_int_equal(decode_payload(AGENT_NETWORK, 0, &w), -EBADMSG);
	assert_string_equal(agent_type_name(AGENT_NETWORK), "NETWORK");
}

static void test_encoder_caps(void **state)
{
	char *long_id = malloc(AGENT_MAX_ID + 2);
	struct agent_msg m = { .type = AGENT_START, .flags = 0, .id = 1 };
	struct agent_buf b = { 0 };
	struct agent_process_info *many = calloc(AGENT_MAX_PROCS, sizeof(*many));
	char command[AGENT_MAX_NAME + 1];

	(void)state;
	memset(long_id, 'x', AGENT_MAX_ID + 1);
	long_id[AGENT_MAX_ID + 1] = '\0';
	m.u.container.container_id = long_id;
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	long_id[AGENT_MAX_ID] = '\0';
	assert_int_equal(agent_msg_encode(&m, &b), 0); /* exactly at the cap */
	b.len = 0;
	/* 8192 processes with long commands: every field in cap, the whole over 1 MiB. */
	memset(command, 'c', AGENT_MAX_NAME);
	command[AGENT_MAX_NAME] = '\0';
	for (size_t i = 0; i < AGENT_MAX_PROCS; i++)
		many[i] = (struct agent_process_info){ i, 1, 0, "", command };
	m = (struct agent_msg){ .type = AGENT_PS, .flags = AGENT_FLAG_REPLY, .id = 1 };
	m.u.ps.procs.v = many;
	m.u.ps.procs.n = AGENT_MAX_PROCS;
	assert_int_equal(agent_msg_encode(&m, &b), -EMSGSIZE);
	assert_int_equal(b.len, 0); /* nothing left behind */
	m.u.ps.procs.n = AGENT_MAX_PROCS + 1;
	assert_int_equal(agent_msg_encode(&m, &b), -E2BIG);
	agent_buf_free(&b);
	free(many);
	free(long_id);
}

/* All samples back to back, fed one byte at a time. */
static void test_one_byte_feeds(void **state)
{
	struct agent_buf all = { 0 };
	struct agent_reader r;
	size_t frames = 0;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(samples); i++) {
		struct agent_msg m = sample(i);

		assert_int_equal(agent_msg_encode(&m, &all), 0);
	}
	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	for (size_t off = 0; off < all.len; off++) {
		assert_int_equal(agent_reader_feed(&r, all.data + off, 1), 1);
		if (r.ready) {
			struct agent_msg out;

			assert_int_equal(agent_reader_take(&r, &out), 0);
			assert_int_equal(out.type, samples[frames].type);
			agent_msg_clear(&out);
			frames++;
		}
	}
	assert_int_equal(frames, N_ELEMS(samples));
	agent_reader_destroy(&r);
	agent_buf_free(&all);
}

/* The same through a non-blocking socket written one byte at a time. */
static void test_socket_one_byte_reads(void **state)
{
	struct agent_msg m = sample(4), out; /* CREATE */
	struct agent_buf b = encode(&m);
	struct agent_reader r;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	assert_int_equal(agent_reader_read(&r, sv[0]), -EAGAIN);
	for (size_t i = 0; i < b.len; i++) {
		assert_int_equal(write(sv[1], b.data + i, 1), 1);
		assert_int_equal(agent_reader_read(&r, sv[0]), i + 1 == b.len ? 1 : -EAGAIN);
	}
	assert_int_equal(agent_reader_take(&r, &out), 0);
	assert_string_equal(out.u.create.mounts.v[1].target, "/etc/hosts");
	agent_msg_clear(&out);
	/* Raw bytes after a frame stay in the socket; end of stream between frames is 0. */
	assert_int_equal(write(sv[1], b.data, b.len), b.len);
	assert_int_equal(write(sv[1], "raw", 3), 3);
	assert_int_equal(agent_reader_read(&r, sv[0]), 1);
	assert_int_equal(agent_reader_take(&r, &out), 0);
	agent_msg_clear(&out);
	char raw[8];
	assert_int_equal(read(sv[0], raw, sizeof(raw)), 3);
	close(sv[1]);
	assert_int_equal(agent_reader_read(&r, sv[0]), 0);
	agent_reader_destroy(&r);
	close(sv[0]);

	/* End of stream inside a frame. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], b.data, 20), 20);
	close(sv[1]);
	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	assert_int_equal(agent_reader_read(&r, sv[0]), -ECONNRESET);
	agent_reader_destroy(&r);
	close(sv[0]);
	agent_buf_free(&b);
}

static void test_version_check(void **state)
{
	struct agent_hello same = { AGENT_PROTO_MAJOR, AGENT_PROTO_MINOR + 5, "newer" };
	struct agent_hello other = { AGENT_PROTO_MAJOR + 1, 0, "stratus-agent 9.0" };
	char msg[256] = "";

	(void)state;
	assert_int_equal(agent_version_check(&same, msg, sizeof(msg)), 0);
	assert_int_equal(agent_version_check(&other, msg, sizeof(msg)), -EPROTONOSUPPORT);
	assert_non_null(strstr(msg, "2.0"));
	assert_non_null(strstr(msg, "stratus-agent 9.0"));
	assert_string_equal(agent_type_name(AGENT_STREAM_ATTACH), "STREAM_ATTACH");
	assert_string_equal(agent_type_name(0x7777), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_message),
		cmocka_unit_test(test_round_trip_fields),
		cmocka_unit_test(test_v1_1_messages),
		cmocka_unit_test(test_v1_2_add_entropy),
		cmocka_unit_test(test_v1_3_messages),
		cmocka_unit_test(test_v1_4_network),
		cmocka_unit_test(test_empty_strings),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_oversized_refused_before_buffering),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_unknown_type_answered),
		cmocka_unit_test(test_bad_flags_and_ids),
		cmocka_unit_test(test_caps_and_bad_lengths),
		cmocka_unit_test(test_encoder_caps),
		cmocka_unit_test(test_one_byte_feeds),
		cmocka_unit_test(test_socket_one_byte_reads),
		cmocka_unit_test(test_version_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
