/*
 * The virtio device model: what one virtio device (rng, blk, vsock, ...) implements and what
 * it may call. A device embeds struct virtio_device, fills in its ID, features, queues and
 * ops, and is handed to a transport (virtio-mmio, mmio.h), which owns it from then on: the
 * transport runs the register interface, the status machine and feature negotiation (virtio
 * 1.2 §2.1, §2.2, §3.1), sets up the queues and calls the device's ops. A device only ever
 * sees validated descriptor chains (virtq.h), never raw guest descriptors.
 *
 * Threads and locking: every op is called with the device lock held, from a vCPU thread
 * (config access, status changes) or from the thread that runs the device's queues
 * (queue_notify): the VMM's main event loop, or the device's own I/O thread if it sets
 * dev->loop to an event loop it runs there. The virtio_device_*() helpers below expect the
 * lock held too; code outside an op takes it with virtio_device_lock().
 */
#ifndef STRATUS_VMM_VIRTIO_H
#define STRATUS_VMM_VIRTIO_H

#include <pthread.h>
#include <stdint.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>

#include "../../error.h"
#include "../../event_loop.h"
#include "virtq.h"

#define VIRTIO_MAX_QUEUES 8

struct virtio_device;
struct virtio_mmio;

struct virtio_device_ops {
	/*
	 * Device-specific configuration space (§4.2.2: at 0x100 on virtio-mmio). offset + len
	 * <= config_size is checked by the transport. NULL: reads as zeros, writes dropped.
	 */
	void (*config_read)(struct virtio_device *dev, uint32_t offset, void *data, uint32_t len);
	void (*config_write)(struct virtio_device *dev, uint32_t offset, const void *data,
			     uint32_t len);
	/* DRIVER_OK: the queues the driver enabled are ready. < 0 fails the device. */
	int (*activate)(struct virtio_device *dev);
	/* The driver made buffers available on queue q (or a kick asked to look again). */
	void (*queue_notify)(struct virtio_device *dev, unsigned int q);
	/* The driver reset the device (status 0): drop in-flight state; queues are reset. */
	void (*reset)(struct virtio_device *dev);
	/* Free the device (it was allocated by its constructor); the transport calls it. */
	void (*destroy)(struct virtio_device *dev);
	/*
	 * Snapshots: the transport was restored from a snapshot with the driver ready (after
	 * activate). What cannot survive (vsock connections) is dropped and the driver told.
	 */
	void (*restored)(struct virtio_device *dev);
	/* queue_notify and destroy are required, the others optional. */
};

struct virtio_device {
	const char *name;   /* for logs: the -device id, or the type */
	uint32_t device_id; /* VIRTIO_ID_* (§5) */
	uint64_t features;  /* device-specific features offered; the transport adds its own */
	uint32_t config_size;
	unsigned int nr_queues;			    /* <= VIRTIO_MAX_QUEUES */
	uint16_t queue_max_size[VIRTIO_MAX_QUEUES]; /* QueueNumMax of each queue */
	const struct virtio_device_ops *ops;
	/* Where queue notifications are handled: NULL for the VMM's main loop. */
	struct event_loop *loop;
	/*
	 * Another process serves the queues (virtio-fs, fs_process.c): the transport makes the
	 * notification eventfds but watches none, and queue_notify is never called.
	 */
	bool queues_elsewhere;

	/* Set by the transport. */
	struct virtio_mmio *transport;
	struct virtq queues[VIRTIO_MAX_QUEUES];
	uint64_t driver_features; /* negotiated: valid once FEATURES_OK is set */
};

/* Feature bits the transport offers for every device (§6): the driver must take VERSION_1. */
#define VIRTIO_TRANSPORT_FEATURES                                               \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
	 (1ULL << VIRTIO_RING_F_EVENT_IDX))

static inline bool virtio_device_has_feature(const struct virtio_device *dev, unsigned int bit)
{
	return bit < 64 && ((dev->driver_features >> bit) & 1);
}

void virtio_device_lock(struct virtio_device *dev);
void virtio_device_unlock(struct virtio_device *dev);

/*
 * The device added used buffers to queue q: interrupt the driver unless it suppressed that
 * (§2.7.7). Call once after a batch of virtq_push_used(), and after a virtq_pop_chain()
 * failed: a queue that broke fails the device (virtio_device_fail).
 */
void virtio_device_notify_used(struct virtio_device *dev, unsigned int q);

/*
 * Look at queue q again soon, from its thread: a device that stops after a bounded batch
 * (so one busy guest cannot starve the loop) calls this to come back for the rest.
 */
void virtio_device_queue_kick(struct virtio_device *dev, unsigned int q);

/* The device changed its configuration space: new ConfigGeneration and an interrupt (§2.5). */
void virtio_device_config_changed(struct virtio_device *dev);

/*
 * The device cannot go on (a broken queue, a request it cannot make sense of): set
 * DEVICE_NEEDS_RESET and interrupt (§2.1.2); queues are not processed until the driver
 * resets the device. Logged once per reset cycle.
 */
void virtio_device_fail(struct virtio_device *dev, const char *fmt, ...) _printf_(2, 3);

/* Devices. */

/* virtio-rng (§5.4): one request queue of writable buffers filled from getrandom(). */
int virtio_rng_new(const char *name, struct virtio_device **out);

/*
 * virtio-blk (§5.2, blk.c): the raw image spec->path (readonly, direct, serial as given);
 * a failure to open or lock it is explained in err.
 */
struct vm_device_config;
int virtio_blk_new(const struct vm_device_config *spec, struct virtio_device **out,
		   struct error *err);

/*
 * virtio-fs (§5.11, fs.c): the share spec->path under spec->fs_tag, served in-process by
 * the FUSE server (fuse.h), with no I/O thread (the caller runs the queues). An empty
 * spec->path makes a slot: the tag and no share, every request answered ENODEV.
 */
int virtio_fs_new(const struct vm_device_config *spec, struct virtio_device **out,
		  struct error *err);

/*
 * virtio-fs in snapshots (fs.c, docs/snapshots.md "virtio-fs"): one "virtio-fs.N" section
 * per device, in command-line order, holding what a restore must find at that position.
 * The FUSE session is not saved: a share the guest has used is refused at save.
 */
#define VIRTIO_FS_STATE_SLOT (1u << 0) /* saved as a slot (no share behind the tag) */
#define VIRTIO_FS_STATE_USED (1u << 1) /* the guest queued requests since its last reset */
struct virtio_fs_state {
	char tag[40]; /* the configuration space's tag[36], NUL-padded */
	uint32_t flags;
	uint32_t reserved; /* 0 */
};

/*
 * Save dev (a virtio-fs device, its lock not held). Refused, with the device named: a share
 * the guest has queued requests on since the driver last reset it (its FUSE session, node
 * ids and handles would be unknown to the clone's server), or whose process is gone.
 */
int virtio_fs_save(struct virtio_device *dev, struct virtio_fs_state *out, struct error *err);

/*
 * Restore onto dev, made from this VM's configuration: refused if the tag differs (the
 * guest read it at probe) or a slot the guest used is given a share. path names the
 * snapshot in messages.
 */
int virtio_fs_check_restore(struct virtio_device *dev, const struct virtio_fs_state *in,
			    const char *path, struct error *err);

#endif
