/*
 * The virtio-fs rootfs and the translation of bind mounts into shares (see rootfs.h). Two
 * passes over config.mounts: the first resolves every bind source on the host and assigns it
 * a share (a directory of its own; files grouped by parent directory, read-only unless one
 * of them is bound read-write, listed in the share, whose host side becomes
 * <state_dir>/files-<tag>: rootfs_stage.c); the second writes CREATE's mounts in the
 * config's order, with a staging mount in front of the first file bound from each files
 * share and a tmpfs over the staging directory at the end.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rootfs.h"

enum bind_kind {
	BIND_NONE, /* not a bind mount: to the agent as written */
	BIND_DIR,  /* virtio-fs mounted on the destination */
	BIND_FILE, /* bind-mounted from the parent's staging mount */
	BIND_SHM,  /* /dev/shm: a tmpfs of the guest's own */
};

struct bind_plan {
	enum bind_kind kind;
	int share;  /* index in rootfs.shares */
	char *path; /* the resolved host path; BIND_FILE: its parent directory */
	char *name; /* BIND_FILE: the file's name in its parent */
	bool ro;
};

/* The options a virtio-fs mount takes from a bind mount's: mount flags and propagation. */
static const char *const vfs_options[] = {
	"ro",	      "rw",	     "nosuid",	    "suid",	     "nodev",
	"dev",	      "noexec",	     "exec",	    "sync",	     "async",
	"dirsync",    "atime",	     "noatime",	    "diratime",	     "nodiratime",
	"relatime",   "norelatime",  "strictatime", "nostrictatime", "private",
	"rprivate",   "shared",	     "rshared",	    "slave",	     "rslave",
	"unbindable", "runbindable",
};

static bool is_vfs_option(const char *opt)
{
	for (size_t i = 0; i < ARRAY_SIZE(vfs_options); i++)
		if (!strcmp(vfs_options[i], opt))
			return true;
	return false;
}

bool rootfs_mount_is_bind(const struct oci_mount *m)
{
	bool bind = m->type && !strcmp(m->type, "bind");

	for (size_t j = 0; j < m->options.n; j++)
		bind = bind || !strcmp(m->options.v[j], "bind") ||
		       !strcmp(m->options.v[j], "rbind");
	return bind;
}

/* The last of ro/rw wins, as for mount(8); the default is rw. */
bool rootfs_mount_is_ro(const struct oci_mount *m)
{
	bool ro = false;

	for (size_t j = 0; j < m->options.n; j++) {
		if (!strcmp(m->options.v[j], "ro"))
			ro = true;
		else if (!strcmp(m->options.v[j], "rw"))
			ro = false;
	}
	return ro;
}

void *rootfs_own(void ***owned, size_t *n, void *p)
{
	void **v;

	if (!p)
		return NULL;
	v = realloc(*owned, (*n + 1) * sizeof(*v));
	if (!v) {
		free(p);
		return NULL;
	}
	*owned = v;
	(*owned)[(*n)++] = p;
	return p;
}

char *rootfs_own_printf(void ***owned, size_t *n, const char *fmt, ...)
{
	char *s;
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vasprintf(&s, fmt, ap);
	va_end(ap);
	return len < 0 ? NULL : rootfs_own(owned, n, s);
}

#define own(r, p)	   rootfs_own(&(r)->owned, &(r)->n_owned, p)
#define own_printf(r, ...) rootfs_own_printf(&(r)->owned, &(r)->n_owned, __VA_ARGS__)

static int add_share(struct rootfs *r, const char *path, bool ro, const char *what, size_t i,
		     struct error *err)
{
	struct rootfs_share *s;

	if (r->n_shares + (r->block ? 1 : 0) >= ROOTFS_MAX_SHARES)
		return error_set(err, -E2BIG,
				 "mounts[%zu].source: %s: more than %d host directories to share "
				 "with the VM (the rootfs and %d bind mounts)",
				 i, what, ROOTFS_MAX_SHARES, ROOTFS_MAX_SHARES - 1);
	s = &r->shares[r->n_shares];
	s->path = strdup(path);
	if (!s->path)
		return error_set(err, -ENOMEM, "out of memory");
	s->readonly = ro;
	if (r->n_shares == 0 && !r->block)
		snprintf(s->tag, sizeof(s->tag), "%s", ROOTFS_TAG);
	else
		snprintf(s->tag, sizeof(s->tag), "m%u", r->n_shares - (r->block ? 0 : 1));
	return (int)r->n_shares++;
}

static int find_share(const struct bind_plan *plans, size_t n, enum bind_kind kind,
		      const char *path, bool ro)
{
	for (size_t i = 0; i < n; i++) {
		if (plans[i].kind != kind)
			continue;
		if (strcmp(plans[i].path, path))
			continue;
		/* files of one directory share one share, whatever their ro; a directory
		 * bound both ways gets two shares (the share enforces ro) */
		if (kind == BIND_FILE || plans[i].ro == ro)
			return plans[i].share;
	}
	return -1;
}

/* A file into its share, once per name (the same file may be bound twice). */
static int add_file(struct rootfs_share *s, const struct bind_plan *p, size_t i, struct error *err)
{
	struct rootfs_file *f;

	for (uint32_t j = 0; j < s->n_files; j++) {
		if (!strcmp(s->files[j].name, p->name)) {
			s->files[j].readonly = s->files[j].readonly && p->ro;
			return 0;
		}
	}
	f = realloc(s->files, (s->n_files + 1) * sizeof(*f));
	if (!f)
		return error_set(err, -ENOMEM, "out of memory");
	s->files = f;
	f = &s->files[s->n_files];
	if (asprintf(&f->host, "%s/%s", strcmp(p->path, "/") ? p->path : "", p->name) < 0)
		f->host = NULL;
	f->name = strdup(p->name);
	f->readonly = p->ro;
	if (!f->host || !f->name) {
		free(f->host);
		free(f->name);
		return error_set(err, -ENOMEM, "mounts[%zu]: out of memory", i);
	}
	s->n_files++;
	return 0;
}

int rootfs_bind_source(const struct oci_mount *m, size_t i, const char *bundle, char **path,
		       bool *dir, struct error *err)
{
	_cleanup_free_ char *joined = NULL, *real = NULL;
	const char *src = m->source;
	struct stat st;

	if (!src || !src[0])
		return error_set(err, -EINVAL, "mounts[%zu].source: required for a bind mount", i);
	if (src[0] != '/') {
		if (asprintf(&joined, "%s/%s", bundle, src) < 0)
			return error_set(err, -ENOMEM, "out of memory");
		src = joined;
	}
	real = realpath(src, NULL);
	if (!real || stat(real, &st) < 0)
		return error_set_errno(err, -errno, "mounts[%zu].source: %s", i, m->source);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return error_set(err, -EINVAL,
				 "mounts[%zu].source: %s: only directories and regular files can "
				 "be shared with the VM",
				 i, m->source);
	*dir = S_ISDIR(st.st_mode);
	*path = ptr_steal(&real);
	return 0;
}

/* Pass 1 for mounts[i]: resolve its source and give it a share. */
static int plan_bind(const struct oci_mount *m, size_t i, const char *bundle, struct rootfs *r,
		     struct bind_plan *plans, struct error *err)
{
	struct bind_plan *p = &plans[i];
	char *slash;
	bool dir;
	int share;

	share = rootfs_bind_source(m, i, bundle, &p->path, &dir, err);
	if (share < 0)
		return share;
	p->ro = rootfs_mount_is_ro(m);
	if (dir) {
		share = find_share(plans, i, BIND_DIR, p->path, p->ro);
		if (share < 0)
			share = add_share(r, p->path, p->ro, m->source, i, err);
		p->kind = BIND_DIR;
	} else {
		slash = strrchr(p->path, '/');
		p->name = strdup(slash + 1);
		if (!p->name)
			return error_set(err, -ENOMEM, "out of memory");
		*slash = '\0';
		if (!p->path[0]) /* a file in / */
			strcpy(p->path, "/");
		share = find_share(plans, i, BIND_FILE, p->path, p->ro);
		if (share < 0)
			share = add_share(r, p->path, p->ro, m->source, i, err);
		else if (!p->ro)
			r->shares[share].readonly = false;
		p->kind = BIND_FILE;
	}
	if (share < 0)
		return share;
	p->share = share;
	return p->kind == BIND_FILE ? add_file(&r->shares[share], p, i, err) : 0;
}

static int emit(struct rootfs *r, const char *source, const char *target, const char *fstype,
		char **options, uint32_t n_options)
{
	struct agent_mount *m = &r->mounts[r->n_mounts++];

	m->source = (char *)source;
	m->target = (char *)target;
	m->fstype = (char *)fstype;
	m->options.v = options;
	m->options.n = n_options;
	return source && target && fstype ? 0 : -ENOMEM;
}

/* A virtio-fs mount on the destination, with the flags of the bind mount's options. */
static int emit_dir(struct rootfs *r, const struct oci_mount *m, const struct bind_plan *p)
{
	char **opts = own(r, calloc(m->options.n + 1, sizeof(char *)));
	uint32_t n = 0;

	if (!opts)
		return -ENOMEM;
	for (size_t j = 0; j < m->options.n; j++)
		if (is_vfs_option(m->options.v[j]))
			opts[n++] = m->options.v[j];
	return emit(r, r->shares[p->share].tag, m->destination, "virtiofs", opts, n);
}

/*
 * The parent share on its staging directory. Only ro: a file bound from it keeps this
 * mount's flags (nosuid, noexec, ...), and the bind mount's own options decide those.
 */
static int emit_staging(struct rootfs *r, int share)
{
	static char *const ro_opts[] = { "ro" };
	const struct rootfs_share *s = &r->shares[share];

	return emit(r, s->tag, own_printf(r, "%s/%s", ROOTFS_STAGING, s->tag), "virtiofs",
		    s->readonly ? (char **)ro_opts : NULL, s->readonly ? 1 : 0);
}

static int emit_file(struct rootfs *r, const char *id, const struct oci_mount *m,
		     const struct bind_plan *p, size_t i, struct error *err)
{
	char *src = own_printf(r, "%s/%s%s/%s/%s", ROOTFS_GUEST_RUN_DIR, id, ROOTFS_STAGING,
			       r->shares[p->share].tag, p->name);

	if (src && strlen(src) > AGENT_MAX_PATH)
		return error_set(err, -ENAMETOOLONG, "mounts[%zu].source: %s: name too long", i,
				 m->source);
	return emit(r, src, m->destination, "bind", m->options.v, (uint32_t)m->options.n);
}

/*
 * podman binds its own host tmpfs on /dev/shm. Across a VM boundary host shared memory is
 * nothing the container could share with anyone: a tmpfs in the guest (64 MiB, as the
 * agent's default /dev/shm) is faster and takes no share.
 */
void rootfs_shm_mount(const struct oci_mount *m, struct agent_mount *out)
{
	static char *const shm_opts[] = { "nosuid",    "nodev",	      "noexec",
					  "mode=1777", "size=65536k", "ro" };

	out->source = "shm";
	out->target = m->destination;
	out->fstype = "tmpfs";
	out->options.v = (char **)shm_opts;
	out->options.n = rootfs_mount_is_ro(m) ? 6 : 5;
}

static int emit_shm(struct rootfs *r, const struct oci_mount *m)
{
	struct agent_mount shm;

	rootfs_shm_mount(m, &shm);
	return emit(r, shm.source, shm.target, shm.fstype, shm.options.v, shm.options.n);
}

/* Pass 2: CREATE's mounts in the config's order. */
static int emit_mounts(const struct oci_spec *spec, const char *id, struct rootfs *r,
		       const struct bind_plan *plans, struct error *err)
{
	bool staged[ROOTFS_MAX_SHARES] = { false }, hide = false;
	size_t max = spec->n_mounts + ROOTFS_MAX_SHARES + 1;
	int ret = 0;

	r->mounts = calloc(max, sizeof(*r->mounts));
	if (!r->mounts)
		return error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; ret == 0 && i < spec->n_mounts; i++) {
		const struct oci_mount *m = &spec->mounts[i];
		const struct bind_plan *p = &plans[i];

		switch (p->kind) {
		case BIND_DIR:
			ret = emit_dir(r, m, p);
			break;
		case BIND_FILE:
			if (!staged[p->share]) {
				staged[p->share] = hide = true;
				ret = emit_staging(r, p->share);
			}
			ret = ret ?: emit_file(r, id, m, p, i, err);
			break;
		case BIND_SHM:
			ret = emit_shm(r, m);
			break;
		default:
			/* a /dev mounted after the staging ones hides them already */
			if (!strcmp(m->destination, "/dev"))
				hide = false;
			ret = emit(r, m->source ? m->source : (m->type ? m->type : "none"),
				   m->destination, m->type ? m->type : "", m->options.v,
				   (uint32_t)m->options.n);
			break;
		}
	}
	if (ret == 0 && hide) {
		static char *const hide_opts[] = { "ro",     "nosuid",	 "nodev",
						   "noexec", "mode=000", "size=4k" };

		ret = emit(r, "tmpfs", ROOTFS_STAGING, "tmpfs", (char **)hide_opts,
			   ARRAY_SIZE(hide_opts));
	}
	if (ret < 0 && !err->code)
		error_set(err, ret, "out of memory");
	if (ret == 0 && r->n_mounts > AGENT_MAX_MOUNTS)
		ret = error_set(err, -E2BIG,
				"mounts: %u with the shares' staging mounts, the agent "
				"takes at most %u",
				r->n_mounts, AGENT_MAX_MOUNTS);
	return ret;
}

static const char *annotation(const struct oci_spec *spec, const char *key)
{
	for (size_t i = 0; i < spec->annotations.n; i++)
		if (!strcmp(spec->annotations.kv[i].key, key))
			return spec->annotations.kv[i].value;
	return NULL;
}

/* ROOTFS_BLOCK_ANNOTATION: a disk image or block device (relative: to the bundle). */
static int plan_block(const struct oci_spec *spec, const char *bundle, struct rootfs *out,
		      struct error *err)
{
	const char *image = annotation(spec, ROOTFS_BLOCK_ANNOTATION);
	const char *fstype = annotation(spec, ROOTFS_BLOCK_FSTYPE_ANNOTATION);
	_cleanup_free_ char *joined = NULL;
	struct stat st;

	if (!image)
		return 0;
	if (!image[0])
		return error_set(err, -EINVAL, "annotations[%s]: must name a disk image",
				 ROOTFS_BLOCK_ANNOTATION);
	if (image[0] != '/' && asprintf(&joined, "%s/%s", bundle, image) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	out->block = realpath(joined ? joined : image, NULL);
	if (!out->block || stat(out->block, &st) < 0)
		return error_set_errno(err, -errno, "annotations[%s]: %s", ROOTFS_BLOCK_ANNOTATION,
				       image);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return error_set(err, -EINVAL,
				 "annotations[%s]: %s: not a disk image or block device",
				 ROOTFS_BLOCK_ANNOTATION, image);
	if (fstype && (!fstype[0] || strpbrk(fstype, ", /")))
		return error_set(err, -EINVAL, "annotations[%s]: \"%s\" is not a filesystem type",
				 ROOTFS_BLOCK_FSTYPE_ANNOTATION, fstype);
	out->block_readonly = spec->root_readonly;
	out->kind = AGENT_ROOTFS_BLOCK;
	out->source = ROOTFS_GUEST_DEVICE;
	out->fstype = fstype ? fstype : "ext4";
	/* a read-only disk must be mounted read-only (options are parsed as mount(8)'s) */
	out->options = spec->root_readonly ? "ro" : "";
	return 0;
}

int rootfs_prepare(const struct oci_spec *spec, const char *bundle, const char *id,
		   const char *state_dir, struct rootfs *out, struct error *err)
{
	struct bind_plan *plans = calloc(spec->n_mounts + 1, sizeof(*plans));
	int r;

	memset(out, 0, sizeof(*out));
	if (!plans)
		return error_set(err, -ENOMEM, "out of memory");
	r = plan_block(spec, bundle, out, err);
	if (r == 0 && !out->block)
		r = add_share(out, spec->root_path, spec->root_readonly, spec->root_path, 0, err);
	for (size_t i = 0; r >= 0 && i < spec->n_mounts; i++) {
		if (!rootfs_mount_is_bind(&spec->mounts[i]))
			continue;
		if (!strcmp(spec->mounts[i].destination, "/dev/shm"))
			plans[i].kind = BIND_SHM;
		else
			r = plan_bind(&spec->mounts[i], i, bundle, out, plans, err);
	}
	/* a share of files is their staging tmpfs, not their parent directory */
	for (uint32_t i = 0; r >= 0 && i < out->n_shares; i++) {
		struct rootfs_share *sh = &out->shares[i];

		if (!sh->n_files)
			continue;
		free(sh->path);
		if (asprintf(&sh->path, "%s/%s%s", state_dir, ROOTFS_FILES_PREFIX, sh->tag) < 0) {
			sh->path = NULL;
			r = error_set(err, -ENOMEM, "out of memory");
		}
	}
	r = r < 0 ? r : emit_mounts(spec, id, out, plans, err);
	for (size_t i = 0; i < spec->n_mounts; i++) {
		free(plans[i].path);
		free(plans[i].name);
	}
	free(plans);
	if (r < 0) {
		rootfs_destroy(out);
		return r;
	}
	if (!out->block) {
		out->kind = AGENT_ROOTFS_VIRTIOFS;
		out->source = out->shares[0].tag;
		out->fstype = "";
		out->options = "";
	}
	return 0;
}

void rootfs_destroy(struct rootfs *r)
{
	for (uint32_t i = 0; i < r->n_shares; i++) {
		for (uint32_t j = 0; j < r->shares[i].n_files; j++) {
			free(r->shares[i].files[j].host);
			free(r->shares[i].files[j].name);
		}
		free(r->shares[i].files);
		free(r->shares[i].path);
	}
	free(r->block);
	for (size_t i = 0; i < r->n_owned; i++)
		free(r->owned[i]);
	free(r->owned);
	free(r->mounts);
	memset(r, 0, sizeof(*r));
}
