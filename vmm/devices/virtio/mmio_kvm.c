/*
 * virtio-mmio devices on a KVM VM: the host side of the transport (struct
 * virtio_mmio_host) done with KVM_IRQFD, KVM_IOEVENTFD and the VM's event loop, the slot
 * allocator over the window and GSIs layout.h reserves, and virtio_mmio_vm_attach(), which a
 * device file calls from its DEVICE_REGISTER init. Each attached device is announced to the
 * guest as "virtio_mmio.device=4K@0x<base>:<gsi>" (Linux CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES;
 * there is no ACPI or device tree on the microVM).
 *
 * The per-VM state lives in the device registry under a platform-level entry, so it exists
 * before any virtio device and is torn down after all of them.
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include <linux/virtio_mmio.h>

#include "../../device.h"
#include "../../log.h"
#include "../../snapshot.h"
#include "../../vm.h"
#include "layout.h"
#include "mmio.h"

#define VIRTIO_MMIO_MAX_DEVICES (X86_IRQ_MAX - X86_VIRTIO_IRQ_BASE + 1)

struct virtio_mmio_vm {
	struct vm *vm;
	struct virtio_mmio_slots slots;
	struct virtio_mmio *devices[VIRTIO_MMIO_MAX_DEVICES];
	unsigned int nr_devices;
};

static int kvm_irqfd(void *opaque, int fd, unsigned int gsi, bool assign)
{
	struct vm *vm = opaque;
	struct kvm_irqfd irqfd = {
		.fd = fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (!assign && vm->destroying)
		return 0; /* released with the VM fd (struct vm, destroying) */
	return ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

static int kvm_ioeventfd(void *opaque, int fd, uint64_t addr, uint32_t datamatch, bool assign)
{
	struct vm *vm = opaque;
	struct kvm_ioeventfd ioeventfd = {
		.datamatch = datamatch,
		.addr = addr,
		.len = 4,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (!assign && vm->destroying)
		return 0; /* released with the VM fd (struct vm, destroying) */
	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioeventfd) < 0 ? -errno : 0;
}

static int loop_watch(void *opaque, struct event_loop *loop, int fd, event_fn fn, void *arg)
{
	struct vm *vm = opaque;

	return event_loop_add(loop ? loop : vm->loop, fd, EPOLLIN, fn, arg);
}

static void loop_unwatch(void *opaque, struct event_loop *loop, int fd)
{
	struct vm *vm = opaque;

	event_loop_remove(loop ? loop : vm->loop, fd);
}

static const struct device_ops virtio_mmio_platform;

int virtio_mmio_vm_attach(struct vm *vm, struct virtio_device *dev, struct error *err)
{
	struct virtio_mmio_vm *state = device_get_data(vm, &virtio_mmio_platform);
	const struct virtio_mmio_host host = {
		.opaque = vm,
		.irqfd = kvm_irqfd,
		.ioeventfd = kvm_ioeventfd,
		.watch = loop_watch,
		.unwatch = loop_unwatch,
	};
	struct virtio_mmio *mmio;
	unsigned int gsi;
	uint64_t base;
	int r;

	if (!state || virtio_mmio_slot_alloc(&state->slots, &base, &gsi) < 0) {
		r = error_set(err, -ENOSPC, "%s: no virtio-mmio slot left (at most %u devices)",
			      dev->name, (unsigned int)VIRTIO_MMIO_MAX_DEVICES);
		dev->ops->destroy(dev);
		return r;
	}
	r = virtio_mmio_create(dev, &vm->mem, base, gsi, &host, &mmio, err);
	if (r < 0)
		return r;
	state->devices[state->nr_devices++] = mmio;
	r = bus_register(&vm->mmio_bus, base, VIRTIO_MMIO_SIZE, virtio_mmio_access, mmio,
			 dev->name);
	if (r < 0)
		return error_set_errno(err, r, "%s: MMIO 0x%llx", dev->name,
				       (unsigned long long)base);
	log_debug("%s: virtio-mmio at 0x%llx, GSI %u", dev->name, (unsigned long long)base, gsi);
	return vm_cmdline_append(vm, "virtio_mmio.device=4K@0x%llx:%u", (unsigned long long)base,
				 gsi);
}

static int virtio_mmio_platform_init(struct vm *vm, struct error *err)
{
	struct virtio_mmio_vm *state = calloc(1, sizeof(*state));
	int r;

	if (!state)
		return error_set(err, -ENOMEM, "virtio-mmio: out of memory");
	state->vm = vm;
	state->slots = (struct virtio_mmio_slots){
		.first_base = X86_VIRTIO_MMIO_GPA,
		.end = X86_IOAPIC_GPA,
		.first_gsi = X86_VIRTIO_IRQ_BASE,
		.last_gsi = X86_IRQ_MAX,
	};
	r = device_set_data(vm, &virtio_mmio_platform, state);
	if (r < 0)
		free(state);
	return r;
}

static void virtio_mmio_platform_exit(struct vm *vm)
{
	struct virtio_mmio_vm *state = device_get_data(vm, &virtio_mmio_platform);
	unsigned int i;

	if (!state)
		return;
	for (i = state->nr_devices; i-- > 0;) {
		bus_unregister(&vm->mmio_bus, virtio_mmio_base(state->devices[i]));
		virtio_mmio_destroy(state->devices[i]);
	}
	free(state);
}

/* Snapshots: one section per transport, "virtio-mmio.N" in slot order. */
static int virtio_mmio_platform_save(struct vm *vm, struct snapshot_writer *w, struct error *err)
{
	struct virtio_mmio_vm *state = device_get_data(vm, &virtio_mmio_platform);
	struct virtio_mmio_state saved;
	char name[SNAPSHOT_SECTION_NAME];
	unsigned int i;

	for (i = 0; i < state->nr_devices; i++) {
		/* virtio-fs saves what it needs itself and refuses a share in use (fs.c). */
		virtio_mmio_save(state->devices[i], &saved);
		snprintf(name, sizeof(name), "virtio-mmio.%u", i);
		if (snapshot_put(w, name, &saved, sizeof(saved)) < 0)
			return error_set(err, w->error, "virtio-mmio: cannot save");
	}
	return 0;
}

static int virtio_mmio_platform_restore(struct vm *vm, const struct snapshot_file *f,
					struct error *err)
{
	struct virtio_mmio_vm *state = device_get_data(vm, &virtio_mmio_platform);
	struct virtio_mmio_state saved;
	char name[SNAPSHOT_SECTION_NAME];
	const void *extra;
	unsigned int i;
	size_t len;
	int r;

	for (i = 0; i < state->nr_devices; i++) {
		snprintf(name, sizeof(name), "virtio-mmio.%u", i);
		r = snapshot_get_exact(f, name, &saved, sizeof(saved), err);
		if (r == 0)
			r = virtio_mmio_restore(state->devices[i], &saved, err);
		if (r < 0)
			return r;
	}
	snprintf(name, sizeof(name), "virtio-mmio.%u", i);
	if (snapshot_get(f, name, &extra, &len) == 0)
		return error_set(err, -EINVAL, "%s: the snapshot has more virtio devices", f->path);
	return 0;
}

static const struct device_ops virtio_mmio_platform = {
	.name = "virtio-mmio",
	.level = DEVICE_LEVEL_PLATFORM,
	.init = virtio_mmio_platform_init,
	.exit = virtio_mmio_platform_exit,
	.save = virtio_mmio_platform_save,
	.restore = virtio_mmio_platform_restore,
};
DEVICE_REGISTER(virtio_mmio_platform);

int virtio_mmio_vm_attach_all(struct vm *vm, unsigned int type, virtio_create_fn create,
			      virtio_attached_fn attached, struct error *err)
{
	unsigned int i, found = 0;

	for (i = 0; i < vm->config.nr_devices; i++) {
		const struct vm_device_config *spec = &vm->config.devices[i];
		struct virtio_device *dev;
		int r;

		if (spec->type != type)
			continue;
		r = create(vm, spec, &dev, err);
		if (r < 0)
			return r;
		r = virtio_mmio_vm_attach(vm, dev, err);
		if (r < 0)
			return r;
		vm->device_claimed[i] = true;
		if (attached) {
			r = attached(vm, dev, err);
			if (r < 0)
				return r;
		}
		found++;
	}
	return found ? 0 : -ENODEV;
}
