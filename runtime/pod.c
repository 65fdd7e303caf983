/*
 * The pure parts of pods (see pod.h): which part a container plays, and how a member's
 * config.json becomes its CREATE in the sandbox's VM: the rootfs and every bind mount's source
 * are paths below the pod share in the guest, and namespace paths (host paths) name the
 * sandbox's namespaces. Host lookups only (realpath, stat): no mount, no VM, unit-tested.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "oci_json.h"
#include "pod.h"
#include "rootfs.h"
#include "state.h"

static const char *annotation(const struct oci_spec *spec, const char *key)
{
	for (size_t i = 0; i < spec->annotations.n; i++)
		if (!strcmp(spec->annotations.kv[i].key, key))
			return spec->annotations.kv[i].value;
	return NULL;
}

int pod_role(const struct oci_spec *spec, const char *id, enum pod_role *role, const char **sandbox,
	     struct error *err)
{
	const char *type = annotation(spec, POD_TYPE_ANNOTATION);
	const char *sb = annotation(spec, POD_SANDBOX_ANNOTATION);
	struct error inner = { 0 };

	*role = POD_NONE;
	*sandbox = NULL;
	if (type && !strcmp(type, POD_TYPE_SANDBOX)) {
		*role = POD_SANDBOX;
		return 0;
	}
	if (!sb || !strcmp(sb, id))
		return 0;
	if (state_id_check(sb, &inner) < 0)
		return error_set(err, -EINVAL, "annotation %s: %s", POD_SANDBOX_ANNOTATION,
				 inner.msg);
	*role = POD_MEMBER;
	*sandbox = sb;
	return 0;
}

int pod_check_namespaces(const struct oci_spec *spec, enum pod_role role, struct error *err)
{
	if (role == POD_MEMBER)
		return 0;
	for (size_t i = 0; i < spec->linux_.n_namespaces; i++) {
		const struct oci_namespace *ns = &spec->linux_.namespaces[i];

		/* Its interfaces are carried into the VM instead (netns.h, docs/networking.md). */
		if (ns->path && ns->type != OCI_NS_NETWORK)
			return error_set(
				err, -EOPNOTSUPP,
				"linux.namespaces[%zu].path: %s: the host's %s namespace "
				"cannot be joined: the container runs in a VM of its own (only "
				"a pod member joins its sandbox's namespaces)",
				i, ns->path, oci_namespace_name(ns->type));
	}
	return 0;
}

#define own_printf(p, ...) rootfs_own_printf(&(p)->owned, &(p)->n_owned, __VA_ARGS__)

/* mounts[i], a bind: its source resolved on the host, a directory or a regular file. */
static int plan_bind(const struct oci_mount *m, size_t i, const char *bundle,
		     struct pod_member_plan *p, struct error *err)
{
	struct pod_bind *b = &p->binds[p->n_binds];
	int r = rootfs_bind_source(m, i, bundle, &b->host, &b->dir, err);

	if (r < 0)
		return r;
	b->index = i;
	b->ro = rootfs_mount_is_ro(m);
	p->n_binds++;
	return 0;
}

/* CREATE's mounts in the config's order. */
static int plan_mounts(const struct oci_spec *spec, const char *id, const char *guest_dir,
		       struct pod_member_plan *p)
{
	size_t b = 0;

	p->mounts = calloc(spec->n_mounts + 1, sizeof(*p->mounts));
	if (!p->mounts)
		return -ENOMEM;
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct oci_mount *m = &spec->mounts[i];
		struct agent_mount *out = &p->mounts[p->n_mounts++];

		if (b < p->n_binds && p->binds[b].index == i) {
			out->source = own_printf(p, "%s/%s/m%zu", guest_dir, id, i);
			out->target = m->destination;
			out->fstype = "bind";
			out->options.v = m->options.v;
			out->options.n = (uint32_t)m->options.n;
			b++;
			if (!out->source)
				return -ENOMEM;
		} else if (rootfs_mount_is_bind(m)) {
			rootfs_shm_mount(m, out);
		} else {
			out->source = m->source ? m->source : (m->type ? m->type : "none");
			out->target = m->destination;
			out->fstype = m->type ? m->type : "";
			out->options.v = m->options.v;
			out->options.n = (uint32_t)m->options.n;
		}
	}
	return 0;
}

int pod_member_plan(const struct oci_spec *spec, const char *bundle, struct pod_member_plan *out,
		    struct error *err)
{
	int r = 0;

	memset(out, 0, sizeof(*out));
	out->root_readonly = spec->root_readonly;
	out->binds = calloc(spec->n_mounts + 1, sizeof(*out->binds));
	if (!out->binds)
		return error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; r == 0 && i < spec->n_mounts; i++) {
		const struct oci_mount *m = &spec->mounts[i];

		/* /dev/shm: a guest tmpfs, as for any container (rootfs.c) */
		if (rootfs_mount_is_bind(m) && strcmp(m->destination, "/dev/shm"))
			r = plan_bind(m, i, bundle, out, err);
	}
	if (r == 0 && spec->n_mounts > AGENT_MAX_MOUNTS)
		r = error_set(err, -E2BIG, "mounts: %zu, the agent takes at most %u",
			      spec->n_mounts, AGENT_MAX_MOUNTS);
	if (r < 0)
		pod_member_plan_destroy(out);
	return r;
}

int pod_member_plan_guest(const struct oci_spec *spec, const char *id, const char *guest_dir,
			  struct pod_member_plan *plan, struct error *err)
{
	plan->rootfs_source = own_printf(plan, "%s/%s/%s", guest_dir, id, POD_MEMBER_ROOTFS);
	if (!plan->rootfs_source || plan_mounts(spec, id, guest_dir, plan) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	if (strlen(plan->rootfs_source) + 16 > AGENT_MAX_PATH)
		return error_set(err, -ENAMETOOLONG,
				 "container ID: too long for a path in the guest (%s)",
				 plan->rootfs_source);
	return 0;
}

void pod_member_plan_destroy(struct pod_member_plan *p)
{
	for (size_t i = 0; i < p->n_binds; i++)
		free(p->binds[i].host);
	free(p->binds);
	for (size_t i = 0; i < p->n_owned; i++)
		free(p->owned[i]);
	free(p->owned);
	free(p->mounts);
	memset(p, 0, sizeof(*p));
}

/* linux.namespaces[*].path := "container:<sandbox>", in the tree. */
static int rewrite_namespaces(yajl_val root, const char *sandbox)
{
	const char *ns_path[] = { "linux", "namespaces", NULL };
	yajl_val ns = yajl_tree_get(root, ns_path, yajl_t_array);

	for (size_t i = 0; ns && i < ns->u.array.len; i++) {
		yajl_val entry = ns->u.array.values[i];
		yajl_val path = YAJL_IS_OBJECT(entry) ? oci_member(entry, "path") : NULL;
		char *joined;

		if (!path || !YAJL_IS_STRING(path) || !path->u.string[0])
			continue;
		if (asprintf(&joined, "container:%s", sandbox) < 0)
			return -ENOMEM;
		free(path->u.string);
		path->u.string = joined;
	}
	return 0;
}

static int edit_namespaces(yajl_val root, void *ctx)
{
	return rewrite_namespaces(root, ctx);
}

int pod_member_config(const char *config, size_t len, const char *sandbox, char **out,
		      struct error *err)
{
	return oci_json_rewrite(config, len, edit_namespaces, (void *)sandbox, AGENT_MAX_OCI,
				"for the pod", out, err);
}
