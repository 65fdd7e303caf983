/*
 * Unit tests for vmm/devices/virtio/virtq.c: valid chains come out as the iovecs a device
 * expects, and a deterministic suite of known-bad chains each breaks the queue (the device
 * then reads DEVICE_NEEDS_RESET with a configuration interrupt, stops processing, and works
 * again after a reset) without touching memory outside guest RAM. Run under ASan too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <linux/virtio_config.h>

#include "virtio_fake_driver.h"

#define QSIZE	  8
#define PROBE_MAX 64
#define F_V1	  (1ULL << VIRTIO_F_VERSION_1)
#define F_INDIR	  (1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define S_FEAT	  (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)
#define W	  VRING_DESC_F_WRITE
#define N	  VRING_DESC_F_NEXT
#define I	  VRING_DESC_F_INDIRECT

/* A device that pops every chain, remembers the last one and completes it. */
struct probe {
	struct virtio_device dev;
	struct iovec iov[PROBE_MAX];
	struct virtq_chain last;
	struct iovec seen[PROBE_MAX];
	unsigned int popped;
	int result;
};

static void probe_notify(struct virtio_device *dev, unsigned int q)
{
	struct probe *p = container_of(dev, struct probe, dev);
	struct virtq *vq = &dev->queues[q];
	struct virtq_chain chain;
	int r;

	virtq_chain_init(&chain, p->iov, PROBE_MAX);
	while ((r = virtq_pop_chain(vq, &chain)) > 0) {
		p->popped++;
		p->last = chain;
		memcpy(p->seen, p->iov, sizeof(p->seen));
		virtq_push_used(vq, chain.head, 0);
	}
	p->result = r;
	virtio_device_notify_used(dev, q);
}

static void probe_destroy(struct virtio_device *dev)
{
	free(container_of(dev, struct probe, dev));
}

static const struct virtio_device_ops probe_ops = {
	.queue_notify = probe_notify,
	.destroy = probe_destroy,
};

static struct probe *probe_of(struct fake_driver *d)
{
	return container_of(d->dev, struct probe, dev);
}

static void bring_up(struct fake_driver *d, uint64_t features)
{
	assert_int_equal(fake_negotiate(d, features), S_FEAT);
	assert_int_equal(fake_setup_queue(d, 0, QSIZE), 1);
	assert_int_equal(fake_driver_ok(d), S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK);
	fake_irqs(d);
}

static struct fake_driver *probe_driver(uint64_t ram_size)
{
	struct fake_driver *d = calloc(1, sizeof(*d));
	struct probe *p = calloc(1, sizeof(*p));

	assert_non_null(d);
	assert_non_null(p);
	p->dev.name = "probe";
	p->dev.device_id = 42;
	p->dev.nr_queues = 1;
	p->dev.queue_max_size[0] = 16;
	p->dev.ops = &probe_ops;
	assert_int_equal(fake_driver_init(d, &p->dev, ram_size), 0);
	bring_up(d, F_V1 | F_INDIR);
	return d;
}

static int setup(void **state)
{
	*state = probe_driver(MIB(1));
	return 0;
}

static int teardown(void **state)
{
	struct fake_driver *d = *state;

	fake_driver_destroy(d);
	free(d);
	return 0;
}

static uint64_t buf(struct fake_driver *d, uint64_t len)
{
	uint64_t gpa = fake_alloc(d, len, 16);

	assert_int_not_equal(gpa, 0);
	return gpa;
}

/* Publish head, kick, and check the device took it as one good chain. */
static void expect_chain(struct fake_driver *d, uint16_t head)
{
	struct probe *p = probe_of(d);
	unsigned int before = p->popped;
	uint32_t id, len;

	fake_make_avail(d, 0, head);
	fake_kick(d, 0);
	assert_int_equal(p->result, 0);
	assert_int_equal(p->popped, before + 1);
	assert_true(fake_pop_used(d, 0, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(fake_irqs(d), 1);
	assert_false(fake_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/*
 * After a kick with a bad chain published: the device needs a reset, said so with a
 * configuration interrupt, completed nothing, ignores further buffers, and works again
 * after a reset.
 */
static void expect_broken(struct fake_driver *d)
{
	struct probe *p = probe_of(d);
	uint32_t id, len;
	uint64_t ok;

	fake_kick(d, 0);
	assert_int_equal(p->result, -EBADMSG);
	assert_true(fake_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_true(fake_read(d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(fake_irqs(d), 1);
	assert_false(fake_pop_used(d, 0, &id, &len));

	/* A good chain now is not processed: the queue stays stopped until reset. */
	ok = buf(d, 16);
	fake_set_desc(d, 0, 7, ok, 16, W, 0);
	fake_make_avail(d, 0, 7);
	p->result = 1;
	fake_kick(d, 0);
	assert_int_equal(p->result, 1); /* the device was not even called */
	assert_false(fake_pop_used(d, 0, &id, &len));

	bring_up(d, F_V1 | F_INDIR);
	assert_int_equal(fake_read(d, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	fake_set_desc(d, 0, 0, ok, 16, W, 0);
	expect_chain(d, 0);
}

static void test_valid_direct(void **state)
{
	struct fake_driver *d = *state;
	struct probe *p = probe_of(d);
	uint64_t a = buf(d, 16), b = buf(d, 32), c = buf(d, 8), e = buf(d, 100);
	uint8_t out[48], in[108];
	unsigned int i;

	for (i = 0; i < 16; i++)
		((uint8_t *)fake_ptr(d, a))[i] = i;
	for (i = 0; i < 32; i++)
		((uint8_t *)fake_ptr(d, b))[i] = 16 + i;
	/* Readable a, b, then a zero-length descriptor anywhere, then writable c, e. */
	fake_set_desc(d, 0, 2, a, 16, N, 5);
	fake_set_desc(d, 0, 5, b, 32, N, 1);
	fake_set_desc(d, 0, 1, 0xdead0000, 0, W | N, 0);
	fake_set_desc(d, 0, 0, c, 8, W | N, 3);
	fake_set_desc(d, 0, 3, e, 100, W, 0);
	expect_chain(d, 2);
	assert_int_equal(p->last.head, 2);
	assert_int_equal(p->last.nr_out, 2);
	assert_int_equal(p->last.nr_in, 2);
	assert_int_equal(p->last.out_len, 48);
	assert_int_equal(p->last.in_len, 108);
	assert_ptr_equal(p->seen[0].iov_base, fake_ptr(d, a));
	assert_ptr_equal(p->seen[1].iov_base, fake_ptr(d, b));
	assert_ptr_equal(p->seen[2].iov_base, fake_ptr(d, c));
	assert_int_equal(p->seen[3].iov_len, 100);

	/* The copy helpers cross buffer boundaries and stop at the end. */
	p->last.iov = p->last.out = p->seen;
	p->last.in = p->seen + 2;
	assert_int_equal(virtq_chain_read(&p->last, 0, out, sizeof(out)), 48);
	for (i = 0; i < 48; i++)
		assert_int_equal(out[i], i);
	assert_int_equal(virtq_chain_read(&p->last, 40, out, sizeof(out)), 8);
	memset(in, 0xab, sizeof(in));
	assert_int_equal(virtq_chain_write(&p->last, 4, in, sizeof(in)), 104);
	assert_int_equal(((uint8_t *)fake_ptr(d, e))[99], 0xab);
	assert_int_equal(((uint8_t *)fake_ptr(d, c))[3], 0);
}

static void test_valid_indirect(void **state)
{
	struct fake_driver *d = *state;
	struct probe *p = probe_of(d);
	uint64_t hdr = buf(d, 16), data = buf(d, 512), status = buf(d, 1);
	uint64_t table = buf(d, 3 * 16);

	/* One direct readable descriptor, then an indirect table (§2.7.5.3.2 allows it). */
	fake_set_indirect(d, table, 0, data, 512, N, 2);
	fake_set_indirect(d, table, 2, status, 1, W, 0);
	fake_set_desc(d, 0, 4, hdr, 16, N, 6);
	fake_set_desc(d, 0, 6, table, 3 * 16, I | W /* ignored */, 0);
	expect_chain(d, 4);
	assert_int_equal(p->last.nr_out, 2);
	assert_int_equal(p->last.nr_in, 1);
	assert_int_equal(p->last.out_len, 528);
	assert_ptr_equal(p->seen[2].iov_base, fake_ptr(d, status));
}

static void test_loop(void **state)
{
	struct fake_driver *d = *state;
	uint64_t a = buf(d, 16);

	fake_set_desc(d, 0, 0, a, 16, N, 1);
	fake_set_desc(d, 0, 1, a, 16, N, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_self_loop(void **state)
{
	struct fake_driver *d = *state;

	fake_set_desc(d, 0, 3, buf(d, 16), 16, W | N, 3);
	fake_make_avail(d, 0, 3);
	expect_broken(d);
}

static void test_out_of_ram(void **state)
{
	struct fake_driver *d = *state;

	fake_set_desc(d, 0, 0, 0x1000, 16, W, 0); /* below RAM */
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_runs_off_ram(void **state)
{
	struct fake_driver *d = *state;

	fake_set_desc(d, 0, 0, FAKE_RAM_GPA + MIB(1) - 8, 16, W, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_addr_len_overflow(void **state)
{
	struct fake_driver *d = *state;

	fake_set_desc(d, 0, 0, 0xfffffffffffff000ULL, 0x2000, W, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_huge_descriptor(void **state)
{
	struct fake_driver *d = *state;

	fake_set_desc(d, 0, 0, FAKE_RAM_GPA, 0xffffffff, W, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

/* Zero-length descriptors are allowed (documented in virtq.h) but keep their place. */
static void test_zero_length(void **state)
{
	struct fake_driver *d = *state;
	struct probe *p = probe_of(d);

	fake_set_desc(d, 0, 0, 0, 0, 0, 0);
	expect_chain(d, 0);
	assert_int_equal(p->last.nr_out + p->last.nr_in, 0);
	/* A zero-length writable one still may not precede a readable one. */
	fake_set_desc(d, 0, 1, 0, 0, W | N, 2);
	fake_set_desc(d, 0, 2, buf(d, 8), 8, 0, 0);
	fake_make_avail(d, 0, 1);
	expect_broken(d);
}

static void test_order_violation(void **state)
{
	struct fake_driver *d = *state;

	/* A device-writable header before a device-readable payload (§2.7.4.2). */
	fake_set_desc(d, 0, 0, buf(d, 16), 16, W | N, 1);
	fake_set_desc(d, 0, 1, buf(d, 64), 64, 0, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_order_violation_indirect(void **state)
{
	struct fake_driver *d = *state;
	uint64_t table = buf(d, 32);

	fake_set_desc(d, 0, 0, buf(d, 16), 16, W | N, 1);
	fake_set_indirect(d, table, 0, buf(d, 16), 16, 0, 0);
	fake_set_desc(d, 0, 1, table, 16, I, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_next_out_of_range(void **state)
{
	struct fake_driver *d = *state;

	fake_set_desc(d, 0, 0, buf(d, 16), 16, N, QSIZE);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_head_out_of_range(void **state)
{
	struct fake_driver *d = *state;

	fake_make_avail(d, 0, 0xffff);
	expect_broken(d);
}

static void test_avail_idx_jump(void **state)
{
	struct fake_driver *d = *state;
	unsigned int i;

	for (i = 0; i < QSIZE; i++)
		fake_set_desc(d, 0, i, buf(d, 8), 8, W, 0);
	fake_set_avail_idx(d, 0, QSIZE + 1);
	expect_broken(d);
}

static void test_avail_idx_full_ring_ok(void **state)
{
	struct fake_driver *d = *state;
	struct probe *p = probe_of(d);
	unsigned int i;

	/* Exactly a queue's worth is fine. */
	for (i = 0; i < QSIZE; i++) {
		fake_set_desc(d, 0, i, buf(d, 8), 8, W, 0);
		fake_make_avail(d, 0, i);
	}
	fake_kick(d, 0);
	assert_int_equal(p->popped, QSIZE);
	assert_int_equal(fake_used_idx(d, 0), QSIZE);
}

static void test_chain_longer_than_queue(void **state)
{
	struct fake_driver *d = *state;
	uint64_t table = buf(d, 6 * 16);
	unsigned int i;

	/* 5 direct + an indirect table of 6: 11 buffers in a queue of 8 (§2.7.5.3.1). */
	for (i = 0; i < 5; i++)
		fake_set_desc(d, 0, i, buf(d, 8), 8, N, i + 1);
	fake_set_desc(d, 0, 5, table, 6 * 16, I, 0);
	for (i = 0; i < 6; i++)
		fake_set_indirect(d, table, i, buf(d, 8), 8, i < 5 ? N : 0, i + 1);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_indirect_table_too_long(void **state)
{
	struct fake_driver *d = *state;
	uint64_t table = buf(d, (QSIZE + 1) * 16);

	fake_set_indirect(d, table, 0, buf(d, 8), 8, 0, 0);
	fake_set_desc(d, 0, 0, table, (QSIZE + 1) * 16, I, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_nested_indirect(void **state)
{
	struct fake_driver *d = *state;
	uint64_t outer = buf(d, 32), inner = buf(d, 16);

	fake_set_indirect(d, inner, 0, buf(d, 8), 8, W, 0);
	fake_set_indirect(d, outer, 0, buf(d, 8), 8, N, 1);
	fake_set_indirect(d, outer, 1, inner, 16, I, 0);
	fake_set_desc(d, 0, 0, outer, 32, I, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_indirect_bad_length(void **state)
{
	struct fake_driver *d = *state;
	uint64_t table = buf(d, 32);

	fake_set_indirect(d, table, 0, buf(d, 8), 8, W, 0);
	fake_set_desc(d, 0, 0, table, 24, I, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
	fake_set_desc(d, 0, 1, table, 0, I, 0);
	fake_make_avail(d, 0, 1);
	expect_broken(d);
}

static void test_indirect_with_next(void **state)
{
	struct fake_driver *d = *state;
	uint64_t table = buf(d, 16);

	fake_set_indirect(d, table, 0, buf(d, 8), 8, W, 0);
	fake_set_desc(d, 0, 0, table, 16, I | N, 1);
	fake_set_desc(d, 0, 1, buf(d, 8), 8, W, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_indirect_loop_and_range(void **state)
{
	struct fake_driver *d = *state;
	uint64_t table = buf(d, 64);
	uint64_t b = buf(d, 8);

	fake_set_indirect(d, table, 0, b, 8, N, 1);
	fake_set_indirect(d, table, 1, b, 8, N, 0); /* loop inside the table */
	fake_set_desc(d, 0, 0, table, 64, I, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
	fake_set_indirect(d, table, 1, b, 8, N, 4); /* next past the table's 4 entries */
	fake_set_desc(d, 0, 0, table, 64, I, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
	fake_set_desc(d, 0, 0, FAKE_RAM_GPA + MIB(1) - 16, 32, I, 0); /* table off RAM */
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

static void test_indirect_not_negotiated(void **state)
{
	struct fake_driver *d = *state;
	uint64_t table = buf(d, 16);

	assert_int_equal(fake_negotiate(d, F_V1), S_FEAT);
	assert_int_equal(fake_setup_queue(d, 0, QSIZE), 1);
	fake_driver_ok(d);
	fake_irqs(d);
	fake_set_indirect(d, table, 0, buf(d, 8), 8, W, 0);
	fake_set_desc(d, 0, 0, table, 16, I, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
}

/* §2.7.5.2: up to 2^32 bytes in a chain, not one more (and no 32-bit wrap in the sum). */
static void test_4gib(void **state)
{
	struct fake_driver *d = probe_driver(GIB(2) + MIB(1));
	uint64_t big = FAKE_RAM_GPA + MIB(1);

	(void)state;
	fake_set_desc(d, 0, 0, big, 0x80000000, N, 1);
	fake_set_desc(d, 0, 1, big, 0x80000000, 0, 0);
	expect_chain(d, 0);
	assert_int_equal(probe_of(d)->last.out_len, 1ULL << 32);
	fake_set_desc(d, 0, 1, big, 0x80000000, N, 2);
	fake_set_desc(d, 0, 2, big, 1, 0, 0);
	fake_make_avail(d, 0, 0);
	expect_broken(d);
	fake_driver_destroy(d);
	free(d);
}

/* An unpopped chain comes out again, the same, and only once it is pushed is it used. */
static void test_unpop(void **state)
{
	struct fake_driver *d = *state;
	struct virtq *vq = &d->dev->queues[0];
	uint64_t a = buf(d, 32), b = buf(d, 64);
	struct iovec iov[4];
	struct virtq_chain c;
	uint32_t id, len;

	virtq_chain_init(&c, iov, ARRAY_SIZE(iov));
	assert_int_equal(virtq_pop_chain(vq, &c), 0);
	fake_set_desc(d, 0, 3, a, 32, W, 0);
	fake_set_desc(d, 0, 4, b, 64, W, 0);
	fake_make_avail(d, 0, 3);
	fake_make_avail(d, 0, 4);
	assert_int_equal(virtq_pop_chain(vq, &c), 1);
	assert_int_equal(c.head, 3);
	virtq_unpop_chain(vq);
	assert_int_equal(virtq_pop_chain(vq, &c), 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.in_len, 32);
	virtq_push_used(vq, c.head, 7);
	assert_int_equal(virtq_pop_chain(vq, &c), 1);
	assert_int_equal(c.head, 4);
	virtq_unpop_chain(vq);
	assert_true(fake_pop_used(d, 0, &id, &len));
	assert_int_equal(id, 3);
	assert_int_equal(len, 7);
	assert_false(fake_pop_used(d, 0, &id, &len));
	assert_int_equal(virtq_pop_chain(vq, &c), 1);
	assert_int_equal(c.head, 4);
	assert_int_equal(virtq_pop_chain(vq, &c), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_valid_direct),
		T(test_valid_indirect),
		T(test_loop),
		T(test_self_loop),
		T(test_out_of_ram),
		T(test_runs_off_ram),
		T(test_addr_len_overflow),
		T(test_huge_descriptor),
		T(test_zero_length),
		T(test_order_violation),
		T(test_order_violation_indirect),
		T(test_next_out_of_range),
		T(test_head_out_of_range),
		T(test_avail_idx_jump),
		T(test_avail_idx_full_ring_ok),
		T(test_chain_longer_than_queue),
		T(test_indirect_table_too_long),
		T(test_nested_indirect),
		T(test_indirect_bad_length),
		T(test_indirect_with_next),
		T(test_indirect_loop_and_range),
		T(test_indirect_not_negotiated),
		T(test_unpop),
		cmocka_unit_test(test_4gib),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
