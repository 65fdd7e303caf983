/*
 * Saving a paused VM to a snapshot file and building a VM from one (see snapshot.h and
 * docs/snapshots.md). The arch code saves the CPUs and interrupt controllers, each device
 * its own state through its device_ops hooks; this file puts them together with guest
 * memory and writes the file atomically (a temporary file in the same directory, fsync,
 * rename), so a failed or interrupted save never leaves a half-written snapshot at PATH.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "arch.h"
#include "device.h"
#include "log.h"
#include "snapshot.h"
#include "vm.h"

#ifndef STRATUS_VERSION
#define STRATUS_VERSION "unknown"
#endif

void snapshot_machine_from_config(const struct vm_config *config, struct snapshot_machine *m)
{
	unsigned int i;

	memset(m, 0, sizeof(*m));
	m->mem_size = config->mem_size;
	m->nr_vcpus = config->nr_vcpus;
	m->flags = config->pit ? SNAPSHOT_F_PIT : 0;
	m->nr_devices = MIN(config->nr_devices, (unsigned int)SNAPSHOT_MAX_DEVICES);
	for (i = 0; i < m->nr_devices; i++) {
		m->device_types[i] = config->devices[i].type;
		if (config->devices[i].type == VM_DEVICE_VIRTIO_FS)
			m->flags |= SNAPSHOT_F_VIRTIO_FS;
	}
}

static double elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1e3 + (now.tv_nsec - start->tv_nsec) / 1e6;
}

static int vm_snapshot_write(struct vm *vm, int fd, struct error *err)
{
	struct snapshot_writer w;
	struct snapshot_machine m;
	int r;

	snapshot_writer_init(&w);
	snapshot_machine_from_config(&vm->config, &m);
	r = arch_vm_save(vm, &w, err);
	if (r == 0)
		r = device_save_all(vm, &w, err);
	if (r == 0)
		r = snapshot_file_write(fd, &m, STRATUS_VERSION, &w, &vm->mem, err);
	snapshot_writer_free(&w);
	/* fdatasync covers the data and the size, which is what a restore reads. */
	if (r == 0 && fdatasync(fd) < 0)
		r = error_set_errno(err, -errno, "snapshot: fdatasync");
	return r;
}

int vm_snapshot_save(struct vm *vm, const char *path, struct error *err)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	struct timespec start;
	int r;

	if (!atomic_load(&vm->paused) || atomic_load(&vm->exit_reason) != VM_EXIT_NONE)
		return error_set(err, -EBUSY, "snapshot: the VM must be paused");
	if (vm->config.nr_devices > SNAPSHOT_MAX_DEVICES)
		return error_set(err, -ENOTSUP, "snapshot: at most %u devices",
				 SNAPSHOT_MAX_DEVICES);
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(err, -errno, "snapshot: cannot create %s", tmp);
	r = vm_snapshot_write(vm, fd, err);
	if (r == 0 && rename(tmp, path) < 0)
		r = error_set_errno(err, -errno, "snapshot: cannot rename %s to %s", tmp, path);
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	log_info("snapshot written to %s in %.1f ms", path, elapsed_ms(&start));
	return 0;
}

int vm_snapshot_check(const struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	struct snapshot_machine m;

	if (vm->config.nr_devices > SNAPSHOT_MAX_DEVICES)
		return error_set(err, -ENOTSUP, "-incoming: at most %u devices",
				 SNAPSHOT_MAX_DEVICES);
	snapshot_machine_from_config(&vm->config, &m);
	if (strncmp(f->header.vmm_version, STRATUS_VERSION, sizeof(f->header.vmm_version)))
		log_info("%s: written by stratus-vmm %.32s (format %u, which this one reads)",
			 f->path, f->header.vmm_version, f->header.version);
	return snapshot_file_check_machine(f, &m, err);
}

int vm_snapshot_restore(struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	int r;

	/* Interrupt controllers before the devices, whose restore may raise an interrupt. */
	r = arch_vm_restore(vm, f, err);
	if (r < 0)
		return r;
	r = device_restore_all(vm, f, err);
	if (r < 0)
		return r;
	log_info("VM restored from %s", f->path);
	return 0;
}
