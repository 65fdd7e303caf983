/*
 * The fake guest vsock driver (see vsock_fake_guest.h). Rx descriptor i always points at
 * rx buffer i, tx descriptor i at tx slot i; a used tx element frees its slot.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/virtio_config.h>

#include "vsock_fake_guest.h"

#define GUEST_RAM MIB(64)

int vsock_guest_init(struct vsock_guest *g, const char *path, uint32_t rx_buf_size)
{
	int r;

	memset(g, 0, sizeof(*g));
	g->rx_buf_size = rx_buf_size;
	r = virtio_vsock_new("vsock0", GUEST_CID, path, &g->dev, NULL);
	if (r < 0)
		return r;
	return fake_driver_init(&g->d, g->dev, GUEST_RAM);
}

void vsock_guest_destroy(struct vsock_guest *g)
{
	fake_driver_destroy(&g->d);
}

/* Notify queue q if the device asked to hear of buffers added since the last notify
 * (virtio 1.2 §2.7.10, what Linux's virtqueue_kick_prepare decides). */
static void vsock_guest_notify(struct vsock_guest *g, unsigned int q, bool now)
{
	uint16_t new = g->d.queues[q].avail_idx, old = g->notified_avail[q];

	g->notified_avail[q] = new;
	/* Our avail idx store before we read the device's avail_event. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if ((uint16_t)(new - fake_avail_event(&g->d, q) - 1) >= (uint16_t)(new - old))
		return;
	if (now)
		fake_kick(&g->d, q);
	else
		fake_write(&g->d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

void vsock_guest_start(struct vsock_guest *g)
{
	struct fake_driver *d = &g->d;
	unsigned int i;

	/* EVENT_IDX, as Linux negotiates it: kicks only when the device waits for them. */
	fake_negotiate(d, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX));
	fake_setup_queue(d, VSOCK_QUEUE_RX, GUEST_QSIZE);
	fake_setup_queue(d, VSOCK_QUEUE_TX, GUEST_QSIZE);
	fake_setup_queue(d, VSOCK_QUEUE_EVENT, GUEST_EVENT_BUFS);
	g->rx_gpa = fake_alloc(d, (uint64_t)GUEST_QSIZE * g->rx_buf_size, 64);
	g->tx_gpa = fake_alloc(d, (uint64_t)GUEST_QSIZE * GUEST_TX_SLOT, 64);
	g->event_gpa = fake_alloc(d, 8 * GUEST_EVENT_BUFS, 8);
	for (i = 0; i < GUEST_QSIZE; i++) {
		fake_set_desc(d, VSOCK_QUEUE_RX, i, g->rx_gpa + (uint64_t)i * g->rx_buf_size,
			      g->rx_buf_size, VRING_DESC_F_WRITE, 0);
		fake_make_avail(d, VSOCK_QUEUE_RX, i);
		g->tx_free[i] = GUEST_QSIZE - 1 - i;
	}
	g->nr_tx_free = GUEST_QSIZE;
	for (i = 0; i < GUEST_EVENT_BUFS; i++) {
		fake_set_desc(d, VSOCK_QUEUE_EVENT, i, g->event_gpa + 8 * i, 8, VRING_DESC_F_WRITE,
			      0);
		fake_make_avail(d, VSOCK_QUEUE_EVENT, i);
	}
	fake_driver_ok(d);
	vsock_guest_notify(g, VSOCK_QUEUE_RX, true);
	vsock_guest_notify(g, VSOCK_QUEUE_EVENT, true);
}

void vsock_guest_poll(struct vsock_guest *g, int timeout_ms)
{
	int epfd = virtio_vsock_fd(g->dev);
	bool sockets_ready, sockets_seen = false;
	unsigned int rounds;

	if (g->tx_kick) {
		g->tx_kick = false;
		vsock_guest_notify(g, VSOCK_QUEUE_TX, false);
	}
	if (g->rx_kick) {
		g->rx_kick = false;
		vsock_guest_notify(g, VSOCK_QUEUE_RX, false);
	}
	if (timeout_ms && g->d.queues[VSOCK_QUEUE_TX].size) {
		/* About to sleep: interrupts back on (Linux's virtqueue_enable_cb). */
		fake_set_used_event(&g->d, VSOCK_QUEUE_RX, g->d.queues[VSOCK_QUEUE_RX].last_used);
		fake_set_used_event(&g->d, VSOCK_QUEUE_TX, g->d.queues[VSOCK_QUEUE_TX].last_used);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	/*
	 * As the VMM's event loop: one poll() over the queue eventfds (our kicks, the device's
	 * own) and the device's epoll descriptor, until nothing is ready; we wait up to
	 * timeout_ms for the host sockets once.
	 */
	for (rounds = 0; rounds < 1000; rounds++) {
		int n = fake_driver_poll_round(&g->d, epfd, sockets_seen ? 0 : timeout_ms,
					       &sockets_ready);

		if (sockets_ready)
			virtio_vsock_process(g->dev);
		sockets_seen |= sockets_ready;
		if (!n)
			break;
	}
}

struct virtio_vsock_hdr vsock_guest_hdr(uint32_t src_port, uint32_t dst_port, uint16_t op,
					uint32_t buf_alloc, uint32_t fwd_cnt)
{
	return (struct virtio_vsock_hdr){
		.src_cid = GUEST_CID,
		.dst_cid = VSOCK_HOST_CID,
		.src_port = src_port,
		.dst_port = dst_port,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = buf_alloc,
		.fwd_cnt = fwd_cnt,
	};
}

static void vsock_guest_reclaim_tx(struct vsock_guest *g)
{
	uint32_t id, len;

	while (fake_pop_used(&g->d, VSOCK_QUEUE_TX, &id, &len))
		g->tx_free[g->nr_tx_free++] = id;
}

bool vsock_guest_send_raw(struct vsock_guest *g, const struct virtio_vsock_hdr *hdr,
			  const void *payload, uint32_t payload_len, uint32_t chain_len)
{
	uint64_t gpa;
	uint16_t slot;

	vsock_guest_reclaim_tx(g);
	if (!g->nr_tx_free)
		return false;
	slot = g->tx_free[--g->nr_tx_free];
	gpa = g->tx_gpa + (uint64_t)slot * GUEST_TX_SLOT;
	payload_len = MIN(payload_len, GUEST_TX_SLOT - VSOCK_HDR_LEN);
	memcpy(fake_ptr(&g->d, gpa), hdr, VSOCK_HDR_LEN);
	if (payload_len && payload) /* NULL: whatever the slot holds (benchmarks) */
		memcpy(fake_ptr(&g->d, gpa + VSOCK_HDR_LEN), payload, payload_len);
	if (!chain_len)
		chain_len = VSOCK_HDR_LEN + payload_len;
	fake_set_desc(&g->d, VSOCK_QUEUE_TX, slot, gpa, MIN(chain_len, GUEST_TX_SLOT), 0, 0);
	fake_make_avail(&g->d, VSOCK_QUEUE_TX, slot);
	if (g->batch_tx)
		g->tx_kick = true;
	else
		vsock_guest_notify(g, VSOCK_QUEUE_TX, true);
	return true;
}

bool vsock_guest_send(struct vsock_guest *g, const struct virtio_vsock_hdr *hdr,
		      const void *payload)
{
	return vsock_guest_send_raw(g, hdr, payload, hdr->len, 0);
}

bool vsock_guest_recv(struct vsock_guest *g, struct virtio_vsock_hdr *hdr, void *payload,
		      uint32_t cap, int timeout_ms)
{
	uint32_t id, len;
	uint8_t *buf;
	int waited = 0;

	while (!fake_pop_used(&g->d, VSOCK_QUEUE_RX, &id, &len)) {
		if (waited > timeout_ms)
			return false;
		vsock_guest_poll(g, waited < timeout_ms ? 1 : 0);
		waited++;
	}
	buf = fake_ptr(&g->d, g->rx_gpa + (uint64_t)id * g->rx_buf_size);
	memset(hdr, 0, sizeof(*hdr));
	memcpy(hdr, buf, MIN(len, VSOCK_HDR_LEN));
	if (len > VSOCK_HDR_LEN && payload)
		memcpy(payload, buf + VSOCK_HDR_LEN, MIN(len - VSOCK_HDR_LEN, cap));
	fake_make_avail(&g->d, VSOCK_QUEUE_RX, id);
	g->rx_kick = true;
	return true;
}

static int vsock_unix_addr(struct sockaddr_un *addr, const char *path, uint32_t port)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (port == UINT32_MAX)
		snprintf(addr->sun_path, sizeof(addr->sun_path), "%s", path);
	else
		snprintf(addr->sun_path, sizeof(addr->sun_path), "%s_%u", path, port);
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

int vsock_host_connect(const char *path)
{
	struct sockaddr_un addr;
	int fd = vsock_unix_addr(&addr, path, UINT32_MAX);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int vsock_host_listen(const char *path, uint32_t port)
{
	struct sockaddr_un addr;
	int fd = vsock_unix_addr(&addr, path, port);

	unlink(addr.sun_path);
	if (fd >= 0 &&
	    (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 128) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}
