/*
 * Unit tests for the FUSE server's node table (vmm/fuse_table.c) and the lookup path that
 * uses it (fuse_lookup_name in vmm/fuse_server.c), driving a server directly through
 * fuse_server_handle() (no device): nodes the guest forgets stay cached and come back
 * without an open, their old ids stay stale, cached nodes give way to nodes and handles
 * the guest needs (a full table, the descriptor budget, the host's EMFILE), a node whose
 * last name is removed through us is closed rather than cached (a deleted file's blocks
 * are freed), expired cached nodes are closed, and a LOOKUP racing a rename answers with
 * the inode it holds. White-box where the user-visible effect is a descriptor: the table's
 * counts come from fuse_internal.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuse_internal.h"

struct table_test {
	char root[64];
	struct fuse_server *s;
	uint8_t req[4096];
	uint8_t reply[65536];
	int32_t error;
	uint32_t len;
	uint64_t unique;
};

static void host_file(struct table_test *t, const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", t->root, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, name, strlen(name)), (ssize_t)strlen(name));
	close(fd);
}

/* One request: header + arg + an optional name (and a second one, for RENAME). */
static int32_t request(struct table_test *t, uint32_t opcode, uint64_t nodeid, const void *arg,
		       size_t arg_len, const char *name, const char *name2)
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
	if (name2) {
		memcpy(t->req + len, name2, strlen(name2) + 1);
		len += strlen(name2) + 1;
	}
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

static struct fuse_entry_out lookup(struct table_test *t, const char *name)
{
	struct fuse_entry_out e = { 0 };

	if (request(t, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, name, NULL) == 0)
		memcpy(&e, t->reply + sizeof(struct fuse_out_header), sizeof(e));
	return e;
}

static void forget(struct table_test *t, uint64_t node)
{
	struct fuse_forget_in f = { .nlookup = 1 };

	request(t, FUSE_FORGET, node, &f, sizeof(f), NULL, NULL);
}

static int32_t getattr(struct table_test *t, uint64_t node, struct fuse_attr *attr)
{
	struct fuse_getattr_in g = { 0 };
	struct fuse_attr_out a;

	if (request(t, FUSE_GETATTR, node, &g, sizeof(g), NULL, NULL) == 0 && attr) {
		memcpy(&a, t->reply + sizeof(struct fuse_out_header), sizeof(a));
		*attr = a.attr;
	}
	return t->error;
}

static struct fuse_node *node_of(struct table_test *t, uint64_t id)
{
	return fuse_node_get(t->s, id);
}

/* Descriptors of this process open on an inode that no longer has a name. */
static unsigned int deleted_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char link[512];
		ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);

		if (len > 0) {
			link[len] = 0;
			n += strstr(link, " (deleted)") != NULL;
		}
	}
	closedir(d);
	return n;
}

static int setup_nodes(void **state, unsigned int max_nodes, unsigned int max_handles)
{
	struct table_test *t = calloc(1, sizeof(*t));
	struct fuse_server_config c = { .name = "test",
					.cache = FUSE_CACHE_AUTO,
					.max_nodes = max_nodes,
					.max_handles = max_handles };
	struct fuse_init_in init = { .major = 7, .minor = 37 };

	assert_non_null(t);
	snprintf(t->root, sizeof(t->root), "/tmp/stratus-fuse-table.XXXXXX");
	assert_non_null(mkdtemp(t->root));
	c.root = t->root;
	assert_int_equal(fuse_server_new(&c, &t->s, NULL), 0);
	assert_int_equal(request(t, FUSE_INIT, 0, &init, sizeof(init), NULL, NULL), 0);
	*state = t;
	return 0;
}

static int setup(void **state)
{
	return setup_nodes(state, 0, 0);
}

static int teardown(void **state)
{
	struct table_test *t = *state;
	char cmd[128];

	fuse_server_destroy(t->s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->root);
	assert_int_equal(system(cmd), 0);
	free(t);
	return 0;
}

/* LOOKUP, FORGET, LOOKUP: the same descriptor, a new id; the old one stays stale. */
static void test_forgotten_node_is_cached(void **state)
{
	struct table_test *t = *state;
	struct fuse_entry_out e1, e2;
	struct fuse_attr a;
	int fd;

	host_file(t, "f");
	e1 = lookup(t, "f");
	assert_int_equal(t->error, 0);
	fd = node_of(t, e1.nodeid)->fd;
	forget(t, e1.nodeid);
	assert_int_equal(t->s->nr_cached, 1);
	assert_int_equal(getattr(t, e1.nodeid, NULL), -ESTALE);
	e2 = lookup(t, "f");
	assert_int_equal(t->error, 0);
	assert_true(e2.nodeid != e1.nodeid);
	assert_int_equal(node_of(t, e2.nodeid)->fd, fd); /* no reopen */
	assert_int_equal(t->s->nr_cached, 0);
	assert_int_equal(getattr(t, e2.nodeid, &a), 0);
	assert_int_equal(a.ino, e1.attr.ino);
	assert_int_equal(getattr(t, e1.nodeid, NULL), -ESTALE);
	/* Two lookups, one forget: still held, not cached. */
	lookup(t, "f");
	forget(t, e2.nodeid);
	assert_int_equal(t->s->nr_cached, 0);
	assert_int_equal(getattr(t, e2.nodeid, NULL), 0);
	/* A name that is gone: ENOENT, nothing added. */
	lookup(t, "missing");
	assert_int_equal(t->error, -ENOENT);
	assert_int_equal(t->s->nr_nodes, 2);
}

/* A full table evicts cached nodes, oldest first, never nodes the guest holds. */
static void test_full_table_evicts_cached(void **state)
{
	struct table_test *t;
	struct fuse_entry_out e[20];
	char name[16];
	unsigned int i;

	setup_nodes(state, 8, 4); /* the root and 7 more */
	t = *state;
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%02u", i);
		host_file(t, name);
		e[i] = lookup(t, name);
		assert_int_equal(t->error, 0);
		forget(t, e[i].nodeid);
		assert_true(t->s->nr_nodes <= 8);
	}
	assert_int_equal(t->s->nr_cached, 7);
	/* The newest are still cached: f19 comes back on the same descriptor, f00 does not. */
	assert_non_null(
		fuse_node_find(t->s, t->s->nodes[0].dev, e[19].attr.ino, t->s->nodes[0].mnt));
	assert_null(fuse_node_find(t->s, t->s->nodes[0].dev, e[0].attr.ino, t->s->nodes[0].mnt));
	/* Seven held: the eighth name finds no room (nothing cached is left to evict). */
	for (i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "f%02u", i);
		e[i] = lookup(t, name);
		assert_int_equal(t->error, 0);
	}
	assert_int_equal(t->s->nr_cached, 0);
	lookup(t, "f10");
	assert_int_equal(t->error, -ENFILE);
	for (i = 0; i < 7; i++)
		assert_int_equal(getattr(t, e[i].nodeid, NULL), 0);
	forget(t, e[0].nodeid);
	lookup(t, "f10");
	assert_int_equal(t->error, 0);
	teardown(state);
}

/* Files the guest opens get descriptors back from the cache when the budget runs out. */
static void test_handles_evict_cached(void **state)
{
	struct rlimit old, low = { .rlim_cur = 96 };
	struct fuse_open_in oi = { .flags = O_RDONLY };
	struct table_test *t;
	char name[16];
	unsigned int i, cached;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	setup_nodes(state, 0, 0); /* a budget of 72 descriptors, 72 nodes, 72 handles */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	t = *state;
	for (i = 0; i < 70; i++) {
		snprintf(name, sizeof(name), "c%02u", i);
		host_file(t, name);
		forget(t, lookup(t, name).nodeid);
		assert_int_equal(t->error, 1);
	}
	/* Caching stops at three quarters of the budget: the rest were closed. */
	cached = t->s->nr_cached;
	assert_true(cached >= 40 && cached <= 54);
	/* 30 files held and open: 60 descriptors, more than the cache leaves free. */
	for (i = 0; i < 30; i++) {
		struct fuse_entry_out e;

		snprintf(name, sizeof(name), "o%02u", i);
		host_file(t, name);
		e = lookup(t, name);
		assert_int_equal(t->error, 0);
		assert_int_equal(request(t, FUSE_OPEN, e.nodeid, &oi, sizeof(oi), NULL, NULL), 0);
	}
	assert_true(t->s->nr_cached < cached);
	assert_int_equal(t->s->nr_handles, 30);
	teardown(state);
}

/* The host says EMFILE (our limit shrank under us): cached nodes are closed, and it works. */
static void test_host_emfile_evicts_cached(void **state)
{
	struct table_test *t = *state;
	struct rlimit old, low;
	char name[16];
	unsigned int i;
	int lowest;

	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "e%02u", i);
		host_file(t, name);
		forget(t, lookup(t, name).nodeid);
	}
	host_file(t, "new");
	assert_int_equal(t->s->nr_cached, 40);
	lowest = dup(0); /* the lowest free descriptor number */
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* Every descriptor number below the limit is in use: the next open is EMFILE. */
	low = (struct rlimit){ .rlim_cur = (rlim_t)lowest, .rlim_max = old.rlim_max };
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	lookup(t, "new");
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(t->error, 0);
	assert_true(t->s->nr_cached < 40);
}

/* Deleting through us closes the node (at once if cached, else when forgotten). */
static void test_removed_nodes_are_closed(void **state)
{
	struct table_test *t = *state;
	struct fuse_rename_in ri = { .newdir = FUSE_ROOT_ID };
	struct fuse_entry_out held, cached, over;
	struct fuse_mkdir_in mi = { .mode = 0755 };
	unsigned int before = deleted_fds();

	host_file(t, "held");
	host_file(t, "cached");
	host_file(t, "over");
	host_file(t, "src");
	held = lookup(t, "held");
	cached = lookup(t, "cached");
	over = lookup(t, "over");
	forget(t, cached.nodeid);
	forget(t, over.nodeid);
	assert_int_equal(t->s->nr_cached, 2);
	/* A cached node whose name is unlinked: closed now. */
	assert_int_equal(request(t, FUSE_UNLINK, FUSE_ROOT_ID, NULL, 0, "cached", NULL), 0);
	assert_int_equal(t->s->nr_cached, 1);
	/* Renamed over: the replaced inode's cached node is closed too. */
	assert_int_equal(request(t, FUSE_RENAME, FUSE_ROOT_ID, &ri, sizeof(ri), "src", "over"), 0);
	assert_int_equal(t->s->nr_cached, 0);
	/* A held node stays usable until the guest forgets it, then it is not cached. */
	assert_int_equal(request(t, FUSE_UNLINK, FUSE_ROOT_ID, NULL, 0, "held", NULL), 0);
	assert_int_equal(getattr(t, held.nodeid, NULL), 0);
	assert_int_equal(deleted_fds(), before + 1);
	forget(t, held.nodeid);
	assert_int_equal(t->s->nr_cached, 0);
	assert_int_equal(deleted_fds(), before); /* nothing keeps a deleted file's blocks */
	/* A directory removed with RMDIR, likewise. */
	assert_int_equal(request(t, FUSE_MKDIR, FUSE_ROOT_ID, &mi, sizeof(mi), "d", NULL), 0);
	memcpy(&held, t->reply + sizeof(struct fuse_out_header), sizeof(held));
	assert_int_equal(request(t, FUSE_RMDIR, FUSE_ROOT_ID, NULL, 0, "d", NULL), 0);
	forget(t, held.nodeid);
	assert_int_equal(t->s->nr_cached, 0);
	/* A file with a second name keeps its node cached: it still has blocks in use. */
	{
		struct fuse_link_in li;
		struct fuse_entry_out a;

		host_file(t, "a");
		a = lookup(t, "a");
		li.oldnodeid = a.nodeid;
		assert_int_equal(request(t, FUSE_LINK, FUSE_ROOT_ID, &li, sizeof(li), "b", NULL),
				 0);
		forget(t, a.nodeid);
		forget(t, a.nodeid);
		assert_int_equal(request(t, FUSE_UNLINK, FUSE_ROOT_ID, NULL, 0, "a", NULL), 0);
		assert_int_equal(t->s->nr_cached, 1);
	}
}

/* Cached nodes older than the TTL are closed at the next request. */
static void test_cached_nodes_expire(void **state)
{
	struct table_test *t = *state;
	struct fuse_entry_out e;

	host_file(t, "old");
	e = lookup(t, "old");
	forget(t, e.nodeid);
	assert_int_equal(t->s->nr_cached, 1);
	getattr(t, FUSE_ROOT_ID, NULL);
	assert_int_equal(t->s->nr_cached, 1);
	t->s->nodes[t->s->lru_tail - 1].cached_at -= FUSE_NODE_CACHE_TTL + 1;
	getattr(t, FUSE_ROOT_ID, NULL);
	assert_int_equal(t->s->nr_cached, 0);
	assert_int_equal(t->s->nr_nodes, 1);
}

struct racer {
	char dir[64];
	atomic_bool stop;
};

static void *race_renames(void *arg)
{
	struct racer *r = arg;
	int dfd = open(r->dir, O_RDONLY | O_DIRECTORY);

	while (!atomic_load(&r->stop))
		renameat2(dfd, "r", dfd, "other", RENAME_EXCHANGE);
	close(dfd);
	return NULL;
}

/*
 * The name flips between two inodes while the guest looks it up, through the probe, the
 * open and the cache: every answer is one inode throughout (its attributes, the node's
 * descriptor, a GETATTR afterwards), never the probe's inode with the other's descriptor.
 */
static void test_lookup_racing_rename(void **state)
{
	struct table_test *t = *state;
	struct racer r = { .stop = false };
	struct stat a, b;
	time_t start;
	pthread_t th;
	unsigned int i, seen_a = 0, seen_b = 0;
	char path[128];

	host_file(t, "r");
	host_file(t, "other");
	snprintf(path, sizeof(path), "%s/r", t->root);
	assert_int_equal(lstat(path, &a), 0);
	snprintf(path, sizeof(path), "%s/other", t->root);
	assert_int_equal(lstat(path, &b), 0);
	snprintf(r.dir, sizeof(r.dir), "%s", t->root);
	snprintf(path, sizeof(path), "%s/r", t->root);
	{
		char other[128];

		snprintf(other, sizeof(other), "%s/other", t->root);
		if (renameat2(AT_FDCWD, path, AT_FDCWD, other, RENAME_EXCHANGE) < 0)
			skip(); /* a file system under /tmp without RENAME_EXCHANGE */
	}
	assert_int_equal(pthread_create(&th, NULL, race_renames, &r), 0);
	start = time(NULL);
	/* At least 20,000 rounds, until both inodes were seen (the racer ran); at most 5 min. */
	for (i = 0; i < 20000 || !seen_a || !seen_b; i++) {
		struct fuse_entry_out e = lookup(t, "r");
		struct fuse_node *n;
		struct fuse_attr attr;
		struct stat held;

		assert_true(time(NULL) - start < 300);
		assert_int_equal(t->error, 0);
		n = node_of(t, e.nodeid);
		assert_non_null(n);
		assert_int_equal(fstat(n->fd, &held), 0);
		assert_int_equal(held.st_ino, e.attr.ino);
		assert_true(e.attr.ino == a.st_ino || e.attr.ino == b.st_ino);
		assert_int_equal(getattr(t, e.nodeid, &attr), 0);
		assert_int_equal(attr.ino, e.attr.ino);
		seen_a += e.attr.ino == a.st_ino;
		seen_b += e.attr.ino == b.st_ino;
		forget(t, e.nodeid);
		if (i % 2)
			fuse_node_cache_shrink(t->s, 2); /* the next lookup probes, then opens */
	}
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forgotten_node_is_cached, setup, teardown),
		cmocka_unit_test(test_full_table_evicts_cached),
		cmocka_unit_test(test_handles_evict_cached),
		cmocka_unit_test_setup_teardown(test_host_emfile_evicts_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_nodes_are_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cached_nodes_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_racing_rename, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
