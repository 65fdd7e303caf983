/*
 * Guest RAM regions and the checked accessors over them (see memory.h).
 */
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "memory.h"

void vm_mem_init(struct vm_mem *mem)
{
	memset(mem, 0, sizeof(*mem));
}

static int vm_mem_check_new(struct vm_mem *mem, uint64_t gpa, uint64_t size, struct error *err)
{
	unsigned int i;

	if (mem->nr_regions >= VM_MEM_MAX_REGIONS)
		return error_set(err, -ENOSPC, "guest memory: too many regions");
	if (size == 0 || gpa + size < gpa)
		return error_set(err, -EINVAL, "guest memory: bad region 0x%llx+0x%llx",
				 (unsigned long long)gpa, (unsigned long long)size);
	for (i = 0; i < mem->nr_regions; i++) {
		const struct vm_mem_region *r = &mem->regions[i];

		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return error_set(err, -EEXIST, "guest memory: region 0x%llx overlaps",
					 (unsigned long long)gpa);
	}
	return 0;
}

static void vm_mem_insert(struct vm_mem *mem, uint64_t gpa, uint64_t size, void *hva, bool owned,
			  int fd)
{
	struct vm_mem_region *r = &mem->regions[mem->nr_regions++];

	r->gpa = gpa;
	r->size = size;
	r->hva = hva;
	r->owned = owned;
	r->fd = fd;
	mem->ram_size += size;
}

/*
 * Shared guest RAM is a memfd rather than anonymous shared memory (the same shmem pages): a
 * snapshot restore fills it with sendfile() from the snapshot, which needs a file to write.
 */
static int vm_mem_map_shared(uint64_t size, void **hva, int *fd, struct error *err)
{
	int r;

	*fd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (*fd < 0)
		return error_set_errno(err, -errno, "guest memory: memfd_create");
	if (ftruncate(*fd, size) < 0) {
		r = error_set_errno(err, -errno, "guest memory: cannot size a memfd to %llu MiB",
				    (unsigned long long)(size >> 20));
		goto fail;
	}
	*hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, *fd, 0);
	if (*hva != MAP_FAILED)
		return 0;
	r = error_set_errno(err, -errno, "guest memory: cannot map %llu MiB",
			    (unsigned long long)(size >> 20));
fail:
	close(*fd);
	*fd = -1;
	return r;
}

int vm_mem_alloc_region(struct vm_mem *mem, uint64_t gpa, uint64_t size, struct error *err)
{
	void *hva;
	int r, fd = -1;

	if ((gpa | size) & 4095)
		return error_set(err, -EINVAL, "guest memory: region not page aligned");
	r = vm_mem_check_new(mem, gpa, size, err);
	if (r < 0)
		return r;
	if (mem->shared) {
		r = vm_mem_map_shared(size, &hva, &fd, err);
		if (r < 0)
			return r;
	} else {
		hva = mmap(NULL, size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (hva == MAP_FAILED)
			return error_set_errno(err, -errno, "guest memory: cannot map %llu MiB",
					       (unsigned long long)(size >> 20));
	}
	/* Guest RAM is not worth dumping with the VMM, nor inheriting across fork. */
	madvise(hva, size, MADV_DONTDUMP);
	if (mem->shared)
		madvise(hva, size, MADV_HUGEPAGE); /* shmem: THP only where allowed ("advise") */
	else
		madvise(hva, size, MADV_DONTFORK);
	vm_mem_insert(mem, gpa, size, hva, true, fd);
	return 0;
}

int vm_mem_add_region(struct vm_mem *mem, uint64_t gpa, uint64_t size, void *hva, struct error *err)
{
	int r = vm_mem_check_new(mem, gpa, size, err);

	if (r < 0)
		return r;
	vm_mem_insert(mem, gpa, size, hva, false, -1);
	return 0;
}

void vm_mem_destroy(struct vm_mem *mem)
{
	unsigned int i;

	bool shared = mem->shared;

	for (i = 0; i < mem->nr_regions; i++) {
		if (!mem->regions[i].owned)
			continue;
		munmap(mem->regions[i].hva, mem->regions[i].size);
		if (mem->regions[i].fd >= 0)
			close(mem->regions[i].fd);
	}
	vm_mem_init(mem);
	mem->shared = shared;
}

const struct vm_mem_region *vm_mem_find(const struct vm_mem *mem, uint64_t gpa)
{
	unsigned int i;

	for (i = 0; i < mem->nr_regions; i++) {
		const struct vm_mem_region *r = &mem->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *vm_mem_ptr(const struct vm_mem *mem, uint64_t gpa, uint64_t len)
{
	const struct vm_mem_region *r = vm_mem_find(mem, gpa);

	if (!r || !range_fits(gpa - r->gpa, len, r->size))
		return NULL;
	return r->hva + (gpa - r->gpa);
}

/* Copies may span adjacent regions; each piece is checked on its own. */
int vm_mem_read(const struct vm_mem *mem, uint64_t gpa, void *buf, size_t len)
{
	uint8_t *out = buf;

	while (len) {
		const struct vm_mem_region *r = vm_mem_find(mem, gpa);
		uint64_t chunk;

		if (!r)
			return -EFAULT;
		chunk = MIN((uint64_t)len, r->size - (gpa - r->gpa));
		memcpy(out, r->hva + (gpa - r->gpa), chunk);
		out += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

int vm_mem_write(const struct vm_mem *mem, uint64_t gpa, const void *buf, size_t len)
{
	const uint8_t *in = buf;
	uint64_t at = gpa;
	size_t left = len;

	/* Check first so a failed write leaves guest memory untouched. */
	while (left) {
		const struct vm_mem_region *r = vm_mem_find(mem, at);
		uint64_t chunk;

		if (!r)
			return -EFAULT;
		chunk = MIN((uint64_t)left, r->size - (at - r->gpa));
		at += chunk;
		left -= chunk;
	}
	while (len) {
		const struct vm_mem_region *r = vm_mem_find(mem, gpa);
		uint64_t chunk = MIN((uint64_t)len, r->size - (gpa - r->gpa));

		memcpy(r->hva + (gpa - r->gpa), in, chunk);
		in += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}
