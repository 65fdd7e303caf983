/*
 * libFuzzer target for reading snapshot files (vmm/snapshot_file.c) and restoring a
 * virtio-mmio transport from one (mmio.c, virtq_restore): the input is the whole file. A
 * snapshot comes from the runtime's own cache, but a damaged or crafted one must still be
 * refused, never read out of bounds or half-applied. Checked: open either fails with a
 * message or yields sections that lie inside the state part; a "virtio-mmio.0" section of
 * the right size is restored into a virtio-rng on the fake driver (ring addresses from the
 * file are checked against guest RAM), whose queue is then run; a "virtio-fs.0" section is
 * checked against a virtio-fs slot (a refusal always says why); guest memory of up to 1 MiB
 * is copied into shared memory as for a VM with a share (the file's holes and data as the
 * input makes them); no crash, no leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapshot.h"
#include "vm.h"
#include "virtio_fake_driver.h"

static void restore_transport(const struct snapshot_file *f)
{
	struct virtio_mmio_state state;
	struct fake_driver d = { 0 };
	struct virtio_device *dev;
	struct error err = { 0 };

	if (snapshot_get_exact(f, "virtio-mmio.0", &state, sizeof(state), &err) < 0)
		return;
	if (virtio_rng_new("rng0", &dev) < 0 || fake_driver_init(&d, dev, 1 << 20) < 0)
		abort();
	if (virtio_mmio_restore(d.mmio, &state, &err) == 0)
		fake_driver_pump(&d); /* the queue as restored, with whatever the rings hold */
	else if (!err.msg[0])
		abort(); /* a refusal always says why */
	fake_driver_destroy(&d);
}

static void restore_fs(const struct snapshot_file *f)
{
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_FS, .fs_tag = "rootfs" };
	struct virtio_fs_state state;
	struct fake_driver d = { 0 };
	struct virtio_device *dev;
	struct error err = { 0 };

	if (snapshot_get_exact(f, "virtio-fs.0", &state, sizeof(state), &err) < 0)
		return;
	if (virtio_fs_new(&spec, &dev, &err) < 0 || fake_driver_init(&d, dev, 1 << 20) < 0)
		abort();
	if (virtio_fs_check_restore(dev, &state, f->path, &err) < 0 && !err.msg[0])
		abort();
	fake_driver_destroy(&d);
}

/* Into shared (memfd) memory, as a VM with a virtio-fs share restores it. */
static void copy_memory(const struct snapshot_file *f)
{
	uint64_t size = f->header.mem_size;
	struct error err = { 0 };
	struct vm_mem mem;

	if (!size || size > (1 << 20) || (size & 4095))
		return;
	vm_mem_init(&mem);
	mem.shared = true;
	if (vm_mem_alloc_region(&mem, 0, size, &err) < 0)
		abort();
	if (snapshot_file_map_memory(f, &mem, &err) < 0 && !err.msg[0])
		abort();
	vm_mem_destroy(&mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot_file *f = NULL;
	struct error err = { 0 };
	char path[64];
	const void *section;
	size_t len;
	int fd;

	fd = memfd_create("snapshot", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (snapshot_file_open(path, &f, &err) < 0) {
		if (!err.msg[0] || f)
			abort();
		close(fd);
		return 0;
	}
	/* Every section found lies inside the state part. */
	if (snapshot_get(f, "virtio-mmio.0", &section, &len) == 0 &&
	    ((const uint8_t *)section < f->state ||
	     (const uint8_t *)section + len > f->state + f->header.state_size))
		abort();
	restore_transport(f);
	restore_fs(f);
	copy_memory(f);
	snapshot_file_close(f);
	close(fd);
	return 0;
}
