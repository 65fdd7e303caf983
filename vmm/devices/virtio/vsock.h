/*
 * virtio-vsock (virtio 1.2 §5.10) with a Unix-socket backend ("hybrid vsock", as Firecracker
 * and Cloud Hypervisor do it): the public constructor, and the state shared by the device
 * half (vsock.c: queues, packet validation, the rx pump) and the connection half
 * (vsock_conn.c: host sockets, the CONNECT handshake, buffering and credit, §5.10.6.3).
 *
 * Every host socket lives in the device's own epoll set; that one descriptor is watched by
 * the VMM's main loop (virtio_vsock_fd / virtio_vsock_process), so the device can be driven
 * by the real event loop or by a unit test alike. All of it runs on the main loop, under the
 * device lock (virtio.h), which also serialises it against resets from vCPU threads.
 */
#ifndef STRATUS_VMM_VIRTIO_VSOCK_H
#define STRATUS_VMM_VIRTIO_VSOCK_H

#include <stdint.h>
#include <linux/virtio_vsock.h>

#include "virtio.h"

#define VSOCK_HOST_CID	       2
#define VSOCK_HDR_LEN	       ((uint32_t)sizeof(struct virtio_vsock_hdr)) /* 44 */
#define VSOCK_MAX_PAYLOAD      KIB(64)	/* longest packet payload we send or accept */
#define VSOCK_BUF_ALLOC	       KIB(256) /* per-connection buffer we advertise */
#define VSOCK_MAX_CONNS	       1024	/* host fds a guest can make us hold */
#define VSOCK_HASH_SIZE	       1024
#define VSOCK_CONNECT_LINE_MAX 32 /* "CONNECT 4294967295\n" fits */
#define VSOCK_QUEUE_SIZE       256
#define VSOCK_RST_BACKLOG      64	  /* RSTs owed for packets that match no connection */
#define VSOCK_FIRST_HOST_PORT  (1U << 30) /* local ports for host-initiated connections */
#define VSOCK_RX_CHAINS	       64	  /* rx buffers one read of a host socket may fill */
#define VSOCK_RX_IOV	       1024	  /* their iovecs (IOV_MAX); >= 2 chains of queue size */

enum {
	VSOCK_QUEUE_RX,
	VSOCK_QUEUE_TX,
	VSOCK_QUEUE_EVENT,
	VSOCK_NR_QUEUES
};

enum vsock_conn_state {
	VSOCK_CONN_HOST_LINE,	/* host client accepted, reading its CONNECT line */
	VSOCK_CONN_REQUESTING,	/* host → guest: REQUEST owed or sent, awaiting RESPONSE */
	VSOCK_CONN_ESTABLISHED, /* data both ways */
	VSOCK_CONN_CLOSING,	/* an RST is owed, or we wait for the guest's: no more data */
};

/* Packets a connection owes the guest, in the order they go out. */
enum {
	VSOCK_OWE_REQUEST = 1 << 0,
	VSOCK_OWE_RESPONSE = 1 << 1,
	VSOCK_OWE_CREDIT = 1 << 2,
	VSOCK_OWE_SHUTDOWN = 1 << 3,
	VSOCK_OWE_RST = 1 << 4,
};

struct virtio_vsock;

struct vsock_conn {
	struct virtio_vsock *vs;
	struct vsock_conn *hash_next;		/* in vs->hash, once it has its ports */
	struct vsock_conn *all_prev, *all_next; /* in vs->all */
	struct vsock_conn *rx_next;		/* in the rx pump's list */
	struct vsock_conn *dead_next;		/* in vs->dead, after a driver reset */
	bool in_hash, on_rx_list;
	enum vsock_conn_state state;
	uint32_t local_port, peer_port; /* ours (host side) and the guest's */
	int fd;				/* the host socket, -1 once closed */
	uint32_t owe;			/* VSOCK_OWE_* */
	uint32_t shutdown_flags;	/* for the SHUTDOWN we owe */
	bool requested;			/* the REQUEST went out (else it is held) */
	bool readable, writable;	/* edge-triggered readiness, until EAGAIN */
	bool host_eof, host_hup;	/* the host closed its writing side / both sides */
	bool shut_wr_pending;		/* guest SHUTDOWN(SEND): shutdown(2) once flushed */
	bool rst_after_flush;		/* guest SHUTDOWN(both): RST once flushed */
	uint32_t peer_shutdown;		/* VIRTIO_VSOCK_SHUTDOWN_* the guest sent */
	/* Host → guest: the guest's credit (§5.10.6.3). */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	/* Guest → host: received, forwarded to the socket, and the fwd_cnt the guest last saw. */
	uint32_t rx_cnt, fwd_cnt, fwd_cnt_told;
	uint8_t *buf; /* ring of VSOCK_BUF_ALLOC bytes waiting for the host socket, or NULL */
	uint32_t buf_head, buf_len;
};

struct vsock_rst {
	uint32_t local_port, peer_port;
};

struct virtio_vsock {
	struct virtio_device dev;
	char name[48];
	uint64_t guest_cid;
	char path[4096];
	int epfd, listen_fd;
	/*
	 * A driver reset runs on a vCPU thread, whose seccomp list has neither epoll_ctl nor
	 * close: the connections it ends wait in dead, unlinked from everything else, and
	 * wake_fd (an eventfd in epfd) has the main loop close and free them.
	 */
	int wake_fd;
	struct vsock_conn *dead;
	struct event_loop *loop; /* where epfd is watched (NULL: not registered) */
	bool active;		 /* DRIVER_OK and not reset since */
	/*
	 * Restored: TRANSPORT_RESET is on the event queue and the driver has not handled it
	 * yet. Nothing goes to the guest meanwhile (a REQUEST could reach a socket the reset
	 * then kills, without telling us); the driver's refill of the event queue, after its
	 * handling, ends it (event_avail: the avail idx it must move past).
	 */
	bool reset_pending;
	uint16_t event_avail;
	struct vsock_conn *hash[VSOCK_HASH_SIZE];
	struct vsock_conn *all;
	struct vsock_conn *rx_head, *rx_tail;
	unsigned int nr_conns;
	uint32_t next_port;
	struct vsock_rst rst[VSOCK_RST_BACKLOG];
	unsigned int nr_rst;
	/* rx: the chains one batched read fills, their buffers, and the payload parts. */
	struct virtq_chain rx_chains[VSOCK_RX_CHAINS];
	struct iovec rx_iov[VSOCK_RX_IOV], tx_iov[VSOCK_QUEUE_SIZE];
	struct iovec slice[VSOCK_RX_IOV];
	uint64_t bad_packets; /* dropped as malformed, for the log and tests */
};

/* Public: the device, and how its socket side is driven. */

/*
 * A vsock device for a guest with CID guest_cid (>= 3) listening on the Unix socket path (a
 * stale socket file there is replaced). Guest connections to host port P go to "path_P".
 */
int virtio_vsock_new(const char *name, uint64_t guest_cid, const char *path,
		     struct virtio_device **out, struct error *err);
/* The device's epoll descriptor: readable when a host socket needs attention. */
int virtio_vsock_fd(struct virtio_device *dev);
/* Handle whatever is ready on the host sockets (takes the device lock). */
void virtio_vsock_process(struct virtio_device *dev);
/* Packets dropped as malformed so far. */
uint64_t virtio_vsock_bad_packets(struct virtio_device *dev);

/* Internal: vsock.c. */
void vsock_rx_pump(struct virtio_vsock *vs);
void vsock_owe_rst(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port);
void vsock_fill_hdr(const struct virtio_vsock *vs, struct virtio_vsock_hdr *h, uint32_t src_port,
		    uint32_t dst_port, uint16_t op);
unsigned int vsock_iov_slice(struct iovec *dst, unsigned int cap, const struct iovec *src,
			     unsigned int nr, uint64_t offset, size_t len);

/* Internal: vsock_conn.c. */
int vsock_listen(struct virtio_vsock *vs, struct error *err);
void vsock_on_listener(struct virtio_vsock *vs);
void vsock_conn_on_event(struct vsock_conn *conn, uint32_t events);
struct vsock_conn *vsock_conn_lookup(struct virtio_vsock *vs, uint32_t local_port,
				     uint32_t peer_port);
void vsock_conn_free(struct vsock_conn *conn);
void vsock_conn_owe(struct vsock_conn *conn, uint32_t what);
void vsock_conn_reset(struct vsock_conn *conn);
void vsock_conn_guest_connect(struct virtio_vsock *vs, const struct virtio_vsock_hdr *h);
void vsock_conn_rx_packet(struct vsock_conn *conn, const struct virtio_vsock_hdr *h,
			  const struct virtq_chain *chain);
/* Fill one control packet for the guest into chain; 0 if the connection owed none. */
uint32_t vsock_conn_fill_rx(struct vsock_conn *conn, const struct virtq_chain *chain,
			    bool *free_after);
/* Stream data: how much the guest may take now, reading it (0: none, EOF handled), and the
 * header of a packet carrying len bytes of it. */
size_t vsock_conn_rx_credit(const struct vsock_conn *conn);
ssize_t vsock_conn_read(struct vsock_conn *conn, const struct iovec *iov, unsigned int nr);
void vsock_conn_data_hdr(struct vsock_conn *conn, struct virtio_vsock_hdr *h, uint32_t len);
bool vsock_conn_has_rx_work(const struct vsock_conn *conn);
void vsock_conn_driver_reset(struct virtio_vsock *vs);
/* Close and free the connections a driver reset ended (main thread, device lock held). */
void vsock_conn_reap(struct virtio_vsock *vs);

#endif
