/*
 * virtio-net, the network device (virtio 1.2 §5.1): device ID 1, one receive and one
 * transmit queue (no control queue, no multiqueue), features MAC, STATUS (the link is always
 * up) and MTU when one is given; no offloads and no MRG_RXBUF. Frames go to and come from a
 * backend descriptor (net.h): a tap, or any datagram socket, one frame per read or write.
 *
 * Every frame carries a struct virtio_net_hdr_v1 (12 bytes with VERSION_1, §5.1.6). On
 * transmit the device skips it: nothing was negotiated that the driver could ask for there.
 * On receive it writes a header of zeros but num_buffers, which §5.1.6.4 asks to be 1 when
 * MRG_RXBUF is not negotiated, so each receive chain must hold header and frame (§5.1.6.3:
 * Linux posts 1526-byte buffers, or chains of pages with a large MTU).
 *
 * The guest is hostile. A transmit chain with a device-writable buffer, or shorter than the
 * header, or whose frame is not 14 to VIRTIO_NET_MAX_FRAME bytes, is returned unsent and
 * counted. A receive chain with a device-readable buffer, or too small for any frame, is
 * returned empty and counted; a frame too big for the chain at hand is dropped and counted
 * and the chain serves the next frame. Nothing is ever written past a chain (virtq.h).
 *
 * Everything runs on the main loop, bounded per wake-up (NET_BATCH chains or frames, then
 * the loop serves others: transmit kicks itself, receive is level-triggered). The backend
 * sits in the device's own epoll set, which the main loop watches: EPOLLIN only while the
 * guest has receive buffers (without any, the backend keeps the frames queued for us and
 * the guest's next receive notification re-arms it: no spinning, nothing dropped here), and
 * EPOLLOUT only while a transmit is waiting for room (EAGAIN: the chain goes back to the
 * ring and is retried first, so frames keep their order). The interest is only changed on
 * the main thread (a vCPU thread's filter has no epoll_ctl): a reset, on a vCPU, just marks
 * the device stopped and the next event disarms.
 *
 * Frames are copied through one bounce buffer: the VMM's seccomp list has read and write
 * but not readv and writev (docs/vmm.md, Security). A transmit frame that lies in one guest
 * buffer is written from guest memory directly.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "../../device.h"
#include "../../log.h"
#include "../../vm.h"
#include "mmio.h"
#include "net.h"

#define NET_BATCH    256 /* chains or frames per wake-up, then yield the loop */
#define NET_ETH_HLEN 14
#define NET_FEATURES ((1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS))

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "virtio-net headers and config are little-endian; add conversions for this host"
#endif

_Static_assert(sizeof(struct virtio_net_hdr_v1) == VIRTIO_NET_HDR_LEN, "virtio_net_hdr_v1");

/* The configuration space we expose (§5.1.4): mac, status, max_virtqueue_pairs, mtu. */
struct net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

struct virtio_net {
	struct virtio_device dev;
	char name[VM_DEVICE_ID_MAX + 16];
	struct net_config config;
	int backend_fd;
	int epfd;		 /* holds backend_fd; the main loop watches it */
	struct event_loop *loop; /* where epfd is watched, NULL if nowhere */
	uint32_t interest;	 /* backend_fd's events in epfd */
	bool backend_gone;	 /* hung up or failed: removed from epfd, traffic dropped */
	bool active;		 /* DRIVER_OK and no reset since */
	bool rx_starved;	 /* no receive buffer: wait for the guest's notification */
	bool tx_blocked;	 /* the backend said EAGAIN: wait for EPOLLOUT */
	struct virtio_net_stats stats;
	struct iovec rx_iov[VIRTIO_NET_QUEUE_SIZE];
	struct iovec tx_iov[VIRTIO_NET_QUEUE_SIZE];
	uint8_t bounce[VIRTIO_NET_MAX_FRAME + 1]; /* + 1: a longer datagram shows as too long */
};

static struct virtio_net *net_of(struct virtio_device *dev)
{
	return container_of(dev, struct virtio_net, dev);
}

/* Queues usable: a broken one fails the device, which then does nothing until a reset. */
static bool net_running(const struct virtio_net *net)
{
	const struct virtq *rx = &net->dev.queues[VIRTIO_NET_QUEUE_RX];
	const struct virtq *tx = &net->dev.queues[VIRTIO_NET_QUEUE_TX];

	return net->active && !rx->broken && !tx->broken;
}

static void net_backend_gone(struct virtio_net *net, const char *why)
{
	if (net->backend_gone)
		return;
	net->backend_gone = true;
	net->tx_blocked = false;
	epoll_ctl(net->epfd, EPOLL_CTL_DEL, net->backend_fd, NULL);
	log_warn("%s: backend %s: the NIC drops its traffic from now on", net->name, why);
}

/* Main thread only: what we want from the backend, from the device's state now. */
static void net_update_interest(struct virtio_net *net)
{
	struct epoll_event ev = { .data.ptr = net };
	uint32_t want = 0;

	if (net->backend_gone)
		return;
	if (net_running(net) && net->dev.queues[VIRTIO_NET_QUEUE_RX].ready && !net->rx_starved)
		want |= EPOLLIN;
	if (net_running(net) && net->tx_blocked)
		want |= EPOLLOUT;
	if (want == net->interest)
		return;
	ev.events = want;
	if (epoll_ctl(net->epfd, EPOLL_CTL_MOD, net->backend_fd, &ev) < 0) {
		log_once(LOG_WARN, "%s: epoll_ctl: %s", net->name, strerror(errno));
		return;
	}
	net->interest = want;
}

/* One transmit frame, len bytes after the header: 0, or -errno (-EAGAIN: retry later). */
static int net_tx_write(struct virtio_net *net, const struct virtq_chain *chain, size_t len)
{
	const void *frame = NULL;
	uint64_t skip = VIRTIO_NET_HDR_LEN;
	unsigned int i;
	ssize_t n;

	for (i = 0; i < chain->nr_out; i++) {
		if (skip >= chain->out[i].iov_len) {
			skip -= chain->out[i].iov_len;
			continue;
		}
		if (chain->out[i].iov_len - skip >= len)
			frame = (const uint8_t *)chain->out[i].iov_base + skip;
		break;
	}
	if (!frame) {
		virtq_chain_read(chain, VIRTIO_NET_HDR_LEN, net->bounce, len);
		frame = net->bounce;
	}
	do
		n = write(net->backend_fd, frame, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

/* Send one popped chain. false: the backend is full, the chain must go back. */
static bool net_tx_chain(struct virtio_net *net, const struct virtq_chain *chain)
{
	uint64_t len = chain->out_len - MIN(chain->out_len, (uint64_t)VIRTIO_NET_HDR_LEN);
	int r;

	if (chain->nr_in || chain->out_len < VIRTIO_NET_HDR_LEN + NET_ETH_HLEN ||
	    len > VIRTIO_NET_MAX_FRAME) {
		net->stats.tx_errors++;
		log_once(LOG_WARN,
			 "%s: dropped a malformed transmit chain (%llu readable bytes, %u "
			 "writable buffers)",
			 net->name, (unsigned long long)chain->out_len, chain->nr_in);
		return true;
	}
	if (net->backend_gone) {
		net->stats.tx_dropped++;
		return true;
	}
	r = net_tx_write(net, chain, len);
	if (r == -EAGAIN) {
		net->tx_blocked = true;
		return false;
	}
	if (r < 0) {
		net->stats.tx_dropped++;
		log_once(LOG_WARN, "%s: backend write: %s (frame dropped)", net->name,
			 strerror(-r));
		return true;
	}
	net->stats.tx_frames++;
	net->stats.tx_bytes += len;
	return true;
}

static void net_tx(struct virtio_net *net)
{
	struct virtq *vq = &net->dev.queues[VIRTIO_NET_QUEUE_TX];
	struct virtq_chain chain;
	unsigned int done = 0;

	if (!net_running(net) || !vq->ready)
		return;
	net->tx_blocked = false;
	virtq_chain_init(&chain, net->tx_iov, ARRAY_SIZE(net->tx_iov));
	while (done < NET_BATCH && virtq_pop_chain(vq, &chain) > 0) {
		if (!net_tx_chain(net, &chain)) {
			virtq_unpop_chain(vq); /* first again once the backend has room */
			break;
		}
		virtq_push_used(vq, chain.head, 0);
		done++;
	}
	virtio_device_notify_used(&net->dev, VIRTIO_NET_QUEUE_TX);
	if (!vq->broken && !net->tx_blocked && done >= NET_BATCH)
		virtio_device_queue_kick(&net->dev, VIRTIO_NET_QUEUE_TX);
}

/* Read one frame from the backend: its length (> 0), 0 if none is waiting, or -errno. */
static ssize_t net_rx_read(struct virtio_net *net)
{
	ssize_t n;

	do
		n = read(net->backend_fd, net->bounce, sizeof(net->bounce));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	return n;
}

/*
 * Fill the popped chain with the next frame. Returns 1 if the chain was used (a frame, or
 * returned empty as unusable), 0 if it goes back to the ring (no frame waiting, or the
 * frame was dropped: *again says whether to look for the next frame).
 */
static int net_rx_chain(struct virtio_net *net, const struct virtq_chain *chain, bool *again)
{
	struct virtq *vq = &net->dev.queues[VIRTIO_NET_QUEUE_RX];
	struct virtio_net_hdr_v1 hdr = { .num_buffers = 1 };
	ssize_t n;

	*again = false;
	if (chain->nr_out || chain->in_len < VIRTIO_NET_HDR_LEN + NET_ETH_HLEN) {
		net->stats.rx_errors++;
		log_once(LOG_WARN,
			 "%s: returned an unusable receive chain (%llu readable, %llu writable "
			 "bytes)",
			 net->name, (unsigned long long)chain->out_len,
			 (unsigned long long)chain->in_len);
		virtq_push_used(vq, chain->head, 0);
		*again = true;
		return 1;
	}
	n = net_rx_read(net);
	if (n < 0) {
		net_backend_gone(net, strerror(-n));
		return 0;
	}
	if (n == 0)
		return 0; /* nothing waiting (or an empty datagram): the next event */
	*again = true;
	if (n < NET_ETH_HLEN || n > VIRTIO_NET_MAX_FRAME ||
	    (uint64_t)n + VIRTIO_NET_HDR_LEN > chain->in_len) {
		net->stats.rx_dropped++;
		log_once(LOG_WARN,
			 "%s: dropped a %zd-byte frame: receive buffer of %llu bytes (frames of "
			 "14 to %u bytes fit buffers of 12 more)",
			 net->name, n, (unsigned long long)chain->in_len, VIRTIO_NET_MAX_FRAME);
		return 0;
	}
	virtq_chain_write(chain, 0, &hdr, sizeof(hdr));
	virtq_chain_write(chain, VIRTIO_NET_HDR_LEN, net->bounce, n);
	virtq_push_used(vq, chain->head, VIRTIO_NET_HDR_LEN + (uint32_t)n);
	net->stats.rx_frames++;
	net->stats.rx_bytes += n;
	return 1;
}

static void net_rx(struct virtio_net *net)
{
	struct virtq *vq = &net->dev.queues[VIRTIO_NET_QUEUE_RX];
	struct virtq_chain chain;
	unsigned int done;
	bool again = true;
	int r;

	if (!net_running(net) || !vq->ready || net->backend_gone)
		return;
	virtq_chain_init(&chain, net->rx_iov, ARRAY_SIZE(net->rx_iov));
	for (done = 0; done < NET_BATCH && again; done++) {
		r = virtq_pop_chain(vq, &chain);
		if (r <= 0) {
			/* No buffer (EVENT_IDX: the driver was asked to notify), or a bad one. */
			net->rx_starved = r == 0;
			break;
		}
		if (!net_rx_chain(net, &chain, &again))
			virtq_unpop_chain(vq);
	}
	virtio_device_notify_used(&net->dev, VIRTIO_NET_QUEUE_RX);
	/* At NET_BATCH, frames left in the backend wake the (level-triggered) loop again. */
}

static void net_queue_notify(struct virtio_device *dev, unsigned int q)
{
	struct virtio_net *net = net_of(dev);

	if (q == VIRTIO_NET_QUEUE_TX) {
		net_tx(net);
	} else if (q == VIRTIO_NET_QUEUE_RX) {
		net->rx_starved = false; /* new buffers: take frames again */
		net_rx(net);
	}
	net_update_interest(net);
}

void virtio_net_process(struct virtio_device *dev)
{
	struct virtio_net *net = net_of(dev);
	struct epoll_event ev;
	int n;

	virtio_device_lock(dev);
	n = epoll_wait(net->epfd, &ev, 1, 0);
	if (n == 1 && (ev.events & EPOLLOUT) && net->tx_blocked)
		net_tx(net);
	if (n == 1 && (ev.events & EPOLLIN))
		net_rx(net);
	/* Reported whatever the interest: drain what we may, then let go of the backend. */
	if (n == 1 && (ev.events & (EPOLLHUP | EPOLLERR)))
		net_backend_gone(net, ev.events & EPOLLERR ? "failed" : "hung up");
	net_update_interest(net);
	virtio_device_unlock(dev);
}

static void net_config_read(struct virtio_device *dev, uint32_t offset, void *data, uint32_t len)
{
	/* The transport checked offset + len <= config_size. */
	memcpy(data, (const uint8_t *)&net_of(dev)->config + offset, len);
}

static int net_activate(struct virtio_device *dev)
{
	struct virtio_net *net = net_of(dev);

	net->active = true;
	net->rx_starved = false;
	net->tx_blocked = false;
	return 0; /* the transport kicks the ready queues next: that arms the backend */
}

/* On a vCPU thread: no epoll_ctl here; the next main-loop event disarms the backend. */
static void net_reset(struct virtio_device *dev)
{
	struct virtio_net *net = net_of(dev);

	net->active = false;
	net->rx_starved = false;
	net->tx_blocked = false;
}

static void net_destroy(struct virtio_device *dev)
{
	struct virtio_net *net = net_of(dev);
	const struct virtio_net_stats *s = &net->stats;

	log_debug("%s: tx %llu frames %llu bytes, %llu dropped, %llu malformed; rx %llu frames "
		  "%llu bytes, %llu dropped, %llu unusable buffers",
		  net->name, (unsigned long long)s->tx_frames, (unsigned long long)s->tx_bytes,
		  (unsigned long long)s->tx_dropped, (unsigned long long)s->tx_errors,
		  (unsigned long long)s->rx_frames, (unsigned long long)s->rx_bytes,
		  (unsigned long long)s->rx_dropped, (unsigned long long)s->rx_errors);
	if (net->loop)
		event_loop_remove(net->loop, net->epfd);
	if (net->epfd >= 0)
		close(net->epfd);
	if (net->backend_fd >= 0)
		close(net->backend_fd);
	free(net);
}

static const struct virtio_device_ops net_ops = {
	.config_read = net_config_read,
	.activate = net_activate,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
	.destroy = net_destroy,
};

static bool net_mac_ok(const uint8_t mac[6])
{
	static const uint8_t zero[6];

	return !(mac[0] & 1) && memcmp(mac, zero, sizeof(zero));
}

int virtio_net_new(const char *name, int backend_fd, const uint8_t mac[6], uint32_t mtu,
		   struct virtio_device **out, struct error *err)
{
	struct virtio_net *net = calloc(1, sizeof(*net));
	struct epoll_event ev = { .events = 0 };
	int flags, r;

	if (!net) {
		close(backend_fd);
		return error_set(err, -ENOMEM, "virtio-net: out of memory");
	}
	snprintf(net->name, sizeof(net->name), "%s", name && *name ? name : "virtio-net");
	net->backend_fd = backend_fd;
	net->epfd = -1;
	if (!net_mac_ok(mac)) {
		r = error_set(err, -EINVAL,
			      "%s: mac %02x:%02x:%02x:%02x:%02x:%02x is not a unicast "
			      "address",
			      net->name, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		goto fail;
	}
	if (mtu && (mtu < VIRTIO_NET_MIN_MTU || mtu > VIRTIO_NET_MAX_MTU)) {
		r = error_set(err, -EINVAL, "%s: mtu %u is not from %u to %u", net->name, mtu,
			      VIRTIO_NET_MIN_MTU, VIRTIO_NET_MAX_MTU);
		goto fail;
	}
	flags = fcntl(backend_fd, F_GETFL);
	if (flags < 0 || fcntl(backend_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		r = error_set_errno(err, -errno, "%s: backend descriptor", net->name);
		goto fail;
	}
	net->epfd = epoll_create1(EPOLL_CLOEXEC);
	ev.data.ptr = net;
	if (net->epfd < 0 || epoll_ctl(net->epfd, EPOLL_CTL_ADD, backend_fd, &ev) < 0) {
		r = error_set_errno(err, -errno, "%s: epoll", net->name);
		goto fail;
	}
	memcpy(net->config.mac, mac, 6);
	net->config.status = VIRTIO_NET_S_LINK_UP;
	net->config.max_virtqueue_pairs = 1;
	net->config.mtu = (uint16_t)mtu;
	net->dev.name = net->name;
	net->dev.device_id = VIRTIO_ID_NET;
	net->dev.features = NET_FEATURES | (mtu ? 1ULL << VIRTIO_NET_F_MTU : 0);
	net->dev.config_size = sizeof(net->config);
	net->dev.nr_queues = 2;
	net->dev.queue_max_size[VIRTIO_NET_QUEUE_RX] = VIRTIO_NET_QUEUE_SIZE;
	net->dev.queue_max_size[VIRTIO_NET_QUEUE_TX] = VIRTIO_NET_QUEUE_SIZE;
	net->dev.ops = &net_ops;
	*out = &net->dev;
	return 0;
fail:
	net_destroy(&net->dev);
	return r;
}

int virtio_net_check_backend(int fd, const char *what, struct error *err)
{
	struct ifreq ifr = { 0 };
	socklen_t len = sizeof(int);
	struct stat st;
	int type;

	if (fstat(fd, &st) < 0)
		return error_set_errno(err, -errno, "%s: not an open file descriptor", what);
	if (S_ISSOCK(st.st_mode)) {
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
			return error_set_errno(err, -errno, "%s: socket type", what);
		if (type != SOCK_DGRAM && type != SOCK_SEQPACKET)
			return error_set(err, -EINVAL,
					 "%s: a stream socket; one frame per message needs "
					 "SOCK_DGRAM or SOCK_SEQPACKET",
					 what);
		return 0;
	}
	if (!S_ISCHR(st.st_mode) || ioctl(fd, TUNGETIFF, &ifr) < 0)
		return error_set(err, -EINVAL,
				 "%s: neither a tap (/dev/net/tun attached with TUNSETIFF) nor a "
				 "datagram socket",
				 what);
	if ((ifr.ifr_flags & (IFF_TUN | IFF_TAP)) != IFF_TAP || !(ifr.ifr_flags & IFF_NO_PI) ||
	    (ifr.ifr_flags & IFF_VNET_HDR))
		return error_set(err, -EINVAL,
				 "%s: tap '%.16s' must be opened IFF_TAP|IFF_NO_PI without "
				 "IFF_VNET_HDR (raw Ethernet frames)",
				 what, ifr.ifr_name);
	return 0;
}

int virtio_net_open_tap(const char *ifname, struct error *err)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	int fd, r;

	if (!ifname[0] || strlen(ifname) >= IFNAMSIZ)
		return error_set(err, -EINVAL, "tap '%s': an interface name is 1 to %d characters",
				 ifname, IFNAMSIZ - 1);
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return error_set_errno(err, -errno, "tap '%s': cannot open /dev/net/tun", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		close(fd);
		if (r == -EINVAL)
			return error_set(err, r,
					 "tap '%s': the interface exists and is not a tap "
					 "without packet information and vnet header",
					 ifname);
		if (r == -EBUSY)
			return error_set(err, r,
					 "tap '%s': already in use (a single-queue tap takes "
					 "one reader)",
					 ifname);
		return error_set_errno(err, r, "tap '%s': TUNSETIFF", ifname);
	}
	return fd;
}

void virtio_net_random_mac(uint8_t mac[6])
{
	if (getrandom(mac, 6, 0) != 6)
		memset(mac, 0x5a, 6);
	mac[0] = (mac[0] & 0xfc) | 0x02; /* locally administered, unicast */
}

int virtio_net_fd(struct virtio_device *dev)
{
	return net_of(dev)->epfd;
}

void virtio_net_get_stats(struct virtio_device *dev, struct virtio_net_stats *out)
{
	*out = net_of(dev)->stats;
}

/* The backend of one -device entry: the caller's fd (dup'd) or the tap it names. */
static int net_backend(const struct vm_device_config *spec, const char *name, struct error *err)
{
	char what[64];
	int fd, r;

	if (!spec->net_fd_set)
		return virtio_net_open_tap(spec->path, err);
	snprintf(what, sizeof(what), "%s: fd %d", name, spec->net_fd);
	r = virtio_net_check_backend(spec->net_fd, what, err);
	if (r < 0)
		return r;
	fd = fcntl(spec->net_fd, F_DUPFD_CLOEXEC, 3);
	return fd < 0 ? error_set_errno(err, -errno, "%s: dup", what) : fd;
}

static int net_create(struct vm *vm, const struct vm_device_config *spec,
		      struct virtio_device **out, struct error *err)
{
	const char *name = spec->id[0] ? spec->id : "virtio-net";
	uint8_t mac[6];
	int fd;

	(void)vm;
	fd = net_backend(spec, name, err);
	if (fd < 0)
		return fd;
	if (spec->mac_set)
		memcpy(mac, spec->mac, sizeof(mac));
	else
		virtio_net_random_mac(mac);
	return virtio_net_new(spec->id, fd, mac, spec->mtu, out, err);
}

static void net_on_events(void *opaque, uint32_t events)
{
	(void)events;
	virtio_net_process(opaque);
}

static int net_attached(struct vm *vm, struct virtio_device *dev, struct error *err)
{
	struct virtio_net *net = net_of(dev);
	int r = event_loop_add(vm->loop, net->epfd, EPOLLIN, net_on_events, dev);

	if (r < 0)
		return error_set_errno(err, r, "%s: event loop", net->name);
	net->loop = vm->loop;
	log_debug("%s: mac %02x:%02x:%02x:%02x:%02x:%02x, mtu %u", net->name, net->config.mac[0],
		  net->config.mac[1], net->config.mac[2], net->config.mac[3], net->config.mac[4],
		  net->config.mac[5], net->config.mtu);
	return 0;
}

/* One virtio-net per "-device virtio-net-device", in command-line order. */
static int net_init(struct vm *vm, struct error *err)
{
	return virtio_mmio_vm_attach_all(vm, VM_DEVICE_VIRTIO_NET, net_create, net_attached, err);
}

/*
 * Snapshots (docs/vmm.md "virtio-net"): the backend's other end (a tap in some network
 * namespace, with its peers' state) cannot be carried into a clone, so a VM with a NIC is
 * never saved; templates have none and containers with networks boot cold.
 */
static int net_save(struct vm *vm, struct snapshot_writer *w, struct error *err)
{
	(void)vm;
	(void)w;
	return error_set(err, -ENOTSUP,
			 "virtio-net: a VM with a network device cannot be snapshotted");
}

static int net_restore(struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	(void)vm;
	(void)f;
	return error_set(err, -ENOTSUP,
			 "virtio-net: a snapshot cannot be restored into a VM with a network "
			 "device");
}

static const struct device_ops net_device = {
	.name = "virtio-net",
	.level = DEVICE_LEVEL_VIRTIO,
	.init = net_init,
	.save = net_save,
	.restore = net_restore,
};
DEVICE_REGISTER(net_device);
