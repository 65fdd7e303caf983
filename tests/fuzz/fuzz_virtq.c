/*
 * libFuzzer target for split virtqueues (vmm/devices/virtio/virtq.c) and the virtio-rng
 * request path behind the virtio-mmio transport. The input becomes a guest's descriptor
 * table, available ring and a data area (indirect tables, buffers) in fake guest RAM; then
 *  1. virtq_pop_chain() runs over it directly, and every chain it hands out is checked:
 *     each iovec inside guest RAM, no more buffers than the queue size, lengths that add
 *     up, at most 2^32 bytes;
 *  2. the same memory is driven through the transport to virtio-rng with a notification,
 *     as a guest would, with random bytes written through the popped iovecs.
 * ASan and UBSan do the rest. Input layout (little-endian):
 *   [0]     flags: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 fold descriptor addresses
 *           into guest RAM (so most chains get deep), bits 4-6 log2 of the queue size
 *   [1..2]  available idx    [3..4] used_event
 *   then    16 * size bytes of descriptors, 2 * size of available ring, then the data area.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_config.h>

#include "../unit/virtio_fake_driver.h"
#include "devices/virtio/rng.h"
#include "log.h"

#define RAM_SIZE   KIB(64)
#define DESC_OFF   0x0000 /* up to 128 * 16 */
#define AVAIL_OFF  0x0800 /* up to 6 + 2 * 128 */
#define USED_OFF   0x0a00 /* up to 6 + 8 * 128 */
#define DATA_OFF   0x1000
#define QUEUE_MAX  128
#define HEADER_LEN 5

struct fuzz_layout {
	uint8_t flags;
	uint16_t size;
	uint16_t avail_idx, used_event;
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

/* Write the guest's side of the rings into fake RAM. */
static void fuzz_fill(struct fake_driver *d, const struct fuzz_layout *l)
{
	struct vring_desc *desc = fake_ptr(d, FAKE_RAM_GPA + DESC_OFF);
	struct vring_avail *avail = fake_ptr(d, FAKE_RAM_GPA + AVAIL_OFF);
	unsigned int i;

	memset(d->ram, 0, RAM_SIZE);
	memcpy(desc, l->desc, 16u * l->size);
	if (l->flags & 4)
		for (i = 0; i < l->size; i++)
			desc[i].addr = FAKE_RAM_GPA + desc[i].addr % RAM_SIZE;
	avail->flags = 0;
	avail->idx = l->avail_idx;
	memcpy(avail->ring, l->ring, 2u * l->size);
	avail->ring[l->size] = l->used_event;
	memcpy(fake_ptr(d, FAKE_RAM_GPA + DATA_OFF), l->data, l->data_len);
}

static uint64_t fuzz_features(const struct fuzz_layout *l)
{
	return (1ULL << VIRTIO_F_VERSION_1) |
	       ((l->flags & 1) ? 1ULL << VIRTIO_RING_F_EVENT_IDX : 0) |
	       ((l->flags & 2) ? 1ULL << VIRTIO_RING_F_INDIRECT_DESC : 0);
}

static void fuzz_check_chain(const struct fake_driver *d, const struct virtq *vq,
			     const struct virtq_chain *c)
{
	static uint8_t scratch[4096];
	uint64_t out = 0, in = 0;
	unsigned int i;

	if (c->nr_out + c->nr_in > vq->size || c->in != c->iov + c->nr_out || c->head >= vq->size)
		abort();
	for (i = 0; i < c->nr_out + c->nr_in; i++) {
		const uint8_t *p = c->iov[i].iov_base;

		if (c->iov[i].iov_len == 0 || p < d->ram ||
		    c->iov[i].iov_len > (uint64_t)(d->ram + d->ram_size - p))
			abort();
		if (i < c->nr_out)
			out += c->iov[i].iov_len;
		else
			in += c->iov[i].iov_len;
	}
	if (out != c->out_len || in != c->in_len || out + in > VIRTQ_CHAIN_MAX_BYTES)
		abort();
	/* The copy helpers, from an offset inside the chain and from one past its end. */
	if (virtq_chain_read(c, out / 2, scratch, sizeof(scratch)) != MIN(out - out / 2, 4096) ||
	    virtq_chain_read(c, out, scratch, 1) != 0)
		abort();
	if (virtq_chain_write(c, in / 3, scratch, sizeof(scratch)) != MIN(in - in / 3, 4096) ||
	    virtq_chain_write(c, in, scratch, 1) != 0)
		abort();
}

/* Phase 1: the queue on its own. */
static void fuzz_virtq(struct fake_driver *d, const struct fuzz_layout *l)
{
	static struct iovec iov[QUEUE_MAX];
	struct virtq_chain chain;
	struct virtq vq;
	unsigned int i;
	int r;

	virtq_init(&vq, &d->mem, QUEUE_MAX);
	vq.size = l->size;
	vq.desc_gpa = FAKE_RAM_GPA + DESC_OFF;
	vq.avail_gpa = FAKE_RAM_GPA + AVAIL_OFF;
	vq.used_gpa = FAKE_RAM_GPA + USED_OFF;
	if (virtq_enable(&vq, fuzz_features(l)) < 0)
		abort();
	virtq_chain_init(&chain, iov, QUEUE_MAX);
	for (i = 0; i <= 2u * l->size; i++) {
		r = virtq_pop_chain(&vq, &chain);
		if (r <= 0)
			break;
		fuzz_check_chain(d, &vq, &chain);
		virtq_push_used(&vq, chain.head, (uint32_t)MIN(chain.in_len, UINT32_MAX));
		virtq_should_notify(&vq);
	}
	/* A broken queue stays broken; a drained one stays quiet. */
	if ((r < 0) != vq.broken || (r < 0 && virtq_pop_chain(&vq, &chain) != -EIO))
		abort();
}

/* Phase 2: the same guest memory, through the transport to virtio-rng. */
static void fuzz_rng(struct fake_driver *d, const struct fuzz_layout *l)
{
	uint16_t before;
	uint32_t status;

	fake_negotiate(d, fuzz_features(l));
	fake_program_queue(d, 0, l->size, FAKE_RAM_GPA + DESC_OFF, FAKE_RAM_GPA + AVAIL_OFF,
			   FAKE_RAM_GPA + USED_OFF);
	fuzz_fill(d, l);
	fake_driver_ok(d);
	before = fake_used_idx(d, 0);
	fake_kick(d, 0);
	status = fake_read(d, VIRTIO_MMIO_STATUS);
	if (!(status & VIRTIO_CONFIG_S_DRIVER_OK))
		abort();
	/* No more completions than requests, broken or not. */
	if ((uint16_t)(fake_used_idx(d, 0) - before) > l->size)
		abort();
	fake_write(d, VIRTIO_MMIO_STATUS, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fake_driver d;
	static bool ready;
	struct virtio_device *dev;
	struct fuzz_layout l;

	if (!fuzz_parse(data, size, &l))
		return 0;
	if (!ready) {
		/* Logs of broken queues would drown the fuzzer's output. */
		log_init(open("/dev/null", O_WRONLY | O_CLOEXEC), LOG_ERROR);
		if (virtio_rng_new("fuzz-rng", &dev) < 0 || fake_driver_init(&d, dev, RAM_SIZE) < 0)
			abort();
		/* A bucket that never empties: the fill path stays covered (test_virtio_rng.c
		 * covers the waits). */
		if (virtio_rng_set_rate(dev, VIRTIO_RNG_MAX_BYTES_PER_SEC,
					VIRTIO_RNG_MAX_BYTES_PER_SEC) < 0)
			abort();
		ready = true;
	}
	fuzz_fill(&d, &l);
	fuzz_virtq(&d, &l);
	fuzz_rng(&d, &l);
	return 0;
}
