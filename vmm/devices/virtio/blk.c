/*
 * virtio-blk, the block device (virtio 1.2 §5.2): device ID 2, one request queue, a raw
 * image file on the host. The guest sees /dev/vda, /dev/vdb, ... in -device order.
 *
 * A request (§5.2.6) is one descriptor chain: the 16-byte header (type, reserved, sector)
 * in the device-readable part, then data (readable for writes, writable for reads), and
 * the status byte as the last device-writable byte. Reads and writes go between the image
 * and the guest's buffers with one preadv/pwritev, no copy; only with direct=on (O_DIRECT)
 * and guest buffers that are not aligned for it do we bounce through an aligned buffer.
 * Features (§5.2.3): SEG_MAX, SIZE_MAX, BLK_SIZE (512), FLUSH (fdatasync), and unless
 * read-only DISCARD (a punched hole) and WRITE_ZEROES (§5.2.6.2: zeroed range, deallocated
 * when the driver allows it); RO for readonly=on. Configuration layout: §5.2.4.
 *
 * Everything in a request is hostile: the header is copied out once before it is checked,
 * every sector range is checked against the capacity without overflow, lengths must be
 * whole sectors, and discard/write-zeroes segments are bounded in number and size. A bad
 * request gets VIRTIO_BLK_S_IOERR or _UNSUPP (§5.2.6.1); only a chain with no writable byte
 * for the status cannot be answered, and fails the device (DEVICE_NEEDS_RESET, §2.1.2).
 * One notification serves at most a queue's worth of requests or BLK_MAX_PER_ROUND bytes
 * before yielding the event loop and coming back for the rest (docs/vmm.md: why the queue
 * runs on the main loop rather than an I/O thread).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <endian.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>

#include "../../device.h"
#include "../../hotplug.h"
#include "../../log.h"
#include "../../snapshot.h"
#include "../../vm.h"
#include "mmio.h"
#include "virtio.h"

#define BLK_SECTOR		512
#define BLK_SECTOR_SHIFT	9
#define BLK_QUEUE_SIZE		256
#define BLK_SEG_MAX		(BLK_QUEUE_SIZE - 2) /* a chain also holds header and status */
#define BLK_SIZE_MAX		MIB(1)		     /* advice to the driver, not a limit */
#define BLK_DISCARD_SEG_MAX	64
#define BLK_DISCARD_SECTORS_MAX (GIB(1) >> BLK_SECTOR_SHIFT)
#define BLK_DISCARD_ALIGNMENT	8 /* sectors: 4 KiB, the host file system's block */
#define BLK_MAX_PER_ROUND	MIB(32)
#define BLK_BOUNCE_SIZE		MIB(1)
#define BLK_ZEROES_SIZE		KIB(64)
#define BLK_HEADER_SIZE		sizeof(struct virtio_blk_outhdr)
/* §5.2.4: the fields up to write_zeroes_may_unmap and its padding (no SECURE_ERASE). */
#define BLK_CONFIG_SIZE offsetof(struct virtio_blk_config, max_secure_erase_sectors)

struct virtio_blk {
	struct virtio_device dev;
	char name[VM_DEVICE_ID_MAX + 16];
	int fd;
	bool readonly, direct;
	uint32_t mem_align; /* direct=on: what O_DIRECT asks of buffer addresses */
	uint64_t capacity;  /* in sectors */
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config config; /* little-endian, as the driver reads it */
	uint8_t *bounce;		 /* direct=on, unaligned guest buffers; allocated lazily */
	struct iovec iov[BLK_QUEUE_SIZE];
	struct iovec data[BLK_QUEUE_SIZE]; /* the data part of the current request */
	uint64_t requests, bytes_read, bytes_written, errors;
	/* Hotplug (QMP device_add into a slot made without a drive): who is attached now. */
	bool slot;			 /* made without a drive: device_add may fill it */
	bool fd_borrowed;		 /* fd is a blockdev-add node's: not ours to close */
	char hot_id[VM_DEVICE_ID_MAX];	 /* device_add's id, "" while empty */
	char hot_node[VM_DEVICE_ID_MAX]; /* blockdev-add's node-name */
};

/* The request being served: the header as copied out, where its data lies. */
struct blk_request {
	const struct virtq_chain *chain;
	uint32_t type;
	uint64_t sector;
	uint64_t data_len; /* the data part: readable for writes, writable (minus status) reads */
	uint32_t written;  /* bytes written into the guest's buffers, the status byte excluded */
	unsigned int nr_data; /* blk->data entries in use */
};

/*
 * The iovecs covering [skip, skip + len) of src[0 .. nr) into dst (room for nr); returns
 * how many. The caller made sure the range lies inside src.
 */
static unsigned int blk_iov_slice(const struct iovec *src, unsigned int nr, uint64_t skip,
				  uint64_t len, struct iovec *dst)
{
	unsigned int i, n = 0;

	for (i = 0; i < nr && len; i++) {
		uint64_t take;

		if (skip >= src[i].iov_len) {
			skip -= src[i].iov_len;
			continue;
		}
		take = MIN(src[i].iov_len - skip, len);
		dst[n].iov_base = (uint8_t *)src[i].iov_base + skip;
		dst[n++].iov_len = take;
		len -= take;
		skip = 0;
	}
	return n;
}

/*
 * preadv/pwritev of len bytes at off until done: the kernel may transfer less than asked
 * (at most 2 GiB a call, signals). Returns the bytes transferred, the end of the image
 * on a read being an error (-EIO): a short read never hands the guest stale bytes as data.
 */
static int64_t blk_rw(int fd, struct iovec *iov, unsigned int nr, uint64_t off, uint64_t len,
		      bool write, int *error)
{
	uint64_t done = 0;

	*error = 0;
	while (done < len && nr) {
		unsigned int batch = MIN(nr, (unsigned int)IOV_MAX);
		ssize_t n = write ? pwritev(fd, iov, batch, off + done)
				  : preadv(fd, iov, batch, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error = n < 0 ? -errno : -EIO;
			break;
		}
		done += n;
		iov = iov_advance(iov, &nr, n);
	}
	return done;
}

static bool blk_iov_aligned(const struct iovec *iov, unsigned int nr, uint32_t mem_align)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		if ((uintptr_t)iov[i].iov_base % mem_align || iov[i].iov_len % BLK_SECTOR)
			return false;
	return true;
}

/* Between guest buffers and the bounce buffer, in the direction of the transfer. */
static void blk_bounce_copy(const struct iovec *iov, unsigned int nr, uint8_t *bounce,
			    bool to_bounce)
{
	unsigned int i;

	for (i = 0; i < nr; bounce += iov[i++].iov_len)
		if (to_bounce)
			memcpy(bounce, iov[i].iov_base, iov[i].iov_len);
		else
			memcpy(iov[i].iov_base, bounce, iov[i].iov_len);
}

/* direct=on with guest buffers O_DIRECT cannot take: through the bounce buffer. */
static int blk_rw_bounce(struct virtio_blk *blk, struct blk_request *req, uint64_t off, bool write)
{
	const struct iovec bounce_iov = { .iov_base = blk->bounce, .iov_len = BLK_BOUNCE_SIZE };
	uint64_t done = 0;
	int error = 0;

	while (done < req->data_len) {
		struct iovec iov = bounce_iov;
		uint64_t len = MIN(req->data_len - done, BLK_BOUNCE_SIZE);
		struct iovec part[BLK_QUEUE_SIZE];
		unsigned int nr = blk_iov_slice(blk->data, req->nr_data, done, len, part);

		iov.iov_len = len;
		if (write)
			blk_bounce_copy(part, nr, blk->bounce, true);
		if ((uint64_t)blk_rw(blk->fd, &iov, 1, off + done, len, write, &error) != len)
			return error ? error : -EIO;
		if (!write) {
			blk_bounce_copy(part, nr, blk->bounce, false);
			req->written += len;
		}
		done += len;
	}
	return 0;
}

/* Is [sector, sector + len bytes) inside the disk? len is a multiple of 512. */
static bool blk_range_ok(const struct virtio_blk *blk, uint64_t sector, uint64_t len)
{
	return sector <= blk->capacity && (len >> BLK_SECTOR_SHIFT) <= blk->capacity - sector;
}

/* VIRTIO_BLK_T_IN and _OUT: straight between the image and the guest's buffers. */
static uint8_t blk_read_write(struct virtio_blk *blk, struct blk_request *req)
{
	const struct virtq_chain *c = req->chain;
	bool write = req->type == VIRTIO_BLK_T_OUT;
	uint64_t off = req->sector << BLK_SECTOR_SHIFT;
	int64_t done;
	int error;

	if (write && blk->readonly)
		return VIRTIO_BLK_S_IOERR; /* §5.2.6.2, and nothing is written */
	if (req->data_len % BLK_SECTOR || !blk_range_ok(blk, req->sector, req->data_len))
		return VIRTIO_BLK_S_IOERR;
	if (write)
		req->nr_data =
			blk_iov_slice(c->out, c->nr_out, BLK_HEADER_SIZE, req->data_len, blk->data);
	else
		req->nr_data = blk_iov_slice(c->in, c->nr_in, 0, req->data_len, blk->data);
	if (!req->data_len)
		return VIRTIO_BLK_S_OK;
	if (blk->direct && !blk_iov_aligned(blk->data, req->nr_data, blk->mem_align)) {
		if (!blk->bounce &&
		    posix_memalign((void **)&blk->bounce, 4096, BLK_BOUNCE_SIZE) != 0) {
			blk->bounce = NULL;
			return VIRTIO_BLK_S_IOERR;
		}
		error = blk_rw_bounce(blk, req, off, write);
	} else {
		done = blk_rw(blk->fd, blk->data, req->nr_data, off, req->data_len, write, &error);
		if (!write)
			req->written = done;
	}
	if (error) {
		log_once(LOG_WARN, "%s: %s at sector %llu: %s", blk->dev.name,
			 write ? "write" : "read", (unsigned long long)req->sector,
			 strerror(-error));
		return VIRTIO_BLK_S_IOERR;
	}
	if (write)
		blk->bytes_written += req->data_len;
	else
		blk->bytes_read += req->data_len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_flush(struct virtio_blk *blk)
{
	if (blk->readonly)
		return VIRTIO_BLK_S_OK; /* nothing of ours to make stable */
	if (fdatasync(blk->fd) < 0) {
		log_once(LOG_WARN, "%s: fdatasync: %s", blk->dev.name, strerror(errno));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* VIRTIO_BLK_T_GET_ID: up to 20 bytes of serial, zero-padded, no NUL required (§5.2.6). */
static uint8_t blk_get_id(struct virtio_blk *blk, struct blk_request *req)
{
	uint64_t len = MIN(req->data_len, (uint64_t)VIRTIO_BLK_ID_BYTES);

	req->written = virtq_chain_write(req->chain, 0, blk->serial, len);
	return VIRTIO_BLK_S_OK;
}

static int blk_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	int r;

	do
		r = fallocate(fd, mode, off, len);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* Zeros the slow way, for files whose file system has neither ZERO_RANGE nor holes. */
static int blk_write_zeroes_slow(struct virtio_blk *blk, uint64_t off, uint64_t len)
{
	static uint8_t *zeroes; /* aligned for O_DIRECT; shared by every disk, never freed */
	int error = 0;

	if (!zeroes && posix_memalign((void **)&zeroes, 4096, BLK_ZEROES_SIZE) != 0)
		return -ENOMEM;
	memset(zeroes, 0, BLK_ZEROES_SIZE);
	while (len) {
		struct iovec iov = { .iov_base = zeroes, .iov_len = MIN(len, BLK_ZEROES_SIZE) };

		if ((uint64_t)blk_rw(blk->fd, &iov, 1, off, iov.iov_len, true, &error) !=
		    iov.iov_len)
			return error ? error : -EIO;
		off += iov.iov_len;
		len -= iov.iov_len;
	}
	return 0;
}

/* One discard or write-zeroes segment, already checked. */
static int blk_zero_range(struct virtio_blk *blk, uint32_t type, uint32_t flags, uint64_t off,
			  uint64_t len)
{
	const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	int r;

	if (type == VIRTIO_BLK_T_DISCARD) {
		r = blk_fallocate(blk->fd, punch, off, len);
		/* A discard is a hint (§5.2.6.2: the device MAY deallocate). */
		return r == -EOPNOTSUPP ? 0 : r;
	}
	/* Reads of the range return zeros afterwards, whichever way we get there. */
	r = blk_fallocate(blk->fd,
			  flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP ? punch : FALLOC_FL_ZERO_RANGE,
			  off, len);
	if (r == -EOPNOTSUPP)
		r = blk_fallocate(blk->fd, punch, off, len);
	if (r == -EOPNOTSUPP)
		r = blk_write_zeroes_slow(blk, off, len);
	return r;
}

/* VIRTIO_BLK_T_DISCARD and _WRITE_ZEROES: a list of segments in the readable data. */
static uint8_t blk_discard_write_zeroes(struct virtio_blk *blk, struct blk_request *req)
{
	struct virtio_blk_discard_write_zeroes seg[BLK_DISCARD_SEG_MAX];
	uint32_t known_flags =
		req->type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
	uint64_t nr = req->data_len / sizeof(seg[0]), i;

	if (req->data_len % sizeof(seg[0]) || nr == 0 || nr > BLK_DISCARD_SEG_MAX)
		return VIRTIO_BLK_S_IOERR;
	/* One copy: the guest cannot change a segment between its check and its use. */
	virtq_chain_read(req->chain, BLK_HEADER_SIZE, seg, nr * sizeof(seg[0]));
	for (i = 0; i < nr; i++) {
		uint64_t sector = le64toh(seg[i].sector);
		uint32_t sectors = le32toh(seg[i].num_sectors);

		if (le32toh(seg[i].flags) & ~known_flags)
			return VIRTIO_BLK_S_UNSUPP; /* §5.2.6.2: unknown flags, unmap on discard */
		if (sectors > BLK_DISCARD_SECTORS_MAX ||
		    !blk_range_ok(blk, sector, (uint64_t)sectors << BLK_SECTOR_SHIFT))
			return VIRTIO_BLK_S_IOERR;
	}
	for (i = 0; i < nr; i++) {
		uint64_t off = le64toh(seg[i].sector) << BLK_SECTOR_SHIFT;
		uint64_t len = (uint64_t)le32toh(seg[i].num_sectors) << BLK_SECTOR_SHIFT;
		int r = len ? blk_zero_range(blk, req->type, le32toh(seg[i].flags), off, len) : 0;

		if (r < 0) {
			log_once(LOG_WARN, "%s: zeroing sectors at %llu: %s", blk->dev.name,
				 (unsigned long long)(off >> BLK_SECTOR_SHIFT), strerror(-r));
			return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_execute(struct virtio_blk *blk, struct blk_request *req)
{
	bool writable = !blk->readonly;

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return blk_read_write(blk, req);
	case VIRTIO_BLK_T_FLUSH:
		return blk_flush(blk);
	case VIRTIO_BLK_T_GET_ID:
		return blk_get_id(blk, req);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		/* Offered only on writable disks; otherwise this type is not ours. */
		return writable ? blk_discard_write_zeroes(blk, req) : VIRTIO_BLK_S_UNSUPP;
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/*
 * One chain: returns the used length (data written plus the status byte), or -EBADMSG if
 * the chain has no writable byte for the status.
 */
static int64_t blk_request(struct virtio_blk *blk, const struct virtq_chain *chain)
{
	struct virtio_blk_outhdr hdr;
	struct blk_request req = { .chain = chain };
	const struct iovec *last;
	uint8_t status;

	if (chain->in_len == 0)
		return -EBADMSG;
	last = &chain->in[chain->nr_in - 1]; /* iovecs are never empty */
	if (chain->out_len < sizeof(hdr)) {
		status = VIRTIO_BLK_S_IOERR;
	} else {
		virtq_chain_read(chain, 0, &hdr, sizeof(hdr)); /* read once, then trust the copy */
		req.type = le32toh(hdr.type);
		req.sector = le64toh(hdr.sector);
		/* Data: what follows the header when the device reads, else before the status. */
		if (req.type == VIRTIO_BLK_T_OUT || req.type == VIRTIO_BLK_T_DISCARD ||
		    req.type == VIRTIO_BLK_T_WRITE_ZEROES)
			req.data_len = chain->out_len - sizeof(hdr);
		else
			req.data_len = chain->in_len - 1;
		status = blk_execute(blk, &req);
	}
	if (status != VIRTIO_BLK_S_OK)
		blk->errors++;
	((uint8_t *)last->iov_base)[last->iov_len - 1] = status;
	return (int64_t)req.written + 1;
}

static void blk_queue_notify(struct virtio_device *dev, unsigned int q)
{
	struct virtio_blk *blk = container_of(dev, struct virtio_blk, dev);
	struct virtq *vq = &dev->queues[q];
	struct virtq_chain chain;
	unsigned int chains = 0;
	uint64_t bytes = 0;
	bool bad = false;

	virtq_chain_init(&chain, blk->iov, ARRAY_SIZE(blk->iov));
	while (chains < vq->size && bytes < BLK_MAX_PER_ROUND && virtq_pop_chain(vq, &chain) > 0) {
		int64_t len = blk_request(blk, &chain);

		if (len < 0) {
			bad = true;
			break;
		}
		virtq_push_used(vq, chain.head, (uint32_t)len);
		bytes += chain.out_len + chain.in_len;
		chains++;
	}
	blk->requests += chains;
	virtio_device_notify_used(dev, q);
	if (bad) {
		virtio_device_fail(dev, "request %u has no writable status byte", chain.head);
		return;
	}
	/* A bad chain stops the loop too; the transport sees vq->broken and fails the device. */
	if (!vq->broken && (chains >= vq->size || bytes >= BLK_MAX_PER_ROUND))
		virtio_device_queue_kick(dev, q); /* more may be waiting: after other events */
}

static void blk_config_read(struct virtio_device *dev, uint32_t offset, void *data, uint32_t len)
{
	struct virtio_blk *blk = container_of(dev, struct virtio_blk, dev);

	memcpy(data, (const uint8_t *)&blk->config + offset, len);
}

static void blk_destroy(struct virtio_device *dev)
{
	struct virtio_blk *blk = container_of(dev, struct virtio_blk, dev);

	log_debug("%s: served %llu requests (%llu failed), read %llu bytes, wrote %llu bytes",
		  dev->name, (unsigned long long)blk->requests, (unsigned long long)blk->errors,
		  (unsigned long long)blk->bytes_read, (unsigned long long)blk->bytes_written);
	if (blk->fd >= 0 && !blk->fd_borrowed)
		close(blk->fd);
	free(blk->bounce);
	free(blk);
}

static const struct virtio_device_ops blk_ops = {
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
	.destroy = blk_destroy,
};

/*
 * direct=on: O_DIRECT needs file offsets and lengths aligned to the logical block size
 * (we can only promise 512) and buffer addresses aligned to the device's DMA alignment
 * (guest buffers that are not go through the bounce buffer).
 */
static int blk_direct_alignment(struct virtio_blk *blk, const char *path, struct error *err)
{
	uint32_t offset_align = BLK_SECTOR;
	struct statx stx;
	int size;

	blk->mem_align = BLK_SECTOR;
	if (statx(blk->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN | STATX_TYPE, &stx) == 0) {
		if (stx.stx_mask & STATX_DIOALIGN) {
			if (!stx.stx_dio_offset_align)
				return error_set(err, -EINVAL,
						 "%s: direct=on: %s does not support O_DIRECT",
						 blk->dev.name, path);
			offset_align = stx.stx_dio_offset_align;
			blk->mem_align = MAX(stx.stx_dio_mem_align, 1u);
		} else if (S_ISBLK(stx.stx_mode) && ioctl(blk->fd, BLKSSZGET, &size) == 0) {
			offset_align = size;
		}
	}
	if (offset_align > BLK_SECTOR)
		return error_set(err, -EINVAL,
				 "%s: direct=on: %s needs %u-byte aligned I/O, the disk has "
				 "512-byte sectors (use direct=off)",
				 blk->dev.name, path, offset_align);
	return 0;
}

/* Open and lock the image, find its size. */
static int blk_open(struct virtio_blk *blk, const struct vm_device_config *spec, struct error *err)
{
	int flags =
		(spec->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (spec->direct ? O_DIRECT : 0);
	off_t size;

	blk->fd = open(spec->path, flags);
	if (blk->fd < 0)
		return error_set_errno(err, -errno, "%s: cannot open %s%s", blk->dev.name,
				       spec->path, spec->direct ? " with O_DIRECT" : "");
	/* Two writers on one image corrupt it: refuse, as QEMU does (shared for readers). */
	if (flock(blk->fd, (spec->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
		return error_set_errno(err, -errno, "%s: %s is in use by another process",
				       blk->dev.name, spec->path);
	size = lseek(blk->fd, 0, SEEK_END);
	if (size < 0)
		return error_set_errno(err, -errno, "%s: size of %s", blk->dev.name, spec->path);
	if (size % BLK_SECTOR)
		log_warn("%s: %s is not a whole number of 512-byte sectors: the last %lld bytes "
			 "are not used",
			 blk->dev.name, spec->path, (long long)(size % BLK_SECTOR));
	blk->capacity = (uint64_t)size >> BLK_SECTOR_SHIFT;
	return spec->direct ? blk_direct_alignment(blk, spec->path, err) : 0;
}

static void blk_fill_config(struct virtio_blk *blk)
{
	struct virtio_blk_config *c = &blk->config;
	uint64_t f = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_SIZE_MAX) |
		     (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH);

	c->capacity = htole64(blk->capacity);
	c->size_max = htole32(BLK_SIZE_MAX);
	c->seg_max = htole32(BLK_SEG_MAX);
	c->blk_size = htole32(BLK_SECTOR);
	if (blk->readonly) {
		f |= 1ULL << VIRTIO_BLK_F_RO;
	} else {
		f |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
		c->max_discard_sectors = htole32(BLK_DISCARD_SECTORS_MAX);
		c->max_discard_seg = htole32(BLK_DISCARD_SEG_MAX);
		c->discard_sector_alignment = htole32(BLK_DISCARD_ALIGNMENT);
		c->max_write_zeroes_sectors = htole32(BLK_DISCARD_SECTORS_MAX);
		c->max_write_zeroes_seg = htole32(BLK_DISCARD_SEG_MAX);
		c->write_zeroes_may_unmap = 1; /* with the unmap flag we punch a hole */
	}
	blk->dev.features = f;
}

int virtio_blk_new(const struct vm_device_config *spec, struct virtio_device **out,
		   struct error *err)
{
	struct virtio_blk *blk = calloc(1, sizeof(*blk));
	int r;

	if (!blk)
		return error_set(err, -ENOMEM, "virtio-blk: out of memory");
	blk->fd = -1;
	snprintf(blk->name, sizeof(blk->name), "%s", spec->id[0] ? spec->id : "virtio-blk");
	blk->dev.name = blk->name;
	blk->readonly = spec->readonly;
	blk->direct = spec->direct;
	memcpy(blk->serial, spec->serial, strnlen(spec->serial, VIRTIO_BLK_ID_BYTES));
	/* No image: an empty hotplug slot, capacity 0 until device_add (blk_hotplug.c). */
	blk->slot = !spec->path[0];
	r = blk->slot ? 0 : blk_open(blk, spec, err);
	if (r < 0) {
		blk_destroy(&blk->dev);
		return r;
	}
	blk_fill_config(blk);
	blk->dev.device_id = VIRTIO_ID_BLOCK;
	blk->dev.config_size = BLK_CONFIG_SIZE;
	blk->dev.nr_queues = 1;
	blk->dev.queue_max_size[0] = BLK_QUEUE_SIZE;
	blk->dev.ops = &blk_ops;
	*out = &blk->dev;
	return 0;
}

static int blk_create(struct vm *vm, const struct vm_device_config *spec,
		      struct virtio_device **out, struct error *err)
{
	(void)vm;
	return virtio_blk_new(spec, out, err);
}

/*
 * Hotplug, as StratoVirt's microvm does it: virtio-mmio has no hotplug, so the slots exist
 * from boot (-device virtio-blk-device,id=NAME without a drive: capacity 0) and QMP
 * device_add gives one an image, device_del takes it away; each time the guest gets a
 * configuration change interrupt (virtio 1.2 §4.2.2.1 InterruptStatus bit 1) and re-reads
 * the capacity (§5.2.4). Slot i is the i-th virtio-blk device on the command line (the
 * "addr" Kata sends). Both run on the main loop, where the queue is served, so no request is
 * in flight; the device lock keeps a vCPU's config read consistent.
 */
static const struct device_ops blk_device;

struct blk_vm {
	struct virtio_blk *disks[VM_MAX_DEVICES]; /* command-line order */
	unsigned int nr;
};

static int blk_attached(struct vm *vm, struct virtio_device *dev, struct error *err)
{
	struct blk_vm *state = device_get_data(vm, &blk_device);

	if (!state) {
		state = calloc(1, sizeof(*state));
		if (!state || device_set_data(vm, &blk_device, state) < 0) {
			free(state);
			return error_set(err, -ENOMEM, "virtio-blk: out of memory");
		}
	}
	if (state->nr < VM_MAX_DEVICES)
		state->disks[state->nr++] = container_of(dev, struct virtio_blk, dev);
	return 0;
}

static struct virtio_blk *blk_find_hotplugged(struct blk_vm *state, const char *id)
{
	unsigned int i;

	for (i = 0; state && i < state->nr; i++)
		if (state->disks[i]->hot_id[0] && !strcmp(state->disks[i]->hot_id, id))
			return state->disks[i];
	return NULL;
}

static int blk_pick_slot(struct blk_vm *state, int slot, struct virtio_blk **out, struct error *err)
{
	struct virtio_blk *blk;
	unsigned int i;

	if (!state || !state->nr)
		return error_set(err, -ENODEV,
				 "no virtio-blk slots: start the VM with -device "
				 "virtio-blk-device,id=NAME (no drive) for each disk to hot-add");
	if (slot < 0) {
		for (i = 0; i < state->nr; i++) {
			if (state->disks[i]->slot && state->disks[i]->fd < 0) {
				*out = state->disks[i];
				return 0;
			}
		}
		return error_set(err, -ENOSPC, "no free virtio-blk slot (all %u in use)",
				 state->nr);
	}
	if ((unsigned int)slot >= state->nr)
		return error_set(err, -ENODEV,
				 "addr %d: no such slot (virtio-blk slots are 0 to %u)", slot,
				 state->nr - 1);
	blk = state->disks[slot];
	if (!blk->slot)
		return error_set(err, -EBUSY, "addr %d: the slot holds the -drive disk '%s'", slot,
				 blk->name);
	if (blk->fd >= 0)
		return error_set(err, -EBUSY, "addr %d: the slot is in use by device '%s'", slot,
				 blk->hot_id);
	*out = blk;
	return 0;
}

/* Capacity, serial, RO enforcement, then the configuration change interrupt. */
static void blk_set_backing(struct virtio_blk *blk, int fd, uint64_t sectors, const char *node,
			    bool readonly)
{
	virtio_device_lock(&blk->dev);
	blk->fd = fd;
	blk->fd_borrowed = fd >= 0;
	blk->capacity = sectors;
	blk->readonly = readonly; /* writes refused with IOERR: features are fixed at boot */
	blk->config.capacity = htole64(sectors);
	memset(blk->serial, 0, sizeof(blk->serial));
	memcpy(blk->serial, node, strnlen(node, VIRTIO_BLK_ID_BYTES));
	virtio_device_config_changed(&blk->dev);
	virtio_device_unlock(&blk->dev);
}

int virtio_blk_hotplug_attach(struct vm *vm, const struct blk_hotplug_request *req,
			      struct error *err)
{
	struct blk_vm *state = device_get_data(vm, &blk_device);
	struct virtio_blk *blk = NULL;
	unsigned int i;
	off_t size;
	int r;

	for (i = 0; state && i < state->nr; i++)
		if (!strcmp(state->disks[i]->hot_id, req->id) ||
		    !strcmp(state->disks[i]->name, req->id))
			return error_set(err, -EEXIST, "Duplicate device ID '%s'", req->id);
	r = blk_pick_slot(state, req->slot, &blk, err);
	if (r < 0)
		return r;
	size = lseek(req->fd, 0, SEEK_END);
	if (size < 0)
		return error_set_errno(err, -errno, "drive '%s': size of %s", req->node, req->path);
	if (req->direct) {
		blk->fd = req->fd;
		r = blk_direct_alignment(blk, req->path, err);
		blk->fd = -1;
		if (r < 0)
			return r;
	}
	blk->direct = req->direct;
	snprintf(blk->hot_id, sizeof(blk->hot_id), "%s", req->id);
	snprintf(blk->hot_node, sizeof(blk->hot_node), "%s", req->node);
	blk_set_backing(blk, req->fd, (uint64_t)size >> BLK_SECTOR_SHIFT, req->node, req->readonly);
	for (i = 0; state->disks[i] != blk; i++)
		;
	log_info("%s: hot-added %s (drive '%s', %llu sectors%s) as device '%s' in slot %u",
		 blk->name, req->path, req->node, (unsigned long long)blk->capacity,
		 req->readonly ? ", read-only" : "", req->id, i);
	return (int)i;
}

int virtio_blk_hotplug_detach(struct vm *vm, const char *id, char *node, size_t node_size,
			      struct error *err)
{
	struct blk_vm *state = device_get_data(vm, &blk_device);
	struct virtio_blk *blk = blk_find_hotplugged(state, id);
	unsigned int i;

	if (!blk) {
		for (i = 0; state && i < state->nr; i++)
			if (!strcmp(state->disks[i]->name, id))
				return error_set(err, -EBUSY,
						 "Device '%s' was not hot-plugged: it cannot be "
						 "removed",
						 id);
		return error_set(err, -ENODEV, "Device '%s' not found", id);
	}
	if (!blk->readonly && fdatasync(blk->fd) < 0)
		log_warn("%s: fdatasync before removal: %s", blk->name, strerror(errno));
	snprintf(node, node_size, "%s", blk->hot_node);
	blk_set_backing(blk, -1, 0, "", false);
	log_info("%s: device '%s' removed (drive '%s')", blk->name, id, blk->hot_node);
	blk->hot_id[0] = blk->hot_node[0] = '\0';
	return 0;
}

bool virtio_blk_hotplug_node_in_use(struct vm *vm, const char *node)
{
	struct blk_vm *state = device_get_data(vm, &blk_device);
	unsigned int i;

	for (i = 0; state && i < state->nr; i++)
		if (state->disks[i]->hot_node[0] && !strcmp(state->disks[i]->hot_node, node))
			return true;
	return false;
}

/* One virtio-blk per "-device virtio-blk-device", in command-line order: vda, vdb, ... */
static int blk_init(struct vm *vm, struct error *err)
{
	return virtio_mmio_vm_attach_all(vm, VM_DEVICE_VIRTIO_BLK, blk_create, blk_attached, err);
}

static void blk_exit(struct vm *vm)
{
	free(device_get_data(vm, &blk_device));
}

/*
 * Snapshots (docs/snapshots.md): each disk's capacity, which the guest has cached. A restore
 * with an image of another size is refused, and so is a snapshot while a disk is
 * hot-added: the restored VM's slot would be empty under a guest that uses it.
 */
static int blk_save(struct vm *vm, struct snapshot_writer *w, struct error *err)
{
	struct blk_vm *state = device_get_data(vm, &blk_device);
	uint64_t capacity[VM_MAX_DEVICES];
	unsigned int i;

	for (i = 0; i < state->nr; i++) {
		if (state->disks[i]->hot_id[0])
			return error_set(err, -EBUSY,
					 "%s: device '%s' is hot-added; device_del it before a "
					 "snapshot",
					 state->disks[i]->name, state->disks[i]->hot_id);
		capacity[i] = state->disks[i]->capacity;
	}
	if (snapshot_put(w, "virtio-blk", capacity, state->nr * sizeof(capacity[0])) < 0)
		return error_set(err, w->error, "virtio-blk: cannot save");
	return 0;
}

static int blk_restore(struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	struct blk_vm *state = device_get_data(vm, &blk_device);
	uint64_t capacity[VM_MAX_DEVICES];
	unsigned int i;
	int r;

	r = snapshot_get_exact(f, "virtio-blk", capacity, state->nr * sizeof(capacity[0]), err);
	if (r < 0)
		return r;
	for (i = 0; i < state->nr; i++)
		if (capacity[i] != state->disks[i]->capacity)
			return error_set(err, -EINVAL,
					 "%s: the image has %llu sectors, the snapshot's guest saw "
					 "%llu",
					 state->disks[i]->name,
					 (unsigned long long)state->disks[i]->capacity,
					 (unsigned long long)capacity[i]);
	return 0;
}

static const struct device_ops blk_device = {
	.name = "virtio-blk",
	.level = DEVICE_LEVEL_VIRTIO,
	.init = blk_init,
	.exit = blk_exit,
	.save = blk_save,
	.restore = blk_restore,
};
DEVICE_REGISTER(blk_device);
