/*
 * A fake virtio driver for unit tests and the fuzzer: guest RAM in a plain buffer, a
 * virtio-mmio transport on a private MMIO bus with a substitute host interface (no KVM:
 * interrupts are counted from the transport's eventfd, notifications are dispatched by
 * fake_driver_pump()), and helpers that write descriptor tables and rings the way a driver
 * does. Free of cmocka so the fuzzer can use it; callers assert on what it returns.
 */
#ifndef STRATUS_TESTS_VIRTIO_FAKE_DRIVER_H
#define STRATUS_TESTS_VIRTIO_FAKE_DRIVER_H

#include <stdint.h>
#include <linux/virtio_mmio.h>

#include "bus.h"
#include "devices/virtio/mmio.h"

#define FAKE_RAM_GPA   0x100000ULL
#define FAKE_MMIO_BASE 0xd0001000ULL
#define FAKE_GSI       5
#define FAKE_WATCH_MAX 8

struct fake_watch {
	int fd;
	event_fn fn;
	void *arg;
};

struct fake_queue {
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx; /* driver's next avail idx */
	uint16_t last_used; /* driver's view of the used ring */
};

struct fake_driver {
	uint8_t *ram;
	uint64_t ram_size;
	uint64_t next_free; /* bump allocator over RAM, gpa */
	struct vm_mem mem;
	struct bus bus;
	struct virtio_mmio *mmio;
	struct virtio_device *dev;

	/* The substitute host interface. */
	struct fake_watch watches[FAKE_WATCH_MAX];
	unsigned int nr_watches;
	unsigned int irqfds;	 /* irqfds currently assigned */
	unsigned int ioeventfds; /* ioeventfds currently assigned */
	bool ioeventfd_fails;	 /* refuse ioeventfds: notifications take the bus path */

	struct fake_queue queues[VIRTIO_MAX_QUEUES];
};

/*
 * RAM of ram_size bytes (page aligned) at FAKE_RAM_GPA, a transport for dev (taking
 * ownership, even on failure).
 */
int fake_driver_init(struct fake_driver *d, struct virtio_device *dev, uint64_t ram_size);
void fake_driver_destroy(struct fake_driver *d);

uint32_t fake_read(struct fake_driver *d, uint64_t reg);
void fake_write(struct fake_driver *d, uint64_t reg, uint32_t value);

/* Reset, ACKNOWLEDGE, DRIVER, write features, FEATURES_OK; returns Status read back. */
uint32_t fake_negotiate(struct fake_driver *d, uint64_t features);
/* Status |= DRIVER_OK; returns Status read back. */
uint32_t fake_driver_ok(struct fake_driver *d);

/* Allocate and zero RAM (gpa), aligned to align (a power of 2); 0 when out of space. */
uint64_t fake_alloc(struct fake_driver *d, uint64_t size, uint64_t align);
void *fake_ptr(struct fake_driver *d, uint64_t gpa);

/*
 * Allocate rings for queue q of size entries, program them and write QueueReady 1;
 * returns QueueReady read back.
 */
uint32_t fake_setup_queue(struct fake_driver *d, unsigned int q, uint16_t size);
/* Program explicit ring addresses (for the refusal tests); returns QueueReady read back. */
uint32_t fake_program_queue(struct fake_driver *d, unsigned int q, uint16_t size, uint64_t desc,
			    uint64_t avail, uint64_t used);

void fake_set_desc(struct fake_driver *d, unsigned int q, uint16_t i, uint64_t addr, uint32_t len,
		   uint16_t flags, uint16_t next);
/* Write a descriptor into an indirect table at gpa. */
void fake_set_indirect(struct fake_driver *d, uint64_t table, uint16_t i, uint64_t addr,
		       uint32_t len, uint16_t flags, uint16_t next);
/* Put head in the available ring and publish it (idx store with release). */
void fake_make_avail(struct fake_driver *d, unsigned int q, uint16_t head);
/* Overwrite the available idx (hostile drivers). */
void fake_set_avail_idx(struct fake_driver *d, unsigned int q, uint16_t idx);
void fake_set_used_event(struct fake_driver *d, unsigned int q, uint16_t event);
void fake_set_avail_flags(struct fake_driver *d, unsigned int q, uint16_t flags);
uint16_t fake_avail_event(struct fake_driver *d, unsigned int q);

/* QueueNotify through the bus, then run the notification handlers (fake_driver_pump). */
void fake_kick(struct fake_driver *d, unsigned int q);
/* Run every watched handler whose eventfd is readable, until none is. */
void fake_driver_pump(struct fake_driver *d);
/*
 * One event-loop round: wait up to timeout_ms for a watched eventfd or extra_fd (-1: none)
 * to be readable and run the ready handlers (not extra_fd's: *extra_ready says it is
 * readable). Returns how many descriptors were ready.
 */
int fake_driver_poll_round(struct fake_driver *d, int extra_fd, int timeout_ms, bool *extra_ready);

/* Interrupts raised since the last call (the irq eventfd's counter). */
unsigned int fake_irqs(struct fake_driver *d);

/* Next used element, if the device published one: true and *id, *len. */
bool fake_pop_used(struct fake_driver *d, unsigned int q, uint32_t *id, uint32_t *len);
uint16_t fake_used_idx(struct fake_driver *d, unsigned int q);

/* One buffer of a chain, for fake_add_chain(). */
struct fake_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable; /* device-writable (VRING_DESC_F_WRITE) */
};

/*
 * Write n chained descriptors at first, first + 1, ... (modulo the queue size) for bufs,
 * in order, and make the chain available (not notified: fake_kick does that).
 */
void fake_add_chain(struct fake_driver *d, unsigned int q, uint16_t first,
		    const struct fake_buf *bufs, unsigned int n);

#endif
