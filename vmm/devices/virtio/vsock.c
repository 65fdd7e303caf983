/*
 * virtio-vsock, the device half (virtio 1.2 §5.10): device ID 19, no feature bits (stream
 * sockets only, §5.10.3), three queues (rx, tx, event: §5.10.2) and a configuration space
 * of one le64, the guest's CID (§5.10.4). Connections and host sockets are in vsock_conn.c.
 *
 * The guest is hostile. Each tx packet's header is copied out of guest memory once and
 * checked before anything uses it (§5.10.6): src_cid must be the guest's CID and dst_cid
 * the host's (2), else the packet is dropped (nobody to answer); the type must be STREAM and
 * len must fit both the chain and VSOCK_MAX_PAYLOAD, else the connection gets an RST; an
 * unknown op resets its connection; anything that matches no connection and is not itself an
 * RST gets one (§5.10.6.6). No tx packet stalls the queue: a well-behaved guest never
 * exceeds the credit we advertised, so guest data always fits its connection's buffer.
 *
 * rx (§5.10.6.2): the device needs a guest buffer only when it has a packet, so the rx pump
 * pops a chain, asks the next connection with work to fill it, and gives the chain back
 * (virtq_unpop_chain) if the connection had nothing after all. Stream data fills as many
 * buffers as the connection has credit for with one readv (up to VSOCK_RX_CHAINS; the ones
 * the read did not reach go back), one interrupt per pump round. It runs after tx packets,
 * socket events and rx notifications, handles a bounded batch per call and kicks itself for
 * the rest. Host connections that arrive before DRIVER_OK are held, their REQUEST queued
 * until the driver is up; the client may give up by closing its socket. The event queue's
 * buffers are kept unused: a TRANSPORT_RESET event (§5.10.6.7) is only needed for snapshots.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../../device.h"
#include "../../log.h"
#include "../../vm.h"
#include "mmio.h"
#include "vsock.h"

#define VSOCK_RX_BATCH 256 /* packets per pump round, then yield the loop */

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vsock headers are little-endian; add conversions for this host"
#endif

void vsock_fill_hdr(const struct virtio_vsock *vs, struct virtio_vsock_hdr *h, uint32_t src_port,
		    uint32_t dst_port, uint16_t op)
{
	*h = (struct virtio_vsock_hdr){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = vs->guest_cid,
		.src_port = src_port,
		.dst_port = dst_port,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.buf_alloc = VSOCK_BUF_ALLOC,
	};
}

/* dst (cap entries) = the len bytes of iovecs src from offset on; returns the iovec count. */
unsigned int vsock_iov_slice(struct iovec *dst, unsigned int cap, const struct iovec *src,
			     unsigned int nr, uint64_t offset, size_t len)
{
	unsigned int i, n = 0;

	for (i = 0; i < nr && len && n < cap; i++) {
		size_t take;

		if (offset >= src[i].iov_len) {
			offset -= src[i].iov_len;
			continue;
		}
		take = MIN(src[i].iov_len - offset, len);
		dst[n++] = (struct iovec){ (uint8_t *)src[i].iov_base + offset, take };
		len -= take;
		offset = 0;
	}
	return n;
}

void vsock_owe_rst(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port)
{
	if (vs->nr_rst < VSOCK_RST_BACKLOG)
		vs->rst[vs->nr_rst++] = (struct vsock_rst){ local_port, peer_port };
	/* Else dropped: a guest flooding us with stray packets gets fewer answers. */
}

static bool vsock_rx_ready(struct virtio_vsock *vs)
{
	const struct virtq *vq = &vs->dev.queues[VSOCK_QUEUE_RX];

	return vs->active && !vs->reset_pending && vq->ready && !vq->broken;
}

/* Has the driver refilled the event queue since TRANSPORT_RESET (so handled it)? */
static void vsock_check_reset_handled(struct virtio_vsock *vs)
{
	const struct virtq *vq = &vs->dev.queues[VSOCK_QUEUE_EVENT];

	if (!vs->reset_pending || !vq->ready || vq->broken)
		return;
	if (le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE)) == vs->event_avail)
		return;
	vs->reset_pending = false;
	log_debug("%s: the driver handled TRANSPORT_RESET", vs->name);
}

/*
 * Queue up rx chains for one read of conn's socket, starting with first (popped already):
 * chain after chain while the connection has credit for them, the ring has buffers and our
 * iovec storage has room for a chain of Queue Size buffers. Fills vs->rx_chains and
 * vs->slice (the payload parts, in order) and room[] (payload bytes per chain); returns the
 * chain count, *nr_slice the iovec count.
 */
static unsigned int vsock_rx_gather(struct virtio_vsock *vs, const struct virtq_chain *first,
				    size_t credit, unsigned int budget, uint32_t *room,
				    unsigned int *nr_slice)
{
	struct virtq *vq = &vs->dev.queues[VSOCK_QUEUE_RX];
	struct virtq_chain *c = vs->rx_chains;
	unsigned int nr = 0, nr_iov = first->nr_out + first->nr_in, k, i;
	size_t want = 0;

	c[0] = *first;
	*nr_slice = 0;
	for (;;) {
		size_t take =
			MIN(MIN(c[nr].in_len - VSOCK_HDR_LEN, VSOCK_MAX_PAYLOAD), credit - want);

		k = vsock_iov_slice(vs->slice + *nr_slice, ARRAY_SIZE(vs->slice) - *nr_slice,
				    c[nr].in, c[nr].nr_in, VSOCK_HDR_LEN, take);
		for (room[nr] = 0, i = 0; i < k; i++)
			room[nr] += vs->slice[*nr_slice + i].iov_len;
		*nr_slice += k;
		want += room[nr++];
		if (nr >= budget || nr >= VSOCK_RX_CHAINS || want >= credit ||
		    *nr_slice >= ARRAY_SIZE(vs->slice) ||
		    ARRAY_SIZE(vs->rx_iov) - nr_iov < VSOCK_QUEUE_SIZE)
			return nr;
		virtq_chain_init(&c[nr], vs->rx_iov + nr_iov, ARRAY_SIZE(vs->rx_iov) - nr_iov);
		if (virtq_pop_chain(vq, &c[nr]) <= 0)
			return nr;
		if (c[nr].in_len <= VSOCK_HDR_LEN) {
			virtq_unpop_chain(vq); /* no room for data: the next pump round's */
			return nr;
		}
		nr_iov += c[nr].nr_out + c[nr].nr_in;
	}
}

/*
 * Stream data from conn into first and, while there is more, further rx chains: one readv
 * for all of them (a Linux guest posts 4 KiB buffers). Pushes the chains it filled and
 * returns how many; chains the data did not reach go back to the ring (0: first included,
 * else first is still the caller's).
 */
static unsigned int vsock_rx_data(struct virtio_vsock *vs, struct vsock_conn *conn,
				  const struct virtq_chain *first, unsigned int budget)
{
	struct virtq *vq = &vs->dev.queues[VSOCK_QUEUE_RX];
	size_t credit = vsock_conn_rx_credit(conn);
	uint32_t room[VSOCK_RX_CHAINS];
	struct virtio_vsock_hdr h;
	unsigned int nr, nr_slice, i;
	ssize_t n;

	if (!credit || first->in_len <= VSOCK_HDR_LEN)
		return 0;
	nr = vsock_rx_gather(vs, first, credit, budget, room, &nr_slice);
	n = nr_slice ? vsock_conn_read(conn, vs->slice, nr_slice) : 0;
	for (i = 0; i < nr && n > 0; i++) {
		uint32_t len = MIN((size_t)n, room[i]);

		vsock_conn_data_hdr(conn, &h, len);
		virtq_chain_write(&vs->rx_chains[i], 0, &h, VSOCK_HDR_LEN);
		virtq_push_used(vq, vs->rx_chains[i].head, VSOCK_HDR_LEN + len);
		n -= len;
	}
	/* The ones the read did not reach, latest first; never first, which the caller has. */
	for (; nr > MAX(i, 1U); nr--)
		virtq_unpop_chain(vq);
	return i;
}

/* Fill rx chains starting with the popped chain; returns how many were pushed (0: none). */
static unsigned int vsock_rx_one(struct virtio_vsock *vs, const struct virtq_chain *chain,
				 unsigned int budget)
{
	struct virtq *vq = &vs->dev.queues[VSOCK_QUEUE_RX];
	struct vsock_conn *conn;
	struct virtio_vsock_hdr h;
	unsigned int tries = vs->nr_conns + 1, n;
	bool free_after;
	uint32_t len;

	if (vs->nr_rst) {
		struct vsock_rst r = vs->rst[--vs->nr_rst];

		vsock_fill_hdr(vs, &h, r.local_port, r.peer_port, VIRTIO_VSOCK_OP_RST);
		virtq_chain_write(chain, 0, &h, VSOCK_HDR_LEN);
		virtq_push_used(vq, chain->head, VSOCK_HDR_LEN);
		return 1;
	}
	/* Each at most once: one that cannot use this buffer waits for a bigger one. */
	while ((conn = vs->rx_head) && tries--) {
		vs->rx_head = conn->rx_next;
		if (!vs->rx_head)
			vs->rx_tail = NULL;
		conn->on_rx_list = false;
		free_after = false;
		n = vsock_rx_data(vs, conn, chain, budget);
		if (!n && (len = vsock_conn_fill_rx(conn, chain, &free_after))) {
			virtq_push_used(vq, chain->head, len);
			n = 1;
		}
		if (free_after)
			vsock_conn_free(conn);
		else if (vsock_conn_has_rx_work(conn))
			vsock_conn_owe(conn, 0); /* to the back of the list: round robin */
		if (n)
			return n;
	}
	return 0;
}

void vsock_rx_pump(struct virtio_vsock *vs)
{
	struct virtq *vq = &vs->dev.queues[VSOCK_QUEUE_RX];
	struct virtq_chain chain;
	unsigned int done = 0, n;

	if (!vsock_rx_ready(vs))
		return;
	while (done < VSOCK_RX_BATCH && (vs->rx_head || vs->nr_rst)) {
		virtq_chain_init(&chain, vs->rx_iov, ARRAY_SIZE(vs->rx_iov));
		if (virtq_pop_chain(vq, &chain) <= 0)
			break; /* no buffer: the guest's next rx notification brings us back */
		if (chain.in_len < VSOCK_HDR_LEN) {
			virtq_push_used(vq, chain.head, 0); /* useless to anyone */
			vs->bad_packets++;
			done++;
			continue;
		}
		n = vsock_rx_one(vs, &chain, VSOCK_RX_BATCH - done);
		if (!n) {
			virtq_unpop_chain(vq);
			break;
		}
		done += n;
	}
	virtio_device_notify_used(&vs->dev, VSOCK_QUEUE_RX);
	if (done >= VSOCK_RX_BATCH)
		virtio_device_queue_kick(&vs->dev, VSOCK_QUEUE_RX);
}

/* Copy the header out (once) and check what every packet must satisfy. */
static bool vsock_tx_header(struct virtio_vsock *vs, const struct virtq_chain *chain,
			    struct virtio_vsock_hdr *h)
{
	if (chain->out_len < VSOCK_HDR_LEN ||
	    virtq_chain_read(chain, 0, h, VSOCK_HDR_LEN) != VSOCK_HDR_LEN)
		return false;
	/* A packet not from this guest, or not for the host, has nobody to answer. */
	return h->src_cid == vs->guest_cid && h->dst_cid == VSOCK_HOST_CID;
}

static void vsock_tx_packet(struct virtio_vsock *vs, const struct virtq_chain *chain)
{
	struct virtio_vsock_hdr h;
	struct vsock_conn *conn;

	if (!vsock_tx_header(vs, chain, &h)) {
		vs->bad_packets++;
		log_once(LOG_WARN, "%s: dropped a malformed tx packet", vs->name);
		return;
	}
	conn = vsock_conn_lookup(vs, h.dst_port, h.src_port);
	if (h.type != VIRTIO_VSOCK_TYPE_STREAM || h.len > VSOCK_MAX_PAYLOAD ||
	    h.len > chain->out_len - VSOCK_HDR_LEN) {
		vs->bad_packets++;
		if (conn && conn->state != VSOCK_CONN_CLOSING)
			vsock_conn_reset(conn);
		else if (!conn && h.op != VIRTIO_VSOCK_OP_RST)
			vsock_owe_rst(vs, h.dst_port, h.src_port);
		return;
	}
	if (conn)
		vsock_conn_rx_packet(conn, &h, chain);
	else if (h.op == VIRTIO_VSOCK_OP_REQUEST)
		vsock_conn_guest_connect(vs, &h);
	else if (h.op != VIRTIO_VSOCK_OP_RST)
		vsock_owe_rst(vs, h.dst_port, h.src_port);
}

static void vsock_tx(struct virtio_vsock *vs)
{
	struct virtq *vq = &vs->dev.queues[VSOCK_QUEUE_TX];
	struct virtq_chain chain;
	unsigned int done = 0;

	virtq_chain_init(&chain, vs->tx_iov, ARRAY_SIZE(vs->tx_iov));
	while (done < vq->size && virtq_pop_chain(vq, &chain) > 0) {
		vsock_tx_packet(vs, &chain);
		virtq_push_used(vq, chain.head, 0);
		done++;
	}
	virtio_device_notify_used(&vs->dev, VSOCK_QUEUE_TX);
	if (!vq->broken && done >= vq->size)
		virtio_device_queue_kick(&vs->dev, VSOCK_QUEUE_TX);
}

static void vsock_queue_notify(struct virtio_device *dev, unsigned int q)
{
	struct virtio_vsock *vs = container_of(dev, struct virtio_vsock, dev);

	if (q == VSOCK_QUEUE_TX)
		vsock_tx(vs);
	else if (q == VSOCK_QUEUE_EVENT)
		vsock_check_reset_handled(vs);
	/* The event queue's buffers stay with us until there is an event to report. */
	vsock_rx_pump(vs);
}

static void vsock_config_read(struct virtio_device *dev, uint32_t offset, void *data, uint32_t len)
{
	struct virtio_vsock *vs = container_of(dev, struct virtio_vsock, dev);
	uint64_t cid = vs->guest_cid; /* le64 guest_cid (§5.10.4) */

	memcpy(data, (uint8_t *)&cid + offset, len);
}

static int vsock_activate(struct virtio_device *dev)
{
	struct virtio_vsock *vs = container_of(dev, struct virtio_vsock, dev);

	vs->active = true;
	/* We run on a vCPU here: let the queue thread send what was held. */
	virtio_device_queue_kick(dev, VSOCK_QUEUE_RX);
	return 0;
}

static void vsock_reset(struct virtio_device *dev)
{
	struct virtio_vsock *vs = container_of(dev, struct virtio_vsock, dev);

	vs->active = false;
	vs->reset_pending = false;
	vs->nr_rst = 0;
	vsock_conn_driver_reset(vs);
}

static void vsock_destroy(struct virtio_device *dev)
{
	struct virtio_vsock *vs = container_of(dev, struct virtio_vsock, dev);

	vsock_conn_reap(vs);
	while (vs->all)
		vsock_conn_free(vs->all);
	if (vs->wake_fd >= 0)
		close(vs->wake_fd);
	if (vs->loop)
		event_loop_remove(vs->loop, vs->epfd);
	if (vs->listen_fd >= 0) {
		close(vs->listen_fd);
		unlink(vs->path);
	}
	if (vs->epfd >= 0)
		close(vs->epfd);
	log_debug("%s: %llu malformed packets dropped", vs->name,
		  (unsigned long long)vs->bad_packets);
	free(vs);
}

/*
 * Restored from a snapshot: the guest still holds sockets for connections whose host ends
 * belonged to another process. Tell it with TRANSPORT_RESET on the event queue (virtio 1.2
 * §5.10.6.6): the driver resets its connected sockets and re-reads the CID; listening
 * sockets (the agent's) stay. Packets for the old connections get an RST meanwhile.
 */
static void vsock_restored(struct virtio_device *dev)
{
	struct virtio_vsock *vs = container_of(dev, struct virtio_vsock, dev);
	struct virtq *vq = &dev->queues[VSOCK_QUEUE_EVENT];
	struct virtio_vsock_event event = { .id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET) };
	struct virtq_chain chain;
	struct iovec iov[VSOCK_QUEUE_SIZE];
	int r;

	virtq_chain_init(&chain, iov, ARRAY_SIZE(iov));
	r = vq->ready ? virtq_pop_chain(vq, &chain) : 0;
	if (r <= 0 || virtq_chain_write(&chain, 0, &event, sizeof(event)) != sizeof(event)) {
		if (r > 0)
			virtq_push_used(vq, chain.head, 0);
		log_warn("%s: no event buffer for TRANSPORT_RESET: old guest connections stay "
			 "until they time out",
			 dev->name);
	} else {
		virtq_push_used(vq, chain.head, sizeof(event));
		log_debug("%s: TRANSPORT_RESET sent to the guest", dev->name);
		vs->reset_pending = true;
		vs->event_avail = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
		virtq_notify_after(vq, vs->event_avail); /* the refill after its handling */
	}
	virtio_device_notify_used(dev, VSOCK_QUEUE_EVENT);
}

static const struct virtio_device_ops vsock_ops = {
	.config_read = vsock_config_read,
	.activate = vsock_activate,
	.queue_notify = vsock_queue_notify,
	.reset = vsock_reset,
	.destroy = vsock_destroy,
	.restored = vsock_restored,
};

int virtio_vsock_new(const char *name, uint64_t guest_cid, const char *path,
		     struct virtio_device **out, struct error *err)
{
	struct virtio_vsock *vs = calloc(1, sizeof(*vs));
	unsigned int q;
	int r;

	if (!vs)
		return error_set(err, -ENOMEM, "virtio-vsock: out of memory");
	snprintf(vs->name, sizeof(vs->name), "%s", name && *name ? name : "virtio-vsock");
	vs->listen_fd = -1;
	vs->wake_fd = -1;
	vs->dev.name = vs->name;
	vs->dev.device_id = VIRTIO_ID_VSOCK;
	vs->dev.config_size = sizeof(uint64_t);
	vs->dev.nr_queues = VSOCK_NR_QUEUES;
	for (q = 0; q < VSOCK_NR_QUEUES; q++)
		vs->dev.queue_max_size[q] = VSOCK_QUEUE_SIZE;
	vs->dev.ops = &vsock_ops;
	vs->guest_cid = guest_cid;
	if (guest_cid < 3 || guest_cid > UINT32_MAX ||
	    snprintf(vs->path, sizeof(vs->path), "%s", path) >= (int)sizeof(vs->path)) {
		r = error_set(err, -EINVAL, "%s: bad guest-cid %llu or uds-path", vs->name,
			      (unsigned long long)guest_cid);
		free(vs);
		return r;
	}
	vs->epfd = epoll_create1(EPOLL_CLOEXEC);
	vs->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = vs->epfd < 0 || vs->wake_fd < 0 ? error_set_errno(err, -errno, "%s: epoll", vs->name)
					    : vsock_listen(vs, err);
	if (r == 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = vs };

		if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, vs->wake_fd, &ev) < 0)
			r = error_set_errno(err, -errno, "%s: epoll", vs->name);
	}
	if (r < 0) {
		vsock_destroy(&vs->dev);
		return r;
	}
	*out = &vs->dev;
	return 0;
}

int virtio_vsock_fd(struct virtio_device *dev)
{
	return container_of(dev, struct virtio_vsock, dev)->epfd;
}

uint64_t virtio_vsock_bad_packets(struct virtio_device *dev)
{
	return container_of(dev, struct virtio_vsock, dev)->bad_packets;
}

void virtio_vsock_process(struct virtio_device *dev)
{
	struct virtio_vsock *vs = container_of(dev, struct virtio_vsock, dev);
	struct epoll_event ev[64];
	int i, n;

	virtio_device_lock(dev);
	/* first, so that no event below is for a connection a reset ended */
	vsock_conn_reap(vs);
	n = epoll_wait(vs->epfd, ev, ARRAY_SIZE(ev), 0);
	for (i = 0; i < n; i++) {
		if (ev[i].data.ptr == vs) {
			eventfd_t v;

			eventfd_read(vs->wake_fd, &v);
		} else if (ev[i].data.ptr) {
			vsock_conn_on_event(ev[i].data.ptr, ev[i].events);
		} else {
			vsock_on_listener(vs);
		}
	}
	vsock_rx_pump(vs);
	virtio_device_unlock(dev);
}

static void vsock_on_events(void *opaque, uint32_t events)
{
	(void)events;
	virtio_vsock_process(opaque);
}

static int vsock_create(struct vm *vm, const struct vm_device_config *spec,
			struct virtio_device **out, struct error *err)
{
	(void)vm;
	return virtio_vsock_new(spec->id, spec->guest_cid, spec->path, out, err);
}

/* Once attached, the device's own epoll set joins the main loop. */
static int vsock_attached(struct vm *vm, struct virtio_device *dev, struct error *err)
{
	struct virtio_vsock *vs = container_of(dev, struct virtio_vsock, dev);
	int r = event_loop_add(vm->loop, vs->epfd, EPOLLIN, vsock_on_events, dev);

	if (r < 0)
		return error_set_errno(err, r, "%s: event loop", vs->name);
	vs->loop = vm->loop;
	return 0;
}

/* One vsock device per "-device vhost-vsock-device" (the guest has one transport). */
static int vsock_init(struct vm *vm, struct error *err)
{
	return virtio_mmio_vm_attach_all(vm, VM_DEVICE_VIRTIO_VSOCK, vsock_create, vsock_attached,
					 err);
}

static const struct device_ops vsock_device = {
	.name = "virtio-vsock",
	.level = DEVICE_LEVEL_VIRTIO,
	.init = vsock_init,
};
DEVICE_REGISTER(vsock_device);
