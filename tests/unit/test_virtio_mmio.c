/*
 * Unit tests for the virtio-mmio transport (vmm/devices/virtio/mmio.c) and virtio-rng
 * (rng.c), driven through the register interface by the fake driver, with interrupts and
 * notifications on plain eventfds instead of KVM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "virtio_fake_driver.h"

#define RAM_SIZE MIB(1)
#define F_V1	 (1ULL << VIRTIO_F_VERSION_1)
#define F_EVENT	 (1ULL << VIRTIO_RING_F_EVENT_IDX)
#define F_INDIR	 (1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define S_BASIC	 (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER)
#define S_FEAT	 (S_BASIC | VIRTIO_CONFIG_S_FEATURES_OK)

static int setup_rng(void **state)
{
	struct fake_driver *d = calloc(1, sizeof(*d));
	struct virtio_device *dev;

	assert_non_null(d);
	assert_int_equal(virtio_rng_new("rng0", &dev), 0);
	assert_int_equal(fake_driver_init(d, dev, RAM_SIZE), 0);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct fake_driver *d = *state;

	fake_driver_destroy(d);
	free(d);
	return 0;
}

/* Negotiate, one queue of size entries, DRIVER_OK: the state Linux leaves a device in. */
static void bring_up(struct fake_driver *d, uint64_t features, uint16_t size)
{
	assert_int_equal(fake_negotiate(d, features), S_FEAT);
	assert_int_equal(fake_setup_queue(d, 0, size), 1);
	assert_int_equal(fake_driver_ok(d), S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK);
}

static void test_identity(void **state)
{
	struct fake_driver *d = *state;
	uint8_t byte = 0x5a;

	assert_int_equal(fake_read(d, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_VENDOR_ID), 0x53545253);
	assert_int_equal(d->irqfds, 1);
	/* Control registers take 32-bit accesses only; rng has no config space (reads 0). */
	bus_access(&d->bus, FAKE_MMIO_BASE + VIRTIO_MMIO_MAGIC_VALUE, &byte, 1, false);
	assert_int_equal(byte, 0);
	byte = 0x5a;
	bus_access(&d->bus, FAKE_MMIO_BASE + VIRTIO_MMIO_CONFIG, &byte, 1, false);
	assert_int_equal(byte, 0);
	/* One queue: QueueNumMax is 0 for any other (§4.2.2). */
	fake_write(d, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
	fake_write(d, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	fake_write(d, VIRTIO_MMIO_QUEUE_READY, 1); /* ignored, no crash */
	assert_int_equal(fake_read(d, VIRTIO_MMIO_QUEUE_READY), 0);
}

static void test_features(void **state)
{
	struct fake_driver *d = *state;
	uint64_t offered;

	fake_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	offered = fake_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	fake_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)fake_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	assert_int_equal(offered, F_V1 | F_EVENT | F_INDIR);
	fake_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_DEVICE_FEATURES), 0);

	/* A legacy driver (no VERSION_1) is refused FEATURES_OK, and so is one taking more. */
	assert_int_equal(fake_negotiate(d, F_EVENT), S_BASIC);
	assert_int_equal(fake_negotiate(d, 0), S_BASIC);
	assert_int_equal(fake_negotiate(d, F_V1 | (1ULL << 5)), S_BASIC);
	assert_int_equal(fake_negotiate(d, F_V1 | (1ULL << VIRTIO_F_RING_PACKED)), S_BASIC);
	/* DRIVER_OK without FEATURES_OK is not taken either. */
	fake_write(d, VIRTIO_MMIO_STATUS, S_BASIC | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_STATUS), S_BASIC);
	/* A queue before FEATURES_OK breaks the device. */
	assert_int_equal(fake_setup_queue(d, 0, 16), 0);
	assert_true(fake_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);

	assert_int_equal(fake_negotiate(d, F_V1), S_FEAT);
	assert_int_equal(fake_negotiate(d, F_V1 | F_EVENT | F_INDIR), S_FEAT);
	/* Features are frozen once FEATURES_OK is set. */
	fake_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fake_write(d, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_true(virtio_device_has_feature(d->dev, VIRTIO_F_VERSION_1));
	assert_true(virtio_device_has_feature(d->dev, VIRTIO_RING_F_EVENT_IDX));
}

static void test_status_and_reset(void **state)
{
	struct fake_driver *d = *state;

	/* DRIVER before ACKNOWLEDGE is dropped. */
	fake_write(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_DRIVER);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_STATUS), 0);
	bring_up(d, F_V1 | F_EVENT, 16);
	assert_int_equal(d->ioeventfds, 1);
	/* Clearing bits without writing 0 is ignored. */
	fake_write(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_STATUS), S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK);
	/* Queue registers are frozen while the queue is ready. */
	fake_write(d, VIRTIO_MMIO_QUEUE_NUM, 8);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_QUEUE_NUM), 16);
	/* FAILED is the driver's to set. */
	fake_write(d, VIRTIO_MMIO_STATUS,
		   S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FAILED);
	assert_true(fake_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FAILED);

	/* Reset: status, queues, interrupt status, ioeventfds all back to nothing. */
	fake_write(d, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(d->ioeventfds, 0);
	assert_false(virtio_device_has_feature(d->dev, VIRTIO_F_VERSION_1));
	/* And the device comes up again. */
	bring_up(d, F_V1, 16);
	/* QueueReady 0 stops the queue and drops its ioeventfd. */
	fake_write(d, VIRTIO_MMIO_QUEUE_SEL, 0);
	fake_write(d, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(d->ioeventfds, 0);
}

/* One refused queue configuration: QueueReady stays 0, the device needs a reset. */
static void expect_queue_refused(struct fake_driver *d, uint16_t size, uint64_t desc,
				 uint64_t avail, uint64_t used)
{
	assert_int_equal(fake_negotiate(d, F_V1 | F_EVENT), S_FEAT);
	assert_int_equal(fake_program_queue(d, 0, size, desc, avail, used), 0);
	assert_true(fake_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(d->ioeventfds, 0);
	/* Still refused after DRIVER_OK: the device needs a reset first. */
	fake_write(d, VIRTIO_MMIO_STATUS, S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK);
	fake_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_QUEUE_READY), 0);
}

static void test_queue_setup_validation(void **state)
{
	struct fake_driver *d = *state;
	uint64_t desc = fake_alloc(d, 16 * 16, 4096);
	uint64_t avail = fake_alloc(d, 6 + 2 * 16, 4096);
	uint64_t used = fake_alloc(d, 6 + 8 * 16, 4096);
	uint64_t end = FAKE_RAM_GPA + RAM_SIZE;

	expect_queue_refused(d, 16, desc + 8, avail, used);	  /* desc not 16-aligned */
	expect_queue_refused(d, 16, desc, avail + 1, used);	  /* avail not 2-aligned */
	expect_queue_refused(d, 16, desc, avail, used + 2);	  /* used not 4-aligned */
	expect_queue_refused(d, 16, 0, avail, used);		  /* below RAM */
	expect_queue_refused(d, 16, end - 16 * 8, avail, used);	  /* runs off the end */
	expect_queue_refused(d, 16, desc, end - 6, used);	  /* avail 6 + 2N */
	expect_queue_refused(d, 16, desc, avail, end - 8 * 16);	  /* used 6 + 8N */
	expect_queue_refused(d, 16, desc, avail, UINT64_MAX - 3); /* wraps */
	expect_queue_refused(d, 16, 0xfffffffffffff000ULL, avail, used);
	expect_queue_refused(d, 6, desc, avail, used);	 /* not a power of 2 */
	expect_queue_refused(d, 0, desc, avail, used);	 /* empty */
	expect_queue_refused(d, 512, desc, avail, used); /* above QueueNumMax */
	fake_write(d, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(fake_negotiate(d, F_V1 | F_EVENT), S_FEAT);
	assert_int_equal(fake_program_queue(d, 0, 16, desc, avail, used), 1);
	assert_int_equal(d->ioeventfds, 1);
}

/* A request for len bytes of randomness in one writable descriptor. */
static uint64_t rng_request(struct fake_driver *d, uint16_t slot, uint32_t len)
{
	uint64_t buf = fake_alloc(d, len, 64);

	assert_int_not_equal(buf, 0);
	fake_set_desc(d, 0, slot, buf, len, VRING_DESC_F_WRITE, 0);
	fake_make_avail(d, 0, slot);
	return buf;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

static void test_rng_random_bytes(void **state)
{
	struct fake_driver *d = *state;
	uint64_t a, b;
	uint32_t id, len;

	bring_up(d, F_V1, 16);
	fake_irqs(d);
	a = rng_request(d, 3, 100);
	fake_kick(d, 0);
	assert_true(fake_pop_used(d, 0, &id, &len));
	assert_int_equal(id, 3);
	assert_int_equal(len, 100);
	assert_int_equal(fake_used_idx(d, 0), 1);
	assert_int_equal(fake_irqs(d), 1);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	fake_write(d, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_false(all_zero(fake_ptr(d, a), 100));

	b = rng_request(d, 5, 100);
	fake_kick(d, 0);
	assert_true(fake_pop_used(d, 0, &id, &len));
	assert_int_equal(id, 5);
	assert_int_equal(len, 100);
	assert_memory_not_equal(fake_ptr(d, a), fake_ptr(d, b), 100);
	assert_false(fake_pop_used(d, 0, &id, &len));
}

static void test_rng_capped(void **state)
{
	struct fake_driver *d = *state;
	uint64_t big = fake_alloc(d, KIB(200), 64), x = fake_alloc(d, KIB(40), 64);
	uint64_t y = fake_alloc(d, KIB(40), 64), ro = fake_alloc(d, 16, 16);
	uint8_t *p = fake_ptr(d, big);
	uint32_t id, len;

	bring_up(d, F_V1, 16);
	/* One 200 KiB buffer: 64 KiB filled, the rest untouched. */
	fake_set_desc(d, 0, 0, big, KIB(200), VRING_DESC_F_WRITE, 0);
	fake_make_avail(d, 0, 0);
	/* 40 + 40 KiB in two descriptors: 64 KiB over both. */
	fake_set_desc(d, 0, 1, x, KIB(40), VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	fake_set_desc(d, 0, 2, y, KIB(40), VRING_DESC_F_WRITE, 0);
	fake_make_avail(d, 0, 1);
	/* Nothing writable: nothing written, the request still completes. */
	fake_set_desc(d, 0, 3, ro, 16, 0, 0);
	fake_make_avail(d, 0, 3);
	fake_kick(d, 0);
	assert_true(fake_pop_used(d, 0, &id, &len));
	assert_int_equal(len, KIB(64));
	assert_false(all_zero(p + KIB(64) - 64, 64));
	assert_true(all_zero(p + KIB(64), KIB(200) - KIB(64)));
	assert_true(fake_pop_used(d, 0, &id, &len));
	assert_int_equal(id, 1);
	assert_int_equal(len, KIB(64));
	assert_true(all_zero((uint8_t *)fake_ptr(d, y) + KIB(24), KIB(16)));
	assert_true(fake_pop_used(d, 0, &id, &len));
	assert_int_equal(id, 3);
	assert_int_equal(len, 0);
	assert_true(all_zero(fake_ptr(d, ro), 16));
}

static void test_rng_many_requests_yield(void **state)
{
	struct fake_driver *d = *state;
	unsigned int i, completed = 0;
	uint32_t id, len;

	/* 8 x 64 KiB is more than one round (256 KiB): the device yields and comes back. */
	bring_up(d, F_V1, 16);
	for (i = 0; i < 8; i++)
		rng_request(d, i, KIB(64));
	fake_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	d->watches[0].fn(d->watches[0].arg, EPOLLIN); /* one round only */
	while (fake_pop_used(d, 0, &id, &len))
		completed++;
	assert_int_equal(completed, 4);
	fake_driver_pump(d); /* the kick it left itself */
	while (fake_pop_used(d, 0, &id, &len))
		completed++;
	assert_int_equal(completed, 8);
}

static void test_event_idx_suppression(void **state)
{
	struct fake_driver *d = *state;
	uint32_t id, len;
	unsigned int i;

	bring_up(d, F_V1 | F_EVENT, 16);
	fake_irqs(d);
	/* "No interrupt until used idx passes 3": requests 0..2 complete silently. */
	fake_set_used_event(d, 0, 3);
	for (i = 0; i < 3; i++) {
		rng_request(d, i, 8);
		fake_kick(d, 0);
		assert_true(fake_pop_used(d, 0, &id, &len));
		assert_int_equal(fake_irqs(d), 0);
		/* The device asks to be notified of the next buffer (avail_event, §2.7.10). */
		assert_int_equal(fake_avail_event(d, 0), i + 1);
	}
	rng_request(d, 3, 8);
	fake_kick(d, 0);
	assert_true(fake_pop_used(d, 0, &id, &len));
	assert_int_equal(fake_irqs(d), 1);
	/* Two at once with used_event 5: one interrupt for the batch that crosses it. */
	fake_set_used_event(d, 0, 5);
	rng_request(d, 4, 8);
	rng_request(d, 5, 8);
	fake_kick(d, 0);
	assert_int_equal(fake_used_idx(d, 0), 6);
	assert_int_equal(fake_irqs(d), 1);
}

static void test_no_interrupt_flag(void **state)
{
	struct fake_driver *d = *state;

	bring_up(d, F_V1, 16);
	fake_irqs(d);
	fake_set_avail_flags(d, 0, VRING_AVAIL_F_NO_INTERRUPT);
	rng_request(d, 0, 8);
	fake_kick(d, 0);
	assert_int_equal(fake_used_idx(d, 0), 1);
	assert_int_equal(fake_irqs(d), 0);
	fake_set_avail_flags(d, 0, 0);
	rng_request(d, 1, 8);
	fake_kick(d, 0);
	assert_int_equal(fake_irqs(d), 1);
}

static void test_notify_paths(void **state)
{
	struct fake_driver *d = *state;
	uint32_t id, len;

	/* No ioeventfd: QueueNotify reaches the bus and still gets the queue processed. */
	d->ioeventfd_fails = true;
	bring_up(d, F_V1, 16);
	assert_int_equal(d->ioeventfds, 0);
	rng_request(d, 0, 8);
	fake_kick(d, 0);
	assert_true(fake_pop_used(d, 0, &id, &len));
	/* A notification for a queue that does not exist is ignored. */
	fake_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 7);
	fake_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffff);
	fake_driver_pump(d);
	/* Buffers made available before DRIVER_OK are processed once it is set. */
	assert_int_equal(fake_negotiate(d, F_V1), S_FEAT);
	assert_int_equal(fake_setup_queue(d, 0, 16), 1);
	rng_request(d, 0, 8);
	fake_kick(d, 0);
	assert_int_equal(fake_used_idx(d, 0), 0);
	fake_driver_ok(d);
	assert_int_equal(fake_used_idx(d, 0), 1);
}

static void test_slots(void **state)
{
	struct virtio_mmio_slots slots = {
		.first_base = 0xd0001000, .end = 0xd0004000, .first_gsi = 5, .last_gsi = 23
	};
	uint64_t base;
	unsigned int gsi;

	(void)state;
	assert_int_equal(virtio_mmio_slot_alloc(&slots, &base, &gsi), 0);
	assert_int_equal(base, 0xd0001000);
	assert_int_equal(gsi, 5);
	assert_int_equal(virtio_mmio_slot_alloc(&slots, &base, &gsi), 0);
	assert_int_equal(virtio_mmio_slot_alloc(&slots, &base, &gsi), 0);
	assert_int_equal(base, 0xd0003000);
	assert_int_equal(gsi, 7);
	assert_int_equal(virtio_mmio_slot_alloc(&slots, &base, &gsi), -ENOSPC);
	slots = (struct virtio_mmio_slots){
		.first_base = 0, .end = ~0ULL, .first_gsi = 22, .last_gsi = 23
	};
	assert_int_equal(virtio_mmio_slot_alloc(&slots, &base, &gsi), 0);
	assert_int_equal(virtio_mmio_slot_alloc(&slots, &base, &gsi), 0);
	assert_int_equal(virtio_mmio_slot_alloc(&slots, &base, &gsi), -ENOSPC);
}

#define RNG_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_rng, teardown)

/*
 * Snapshots: the transport's state saved from one device and restored into a fresh one over
 * a copy of the guest's memory carries on where it was (docs/snapshots.md): registers,
 * queue indices, and a request made available but not yet served is served after restore.
 */
static void test_save_restore(void **state)
{
	struct fake_driver *d = *state, *clone = calloc(1, sizeof(*clone));
	struct virtio_mmio_state saved, bad;
	struct virtio_device *dev;
	struct error err = { 0 };
	uint32_t id, len;

	assert_non_null(clone);
	bring_up(d, F_V1 | F_EVENT, 16);
	rng_request(d, 0, 32);
	rng_request(d, 1, 32);
	fake_kick(d, 0);
	assert_int_equal(fake_used_idx(d, 0), 2);
	assert_true(fake_pop_used(d, 0, &id, &len));
	assert_true(fake_pop_used(d, 0, &id, &len));
	rng_request(d, 7, 48); /* available, not notified: the snapshot catches it pending */
	fake_write(d, VIRTIO_MMIO_QUEUE_SEL, 0);
	virtio_mmio_save(d->mmio, &saved);
	assert_int_equal(saved.queues[0].used_idx, 2);
	assert_int_equal(saved.queues[0].last_avail_idx, 2);

	assert_int_equal(virtio_rng_new("rng1", &dev), 0);
	assert_int_equal(fake_driver_init(clone, dev, RAM_SIZE), 0);
	memcpy(clone->ram, d->ram, RAM_SIZE);
	memcpy(clone->queues, d->queues, sizeof(d->queues));
	clone->next_free = d->next_free;
	fake_irqs(clone);
	assert_int_equal(virtio_mmio_restore(clone->mmio, &saved, &err), 0);
	assert_int_equal(fake_read(clone, VIRTIO_MMIO_STATUS), S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(fake_read(clone, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(fake_read(clone, VIRTIO_MMIO_QUEUE_NUM), 16);
	assert_int_equal(fake_read(clone, VIRTIO_MMIO_QUEUE_DESC_LOW), (uint32_t)d->queues[0].desc);
	assert_int_equal(fake_used_idx(clone, 0), 2); /* the ring in memory was left alone */
	/* The restore looked at the queue once: the pending request is served, in the clone. */
	fake_driver_pump(clone);
	assert_true(fake_pop_used(clone, 0, &id, &len));
	assert_int_equal(id, 7);
	assert_int_equal(len, 48);
	assert_int_equal(fake_used_idx(clone, 0), 3);
	assert_int_equal(fake_used_idx(d, 0), 2); /* not in the original */
	/* And the clone's queue runs on: the next request too. */
	rng_request(clone, 8, 16);
	fake_kick(clone, 0);
	assert_true(fake_pop_used(clone, 0, &id, &len));
	assert_int_equal(id, 8);

	/* Another device, other features, rings outside RAM: refused with the reason. */
	bad = saved;
	bad.device_id = VIRTIO_ID_BLOCK;
	assert_true(virtio_mmio_restore(clone->mmio, &bad, &err) < 0);
	assert_non_null(strstr(err.msg, "rng1: the snapshot has another device here"));
	memset(&err, 0, sizeof(err));
	bad = saved;
	bad.offered_features |= 1ULL << 5;
	assert_true(virtio_mmio_restore(clone->mmio, &bad, &err) < 0);
	assert_non_null(strstr(err.msg, "the snapshot's driver was offered"));
	memset(&err, 0, sizeof(err));
	bad = saved;
	bad.queues[0].used_gpa = FAKE_RAM_GPA + RAM_SIZE;
	assert_true(virtio_mmio_restore(clone->mmio, &bad, &err) < 0);
	assert_non_null(strstr(err.msg, "snapshot queue 0: used ring"));
	fake_driver_destroy(clone);
	free(clone);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		RNG_TEST(test_identity),
		RNG_TEST(test_features),
		RNG_TEST(test_status_and_reset),
		RNG_TEST(test_queue_setup_validation),
		RNG_TEST(test_rng_random_bytes),
		RNG_TEST(test_rng_capped),
		RNG_TEST(test_rng_many_requests_yield),
		RNG_TEST(test_event_idx_suppression),
		RNG_TEST(test_no_interrupt_flag),
		RNG_TEST(test_notify_paths),
		RNG_TEST(test_save_restore),
		cmocka_unit_test(test_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
