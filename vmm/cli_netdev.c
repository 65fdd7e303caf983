/*
 * stratus-vmm's -netdev option, in StratoVirt's syntax, and its link to the virtio-net
 * devices (docs/vmm.md "virtio-net"):
 *   -netdev tap,id=NAME,ifname=TAP     the VMM opens (or creates) the tap TAP
 *   -netdev tap,id=NAME,fd=N           an open tap (or datagram socket) inherited as fd N
 *   -device virtio-net-device,netdev=NAME,...   (cli_device.c)
 * fds=N is taken as fd=N (one queue); queues=1 and vhost=off are accepted, as nothing else
 * is supported: more queues, vhost-net and other backends are refused by name. Each
 * -netdev serves exactly one device. Errors are one line naming the option and property.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int cli_netdev_fd(struct cli_netdev *nd, const char *item, const char *value,
			 struct error *err)
{
	char *end;
	long fd;

	errno = 0;
	fd = strtol(value, &end, 10);
	if (errno || end == value || *end || *value == '-' || *value == '+' || fd < 3 || fd > 65535)
		return error_set(err, -EINVAL,
				 "-netdev: '%s': a descriptor number from 3 to 65535 (one fd: "
				 "multiqueue is not supported)",
				 item);
	nd->fd_set = true;
	nd->fd = (int)fd;
	return 0;
}

static int cli_netdev_property(struct cli_netdev *nd, const char *item, const char *key,
			       const char *value, struct error *err)
{
	if (!strcmp(key, "id")) {
		size_t len = strlen(value);

		if (len == 0 || len >= sizeof(nd->id) ||
		    strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "0123456789_.-") != len)
			return error_set(err, -EINVAL,
					 "-netdev: '%s': an id is 1 to %zu letters, digits, '_', "
					 "'.' or '-'",
					 item, sizeof(nd->id) - 1);
		memcpy(nd->id, value, len + 1);
		return 0;
	}
	if (!strcmp(key, "ifname")) {
		size_t len = strlen(value);

		if (len == 0 || len >= sizeof(nd->ifname) || strchr(value, '/') ||
		    !strcmp(value, ".") || !strcmp(value, ".."))
			return error_set(err, -EINVAL,
					 "-netdev: '%s': an interface name is 1 to %zu characters, "
					 "no '/'",
					 item, sizeof(nd->ifname) - 1);
		memcpy(nd->ifname, value, len + 1);
		return 0;
	}
	if (!strcmp(key, "fd") || !strcmp(key, "fds"))
		return cli_netdev_fd(nd, item, value, err);
	if (!strcmp(key, "queues"))
		return strcmp(value, "1") ? error_set(err, -EINVAL,
						      "-netdev: '%s': only one queue pair is "
						      "supported",
						      item)
					  : 0;
	if (!strcmp(key, "vhost"))
		return strcmp(value, "off") && strcmp(value, "false")
			       ? error_set(err, -EINVAL,
					   "-netdev: '%s': vhost-net is not supported (the "
					   "device is served in the VMM)",
					   item)
			       : 0;
	return error_set(err, -EINVAL, "-netdev: tap: unknown property '%s'", item);
}

int cli_parse_netdev(const char *text, struct cli_options *opts, struct error *err)
{
	_cleanup_free_ char *copy = strdup(text);
	struct cli_netdev nd = { .fd = -1 };
	char *save = NULL, *type, *item;
	unsigned int i;

	if (!copy)
		return -ENOMEM;
	type = strtok_r(copy, ",", &save);
	if (!type || strcmp(type, "tap"))
		return error_set(err, -EINVAL, "-netdev: type '%s' is not supported (tap only)",
				 type ? type : "");
	while ((item = strtok_r(NULL, ",", &save))) {
		char *value = strchr(item, '=');
		_cleanup_free_ char *key = value ? strndup(item, value - item) : NULL;

		if (!value)
			return error_set(err, -EINVAL, "-netdev: '%s' is not key=value", item);
		if (!key)
			return -ENOMEM;
		if (cli_netdev_property(&nd, item, key, value + 1, err) < 0)
			return -EINVAL;
	}
	if (!nd.id[0])
		return error_set(err, -EINVAL, "-netdev: '%s' needs id=NAME", text);
	if (!nd.ifname[0] == !nd.fd_set)
		return error_set(err, -EINVAL, "-netdev: '%s' needs one of ifname=TAP and fd=N",
				 text);
	for (i = 0; i < opts->nr_netdevs; i++) {
		if (!strcmp(opts->netdevs[i].id, nd.id))
			return error_set(err, -EINVAL, "-netdev: id '%s' is used twice", nd.id);
		if (nd.fd_set && opts->netdevs[i].fd_set && opts->netdevs[i].fd == nd.fd)
			return error_set(err, -EINVAL, "-netdev: fd %d is used twice", nd.fd);
	}
	if (opts->nr_netdevs >= ARRAY_SIZE(opts->netdevs))
		return error_set(err, -EINVAL, "-netdev: at most %zu", ARRAY_SIZE(opts->netdevs));
	opts->netdevs[opts->nr_netdevs++] = nd;
	return 0;
}

static struct cli_netdev *cli_find_netdev(struct cli_options *opts, const char *id)
{
	unsigned int i;

	for (i = 0; i < opts->nr_netdevs; i++)
		if (!strcmp(opts->netdevs[i].id, id))
			return &opts->netdevs[i];
	return NULL;
}

int cli_resolve_netdevs(struct cli_options *opts, struct error *err)
{
	unsigned int i;

	for (i = 0; i < opts->vm.nr_devices; i++) {
		struct vm_device_config *spec = &opts->vm.devices[i];
		struct cli_netdev *nd;

		if (spec->type != VM_DEVICE_VIRTIO_NET)
			continue;
		nd = cli_find_netdev(opts, opts->device_drive[i]);
		if (!nd)
			return error_set(err, -EINVAL,
					 "-device: netdev '%s' is not defined by a -netdev",
					 opts->device_drive[i]);
		if (nd->used)
			return error_set(err, -EINVAL, "-device: netdev '%s' is used twice",
					 nd->id);
		nd->used = true;
		spec->net_fd_set = nd->fd_set;
		spec->net_fd = nd->fd;
		snprintf(spec->path, sizeof(spec->path), "%s", nd->ifname);
	}
	for (i = 0; i < opts->nr_netdevs; i++)
		if (!opts->netdevs[i].used)
			return error_set(err, -EINVAL, "-netdev: '%s' is not used by any -device",
					 opts->netdevs[i].id);
	return 0;
}
