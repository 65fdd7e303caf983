/*
 * Unit tests for virtio-blk (vmm/devices/virtio/blk.c, virtio 1.2 §5.2) through the
 * virtio-mmio transport and the fake driver: configuration space (§5.2.4), every request
 * type of §5.2.6 and what a hostile driver can get wrong in one. The image is a temporary
 * file under /tmp; what the guest writes is checked in the file, not only read back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "vm.h"
#include "virtio_fake_driver.h"

#define RAM_SIZE  MIB(8)
#define DISK_SIZE MIB(4)
#define SECTORS	  (DISK_SIZE / 512)
#define F_V1	  (1ULL << VIRTIO_F_VERSION_1)
#define F_EVENT	  (1ULL << VIRTIO_RING_F_EVENT_IDX)
#define F_INDIR	  (1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define F_BLK_BASIC                                                         \
	((1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_SIZE_MAX) | \
	 (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH))
#define F_BLK_RW \
	(F_BLK_BASIC | (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES))
#define S_RUNNING                                                                             \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | \
	 VIRTIO_CONFIG_S_DRIVER_OK)
#define QSIZE	  64
#define NO_STATUS 0x100 /* request(): no used element came back */

struct blk_test {
	struct fake_driver d;
	char path[64];
	int fd; /* the image, for checking what landed in it */
	bool readonly;
};

static int blk_setup(void **state, bool readonly, bool direct)
{
	struct blk_test *t = calloc(1, sizeof(*t));
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_BLK,
					 .readonly = readonly,
					 .direct = direct };
	struct virtio_device *dev;
	struct error err = { 0 };
	uint8_t *fill = malloc(DISK_SIZE);
	uint64_t i;

	assert_non_null(t);
	assert_non_null(fill);
	snprintf(t->path, sizeof(t->path), "/tmp/stratus-blk-test.XXXXXX");
	t->fd = mkstemp(t->path);
	assert_true(t->fd >= 0);
	for (i = 0; i < DISK_SIZE; i++)
		fill[i] = (uint8_t)(i * 7 + (i >> 9)); /* never a run of zeros */
	assert_int_equal(pwrite(t->fd, fill, DISK_SIZE, 0), DISK_SIZE);
	free(fill);
	snprintf(spec.path, sizeof(spec.path), "%s", t->path);
	snprintf(spec.id, sizeof(spec.id), "blk0");
	snprintf(spec.serial, sizeof(spec.serial), "SERIAL-123");
	t->readonly = readonly;
	if (virtio_blk_new(&spec, &dev, &err) < 0)
		fail_msg("virtio_blk_new: %s", err.msg);
	assert_int_equal(fake_driver_init(&t->d, dev, RAM_SIZE), 0);
	*state = t;
	return 0;
}

static int setup_rw(void **state)
{
	return blk_setup(state, false, false);
}

static int setup_ro(void **state)
{
	return blk_setup(state, true, false);
}

static int setup_direct(void **state)
{
	return blk_setup(state, false, true);
}

static int teardown(void **state)
{
	struct blk_test *t = *state;

	fake_driver_destroy(&t->d);
	close(t->fd);
	unlink(t->path);
	free(t);
	return 0;
}

static uint64_t offered_features(struct fake_driver *d)
{
	uint64_t f;

	fake_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = fake_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	fake_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)fake_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

/* Take every feature offered, one queue, DRIVER_OK. */
static void bring_up(struct blk_test *t)
{
	uint64_t features = offered_features(&t->d);

	assert_int_equal(fake_negotiate(&t->d, features), S_RUNNING & ~VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(fake_setup_queue(&t->d, 0, QSIZE), 1);
	assert_int_equal(fake_driver_ok(&t->d), S_RUNNING);
}

static void config_read(struct fake_driver *d, uint32_t offset, void *buf, uint32_t len)
{
	bus_access(&d->bus, FAKE_MMIO_BASE + VIRTIO_MMIO_CONFIG + offset, buf, len, false);
}

static uint64_t header(struct fake_driver *d, uint32_t type, uint64_t sector)
{
	uint64_t gpa = fake_alloc(d, sizeof(struct virtio_blk_outhdr), 16);
	struct virtio_blk_outhdr *h = fake_ptr(d, gpa);

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	return gpa;
}

static uint64_t status_byte(struct fake_driver *d)
{
	uint64_t gpa = fake_alloc(d, 1, 1);

	*(uint8_t *)fake_ptr(d, gpa) = 0xff;
	return gpa;
}

/*
 * Submit one chain, kick, and collect it: returns the status byte (read from status_gpa),
 * or NO_STATUS if the device returned nothing; *used gets the used length.
 */
static unsigned int submit(struct fake_driver *d, const struct fake_buf *bufs, unsigned int n,
			   uint64_t status_gpa, uint32_t *used)
{
	uint32_t id, len;

	fake_add_chain(d, 0, 0, bufs, n);
	fake_kick(d, 0);
	if (!fake_pop_used(d, 0, &id, &len))
		return NO_STATUS;
	assert_int_equal(id, 0);
	if (used)
		*used = len;
	return *(uint8_t *)fake_ptr(d, status_gpa);
}

/* A request with one data buffer (none if len is 0). */
static unsigned int request(struct fake_driver *d, uint32_t type, uint64_t sector, uint64_t data,
			    uint32_t len, bool data_writable, uint32_t *used)
{
	uint64_t st = status_byte(d);
	struct fake_buf bufs[3] = { { header(d, type, sector), 16, false } };
	unsigned int n = 1;

	if (len)
		bufs[n++] = (struct fake_buf){ data, len, data_writable };
	bufs[n++] = (struct fake_buf){ st, 1, true };
	return submit(d, bufs, n, st, used);
}

static unsigned int blk_read(struct fake_driver *d, uint64_t sector, uint64_t gpa, uint32_t len,
			     uint32_t *used)
{
	return request(d, VIRTIO_BLK_T_IN, sector, gpa, len, true, used);
}

static unsigned int blk_write(struct fake_driver *d, uint64_t sector, uint64_t gpa, uint32_t len,
			      uint32_t *used)
{
	return request(d, VIRTIO_BLK_T_OUT, sector, gpa, len, false, used);
}

static void fill_pattern(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 13 + (i >> 8));
}

static bool image_equals(struct blk_test *t, uint64_t off, const void *buf, size_t len)
{
	uint8_t *tmp = malloc(len);
	bool same;

	assert_non_null(tmp);
	assert_int_equal(pread(t->fd, tmp, len, off), len);
	same = memcmp(tmp, buf, len) == 0;
	free(tmp);
	return same;
}

static bool image_is_zero(struct blk_test *t, uint64_t off, size_t len)
{
	uint8_t *zero = calloc(1, len);
	bool same = image_equals(t, off, zero, len);

	free(zero);
	return same;
}

static bool device_failed(struct fake_driver *d)
{
	return fake_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

static void test_config(void **state)
{
	struct blk_test *t = *state;
	struct virtio_blk_config c;
	uint64_t f = offered_features(&t->d);

	assert_int_equal(fake_read(&t->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	memset(&c, 0xee, sizeof(c));
	config_read(&t->d, 0, &c, offsetof(struct virtio_blk_config, max_secure_erase_sectors));
	assert_int_equal(c.capacity, SECTORS);
	assert_int_equal(c.blk_size, 512);
	assert_true(c.seg_max >= 1 && c.seg_max <= QSIZE * 4);
	assert_true(c.size_max >= 4096);
	assert_int_equal(f & (F_V1 | F_EVENT | F_INDIR), F_V1 | F_EVENT | F_INDIR);
	assert_int_equal(f & 0xffffffff & ~F_INDIR & ~F_EVENT,
			 t->readonly ? F_BLK_BASIC | (1ULL << VIRTIO_BLK_F_RO) : F_BLK_RW);
	if (!t->readonly) {
		assert_true(c.max_discard_sectors > 0 && c.max_discard_seg > 0);
		assert_true(c.max_write_zeroes_sectors > 0 && c.max_write_zeroes_seg > 0);
		assert_true(c.discard_sector_alignment > 0);
		assert_int_equal(c.write_zeroes_may_unmap, 1);
	}
	/* 8-byte and byte accesses; past the end reads zeros. */
	uint8_t byte = 0x5a;
	config_read(&t->d, 1, &byte, 1);
	assert_int_equal(byte, (SECTORS >> 8) & 0xff);
	config_read(&t->d, 200, &byte, 1);
	assert_int_equal(byte, 0);
}

static void test_read_write_round_trip(void **state)
{
	struct blk_test *t = *state;
	static const struct {
		uint64_t sector;
		uint32_t len;
	} cases[] = {
		{ 0, 512 },	     { 1, 1536 },	   { 777, 4096 + 512 },
		{ 3, 65536 + 1536 }, { SECTORS - 1, 512 }, { SECTORS - 8, 4096 },
	};
	unsigned int i;

	bring_up(t);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		uint32_t len = cases[i].len, used = 0;
		uint64_t src = fake_alloc(&t->d, len, 64), dst = fake_alloc(&t->d, len, 8);

		fill_pattern(fake_ptr(&t->d, src), len, i);
		assert_int_equal(blk_write(&t->d, cases[i].sector, src, len, &used),
				 VIRTIO_BLK_S_OK);
		assert_int_equal(used, 1);
		assert_true(image_equals(t, cases[i].sector * 512, fake_ptr(&t->d, src), len));
		assert_int_equal(blk_read(&t->d, cases[i].sector, dst, len, &used),
				 VIRTIO_BLK_S_OK);
		assert_int_equal(used, len + 1);
		assert_memory_equal(fake_ptr(&t->d, dst), fake_ptr(&t->d, src), len);
	}
	assert_false(device_failed(&t->d));
}

/* Data in several descriptors, of odd sizes and addresses, the status sharing the last one. */
static void test_multi_descriptor(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t a = fake_alloc(d, 700, 1) + 3, b = fake_alloc(d, 2000, 1) + 1;
	uint64_t c = fake_alloc(d, 4096, 4096), st = fake_alloc(d, 1024, 1);
	uint8_t expect[3072];
	uint32_t used;

	bring_up(t);
	fill_pattern(expect, sizeof(expect), 9);
	memcpy(fake_ptr(d, a), expect, 512);
	memcpy(fake_ptr(d, b), expect + 512, 1536);
	memcpy(fake_ptr(d, c), expect + 2048, 1024);
	struct fake_buf wr[] = {
		{ header(d, VIRTIO_BLK_T_OUT, 100), 16, false },
		{ a, 512, false },
		{ b, 1536, false },
		{ c, 1024, false },
		{ st, 1, true },
	};
	assert_int_equal(submit(d, wr, ARRAY_SIZE(wr), st, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_true(image_equals(t, 100 * 512, expect, sizeof(expect)));

	/* Read back into 100 + 2900 + (71 data + status) bytes: the status is the last byte. */
	memset(fake_ptr(d, a), 0, 700);
	memset(fake_ptr(d, b), 0, 2000);
	memset(fake_ptr(d, st), 0xff, 72);
	struct fake_buf rd[] = {
		{ header(d, VIRTIO_BLK_T_IN, 100), 16, false },
		{ a, 100, true },
		{ b, 2901, true },
		{ st, 72, true },
	};
	assert_int_equal(submit(d, rd, ARRAY_SIZE(rd), st + 71, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 3073);
	assert_memory_equal(fake_ptr(d, a), expect, 100);
	assert_memory_equal(fake_ptr(d, b), expect + 100, 2901);
	assert_memory_equal(fake_ptr(d, st), expect + 3001, 71);
}

/* The 16-byte header in three descriptors (5 + 7 + 4 bytes), the data after it. */
static void test_split_header(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t h = fake_alloc(d, 64, 1), data = fake_alloc(d, 1024, 512), st = status_byte(d);
	struct virtio_blk_outhdr hdr = { .type = VIRTIO_BLK_T_OUT, .sector = 33 };
	uint32_t used;

	bring_up(t);
	memcpy(fake_ptr(d, h), &hdr, 5);
	memcpy(fake_ptr(d, h + 20), (uint8_t *)&hdr + 5, 7);
	memcpy(fake_ptr(d, h + 40), (uint8_t *)&hdr + 12, 4);
	fill_pattern(fake_ptr(d, data), 1024, 4);
	struct fake_buf bufs[] = {
		{ h, 5, false },       { h + 20, 7, false }, { h + 40, 4, false },
		{ data, 1024, false }, { st, 1, true },
	};
	assert_int_equal(submit(d, bufs, ARRAY_SIZE(bufs), st, &used), VIRTIO_BLK_S_OK);
	assert_true(image_equals(t, 33 * 512, fake_ptr(d, data), 1024));
	/* And header + data in one descriptor. */
	uint64_t both = fake_alloc(d, 16 + 512, 16);
	hdr.sector = 40;
	memcpy(fake_ptr(d, both), &hdr, 16);
	fill_pattern(fake_ptr(d, both + 16), 512, 5);
	struct fake_buf one[] = { { both, 16 + 512, false }, { st, 1, true } };
	assert_int_equal(submit(d, one, 2, st, &used), VIRTIO_BLK_S_OK);
	assert_true(image_equals(t, 40 * 512, fake_ptr(d, both + 16), 512));
}

static void test_flush_and_get_id(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t id = fake_alloc(d, 32, 1);
	char expect[VIRTIO_BLK_ID_BYTES] = "SERIAL-123";
	uint32_t used;

	bring_up(t);
	assert_int_equal(request(d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	memset(fake_ptr(d, id), 0xaa, 32);
	assert_int_equal(request(d, VIRTIO_BLK_T_GET_ID, 0, id, 20, true, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(fake_ptr(d, id), expect, 20);
	/* A shorter buffer gets what fits. */
	memset(fake_ptr(d, id), 0xaa, 32);
	assert_int_equal(request(d, VIRTIO_BLK_T_GET_ID, 0, id, 6, true, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 7);
	assert_memory_equal(fake_ptr(d, id), "SERIAL", 6);
	assert_int_equal(*(uint8_t *)fake_ptr(d, id + 6), 0xaa);
}

/* A discard or write-zeroes request with nr segments at segs. */
static unsigned int zero_request(struct fake_driver *d, uint32_t type,
				 const struct virtio_blk_discard_write_zeroes *segs,
				 unsigned int nr, uint32_t bytes)
{
	uint64_t gpa = fake_alloc(d, bytes ? bytes : 1, 8);

	memcpy(fake_ptr(d, gpa), segs, MIN(bytes, nr * sizeof(*segs)));
	return request(d, type, 0, gpa, bytes, false, NULL);
}

static void test_discard_write_zeroes(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	struct virtio_blk_discard_write_zeroes seg[2] = {
		{ .sector = 8, .num_sectors = 8 },
		{ .sector = 100, .num_sectors = 3 },
	};
	uint64_t buf = fake_alloc(d, 4096, 512);

	bring_up(t);
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_DISCARD, seg, 2, sizeof(seg)),
			 VIRTIO_BLK_S_OK);
	assert_true(image_is_zero(t, 8 * 512, 4096));
	assert_true(image_is_zero(t, 100 * 512, 1536));
	assert_false(image_is_zero(t, 103 * 512, 512)); /* the next sector is untouched */
	assert_int_equal(blk_read(d, 8, buf, 4096, NULL), VIRTIO_BLK_S_OK);
	assert_true(memcmp(fake_ptr(d, buf), (uint8_t[4096]){ 0 }, 4096) == 0);

	/* Write zeroes, without and with the unmap flag. */
	seg[0] = (struct virtio_blk_discard_write_zeroes){ .sector = 201, .num_sectors = 5 };
	seg[1] = (struct virtio_blk_discard_write_zeroes){
		.sector = 300, .num_sectors = 9, .flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
	};
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_WRITE_ZEROES, seg, 2, sizeof(seg)),
			 VIRTIO_BLK_S_OK);
	assert_true(image_is_zero(t, 201 * 512, 5 * 512));
	assert_true(image_is_zero(t, 300 * 512, 9 * 512));
	assert_false(image_is_zero(t, 200 * 512, 512));
	assert_false(image_is_zero(t, 206 * 512, 512));
	assert_int_equal(lseek(t->fd, 0, SEEK_END), DISK_SIZE); /* KEEP_SIZE */

	/* §5.2.6.2: unmap on a discard and unknown flags are unsupported. */
	seg[0] = (struct virtio_blk_discard_write_zeroes){ .sector = 0,
							   .num_sectors = 1,
							   .flags = 1 };
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_DISCARD, seg, 1, 16), VIRTIO_BLK_S_UNSUPP);
	seg[0].flags = 2;
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_WRITE_ZEROES, seg, 1, 16),
			 VIRTIO_BLK_S_UNSUPP);
	assert_false(image_is_zero(t, 0, 512));
	/* Out of range, overflowing, a partial segment, none, too many: IOERR, nothing zeroed. */
	seg[0] =
		(struct virtio_blk_discard_write_zeroes){ .sector = SECTORS - 1, .num_sectors = 2 };
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_WRITE_ZEROES, seg, 1, 16),
			 VIRTIO_BLK_S_IOERR);
	assert_false(image_is_zero(t, (SECTORS - 1) * 512, 512));
	seg[0] = (struct virtio_blk_discard_write_zeroes){ .sector = UINT64_MAX, .num_sectors = 2 };
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_DISCARD, seg, 1, 16), VIRTIO_BLK_S_IOERR);
	seg[0] = (struct virtio_blk_discard_write_zeroes){ .sector = 0, .num_sectors = 1 };
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_DISCARD, seg, 1, 15), VIRTIO_BLK_S_IOERR);
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_DISCARD, seg, 0, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_DISCARD, seg, 1, 16 * 4096),
			 VIRTIO_BLK_S_IOERR);
	assert_false(image_is_zero(t, 0, 512));
	assert_false(device_failed(d));
}

static void test_out_of_range(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t buf = fake_alloc(d, 8192, 512);
	static const uint64_t sectors[] = { SECTORS, SECTORS + 1, UINT64_MAX / 512 + 1,
					    UINT64_MAX - 1, UINT64_MAX };
	unsigned int i;

	bring_up(t);
	fill_pattern(fake_ptr(d, buf), 8192, 1);
	for (i = 0; i < ARRAY_SIZE(sectors); i++) {
		assert_int_equal(blk_read(d, sectors[i], buf, 512, NULL), VIRTIO_BLK_S_IOERR);
		assert_int_equal(blk_write(d, sectors[i], buf, 512, NULL), VIRTIO_BLK_S_IOERR);
	}
	/* Straddling the end: nothing is written, not even the part that fits. */
	assert_int_equal(blk_write(d, SECTORS - 1, buf, 1024, NULL), VIRTIO_BLK_S_IOERR);
	assert_false(image_equals(t, DISK_SIZE - 512, fake_ptr(d, buf), 512));
	assert_int_equal(blk_read(d, SECTORS - 15, buf, 8192, NULL), VIRTIO_BLK_S_IOERR);
	/* The end itself with no data is fine. */
	assert_int_equal(blk_read(d, SECTORS, buf, 0, NULL), VIRTIO_BLK_S_OK);
	assert_false(device_failed(d));
}

static void test_bad_lengths(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t buf = fake_alloc(d, 4096, 512), st;
	uint32_t used;

	bring_up(t);
	fill_pattern(fake_ptr(d, buf), 4096, 3);
	assert_int_equal(blk_read(d, 0, buf, 1000, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_read(d, 0, buf, 511, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_write(d, 2, buf, 513, NULL), VIRTIO_BLK_S_IOERR);
	assert_false(image_equals(t, 2 * 512, fake_ptr(d, buf), 512));
	/* Zero-length read: just the status. */
	assert_int_equal(blk_read(d, 5, buf, 0, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	/* A header shorter than 16 bytes. */
	st = status_byte(d);
	struct fake_buf shorthdr[] = { { header(d, VIRTIO_BLK_T_IN, 0), 12, false },
				       { buf, 512, true },
				       { st, 1, true } };
	assert_int_equal(submit(d, shorthdr, 3, st, &used), VIRTIO_BLK_S_IOERR);
	assert_false(device_failed(d));
}

static void test_unsupported(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	static const uint32_t types[] = {
		2, 3, 5, VIRTIO_BLK_T_SECURE_ERASE, 0x80000000, 0xffffffff
	};
	uint64_t buf = fake_alloc(d, 512, 512);
	unsigned int i;

	bring_up(t);
	for (i = 0; i < ARRAY_SIZE(types); i++)
		assert_int_equal(request(d, types[i], 0, buf, 512, true, NULL),
				 VIRTIO_BLK_S_UNSUPP);
	assert_false(device_failed(d));
}

/* No device-writable byte for the status: nothing to answer in, the device needs a reset. */
static void test_missing_status(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t buf = fake_alloc(d, 512, 512);
	struct fake_buf bufs[] = { { header(d, VIRTIO_BLK_T_OUT, 0), 16, false },
				   { buf, 512, false },
				   { buf, 0, true } };

	bring_up(t);
	assert_int_equal(submit(d, bufs, 3, buf, NULL), NO_STATUS);
	assert_true(device_failed(d));
	/* And after a reset it works again. */
	bring_up(t);
	assert_false(device_failed(d));
	assert_int_equal(blk_read(d, 0, buf, 512, NULL), VIRTIO_BLK_S_OK);
	/* Header only. */
	struct fake_buf only[] = { { header(d, VIRTIO_BLK_T_FLUSH, 0), 16, false } };
	assert_int_equal(submit(d, only, 1, buf, NULL), NO_STATUS);
	assert_true(device_failed(d));
}

/* Many requests, one notification: all served, one interrupt. */
static void test_batch(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t st[16], data[16];
	uint32_t id, len;
	unsigned int i;

	bring_up(t);
	fake_irqs(d);
	for (i = 0; i < 16; i++) {
		st[i] = status_byte(d);
		data[i] = fake_alloc(d, 1024, 512);
		struct fake_buf bufs[] = { { header(d, VIRTIO_BLK_T_IN, i * 2), 16, false },
					   { data[i], 1024, true },
					   { st[i], 1, true } };
		fake_add_chain(d, 0, i * 3, bufs, 3);
	}
	fake_kick(d, 0);
	assert_int_equal(fake_irqs(d), 1);
	for (i = 0; i < 16; i++) {
		assert_true(fake_pop_used(d, 0, &id, &len));
		assert_int_equal(id, i * 3);
		assert_int_equal(len, 1025);
		assert_int_equal(*(uint8_t *)fake_ptr(d, st[i]), VIRTIO_BLK_S_OK);
		assert_true(image_equals(t, i * 1024, fake_ptr(d, data[i]), 1024));
	}
	assert_false(fake_pop_used(d, 0, &id, &len));
}

/* The image shrank under us: reading past its new end is an error, not stale bytes. */
static void test_short_read_at_eof(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t buf = fake_alloc(d, 4096, 512);

	bring_up(t);
	assert_int_equal(ftruncate(t->fd, DISK_SIZE - 2048), 0);
	assert_int_equal(blk_read(d, SECTORS - 8, buf, 4096, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_read(d, SECTORS - 8, buf, 2048, NULL), VIRTIO_BLK_S_OK);
}

static void test_readonly(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t buf = fake_alloc(d, 4096, 512);
	struct virtio_blk_discard_write_zeroes seg = { .sector = 0, .num_sectors = 8 };

	bring_up(t);
	fill_pattern(fake_ptr(d, buf), 4096, 7);
	assert_int_equal(blk_write(d, 0, buf, 4096, NULL), VIRTIO_BLK_S_IOERR);
	assert_false(image_equals(t, 0, fake_ptr(d, buf), 512));
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_DISCARD, &seg, 1, 16), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(zero_request(d, VIRTIO_BLK_T_WRITE_ZEROES, &seg, 1, 16),
			 VIRTIO_BLK_S_UNSUPP);
	assert_false(image_is_zero(t, 0, 4096));
	assert_int_equal(blk_read(d, 0, buf, 4096, NULL), VIRTIO_BLK_S_OK);
	assert_true(image_equals(t, 0, fake_ptr(d, buf), 4096));
	assert_int_equal(request(d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
}

/* direct=on: aligned buffers go straight through, unaligned ones through the bounce buffer. */
static void test_direct(void **state)
{
	struct blk_test *t = *state;
	struct fake_driver *d = &t->d;
	uint64_t aligned = fake_alloc(d, MIB(2) + 8192, 4096);
	uint64_t odd = fake_alloc(d, MIB(2) + 8192, 4096) + 3;
	uint32_t len = MIB(1) + 4096 + 1536, used; /* more than one bounce buffer */

	bring_up(t);
	fill_pattern(fake_ptr(d, odd), len, 11);
	assert_int_equal(blk_write(d, 7, odd, len - 2048, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	assert_true(image_equals(t, 7 * 512, fake_ptr(d, odd), len - 2048));
	assert_int_equal(blk_read(d, 7, aligned, len - 2048, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, len - 2048 + 1);
	assert_memory_equal(fake_ptr(d, aligned), fake_ptr(d, odd), len - 2048);
	memset(fake_ptr(d, odd), 0, len);
	assert_int_equal(blk_read(d, 7, odd, len - 2048, &used), VIRTIO_BLK_S_OK);
	assert_int_equal(used, len - 2048 + 1);
	assert_memory_equal(fake_ptr(d, aligned), fake_ptr(d, odd), len - 2048);
	fill_pattern(fake_ptr(d, aligned), 8192, 12);
	assert_int_equal(blk_write(d, 0, aligned, 8192, NULL), VIRTIO_BLK_S_OK);
	assert_true(image_equals(t, 0, fake_ptr(d, aligned), 8192));
	assert_int_equal(request(d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
}

/* What a person sees when the image cannot be used. */
/*
 * An empty hotplug slot (-device virtio-blk-device,id=NAME, no drive): the driver comes up
 * with a writable disk's features and capacity 0, every read or write is IOERR, GET_ID
 * answers, and nothing fails the device.
 */
static void test_empty_slot(void **state)
{
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_BLK };
	struct blk_test t = { .fd = -1 };
	struct virtio_device *dev;
	struct error err = { 0 };
	uint64_t buf, capacity = 1;

	(void)state;
	snprintf(spec.id, sizeof(spec.id), "slot1");
	assert_int_equal(virtio_blk_new(&spec, &dev, &err), 0);
	assert_int_equal(fake_driver_init(&t.d, dev, RAM_SIZE), 0);
	assert_int_equal(offered_features(&t.d) & F_BLK_RW, F_BLK_RW);
	bring_up(&t);
	config_read(&t.d, offsetof(struct virtio_blk_config, capacity), &capacity, 8);
	assert_int_equal(capacity, 0);
	buf = fake_alloc(&t.d, 4096, 512);
	assert_int_equal(blk_read(&t.d, 0, buf, 512, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_write(&t.d, 0, buf, 512, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(&t.d, VIRTIO_BLK_T_GET_ID, 0, buf, 20, true, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(*(uint8_t *)fake_ptr(&t.d, buf), 0); /* no serial until device_add */
	assert_false(device_failed(&t.d));
	fake_driver_destroy(&t.d);
}

static void test_open_errors(void **state)
{
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_BLK, .id = "disk7" };
	struct virtio_device *dev;
	struct error err = { 0 };
	struct blk_test *t;

	(void)state;
	snprintf(spec.path, sizeof(spec.path), "/nonexistent/image.raw");
	assert_int_equal(virtio_blk_new(&spec, &dev, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "disk7: cannot open /nonexistent/image.raw"));
	/* A second writer on the same image. */
	blk_setup((void **)&t, false, false);
	error_clear(&err);
	snprintf(spec.path, sizeof(spec.path), "%s", t->path);
	assert_int_equal(virtio_blk_new(&spec, &dev, &err), -EWOULDBLOCK);
	assert_non_null(strstr(err.msg, "in use by another process"));
	teardown((void **)&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_config, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_read_write_round_trip, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_multi_descriptor, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_split_header, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_flush_and_get_id, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_discard_write_zeroes, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_bad_lengths, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_missing_status, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_short_read_at_eof, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_direct, setup_direct, teardown),
		cmocka_unit_test_setup_teardown(test_read_write_round_trip, setup_direct, teardown),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_empty_slot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
