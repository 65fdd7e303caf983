/*
 * virtio-net (net.c, docs/vmm.md "virtio-net"): one Ethernet NIC whose frames go to and come
 * from a backend file descriptor that carries one raw Ethernet frame per read or write: a
 * tap opened IFF_TAP|IFF_NO_PI (no vnet header, no offloads), or any datagram socket
 * (SOCK_DGRAM, SOCK_SEQPACKET; the unit tests use a socketpair). The VMM wires the device's
 * epoll descriptor into its main loop; the unit tests poll virtio_net_fd() themselves and
 * call virtio_net_process().
 */
#ifndef STRATUS_VMM_VIRTIO_NET_H
#define STRATUS_VMM_VIRTIO_NET_H

#include <stdint.h>

#include "virtio.h"

#define VIRTIO_NET_QUEUE_RX   0
#define VIRTIO_NET_QUEUE_TX   1
#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_HDR_LEN    12	   /* struct virtio_net_hdr_v1 (virtio 1.2 §5.1.6) */
#define VIRTIO_NET_MAX_FRAME  (65535 + 14) /* the largest frame either way, bytes */
#define VIRTIO_NET_MIN_MTU    68	   /* ETH_MIN_MTU: what Linux accepts */
#define VIRTIO_NET_MAX_MTU    65535

/* What the device did, for logs and tests. Frames are counted without the virtio header. */
struct virtio_net_stats {
	uint64_t tx_frames, tx_bytes; /* written to the backend */
	uint64_t tx_dropped;	      /* good frames the backend refused or could not take */
	uint64_t tx_errors;	      /* malformed chains: writable part, short, oversized */
	uint64_t rx_frames, rx_bytes; /* handed to the guest */
	uint64_t rx_dropped;	      /* frames that fit no buffer, runts, oversized */
	uint64_t rx_errors;	      /* unusable receive chains: readable part, too small */
};

/*
 * A device named name (its -device id, or "" for "virtio-net") on backend_fd, which it takes
 * over (closed on failure too) and makes non-blocking. mac: the guest NIC's address (a
 * unicast one); mtu: 0, or VIRTIO_NET_MIN_MTU to VIRTIO_NET_MAX_MTU, offered as
 * VIRTIO_NET_F_MTU.
 */
int virtio_net_new(const char *name, int backend_fd, const uint8_t mac[6], uint32_t mtu,
		   struct virtio_device **out, struct error *err);

/*
 * Check that fd is a usable backend: a tap attached to an interface with IFF_TAP|IFF_NO_PI
 * and without IFF_VNET_HDR, or a SOCK_DGRAM/SOCK_SEQPACKET socket. what names it in err.
 */
int virtio_net_check_backend(int fd, const char *what, struct error *err);

/* Open (or create) the tap interface ifname through /dev/net/tun: the fd, or -errno. */
int virtio_net_open_tap(const char *ifname, struct error *err);

/* A random locally administered unicast MAC (52:54:00:... is QEMU's; we use our own). */
void virtio_net_random_mac(uint8_t mac[6]);

/* The descriptor to watch for EPOLLIN; then call virtio_net_process() (main-loop thread). */
int virtio_net_fd(struct virtio_device *dev);
void virtio_net_process(struct virtio_device *dev);

void virtio_net_get_stats(struct virtio_device *dev, struct virtio_net_stats *out);

#endif
