/*
 * VM snapshots (docs/snapshots.md): one file holding a paused VM, from which any number of
 * new VMs start where it stopped. Three parts, each at a page-aligned offset:
 *
 *   header (one page)  magic, format version, VMM version, the machine it describes (memory,
 *                      vCPUs, PIT, the -device types in order), where the other parts are,
 *                      a CRC32C of the state part and one of the header itself;
 *   state              named sections: vCPU registers, interrupt controllers, clock, and
 *                      each device's own state (devices write and read their sections
 *                      through the hooks in device.h, so the core never lists them);
 *   memory             guest RAM, region after region, page-aligned so a restore maps it
 *                      MAP_PRIVATE (copy-on-write: clones share the file's pages, and only
 *                      the pages a guest touches are ever read), or copies it into shared
 *                      memory when a virtio-fs share needs that. Not checksummed: checking
 *                      it would read the whole file and defeat exactly that.
 *
 * Reading refuses, with one line that says why, any file that is not a snapshot, another
 * format version, another machine, truncated, or whose header or state fails its checksum;
 * all of it is checked before anything of the new VM is touched.
 *
 * This file is the format only (snapshot_file.c, no KVM: unit-tested); snapshot.c saves and
 * restores a struct vm with it, arch/x86_64/snapshot.c the CPU and interrupt controllers.
 */
#ifndef STRATUS_VMM_SNAPSHOT_H
#define STRATUS_VMM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "memory.h"

#define SNAPSHOT_MAGIC "STRATSNP"
/*
 * Format versions read: 1, and 2 = 1 plus virtio-fs devices ("virtio-fs.N" sections). A
 * file is written as version 2 only when its machine has a virtio-fs device
 * (SNAPSHOT_F_VIRTIO_FS), which a version-1 reader would restore wrongly (without those
 * sections' checks, into private memory its share's process cannot see).
 */
#define SNAPSHOT_VERSION      2
#define SNAPSHOT_VERSION_MIN  1
#define SNAPSHOT_PAGE	      4096
#define SNAPSHOT_MAX_DEVICES  16
#define SNAPSHOT_SECTION_NAME 32
#define SNAPSHOT_MAX_STATE    (64ULL << 20) /* a state part larger than this is refused */
#define SNAPSHOT_F_PIT	      (1u << 0)
#define SNAPSHOT_F_VIRTIO_FS  (1u << 1) /* at least one virtio-fs device (share or slot) */

/* The machine a snapshot describes: a restore must be given the same one. */
struct snapshot_machine {
	uint64_t mem_size;
	uint32_t nr_vcpus;
	uint32_t flags; /* SNAPSHOT_F_* */
	uint32_t nr_devices;
	uint32_t device_types[SNAPSHOT_MAX_DEVICES]; /* enum vm_device_type, command-line order */
};

/* On disk, little-endian (the only hosts we run on); SNAPSHOT_PAGE bytes with padding. */
struct snapshot_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size; /* sizeof(struct snapshot_header) */
	char vmm_version[32];
	char arch[16];
	struct snapshot_machine machine;
	uint64_t created_ns; /* CLOCK_REALTIME when saved */
	uint64_t state_offset, state_size;
	uint64_t mem_offset, mem_size;
	uint32_t state_crc;  /* CRC32C of the state part */
	uint32_t header_crc; /* CRC32C of this struct with header_crc 0 */
};

/* Building the state part: sections appended in memory, written out with the file. */
struct snapshot_writer {
	uint8_t *buf;
	size_t len, cap;
	int error; /* first failure (-ENOMEM, -EINVAL); sticky */
};

/* A snapshot opened for restore: header and state checked and in memory, the file open. */
struct snapshot_file {
	int fd;
	struct snapshot_header header;
	uint8_t *state;
	char *path;
};

uint32_t snapshot_crc32c(uint32_t crc, const void *data, size_t len);

void snapshot_writer_init(struct snapshot_writer *w);
void snapshot_writer_free(struct snapshot_writer *w);
/* Append a section; a name is at most SNAPSHOT_SECTION_NAME - 1 bytes and used once. */
int snapshot_put(struct snapshot_writer *w, const char *name, const void *data, size_t len);

/*
 * Write header, state and guest memory to fd (a new, empty file): all-zero pages of guest
 * memory are left as holes. vmm_version goes into the header.
 */
int snapshot_file_write(int fd, const struct snapshot_machine *machine, const char *vmm_version,
			const struct snapshot_writer *state, const struct vm_mem *mem,
			struct error *err);

/* Open and check path (magic, version, sizes, checksums); messages start with the path. */
int snapshot_file_open(const char *path, struct snapshot_file **out, struct error *err);
void snapshot_file_close(struct snapshot_file *f);

/* Refuse a snapshot of another machine than the one described; names what differs. */
int snapshot_file_check_machine(const struct snapshot_file *f, const struct snapshot_machine *m,
				struct error *err);

/* The section called name: 0 and its bytes, or -ENOENT. */
int snapshot_get(const struct snapshot_file *f, const char *name, const void **data, size_t *len);
/* Copy section name, which must be exactly len bytes, into buf; else an error naming it. */
int snapshot_get_exact(const struct snapshot_file *f, const char *name, void *buf, size_t len,
		       struct error *err);

/*
 * Replace guest memory with the snapshot's, in place (same addresses, so nothing that holds
 * a pointer into guest RAM needs to know): mapped MAP_PRIVATE over the regions, or, when
 * mem->shared (a virtio-fs share's process must see guest RAM, which a private mapping of
 * the file would hide from it), copied into the fresh regions, the file's holes skipped.
 */
int snapshot_file_map_memory(const struct snapshot_file *f, struct vm_mem *mem, struct error *err);

/*
 * The same, started: mapped at once (*out NULL), or, for shared memory, copied by a thread
 * of its own while the caller goes on building the VM (KVM's memory slots, devices, vCPUs:
 * nothing that reads guest RAM). snapshot_load_wait() joins it (NULL: nothing to wait for)
 * and must come before anything reads guest memory, and before the memory or f goes away;
 * err may be NULL when only cleaning up. The thread takes no lock and logs nothing (a
 * share's process may be forked meanwhile); the wait logs what it copied.
 */
struct snapshot_load;
int snapshot_file_load_memory(const struct snapshot_file *f, struct vm_mem *mem,
			      struct snapshot_load **out, struct error *err);
int snapshot_load_wait(struct snapshot_load *load, struct error *err);

/* Saving and restoring a whole VM (snapshot.c). */
struct vm;
struct vm_config;

void snapshot_machine_from_config(const struct vm_config *config, struct snapshot_machine *m);

/* The VM must be paused (vm_pause). Writes path atomically (a temporary file, renamed). */
int vm_snapshot_save(struct vm *vm, const char *path, struct error *err);

/*
 * vm_create's restore path: check f against the VM's configuration (before anything is
 * built), map the memory, then (once devices and vCPUs exist) restore their state.
 */
int vm_snapshot_check(const struct vm *vm, const struct snapshot_file *f, struct error *err);
int vm_snapshot_restore(struct vm *vm, const struct snapshot_file *f, struct error *err);

#endif
