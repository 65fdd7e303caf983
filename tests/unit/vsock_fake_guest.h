/*
 * A fake guest vsock driver over the fake virtio driver (virtio_fake_driver.h), for the
 * vsock unit tests, fuzzer and benchmark: it owns a virtio-vsock device listening on a Unix
 * socket, keeps the rx queue full of buffers, sends packets on the tx queue and receives
 * them from rx, and drives the device's socket side (virtio_vsock_process) as the VMM's
 * event loop would. Free of cmocka; callers assert on what it returns.
 */
#ifndef STRATUS_TESTS_VSOCK_FAKE_GUEST_H
#define STRATUS_TESTS_VSOCK_FAKE_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/vsock.h"
#include "virtio_fake_driver.h"

#define GUEST_CID	 3
#define GUEST_QSIZE	 256
#define GUEST_TX_SLOT	 (VSOCK_HDR_LEN + KIB(64))
#define GUEST_EVENT_BUFS 4

struct vsock_guest {
	struct fake_driver d;
	struct virtio_device *dev;
	uint32_t rx_buf_size;
	uint64_t rx_gpa, tx_gpa, event_gpa;
	uint16_t tx_free[GUEST_QSIZE];
	unsigned int nr_tx_free;
	bool rx_kick;  /* buffers re-posted since the last kick */
	bool batch_tx; /* send: kick tx from the next poll, not at once */
	bool tx_kick;
	uint16_t notified_avail[VSOCK_NR_QUEUES]; /* avail idx at the last notify decision */
};

/* A device on path (uds-path) and the fake guest; rx buffers of rx_buf_size bytes. */
int vsock_guest_init(struct vsock_guest *g, const char *path, uint32_t rx_buf_size);
void vsock_guest_destroy(struct vsock_guest *g);
/* Negotiate, set up the three queues with buffers, DRIVER_OK. */
void vsock_guest_start(struct vsock_guest *g);

/* Let the device work: socket events (waiting up to timeout_ms for one) and queues. */
void vsock_guest_poll(struct vsock_guest *g, int timeout_ms);

/* A header from the guest (src = GUEST_CID:src_port, dst = host:dst_port). */
struct virtio_vsock_hdr vsock_guest_hdr(uint32_t src_port, uint32_t dst_port, uint16_t op,
					uint32_t buf_alloc, uint32_t fwd_cnt);
/*
 * Queue a packet: hdr (44 bytes, sent as is), then payload_len bytes of payload, in one
 * descriptor (payload NULL: what the slot holds); chain_len is the descriptor's length
 * (0: header + payload). Kicks tx (with batch_tx: on the next poll).
 * Returns false if every tx slot is in flight.
 */
bool vsock_guest_send_raw(struct vsock_guest *g, const struct virtio_vsock_hdr *hdr,
			  const void *payload, uint32_t payload_len, uint32_t chain_len);
bool vsock_guest_send(struct vsock_guest *g, const struct virtio_vsock_hdr *hdr,
		      const void *payload);

/*
 * The next packet the device put on rx: its header and payload (up to cap bytes), the
 * buffer going back to the device. False if there is none (after polling up to
 * timeout_ms for one).
 */
bool vsock_guest_recv(struct vsock_guest *g, struct virtio_vsock_hdr *hdr, void *payload,
		      uint32_t cap, int timeout_ms);

/* Unix socket helpers for the host side: a client of path, a listener on path_port. */
int vsock_host_connect(const char *path);
int vsock_host_listen(const char *path, uint32_t port);

#endif
