/*
 * The snapshot file format (see snapshot.h): CRC32C, the state part's sections, writing the
 * file with guest memory as a sparse, page-aligned tail, and opening it again with every
 * check done before the caller sees a byte of it. No KVM here.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "log.h"
#include "snapshot.h"

_Static_assert(sizeof(struct snapshot_header) <= SNAPSHOT_PAGE, "header fits in a page");

/* A section in the state part: this, then size bytes, then padding to 8. */
struct snapshot_section {
	char name[SNAPSHOT_SECTION_NAME];
	uint64_t size;
};

/* CRC32C (Castagnoli, reflected polynomial 0x82f63b78), a table built once. */
static uint32_t crc32c_table[256];

static void crc32c_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (c & 1 ? 0x82f63b78u : 0);
		crc32c_table[i] = c;
	}
}

uint32_t snapshot_crc32c(uint32_t crc, const void *data, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const uint8_t *p = data;

	pthread_once(&once, crc32c_init);
	crc = ~crc;
	while (len--)
		crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

void snapshot_writer_init(struct snapshot_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void snapshot_writer_free(struct snapshot_writer *w)
{
	free(w->buf);
	snapshot_writer_init(w);
}

static int snapshot_reserve(struct snapshot_writer *w, size_t more)
{
	size_t cap = w->cap ? w->cap : 4096;
	uint8_t *buf;

	if (more > SNAPSHOT_MAX_STATE || w->len + more > SNAPSHOT_MAX_STATE)
		return -EFBIG;
	while (cap < w->len + more)
		cap *= 2;
	if (cap == w->cap)
		return 0;
	buf = realloc(w->buf, cap);
	if (!buf)
		return -ENOMEM;
	w->buf = buf;
	w->cap = cap;
	return 0;
}

/* Walk the sections of a state part; returns the next one or NULL at the end. */
static const struct snapshot_section *snapshot_next(const uint8_t *state, size_t size,
						    size_t *offset)
{
	const struct snapshot_section *s;

	if (!range_fits(*offset, sizeof(*s), size))
		return NULL;
	s = (const struct snapshot_section *)(state + *offset);
	*offset += sizeof(*s) + ALIGN_UP(s->size, 8);
	return s;
}

static bool snapshot_has(const uint8_t *state, size_t size, const char *name)
{
	const struct snapshot_section *s;
	size_t off = 0;

	while ((s = snapshot_next(state, size, &off)))
		if (!strncmp(s->name, name, sizeof(s->name)))
			return true;
	return false;
}

int snapshot_put(struct snapshot_writer *w, const char *name, const void *data, size_t len)
{
	struct snapshot_section s = { .size = len };
	size_t padded = ALIGN_UP(len, 8);
	int r;

	if (w->error)
		return w->error;
	if (strlen(name) >= sizeof(s.name) || snapshot_has(w->buf, w->len, name))
		return w->error = -EINVAL;
	r = snapshot_reserve(w, sizeof(s) + padded);
	if (r < 0)
		return w->error = r;
	memcpy(s.name, name, strlen(name) + 1);
	memcpy(w->buf + w->len, &s, sizeof(s));
	if (len)
		memcpy(w->buf + w->len + sizeof(s), data, len);
	memset(w->buf + w->len + sizeof(s) + len, 0, padded - len);
	w->len += sizeof(s) + padded;
	return 0;
}

/* pwritev, not pwrite: the VMM's seccomp list already has it (virtio-blk). */
static int write_all(int fd, const void *data, size_t len, uint64_t offset)
{
	const uint8_t *p = data;

	while (len) {
		struct iovec iov = { .iov_base = (void *)p, .iov_len = MIN(len, (size_t)1 << 30) };
		ssize_t n = pwritev(fd, &iov, 1, offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= n;
		offset += n;
	}
	return 0;
}

static bool page_is_zero(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;
	size_t i;

	for (i = 0; i < SNAPSHOT_PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Runs of non-zero pages are written; zero pages stay holes (the file was sized first). */
static int snapshot_write_region(int fd, const struct vm_mem_region *region, uint64_t offset)
{
	uint64_t page = 0, start;
	int r;

	while (page < region->size) {
		while (page < region->size && page_is_zero(region->hva + page))
			page += SNAPSHOT_PAGE;
		start = page;
		while (page < region->size && !page_is_zero(region->hva + page))
			page += SNAPSHOT_PAGE;
		if (page > start) {
			r = write_all(fd, region->hva + start, page - start, offset + start);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int snapshot_file_write(int fd, const struct snapshot_machine *machine, const char *vmm_version,
			const struct snapshot_writer *state, const struct vm_mem *mem,
			struct error *err)
{
	uint8_t page[SNAPSHOT_PAGE] = { 0 };
	struct snapshot_header h = { .header_size = sizeof(h) };
	struct timespec now;
	uint64_t offset;
	unsigned int i;
	int r;

	if (state->error)
		return error_set_errno(err, state->error, "snapshot: cannot build the state");
	memcpy(h.magic, SNAPSHOT_MAGIC, sizeof(h.magic));
	/* Version 1 where it suffices, so older readers still take what they can read. */
	h.version = machine->flags & SNAPSHOT_F_VIRTIO_FS ? 2 : 1;
	snprintf(h.vmm_version, sizeof(h.vmm_version), "%s", vmm_version);
	snprintf(h.arch, sizeof(h.arch), "%s", "x86_64");
	h.machine = *machine;
	clock_gettime(CLOCK_REALTIME, &now);
	h.created_ns = (uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec;
	h.state_offset = SNAPSHOT_PAGE;
	h.state_size = state->len;
	h.state_crc = snapshot_crc32c(0, state->buf, state->len);
	h.mem_offset = ALIGN_UP(h.state_offset + h.state_size, (uint64_t)SNAPSHOT_PAGE);
	h.mem_size = mem->ram_size;
	h.header_crc = snapshot_crc32c(0, &h, sizeof(h));
	memcpy(page, &h, sizeof(h));

	/* The file's full size first (one byte at the end), so all-zero pages stay holes. */
	r = write_all(fd, page + sizeof(page) - 1, 1, h.mem_offset + h.mem_size - 1);
	if (r == 0)
		r = write_all(fd, page, sizeof(page), 0);
	if (r == 0)
		r = write_all(fd, state->buf, state->len, h.state_offset);
	for (i = 0, offset = h.mem_offset; r == 0 && i < mem->nr_regions; i++) {
		r = snapshot_write_region(fd, &mem->regions[i], offset);
		offset += mem->regions[i].size;
	}
	if (r < 0)
		return error_set_errno(err, r, "snapshot: cannot write");
	return 0;
}

static int snapshot_check_header(const struct snapshot_file *f, uint64_t file_size,
				 struct error *err)
{
	struct snapshot_header h = f->header;
	uint32_t crc = h.header_crc;

	if (memcmp(h.magic, SNAPSHOT_MAGIC, sizeof(h.magic)))
		return error_set(err, -EINVAL, "%s: not a stratus snapshot", f->path);
	if (h.version < SNAPSHOT_VERSION_MIN || h.version > SNAPSHOT_VERSION)
		return error_set(err, -EINVAL,
				 "%s: snapshot format version %u, this VMM reads versions %u to %u",
				 f->path, h.version, SNAPSHOT_VERSION_MIN, SNAPSHOT_VERSION);
	h.header_crc = 0;
	if (h.header_size != sizeof(h) || snapshot_crc32c(0, &h, sizeof(h)) != crc)
		return error_set(err, -EBADMSG, "%s: snapshot header is damaged (bad checksum)",
				 f->path);
	if (strncmp(h.arch, "x86_64", sizeof(h.arch)))
		return error_set(err, -EINVAL, "%s: snapshot of a %.16s VM, this VMM runs x86_64",
				 f->path, h.arch);
	if (h.state_offset != SNAPSHOT_PAGE || h.state_size > SNAPSHOT_MAX_STATE ||
	    h.mem_offset != ALIGN_UP(h.state_offset + h.state_size, (uint64_t)SNAPSHOT_PAGE) ||
	    h.mem_size != h.machine.mem_size || h.machine.nr_devices > SNAPSHOT_MAX_DEVICES ||
	    (h.version < 2 && (h.machine.flags & SNAPSHOT_F_VIRTIO_FS)))
		return error_set(err, -EBADMSG, "%s: snapshot header is inconsistent", f->path);
	if (file_size < h.mem_offset || file_size - h.mem_offset < h.mem_size)
		return error_set(err, -EBADMSG,
				 "%s: snapshot is truncated (%llu bytes, the header says %llu)",
				 f->path, (unsigned long long)file_size,
				 (unsigned long long)(h.mem_offset + h.mem_size));
	return 0;
}

static int snapshot_read_state(struct snapshot_file *f, struct error *err)
{
	const struct snapshot_header *h = &f->header;
	const struct snapshot_section *s;
	size_t off = 0, size = h->state_size;
	ssize_t n;

	f->state = malloc(size ? size : 1);
	if (!f->state)
		return error_set(err, -ENOMEM, "%s: out of memory", f->path);
	n = pread(f->fd, f->state, size, h->state_offset);
	if (n < 0)
		return error_set_errno(err, -errno, "%s: cannot read", f->path);
	if ((size_t)n != size || snapshot_crc32c(0, f->state, size) != h->state_crc)
		return error_set(err, -EBADMSG, "%s: snapshot state is damaged (bad checksum)",
				 f->path);
	/* The checksum matched, but a snapshot is still input: the sections must add up. */
	while (off < size) {
		s = snapshot_next(f->state, size, &off);
		if (!s || s->size > size || off > size || !memchr(s->name, 0, sizeof(s->name)))
			return error_set(err, -EBADMSG, "%s: snapshot state is malformed", f->path);
	}
	return 0;
}

int snapshot_file_open(const char *path, struct snapshot_file **out, struct error *err)
{
	struct snapshot_file *f = calloc(1, sizeof(*f));
	struct stat st;
	ssize_t n;
	int r;

	if (!f || !(f->path = strdup(path))) {
		free(f);
		return error_set(err, -ENOMEM, "out of memory");
	}
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		r = error_set_errno(err, -errno, "%s: cannot open the snapshot", path);
		goto fail;
	}
	if (fstat(f->fd, &st) < 0) {
		r = error_set_errno(err, -errno, "%s", path);
		goto fail;
	}
	n = pread(f->fd, &f->header, sizeof(f->header), 0);
	if (n != sizeof(f->header)) {
		r = n < 0 ? error_set_errno(err, -errno, "%s: cannot read", path)
			  : error_set(err, -EBADMSG, "%s: not a stratus snapshot (too short)",
				      path);
		goto fail;
	}
	r = snapshot_check_header(f, st.st_size, err);
	if (r == 0)
		r = snapshot_read_state(f, err);
	if (r < 0)
		goto fail;
	*out = f;
	return 0;
fail:
	snapshot_file_close(f);
	return r;
}

void snapshot_file_close(struct snapshot_file *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f->state);
	free(f->path);
	free(f);
}

int snapshot_file_check_machine(const struct snapshot_file *f, const struct snapshot_machine *m,
				struct error *err)
{
	const struct snapshot_machine *s = &f->header.machine;
	unsigned int i;

	if (s->mem_size != m->mem_size)
		return error_set(err, -EINVAL, "-m: %llu MiB, but the snapshot %s has %llu MiB",
				 (unsigned long long)(m->mem_size >> 20), f->path,
				 (unsigned long long)(s->mem_size >> 20));
	if (s->nr_vcpus != m->nr_vcpus)
		return error_set(err, -EINVAL, "-smp: %u vCPUs, but the snapshot %s has %u",
				 m->nr_vcpus, f->path, s->nr_vcpus);
	if ((s->flags ^ m->flags) & SNAPSHOT_F_PIT)
		return error_set(err, -EINVAL, "-machine: pit=%s, but the snapshot %s has pit=%s",
				 m->flags & SNAPSHOT_F_PIT ? "on" : "off", f->path,
				 s->flags & SNAPSHOT_F_PIT ? "on" : "off");
	if (s->nr_devices != m->nr_devices)
		return error_set(err, -EINVAL,
				 "-device: %u devices, but the snapshot %s has %u (give the same "
				 "-device list, -qmp and -machine blk-slots=)",
				 m->nr_devices, f->path, s->nr_devices);
	for (i = 0; i < m->nr_devices; i++)
		if (s->device_types[i] != m->device_types[i])
			return error_set(err, -EINVAL,
					 "-device %u: another device type than in the snapshot %s",
					 i + 1, f->path);
	return 0;
}

int snapshot_get(const struct snapshot_file *f, const char *name, const void **data, size_t *len)
{
	const struct snapshot_section *s;
	size_t off = 0;

	while ((s = snapshot_next(f->state, f->header.state_size, &off))) {
		if (strncmp(s->name, name, sizeof(s->name)))
			continue;
		*data = s + 1;
		*len = s->size;
		return 0;
	}
	return -ENOENT;
}

int snapshot_get_exact(const struct snapshot_file *f, const char *name, void *buf, size_t len,
		       struct error *err)
{
	const void *data;
	size_t size;

	if (snapshot_get(f, name, &data, &size) < 0)
		return error_set(err, -EBADMSG, "%s: snapshot has no '%s' state", f->path, name);
	if (size != len)
		return error_set(err, -EBADMSG,
				 "%s: snapshot '%s' state is %zu bytes, expected %zu", f->path,
				 name, size, len);
	memcpy(buf, data, len);
	return 0;
}

/* Copy-on-write: the file's pages are the guest's until it writes them. */
static int snapshot_map_region(const struct snapshot_file *f, struct vm_mem_region *region,
			       uint64_t offset, struct error *err)
{
	void *hva = mmap(region->hva, region->size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, f->fd, offset);

	if (hva == MAP_FAILED)
		return error_set_errno(err, -errno, "%s: cannot map guest memory", f->path);
	madvise(hva, region->size, MADV_DONTDUMP);
	madvise(hva, region->size, MADV_DONTFORK);
	return 0;
}

/*
 * len bytes at the file's offset into the region at at: sendfile() into the region's memfd
 * (the kernel copies page cache to page cache, no fault per page: ~1.5x pread into the
 * mapping here, docs/snapshots.md), pread() into the mapping where that is refused.
 */
static int snapshot_copy_extent(const struct snapshot_file *f, struct vm_mem_region *region,
				uint64_t at, uint64_t offset, uint64_t len)
{
	off_t in = offset;
	ssize_t n;

	if (region->fd >= 0 && lseek(region->fd, at, SEEK_SET) == (off_t)at) {
		while (len) {
			n = sendfile(region->fd, f->fd, &in, MIN(len, (uint64_t)1 << 30));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			at += n;
			len -= n;
		}
		if (!len)
			return 0;
		offset = in;
	}
	while (len) {
		n = pread(f->fd, region->hva + at, MIN(len, (uint64_t)1 << 30), offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		at += n;
		offset += n;
		len -= n;
	}
	return 0;
}

/*
 * Shared guest RAM (another process must see it, so it cannot be a private mapping of the
 * file): copy the file's data into the fresh, all-zero region, skipping its holes (the
 * writer left every all-zero page one), so holes cost neither time nor memory.
 */
static int snapshot_copy_region(const struct snapshot_file *f, struct vm_mem_region *region,
				uint64_t offset, uint64_t *copied, struct error *err)
{
	uint64_t end = offset + region->size, pos = offset;
	off_t data, hole;
	int r;

	while (pos < end) {
		data = lseek(f->fd, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* nothing but holes from here to the end of the file */
		if (data < 0)
			return error_set_errno(err, -errno, "%s: SEEK_DATA", f->path);
		if ((uint64_t)data >= end)
			break;
		hole = lseek(f->fd, data, SEEK_HOLE);
		if (hole < 0)
			return error_set_errno(err, -errno, "%s: SEEK_HOLE", f->path);
		hole = MIN((uint64_t)hole, end);
		r = snapshot_copy_extent(f, region, data - offset, data, hole - data);
		if (r < 0)
			return error_set_errno(err, r, "%s: cannot read guest memory", f->path);
		*copied += hole - data;
		pos = hole;
	}
	return 0;
}

static double snapshot_ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1e3 + (now.tv_nsec - start->tv_nsec) / 1e6;
}

struct snapshot_load {
	const struct snapshot_file *f;
	struct vm_mem *mem;
	pthread_t thread;
	struct timespec start;
	uint64_t copied;
	double ms;
	int r;
	struct error err;
};

static int snapshot_load_regions(struct snapshot_load *l)
{
	uint64_t offset = l->f->header.mem_offset;

	for (unsigned int i = 0; i < l->mem->nr_regions; i++) {
		struct vm_mem_region *region = &l->mem->regions[i];
		int r;

		if (!region->owned)
			return error_set(&l->err, -EINVAL,
					 "snapshot: guest memory not ours to replace");
		r = l->mem->shared ? snapshot_copy_region(l->f, region, offset, &l->copied, &l->err)
				   : snapshot_map_region(l->f, region, offset, &l->err);
		if (r < 0)
			return r;
		offset += region->size;
	}
	return 0;
}

static void *snapshot_load_thread(void *arg)
{
	struct snapshot_load *l = arg;

	l->r = snapshot_load_regions(l);
	l->ms = snapshot_ms_since(&l->start);
	return NULL;
}

/* The outcome of a load, run or joined: its error into err (when given), or a log line. */
static int snapshot_load_finish(struct snapshot_load *l, struct error *err)
{
	int r = l->r;

	if (r < 0 && err)
		*err = l->err;
	else if (r == 0 && l->mem->shared)
		log_debug("guest memory: %.1f MiB copied from %s into shared memory in %.1f ms",
			  l->copied / 1048576.0, l->f->path, l->ms);
	free(l);
	return r;
}

int snapshot_load_wait(struct snapshot_load *l, struct error *err)
{
	if (!l)
		return 0;
	pthread_join(l->thread, NULL);
	return snapshot_load_finish(l, err);
}

int snapshot_file_load_memory(const struct snapshot_file *f, struct vm_mem *mem,
			      struct snapshot_load **out, struct error *err)
{
	struct snapshot_load *l;

	*out = NULL;
	if (mem->ram_size != f->header.mem_size)
		return error_set(err, -EINVAL, "%s: guest memory size differs", f->path);
	l = calloc(1, sizeof(*l));
	if (!l)
		return error_set(err, -ENOMEM, "out of memory");
	l->f = f;
	l->mem = mem;
	clock_gettime(CLOCK_MONOTONIC, &l->start);
	if (mem->shared && pthread_create(&l->thread, NULL, snapshot_load_thread, l) == 0) {
		*out = l;
		return 0;
	}
	/* mapped (quick), or no thread to copy on: here */
	snapshot_load_thread(l);
	return snapshot_load_finish(l, err);
}

int snapshot_file_map_memory(const struct snapshot_file *f, struct vm_mem *mem, struct error *err)
{
	struct snapshot_load *l;
	int r = snapshot_file_load_memory(f, mem, &l, err);

	return r < 0 ? r : snapshot_load_wait(l, err);
}
