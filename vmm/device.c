/*
 * The device registry (see device.h): walks the "vmm_devices" linker section.
 */
#include <string.h>

#include "device.h"
#include "log.h"
#include "vm.h"

extern const struct device_ops *const __start_vmm_devices[];
extern const struct device_ops *const __stop_vmm_devices[];

struct device_data {
	const struct device_ops *ops;
	void *data;
	bool initialised;
	struct device_data *next;
};

static struct device_data *device_data_find(struct vm *vm, const struct device_ops *ops)
{
	struct device_data *d;

	for (d = vm->devices; d; d = d->next)
		if (d->ops == ops)
			return d;
	return NULL;
}

static struct device_data *device_data_get(struct vm *vm, const struct device_ops *ops)
{
	struct device_data *d = device_data_find(vm, ops);

	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->ops = ops;
	d->next = vm->devices;
	vm->devices = d;
	return d;
}

int device_set_data(struct vm *vm, const struct device_ops *ops, void *data)
{
	struct device_data *d = device_data_get(vm, ops);

	if (!d)
		return -ENOMEM;
	d->data = data;
	return 0;
}

void *device_get_data(struct vm *vm, const struct device_ops *ops)
{
	struct device_data *d = device_data_find(vm, ops);

	return d ? d->data : NULL;
}

int device_init_all(struct vm *vm, struct error *err)
{
	enum device_level level;
	const struct device_ops *const *p;

	for (level = DEVICE_LEVEL_PLATFORM; level <= DEVICE_LEVEL_VIRTIO; level++) {
		for (p = __start_vmm_devices; p < __stop_vmm_devices; p++) {
			struct device_data *d;
			int r;

			if ((*p)->level != level)
				continue;
			d = device_data_get(vm, *p);
			if (!d)
				return error_set(err, -ENOMEM, "%s: out of memory", (*p)->name);
			/* exit() must cope with a half-done init: it runs after a failure too. */
			d->initialised = true;
			r = (*p)->init(vm, err);
			if (r == -ENODEV) {
				if ((*p)->exit)
					(*p)->exit(vm);
				d->initialised = false;
				continue;
			}
			if (r < 0) {
				error_set(err, r, "%s: cannot initialise device", (*p)->name);
				return r;
			}
			log_debug("device %s ready", (*p)->name);
		}
	}
	return 0;
}

/*
 * Newest first: the list is built by prepending, so this is reverse init order. Every
 * exit() runs before any entry is freed, since an exit() looks up its own data.
 */
void device_exit_all(struct vm *vm)
{
	struct device_data *d;

	for (d = vm->devices; d; d = d->next)
		if (d->initialised && d->ops->exit)
			d->ops->exit(vm);
	while (vm->devices) {
		d = vm->devices;
		vm->devices = d->next;
		free(d);
	}
}

int device_save_all(struct vm *vm, struct snapshot_writer *w, struct error *err)
{
	const struct device_ops *const *p;

	for (p = __start_vmm_devices; p < __stop_vmm_devices; p++) {
		struct device_data *d = device_data_find(vm, *p);
		int r;

		if (!d || !d->initialised || !(*p)->save)
			continue;
		r = (*p)->save(vm, w, err);
		if (r < 0)
			return error_set(err, r, "%s: cannot save the device state", (*p)->name);
	}
	return 0;
}

/* Level order, as init ran: a platform device is restored before the virtio ones. */
int device_restore_all(struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	enum device_level level;
	const struct device_ops *const *p;

	for (level = DEVICE_LEVEL_PLATFORM; level <= DEVICE_LEVEL_VIRTIO; level++) {
		for (p = __start_vmm_devices; p < __stop_vmm_devices; p++) {
			struct device_data *d = device_data_find(vm, *p);
			int r;

			if ((*p)->level != level || !d || !d->initialised || !(*p)->restore)
				continue;
			r = (*p)->restore(vm, f, err);
			if (r < 0)
				return error_set(err, r, "%s: cannot restore the device state",
						 (*p)->name);
		}
	}
	return 0;
}
