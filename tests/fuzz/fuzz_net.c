/*
 * libFuzzer target for virtio-net (vmm/devices/virtio/net.c) behind the virtio-mmio
 * transport, with a SOCK_SEQPACKET socketpair as the backend. The input becomes a guest's
 * descriptor table and available ring, shared by the receive and the transmit queue (each
 * with its own used ring), a data area (buffers, indirect tables) in fake guest RAM, and
 * frames the "network" sends. The device then runs as the main loop would: transmit and
 * receive notifications, backend events, a reset at the end. Checked: the VMM goes on
 * (the device fails itself at worst), no queue completes more chains than were offered,
 * every frame sent out is 14 to VIRTIO_NET_MAX_FRAME bytes, every receive completion is
 * empty or header + such a frame, no more frames come in than were sent. ASan and UBSan
 * do the rest. Input layout (little-endian):
 *   [0]     flags: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 fold descriptor addresses
 *           into the data area, bit 3 reset between transmit and receive, bits 4-6 log2 of
 *           the queue size
 *   [1..2]  available idx    [3..4] used_event
 *   [5]     frames to send (low 4 bits)   [6..7] their length seed
 *   then    16 * size bytes of descriptors, 2 * size of available ring, then the data area
 *           (the frames' bytes are taken from it too).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "../unit/virtio_fake_driver.h"
#include "devices/virtio/net.h"
#include "log.h"

#define RAM_SIZE    KIB(128)
#define DESC_OFF    0x0000 /* up to 128 * 16 */
#define AVAIL_OFF   0x0800 /* up to 6 + 2 * 128 */
#define USED_RX_OFF 0x0a00 /* up to 6 + 8 * 128 */
#define USED_TX_OFF 0x0e00
#define DATA_OFF    0x1400
#define HEADER_LEN  8

struct fuzz_layout {
	uint8_t flags, frames;
	uint16_t size, avail_idx, used_event, frame_seed;
	const uint8_t *desc, *ring, *data;
	size_t data_len;
};

static bool fuzz_parse(const uint8_t *in, size_t len, struct fuzz_layout *l)
{
	if (len < HEADER_LEN)
		return false;
	l->flags = in[0];
	l->size = 1u << ((in[0] >> 4) & 7);
	memcpy(&l->avail_idx, in + 1, 2);
	memcpy(&l->used_event, in + 3, 2);
	l->frames = in[5] & 15;
	memcpy(&l->frame_seed, in + 6, 2);
	in += HEADER_LEN;
	len -= HEADER_LEN;
	if (len < 18u * l->size)
		return false;
	l->desc = in;
	l->ring = in + 16u * l->size;
	l->data = in + 18u * l->size;
	l->data_len = MIN(len - 18u * l->size, RAM_SIZE - DATA_OFF);
	return true;
}

/* Write the guest's side of the rings (and again after a reset: the driver's refill). */
static void fuzz_fill(struct fake_driver *d, const struct fuzz_layout *l)
{
	struct vring_desc *desc = fake_ptr(d, FAKE_RAM_GPA + DESC_OFF);
	struct vring_avail *avail = fake_ptr(d, FAKE_RAM_GPA + AVAIL_OFF);
	unsigned int i;

	memcpy(desc, l->desc, 16u * l->size);
	/* Folded into the data area only: the rings stay intact, the checks can read them. */
	if (l->flags & 4)
		for (i = 0; i < l->size; i++)
			desc[i].addr =
				FAKE_RAM_GPA + DATA_OFF + desc[i].addr % (RAM_SIZE - DATA_OFF);
	avail->flags = 0;
	avail->idx = l->avail_idx;
	memcpy(avail->ring, l->ring, 2u * l->size);
	avail->ring[l->size] = l->used_event;
	memcpy(fake_ptr(d, FAKE_RAM_GPA + DATA_OFF), l->data, l->data_len);
}

static void fuzz_start(struct fake_driver *d, const struct fuzz_layout *l)
{
	uint64_t features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_NET_F_MAC) |
			    ((l->flags & 1) ? 1ULL << VIRTIO_RING_F_EVENT_IDX : 0) |
			    ((l->flags & 2) ? 1ULL << VIRTIO_RING_F_INDIRECT_DESC : 0);

	fake_negotiate(d, features);
	fake_program_queue(d, VIRTIO_NET_QUEUE_RX, l->size, FAKE_RAM_GPA + DESC_OFF,
			   FAKE_RAM_GPA + AVAIL_OFF, FAKE_RAM_GPA + USED_RX_OFF);
	fake_program_queue(d, VIRTIO_NET_QUEUE_TX, l->size, FAKE_RAM_GPA + DESC_OFF,
			   FAKE_RAM_GPA + AVAIL_OFF, FAKE_RAM_GPA + USED_TX_OFF);
	fuzz_fill(d, l);
	fake_driver_ok(d);
	if (!(fake_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK))
		abort();
}

/* The main loop's part, bounded: a device that keeps it busy is a bug (abort). */
static void fuzz_pump(struct fake_driver *d)
{
	unsigned int rounds;

	for (rounds = 0; rounds < 2000; rounds++) {
		bool ready = false;
		int n = fake_driver_poll_round(d, virtio_net_fd(d->dev), 0, &ready);

		if (ready)
			virtio_net_process(d->dev);
		if (!n)
			return;
	}
	abort();
}

/*
 * Completions on queue q since the queue started: never more than the chains offered (the
 * device's own count). Their contents are checked only when the buffers cannot overlap the
 * rings (folded addresses): else the guest may have scribbled over its own used ring.
 */
static void fuzz_check_used(struct fake_driver *d, const struct fuzz_layout *l, unsigned int q)
{
	uint32_t id, len;

	if (d->dev->queues[q].used_idx > l->size)
		abort();
	while ((l->flags & 4) && fake_pop_used(d, q, &id, &len)) {
		if (id >= l->size)
			abort();
		if (q == VIRTIO_NET_QUEUE_TX && len != 0)
			abort();
		if (q == VIRTIO_NET_QUEUE_RX && len &&
		    (len < VIRTIO_NET_HDR_LEN + 14 ||
		     len > VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME))
			abort();
	}
}

static void fuzz_send_frames(int peer, const struct fuzz_layout *l)
{
	static uint8_t frame[VIRTIO_NET_MAX_FRAME + 1];
	unsigned int i;

	for (i = 0; i < l->frames; i++) {
		/* Lengths around the interesting edges: runts, 1514, buffer sizes, the limit. */
		static const size_t edges[] = { 0,
						1,
						13,
						14,
						60,
						1514,
						1515,
						4096,
						65536,
						VIRTIO_NET_MAX_FRAME,
						VIRTIO_NET_MAX_FRAME + 1 };
		size_t len = (l->frame_seed >> i) & 1
				     ? edges[(l->frame_seed + i) % ARRAY_SIZE(edges)]
				     : ((size_t)l->frame_seed * (i + 1)) % 2048;

		memset(frame, (int)i, len);
		memcpy(frame, l->data, MIN(len, l->data_len));
		if (send(peer, frame, len, MSG_DONTWAIT) < 0)
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x01, 0x02, 0x03 };
	static uint8_t got[VIRTIO_NET_MAX_FRAME + 16];
	static bool logs_off;
	struct virtio_net_stats stats;
	struct fake_driver d;
	struct virtio_device *dev;
	struct fuzz_layout l;
	ssize_t n;
	int sv[2];

	if (!fuzz_parse(data, size, &l))
		return 0;
	if (!logs_off) {
		/* Logs of broken queues would drown the fuzzer's output. */
		log_init(open("/dev/null", O_WRONLY | O_CLOEXEC), LOG_ERROR);
		logs_off = true;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (virtio_net_new("fuzz-net", sv[0], mac, 1500, &dev, NULL) < 0 ||
	    fake_driver_init(&d, dev, RAM_SIZE) < 0)
		abort();
	fuzz_start(&d, &l);
	fuzz_send_frames(sv[1], &l);
	fake_kick(&d, VIRTIO_NET_QUEUE_TX);
	if (l.flags & 8) {
		/* A reset mid-traffic, then the same rings again. */
		fake_write(&d, VIRTIO_MMIO_STATUS, 0);
		fuzz_pump(&d);
		fuzz_start(&d, &l);
	}
	fake_kick(&d, VIRTIO_NET_QUEUE_RX);
	fuzz_pump(&d);
	if (!(fake_read(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK))
		abort();
	fuzz_check_used(&d, &l, VIRTIO_NET_QUEUE_TX);
	fuzz_check_used(&d, &l, VIRTIO_NET_QUEUE_RX);
	while ((n = recv(sv[1], got, sizeof(got), MSG_DONTWAIT)) >= 0)
		if (n < 14 || n > VIRTIO_NET_MAX_FRAME)
			abort();
	virtio_net_get_stats(dev, &stats);
	if (stats.rx_frames + stats.rx_dropped > l.frames)
		abort();
	fake_write(&d, VIRTIO_MMIO_STATUS, 0);
	fuzz_pump(&d);
	fake_driver_destroy(&d);
	close(sv[1]);
	return 0;
}
