/*
 * libFuzzer target for virtio-blk (vmm/devices/virtio/blk.c, virtio 1.2 §5.2) behind the
 * virtio-mmio transport, on a 64 KiB temporary image. The input becomes up to 8 requests
 * put on the queue at once and served with one notification: each has a type (the known
 * ones, or any 32-bit value), a sector (any, or folded into the disk), a device-readable
 * part (the 16-byte header and any data or discard segments) and a device-writable part
 * (data and the status byte), each cut into pieces at input-chosen points, so headers and
 * status bytes land split, merged and misplaced. Three disks: writable, read-only, and
 * direct=on (O_DIRECT with unaligned buffers). Checked after every batch:
 *  - no more completions than requests, each with a head we submitted and a used length
 *    no larger than its writable part; status bytes are OK, IOERR or UNSUPP;
 *  - requests complete in order against a shadow image: a read that succeeded returned
 *    the shadow's bytes, a write, discard or write-zeroes that succeeded was in range,
 *    whole sectors and not on the read-only disk, and after the batch the image file is
 *    exactly the shadow (what failed changed nothing);
 *  - the device failed (DEVICE_NEEDS_RESET) only if a request had no writable byte.
 * ASan and UBSan do the rest; FUZZ_BLK_LOG=1 shows the device's log on stderr. Input:
 * [0] flags (bits 0-1 disk, bit 2 EVENT_IDX), then per request: kind u8, sector u64,
 * shape u8, length u16, then the data fill byte or segments, and cut points.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "../unit/virtio_fake_driver.h"
#include "log.h"
#include "vm.h"

#define RAM_SIZE     KIB(256)
#define DISK_SIZE    KIB(64)
#define SECTORS	     (DISK_SIZE / 512)
#define QSIZE	     128
#define DATA_GPA     (FAKE_RAM_GPA + KIB(8))
#define MAX_REQUESTS 8
#define MAX_PIECES   4

struct cursor {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct cursor *c, unsigned int bytes)
{
	uint64_t v = 0;

	bytes = MIN(bytes, (unsigned int)c->left);
	memcpy(&v, c->p, bytes);
	c->p += bytes;
	c->left -= bytes;
	return v;
}

struct disk {
	struct fake_driver d;
	char path[64];
	int fd;
	bool readonly;
	uint8_t shadow[DISK_SIZE]; /* what the image must hold */
};

struct fuzz_request {
	uint32_t type;
	uint64_t sector;
	uint16_t head;
	uint64_t out_gpa, in_gpa; /* the readable and writable parts, contiguous in RAM */
	uint32_t out_len, in_len;
};

static uint64_t next_gpa;
static uint16_t next_desc;

static uint64_t alloc(uint32_t len)
{
	uint64_t gpa = next_gpa;

	next_gpa += ALIGN_UP(len + 1, 8) + 3; /* odd addresses: the bounce path */
	return gpa;
}

/* Cut [gpa, gpa + len) into n pieces at input-chosen points. */
static unsigned int cut(struct cursor *c, uint64_t gpa, uint32_t len, unsigned int n, bool writable,
			struct fake_buf *bufs)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint32_t piece = i + 1 == n ? len : (uint32_t)(take(c, 2) % (len + 1));

		bufs[i] = (struct fake_buf){ gpa, piece, writable };
		gpa += piece;
		len -= piece;
	}
	return n;
}

static const uint32_t kinds[] = { VIRTIO_BLK_T_IN,	VIRTIO_BLK_T_OUT,
				  VIRTIO_BLK_T_FLUSH,	VIRTIO_BLK_T_GET_ID,
				  VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
				  VIRTIO_BLK_T_IN,	VIRTIO_BLK_T_OUT };

/* The readable part: header, then data or discard segments. */
static void fill_out(struct cursor *c, struct fake_driver *d, struct fuzz_request *r, uint8_t shape)
{
	struct virtio_blk_outhdr h = { .type = r->type, .sector = r->sector };
	uint8_t *extra = (uint8_t *)fake_ptr(d, r->out_gpa) + sizeof(h);
	uint32_t i, extra_len = r->out_len - MIN(r->out_len, 16);

	memcpy(fake_ptr(d, r->out_gpa), &h, sizeof(h)); /* odd addresses: no struct stores */
	if (r->type != VIRTIO_BLK_T_DISCARD && r->type != VIRTIO_BLK_T_WRITE_ZEROES) {
		memset(extra, (uint8_t)take(c, 1), extra_len);
		return;
	}
	for (i = 0; i + 16 <= extra_len; i += 16) {
		struct virtio_blk_discard_write_zeroes seg = {
			.sector = take(c, 8),
			.num_sectors = (uint32_t)take(c, 1),
			.flags = (uint32_t)take(c, 1) % 4,
		};

		if (shape & 0x10)
			seg.sector %= SECTORS + 2;
		memcpy(extra + i, &seg, sizeof(seg));
	}
}

/* One request from the input onto the ring (not yet notified); false if out of room. */
static bool add_request(struct cursor *c, struct disk *k, struct fuzz_request *r)
{
	uint8_t kind = take(c, 1), shape;
	uint32_t len;
	struct fake_buf bufs[2 * MAX_PIECES];
	unsigned int n_out, n_in, n;
	bool readable_data;

	r->type = kind & 0x80 ? (uint32_t)take(c, 4) : kinds[kind & 7];
	r->sector = take(c, 8);
	shape = take(c, 1);
	len = take(c, 2) % (KIB(8) + 1);
	if (shape & 0x10)
		r->sector %= SECTORS + 2;
	if (!(shape & 0x20))
		len = ALIGN_DOWN(len, r->type >= VIRTIO_BLK_T_DISCARD ? 16 : 512);
	readable_data = r->type == VIRTIO_BLK_T_OUT || r->type == VIRTIO_BLK_T_DISCARD ||
			r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	r->out_len = 16 + (readable_data ? len : 0);
	if (shape & 0x40)
		r->out_len -= (shape & 7) + 1; /* a short header */
	r->in_len = (readable_data ? 0 : len) + 1;
	if ((shape & 0x8c) == 0x80)
		r->in_len = 0; /* no status byte: the device must fail */
	n_out = 1 + (shape & 3);
	n_in = r->in_len ? 1 + ((shape >> 2) & 3) : 0;
	if (next_desc + n_out + n_in > QSIZE ||
	    next_gpa + r->out_len + r->in_len + 64 > FAKE_RAM_GPA + RAM_SIZE)
		return false;
	r->out_gpa = alloc(r->out_len + 16);
	r->in_gpa = alloc(r->in_len);
	fill_out(c, &k->d, r, shape);
	memset(fake_ptr(&k->d, r->in_gpa), 0xee, r->in_len);
	n = cut(c, r->out_gpa, r->out_len, n_out, false, bufs);
	n += cut(c, r->in_gpa, r->in_len, n_in, true, bufs + n);
	r->head = next_desc;
	fake_add_chain(&k->d, 0, next_desc, bufs, n);
	next_desc += n;
	return true;
}

/* Discard and write-zeroes that succeeded zeroed their segments (all checked first). */
static void shadow_zero(struct disk *k, const struct fuzz_request *r)
{
	struct virtio_blk_discard_write_zeroes seg;
	uint32_t off;

	for (off = 16; off + sizeof(seg) <= r->out_len; off += sizeof(seg)) {
		memcpy(&seg, fake_ptr(&k->d, r->out_gpa + off), sizeof(seg));
		if (seg.sector > SECTORS || seg.num_sectors > SECTORS - seg.sector)
			abort();
		memset(k->shadow + seg.sector * 512, 0, seg.num_sectors * 512);
	}
}

/*
 * What a completed request must satisfy (see the top of the file); requests complete in
 * order, so the shadow image is what the disk holds when this one ran.
 */
static void check_request(struct disk *k, const struct fuzz_request *r, uint32_t used)
{
	bool rw = r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT;
	uint32_t data;
	uint8_t status;

	if (r->in_len == 0)
		abort(); /* completed without a status byte */
	status = *(uint8_t *)fake_ptr(&k->d, r->in_gpa + r->in_len - 1);
	if (used > r->in_len || status > VIRTIO_BLK_S_UNSUPP)
		abort();
	if (status != VIRTIO_BLK_S_OK)
		return;
	if (r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		if (k->readonly)
			abort();
		shadow_zero(k, r);
	}
	if (!rw)
		return;
	data = r->type == VIRTIO_BLK_T_OUT ? r->out_len - MIN(r->out_len, 16) : r->in_len - 1;
	if (r->out_len < 16 || data % 512 || r->sector > SECTORS ||
	    data / 512 > SECTORS - r->sector)
		abort();
	if (r->type == VIRTIO_BLK_T_OUT) {
		if (k->readonly)
			abort();
		memcpy(k->shadow + r->sector * 512, fake_ptr(&k->d, r->out_gpa + 16), data);
	} else if (used != data + 1 ||
		   memcmp(k->shadow + r->sector * 512, fake_ptr(&k->d, r->in_gpa), data)) {
		abort();
	}
}

/* After a batch the image is the shadow: writes landed, failed requests changed nothing. */
static void check_image(struct disk *k)
{
	static uint8_t tmp[DISK_SIZE];

	if (pread(k->fd, tmp, sizeof(tmp), 0) != sizeof(tmp) || memcmp(tmp, k->shadow, sizeof(tmp)))
		abort();
}

static void run_batch(struct cursor *c, struct disk *k, uint64_t features)
{
	struct fuzz_request reqs[MAX_REQUESTS];
	unsigned int nr = 0, done = 0, i;
	bool unanswerable = false;
	uint32_t id, len;

	/* Fixed ring addresses below DATA_GPA, fresh rings for every input. */
	memset(k->d.ram, 0, DATA_GPA - FAKE_RAM_GPA);
	fake_negotiate(&k->d, features);
	fake_program_queue(&k->d, 0, QSIZE, FAKE_RAM_GPA, FAKE_RAM_GPA + KIB(2),
			   FAKE_RAM_GPA + KIB(4));
	next_desc = 0;
	next_gpa = DATA_GPA;
	while (nr < MAX_REQUESTS && c->left && add_request(c, k, &reqs[nr]))
		unanswerable |= reqs[nr++].in_len == 0;
	fake_driver_ok(&k->d);
	fake_kick(&k->d, 0);
	while (fake_pop_used(&k->d, 0, &id, &len)) {
		for (i = 0; i < nr && reqs[i].head != id; i++)
			;
		if (i == nr || ++done > nr)
			abort();
		check_request(k, &reqs[i], len);
	}
	if ((fake_read(&k->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET) && !unanswerable)
		abort();
	check_image(k);
}

/* A 64 KiB image, on tmpfs where it can be (fdatasync costs nothing there). */
static void disk_open(struct disk *k, bool readonly, bool direct)
{
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_BLK,
					 .readonly = readonly,
					 .direct = direct,
					 .id = "fuzz-blk",
					 .serial = "fuzz" };
	static const char *const dirs[] = { "/dev/shm", "/tmp" };
	struct virtio_device *dev = NULL;
	unsigned int i;

	memset(k->shadow, 0x5a, sizeof(k->shadow));
	k->readonly = readonly;
	for (i = 0; i < ARRAY_SIZE(dirs) && !dev; i++) {
		snprintf(k->path, sizeof(k->path), "%s/stratus-fuzz-blk.XXXXXX", dirs[i]);
		k->fd = mkstemp(k->path);
		if (k->fd < 0)
			continue;
		unlink(k->path); /* the open descriptors keep it */
		if (pwrite(k->fd, k->shadow, DISK_SIZE, 0) != DISK_SIZE)
			abort();
		snprintf(spec.path, sizeof(spec.path), "/proc/self/fd/%d", k->fd);
		if (virtio_blk_new(&spec, &dev, NULL) < 0) {
			close(k->fd); /* no O_DIRECT on tmpfs before Linux 6.6 */
			dev = NULL;
		}
	}
	if (!dev || fake_driver_init(&k->d, dev, RAM_SIZE) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct disk disks[3];
	static bool ready;
	struct cursor c = { data, size };
	uint64_t features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	uint8_t flags;

	if (size < 2)
		return 0;
	if (!ready) {
		if (getenv("FUZZ_BLK_LOG"))
			log_init(2, LOG_DEBUG);
		else /* logs of failed requests would drown the fuzzer's output */
			log_init(open("/dev/null", O_WRONLY | O_CLOEXEC), LOG_ERROR);
		disk_open(&disks[0], false, false);
		disk_open(&disks[1], true, false);
		disk_open(&disks[2], false, true);
		ready = true;
	}
	flags = take(&c, 1);
	if (flags & 4)
		features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	run_batch(&c, &disks[(flags & 3) % 3], features);
	return 0;
}
