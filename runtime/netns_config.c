/*
 * The config.json side of container networking (netns.h, docs/networking.md): which entry
 * of linux.namespaces names a network namespace path, whether that path is one, and the
 * config the agent gets instead, where the path (a host path, meaningless in the guest) is
 * gone: with interfaces carried into the VM the entry goes too, so that the container runs in
 * the VM's own network namespace where its NICs are; with only lo the entry stays, without a
 * path, and the container gets a namespace of its own as any other (lo, nothing else).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/nsfs.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "netns.h"
#include "oci_json.h"

const char *netns_spec_path(const struct oci_spec *spec, size_t *index)
{
	for (size_t i = 0; i < spec->linux_.n_namespaces; i++) {
		const struct oci_namespace *ns = &spec->linux_.namespaces[i];

		if (ns->type == OCI_NS_NETWORK && ns->path && ns->path[0]) {
			*index = i;
			return ns->path;
		}
	}
	return NULL;
}

int netns_check(const char *path, size_t index, struct error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	int type;

	if (fd < 0)
		return error_set_errno(err, -errno, "linux.namespaces[%zu].path: %s", index, path);
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type != CLONE_NEWNET)
		return error_set(err, -EINVAL,
				 "linux.namespaces[%zu].path: %s: not a network namespace", index,
				 path);
	return 0;
}

/* In linux.namespaces: the network entry with a path dropped (drop), or its path removed. */
static void rewrite_network(yajl_val root, bool drop)
{
	const char *ns_path[] = { "linux", "namespaces", NULL };
	yajl_val ns = yajl_tree_get(root, ns_path, yajl_t_array);

	for (size_t i = 0; ns && i < ns->u.array.len; i++) {
		yajl_val entry = ns->u.array.values[i];
		yajl_val type = YAJL_IS_OBJECT(entry) ? oci_member(entry, "type") : NULL;

		if (!type || !YAJL_IS_STRING(type) || strcmp(type->u.string, "network") ||
		    !oci_member(entry, "path"))
			continue;
		if (drop) {
			yajl_tree_free(entry);
			memmove(&ns->u.array.values[i], &ns->u.array.values[i + 1],
				(ns->u.array.len - i - 1) * sizeof(yajl_val));
			ns->u.array.len--;
			i--;
			continue;
		}
		for (size_t k = 0; k < entry->u.object.len; k++) {
			if (strcmp(entry->u.object.keys[k], "path"))
				continue;
			free((char *)entry->u.object.keys[k]);
			yajl_tree_free(entry->u.object.values[k]);
			memmove(&entry->u.object.keys[k], &entry->u.object.keys[k + 1],
				(entry->u.object.len - k - 1) * sizeof(char *));
			memmove(&entry->u.object.values[k], &entry->u.object.values[k + 1],
				(entry->u.object.len - k - 1) * sizeof(yajl_val));
			entry->u.object.len--;
			k--;
		}
	}
}

static int edit_network(yajl_val root, void *ctx)
{
	rewrite_network(root, *(const bool *)ctx);
	return 0;
}

int netns_agent_config(const char *config, size_t len, bool drop, char **out, struct error *err)
{
	return oci_json_rewrite(config, len, edit_network, &drop, AGENT_MAX_OCI,
				"its network namespace", out, err);
}
