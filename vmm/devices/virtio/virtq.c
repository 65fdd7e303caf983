/*
 * Split virtqueues, device side (see virtq.h for the rules a chain must follow). Ring
 * pointers are checked once, when the driver sets QueueReady, and guest RAM never moves, so
 * the hot path reads through them directly. Each descriptor is copied out of guest memory
 * once and only the copy is used, so a guest rewriting a descriptor mid-walk cannot make us
 * check one thing and use another.
 *
 * Ordering (virtio 1.2 §2.7.13, §2.7.14): the available idx is read with acquire semantics
 * before the ring entries and descriptors it publishes; a used element is written before
 * the used idx, which is stored with release semantics; a full fence separates our stores
 * (used idx, avail_event) from the loads that decide whether to notify or go idle, the
 * store-load ordering a plain release/acquire pair does not give.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../log.h"
#include "virtq.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "virtio rings are little-endian; add conversions for this host"
#endif

#define VIRTQ_FEATURE(features, bit) (((features) >> (bit)) & 1)

void virtq_init(struct virtq *vq, const struct vm_mem *mem, uint16_t max_size)
{
	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	vq->max_size = max_size;
	vq->size = max_size;
}

void virtq_reset(struct virtq *vq)
{
	virtq_init(vq, vq->mem, vq->max_size);
}

_printf_(2, 3) static int virtq_fail(struct virtq *vq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vq->error, sizeof(vq->error), fmt, ap);
	va_end(ap);
	vq->broken = true;
	return -EBADMSG;
}

/* A ring part: aligned, wholly inside one RAM region, and aligned in host memory too. */
static void *virtq_map_part(struct virtq *vq, const char *what, uint64_t gpa, uint64_t len,
			    uint64_t align)
{
	void *hva;

	if (gpa & (align - 1)) {
		snprintf(vq->error, sizeof(vq->error), "%s at 0x%llx is not %llu-byte aligned",
			 what, (unsigned long long)gpa, (unsigned long long)align);
		return NULL;
	}
	hva = vm_mem_ptr(vq->mem, gpa, len);
	if (!hva || ((uintptr_t)hva & (align - 1))) {
		snprintf(vq->error, sizeof(vq->error), "%s 0x%llx+0x%llx is not in guest RAM", what,
			 (unsigned long long)gpa, (unsigned long long)len);
		return NULL;
	}
	return hva;
}

int virtq_enable(struct virtq *vq, uint64_t features)
{
	uint64_t n = vq->size;

	vq->error[0] = '\0';
	if (n == 0 || n > vq->max_size || (n & (n - 1))) {
		snprintf(vq->error, sizeof(vq->error),
			 "queue size %llu is not a power of 2 from 1 to %u", (unsigned long long)n,
			 vq->max_size);
		return -EINVAL;
	}
	vq->desc =
		virtq_map_part(vq, "descriptor table", vq->desc_gpa, 16 * n, VRING_DESC_ALIGN_SIZE);
	vq->avail = vq->desc ? virtq_map_part(vq, "available ring", vq->avail_gpa, 6 + 2 * n,
					      VRING_AVAIL_ALIGN_SIZE)
			     : NULL;
	vq->used = vq->avail ? virtq_map_part(vq, "used ring", vq->used_gpa, 6 + 8 * n,
					      VRING_USED_ALIGN_SIZE)
			     : NULL;
	if (!vq->used) {
		vq->desc = NULL;
		vq->avail = NULL;
		return -EINVAL;
	}
	vq->event_idx = VIRTQ_FEATURE(features, VIRTIO_RING_F_EVENT_IDX);
	vq->indirect = VIRTQ_FEATURE(features, VIRTIO_RING_F_INDIRECT_DESC);
	vq->last_avail_idx = vq->used_idx = vq->signalled_used = 0;
	vq->broken = false;
	/* The used ring is ours: start from a known state (§2.7.8, §2.7.10). */
	__atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&vq->used->idx, 0, __ATOMIC_RELEASE);
	if (vq->event_idx)
		__atomic_store_n((uint16_t *)&vq->used->ring[n], 0, __ATOMIC_RELAXED);
	vq->ready = true;
	return 0;
}

/*
 * Snapshots: the queue as it was saved, rings and indices as the guest left them in the
 * restored memory (nothing is written to them, unlike virtq_enable). The saved addresses
 * are checked as QueueReady checks them.
 */
int virtq_restore(struct virtq *vq, uint64_t features, uint16_t last_avail_idx, uint16_t used_idx,
		  uint16_t signalled_used)
{
	uint16_t flags = 0, event = 0;
	uint64_t n = vq->size;
	int r;

	/* virtq_enable starts the used ring afresh: keep what the guest's memory holds. */
	vm_mem_read(vq->mem, vq->used_gpa, &flags, sizeof(flags));
	vm_mem_read(vq->mem, vq->used_gpa + 4 + 8 * n, &event, sizeof(event));
	r = virtq_enable(vq, features);
	if (r < 0)
		return r;
	vq->last_avail_idx = last_avail_idx;
	vq->used_idx = used_idx;
	vq->signalled_used = signalled_used;
	__atomic_store_n(&vq->used->flags, flags, __ATOMIC_RELAXED);
	if (vq->event_idx)
		__atomic_store_n((uint16_t *)&vq->used->ring[n], event, __ATOMIC_RELAXED);
	__atomic_store_n(&vq->used->idx, used_idx, __ATOMIC_RELEASE);
	return 0;
}

void virtq_disable(struct virtq *vq)
{
	vq->ready = false;
	vq->broken = false;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
}

/* Walk state shared by the direct chain and an indirect table. */
struct virtq_walk {
	struct virtq_chain *chain;
	unsigned int buffers; /* buffer descriptors so far, direct and indirect */
	uint64_t total;
	bool seen_writable;
};

/* Copy descriptor i of a table out of guest memory, once. */
static struct vring_desc virtq_read_desc(const struct vring_desc *table, unsigned int i)
{
	struct vring_desc d;

	memcpy(&d, &table[i], sizeof(d));
	/* Use the copy, never re-read the guest's (it may change it under us). */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return d;
}

static int virtq_add_buffer(struct virtq *vq, struct virtq_walk *w, const struct vring_desc *d)
{
	struct virtq_chain *c = w->chain;
	bool writable = d->flags & VRING_DESC_F_WRITE;
	void *hva;

	if (++w->buffers > vq->size)
		return virtq_fail(vq, "chain at head %u has more buffers than the queue size (%u)",
				  c->head, vq->size);
	if (!writable && w->seen_writable)
		return virtq_fail(vq,
				  "chain at head %u: device-readable buffer after a "
				  "device-writable one",
				  c->head);
	w->seen_writable |= writable;
	w->total += d->len;
	if (w->total > VIRTQ_CHAIN_MAX_BYTES)
		return virtq_fail(vq, "chain at head %u is longer than 4 GiB", c->head);
	if (d->len == 0)
		return 0;
	hva = vm_mem_ptr(vq->mem, d->addr, d->len);
	if (!hva)
		return virtq_fail(vq, "chain at head %u: buffer 0x%llx+0x%x is not in guest RAM",
				  c->head, (unsigned long long)d->addr, d->len);
	if (c->nr_out + c->nr_in >= c->cap)
		return virtq_fail(vq, "chain at head %u has more than %u buffers", c->head, c->cap);
	c->iov[c->nr_out + c->nr_in] = (struct iovec){ .iov_base = hva, .iov_len = d->len };
	if (writable) {
		c->nr_in++;
		c->in_len += d->len;
	} else {
		c->nr_out++;
		c->out_len += d->len;
	}
	return 0;
}

/* An indirect table (§2.7.5.3): its own index space, no nesting, bounded by its length. */
static int virtq_walk_indirect(struct virtq *vq, struct virtq_walk *w, const struct vring_desc *d)
{
	const struct vring_desc *table;
	unsigned int entries, i, steps;
	int r;

	if (!vq->indirect)
		return virtq_fail(vq,
				  "chain at head %u: indirect descriptor without "
				  "VIRTIO_RING_F_INDIRECT_DESC",
				  w->chain->head);
	if (d->flags & VRING_DESC_F_NEXT)
		return virtq_fail(vq, "chain at head %u: indirect descriptor with NEXT",
				  w->chain->head);
	if (d->len == 0 || d->len % sizeof(struct vring_desc))
		return virtq_fail(vq,
				  "chain at head %u: indirect table of %u bytes is not a "
				  "multiple of 16",
				  w->chain->head, d->len);
	entries = d->len / sizeof(struct vring_desc);
	if (entries > vq->size)
		return virtq_fail(vq,
				  "chain at head %u: indirect table of %u entries is longer "
				  "than the queue (%u)",
				  w->chain->head, entries, vq->size);
	table = vm_mem_ptr(vq->mem, d->addr, d->len);
	if (!table)
		return virtq_fail(vq,
				  "chain at head %u: indirect table 0x%llx+0x%x is not in "
				  "guest RAM",
				  w->chain->head, (unsigned long long)d->addr, d->len);
	for (i = 0, steps = 0;; steps++) {
		struct vring_desc e;

		if (steps >= entries)
			return virtq_fail(vq, "chain at head %u: loop in its indirect table",
					  w->chain->head);
		e = virtq_read_desc(table, i);
		if (e.flags & VRING_DESC_F_INDIRECT)
			return virtq_fail(vq,
					  "chain at head %u: indirect descriptor inside an "
					  "indirect table",
					  w->chain->head);
		r = virtq_add_buffer(vq, w, &e);
		if (r < 0 || !(e.flags & VRING_DESC_F_NEXT))
			return r;
		i = e.next;
		if (i >= entries)
			return virtq_fail(vq,
					  "chain at head %u: indirect next %u is outside its "
					  "table of %u",
					  w->chain->head, i, entries);
	}
}

static int virtq_walk_chain(struct virtq *vq, struct virtq_chain *chain)
{
	struct virtq_walk w = { .chain = chain };
	unsigned int i = chain->head, steps;
	int r;

	for (steps = 0;; steps++) {
		struct vring_desc d;

		/* Each step reads a distinct descriptor in a loop-free chain. */
		if (steps >= vq->size)
			return virtq_fail(vq,
					  "chain at head %u is longer than the queue (%u): "
					  "a loop?",
					  chain->head, vq->size);
		if (i >= vq->size)
			return virtq_fail(vq,
					  "chain at head %u: descriptor index %u is outside "
					  "the queue (%u)",
					  chain->head, i, vq->size);
		d = virtq_read_desc(vq->desc, i);
		if (d.flags & VRING_DESC_F_INDIRECT)
			return virtq_walk_indirect(vq, &w, &d);
		r = virtq_add_buffer(vq, &w, &d);
		if (r < 0 || !(d.flags & VRING_DESC_F_NEXT))
			return r;
		i = d.next;
	}
}

/* With EVENT_IDX, ask for a notification once the driver adds past what we consumed. */
static uint16_t virtq_avail_idx_rearm(struct virtq *vq)
{
	uint16_t *avail_event = (uint16_t *)&vq->used->ring[vq->size];

	__atomic_store_n(avail_event, vq->last_avail_idx, __ATOMIC_RELAXED);
	/* Our avail_event store must be visible before we look at idx again (§2.7.10). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
}

void virtq_notify_after(struct virtq *vq, uint16_t idx)
{
	if (!vq->ready || vq->broken || !vq->event_idx)
		return;
	__atomic_store_n((uint16_t *)&vq->used->ring[vq->size], idx, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

int virtq_pop_chain(struct virtq *vq, struct virtq_chain *chain)
{
	uint16_t avail_idx, pending, head;
	int r;

	if (!vq->ready || vq->broken)
		return -EIO;
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail_idx && vq->event_idx)
		avail_idx = virtq_avail_idx_rearm(vq);
	if (avail_idx == vq->last_avail_idx)
		return 0;
	pending = avail_idx - vq->last_avail_idx;
	if (pending > vq->size)
		return virtq_fail(vq,
				  "available idx %u is %u ahead of the device: more than the "
				  "queue size (%u)",
				  avail_idx, pending, vq->size);
	head = __atomic_load_n(&vq->avail->ring[vq->last_avail_idx & (vq->size - 1)],
			       __ATOMIC_RELAXED);
	chain->head = head;
	chain->out = chain->iov;
	chain->nr_out = chain->nr_in = 0;
	chain->out_len = chain->in_len = 0;
	r = virtq_walk_chain(vq, chain);
	if (r < 0)
		return r;
	chain->in = chain->iov + chain->nr_out;
	vq->last_avail_idx++;
	return 1;
}

void virtq_unpop_chain(struct virtq *vq)
{
	if (vq->ready && !vq->broken)
		vq->last_avail_idx--;
}

void virtq_push_used(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *elem;

	if (!vq->ready)
		return;
	elem = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	__atomic_store_n(&elem->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&elem->len, len, __ATOMIC_RELAXED);
	vq->used_idx++;
	/* The element before the index that publishes it (§2.7.14). */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, used_event;

	if (!vq->ready || vq->used_idx == old)
		return false; /* nothing new since we last decided */
	vq->signalled_used = vq->used_idx;
	/* Our used idx store before the driver's suppression fields (§2.7.7.2). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) &
			 VRING_AVAIL_F_NO_INTERRUPT);
	used_event = __atomic_load_n(&vq->avail->ring[vq->size], __ATOMIC_RELAXED);
	return vring_need_event(used_event, vq->used_idx, old);
}

size_t virtq_chain_read(const struct virtq_chain *chain, uint64_t offset, void *buf, size_t len)
{
	uint8_t *out = buf;
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < chain->nr_out && done < len; i++) {
		const struct iovec *v = &chain->out[i];
		size_t n;

		if (offset >= v->iov_len) {
			offset -= v->iov_len;
			continue;
		}
		n = MIN(v->iov_len - offset, len - done);
		memcpy(out + done, (uint8_t *)v->iov_base + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t virtq_chain_write(const struct virtq_chain *chain, uint64_t offset, const void *buf,
			 size_t len)
{
	const uint8_t *in = buf;
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < chain->nr_in && done < len; i++) {
		const struct iovec *v = &chain->in[i];
		size_t n;

		if (offset >= v->iov_len) {
			offset -= v->iov_len;
			continue;
		}
		n = MIN(v->iov_len - offset, len - done);
		memcpy((uint8_t *)v->iov_base + offset, in + done, n);
		done += n;
		offset = 0;
	}
	return done;
}
