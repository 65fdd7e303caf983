/*
 * Split virtqueues (virtio 1.2 §2.7), the device side: the guest driver owns the descriptor
 * table and the available ring, we own the used ring, and everything we read from the guest
 * is hostile. virtq_pop_chain() hands a device one validated descriptor chain as iovecs of
 * host pointers; devices never see a raw descriptor. Transport-independent: the virtio-mmio
 * transport (mmio.c) fills in the queue's size and addresses from its registers and calls
 * virtq_enable() when the driver sets QueueReady.
 *
 * What a chain must satisfy, or the queue is marked broken (the transport then sets
 * DEVICE_NEEDS_RESET, §2.1.2) and virtq_pop_chain() fails until the queue is reset:
 *  - at most Queue Size new heads in the available ring (avail idx - last seen <= size);
 *  - every head and next index < Queue Size (indirect: < entries in the table);
 *  - at most Queue Size buffer descriptors (§2.7.5.3.1), direct and indirect together; the
 *    walk is bounded, so a loop is a chain that is too long;
 *  - an indirect descriptor only with VIRTIO_RING_F_INDIRECT_DESC, never with NEXT, never
 *    inside an indirect table, and its table a non-empty multiple of 16 bytes inside RAM;
 *  - every device-readable buffer before every device-writable one (§2.7.4.2);
 *  - every buffer wholly inside one guest RAM region (address + length cannot wrap);
 *  - at most 2^32 bytes in total (§2.7.5.2: drivers must not add longer chains).
 * A zero-length descriptor is allowed and contributes nothing (no iovec, no address check),
 * but still counts towards the length limit and the readable-before-writable order.
 *
 * Not thread-safe: one thread at a time per queue (the transport holds the device lock
 * around every callback that touches a queue). The guest runs concurrently on other vCPUs;
 * ring accesses use the barriers §2.7.13 and §2.7.14 ask of the device.
 */
#ifndef STRATUS_VMM_VIRTQ_H
#define STRATUS_VMM_VIRTQ_H

#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_ring.h>

#include "../../memory.h"

#define VIRTQ_MAX_SIZE	      32768	   /* §2.7: the largest Queue Size */
#define VIRTQ_CHAIN_MAX_BYTES (1ULL << 32) /* §2.7.5.2 */

struct virtq {
	/* Configured by the transport while the queue is not ready. */
	uint16_t max_size; /* QueueNumMax: what the device supports */
	uint16_t size;	   /* QueueNum: what the driver chose */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool ready;

	/* Runtime state, valid while ready. */
	const struct vm_mem *mem;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool broken;	/* a bad chain or ring: nothing more until reset */
	const struct vring_desc *desc;
	const struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail_idx; /* next head to pop */
	uint16_t used_idx;	 /* next used element to write */
	uint16_t signalled_used; /* used_idx when we last decided whether to interrupt */
	char error[128];	 /* why the queue broke, for the transport's log line */
};

/*
 * One chain, as the device sees it. The caller provides the iovec storage (cap entries; a
 * chain has at most Queue Size buffers, so cap >= QueueNumMax always suffices). The iovecs
 * point into guest memory, which the guest may change under us: copy a request header out
 * before validating it, and read it once.
 */
struct virtq_chain {
	uint16_t head;	   /* descriptor index to hand back to virtq_push_used() */
	struct iovec *iov; /* storage: device-readable buffers first, then device-writable */
	unsigned int cap;
	struct iovec *out; /* device-readable (driver to device): iov[0 .. nr_out) */
	unsigned int nr_out;
	struct iovec *in; /* device-writable (device to driver): iov[nr_out .. nr_out + nr_in) */
	unsigned int nr_in;
	uint64_t out_len, in_len; /* bytes in each part */
};

/* A fresh, not-ready queue whose device supports up to max_size entries. */
void virtq_init(struct virtq *vq, const struct vm_mem *mem, uint16_t max_size);

/* Back to the state after virtq_init (device reset, §2.1.2 / §4.2.2: QueueReady 0). */
void virtq_reset(struct virtq *vq);

/*
 * The driver set QueueReady: check size (a power of 2 up to max_size) and that each ring
 * part is aligned and lies wholly in guest RAM (desc 16 * size bytes, 16-aligned; avail
 * 6 + 2 * size, 2-aligned; used 6 + 8 * size, 4-aligned: §2.7). features are the negotiated
 * ones. Returns 0, or -EINVAL with the reason in vq->error (the queue stays not ready).
 */
int virtq_enable(struct virtq *vq, uint64_t features);

/*
 * Snapshots: make the queue ready again as it was saved (size and addresses already set),
 * with its indices; the rings in guest memory are left as the guest had them. Checks as
 * virtq_enable does: 0, or -EINVAL with the reason in vq->error.
 */
int virtq_restore(struct virtq *vq, uint64_t features, uint16_t last_avail_idx, uint16_t used_idx,
		  uint16_t signalled_used);

/* QueueReady 0: stop using the rings; the configured size and addresses are kept. */
void virtq_disable(struct virtq *vq);

/*
 * Take the next available chain. Returns 1 with *chain filled, 0 if the ring is empty (with
 * EVENT_IDX the driver has then been asked to notify us of the next buffer, §2.7.10), or a
 * negative errno: -EIO if the queue is broken or not ready, -EBADMSG if this chain or the
 * ring is bad (the queue is now broken, vq->error says why).
 */
int virtq_pop_chain(struct virtq *vq, struct virtq_chain *chain);
/*
 * With EVENT_IDX, have the driver notify once it makes a buffer available past idx (its
 * avail idx now, say), whatever we have popped: a device that waits for a refill it does
 * not pop at once.
 */
void virtq_notify_after(struct virtq *vq, uint16_t idx);

/*
 * Give back the chain the last virtq_pop_chain() returned, unused (no virtq_push_used for
 * it): the next pop walks it again. For a device that needs a buffer only once it has
 * something to put in it (vsock rx). Only right after a successful pop on this queue; called
 * again, it gives back the chain popped before that one, and so on (latest first), as long
 * as none of them was pushed.
 */
void virtq_unpop_chain(struct virtq *vq);

/* Prepare a chain's storage (once; the chain can then be popped into again and again). */
static inline void virtq_chain_init(struct virtq_chain *chain, struct iovec *iov, unsigned int cap)
{
	chain->iov = iov;
	chain->cap = cap;
	chain->out = chain->in = iov;
	chain->nr_out = chain->nr_in = 0;
	chain->out_len = chain->in_len = 0;
}

/*
 * Return a chain to the driver: len is how many bytes the device wrote into its writable
 * part (§2.7.8). The used element is visible to the driver before the new used idx.
 */
void virtq_push_used(struct virtq *vq, uint16_t head, uint32_t len);

/*
 * After one or more virtq_push_used(): does the driver want an interrupt (§2.7.7)? Never if
 * nothing was added since the last call; with EVENT_IDX, only if used_event lies among the
 * entries added since then; without, unless the driver set VRING_AVAIL_F_NO_INTERRUPT.
 */
bool virtq_should_notify(struct virtq *vq);

/* Copy up to len bytes starting offset bytes into the chain's readable part; returns the count. */
size_t virtq_chain_read(const struct virtq_chain *chain, uint64_t offset, void *buf, size_t len);

/* Copy up to len bytes into the chain's writable part at offset; returns the count. */
size_t virtq_chain_write(const struct virtq_chain *chain, uint64_t offset, const void *buf,
			 size_t len);

#endif
