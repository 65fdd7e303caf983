/*
 * The template cache (template.h): keys, the template VM's device layout, and the directory
 * under template_root() (find, build under the lock, list, remove). The builder itself, a
 * short-lived process running the template VM with libvmm, is template_build.c.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "container.h"
#include "snapshot.h"
#include "state.h"
#include "template.h"
#include "template_build.h"
#include "vm.h"

#define TEMPLATE_LOCK	      ".lock"
#define TEMPLATE_META_MAX     (64 * 1024)
#define TEMPLATE_DISCARD_MS   5000
#define TEMPLATE_LOCK_POLL_MS 20

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void template_info_clear(struct template_info *t)
{
	free(t->dir);
	free(t->kernel);
	free(t->initramfs);
	memset(t, 0, sizeof(*t));
}

const char *template_root(void)
{
	const char *v = getenv(TEMPLATE_DIR_ENV);

	return v && v[0] ? v : TEMPLATE_DEFAULT_DIR;
}

bool template_wanted(const struct oci_spec *spec)
{
	const char *v = getenv(TEMPLATE_ENV);

	if (v && !strcmp(v, "0"))
		return false;
	for (size_t i = 0; spec && i < spec->annotations.n; i++)
		if (!strcmp(spec->annotations.kv[i].key, TEMPLATE_ANNOTATION) &&
		    !strcmp(spec->annotations.kv[i].value, "false"))
			return false;
	return true;
}

/* FNV-1a, 64 bits: a cache key, not a defence (the directory is the runtime's alone). */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

static int asset_identity(const char *what, const char *path, char *buf, size_t len,
			  struct error *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return error_set_errno(err, -errno, "template: %s %s", what, path);
	snprintf(buf, len, "%s:%lld:%lld%09ld:%llu", path, (long long)st.st_size,
		 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
	return 0;
}

int template_key(const struct guest_assets *assets, unsigned int vcpus, uint64_t mem_mib,
		 char key[TEMPLATE_KEY_LEN + 1], struct error *err)
{
	char kernel[4200], initramfs[4200], inputs[9000];
	int r;

	r = asset_identity("kernel", assets->kernel, kernel, sizeof(kernel), err);
	r = r ?: asset_identity("initramfs", assets->initramfs, initramfs, sizeof(initramfs), err);
	if (r < 0)
		return r;
	snprintf(inputs, sizeof(inputs),
		 "layout=%d version=%s snapshot=%d vcpus=%u mem=%" PRIu64 " kernel=%s initramfs=%s",
		 TEMPLATE_LAYOUT_VERSION, STRATUS_VERSION, SNAPSHOT_VERSION, vcpus, mem_mib, kernel,
		 initramfs);
	snprintf(key, TEMPLATE_KEY_LEN + 1, "%016" PRIx64, fnv1a(inputs));
	return 0;
}

static void slot_tag(unsigned int i, char *buf, size_t len)
{
	if (i == 0)
		snprintf(buf, len, "%s", ROOTFS_TAG);
	else
		snprintf(buf, len, "m%u", i - 1);
}

bool template_fits(const struct rootfs *rootfs)
{
	return !rootfs->block && rootfs->n_shares <= ROOTFS_MAX_SHARES;
}

int template_layout(struct vm_config *vc, const char *vsock_path, const struct rootfs *rootfs)
{
	struct vm_device_config *vsock = &vc->devices[0];
	uint32_t used = 0;

	if (rootfs && rootfs->block)
		return -ENOTSUP;
	memset(vc->devices, 0, sizeof(vc->devices));
	vsock->type = VM_DEVICE_VIRTIO_VSOCK;
	snprintf(vsock->id, sizeof(vsock->id), "vsock0");
	snprintf(vsock->path, sizeof(vsock->path), "%s", vsock_path);
	vsock->guest_cid = 3;
	vc->nr_devices = 1;
	for (unsigned int i = 0; i < ROOTFS_MAX_SHARES; i++) {
		struct vm_device_config *fs = &vc->devices[vc->nr_devices++];
		char tag[ROOTFS_TAG_MAX];

		fs->type = VM_DEVICE_VIRTIO_FS;
		slot_tag(i, tag, sizeof(tag));
		snprintf(fs->fs_tag, sizeof(fs->fs_tag), "%s", tag);
		snprintf(fs->id, sizeof(fs->id), "fs-%s", tag);
		/* the same cache mode as a cold boot's shares (monitor.c) */
		fs->fs_cache = VM_FS_CACHE_AUTO;
		for (uint32_t s = 0; rootfs && s < rootfs->n_shares; s++) {
			if (strcmp(rootfs->shares[s].tag, fs->fs_tag))
				continue;
			snprintf(fs->path, sizeof(fs->path), "%s", rootfs->shares[s].path);
			fs->readonly = rootfs->shares[s].readonly;
			used++;
		}
	}
	return rootfs && used != rootfs->n_shares ? -E2BIG : 0;
}

/* ---- template.json ----------------------------------------------------------------------- */

static int gen_str(yajl_gen g, const char *s)
{
	return yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_asset(yajl_gen g, const char *name, const char *path)
{
	struct stat st = { 0 };

	stat(path, &st);
	gen_str(g, name);
	yajl_gen_map_open(g);
	gen_str(g, "path");
	gen_str(g, path);
	gen_str(g, "size");
	yajl_gen_integer(g, (long long)st.st_size);
	gen_str(g, "mtime_ns");
	yajl_gen_integer(g, (long long)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec);
	gen_str(g, "inode");
	yajl_gen_integer(g, (long long)st.st_ino);
	yajl_gen_map_close(g);
}

static int meta_write(const char *dir, const char *key, const struct guest_assets *assets,
		      unsigned int vcpus, uint64_t mem_mib, uint64_t build_ms, struct error *err)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	char created[64];
	_cleanup_close_ int fd = -1;
	size_t len;
	int r = 0;

	if (!g)
		return error_set(err, -ENOMEM, "out of memory");
	yajl_gen_config(g, yajl_gen_beautify, 1);
	state_timestamp(created, sizeof(created));
	yajl_gen_map_open(g);
	gen_str(g, "key");
	gen_str(g, key);
	gen_str(g, "version");
	gen_str(g, STRATUS_VERSION);
	gen_str(g, "layout");
	yajl_gen_integer(g, TEMPLATE_LAYOUT_VERSION);
	gen_str(g, "snapshot_format");
	yajl_gen_integer(g, SNAPSHOT_VERSION);
	gen_str(g, "vcpus");
	yajl_gen_integer(g, vcpus);
	gen_str(g, "memory_mib");
	yajl_gen_integer(g, (long long)mem_mib);
	gen_asset(g, "kernel", assets->kernel);
	gen_asset(g, "initramfs", assets->initramfs);
	gen_str(g, "created");
	gen_str(g, created);
	gen_str(g, "build_ms");
	yajl_gen_integer(g, (long long)build_ms);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &buf, &len);
	if (asprintf(&path, "%s/%s", dir, TEMPLATE_META) < 0 ||
	    asprintf(&tmp, "%s/%s.tmp", dir, TEMPLATE_META) < 0) {
		yajl_gen_free(g);
		return error_set(err, -ENOMEM, "out of memory");
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || fsync(fd) < 0 || rename(tmp, path) < 0)
		r = error_set_errno(err, -errno, "template: cannot write %s", path);
	yajl_gen_free(g);
	return r;
}

static char *json_str(yajl_val root, const char *a, const char *b)
{
	const char *path[] = { a, b, NULL };
	yajl_val v = yajl_tree_get(root, path, yajl_t_string);

	const char *s = v ? YAJL_GET_STRING(v) : NULL;

	return s ? strdup(s) : NULL;
}

static long long json_int(yajl_val root, const char *name)
{
	const char *path[] = { name, NULL };
	yajl_val v = yajl_tree_get(root, path, yajl_t_number);

	return v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : -1;
}

static uint64_t disk_usage(const char *dir)
{
	const char *names[] = { TEMPLATE_SNAPSHOT, TEMPLATE_META };
	uint64_t total = 0;

	for (unsigned int i = 0; i < ARRAY_SIZE(names); i++) {
		char path[4200];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0)
			total += (uint64_t)st.st_blocks * 512;
	}
	return total;
}

/*
 * Read <root>/<name>/template.json into t: 0 if it describes a complete template named
 * name (its snapshot a regular file of at least a header page), else -EINVAL.
 */
static int meta_read(const char *root, const char *name, struct template_info *t)
{
	char path[4200], *text = NULL;
	_cleanup_close_ int fd = -1;
	yajl_val json = NULL;
	struct stat st;
	ssize_t n;
	char *key;
	long long vcpus, mem;
	int r = -EINVAL;

	memset(t, 0, sizeof(*t));
	snprintf(path, sizeof(path), "%s/%s/%s", root, name, TEMPLATE_SNAPSHOT);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 4096)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/%s/%s", root, name, TEMPLATE_META);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	text = malloc(TEMPLATE_META_MAX + 1);
	if (fd < 0 || !text) {
		free(text);
		return -EINVAL;
	}
	n = read(fd, text, TEMPLATE_META_MAX);
	if (n > 0 && n < TEMPLATE_META_MAX) {
		text[n] = '\0';
		json = yajl_tree_parse(text, NULL, 0);
	}
	free(text);
	if (!json)
		return -EINVAL;
	key = json_str(json, "key", NULL);
	vcpus = json_int(json, "vcpus");
	mem = json_int(json, "memory_mib");
	if (key && !strcmp(key, name) && strlen(key) == TEMPLATE_KEY_LEN && vcpus > 0 && mem > 0) {
		snprintf(t->key, sizeof(t->key), "%s", key);
		t->vcpus = (unsigned int)vcpus;
		t->mem_mib = (uint64_t)mem;
		t->build_ms =
			json_int(json, "build_ms") > 0 ? (uint64_t)json_int(json, "build_ms") : 0;
		t->kernel = json_str(json, "kernel", "path");
		t->initramfs = json_str(json, "initramfs", "path");
		char *created = json_str(json, "created", NULL);
		snprintf(t->created, sizeof(t->created), "%s", created ? created : "");
		free(created);
		if (asprintf(&t->dir, "%s/%s", root, name) > 0 && t->kernel && t->initramfs) {
			t->disk_bytes = disk_usage(t->dir);
			r = 0;
		}
	}
	free(key);
	yajl_tree_free(json);
	if (r < 0)
		template_info_clear(t);
	return r;
}

/* ---- the directory and its lock ------------------------------------------------------------ */

static int mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *copy = strdup(path);

	if (!copy)
		return -ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0711) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(copy, mode) < 0 && errno != EEXIST ? -errno : 0;
}

/* The root's lock within timeout_ms: its fd, or a negative errno with a message. */
static int template_lock(const char *root, int timeout_ms, struct error *err)
{
	uint64_t deadline = monotonic_ms() + (uint64_t)timeout_ms;
	char path[4200];
	int fd, r;

	r = mkdir_p(root, 0700);
	if (r < 0)
		return error_set_errno(err, r, "template: cannot create %s (%s)", root,
				       TEMPLATE_DIR_ENV);
	snprintf(path, sizeof(path), "%s/%s", root, TEMPLATE_LOCK);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return error_set_errno(err, -errno, "template: cannot open %s", path);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			r = -errno;
			close(fd);
			return error_set_errno(err, r, "template: cannot lock %s", path);
		}
		if (monotonic_ms() >= deadline) {
			close(fd);
			return error_set(err, -ETIMEDOUT,
					 "template: %s is still locked by another stratus after "
					 "%d s (a template being built)",
					 root, timeout_ms / 1000);
		}
		usleep(TEMPLATE_LOCK_POLL_MS * 1000);
	}
	return fd;
}

/* Move dir out of the way (one rename), then remove it. */
static int remove_template_dir(const char *root, const char *name)
{
	char path[4200], trash[4300];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	snprintf(trash, sizeof(trash), "%s/.trash-%s-%d", root, name, (int)getpid());
	if (rename(path, trash) < 0)
		return errno == ENOENT ? 0 : -errno;
	return container_remove_tree(trash);
}

/* Templates built from the same asset paths for the same VM size under another key. */
static void prune_stale(const char *root, const char *key, const struct guest_assets *assets,
			unsigned int vcpus, uint64_t mem_mib)
{
	DIR *d = opendir(root);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		struct template_info t;

		if (e->d_name[0] == '.' || !strcmp(e->d_name, key))
			continue;
		if (strncmp(e->d_name, ".trash-", 7) && strncmp(e->d_name, ".build-", 7) &&
		    meta_read(root, e->d_name, &t) == 0) {
			if (t.vcpus == vcpus && t.mem_mib == mem_mib &&
			    !strcmp(t.kernel, assets->kernel) &&
			    !strcmp(t.initramfs, assets->initramfs))
				remove_template_dir(root, e->d_name);
			template_info_clear(&t);
		}
	}
	if (d)
		closedir(d);
}

/* Leftovers of builders and removers that died (we hold the lock: none is running). */
static void remove_leftovers(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	char path[4200];

	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, ".trash-", 7) && strncmp(e->d_name, ".build-", 7))
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, e->d_name);
		container_remove_tree(path);
	}
	if (d)
		closedir(d);
}

static int template_build_locked(const char *root, const char *key,
				 const struct guest_assets *assets, unsigned int vcpus,
				 uint64_t mem_mib, struct error *err)
{
	char build[4200], dir[4200];
	uint64_t t0 = monotonic_ms();
	int r;

	remove_leftovers(root);
	snprintf(build, sizeof(build), "%s/.build-%s-%d", root, key, (int)getpid());
	snprintf(dir, sizeof(dir), "%s/%s", root, key);
	if (mkdir(build, 0700) < 0)
		return error_set_errno(err, -errno, "template: cannot create %s", build);
	r = template_build(build, assets, vcpus, mem_mib, err);
	r = r ?: meta_write(build, key, assets, vcpus, mem_mib, monotonic_ms() - t0, err);
	if (r == 0) {
		template_build_tidy(build);
		remove_template_dir(root, key);
		if (rename(build, dir) < 0)
			r = error_set_errno(err, -errno, "template: cannot rename %s to %s", build,
					    dir);
	}
	if (r < 0) {
		container_remove_tree(build);
		return r;
	}
	prune_stale(root, key, assets, vcpus, mem_mib);
	return 0;
}

int template_get(const struct guest_assets *assets, unsigned int vcpus, uint64_t mem_mib,
		 bool rebuild, char **snapshot, struct template_info *info, struct error *err)
{
	const char *root = template_root();
	char key[TEMPLATE_KEY_LEN + 1];
	struct template_info t;
	bool built = false;
	int r, lock;

	*snapshot = NULL;
	if (strpbrk(root, "\"\\") || root[0] != '/')
		return error_set(err, -EINVAL,
				 "%s: must be an absolute path without quotes or backslashes",
				 TEMPLATE_DIR_ENV);
	r = template_key(assets, vcpus, mem_mib, key, err);
	if (r < 0)
		return r;
	if (rebuild || meta_read(root, key, &t) < 0) {
		lock = template_lock(root, TEMPLATE_LOCK_TIMEOUT_S * 1000, err);
		if (lock < 0)
			return lock;
		/* another builder may have made it while we waited */
		if (rebuild || meta_read(root, key, &t) < 0) {
			r = template_build_locked(root, key, assets, vcpus, mem_mib, err);
			built = r == 0;
			r = r
				    ?: meta_read(root, key, &t) < 0
				       ? error_set(err, -EIO,
						   "template: %s/%s: incomplete after the build",
						   root, key)
				       : 0;
		}
		close(lock);
		if (r < 0)
			return r;
	}
	if (asprintf(snapshot, "%s/%s", t.dir, TEMPLATE_SNAPSHOT) < 0) {
		template_info_clear(&t);
		return error_set(err, -ENOMEM, "out of memory");
	}
	if (info)
		*info = t;
	else
		template_info_clear(&t);
	return built;
}

void template_discard(const char *snapshot)
{
	_cleanup_free_ char *copy = strdup(snapshot ? snapshot : "");
	struct error err = { 0 };
	char *dir, *root, *name;
	int lock;

	if (!copy || !copy[0])
		return;
	dir = dirname(copy);
	name = strrchr(dir, '/');
	if (!name)
		return;
	*name++ = '\0';
	root = dir;
	lock = template_lock(root, TEMPLATE_DISCARD_MS, &err);
	remove_template_dir(root, name);
	if (lock >= 0)
		close(lock);
}

/* Everything else under root (broken templates, builders' leftovers): how many templates. */
static unsigned int remove_invalid(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	unsigned int n = 0;

	while (d && (e = readdir(d))) {
		char path[4200];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", root, e->d_name);
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, TEMPLATE_LOCK) || lstat(path, &st) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (container_remove_tree(path) == 0 && e->d_name[0] != '.')
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static int compare_info(const void *a, const void *b)
{
	return strcmp(((const struct template_info *)a)->key,
		      ((const struct template_info *)b)->key);
}

int template_list(struct template_info **out, size_t *n, struct error *err)
{
	const char *root = template_root();
	struct template_info *v = NULL;
	size_t count = 0, cap = 0;
	DIR *d = opendir(root);
	struct dirent *e;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT
			       ? 0
			       : error_set_errno(err, -errno, "template: cannot read %s", root);
	while ((e = readdir(d))) {
		struct template_info t;

		if (e->d_name[0] == '.' || meta_read(root, e->d_name, &t) < 0)
			continue;
		if (count == cap) {
			struct template_info *nv =
				realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));

			if (!nv) {
				template_info_clear(&t);
				break;
			}
			v = nv;
		}
		v[count++] = t;
	}
	closedir(d);
	if (v)
		qsort(v, count, sizeof(*v), compare_info);
	*out = v;
	*n = count;
	return 0;
}

void template_list_free(struct template_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		template_info_clear(&v[i]);
	free(v);
}

int template_remove(const char *key, unsigned int *removed, struct error *err)
{
	const char *root = template_root();
	struct template_info *v;
	size_t n, match = 0, which = 0;
	int r, lock;

	*removed = 0;
	lock = template_lock(root, TEMPLATE_LOCK_TIMEOUT_S * 1000, err);
	if (lock < 0)
		return lock;
	r = template_list(&v, &n, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (!key || !strncmp(v[i].key, key, strlen(key))) {
			match++;
			which = i;
		}
	}
	if (r == 0 && key && match == 0)
		r = error_set(err, -ENOENT, "template \"%s\" does not exist", key);
	else if (r == 0 && key && match > 1)
		r = error_set(err, -EINVAL, "template \"%s\": ambiguous, %zu templates match", key,
			      match);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (key && i != which)
			continue;
		r = remove_template_dir(root, v[i].key);
		if (r < 0)
			error_set_errno(err, r, "template: cannot remove %s", v[i].dir);
		else
			(*removed)++;
	}
	if (r == 0 && !key)
		*removed += remove_invalid(root);
	template_list_free(v, n);
	close(lock);
	return r;
}
