/*
 * Unit tests for virtio-net (vmm/devices/virtio/net.c), driven by the fake driver with a
 * SOCK_SEQPACKET socketpair as the backend (one frame per message, as a tap): features and
 * configuration space, frames byte-exact both ways, receive with no buffers (nothing lost,
 * no spinning), frames too big for a buffer, hostile chains, a reset mid-traffic, a backend
 * that is full (order kept) or hangs up, and 1000 round trips. The real tap is in
 * test_virtio_net_tap.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "devices/virtio/net.h"
#include "virtio_fake_driver.h"

#define RAM_SIZE MIB(16)
#define QSIZE	 256
#define RXQ	 VIRTIO_NET_QUEUE_RX
#define TXQ	 VIRTIO_NET_QUEUE_TX
#define HDR	 VIRTIO_NET_HDR_LEN
#define BUF_SIZE 2048 /* per ring slot, header included */
#define F_V1	 (1ULL << VIRTIO_F_VERSION_1)
#define F_BASE	 (F_V1 | (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS))
#define S_FEAT	 (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)
#define S_OK	 (S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK)

static const uint8_t test_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

struct net_test {
	struct fake_driver d;
	int peer; /* the backend's other end: what the "network" sees */
	uint64_t tx_buf[QSIZE], rx_buf[QSIZE];
	uint16_t tx_next; /* next TX descriptor/head to use */
};

/* A device on one end of a socketpair, not yet driven. */
static void net_test_init(struct net_test *t, uint32_t mtu)
{
	struct error err = { 0 };
	struct virtio_device *dev;
	int sv[2], i;

	memset(t, 0, sizeof(*t));
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(virtio_net_check_backend(sv[0], "test", &err), 0);
	assert_int_equal(virtio_net_new("net0", sv[0], test_mac, mtu, &dev, &err), 0);
	assert_int_equal(fake_driver_init(&t->d, dev, RAM_SIZE), 0);
	t->peer = sv[1];
	for (i = 0; i < QSIZE; i++) {
		t->tx_buf[i] = fake_alloc(&t->d, BUF_SIZE, 64);
		t->rx_buf[i] = fake_alloc(&t->d, BUF_SIZE, 64);
		assert_true(t->tx_buf[i] && t->rx_buf[i]);
	}
}

static void net_test_start(struct net_test *t, uint64_t features)
{
	assert_int_equal(fake_negotiate(&t->d, features), S_FEAT);
	assert_int_equal(fake_setup_queue(&t->d, RXQ, QSIZE), 1);
	assert_int_equal(fake_setup_queue(&t->d, TXQ, QSIZE), 1);
	assert_int_equal(fake_driver_ok(&t->d), S_OK);
	t->tx_next = 0;
}

static int setup(void **state)
{
	struct net_test *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	net_test_init(t, 1500);
	net_test_start(t,
		       F_BASE | (1ULL << VIRTIO_NET_F_MTU) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
	*state = t;
	return 0;
}

static int setup_event_idx(void **state)
{
	struct net_test *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	net_test_init(t, 0);
	net_test_start(t, F_BASE | (1ULL << VIRTIO_RING_F_EVENT_IDX));
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct net_test *t = *state;

	fake_driver_destroy(&t->d);
	if (t->peer >= 0)
		close(t->peer);
	free(t);
	return 0;
}

static struct virtio_net_stats stats(struct net_test *t)
{
	struct virtio_net_stats s;

	virtio_net_get_stats(t->d.dev, &s);
	return s;
}

/* Is the device's descriptor readable now (would the main loop call it)? */
static bool net_fd_ready(struct net_test *t)
{
	struct pollfd p = { .fd = virtio_net_fd(t->d.dev), .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* Run the main loop's part: queue notifications and backend events, until quiet. */
static void pump(struct net_test *t)
{
	unsigned int rounds;

	for (rounds = 0; rounds < 10000; rounds++) {
		bool ready = false;
		int n = fake_driver_poll_round(&t->d, virtio_net_fd(t->d.dev), 0, &ready);

		if (ready)
			virtio_net_process(t->d.dev);
		if (!n)
			return;
	}
	fail_msg("the device keeps the loop busy (spinning?)");
}

/* A frame of len bytes: an Ethernet-looking header and a pattern from seed. */
static void make_frame(uint8_t *f, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		f[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
	if (len >= 14) {
		memcpy(f, test_mac, 6);
		f[12] = 0x88;
		f[13] = 0xb5; /* local experimental ethertype */
	}
	if (len >= 18)
		memcpy(f + 14, &seed, sizeof(seed));
}

/* Guest side: send frame (len bytes) in one descriptor with its header; returns the head. */
static uint16_t guest_tx(struct net_test *t, const void *frame, size_t len)
{
	uint16_t head = t->tx_next++ % QSIZE;
	uint8_t *p = fake_ptr(&t->d, t->tx_buf[head]);
	struct fake_buf b = { t->tx_buf[head], (uint32_t)(HDR + len), false };

	assert_true(HDR + len <= BUF_SIZE);
	memset(p, 0, HDR);
	memcpy(p + HDR, frame, len);
	fake_add_chain(&t->d, TXQ, head, &b, 1);
	return head;
}

/* Post receive buffer slot (size bytes, one writable descriptor). */
static void guest_post_rx(struct net_test *t, uint16_t slot, uint32_t size)
{
	struct fake_buf b = { t->rx_buf[slot], size, true };

	assert_true(size <= BUF_SIZE);
	memset(fake_ptr(&t->d, t->rx_buf[slot]), 0xee, BUF_SIZE);
	fake_add_chain(&t->d, RXQ, slot, &b, 1);
}

/* The next receive completion: the frame (into out), checked header; returns its length. */
static size_t guest_rx(struct net_test *t, uint16_t expect_head, void *out)
{
	struct virtio_net_hdr_v1 hdr, zero = { .num_buffers = 1 };
	uint32_t id, len;
	uint8_t *p;

	assert_true(fake_pop_used(&t->d, RXQ, &id, &len));
	assert_int_equal(id, expect_head);
	assert_true(len > HDR);
	p = fake_ptr(&t->d, t->rx_buf[id]);
	memcpy(&hdr, p, HDR);
	assert_memory_equal(&hdr, &zero, HDR);
	memcpy(out, p + HDR, len - HDR);
	return len - HDR;
}

static void peer_send(struct net_test *t, const void *frame, size_t len)
{
	assert_int_equal(send(t->peer, frame, len, MSG_DONTWAIT), (ssize_t)len);
}

/* The next frame at the peer, or -1 if none is waiting. */
static ssize_t peer_recv(struct net_test *t, void *buf, size_t cap)
{
	return recv(t->peer, buf, cap, MSG_DONTWAIT);
}

static uint32_t config_read(struct net_test *t, uint32_t offset, uint32_t len)
{
	uint32_t v = 0;

	bus_access(&t->d.bus, FAKE_MMIO_BASE + VIRTIO_MMIO_CONFIG + offset, (uint8_t *)&v, len,
		   false);
	return v;
}

static uint64_t device_features(struct net_test *t)
{
	uint64_t f;

	fake_write(&t->d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = fake_read(&t->d, VIRTIO_MMIO_DEVICE_FEATURES);
	fake_write(&t->d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)fake_read(&t->d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

static void test_features_and_config(void **state)
{
	struct net_test *t = *state, other;
	uint64_t f = device_features(t);
	unsigned int i;

	assert_int_equal(fake_read(&t->d, VIRTIO_MMIO_DEVICE_ID), 1);
	assert_true(f & F_V1);
	assert_true(f & (1ULL << VIRTIO_NET_F_MAC));
	assert_true(f & (1ULL << VIRTIO_NET_F_STATUS));
	assert_true(f & (1ULL << VIRTIO_NET_F_MTU));
	assert_true(f & (1ULL << VIRTIO_RING_F_EVENT_IDX));
	assert_true(f & (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
	/* Nothing we do not implement: offloads, mergeable buffers, control queue, MQ. */
	assert_false(f & ((1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
			  (1ULL << VIRTIO_NET_F_HOST_TSO4) | (1ULL << VIRTIO_NET_F_GUEST_TSO4) |
			  (1ULL << VIRTIO_NET_F_MRG_RXBUF) | (1ULL << VIRTIO_NET_F_CTRL_VQ) |
			  (1ULL << VIRTIO_NET_F_MQ)));
	for (i = 0; i < 6; i++)
		assert_int_equal(config_read(t, i, 1), test_mac[i]);
	assert_int_equal(config_read(t, 0, 4), 0xab005452);
	assert_int_equal(config_read(t, 6, 2), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(config_read(t, 8, 2), 1);     /* max_virtqueue_pairs */
	assert_int_equal(config_read(t, 10, 2), 1500); /* mtu */
	/* Past the end, or straddling it: zeros, never memory beyond the config. */
	assert_int_equal(config_read(t, 12, 4), 0);
	assert_int_equal(config_read(t, 10, 4), 0);
	assert_int_equal(config_read(t, 0xeff, 1), 0);
	/* Two queues, no third (control) one. */
	fake_write(&t->d, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(fake_read(&t->d, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	fake_write(&t->d, VIRTIO_MMIO_QUEUE_SEL, TXQ);
	assert_int_equal(fake_read(&t->d, VIRTIO_MMIO_QUEUE_NUM_MAX), QSIZE);

	/* Without an mtu, VIRTIO_NET_F_MTU is not offered (and a driver may not take it). */
	net_test_init(&other, 0);
	assert_false(device_features(&other) & (1ULL << VIRTIO_NET_F_MTU));
	assert_int_equal(fake_negotiate(&other.d, F_BASE | (1ULL << VIRTIO_NET_F_MTU)),
			 S_FEAT & ~VIRTIO_CONFIG_S_FEATURES_OK);
	fake_driver_destroy(&other.d);
	close(other.peer);
}

static void test_bad_parameters(void **state)
{
	static const uint8_t multicast[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 }, zero[6];
	struct error err = { 0 };
	struct virtio_device *dev;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(virtio_net_new("n", dup(sv[0]), multicast, 0, &dev, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "n: mac 01:00:5e:00:00:01 is not a unicast address"));
	error_clear(&err);
	assert_int_equal(virtio_net_new("n", dup(sv[0]), zero, 0, &dev, &err), -EINVAL);
	error_clear(&err);
	assert_int_equal(virtio_net_new("n", dup(sv[0]), test_mac, 67, &dev, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "n: mtu 67 is not from 68 to 65535"));
	close(sv[0]);
	/* Backends: a stream socket cannot keep frames apart; a regular file is no backend. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	error_clear(&err);
	assert_int_equal(virtio_net_check_backend(sv[0], "fd 5", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "fd 5: a stream socket"));
	close(sv[0]);
	close(sv[1]);
	error_clear(&err);
	sv[0] = open("/dev/null", O_RDWR);
	assert_int_equal(virtio_net_check_backend(sv[0], "fd 6", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "fd 6: neither a tap"));
	close(sv[0]);
	error_clear(&err);
	assert_true(virtio_net_check_backend(1000, "fd 1000", &err) < 0);
	assert_non_null(strstr(err.msg, "fd 1000: not an open file descriptor"));
	error_clear(&err);
	assert_true(virtio_net_open_tap("a-name-far-too-long", &err) < 0);
	assert_non_null(strstr(err.msg, "an interface name is 1 to 15 characters"));
}

static void test_random_mac(void **state)
{
	uint8_t a[6], b[6];

	(void)state;
	virtio_net_random_mac(a);
	virtio_net_random_mac(b);
	assert_int_equal(a[0] & 3, 2); /* locally administered, unicast */
	assert_int_equal(b[0] & 3, 2);
	assert_memory_not_equal(a, b, 6);
}

static void test_tx_layouts(void **state)
{
	struct net_test *t = *state;
	uint8_t frame[1514], got[2000];
	uint64_t g = fake_alloc(&t->d, 4096, 64), table = fake_alloc(&t->d, 16 * 4, 16);
	struct fake_buf split[4] = {
		{ g, HDR, false },
		{ g + 100, 20, false },
		{ g + 200, 0, false }, /* zero-length: contributes nothing */
		{ g + 300, 1494, false },
	};
	uint32_t id, len;

	/* Header and frame in one descriptor. */
	make_frame(frame, 60, 1);
	guest_tx(t, frame, 60);
	fake_kick(&t->d, TXQ);
	assert_int_equal(peer_recv(t, got, sizeof(got)), 60);
	assert_memory_equal(got, frame, 60);
	assert_true(fake_pop_used(&t->d, TXQ, &id, &len));
	assert_int_equal(len, 0);
	assert_true(fake_irqs(&t->d) >= 1);

	/* Header alone, then the frame in pieces (gathered through the bounce buffer). */
	make_frame(frame, 1514, 2);
	memcpy(fake_ptr(&t->d, g + 100), frame, 20);
	memcpy(fake_ptr(&t->d, g + 300), frame + 20, 1494);
	fake_add_chain(&t->d, TXQ, 10, split, 4);
	fake_kick(&t->d, TXQ);
	assert_int_equal(peer_recv(t, got, sizeof(got)), 1514);
	assert_memory_equal(got, frame, 1514);
	assert_true(fake_pop_used(&t->d, TXQ, &id, &len));
	assert_int_equal(id, 10);

	/* An indirect table: header, frame. */
	make_frame(frame, 100, 3);
	memcpy(fake_ptr(&t->d, g + 2000), frame, 100);
	fake_set_indirect(&t->d, table, 0, g, HDR, VRING_DESC_F_NEXT, 1);
	fake_set_indirect(&t->d, table, 1, g + 2000, 100, 0, 0);
	fake_set_desc(&t->d, TXQ, 20, table, 32, VRING_DESC_F_INDIRECT, 0);
	fake_make_avail(&t->d, TXQ, 20);
	fake_kick(&t->d, TXQ);
	assert_int_equal(peer_recv(t, got, sizeof(got)), 100);
	assert_memory_equal(got, frame, 100);
	assert_true(fake_pop_used(&t->d, TXQ, &id, &len));
	assert_int_equal(id, 20);
	assert_int_equal(stats(t).tx_frames, 3);
	assert_int_equal(stats(t).tx_bytes, 60 + 1514 + 100);
	assert_int_equal(peer_recv(t, got, sizeof(got)), -1);
}

static void test_rx(void **state)
{
	struct net_test *t = *state;
	uint8_t frame[1514], got[BUF_SIZE];
	uint64_t g = fake_alloc(&t->d, 4096, 64);
	struct fake_buf split[3] = {
		{ g, HDR, true },
		{ g + 64, 700, true },
		{ g + 1024, 1000, true },
	};
	struct virtio_net_hdr_v1 hdr, expect = { .num_buffers = 1 };
	uint32_t id, len;

	guest_post_rx(t, 0, 1526); /* what Linux posts: header + 1514 */
	fake_kick(&t->d, RXQ);
	assert_int_equal(fake_irqs(&t->d), 0);
	make_frame(frame, 1514, 7);
	peer_send(t, frame, 1514);
	pump(t);
	assert_int_equal(guest_rx(t, 0, got), 1514);
	assert_memory_equal(got, frame, 1514);
	assert_true(fake_irqs(&t->d) >= 1);
	/* The buffer is not written past header + frame. */
	assert_int_equal(*(uint8_t *)fake_ptr(&t->d, t->rx_buf[0] + 1526), 0xee);

	/* A chain of three buffers: header, then the frame across the other two. */
	memset(fake_ptr(&t->d, g), 0xee, 4096);
	fake_add_chain(&t->d, RXQ, 1, split, 3);
	fake_kick(&t->d, RXQ);
	make_frame(frame, 1200, 8);
	peer_send(t, frame, 1200);
	pump(t);
	assert_true(fake_pop_used(&t->d, RXQ, &id, &len));
	assert_int_equal(id, 1);
	assert_int_equal(len, HDR + 1200);
	memcpy(&hdr, fake_ptr(&t->d, g), HDR);
	assert_memory_equal(&hdr, &expect, HDR);
	assert_memory_equal(fake_ptr(&t->d, g + 64), frame, 700);
	assert_memory_equal(fake_ptr(&t->d, g + 1024), frame + 700, 500);
	assert_int_equal(*(uint8_t *)fake_ptr(&t->d, g + 1024 + 500), 0xee);
	assert_int_equal(stats(t).rx_frames, 2);
	assert_int_equal(stats(t).rx_bytes, 1514 + 1200);
}

/* No buffers: the backend is not read (no drop, no spin); posted buffers bring it all in. */
static void test_rx_no_buffers(void **state)
{
	struct net_test *t = *state;
	uint8_t frame[200], got[BUF_SIZE];
	unsigned int i;

	for (i = 0; i < 5; i++) {
		make_frame(frame, 100 + i, 100 + i);
		peer_send(t, frame, 100 + i);
	}
	pump(t);
	assert_false(net_fd_ready(t)); /* disarmed: the loop would sleep */
	assert_int_equal(stats(t).rx_frames, 0);
	assert_int_equal(stats(t).rx_dropped, 0);

	for (i = 0; i < 3; i++)
		guest_post_rx(t, i, 1526);
	fake_kick(&t->d, RXQ);
	pump(t);
	for (i = 0; i < 3; i++) {
		make_frame(frame, 100 + i, 100 + i);
		assert_int_equal(guest_rx(t, i, got), 100 + i);
		assert_memory_equal(got, frame, 100 + i);
	}
	assert_false(net_fd_ready(t)); /* two frames left, no buffer: disarmed again */
	/* EVENT_IDX: the driver is asked to notify on its next buffer. */
	assert_int_equal(fake_avail_event(&t->d, RXQ), 3);
	for (i = 3; i < 5; i++)
		guest_post_rx(t, i, 1526);
	fake_kick(&t->d, RXQ);
	pump(t);
	for (i = 3; i < 5; i++) {
		make_frame(frame, 100 + i, 100 + i);
		assert_int_equal(guest_rx(t, i, got), 100 + i);
		assert_memory_equal(got, frame, 100 + i);
	}
	assert_int_equal(stats(t).rx_frames, 5);
	assert_int_equal(stats(t).rx_dropped, 0);
	/* Buffers and nothing to read: armed, the loop sleeps until a frame comes. */
	guest_post_rx(t, 5, 1526);
	fake_kick(&t->d, RXQ);
	pump(t);
	assert_false(net_fd_ready(t));
	peer_send(t, frame, 64);
	assert_true(net_fd_ready(t));
	pump(t);
	assert_int_equal(guest_rx(t, 5, got), 64);
}

/* A frame that does not fit the chain is dropped; the chain serves the next one. */
static void test_rx_too_big(void **state)
{
	struct net_test *t = *state;
	static uint8_t big[VIRTIO_NET_MAX_FRAME + 2];
	uint8_t frame[1514], got[BUF_SIZE];
	uint64_t huge = fake_alloc(&t->d, 70000, 64);
	struct fake_buf b = { huge, 70000, true };
	uint32_t id, len;

	guest_post_rx(t, 0, 200);
	fake_kick(&t->d, RXQ);
	make_frame(frame, 1000, 1);
	peer_send(t, frame, 1000);
	make_frame(frame, 188, 2); /* exactly fills 200 with the header */
	peer_send(t, frame, 188);
	pump(t);
	assert_int_equal(guest_rx(t, 0, got), 188);
	assert_memory_equal(got, frame, 188);
	assert_int_equal(stats(t).rx_dropped, 1);
	assert_int_equal(*(uint8_t *)fake_ptr(&t->d, t->rx_buf[0] + 200), 0xee);

	/* Runts and frames past the limit are dropped whatever the buffer. */
	fake_add_chain(&t->d, RXQ, 1, &b, 1);
	fake_kick(&t->d, RXQ);
	peer_send(t, frame, 13);
	make_frame(big, sizeof(big) - 1, 3);
	peer_send(t, big, VIRTIO_NET_MAX_FRAME + 1);
	peer_send(t, big, VIRTIO_NET_MAX_FRAME);
	pump(t);
	assert_true(fake_pop_used(&t->d, RXQ, &id, &len));
	assert_int_equal(id, 1);
	assert_int_equal(len, HDR + VIRTIO_NET_MAX_FRAME);
	assert_memory_equal(fake_ptr(&t->d, huge + HDR), big, VIRTIO_NET_MAX_FRAME);
	assert_int_equal(stats(t).rx_dropped, 3);
	assert_int_equal(stats(t).rx_frames, 2);
}

static bool needs_reset(struct net_test *t)
{
	return fake_read(&t->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

/* Bad chains the device drops itself: counted, returned, the device goes on. */
static void test_hostile_chains(void **state)
{
	struct net_test *t = *state;
	uint8_t frame[100], got[BUF_SIZE];
	uint64_t g = fake_alloc(&t->d, 70000, 64);
	struct fake_buf writable[2] = { { g, HDR + 60, false }, { g + 4096, 100, true } };
	struct fake_buf rx_readable[2] = { { g, 64, false }, { g + 4096, 1526, true } };
	struct fake_buf tiny = { g, 8, false }, huge = { g, HDR + VIRTIO_NET_MAX_FRAME + 1, false };
	struct fake_buf rx_tiny = { g, 20, true };
	uint32_t id, len;

	fake_add_chain(&t->d, TXQ, 0, writable, 2);
	fake_add_chain(&t->d, TXQ, 2, &tiny, 1);
	fake_add_chain(&t->d, TXQ, 3, &huge, 1);
	fake_kick(&t->d, TXQ);
	assert_int_equal(stats(t).tx_errors, 3);
	assert_int_equal(peer_recv(t, got, sizeof(got)), -1);
	assert_true(fake_pop_used(&t->d, TXQ, &id, &len));
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_true(fake_pop_used(&t->d, TXQ, &id, &len));
	assert_true(fake_pop_used(&t->d, TXQ, &id, &len));
	assert_int_equal(id, 3);

	fake_add_chain(&t->d, RXQ, 0, rx_readable, 2);
	fake_add_chain(&t->d, RXQ, 2, &rx_tiny, 1);
	guest_post_rx(t, 3, 1526);
	fake_kick(&t->d, RXQ);
	make_frame(frame, 100, 9);
	peer_send(t, frame, 100);
	pump(t);
	assert_int_equal(stats(t).rx_errors, 2);
	assert_true(fake_pop_used(&t->d, RXQ, &id, &len));
	assert_int_equal(len, 0);
	assert_true(fake_pop_used(&t->d, RXQ, &id, &len));
	assert_int_equal(len, 0);
	assert_int_equal(guest_rx(t, 3, got), 100);
	assert_false(needs_reset(t));

	/* Still working. */
	t->tx_next = 5;
	guest_tx(t, frame, 100);
	fake_kick(&t->d, TXQ);
	assert_int_equal(peer_recv(t, got, sizeof(got)), 100);
}

/* Chains virtq.c refuses: the device needs a reset, sends nothing, and recovers after one. */
static void test_broken_chains_and_reset(void **state)
{
	struct net_test *t = *state;
	uint8_t frame[100], got[BUF_SIZE];
	int round;

	for (round = 0; round < 3; round++) {
		make_frame(frame, 100, round);
		if (round == 0) {
			/* A buffer outside guest RAM. */
			fake_set_desc(&t->d, TXQ, 0, FAKE_RAM_GPA + RAM_SIZE - 8, 64, 0, 0);
			fake_make_avail(&t->d, TXQ, 0);
		} else if (round == 1) {
			/* A loop: 0 -> 1 -> 0. */
			fake_set_desc(&t->d, TXQ, 0, t->tx_buf[0], HDR + 14, VRING_DESC_F_NEXT, 1);
			fake_set_desc(&t->d, TXQ, 1, t->tx_buf[1], 14, VRING_DESC_F_NEXT, 0);
			fake_make_avail(&t->d, TXQ, 0);
		} else {
			/* A receive chain with a next index outside the queue. */
			fake_set_desc(&t->d, RXQ, 0, t->rx_buf[0], 64,
				      VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, QSIZE + 3);
			fake_make_avail(&t->d, RXQ, 0);
			peer_send(t, frame, 100);
		}
		fake_kick(&t->d, round == 2 ? RXQ : TXQ);
		pump(t);
		assert_true(needs_reset(t));
		assert_int_equal(peer_recv(t, got, sizeof(got)), -1);
		/* Nothing goes on until the reset, and the backend is not watched meanwhile. */
		assert_false(net_fd_ready(t));

		fake_write(&t->d, VIRTIO_MMIO_STATUS, 0);
		net_test_start(t, F_BASE);
		pump(t);
		if (round == 2) {
			/* The frame waited in the backend for the new rings. */
			guest_post_rx(t, 0, 1526);
			fake_kick(&t->d, RXQ);
			pump(t);
			assert_int_equal(guest_rx(t, 0, got), 100);
		}
		guest_tx(t, frame, 100);
		fake_kick(&t->d, TXQ);
		assert_int_equal(peer_recv(t, got, sizeof(got)), 100);
		assert_memory_equal(got, frame, 100);
		assert_false(needs_reset(t));
	}
}

/* A reset while frames wait both ways: old rings forgotten, nothing stale, no spin. */
static void test_reset_mid_traffic(void **state)
{
	struct net_test *t = *state;
	uint8_t frame[200], got[BUF_SIZE];
	unsigned int i;
	uint32_t id, len;

	for (i = 0; i < 4; i++)
		guest_post_rx(t, i, 1526);
	fake_kick(&t->d, RXQ);
	for (i = 0; i < 10; i++) {
		make_frame(frame, 100, i);
		guest_tx(t, frame, 100);
		peer_send(t, frame, 100);
	}
	/* The guest resets before the device ran: the queued chains are gone. */
	fake_write(&t->d, VIRTIO_MMIO_STATUS, 0);
	pump(t);
	assert_int_equal(peer_recv(t, got, sizeof(got)), -1);
	assert_false(net_fd_ready(t)); /* at most one wake-up after the reset, then quiet */
	assert_int_equal(stats(t).rx_frames, 0);

	net_test_start(t, F_BASE | (1ULL << VIRTIO_RING_F_EVENT_IDX));
	pump(t);
	for (i = 0; i < 10; i++)
		guest_post_rx(t, i, 1526);
	fake_kick(&t->d, RXQ);
	pump(t);
	/* The frames the backend held came in, in order, into the new rings. */
	for (i = 0; i < 10; i++) {
		make_frame(frame, 100, i);
		assert_int_equal(guest_rx(t, i, got), 100);
		assert_memory_equal(got, frame, 100);
	}
	assert_false(fake_pop_used(&t->d, TXQ, &id, &len));
	make_frame(frame, 60, 99);
	guest_tx(t, frame, 60);
	fake_kick(&t->d, TXQ);
	assert_int_equal(peer_recv(t, got, sizeof(got)), 60);
	assert_memory_equal(got, frame, 60);
	assert_int_equal(peer_recv(t, got, sizeof(got)), -1);
}

/* The backend is full: transmit stops (EAGAIN) and resumes in order once it drains. */
static void test_tx_backpressure(void **state)
{
	struct net_test *t = *state;
	uint8_t frame[1500], got[BUF_SIZE];
	unsigned int sent, received = 0, used = 0, rounds = 0;
	uint32_t id, len;

	/* 200 frames of 1000 bytes: more than the socket's send buffer takes unread. */
	for (sent = 0; sent < 200; sent++) {
		make_frame(frame, 1000, sent);
		guest_tx(t, frame, 1000);
	}
	fake_kick(&t->d, TXQ);
	pump(t);
	while (fake_pop_used(&t->d, TXQ, &id, &len))
		used++;
	assert_true(used > 0 && used < 200); /* stopped at EAGAIN, the rest still queued */
	assert_false(net_fd_ready(t));	     /* waiting for room, not spinning */
	assert_int_equal(stats(t).tx_dropped, 0);
	/* The peer drains; room wakes the device (EPOLLOUT), without any guest kick. */
	while (received < 200 && rounds++ < 10000) {
		while (peer_recv(t, got, sizeof(got)) == 1000) {
			make_frame(frame, 1000, received);
			assert_memory_equal(got, frame, 1000);
			received++;
		}
		pump(t);
		while (fake_pop_used(&t->d, TXQ, &id, &len))
			used++;
	}
	assert_int_equal(received, 200);
	assert_int_equal(used, 200);
	assert_int_equal(stats(t).tx_frames, 200);
	assert_int_equal(stats(t).tx_dropped, 0);
}

/* The backend's other end closes: traffic is dropped and counted, the loop stays quiet. */
static void test_backend_hangup(void **state)
{
	struct net_test *t = *state;
	uint8_t frame[100];
	uint32_t id, len;

	guest_post_rx(t, 0, 1526);
	fake_kick(&t->d, RXQ);
	close(t->peer);
	t->peer = -1;
	pump(t);
	assert_false(net_fd_ready(t));
	make_frame(frame, 100, 1);
	guest_tx(t, frame, 100);
	fake_kick(&t->d, TXQ);
	pump(t);
	assert_true(fake_pop_used(&t->d, TXQ, &id, &len));
	assert_int_equal(stats(t).tx_dropped, 1);
	assert_false(fake_pop_used(&t->d, RXQ, &id, &len));
	assert_false(needs_reset(t));
}

/* 1000 frames out and back: the peer echoes each; all arrive intact and in order. */
static void test_round_trips(void **state)
{
	struct net_test *t = *state;
	uint8_t frame[1514], got[BUF_SIZE];
	unsigned int i, posted = 0, done = 0;

	for (; posted < QSIZE; posted++)
		guest_post_rx(t, posted % QSIZE, 1526);
	fake_kick(&t->d, RXQ);
	for (i = 0; i < 1000; i++) {
		size_t len = 60 + (i * 37) % 1455;
		ssize_t n;

		make_frame(frame, len, i);
		guest_tx(t, frame, len);
		fake_kick(&t->d, TXQ);
		n = peer_recv(t, got, sizeof(got));
		assert_int_equal(n, (ssize_t)len);
		assert_memory_equal(got, frame, len);
		peer_send(t, got, n);
		pump(t);
		assert_int_equal(guest_rx(t, done % QSIZE, got), len);
		assert_memory_equal(got, frame, len);
		done++;
		guest_post_rx(t, posted++ % QSIZE, 1526); /* refill, as a driver does */
		fake_kick(&t->d, RXQ);
		while (fake_pop_used(&t->d, TXQ, &(uint32_t){ 0 }, &(uint32_t){ 0 }))
			;
	}
	assert_int_equal(stats(t).tx_frames, 1000);
	assert_int_equal(stats(t).rx_frames, 1000);
	assert_int_equal(stats(t).rx_dropped + stats(t).tx_dropped, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_and_config, setup, teardown),
		cmocka_unit_test(test_bad_parameters),
		cmocka_unit_test(test_random_mac),
		cmocka_unit_test_setup_teardown(test_tx_layouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_no_buffers, setup_event_idx, teardown),
		cmocka_unit_test_setup_teardown(test_rx_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_chains_and_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_mid_traffic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_backpressure, setup_event_idx, teardown),
		cmocka_unit_test_setup_teardown(test_backend_hangup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trips, setup_event_idx, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
