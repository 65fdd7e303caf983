/*
 * stratus-vmm's -device and -drive options, in StratoVirt's syntax:
 *   -device virtio-rng-device[,id=NAME][,rng=OBJECT][,bytes_per_sec=N]
 *           (OBJECT: an -object rng-random; N: the rate limit, also the burst)
 *   -drive id=NAME,file=PATH[,readonly=on|off][,direct=on|off][,if=none][,format=raw]
 *   -device virtio-blk-device,drive=NAME[,id=NAME][,serial=TEXT]
 *   -device virtio-blk-device,id=NAME   (no drive: an empty slot for QMP hotplug)
 *   -device vhost-vsock-device,guest-cid=N,uds-path=PATH[,id=NAME]
 *   -device virtio-fs-device,tag=TAG,source=DIR[,id=NAME][,readonly=on|off]
 *           [,cache=auto|none|always]
 *   -device virtio-fs-device,tag=TAG[,id=NAME]   (no source: a slot, for VM templates)
 *   -device virtio-net-device,netdev=NAME[,id=NAME][,mac=MAC][,mtu=N]
 *           (NAME: a -netdev tap, cli_netdev.c; mtu=, or QEMU's host_mtu=, offers
 *           VIRTIO_NET_F_MTU)
 * vhost-vsock-device keeps StratoVirt's name, but the device is ours, in userspace, with a
 * Unix-socket backend (uds-path, as Firecracker names it), so no vhost module is needed.
 * Every problem is one line naming the option and the property.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"

#include "cli.h"

static const struct {
	const char *name;
	enum vm_device_type type;
} cli_device_types[] = {
	{ "virtio-rng-device", VM_DEVICE_VIRTIO_RNG },
	{ "virtio-blk-device", VM_DEVICE_VIRTIO_BLK },
	{ "vhost-vsock-device", VM_DEVICE_VIRTIO_VSOCK },
	{ "virtio-fs-device", VM_DEVICE_VIRTIO_FS },
	{ "virtio-net-device", VM_DEVICE_VIRTIO_NET },
};

/* Copy a property's value into a fixed buffer; too long or empty is an error. */
static int cli_copy_value(char *dst, size_t size, const char *option, const char *item,
			  const char *value, struct error *err)
{
	size_t len = strlen(value);

	if (len == 0 || len >= size)
		return error_set(err, -EINVAL, "%s: '%s': the value must be 1 to %zu characters",
				 option, item, size - 1);
	memcpy(dst, value, len + 1);
	return 0;
}

static int cli_copy_id(char *dst, const char *option, const char *item, const char *value,
		       struct error *err)
{
	size_t len = strlen(value);

	if (len == 0 || len >= VM_DEVICE_ID_MAX ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyz"
			  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789_.-") != len)
		return error_set(err, -EINVAL,
				 "%s: '%s': an id is 1 to %d letters, digits, '_', '.' or '-'",
				 option, item, VM_DEVICE_ID_MAX - 1);
	memcpy(dst, value, len + 1);
	return 0;
}

static int cli_on_off(const char *option, const char *item, const char *value, bool *out,
		      struct error *err)
{
	if (!strcmp(value, "on") || !strcmp(value, "true"))
		*out = true;
	else if (!strcmp(value, "off") || !strcmp(value, "false"))
		*out = false;
	else
		return error_set(err, -EINVAL, "%s: '%s' must be on or off", option, item);
	return 0;
}

/* One property of a virtio-fs device: tag=, source=, readonly=, cache=. */
static int cli_fs_property(struct vm_device_config *spec, const char *item, const char *key,
			   const char *value, struct error *err)
{
	if (!strcmp(key, "tag"))
		return cli_copy_value(spec->fs_tag, sizeof(spec->fs_tag), "-device", item, value,
				      err);
	if (!strcmp(key, "source"))
		return cli_copy_value(spec->path, sizeof(spec->path), "-device", item, value, err);
	if (!strcmp(key, "readonly"))
		return cli_on_off("-device", item, value, &spec->readonly, err);
	if (!strcmp(key, "cache")) {
		if (!strcmp(value, "auto"))
			spec->fs_cache = VM_FS_CACHE_AUTO;
		else if (!strcmp(value, "none"))
			spec->fs_cache = VM_FS_CACHE_NONE;
		else if (!strcmp(value, "always"))
			spec->fs_cache = VM_FS_CACHE_ALWAYS;
		else
			return error_set(err, -EINVAL,
					 "-device: '%s': cache must be auto, none or always", item);
		return 0;
	}
	return error_set(err, -EINVAL, "-device: virtio-fs-device: unknown property '%s'", item);
}

/* mac=52:54:00:12:34:56: six hex bytes, a unicast address. */
static int cli_parse_mac(const char *item, const char *value, uint8_t mac[6], struct error *err)
{
	unsigned int i;

	for (i = 0; i < 6; i++) {
		const char *p = value + 3 * i;

		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    p[2] != (i < 5 ? ':' : '\0'))
			return error_set(err, -EINVAL,
					 "-device: '%s': a MAC address is six hex bytes with ':' "
					 "(52:54:00:12:34:56)",
					 item);
		mac[i] = (uint8_t)strtoul((char[]){ p[0], p[1], '\0' }, NULL, 16);
	}
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return error_set(err, -EINVAL,
				 "-device: '%s': not a unicast address (the first byte must be "
				 "even, the address not all zeros)",
				 item);
	return 0;
}

/* One property of a virtio-net device: netdev= (into netdev), mac=, mtu= or host_mtu=. */
static int cli_net_property(struct vm_device_config *spec, char *netdev, const char *item,
			    const char *key, const char *value, struct error *err)
{
	char *end;

	if (!strcmp(key, "netdev"))
		return cli_copy_id(netdev, "-device", item, value, err);
	if (!strcmp(key, "mac")) {
		spec->mac_set = true;
		return cli_parse_mac(item, value, spec->mac, err);
	}
	if (!strcmp(key, "mtu") || !strcmp(key, "host_mtu")) {
		errno = 0;
		spec->mtu = (uint32_t)strtoul(value, &end, 10);
		if (errno || end == value || *end || !isdigit((unsigned char)*value) ||
		    strlen(value) > 5 || spec->mtu < VIRTIO_NET_MIN_MTU ||
		    spec->mtu > VIRTIO_NET_MAX_MTU)
			return error_set(err, -EINVAL, "-device: '%s': %s must be from %d to %d",
					 item, key, VIRTIO_NET_MIN_MTU, VIRTIO_NET_MAX_MTU);
		return 0;
	}
	return error_set(err, -EINVAL, "-device: virtio-net-device: unknown property '%s'", item);
}

/* One property of a virtio-blk or vsock device (id= is handled by the caller). */
static int cli_device_property(struct vm_device_config *spec, char *drive, const char *type,
			       const char *item, const char *key, const char *value,
			       struct error *err)
{
	char *end;

	if (spec->type == VM_DEVICE_VIRTIO_FS)
		return cli_fs_property(spec, item, key, value, err);
	if (spec->type == VM_DEVICE_VIRTIO_NET)
		return cli_net_property(spec, drive, item, key, value, err);
	if (spec->type == VM_DEVICE_VIRTIO_BLK && !strcmp(key, "drive"))
		return cli_copy_id(drive, "-device", item, value, err);
	if (spec->type == VM_DEVICE_VIRTIO_BLK && !strcmp(key, "serial"))
		return cli_copy_value(spec->serial, sizeof(spec->serial), "-device", item, value,
				      err);
	if (spec->type == VM_DEVICE_VIRTIO_VSOCK && !strcmp(key, "guest-cid")) {
		errno = 0;
		spec->guest_cid = strtoull(value, &end, 0);
		/* 0-2 are reserved (hypervisor, local, host), 0xffffffff is VMADDR_CID_ANY. */
		if (errno || end == value || *end || spec->guest_cid < 3 ||
		    spec->guest_cid >= 0xffffffffULL)
			return error_set(err, -EINVAL,
					 "-device: '%s': guest-cid must be from 3 to 4294967294",
					 item);
		return 0;
	}
	if (spec->type == VM_DEVICE_VIRTIO_RNG && !strcmp(key, "bytes_per_sec")) {
		errno = 0;
		spec->rng_bytes_per_sec = strtoull(value, &end, 10);
		if (errno || end == value || *end || *value == '-' ||
		    spec->rng_bytes_per_sec < VIRTIO_RNG_MIN_BYTES_PER_SEC ||
		    spec->rng_bytes_per_sec > VIRTIO_RNG_MAX_BYTES_PER_SEC)
			return error_set(err, -EINVAL,
					 "-device: '%s': bytes_per_sec must be from %llu to %llu",
					 item, VIRTIO_RNG_MIN_BYTES_PER_SEC,
					 VIRTIO_RNG_MAX_BYTES_PER_SEC);
		return 0;
	}
	if (spec->type == VM_DEVICE_VIRTIO_VSOCK && !strcmp(key, "uds-path"))
		/* The device also binds PATH_<port>: leave room for the suffix in sun_path. */
		return cli_copy_value(spec->path, 108 - 11, "-device", item, value, err);
	return error_set(err, -EINVAL, "-device: %s: unknown property '%s'", type, item);
}

static int cli_check_device(const struct vm_device_config *spec, const char *drive,
			    const char *type, struct error *err)
{
	/* virtio-blk without drive=: an empty slot for QMP hotplug (docs/vmm.md). */
	if (spec->type == VM_DEVICE_VIRTIO_NET && !drive[0])
		return error_set(err, -EINVAL,
				 "-device: %s needs netdev=NAME (a -netdev tap,id=NAME,...)", type);
	if (spec->type == VM_DEVICE_VIRTIO_FS && !spec->fs_tag[0])
		return error_set(err, -EINVAL, "-device: %s needs tag=TAG (what the guest mounts)",
				 type);
	/* virtio-fs without source=: a slot, a tag with no share behind it yet (a template). */
	if (spec->type == VM_DEVICE_VIRTIO_FS && spec->readonly && !spec->path[0])
		return error_set(err, -EINVAL,
				 "-device: %s: readonly= needs source=DIR (a slot shares nothing)",
				 type);
	if (spec->type == VM_DEVICE_VIRTIO_VSOCK && !spec->guest_cid)
		return error_set(err, -EINVAL, "-device: %s needs guest-cid=N", type);
	if (spec->type == VM_DEVICE_VIRTIO_VSOCK && !spec->path[0])
		return error_set(err, -EINVAL,
				 "-device: %s needs uds-path=PATH (the host side's Unix socket)",
				 type);
	return 0;
}

static int cli_device_type(const char *type, struct vm_device_config *spec, struct error *err)
{
	char known[256] = "";
	unsigned int i;

	for (i = 0; type && i < ARRAY_SIZE(cli_device_types); i++) {
		if (!strcmp(type, cli_device_types[i].name)) {
			spec->type = cli_device_types[i].type;
			return 0;
		}
	}
	for (i = 0; i < ARRAY_SIZE(cli_device_types); i++)
		snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
			 i ? ", " : "", cli_device_types[i].name);
	return error_set(err, -EINVAL, "-device: unknown device type '%s' (supported: %s)",
			 type ? type : "", known);
}

/* rng=NAME of virtio-rng-device: an -object rng-random given before (Kata's order). */
static int cli_find_rng_object(const struct cli_options *opts, const char *item, const char *value,
			       struct error *err)
{
	unsigned int i;

	for (i = 0; i < opts->nr_rng_objects; i++)
		if (!strcmp(opts->rng_objects[i], value))
			return 0;
	return error_set(err, -EINVAL, "-device: '%s': no -object rng-random,id=%s before it", item,
			 value);
}

int cli_parse_device(const char *text, struct cli_options *opts, struct error *err)
{
	_cleanup_free_ char *copy = strdup(text);
	struct vm_device_config spec = { 0 };
	char drive[VM_DEVICE_ID_MAX] = "";
	char *save = NULL, *type, *item;
	struct vm_config *vm = &opts->vm;
	unsigned int i;

	if (!copy)
		return -ENOMEM;
	type = strtok_r(copy, ",", &save);
	if (cli_device_type(type, &spec, err) < 0)
		return -EINVAL;
	while ((item = strtok_r(NULL, ",", &save))) {
		char *value = strchr(item, '=');
		_cleanup_free_ char *key = value ? strndup(item, value - item) : NULL;

		if (!value)
			return error_set(err, -EINVAL, "-device: %s: '%s' is not key=value", type,
					 item);
		if (!key)
			return -ENOMEM;
		value++;
		if (!strcmp(key, "id")) {
			if (cli_copy_id(spec.id, "-device", item, value, err) < 0)
				return -EINVAL;
			for (i = 0; i < vm->nr_devices; i++)
				if (!strcmp(vm->devices[i].id, spec.id))
					return error_set(err, -EINVAL,
							 "-device: id '%s' is used twice", spec.id);
		} else if (spec.type == VM_DEVICE_VIRTIO_RNG && !strcmp(key, "rng")) {
			if (cli_find_rng_object(opts, item, value, err) < 0)
				return -EINVAL;
		} else if (cli_device_property(&spec, drive, type, item, key, value, err) < 0) {
			return -EINVAL;
		}
	}
	if (cli_check_device(&spec, drive, type, err) < 0)
		return -EINVAL;
	if (vm->nr_devices >= VM_MAX_DEVICES)
		return error_set(err, -EINVAL, "-device: at most %d devices", VM_MAX_DEVICES);
	memcpy(opts->device_drive[vm->nr_devices], drive, sizeof(drive));
	vm->devices[vm->nr_devices++] = spec;
	return 0;
}

static int cli_drive_property(struct cli_drive *drive, const char *item, const char *key,
			      const char *value, struct error *err)
{
	if (!strcmp(key, "id"))
		return cli_copy_id(drive->id, "-drive", item, value, err);
	if (!strcmp(key, "file"))
		return cli_copy_value(drive->file, sizeof(drive->file), "-drive", item, value, err);
	if (!strcmp(key, "readonly"))
		return cli_on_off("-drive", item, value, &drive->readonly, err);
	if (!strcmp(key, "direct"))
		return cli_on_off("-drive", item, value, &drive->direct, err);
	if ((!strcmp(key, "if") && !strcmp(value, "none")) ||
	    (!strcmp(key, "format") && !strcmp(value, "raw")))
		return 0;
	return error_set(err, -EINVAL, "-drive: unknown or unsupported property '%s'", item);
}

int cli_parse_drive(const char *text, struct cli_options *opts, struct error *err)
{
	_cleanup_free_ char *copy = strdup(text);
	struct cli_drive drive = { 0 };
	char *save = NULL, *item;
	unsigned int i;

	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *value = strchr(item, '=');
		_cleanup_free_ char *key = value ? strndup(item, value - item) : NULL;

		if (!value)
			return error_set(err, -EINVAL, "-drive: '%s' is not key=value", item);
		if (!key)
			return -ENOMEM;
		if (cli_drive_property(&drive, item, key, value + 1, err) < 0)
			return -EINVAL;
	}
	if (!drive.id[0] || !drive.file[0])
		return error_set(err, -EINVAL, "-drive: '%s' needs id=NAME and file=PATH", text);
	for (i = 0; i < opts->nr_drives; i++)
		if (!strcmp(opts->drives[i].id, drive.id))
			return error_set(err, -EINVAL, "-drive: id '%s' is used twice", drive.id);
	if (opts->nr_drives >= VM_MAX_DEVICES)
		return error_set(err, -EINVAL, "-drive: at most %d drives", VM_MAX_DEVICES);
	opts->drives[opts->nr_drives++] = drive;
	return 0;
}

static struct cli_drive *cli_find_drive(struct cli_options *opts, const char *id)
{
	unsigned int i;

	for (i = 0; i < opts->nr_drives; i++)
		if (!strcmp(opts->drives[i].id, id))
			return &opts->drives[i];
	return NULL;
}

int cli_resolve_drives(struct cli_options *opts, struct error *err)
{
	unsigned int i;

	for (i = 0; i < opts->vm.nr_devices; i++) {
		struct vm_device_config *spec = &opts->vm.devices[i];
		struct cli_drive *drive;

		if (spec->type != VM_DEVICE_VIRTIO_BLK || !opts->device_drive[i][0])
			continue; /* no drive=: an empty hotplug slot */
		drive = cli_find_drive(opts, opts->device_drive[i]);
		if (!drive)
			return error_set(err, -EINVAL,
					 "-device: drive '%s' is not defined by a -drive",
					 opts->device_drive[i]);
		if (drive->used)
			return error_set(err, -EINVAL, "-device: drive '%s' is used twice",
					 drive->id);
		drive->used = true;
		memcpy(spec->path, drive->file, sizeof(spec->path));
		spec->readonly = drive->readonly;
		spec->direct = drive->direct;
		if (!spec->serial[0])
			memcpy(spec->serial, drive->id,
			       MIN(sizeof(spec->serial) - 1, strlen(drive->id)));
	}
	for (i = 0; i < opts->nr_drives; i++)
		if (!opts->drives[i].used)
			return error_set(err, -EINVAL, "-drive: '%s' is not used by any -device",
					 opts->drives[i].id);
	return 0;
}
