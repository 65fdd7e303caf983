/*
 * Unit tests for the FUSE server's node key across mounts (vmm/fuse_table.c,
 * fuse_lookup_name in vmm/fuse_server.c): a share holding two bind mounts of one host
 * directory, "rw" and "ro" (remounted read-only), as a pod does when two members bind the
 * same volume, one of them ro. The two names must be two nodes, each on its own mount: writes
 * through "rw" reach the host, writes through "ro" fail EROFS, whichever was looked up
 * first, through a cached (forgotten) node, through READDIRPLUS's lookups, and after the
 * other is forgotten. Needs root (mounts, in a mount namespace of the test's own); skipped
 * otherwise. Driven through fuse_server_handle() as the device does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse_internal.h"

struct mounts_test {
	char dir[64];	/* top: src/ and share/ */
	char src[96];	/* the host directory bound twice */
	char share[96]; /* the share's root: rw/ and ro/ */
	char rw[128];	/* share/rw: src bound read-write */
	char ro[128];	/* share/ro: src bound read-only */
	struct fuse_server *s;
	uint8_t req[4096];
	uint8_t reply[65536];
	int32_t error;
	uint32_t len;
	uint64_t unique;
};

static bool have_mounts; /* root, in a private mount namespace */

static int32_t request(struct mounts_test *t, uint32_t opcode, uint64_t nodeid, const void *arg,
		       size_t arg_len, const char *name, const void *data, size_t data_len)
{
	struct fuse_in_header in = { .opcode = opcode, .unique = ++t->unique, .nodeid = nodeid };
	struct fuse_out_header out;
	struct iovec req, reply = { t->reply, sizeof(t->reply) };
	size_t len = sizeof(in);
	uint32_t used;

	if (arg_len)
		memcpy(t->req + len, arg, arg_len);
	len += arg_len;
	if (name) {
		memcpy(t->req + len, name, strlen(name) + 1);
		len += strlen(name) + 1;
	}
	if (data_len)
		memcpy(t->req + len, data, data_len);
	len += data_len;
	in.len = (uint32_t)len;
	memcpy(t->req, &in, sizeof(in));
	req = (struct iovec){ t->req, len };
	used = fuse_server_handle(t->s, &req, 1, len, &reply, 1, sizeof(t->reply));
	t->error = 1;
	t->len = 0;
	if (used < sizeof(out))
		return t->error; /* FORGET: no reply */
	memcpy(&out, t->reply, sizeof(out));
	t->error = out.error;
	t->len = used - (uint32_t)sizeof(out);
	return t->error;
}

static struct fuse_entry_out lookup(struct mounts_test *t, uint64_t parent, const char *name)
{
	struct fuse_entry_out e = { 0 };

	if (request(t, FUSE_LOOKUP, parent, NULL, 0, name, NULL, 0) == 0)
		memcpy(&e, t->reply + sizeof(struct fuse_out_header), sizeof(e));
	return e;
}

static void forget(struct mounts_test *t, uint64_t node)
{
	struct fuse_forget_in f = { .nlookup = 1 };

	request(t, FUSE_FORGET, node, &f, sizeof(f), NULL, NULL, 0);
}

/* CREATE name under dir and WRITE "data" to it: 0 or the first error. */
static int32_t create_write(struct mounts_test *t, uint64_t dir, const char *name)
{
	struct fuse_create_in c = { .flags = O_WRONLY, .mode = S_IFREG | 0644 };
	struct {
		struct fuse_entry_out entry;
		struct fuse_open_out open;
	} out;
	struct fuse_write_in w = { .size = 4 };
	struct fuse_release_in rel = { 0 };

	if (request(t, FUSE_CREATE, dir, &c, sizeof(c), name, NULL, 0))
		return t->error;
	memcpy(&out, t->reply + sizeof(struct fuse_out_header), sizeof(out));
	w.fh = out.open.fh;
	request(t, FUSE_WRITE, out.entry.nodeid, &w, sizeof(w), NULL, "data", 4);
	if (t->error)
		return t->error;
	rel.fh = out.open.fh;
	if (request(t, FUSE_RELEASE, out.entry.nodeid, &rel, sizeof(rel), NULL, NULL, 0))
		return t->error;
	forget(t, out.entry.nodeid);
	return 0;
}

/* OPEN the file node for writing (and release it): 0 or the error. */
static int32_t open_write(struct mounts_test *t, uint64_t node)
{
	struct fuse_open_in o = { .flags = O_WRONLY };
	struct fuse_open_out out;
	struct fuse_release_in rel = { 0 };

	if (request(t, FUSE_OPEN, node, &o, sizeof(o), NULL, NULL, 0))
		return t->error;
	memcpy(&out, t->reply + sizeof(struct fuse_out_header), sizeof(out));
	rel.fh = out.fh;
	return request(t, FUSE_RELEASE, node, &rel, sizeof(rel), NULL, NULL, 0);
}

static bool host_has(struct mounts_test *t, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", t->src, name);
	return access(path, F_OK) == 0;
}

static int setup(void **state)
{
	struct mounts_test *t = calloc(1, sizeof(*t));
	struct fuse_server_config c = { .name = "test", .cache = FUSE_CACHE_AUTO };
	struct fuse_init_in init = { .major = 7, .minor = 37 };
	char path[256];
	int fd;

	assert_non_null(t);
	*state = t;
	if (!have_mounts)
		return 0;
	snprintf(t->dir, sizeof(t->dir), "/tmp/stratus-fuse-mounts.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->src, sizeof(t->src), "%s/src", t->dir);
	snprintf(t->share, sizeof(t->share), "%s/share", t->dir);
	snprintf(t->rw, sizeof(t->rw), "%s/rw", t->share);
	snprintf(t->ro, sizeof(t->ro), "%s/ro", t->share);
	assert_int_equal(mkdir(t->src, 0755), 0);
	assert_int_equal(mkdir(t->share, 0755), 0);
	assert_int_equal(mkdir(t->rw, 0755), 0);
	assert_int_equal(mkdir(t->ro, 0755), 0);
	snprintf(path, sizeof(path), "%s/old", t->src);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mount(t->src, t->rw, NULL, MS_BIND, NULL), 0);
	assert_int_equal(mount(t->src, t->ro, NULL, MS_BIND, NULL), 0);
	assert_int_equal(mount(NULL, t->ro, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL), 0);
	c.root = t->share;
	assert_int_equal(fuse_server_new(&c, &t->s, NULL), 0);
	assert_int_equal(request(t, FUSE_INIT, 0, &init, sizeof(init), NULL, NULL, 0), 0);
	return 0;
}

static int teardown(void **state)
{
	struct mounts_test *t = *state;
	char cmd[128];

	if (t->s)
		fuse_server_destroy(t->s);
	if (t->dir[0]) {
		umount2(t->rw, MNT_DETACH);
		umount2(t->ro, MNT_DETACH);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
		assert_int_equal(system(cmd), 0);
	}
	free(t);
	return 0;
}

/* What each name allows, checked through directory and file nodes. */
static void check_both(struct mounts_test *t, uint64_t rw, uint64_t ro)
{
	struct fuse_entry_out frw, fro;
	struct fuse_mkdir_in md = { .mode = 0755 };

	assert_int_equal(create_write(t, rw, "new-rw"), 0);
	assert_true(host_has(t, "new-rw"));
	assert_int_equal(create_write(t, ro, "new-ro"), -EROFS);
	assert_false(host_has(t, "new-ro"));
	assert_int_equal(request(t, FUSE_MKDIR, ro, &md, sizeof(md), "d", NULL, 0), -EROFS);
	assert_int_equal(request(t, FUSE_UNLINK, ro, NULL, 0, "old", NULL, 0), -EROFS);
	/* The same file through each: two nodes; only the rw one opens for writing. */
	frw = lookup(t, rw, "old");
	assert_int_equal(t->error, 0);
	fro = lookup(t, ro, "old");
	assert_int_equal(t->error, 0);
	assert_int_not_equal(frw.nodeid, fro.nodeid);
	assert_int_equal(frw.attr.ino, fro.attr.ino);
	assert_int_equal(open_write(t, fro.nodeid), -EROFS);
	assert_int_equal(open_write(t, frw.nodeid), 0);
	forget(t, frw.nodeid);
	forget(t, fro.nodeid);
}

static void test_rw_looked_up_first(void **state)
{
	struct mounts_test *t = *state;
	struct fuse_entry_out rw, ro;

	if (!have_mounts)
		skip();
	rw = lookup(t, FUSE_ROOT_ID, "rw");
	assert_int_equal(t->error, 0);
	ro = lookup(t, FUSE_ROOT_ID, "ro");
	assert_int_equal(t->error, 0);
	assert_int_not_equal(rw.nodeid, ro.nodeid);
	/* One inode, as a bind mount is natively: the guest sees the same st_ino. */
	assert_int_equal(rw.attr.ino, ro.attr.ino);
	check_both(t, rw.nodeid, ro.nodeid);
}

static void test_ro_looked_up_first(void **state)
{
	struct mounts_test *t = *state;
	struct fuse_entry_out rw, ro;

	if (!have_mounts)
		skip();
	ro = lookup(t, FUSE_ROOT_ID, "ro");
	assert_int_equal(t->error, 0);
	rw = lookup(t, FUSE_ROOT_ID, "rw");
	assert_int_equal(t->error, 0);
	assert_int_not_equal(rw.nodeid, ro.nodeid);
	check_both(t, rw.nodeid, ro.nodeid);
}

/* Forgetting one leaves the other as it was; a forgotten (cached) node is not the other's. */
static void test_forget_one(void **state)
{
	struct mounts_test *t = *state;
	struct fuse_entry_out rw, ro;

	if (!have_mounts)
		skip();
	rw = lookup(t, FUSE_ROOT_ID, "rw");
	ro = lookup(t, FUSE_ROOT_ID, "ro");
	forget(t, ro.nodeid);
	assert_int_equal(create_write(t, rw.nodeid, "a"), 0);
	assert_int_equal(create_write(t, ro.nodeid, "b"), -ESTALE);
	/* rw cached (forgotten), then ro looked up: the cached rw node must not answer. */
	forget(t, rw.nodeid);
	ro = lookup(t, FUSE_ROOT_ID, "ro");
	assert_int_equal(t->error, 0);
	assert_int_equal(create_write(t, ro.nodeid, "c"), -EROFS);
	rw = lookup(t, FUSE_ROOT_ID, "rw");
	assert_int_equal(t->error, 0);
	assert_int_not_equal(rw.nodeid, ro.nodeid);
	assert_int_equal(create_write(t, rw.nodeid, "d"), 0);
	forget(t, rw.nodeid);
	assert_int_equal(create_write(t, ro.nodeid, "e"), -EROFS);
	assert_true(host_has(t, "a") && host_has(t, "d"));
	assert_false(host_has(t, "b") || host_has(t, "c") || host_has(t, "e"));
}

/* READDIRPLUS's lookups use the same key: its entries for rw and ro are two nodes. */
static void test_readdirplus(void **state)
{
	struct mounts_test *t = *state;
	struct fuse_open_in o = { .flags = O_RDONLY };
	struct fuse_read_in r = { .size = 4096 };
	struct fuse_open_out dir;
	uint64_t rw = 0, ro = 0;
	uint32_t off = 0;

	if (!have_mounts)
		skip();
	/* ro first, as a listing of the share would find it */
	assert_int_equal(lookup(t, FUSE_ROOT_ID, "ro").nodeid != 0, true);
	assert_int_equal(request(t, FUSE_OPENDIR, FUSE_ROOT_ID, &o, sizeof(o), NULL, NULL, 0), 0);
	memcpy(&dir, t->reply + sizeof(struct fuse_out_header), sizeof(dir));
	r.fh = dir.fh;
	assert_int_equal(request(t, FUSE_READDIRPLUS, FUSE_ROOT_ID, &r, sizeof(r), NULL, NULL, 0),
			 0);
	while (off + sizeof(struct fuse_direntplus) <= t->len) {
		const uint8_t *p = t->reply + sizeof(struct fuse_out_header) + off;
		struct fuse_direntplus d;
		char name[NAME_MAX + 1];

		memcpy(&d, p, sizeof(d));
		assert_true(d.dirent.namelen <= NAME_MAX);
		memcpy(name, p + sizeof(d), d.dirent.namelen);
		name[d.dirent.namelen] = 0;
		if (!strcmp(name, "rw"))
			rw = d.entry_out.nodeid;
		if (!strcmp(name, "ro"))
			ro = d.entry_out.nodeid;
		off += (uint32_t)FUSE_DIRENTPLUS_SIZE(&d);
	}
	assert_true(rw != 0 && ro != 0 && rw != ro);
	assert_int_equal(create_write(t, ro, "x"), -EROFS);
	assert_int_equal(create_write(t, rw, "y"), 0);
	assert_true(host_has(t, "y"));
	assert_false(host_has(t, "x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rw_looked_up_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ro_looked_up_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdirplus, setup, teardown),
	};

	/* Our own mount namespace, private: the binds vanish with the test. */
	have_mounts = geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
		      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
	if (!have_mounts)
		fprintf(stderr, "test_fuse_mounts: not root or no mount namespace, skipping\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
