/*
 * The QMP hotplug commands (see hotplug.h): argument checking in QEMU's words, the table of
 * block nodes (blockdev-add's open images), and the calls into the device backend.
 *
 * The JSON is what Kata's govmm sends to StratoVirt:
 *   blockdev-add {"driver":"raw","node-name":N,"read-only":B,
 *                 "file":{"driver":"file","filename":PATH[,"aio":"native"]}
 *                 [,"cache":{"direct":B,"no-flush":B}]}
 *   device_add   {"driver":"virtio-blk-mmio","id":ID,"drive":N,"addr":"SLOT"}
 *   device_del   {"id":ID}        blockdev-del {"node-name":N}
 * Anything else in the arguments is refused by name, so a client learns what we ignore.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "hotplug.h"
#include "log.h"
#include "util.h"
#include "vm.h"

struct hotplug_node {
	char name[VM_DEVICE_ID_MAX];
	char *path;
	int fd; /* -1: free entry */
	bool readonly, direct;
};

struct hotplug {
	struct hotplug_backend backend;
	struct hotplug_node nodes[HOTPLUG_MAX_NODES];
};

int hotplug_create(const struct hotplug_backend *backend, struct hotplug **out)
{
	struct hotplug *hp = calloc(1, sizeof(*hp));
	unsigned int i;

	if (!hp)
		return -ENOMEM;
	hp->backend = *backend;
	for (i = 0; i < HOTPLUG_MAX_NODES; i++)
		hp->nodes[i].fd = -1;
	*out = hp;
	return 0;
}

static void hotplug_node_close(struct hotplug_node *node)
{
	if (node->fd >= 0)
		close(node->fd);
	node->fd = -1;
	free(node->path);
	node->path = NULL;
	node->name[0] = '\0';
}

void hotplug_destroy(struct hotplug *hp)
{
	unsigned int i;

	if (!hp)
		return;
	for (i = 0; i < HOTPLUG_MAX_NODES; i++)
		hotplug_node_close(&hp->nodes[i]);
	free(hp);
}

static struct hotplug_node *hotplug_find_node(struct hotplug *hp, const char *name)
{
	unsigned int i;

	for (i = 0; i < HOTPLUG_MAX_NODES; i++)
		if (hp->nodes[i].fd >= 0 && !strcmp(hp->nodes[i].name, name))
			return &hp->nodes[i];
	return NULL;
}

/* Every key of obj must be in allowed (NULL-terminated). */
static int hotplug_check_keys(yajl_val obj, const char *const *allowed, const char *where,
			      struct error *err)
{
	size_t i, j;

	if (!YAJL_IS_OBJECT(obj))
		return error_set(err, -EINVAL, "Parameter '%s' expects an object", where);
	for (i = 0; i < obj->u.object.len; i++) {
		const char *key = obj->u.object.keys[i];

		for (j = 0; allowed[j] && strcmp(allowed[j], key); j++)
			;
		if (!allowed[j])
			return error_set(err, -EINVAL, "Parameter '%s%s%.64s' is unexpected",
					 where[0] ? where : "", where[0] ? "." : "", key);
	}
	return 0;
}

static yajl_val hotplug_get(yajl_val obj, const char *key)
{
	const char *path[] = { key, NULL };

	return obj ? yajl_tree_get(obj, path, yajl_t_any) : NULL;
}

/* A string member (of "where" if nested): required (missing is an error) or optional. */
static int hotplug_string(yajl_val obj, const char *where, const char *key, bool required,
			  const char **out, struct error *err)
{
	yajl_val v = hotplug_get(obj, key);
	const char *dot = where[0] ? "." : "";

	*out = NULL;
	if (!v)
		return required ? error_set(err, -EINVAL, "Parameter '%s%s%s' is missing", where,
					    dot, key)
				: 0;
	if (!YAJL_IS_STRING(v))
		return error_set(err, -EINVAL, "Parameter '%s%s%s' expects a string", where, dot,
				 key);
	*out = v->u.string;
	return 0;
}

static int hotplug_bool(yajl_val obj, const char *key, bool *out, struct error *err)
{
	yajl_val v = hotplug_get(obj, key);

	if (!v)
		return 0;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return error_set(err, -EINVAL, "Parameter '%s' expects a boolean", key);
	*out = YAJL_IS_TRUE(v);
	return 0;
}

/* Node and device names: what -device id= accepts (letters, digits, '_', '.', '-'). */
static int hotplug_check_id(const char *key, const char *value, struct error *err)
{
	size_t len = strlen(value);

	if (len == 0 || len >= VM_DEVICE_ID_MAX ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyz"
			  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789_.-") != len)
		return error_set(err, -EINVAL,
				 "Parameter '%s' expects 1 to %d letters, digits, '_', '.' or '-'",
				 key, VM_DEVICE_ID_MAX - 1);
	return 0;
}

/* The image: "file":{"driver":"file"|"host_device","filename":PATH[,"aio":...]}. */
static int hotplug_file_arg(yajl_val args, const char **path, struct error *err)
{
	static const char *const file_keys[] = { "driver", "filename", "aio", "locking", NULL };
	yajl_val file = hotplug_get(args, "file");
	const char *driver;

	if (!file)
		return error_set(err, -EINVAL, "Parameter 'file' is missing");
	if (hotplug_check_keys(file, file_keys, "file", err) < 0 ||
	    hotplug_string(file, "file", "driver", true, &driver, err) < 0 ||
	    hotplug_string(file, "file", "filename", true, path, err) < 0)
		return -EINVAL;
	if (strcmp(driver, "file") && strcmp(driver, "host_device"))
		return error_set(err, -EINVAL,
				 "Parameter 'file.driver': '%.64s' is not supported (file or "
				 "host_device)",
				 driver);
	if (!(*path)[0])
		return error_set(err, -EINVAL, "Parameter 'file.filename' is empty");
	return 0;
}

static int hotplug_open(struct hotplug *hp, struct hotplug_node *node, const char *path,
			struct error *err)
{
	int flags =
		(node->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (node->direct ? O_DIRECT : 0);
	int fd = hp->backend.open_image ? hp->backend.open_image(hp->backend.opaque, path, flags)
					: open(path, flags);

	if (fd < 0)
		return error_set_errno(err, -errno, "Could not open '%s'", path);
	/* As for -drive: two writers on one image would corrupt it. */
	if (flock(fd, (node->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		int r = -errno;

		close(fd);
		return error_set_errno(err, r, "'%s' is in use by another process", path);
	}
	node->path = strdup(path);
	if (!node->path) {
		close(fd);
		return error_set(err, -ENOMEM, "out of memory");
	}
	node->fd = fd;
	return 0;
}

static int hotplug_blockdev_add(struct hotplug *hp, yajl_val args, struct error *err)
{
	static const char *const keys[] = { "driver",  "node-name",	 "read-only",
					    "file",    "cache",		 "aio",
					    "discard", "auto-read-only", NULL };
	static const char *const cache_keys[] = { "direct", "no-flush", NULL };
	struct hotplug_node node = { .fd = -1 }, *slot = NULL;
	const char *name = NULL, *driver = NULL, *path = NULL;
	yajl_val cache = hotplug_get(args, "cache");
	unsigned int i;
	int r;

	if (hotplug_check_keys(args, keys, "", err) < 0 ||
	    hotplug_string(args, "", "node-name", true, &name, err) < 0 ||
	    hotplug_check_id("node-name", name, err) < 0 ||
	    hotplug_string(args, "", "driver", false, &driver, err) < 0 ||
	    hotplug_bool(args, "read-only", &node.readonly, err) < 0)
		return -EINVAL;
	if (driver && strcmp(driver, "raw"))
		return error_set(err, -EINVAL,
				 "Parameter 'driver': '%.64s' is not supported (raw images only)",
				 driver);
	if (cache && (hotplug_check_keys(cache, cache_keys, "cache", err) < 0 ||
		      hotplug_bool(cache, "direct", &node.direct, err) < 0))
		return -EINVAL;
	if (hotplug_file_arg(args, &path, err) < 0)
		return -EINVAL;
	if (hotplug_find_node(hp, name))
		return error_set(err, -EEXIST, "Duplicate nodes with node-name='%s'", name);
	for (i = 0; i < HOTPLUG_MAX_NODES && !slot; i++)
		if (hp->nodes[i].fd < 0)
			slot = &hp->nodes[i];
	if (!slot)
		return error_set(err, -ENOSPC, "too many block nodes (at most %d)",
				 HOTPLUG_MAX_NODES);
	r = hotplug_open(hp, &node, path, err);
	if (r < 0)
		return r;
	snprintf(node.name, sizeof(node.name), "%s", name);
	*slot = node;
	log_info("blockdev-add: node '%s' is %s%s%s", name, path,
		 node.readonly ? " (read-only)" : "", node.direct ? " (O_DIRECT)" : "");
	return 0;
}

static int hotplug_blockdev_del(struct hotplug *hp, yajl_val args, struct error *err)
{
	static const char *const keys[] = { "node-name", NULL };
	struct hotplug_node *node;
	const char *name;

	if (hotplug_check_keys(args, keys, "", err) < 0 ||
	    hotplug_string(args, "", "node-name", true, &name, err) < 0)
		return -EINVAL;
	node = hotplug_find_node(hp, name);
	if (!node)
		return error_set(err, -ENODEV, "Failed to find node with node-name='%.64s'", name);
	if (hp->backend.node_in_use(hp->backend.opaque, name))
		return error_set(err, -EBUSY,
				 "Node '%s' is in use by a device (device_del it first)", name);
	log_info("blockdev-del: node '%s' (%s) closed", name, node->path);
	hotplug_node_close(node);
	return 0;
}

/* addr: Kata sends the slot as a string ("0", "1"); a number or "0x1" work too. */
static int hotplug_addr(yajl_val args, int *slot, struct error *err)
{
	yajl_val v = hotplug_get(args, "addr");
	unsigned long value;
	char *end;

	*slot = -1;
	if (!v)
		return 0;
	if (YAJL_IS_INTEGER(v)) {
		if (YAJL_GET_INTEGER(v) < 0 || YAJL_GET_INTEGER(v) >= VM_MAX_DEVICES)
			goto bad;
		*slot = (int)YAJL_GET_INTEGER(v);
		return 0;
	}
	if (!YAJL_IS_STRING(v) || !v->u.string[0] || v->u.string[0] == '-')
		goto bad;
	errno = 0;
	value = strtoul(v->u.string, &end, 0);
	if (errno || *end || value >= VM_MAX_DEVICES)
		goto bad;
	*slot = (int)value;
	return 0;
bad:
	return error_set(err, -EINVAL, "Parameter 'addr' expects a slot number from 0 to %d",
			 VM_MAX_DEVICES - 1);
}

static int hotplug_device_add(struct hotplug *hp, yajl_val args, struct error *err)
{
	static const char *const keys[] = { "driver", "id",	  "drive",	"addr",
					    "bus",    "share-rw", "num-queues", NULL };
	struct blk_hotplug_request req = { 0 };
	const char *driver, *drive;
	struct hotplug_node *node;
	int r;

	if (hotplug_check_keys(args, keys, "", err) < 0 ||
	    hotplug_string(args, "", "driver", true, &driver, err) < 0 ||
	    hotplug_string(args, "", "id", true, &req.id, err) < 0 ||
	    hotplug_check_id("id", req.id, err) < 0 ||
	    hotplug_string(args, "", "drive", true, &drive, err) < 0 ||
	    hotplug_addr(args, &req.slot, err) < 0)
		return -EINVAL;
	if (strcmp(driver, "virtio-blk-mmio") && strcmp(driver, "virtio-blk-device"))
		return error_set(err, -ENOTSUP,
				 "Parameter 'driver': '%.64s' cannot be hot-plugged here "
				 "(virtio-blk-mmio only)",
				 driver);
	node = hotplug_find_node(hp, drive);
	if (!node)
		return error_set(err, -ENODEV,
				 "Parameter 'drive': no block node '%.64s' "
				 "(blockdev-add it first)",
				 drive);
	if (hp->backend.node_in_use(hp->backend.opaque, drive))
		return error_set(err, -EBUSY, "Parameter 'drive': node '%s' is already in use",
				 drive);
	req.node = node->name;
	req.path = node->path;
	req.fd = node->fd;
	req.readonly = node->readonly;
	req.direct = node->direct;
	r = hp->backend.attach(hp->backend.opaque, &req, err);
	return r < 0 ? r : 0;
}

static int hotplug_device_del(struct hotplug *hp, yajl_val args, struct error *err)
{
	static const char *const keys[] = { "id", NULL };
	char node[VM_DEVICE_ID_MAX];
	const char *id;

	if (hotplug_check_keys(args, keys, "", err) < 0 ||
	    hotplug_string(args, "", "id", true, &id, err) < 0)
		return -EINVAL;
	return hp->backend.detach(hp->backend.opaque, id, node, sizeof(node), err);
}

int hotplug_execute(struct hotplug *hp, const char *command, struct yajl_val_s *args,
		    struct error *err)
{
	static const struct {
		const char *name, *first; /* the first required parameter */
		int (*fn)(struct hotplug *hp, yajl_val args, struct error *err);
	} commands[] = {
		{ "blockdev-add", "node-name", hotplug_blockdev_add },
		{ "blockdev-del", "node-name", hotplug_blockdev_del },
		{ "device_add", "driver", hotplug_device_add },
		{ "device_del", "id", hotplug_device_del },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, command))
			continue;
		if (!args)
			return error_set(err, -EINVAL, "Parameter '%s' is missing",
					 commands[i].first);
		return commands[i].fn(hp, args, err);
	}
	return error_set(err, -EINVAL, "%s: not a hotplug command", command);
}

static int hotplug_vm_attach(void *opaque, const struct blk_hotplug_request *req, struct error *err)
{
	return virtio_blk_hotplug_attach(opaque, req, err);
}

static int hotplug_vm_detach(void *opaque, const char *id, char *node, size_t node_size,
			     struct error *err)
{
	return virtio_blk_hotplug_detach(opaque, id, node, node_size, err);
}

static bool hotplug_vm_node_in_use(void *opaque, const char *node)
{
	return virtio_blk_hotplug_node_in_use(opaque, node);
}

void hotplug_vm_backend(struct vm *vm, struct hotplug_backend *out)
{
	*out = (struct hotplug_backend){
		.opaque = vm,
		.attach = hotplug_vm_attach,
		.detach = hotplug_vm_detach,
		.node_in_use = hotplug_vm_node_in_use,
	};
}
