/*
 * Device registration. Each device file declares itself with DEVICE_REGISTER(); vm_create()
 * walks the registry in level order, so the core never lists devices by hand and a new
 * device is one file plus its DEVICE_REGISTER line (kvmtool's init levels, in a linker
 * section). libvmm is linked whole-archive so no registration is dropped.
 */
#ifndef STRATUS_VMM_DEVICE_H
#define STRATUS_VMM_DEVICE_H

#include "error.h"

struct vm;
struct snapshot_writer;
struct snapshot_file;

enum device_level {
	DEVICE_LEVEL_PLATFORM, /* serial, i8042, exit port, boot timer */
	DEVICE_LEVEL_VIRTIO,
};

struct device_ops {
	const char *name;
	enum device_level level;
	/* Create the device for vm; returning -ENODEV means "not configured", not an error. */
	int (*init)(struct vm *vm, struct error *err);
	/* Release what init made; called in reverse order, also after a failed vm_create. */
	void (*exit)(struct vm *vm);
	/*
	 * Snapshots (optional, snapshot.h): save writes the device's state as sections named
	 * after it, with the VM paused; restore reads them back into the device init just
	 * made, before any vCPU runs. A device whose state lives only in its registers must
	 * have both, or a restored guest finds it reset under its feet.
	 */
	int (*save)(struct vm *vm, struct snapshot_writer *w, struct error *err);
	int (*restore)(struct vm *vm, const struct snapshot_file *f, struct error *err);
};

#define DEVICE_REGISTER(ops)                                     \
	static const struct device_ops *const device_entry_##ops \
		__attribute__((used, section("vmm_devices"), aligned(sizeof(void *)))) = &ops

/* Call every registered device's init at each level in turn; on failure unwind. */
int device_init_all(struct vm *vm, struct error *err);
void device_exit_all(struct vm *vm);

/* Every initialised device's save or restore hook, in init order; the first failure wins. */
int device_save_all(struct vm *vm, struct snapshot_writer *w, struct error *err);
int device_restore_all(struct vm *vm, const struct snapshot_file *f, struct error *err);

/* Per-VM device instance storage: a device stores its state under its ops pointer. */
int device_set_data(struct vm *vm, const struct device_ops *ops, void *data);
void *device_get_data(struct vm *vm, const struct device_ops *ops);

#endif
