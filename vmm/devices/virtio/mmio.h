/*
 * The virtio-mmio transport, version 2 ("modern", virtio 1.2 §4.2): one 4 KiB register
 * window per device on the MMIO bus, one interrupt line. The register logic here knows
 * nothing of KVM: the host side (how an interrupt reaches the guest, how a QueueNotify write
 * reaches us without a vCPU exit, which thread watches a file descriptor) goes through
 * struct virtio_mmio_host, which mmio_kvm.c implements with KVM_IRQFD, KVM_IOEVENTFD and the
 * VM's event loop, and the unit tests implement with plain eventfds and callbacks.
 *
 * Interrupts: the transport sets InterruptStatus, then writes its irq eventfd; with irqfd
 * KVM turns that into an edge on the device's GSI. Notifications: each queue has an
 * eventfd; KVM signals it on a 4-byte QueueNotify write of the queue's index (ioeventfd with
 * datamatch, registered while the queue is ready), and a write that still reaches the bus
 * (no ioeventfd) signals it from the vCPU thread. Either way the queue is processed on the
 * thread that watches that eventfd, never on a vCPU thread.
 */
#ifndef STRATUS_VMM_VIRTIO_MMIO_H
#define STRATUS_VMM_VIRTIO_MMIO_H

#include <stdint.h>

#include "virtio.h"

#define VIRTIO_MMIO_MAGIC  0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x53545253 /* "SRTS", as the bytes read in memory */
#define VIRTIO_MMIO_SIZE   0x1000

struct virtio_mmio_host {
	void *opaque;
	/* KVM_IRQFD: writes to fd raise gsi (assign), or no longer do. */
	int (*irqfd)(void *opaque, int fd, unsigned int gsi, bool assign);
	/* KVM_IOEVENTFD: a 4-byte write of datamatch at addr signals fd instead of exiting. */
	int (*ioeventfd)(void *opaque, int fd, uint64_t addr, uint32_t datamatch, bool assign);
	/* Call fn(arg, events) when fd is readable, on the thread that runs loop (NULL: main). */
	int (*watch)(void *opaque, struct event_loop *loop, int fd, event_fn fn, void *arg);
	void (*unwatch)(void *opaque, struct event_loop *loop, int fd);
};

/*
 * A transport at base (GSI gsi) for dev, whose guest memory is mem. Takes ownership of dev
 * (freed by virtio_mmio_destroy, or here on failure). The caller then registers
 * virtio_mmio_access() for [base, base + VIRTIO_MMIO_SIZE) on the MMIO bus.
 */
int virtio_mmio_create(struct virtio_device *dev, const struct vm_mem *mem, uint64_t base,
		       unsigned int gsi, const struct virtio_mmio_host *host,
		       struct virtio_mmio **out, struct error *err);
void virtio_mmio_destroy(struct virtio_mmio *mmio);

/* The bus access function (bus.h); opaque is the struct virtio_mmio. */
void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* The eventfd the transport writes to interrupt the guest (tests read it). */
int virtio_mmio_irq_fd(const struct virtio_mmio *mmio);

/* The eventfd queue q's notifications signal (a device served in another process). */
int virtio_mmio_queue_fd(const struct virtio_mmio *mmio, unsigned int q);

/*
 * Keep InterruptStatus in word (a MAP_SHARED page) from now on, so that another process
 * serving the queues can set VIRTIO_MMIO_INT_VRING there before it writes the irq eventfd.
 * Whatever that process writes there is only ever shown to the guest.
 */
void virtio_mmio_share_isr(struct virtio_mmio *mmio, uint32_t *word);

uint64_t virtio_mmio_base(const struct virtio_mmio *mmio);
unsigned int virtio_mmio_gsi(const struct virtio_mmio *mmio);

/*
 * Snapshots: the transport's registers and queues (docs/snapshots.md), fixed-size and
 * little-endian. Restore refuses a state saved from another device (ID, features offered,
 * config size, queue count) and queue addresses outside guest memory; with the driver
 * ready it activates the device again and calls its restored op.
 */
struct virtio_mmio_queue_state {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size, last_avail_idx, used_idx, signalled_used;
	uint8_t ready, broken, pad[6];
};

struct virtio_mmio_state {
	uint32_t device_id, nr_queues, config_size, pad;
	uint64_t offered_features, driver_features;
	uint32_t status, device_features_sel, driver_features_sel, queue_sel;
	uint32_t interrupt_status, config_generation;
	struct virtio_mmio_queue_state queues[VIRTIO_MAX_QUEUES];
};

void virtio_mmio_save(struct virtio_mmio *mmio, struct virtio_mmio_state *out);
int virtio_mmio_restore(struct virtio_mmio *mmio, const struct virtio_mmio_state *in,
			struct error *err);

/*
 * Slots for virtio-mmio devices: slot i is the i-th 4 KiB window from first_base and the
 * GSI first_gsi + i. Fills *base and *gsi for the next free slot, or -ENOSPC.
 */
struct virtio_mmio_slots {
	uint64_t first_base;
	uint64_t end; /* no window may reach past this */
	unsigned int first_gsi, last_gsi;
	unsigned int used;
};

int virtio_mmio_slot_alloc(struct virtio_mmio_slots *slots, uint64_t *base, unsigned int *gsi);

/* Attach dev to a KVM VM (mmio_kvm.c): a slot, irqfd, the bus, the guest command line. */
struct vm;
struct vm_device_config;
int virtio_mmio_vm_attach(struct vm *vm, struct virtio_device *dev, struct error *err);

/* Make the device for one -device entry (its settings in spec). */
typedef int (*virtio_create_fn)(struct vm *vm, const struct vm_device_config *spec,
				struct virtio_device **out, struct error *err);
/* Optional: finish a device once it is attached (e.g. watch its sockets). */
typedef int (*virtio_attached_fn)(struct vm *vm, struct virtio_device *dev, struct error *err);

/*
 * What a device file's DEVICE_REGISTER init does: one device per -device entry of the type,
 * in command-line order, created, attached and marked claimed (vm.device_claimed).
 * Returns -ENODEV when the command line asks for none.
 */
int virtio_mmio_vm_attach_all(struct vm *vm, unsigned int type, virtio_create_fn create,
			      virtio_attached_fn attached, struct error *err);

#endif
