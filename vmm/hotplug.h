/*
 * Block device hotplug over QMP, as Kata's StratoVirt driver does it (docs/vmm.md):
 * blockdev-add opens an image as a named node, device_add puts a node into one of the
 * virtio-blk slots made at boot (-device virtio-blk-device,id=NAME without a drive),
 * device_del empties the slot again, blockdev-del closes the node.
 *
 * hotplug.c is the QMP side (arguments, the node table) with the device behind struct
 * hotplug_backend, so unit tests drive it without a VM; blk.c implements the backend on a
 * running VM (virtio_blk_hotplug_*). Everything runs on the main event loop.
 */
#ifndef STRATUS_VMM_HOTPLUG_H
#define STRATUS_VMM_HOTPLUG_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define HOTPLUG_MAX_NODES 16

struct blk_hotplug_request {
	int slot;	  /* device_add's addr, -1: the first free slot */
	const char *id;	  /* device_add's id */
	const char *node; /* blockdev-add's node-name */
	const char *path;
	int fd; /* the node's open image (the node keeps it) */
	bool readonly, direct;
};

/* blk.c, on a VM: attach returns the slot used, or a negative errno with err set. */
struct vm;
int virtio_blk_hotplug_attach(struct vm *vm, const struct blk_hotplug_request *req,
			      struct error *err);
/* Empties the slot holding device id; its node's name goes to node. */
int virtio_blk_hotplug_detach(struct vm *vm, const char *id, char *node, size_t node_size,
			      struct error *err);
bool virtio_blk_hotplug_node_in_use(struct vm *vm, const char *node);

struct hotplug_backend {
	void *opaque;
	int (*attach)(void *opaque, const struct blk_hotplug_request *req, struct error *err);
	int (*detach)(void *opaque, const char *id, char *node, size_t node_size,
		      struct error *err);
	bool (*node_in_use)(void *opaque, const char *node);
	/* Optional: how blockdev-add opens an image (NULL: open(2); the fuzzer fakes it). */
	int (*open_image)(void *opaque, const char *path, int flags);
};

struct hotplug;
struct yajl_val_s;

int hotplug_create(const struct hotplug_backend *backend, struct hotplug **out);
/* Closes every node's image. */
void hotplug_destroy(struct hotplug *hp);

/*
 * Run "blockdev-add", "blockdev-del", "device_add" or "device_del" with its QMP arguments
 * (NULL: none). 0, or a negative errno with the message for the client in err.
 */
int hotplug_execute(struct hotplug *hp, const char *command, struct yajl_val_s *args,
		    struct error *err);

/* The VM side of the backend (blk.c behind hotplug_backend), for qmp_server.c. */
void hotplug_vm_backend(struct vm *vm, struct hotplug_backend *out);

#endif
