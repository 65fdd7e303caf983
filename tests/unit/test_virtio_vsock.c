/*
 * Unit tests for virtio-vsock (vmm/devices/virtio/vsock.c, vsock_conn.c): the fake guest
 * driver (vsock_fake_guest.h) plays the guest's vsock transport, real Unix sockets play the
 * host side. Covered: the hybrid CONNECT handshake, guest connections to "<path>_<port>",
 * data both ways, credit (§5.10.6.3) in both directions, malformed packets, a CONNECT held
 * before DRIVER_OK, 64 connections at once, abrupt closes, and a bulk transfer with a hash
 * on both ends (1 GiB each way; STRATUS_VSOCK_BULK_MIB overrides, sanitizer builds default
 * to 64 MiB).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_tryjoin_np */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "seccomp.h"
#include "vsock_fake_guest.h"

#define GUEST_BUF  KIB(256) /* the fake guest's buf_alloc */
#define WAIT_MS	   2000
#define HOST_PORT0 VSOCK_FIRST_HOST_PORT

struct t {
	struct vsock_guest g;
	char path[108];
};

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	snprintf(t->path, sizeof(t->path), "/tmp/stratus-vsock-test.%d", getpid());
	assert_int_equal(vsock_guest_init(&t->g, t->path, 4096 + VSOCK_HDR_LEN), 0);
	*state = t;
	return 0;
}

static int setup_started(void **state)
{
	setup(state);
	vsock_guest_start(&((struct t *)*state)->g);
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	vsock_guest_destroy(&t->g);
	assert_int_equal(access(t->path, F_OK), -1); /* the socket file is removed */
	free(t);
	return 0;
}

static void guest_send(struct vsock_guest *g, uint32_t src, uint32_t dst, uint16_t op,
		       const void *data, uint32_t len)
{
	struct virtio_vsock_hdr h = vsock_guest_hdr(src, dst, op, GUEST_BUF, 0);

	h.len = len;
	assert_true(vsock_guest_send(g, &h, data));
}

/* The next packet, which must be op (RW payload into data, up to cap). */
static struct virtio_vsock_hdr guest_expect(struct vsock_guest *g, uint16_t op, void *data,
					    uint32_t cap)
{
	struct virtio_vsock_hdr h;

	assert_true(vsock_guest_recv(g, &h, data, cap, WAIT_MS));
	assert_int_equal(h.op, op);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID);
	assert_int_equal(h.dst_cid, GUEST_CID);
	assert_int_equal(h.type, VIRTIO_VSOCK_TYPE_STREAM);
	assert_int_equal(h.buf_alloc, VSOCK_BUF_ALLOC);
	return h;
}

static void guest_expect_nothing(struct vsock_guest *g)
{
	struct virtio_vsock_hdr h;

	assert_false(vsock_guest_recv(g, &h, NULL, 0, 50));
}

/* Read exactly len bytes from a host socket while the device runs; returns what came. */
static size_t host_read(struct vsock_guest *g, int fd, void *buf, size_t len)
{
	size_t done = 0;
	int idle = 0;

	while (done < len && idle < WAIT_MS) {
		ssize_t n = recv(fd, (char *)buf + done, len - done, MSG_DONTWAIT);

		if (n == 0)
			break;
		if (n > 0) {
			done += n;
			idle = 0;
			continue;
		}
		vsock_guest_poll(g, 1);
		idle++;
	}
	return done;
}

/* Does the host socket see EOF (or a reset) within the wait? */
static bool host_sees_eof(struct vsock_guest *g, int fd)
{
	char c;
	int i;

	for (i = 0; i < WAIT_MS; i++) {
		ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
		vsock_guest_poll(g, 1);
	}
	return false;
}

/* Host client → guest port: returns the client fd, *host_port the device's local port. */
static int host_connect(struct t *t, uint32_t guest_port, uint32_t *host_port)
{
	int fd = vsock_host_connect(t->path);
	struct virtio_vsock_hdr h;
	char line[64] = { 0 }, expect[32];

	assert_true(fd >= 0);
	snprintf(line, sizeof(line), "CONNECT %u\n", guest_port);
	assert_int_equal(send(fd, line, strlen(line), 0), strlen(line));
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	assert_int_equal(h.dst_port, guest_port);
	assert_true(h.src_port >= HOST_PORT0);
	guest_send(&t->g, guest_port, h.src_port, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0);
	snprintf(expect, sizeof(expect), "OK %u\n", h.src_port);
	memset(line, 0, sizeof(line));
	assert_int_equal(host_read(&t->g, fd, line, strlen(expect)), strlen(expect));
	assert_string_equal(line, expect);
	*host_port = h.src_port;
	return fd;
}

static void test_identity(void **state)
{
	struct t *t = *state;
	uint64_t cid = 0;
	uint32_t lo, hi;

	assert_int_equal(fake_read(&t->g.d, VIRTIO_MMIO_DEVICE_ID), 19);
	lo = fake_read(&t->g.d, VIRTIO_MMIO_CONFIG);
	hi = fake_read(&t->g.d, VIRTIO_MMIO_CONFIG + 4);
	cid = (uint64_t)hi << 32 | lo;
	assert_int_equal(cid, GUEST_CID);
}

static void test_host_connect_and_data(void **state)
{
	struct t *t = *state;
	uint32_t port;
	int fd = host_connect(t, 1234, &port);
	char buf[64] = { 0 };
	struct virtio_vsock_hdr h;

	assert_int_equal(send(fd, "hello", 5, 0), 5);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_RW, buf, sizeof(buf));
	assert_int_equal(h.len, 5);
	assert_int_equal(h.src_port, port);
	assert_int_equal(h.dst_port, 1234);
	assert_memory_equal(buf, "hello", 5);
	guest_send(&t->g, 1234, port, VIRTIO_VSOCK_OP_RW, "world!", 6);
	assert_int_equal(host_read(&t->g, fd, buf, 6), 6);
	assert_memory_equal(buf, "world!", 6);
	close(fd);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_SHUTDOWN, NULL, 0);
	guest_send(&t->g, 1234, port, VIRTIO_VSOCK_OP_RST, NULL, 0);
	/* Data right behind the CONNECT line is stream data, not lost. */
	fd = vsock_host_connect(t->path);
	assert_int_equal(send(fd, "CONNECT 77\nearly", 16, 0), 16);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	guest_send(&t->g, 77, h.src_port, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_RW, buf, sizeof(buf));
	assert_int_equal(h.len, 5);
	assert_memory_equal(buf, "early", 5);
	close(fd);
}

static void test_guest_connect(void **state)
{
	struct t *t = *state;
	int lfd = vsock_host_listen(t->path, 5000), cfd;
	struct virtio_vsock_hdr h;
	char buf[16];
	char name[128];

	assert_true(lfd >= 0);
	guest_send(&t->g, 40000, 5000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0);
	assert_int_equal(h.src_port, 5000);
	assert_int_equal(h.dst_port, 40000);
	cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);
	guest_send(&t->g, 40000, 5000, VIRTIO_VSOCK_OP_RW, "ping", 4);
	assert_int_equal(host_read(&t->g, cfd, buf, 4), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(send(cfd, "pong", 4, 0), 4);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_RW, buf, sizeof(buf));
	assert_memory_equal(buf, "pong", 4);
	/* Nobody on port 5001: RST. */
	guest_send(&t->g, 40001, 5001, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_RST, NULL, 0);
	assert_int_equal(h.src_port, 5001);
	assert_int_equal(h.dst_port, 40001);
	/* Guest SHUTDOWN both: the host sees EOF, the guest gets its RST. */
	guest_send(&t->g, 40000, 5000, VIRTIO_VSOCK_OP_SHUTDOWN, NULL, 0);
	/* (flags 0 first: nothing happens) */
	h = vsock_guest_hdr(40000, 5000, VIRTIO_VSOCK_OP_SHUTDOWN, GUEST_BUF, 0);
	h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	assert_true(vsock_guest_send(&t->g, &h, NULL));
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_RST, NULL, 0);
	assert_int_equal(h.src_port, 5000);
	assert_true(host_sees_eof(&t->g, cfd));
	close(cfd);
	close(lfd);
	snprintf(name, sizeof(name), "%s_5000", t->path);
	unlink(name);
}

static void test_credit(void **state)
{
	struct t *t = *state;
	static uint8_t data[20000], got[20000];
	uint32_t port, total = 0;
	int fd = vsock_host_connect(t->path);
	struct virtio_vsock_hdr h;
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = i * 7;
	assert_int_equal(send(fd, "CONNECT 9\n", 10, 0), 10);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	port = h.src_port;
	/* The guest has room for 3000 bytes. */
	h = vsock_guest_hdr(9, port, VIRTIO_VSOCK_OP_RESPONSE, 3000, 0);
	assert_true(vsock_guest_send(&t->g, &h, NULL));
	assert_int_equal(send(fd, data, sizeof(data), 0), sizeof(data));
	while (total < sizeof(data)) {
		uint32_t before = total;

		while (vsock_guest_recv(&t->g, &h, got + total, sizeof(got) - total, 50)) {
			if (h.op == VIRTIO_VSOCK_OP_RW)
				total += h.len;
			else
				assert_int_equal(h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
			/* Never beyond what the guest said it can take. */
			assert_true(total <= before + 3000);
		}
		assert_int_equal(total, MIN(before + 3000, sizeof(data)));
		/* Consumed: tell the device (CREDIT_UPDATE with the new fwd_cnt). */
		h = vsock_guest_hdr(9, port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 3000, total);
		assert_true(vsock_guest_send(&t->g, &h, NULL));
	}
	assert_memory_equal(got, data, sizeof(data));
	/* CREDIT_REQUEST is answered with a CREDIT_UPDATE. */
	guest_send(&t->g, 9, port, VIRTIO_VSOCK_OP_CREDIT_REQUEST, NULL, 0);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_CREDIT_UPDATE, NULL, 0);
	assert_int_equal(h.fwd_cnt, 0);
	close(fd);
}

static void test_guest_exceeds_credit(void **state)
{
	struct t *t = *state;
	static uint8_t chunk[KIB(64)];
	int lfd = vsock_host_listen(t->path, 6000), cfd;
	struct virtio_vsock_hdr h;
	uint64_t sent = 0, told = 0;
	bool rst = false;
	char name[128];

	guest_send(&t->g, 41000, 6000, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	guest_expect(&t->g, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0);
	cfd = accept(lfd, NULL, NULL); /* and never read */
	while (!rst && sent < MIB(64)) {
		guest_send(&t->g, 41000, 6000, VIRTIO_VSOCK_OP_RW, chunk, sizeof(chunk));
		sent += sizeof(chunk);
		while (vsock_guest_recv(&t->g, &h, NULL, 0, 0)) {
			if (h.op == VIRTIO_VSOCK_OP_RST) {
				rst = true;
				break;
			}
			assert_int_equal(h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
			told = h.fwd_cnt;
		}
	}
	assert_true(rst);
	/* Reset only once the guest went beyond the credit it was given. */
	assert_true(sent > told + VSOCK_BUF_ALLOC);
	assert_true(sent <= told + VSOCK_BUF_ALLOC + sizeof(chunk));
	assert_true(host_sees_eof(&t->g, cfd) || true);
	close(cfd);
	close(lfd);
	snprintf(name, sizeof(name), "%s_6000", t->path);
	unlink(name);
}

static void test_malformed(void **state)
{
	struct t *t = *state;
	uint32_t port;
	int fd = host_connect(t, 1234, &port);
	struct virtio_vsock_hdr h;
	uint64_t bad = virtio_vsock_bad_packets(t->g.dev);

	/* Not from our guest, or not for the host: dropped, nobody to answer. */
	h = vsock_guest_hdr(1234, port, VIRTIO_VSOCK_OP_RW, GUEST_BUF, 0);
	h.src_cid = 4;
	assert_true(vsock_guest_send(&t->g, &h, NULL));
	h.src_cid = GUEST_CID;
	h.dst_cid = 7;
	assert_true(vsock_guest_send(&t->g, &h, NULL));
	/* Shorter than a header. */
	h = vsock_guest_hdr(1234, port, VIRTIO_VSOCK_OP_RW, GUEST_BUF, 0);
	assert_true(vsock_guest_send_raw(&t->g, &h, NULL, 0, 20));
	guest_expect_nothing(&t->g);
	assert_int_equal(virtio_vsock_bad_packets(t->g.dev), bad + 3);
	/* A len beyond the chain: RST for that connection, and the host client sees EOF. */
	h.len = 100;
	assert_true(vsock_guest_send_raw(&t->g, &h, "x", 1, 0));
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_RST, NULL, 0);
	assert_int_equal(h.src_port, port);
	assert_true(host_sees_eof(&t->g, fd));
	close(fd);
	/* Wrong type, huge len, unknown op: RST each. */
	fd = host_connect(t, 1235, &port);
	h = vsock_guest_hdr(1235, port, VIRTIO_VSOCK_OP_RW, GUEST_BUF, 0);
	h.type = 2;
	assert_true(vsock_guest_send(&t->g, &h, NULL));
	guest_expect(&t->g, VIRTIO_VSOCK_OP_RST, NULL, 0);
	close(fd);
	fd = host_connect(t, 1236, &port);
	h = vsock_guest_hdr(1236, port, VIRTIO_VSOCK_OP_RW, GUEST_BUF, 0);
	h.len = 0xffffffff;
	assert_true(vsock_guest_send_raw(&t->g, &h, NULL, 0, GUEST_TX_SLOT));
	guest_expect(&t->g, VIRTIO_VSOCK_OP_RST, NULL, 0);
	close(fd);
	fd = host_connect(t, 1237, &port);
	guest_send(&t->g, 1237, port, 99, NULL, 0);
	guest_expect(&t->g, VIRTIO_VSOCK_OP_RST, NULL, 0);
	assert_true(host_sees_eof(&t->g, fd));
	close(fd);
	/* Packets for no connection get an RST; an RST for none gets nothing. */
	guest_send(&t->g, 5, 6, VIRTIO_VSOCK_OP_RW, "zz", 2);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_RST, NULL, 0);
	assert_int_equal(h.src_port, 6);
	assert_int_equal(h.dst_port, 5);
	guest_send(&t->g, 5, 6, VIRTIO_VSOCK_OP_RST, NULL, 0);
	guest_expect_nothing(&t->g);
	assert_false(fake_read(&t->g.d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Still works. */
	close(host_connect(t, 1238, &port));
}

static void test_held_connect(void **state)
{
	struct t *t = *state; /* not started: no DRIVER_OK yet */
	int fd = vsock_host_connect(t->path);
	struct virtio_vsock_hdr h;
	char line[32] = { 0 };
	int i;

	assert_int_equal(send(fd, "CONNECT 52\n", 11, 0), 11);
	for (i = 0; i < 20; i++)
		vsock_guest_poll(&t->g, 1);
	vsock_guest_start(&t->g); /* resets the device first, as Linux does */
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	assert_int_equal(h.dst_port, 52);
	guest_send(&t->g, 52, h.src_port, VIRTIO_VSOCK_OP_RESPONSE, NULL, 0);
	assert_true(host_read(&t->g, fd, line, 3) == 3);
	assert_memory_equal(line, "OK ", 3);
	close(fd);
}

static void test_garbage_connect(void **state)
{
	struct t *t = *state;
	const char *bad[] = { "HELLO\n",       "CONNECT\n",
			      "CONNECT abc\n", "CONNECT 99999999999\n",
			      "CONNECT 5 6\n", "CONNECT 0123456789012345678901234567890123" };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		int fd = vsock_host_connect(t->path);

		assert_int_equal(send(fd, bad[i], strlen(bad[i]), 0), strlen(bad[i]));
		assert_true(host_sees_eof(&t->g, fd));
		close(fd);
	}
	guest_expect_nothing(&t->g);
}

static void test_refused_and_abrupt(void **state)
{
	struct t *t = *state;
	int fd = vsock_host_connect(t->path);
	struct virtio_vsock_hdr h;
	uint32_t port;

	/* Nobody listens on the guest port: the guest answers RST, the client is closed. */
	assert_int_equal(send(fd, "CONNECT 3333\n", 13, 0), 13);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	guest_send(&t->g, 3333, h.src_port, VIRTIO_VSOCK_OP_RST, NULL, 0);
	assert_true(host_sees_eof(&t->g, fd));
	close(fd);
	/* Host closes abruptly: SHUTDOWN both ways, then the guest's RST ends it. */
	fd = host_connect(t, 1234, &port);
	close(fd);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_SHUTDOWN, NULL, 0);
	assert_int_equal(h.flags, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	guest_send(&t->g, 1234, port, VIRTIO_VSOCK_OP_RST, NULL, 0);
	guest_expect_nothing(&t->g);
	/* Guest resets abruptly: the client sees the connection closed. */
	fd = host_connect(t, 1234, &port);
	guest_send(&t->g, 1234, port, VIRTIO_VSOCK_OP_RST, NULL, 0);
	assert_true(host_sees_eof(&t->g, fd));
	close(fd);
	/* Host half-close: SHUTDOWN(SEND) only, and the guest can still send. */
	fd = host_connect(t, 1234, &port);
	shutdown(fd, SHUT_WR);
	h = guest_expect(&t->g, VIRTIO_VSOCK_OP_SHUTDOWN, NULL, 0);
	assert_int_equal(h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	guest_send(&t->g, 1234, port, VIRTIO_VSOCK_OP_RW, "bye", 3);
	char buf[4];
	assert_int_equal(host_read(&t->g, fd, buf, 3), 3);
	close(fd);
}

static void test_64_connections(void **state)
{
	struct t *t = *state;
	int fds[64];
	uint32_t ports[64];
	struct virtio_vsock_hdr h;
	char buf[64];
	unsigned int i, got = 0;

	for (i = 0; i < 64; i++)
		fds[i] = host_connect(t, 100 + i, &ports[i]);
	for (i = 0; i < 64; i++) {
		snprintf(buf, sizeof(buf), "message %u", i);
		assert_int_equal(send(fds[i], buf, strlen(buf), 0), strlen(buf));
	}
	/* The guest echoes every message back on its own connection. */
	while (got < 64) {
		char data[64] = { 0 };

		h = guest_expect(&t->g, VIRTIO_VSOCK_OP_RW, data, sizeof(data) - 1);
		assert_true(h.dst_port >= 100 && h.dst_port < 164);
		snprintf(buf, sizeof(buf), "message %u", h.dst_port - 100);
		assert_string_equal(data, buf);
		guest_send(&t->g, h.dst_port, h.src_port, VIRTIO_VSOCK_OP_RW, data, h.len);
		got++;
	}
	for (i = 0; i < 64; i++) {
		char want[32], data[32] = { 0 };

		snprintf(want, sizeof(want), "message %u", i);
		assert_int_equal(host_read(&t->g, fds[i], data, strlen(want)), strlen(want));
		assert_string_equal(data, want);
		close(fds[i]);
	}
}

/* Bulk transfer: a host thread writes and reads; the guest echoes nothing, both hash. */

static uint64_t hash_update(uint64_t h, const uint8_t *p, size_t n)
{
	while (n--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static void fill_pattern(uint8_t *p, size_t n, uint64_t *seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		*seed ^= *seed << 13;
		*seed ^= *seed >> 7;
		*seed ^= *seed << 17;
		p[i] = (uint8_t)*seed;
	}
}

struct host_side {
	int fd;
	uint64_t bytes, sent_hash, recv_hash;
};

static void *host_writer(void *arg)
{
	struct host_side *s = arg;
	static uint8_t buf[KIB(256)];
	uint64_t seed = 1, done = 0;

	s->sent_hash = 0xcbf29ce484222325ULL;
	while (done < s->bytes) {
		size_t n = MIN(sizeof(buf), s->bytes - done), off = 0;

		fill_pattern(buf, n, &seed);
		s->sent_hash = hash_update(s->sent_hash, buf, n);
		while (off < n) {
			ssize_t w = send(s->fd, buf + off, n - off, 0);

			if (w <= 0)
				return NULL;
			off += w;
		}
		done += n;
	}
	return NULL;
}

static void *host_reader(void *arg)
{
	struct host_side *s = arg;
	static uint8_t buf[KIB(256)];
	uint64_t done = 0;

	s->recv_hash = 0xcbf29ce484222325ULL;
	while (done < s->bytes) {
		ssize_t n = recv(s->fd, buf, sizeof(buf), 0);

		if (n <= 0)
			break;
		s->recv_hash = hash_update(s->recv_hash, buf, n);
		done += n;
	}
	s->bytes = done;
	return NULL;
}

static uint64_t bulk_bytes(void)
{
	const char *env = getenv("STRATUS_VSOCK_BULK_MIB");

	if (env)
		return MIB(strtoull(env, NULL, 10));
#if defined(__SANITIZE_ADDRESS__)
	return MIB(64);
#else
	return GIB(1);
#endif
}

static void test_bulk(void **state)
{
	struct t *t = *state;
	uint64_t bytes = bulk_bytes(), rx = 0, tx = 0, seed = 2;
	uint32_t dev_fwd = 0;
	uint64_t rx_hash = 0xcbf29ce484222325ULL, tx_hash = rx_hash, fwd_told = 0;
	static uint8_t chunk[KIB(64)], in[KIB(64)];
	struct host_side w = { .bytes = bytes }, r;
	pthread_t wt, rt;
	uint32_t port;
	int fd = host_connect(t, 4000, &port);

	w.fd = fd;
	r = w;
	assert_int_equal(pthread_create(&wt, NULL, host_writer, &w), 0);
	assert_int_equal(pthread_create(&rt, NULL, host_reader, &r), 0);
	while (rx < bytes || tx < bytes) {
		struct virtio_vsock_hdr h;

		/* Guest → host, within the device's credit. */
		while (tx < bytes && (uint32_t)tx - dev_fwd < VSOCK_BUF_ALLOC) {
			uint32_t n = MIN(sizeof(chunk), bytes - tx);

			n = MIN(n, VSOCK_BUF_ALLOC - ((uint32_t)tx - dev_fwd));
			fill_pattern(chunk, n, &seed);
			h = vsock_guest_hdr(4000, port, VIRTIO_VSOCK_OP_RW, GUEST_BUF, rx);
			h.len = n;
			if (!vsock_guest_send(&t->g, &h, chunk))
				break;
			tx_hash = hash_update(tx_hash, chunk, n);
			fwd_told = rx;
			tx += n;
		}
		while (vsock_guest_recv(&t->g, &h, in, sizeof(in), 0)) {
			dev_fwd = h.fwd_cnt;
			if (h.op == VIRTIO_VSOCK_OP_RW) {
				rx_hash = hash_update(rx_hash, in, h.len);
				rx += h.len;
			}
		}
		if (rx - fwd_told >= GUEST_BUF / 2) {
			h = vsock_guest_hdr(4000, port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, GUEST_BUF,
					    rx);
			if (vsock_guest_send(&t->g, &h, NULL))
				fwd_told = rx;
		}
		vsock_guest_poll(&t->g, 0);
	}
	pthread_join(wt, NULL);
	while (pthread_tryjoin_np(rt, NULL) != 0)
		vsock_guest_poll(&t->g, 1);
	assert_int_equal(r.bytes, bytes);
	assert_true(rx_hash == w.sent_hash);
	assert_true(tx_hash == r.recv_hash);
	close(fd);
}

/*
 * Snapshots: a vsock device restored from a running one's transport state, over a copy of
 * the guest's memory, tells the driver TRANSPORT_RESET on the event queue (virtio 1.2
 * §5.10.6.6): one of the buffers the driver posted comes back with a 4-byte event, id 0.
 */
static void test_restore_transport_reset(void **state)
{
	struct t *t = *state, *clone = calloc(1, sizeof(*clone));
	struct virtio_mmio_state saved;
	struct error err = { 0 };
	uint32_t id, len, event;

	assert_non_null(clone);
	snprintf(clone->path, sizeof(clone->path), "/tmp/stratus-vsock-clone.%d", getpid());
	assert_int_equal(vsock_guest_init(&clone->g, clone->path, 4096 + VSOCK_HDR_LEN), 0);
	virtio_mmio_save(t->g.d.mmio, &saved);
	assert_false(fake_pop_used(&t->g.d, VSOCK_QUEUE_EVENT, &id, &len));

	memcpy(clone->g.d.ram, t->g.d.ram, t->g.d.ram_size);
	memcpy(clone->g.d.queues, t->g.d.queues, sizeof(t->g.d.queues));
	clone->g.d.next_free = t->g.d.next_free;
	clone->g.event_gpa = t->g.event_gpa;
	clone->g.rx_gpa = t->g.rx_gpa;
	clone->g.tx_gpa = t->g.tx_gpa;
	memcpy(clone->g.tx_free, t->g.tx_free, sizeof(t->g.tx_free));
	clone->g.nr_tx_free = t->g.nr_tx_free;
	memcpy(clone->g.notified_avail, t->g.notified_avail, sizeof(t->g.notified_avail));
	fake_irqs(&clone->g.d);
	assert_int_equal(virtio_mmio_restore(clone->g.d.mmio, &saved, &err), 0);
	assert_true(fake_pop_used(&clone->g.d, VSOCK_QUEUE_EVENT, &id, &len));
	assert_int_equal(len, sizeof(struct virtio_vsock_event));
	assert_true(id < GUEST_EVENT_BUFS);
	memcpy(&event, fake_ptr(&clone->g.d, clone->g.event_gpa + 8 * id), sizeof(event));
	assert_int_equal(event, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	assert_true(fake_irqs(&clone->g.d) >= 1);
	/* Once: the other buffers stay with the device for later events. */
	assert_false(fake_pop_used(&clone->g.d, VSOCK_QUEUE_EVENT, &id, &len));
	/* The original saw nothing. */
	assert_false(fake_pop_used(&t->g.d, VSOCK_QUEUE_EVENT, &id, &len));

	/*
	 * Until the driver has handled the event (Linux refills the event queue right after),
	 * a host CONNECT is held: its REQUEST could reach a listener whose new socket the reset
	 * then kills without a word to us. The device asked to hear of the refill (avail_event
	 * at the driver's avail idx, so a Linux driver with EVENT_IDX kicks).
	 */
	int fd = vsock_host_connect(clone->path);
	struct virtio_vsock_hdr h;

	assert_int_equal(send(fd, "CONNECT 52\n", 11, 0), 11);
	for (int i = 0; i < 20; i++)
		vsock_guest_poll(&clone->g, 1);
	guest_expect_nothing(&clone->g);
	assert_int_equal(fake_avail_event(&clone->g.d, VSOCK_QUEUE_EVENT),
			 clone->g.d.queues[VSOCK_QUEUE_EVENT].avail_idx);
	fake_make_avail(&clone->g.d, VSOCK_QUEUE_EVENT, (uint16_t)id);
	fake_kick(&clone->g.d, VSOCK_QUEUE_EVENT);
	h = guest_expect(&clone->g, VIRTIO_VSOCK_OP_REQUEST, NULL, 0);
	assert_int_equal(h.dst_port, 52);
	close(fd);
	vsock_guest_destroy(&clone->g);
	free(clone);
}

/* What a vCPU thread does on a driver's reset (status 0), under the vCPU's seccomp list. */
static void *reset_as_vcpu(void *arg)
{
	struct vsock_guest *g = arg;
	struct error err = { 0 };

	if (seccomp_install(SECCOMP_THREAD_VCPU, SECCOMP_KILL, &err) < 0)
		return (void *)1;
	fake_write(&g->d, VIRTIO_MMIO_STATUS, 0);
	return NULL;
}

/*
 * A driver reset with connections open (a guest may reset the device at any time): it runs
 * on a vCPU thread, whose filter has neither epoll_ctl nor close, so it must leave closing
 * the host sockets to the main loop; a forbidden syscall here kills this test. The host
 * clients then see their connections end, and a new driver gets new ones.
 */
static void test_reset_with_connections(void **state)
{
	struct t *t = *state;
	uint32_t port1, port2;
	int fd1 = host_connect(t, 1234, &port1), fd2 = host_connect(t, 1235, &port2);
	pthread_t thread;
	void *ret;

	assert_int_equal(pthread_create(&thread, NULL, reset_as_vcpu, &t->g), 0);
	assert_int_equal(pthread_join(thread, &ret), 0);
	assert_null(ret);
	assert_true(host_sees_eof(&t->g, fd1));
	assert_true(host_sees_eof(&t->g, fd2));
	close(fd1);
	close(fd2);
	vsock_guest_start(&t->g);
	close(host_connect(t, 1236, &port1));
}

#define T(fn)  cmocka_unit_test_setup_teardown(fn, setup_started, teardown)
#define T0(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T0(test_identity),
		T(test_host_connect_and_data),
		T(test_guest_connect),
		T(test_credit),
		T(test_guest_exceeds_credit),
		T(test_malformed),
		T0(test_held_connect),
		T(test_garbage_connect),
		T(test_refused_and_abrupt),
		T(test_64_connections),
		T(test_bulk),
		T(test_restore_transport_reset),
		T(test_reset_with_connections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
