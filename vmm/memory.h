/*
 * Guest-physical memory. Every access a device, loader or emulator makes to guest RAM goes
 * through these accessors, which check the whole range against the regions and fail rather
 * than hand out a pointer that strays outside them (STYLE.md, "Guest memory").
 */
#ifndef STRATUS_VMM_MEMORY_H
#define STRATUS_VMM_MEMORY_H

#include <stdint.h>
#include <stddef.h>

#include "error.h"

#define VM_MEM_MAX_REGIONS 4

struct vm_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	bool owned; /* mapped by vm_mem_alloc_region, unmapped by vm_mem_destroy */
	int fd; /* owned and shared: the memfd behind hva (a snapshot restore writes it); else -1 */
};

struct vm_mem {
	struct vm_mem_region regions[VM_MEM_MAX_REGIONS];
	unsigned int nr_regions;
	uint64_t ram_size; /* sum of region sizes */
	/*
	 * Set before the first vm_mem_alloc_region() when another process must see guest RAM
	 * (a virtio-fs share's process, fs_process.c): regions are then MAP_SHARED mappings of
	 * a memfd each, inherited across fork, else private anonymous memory, not inherited.
	 */
	bool shared;
};

/* Empty, private (mem->shared false). */
void vm_mem_init(struct vm_mem *mem);

/*
 * Map size bytes of anonymous, MAP_NORESERVE memory as guest RAM at gpa (both page aligned).
 * Only the pages the guest touches cost host memory. A MAP_SHARED memfd if mem->shared.
 */
int vm_mem_alloc_region(struct vm_mem *mem, uint64_t gpa, uint64_t size, struct error *err);

/* Use caller-owned memory as a region (tests and fake drivers). */
int vm_mem_add_region(struct vm_mem *mem, uint64_t gpa, uint64_t size, void *hva,
		      struct error *err);

void vm_mem_destroy(struct vm_mem *mem);

/*
 * Host pointer to [gpa, gpa + len) if that whole range lies in one region, else NULL.
 * len 0 is allowed for any gpa inside a region.
 */
void *vm_mem_ptr(const struct vm_mem *mem, uint64_t gpa, uint64_t len);

/* Copy to and from guest memory; -EFAULT if any byte lies outside guest RAM. */
int vm_mem_read(const struct vm_mem *mem, uint64_t gpa, void *buf, size_t len);
int vm_mem_write(const struct vm_mem *mem, uint64_t gpa, const void *buf, size_t len);

/* The region holding gpa, or NULL. */
const struct vm_mem_region *vm_mem_find(const struct vm_mem *mem, uint64_t gpa);

#endif
