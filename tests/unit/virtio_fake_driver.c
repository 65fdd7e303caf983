/*
 * The fake virtio driver (see virtio_fake_driver.h). Writes what Linux's virtio_mmio and
 * virtio_ring would write, in the same order, with the same barriers on the driver side.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "virtio_fake_driver.h"

static int fake_irqfd(void *opaque, int fd, unsigned int gsi, bool assign)
{
	struct fake_driver *d = opaque;

	(void)fd;
	(void)gsi;
	if (assign)
		d->irqfds++;
	else
		d->irqfds--;
	return 0;
}

static int fake_ioeventfd(void *opaque, int fd, uint64_t addr, uint32_t datamatch, bool assign)
{
	struct fake_driver *d = opaque;

	(void)fd;
	(void)datamatch;
	if (addr != FAKE_MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY)
		return -EINVAL;
	if (assign && d->ioeventfd_fails)
		return -ENOSYS;
	if (assign)
		d->ioeventfds++;
	else
		d->ioeventfds--;
	return 0;
}

static int fake_watch(void *opaque, struct event_loop *loop, int fd, event_fn fn, void *arg)
{
	struct fake_driver *d = opaque;

	(void)loop;
	if (d->nr_watches >= FAKE_WATCH_MAX)
		return -ENOSPC;
	d->watches[d->nr_watches++] = (struct fake_watch){ .fd = fd, .fn = fn, .arg = arg };
	return 0;
}

static void fake_unwatch(void *opaque, struct event_loop *loop, int fd)
{
	struct fake_driver *d = opaque;
	unsigned int i;

	(void)loop;
	for (i = 0; i < d->nr_watches; i++)
		if (d->watches[i].fd == fd)
			d->watches[i] = d->watches[--d->nr_watches];
}

int fake_driver_init(struct fake_driver *d, struct virtio_device *dev, uint64_t ram_size)
{
	struct virtio_mmio_host host = {
		.opaque = d,
		.irqfd = fake_irqfd,
		.ioeventfd = fake_ioeventfd,
		.watch = fake_watch,
		.unwatch = fake_unwatch,
	};
	int r;

	memset(d, 0, sizeof(*d));
	/* Zeroed, and untouched pages cost nothing: tests may ask for gigabytes. */
	d->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (d->ram == MAP_FAILED) {
		d->ram = NULL;
		dev->ops->destroy(dev);
		return -ENOMEM;
	}
	d->ram_size = ram_size;
	d->next_free = FAKE_RAM_GPA;
	vm_mem_init(&d->mem);
	bus_init(&d->bus, "mmio");
	r = vm_mem_add_region(&d->mem, FAKE_RAM_GPA, ram_size, d->ram, NULL);
	if (r == 0)
		r = virtio_mmio_create(dev, &d->mem, FAKE_MMIO_BASE, FAKE_GSI, &host, &d->mmio,
				       NULL);
	else
		dev->ops->destroy(dev);
	if (r == 0)
		r = bus_register(&d->bus, FAKE_MMIO_BASE, VIRTIO_MMIO_SIZE, virtio_mmio_access,
				 d->mmio, "virtio");
	d->dev = dev;
	if (r < 0)
		fake_driver_destroy(d);
	return r;
}

void fake_driver_destroy(struct fake_driver *d)
{
	virtio_mmio_destroy(d->mmio);
	d->mmio = NULL;
	bus_destroy(&d->bus);
	vm_mem_destroy(&d->mem);
	if (d->ram)
		munmap(d->ram, d->ram_size);
	d->ram = NULL;
}

uint32_t fake_read(struct fake_driver *d, uint64_t reg)
{
	uint32_t v = 0;

	bus_access(&d->bus, FAKE_MMIO_BASE + reg, (uint8_t *)&v, 4, false);
	return v;
}

void fake_write(struct fake_driver *d, uint64_t reg, uint32_t value)
{
	bus_access(&d->bus, FAKE_MMIO_BASE + reg, (uint8_t *)&value, 4, true);
}

uint32_t fake_negotiate(struct fake_driver *d, uint64_t features)
{
	fake_write(d, VIRTIO_MMIO_STATUS, 0);
	fake_write(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	fake_write(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	fake_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fake_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	fake_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fake_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	fake_write(d, VIRTIO_MMIO_STATUS,
		   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			   VIRTIO_CONFIG_S_FEATURES_OK);
	return fake_read(d, VIRTIO_MMIO_STATUS);
}

uint32_t fake_driver_ok(struct fake_driver *d)
{
	fake_write(d, VIRTIO_MMIO_STATUS,
		   fake_read(d, VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
	fake_driver_pump(d);
	return fake_read(d, VIRTIO_MMIO_STATUS);
}

uint64_t fake_alloc(struct fake_driver *d, uint64_t size, uint64_t align)
{
	uint64_t gpa = ALIGN_UP(d->next_free, align);

	if (gpa + size > FAKE_RAM_GPA + d->ram_size)
		return 0;
	d->next_free = gpa + size;
	memset(fake_ptr(d, gpa), 0, size);
	return gpa;
}

void *fake_ptr(struct fake_driver *d, uint64_t gpa)
{
	return d->ram + (gpa - FAKE_RAM_GPA);
}

uint32_t fake_program_queue(struct fake_driver *d, unsigned int q, uint16_t size, uint64_t desc,
			    uint64_t avail, uint64_t used)
{
	struct fake_queue *fq = &d->queues[q];

	*fq = (struct fake_queue){ .size = size, .desc = desc, .avail = avail, .used = used };
	fake_write(d, VIRTIO_MMIO_QUEUE_SEL, q);
	fake_write(d, VIRTIO_MMIO_QUEUE_NUM, size);
	fake_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	fake_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	fake_write(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	fake_write(d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(avail >> 32));
	fake_write(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	fake_write(d, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(used >> 32));
	fake_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
	return fake_read(d, VIRTIO_MMIO_QUEUE_READY);
}

uint32_t fake_setup_queue(struct fake_driver *d, unsigned int q, uint16_t size)
{
	uint64_t desc = fake_alloc(d, 16ULL * size, 16);
	uint64_t avail = fake_alloc(d, 6 + 2ULL * size, 2);
	uint64_t used = fake_alloc(d, 6 + 8ULL * size, 4);

	return fake_program_queue(d, q, size, desc, avail, used);
}

static void fake_store_desc(struct vring_desc *desc, uint64_t addr, uint32_t len, uint16_t flags,
			    uint16_t next)
{
	desc->addr = addr;
	desc->len = len;
	desc->flags = flags;
	desc->next = next;
}

void fake_set_desc(struct fake_driver *d, unsigned int q, uint16_t i, uint64_t addr, uint32_t len,
		   uint16_t flags, uint16_t next)
{
	struct vring_desc *table = fake_ptr(d, d->queues[q].desc);

	fake_store_desc(&table[i], addr, len, flags, next);
}

void fake_set_indirect(struct fake_driver *d, uint64_t table, uint16_t i, uint64_t addr,
		       uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc *t = fake_ptr(d, table);

	fake_store_desc(&t[i], addr, len, flags, next);
}

static struct vring_avail *fake_avail(struct fake_driver *d, unsigned int q)
{
	return fake_ptr(d, d->queues[q].avail);
}

static struct vring_used *fake_used(struct fake_driver *d, unsigned int q)
{
	return fake_ptr(d, d->queues[q].used);
}

void fake_make_avail(struct fake_driver *d, unsigned int q, uint16_t head)
{
	struct fake_queue *fq = &d->queues[q];
	struct vring_avail *avail = fake_avail(d, q);

	avail->ring[fq->avail_idx & (fq->size - 1)] = head;
	fq->avail_idx++;
	__atomic_store_n(&avail->idx, fq->avail_idx, __ATOMIC_RELEASE);
}

void fake_set_avail_idx(struct fake_driver *d, unsigned int q, uint16_t idx)
{
	d->queues[q].avail_idx = idx;
	__atomic_store_n(&fake_avail(d, q)->idx, idx, __ATOMIC_RELEASE);
}

void fake_set_used_event(struct fake_driver *d, unsigned int q, uint16_t event)
{
	fake_avail(d, q)->ring[d->queues[q].size] = event;
}

void fake_set_avail_flags(struct fake_driver *d, unsigned int q, uint16_t flags)
{
	fake_avail(d, q)->flags = flags;
}

uint16_t fake_avail_event(struct fake_driver *d, unsigned int q)
{
	return *(uint16_t *)&fake_used(d, q)->ring[d->queues[q].size];
}

int fake_driver_poll_round(struct fake_driver *d, int extra_fd, int timeout_ms, bool *extra_ready)
{
	struct pollfd p[FAKE_WATCH_MAX + 1];
	unsigned int i, j, n = d->nr_watches;
	int ready;

	/* One poll() over everything, as an event loop's one epoll_wait() would be. */
	for (i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = d->watches[i].fd, .events = POLLIN };
	p[n] = (struct pollfd){ .fd = extra_fd, .events = POLLIN };
	ready = poll(p, n + 1, timeout_ms);
	*extra_ready = ready > 0 && (p[n].revents & POLLIN);
	for (i = 0; ready > 0 && i < n; i++) {
		if (!(p[i].revents & POLLIN))
			continue;
		/* A handler may have unwatched others (a reset): run only what is still here. */
		for (j = 0; j < d->nr_watches && d->watches[j].fd != p[i].fd; j++)
			;
		if (j < d->nr_watches)
			d->watches[j].fn(d->watches[j].arg, EPOLLIN);
	}
	return ready > 0 ? ready : 0;
}

void fake_driver_pump(struct fake_driver *d)
{
	unsigned int rounds;
	bool unused;

	/* Bounded: a device that keeps re-kicking itself must not hang a test. */
	for (rounds = 0; rounds < 1000; rounds++)
		if (!fake_driver_poll_round(d, -1, 0, &unused))
			break;
}

void fake_kick(struct fake_driver *d, unsigned int q)
{
	fake_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	fake_driver_pump(d);
}

unsigned int fake_irqs(struct fake_driver *d)
{
	uint64_t count = 0;

	if (read(virtio_mmio_irq_fd(d->mmio), &count, sizeof(count)) != sizeof(count))
		return 0;
	return (unsigned int)count;
}

uint16_t fake_used_idx(struct fake_driver *d, unsigned int q)
{
	return __atomic_load_n(&fake_used(d, q)->idx, __ATOMIC_ACQUIRE);
}

bool fake_pop_used(struct fake_driver *d, unsigned int q, uint32_t *id, uint32_t *len)
{
	struct fake_queue *fq = &d->queues[q];
	struct vring_used *used = fake_used(d, q);
	struct vring_used_elem *e;

	if (fake_used_idx(d, q) == fq->last_used)
		return false;
	e = &used->ring[fq->last_used & (fq->size - 1)];
	*id = e->id;
	*len = e->len;
	fq->last_used++;
	return true;
}

void fake_add_chain(struct fake_driver *d, unsigned int q, uint16_t first,
		    const struct fake_buf *bufs, unsigned int n)
{
	uint16_t size = d->queues[q].size;
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint16_t this = (first + i) & (size - 1), next = (first + i + 1) & (size - 1);
		uint16_t flags = (bufs[i].writable ? VRING_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VRING_DESC_F_NEXT : 0);

		fake_set_desc(d, q, this, bufs[i].gpa, bufs[i].len, flags, i + 1 < n ? next : 0);
	}
	fake_make_avail(d, q, first & (size - 1));
}
