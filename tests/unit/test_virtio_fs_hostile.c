/*
 * Unit tests for virtio-fs (vmm/devices/virtio/fs.c) and its FUSE server (vmm/fuse_*.c):
 * what a hostile guest tries. Names with '/', "." and "..", names without a NUL or too long,
 * host symlinks (to "/", to /proc/self/fd, out of the share), forged node ids and handles,
 * lengths that lie, replies cut short, buffers outside guest RAM, writes to a read-only
 * share, a reset, and running the server out of descriptors.
 */
#include "virtio_fs_fake_guest.h"

/* Names the guest must not use, on every operation that takes one. */
static void test_bad_names(void **state)
{
	struct fs_test *t = *state;
	const char *bad[] = { "..", ".", "a/b", "../../etc", "/etc", "" };
	char longname[300];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct fuse_mkdir_in mi = { .mode = 0755 };
		struct part p[2] = { ARG(mi), NAME(bad[i]) };
		uint64_t fh;

		lookup(t, FUSE_ROOT_ID, bad[i]);
		assert_int_equal(t->error, -EINVAL);
		assert_int_equal(call(t, FUSE_MKDIR, FUSE_ROOT_ID, p, 2), -EINVAL);
		create(t, FUSE_ROOT_ID, bad[i], 0644, &fh);
		assert_int_equal(t->error, -EINVAL);
		p[0] = NAME(bad[i]);
		assert_int_equal(call(t, FUSE_UNLINK, FUSE_ROOT_ID, p, 1), -EINVAL);
	}
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	lookup(t, FUSE_ROOT_ID, longname);
	assert_int_equal(t->error, -ENAMETOOLONG);
	/* A name with no NUL in the request. */
	{
		struct part p = { "abc", 3 };

		assert_int_equal(call(t, FUSE_LOOKUP, FUSE_ROOT_ID, &p, 1), -EINVAL);
	}
	/* Rename to "../x" and into a forged directory id. */
	{
		struct fuse_rename_in ri = { .newdir = FUSE_ROOT_ID };
		struct part p[3] = { ARG(ri), NAME("f"), NAME("../escaped") };

		write_host_file(t, "f", "f");
		assert_int_equal(call(t, FUSE_RENAME, FUSE_ROOT_ID, p, 3), -EINVAL);
		ri.newdir = 0x500000002ULL;
		p[2] = NAME("g");
		assert_int_equal(call(t, FUSE_RENAME, FUSE_ROOT_ID, p, 3), -ESTALE);
	}
}

/* Host symlinks planted in the share, as the guest meets them. */
static void test_host_symlinks(void **state)
{
	struct fs_test *t = *state;
	char path[256], proc[64];
	struct fuse_entry_out root_link, proc_link, out_link;
	struct fuse_open_in oi = { .flags = O_RDONLY };
	struct part p = ARG(oi);

	host_path(t, "to-root", path, sizeof(path));
	assert_int_equal(symlink("/", path), 0);
	host_path(t, "to-proc", path, sizeof(path));
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", 3);
	assert_int_equal(symlink(proc, path), 0);
	host_path(t, "to-outside", path, sizeof(path));
	assert_int_equal(symlink(t->outside, path), 0);
	snprintf(path, sizeof(path), "%s/secret", t->outside);
	{
		int fd = open(path, O_WRONLY | O_CREAT, 0600);

		assert_true(fd >= 0);
		close(fd);
	}
	root_link = lookup(t, FUSE_ROOT_ID, "to-root");
	assert_int_equal(t->error, 0);
	assert_true(S_ISLNK(root_link.attr.mode)); /* the link, not "/" */
	proc_link = lookup(t, FUSE_ROOT_ID, "to-proc");
	assert_true(S_ISLNK(proc_link.attr.mode));
	out_link = lookup(t, FUSE_ROOT_ID, "to-outside");
	assert_true(S_ISLNK(out_link.attr.mode));
	/* Through a link as a parent: not a directory, whatever it points at. */
	lookup(t, root_link.nodeid, "etc");
	assert_int_equal(t->error, -ENOTDIR);
	lookup(t, out_link.nodeid, "secret");
	assert_int_equal(t->error, -ENOTDIR);
	/* Opening a link node: never followed. */
	assert_int_equal(call(t, FUSE_OPEN, proc_link.nodeid, &p, 1), -ELOOP);
	assert_int_equal(call(t, FUSE_OPENDIR, root_link.nodeid, &p, 1), -ENOTDIR);
	/* xattrs of a link are never its target's. */
	{
		struct fuse_getxattr_in gi = { .size = 64 };
		struct part gp[2] = { ARG(gi), NAME("user.x") };

		assert_int_equal(call(t, FUSE_GETXATTR, out_link.nodeid, gp, 2), -ENODATA);
	}
	/* LINK of the symlink node makes a second link, not a link to its target. */
	{
		struct fuse_link_in li = { .oldnodeid = out_link.nodeid };
		struct part lp[2] = { ARG(li), NAME("hard-to-link") };
		struct stat st;

		assert_int_equal(call(t, FUSE_LINK, FUSE_ROOT_ID, lp, 2), 0);
		host_path(t, "hard-to-link", path, sizeof(path));
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISLNK(st.st_mode));
	}
	/* CREATE over a planted link refuses to open through it. */
	{
		struct fuse_create_in ci = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0644 };
		struct part cp[2] = { ARG(ci), NAME("to-outside") };

		assert_int_not_equal(call(t, FUSE_CREATE, FUSE_ROOT_ID, cp, 2), 0);
		snprintf(path, sizeof(path), "%s/secret", t->outside);
		assert_int_equal(access(path, F_OK), 0);
	}
}

/* Ids the guest invents: never a node or handle they do not name. */
static void test_forged_ids(void **state)
{
	struct fs_test *t = *state;
	struct fuse_getattr_in gi = { 0 };
	struct part p = ARG(gi);
	uint64_t ids[] = { 0, 2, 0xffffffffULL, 0x100000001ULL, 1ULL << 40, ~0ULL };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ids); i++)
		assert_int_equal(call(t, FUSE_GETATTR, ids[i], &p, 1), -ESTALE);
	for (i = 0; i < ARRAY_SIZE(ids); i++) {
		assert_int_equal(fs_read(t, FUSE_ROOT_ID, ids[i], 0, 10), -EBADF);
		assert_int_equal(fs_write(t, FUSE_ROOT_ID, ids[i], 0, "x", 1), -EBADF);
	}
	{
		struct fuse_link_in li = { .oldnodeid = 0x700000003ULL };
		struct part lp[2] = { ARG(li), NAME("l") };

		assert_int_equal(call(t, FUSE_LINK, FUSE_ROOT_ID, lp, 2), -ESTALE);
	}
	/* An unknown opcode, and ones we do not serve. */
	assert_int_equal(call(t, 9999, FUSE_ROOT_ID, NULL, 0), -ENOSYS);
	assert_int_equal(call(t, FUSE_GETLK, FUSE_ROOT_ID, NULL, 0), -ENOSYS);
	assert_int_equal(call(t, FUSE_IOCTL, FUSE_ROOT_ID, NULL, 0), -ENOSYS);
}

static void test_bad_lengths(void **state)
{
	struct fs_test *t = *state;
	struct fuse_in_header *in;
	struct fuse_getattr_in gi = { 0 };
	struct part p = ARG(gi);
	uint32_t len;
	uint64_t fh = 0;
	struct fuse_entry_out e = create(t, FUSE_ROOT_ID, "w", 0644, &fh);

	/* len larger than the chain, and smaller than a header. */
	len = build(t, FUSE_GETATTR, FUSE_ROOT_ID, &p, 1);
	in = fake_ptr(&t->d, t->req_gpa);
	in->len = len + 100;
	{
		struct fake_buf b[2] = { { t->req_gpa, len, false }, { t->reply_gpa, 4096, true } };

		collect(t, submit(t, REQUESTQ, b, 2));
		assert_int_equal(t->error, -EINVAL);
		in->len = 20;
		collect(t, submit(t, REQUESTQ, b, 2));
		assert_int_equal(t->error, -EINVAL);
		/* Too short for the opcode's arguments. */
		in->len = sizeof(*in) + 4;
		collect(t, submit(t, REQUESTQ, b, 2));
		assert_int_equal(t->error, -EINVAL);
		/* A chain shorter than a header: answered with EINVAL, unique 0. */
		b[0].len = 12;
		assert_int_equal(submit(t, REQUESTQ, b, 2), sizeof(struct fuse_out_header));
	}
	/* A WRITE whose size claims more data than it carries, or more than max_write. */
	{
		struct fuse_write_in wi = { .fh = fh, .size = 100 };
		struct part wp[2] = { ARG(wi), { "abc", 3 } };

		assert_int_equal(call(t, FUSE_WRITE, e.nodeid, wp, 2), -EINVAL);
		wi.size = (uint32_t)MIB(2);
		assert_int_equal(call(t, FUSE_WRITE, e.nodeid, wp, 2), -EINVAL);
		wi.size = 3;
		wi.offset = ~0ULL - 1;
		assert_int_equal(call(t, FUSE_WRITE, e.nodeid, wp, 2), -EINVAL);
	}
	/* No room for a reply: nothing written; 10 bytes: not even a header. */
	assert_int_equal(call_room(t, FUSE_GETATTR, FUSE_ROOT_ID, &p, 1, 10), 1);
	assert_int_equal(t->used, 0);
	/* A reply area smaller than the answer: cut, never overrun. */
	{
		uint8_t *r = fake_ptr(&t->d, t->reply_gpa);

		assert_int_equal(call_room(t, FUSE_GETATTR, FUSE_ROOT_ID, &p, 1, 40), 0);
		assert_int_equal(t->used, 40);
		assert_int_equal(r[40], 0xee); /* call_room's fill, untouched */
	}
	/* A request too big to copy (not a WRITE). */
	{
		static char huge[REQ_MAX - 64];

		memset(huge, 'a', sizeof(huge));
		huge[sizeof(huge) - 1] = 0;
		p = (struct part){ huge, sizeof(huge) };
		assert_int_equal(call(t, FUSE_LOOKUP, FUSE_ROOT_ID, &p, 1), -E2BIG);
	}
}

/* A buffer outside guest RAM breaks the queue: the device asks for a reset. */
static void test_buffer_outside_ram(void **state)
{
	struct fs_test *t = *state;
	struct fake_buf b[2] = { { FAKE_RAM_GPA + RAM_SIZE - 8, 64, false },
				 { t->reply_gpa, 4096, true } };

	assert_int_equal(submit(t, REQUESTQ, b, 2), NO_USED);
	assert_true(fake_read(&t->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_readonly(void **state)
{
	struct fs_test *t = *state;
	struct fuse_mkdir_in mi = { .mode = 0755 };
	struct part p[2] = { ARG(mi), NAME("d") };
	struct fuse_entry_out e;
	struct fuse_open_in oi = { .flags = O_RDWR };
	struct part op = ARG(oi);
	uint64_t fh;

	write_host_file(t, "ro", "read me");
	e = lookup(t, FUSE_ROOT_ID, "ro");
	assert_int_equal(call(t, FUSE_MKDIR, FUSE_ROOT_ID, p, 2), -EROFS);
	create(t, FUSE_ROOT_ID, "new", 0644, &fh);
	assert_int_equal(t->error, -EROFS);
	assert_int_equal(call(t, FUSE_OPEN, e.nodeid, &op, 1), -EROFS);
	oi.flags = O_RDONLY | O_TRUNC;
	assert_int_equal(call(t, FUSE_OPEN, e.nodeid, &op, 1), -EROFS);
	p[0] = NAME("ro");
	assert_int_equal(call(t, FUSE_UNLINK, FUSE_ROOT_ID, p, 1), -EROFS);
	{
		struct fuse_setattr_in si = { .valid = FATTR_SIZE };
		struct part sp = ARG(si);

		assert_int_equal(call(t, FUSE_SETATTR, e.nodeid, &sp, 1), -EROFS);
	}
	fh = open_file(t, e.nodeid, O_RDONLY);
	assert_int_equal(fs_write(t, e.nodeid, fh, 0, "x", 1), -EROFS);
	assert_int_equal(fs_read(t, e.nodeid, fh, 0, 100), 0);
	assert_int_equal(t->len, 7);
	{
		struct fuse_access_in ai = { .mask = W_OK };
		struct part ap = ARG(ai);

		assert_int_equal(call(t, FUSE_ACCESS, e.nodeid, &ap, 1), -EROFS);
	}
}

static void test_cache_none(void **state)
{
	struct fs_test *t = *state;
	struct fuse_open_out o;
	struct fuse_entry_out e;
	struct fuse_open_in oi = { .flags = O_RDONLY };
	struct part p = ARG(oi);

	init_fuse(t, 37);
	write_host_file(t, "c", "c");
	e = lookup(t, FUSE_ROOT_ID, "c");
	assert_int_equal(e.entry_valid, 0);
	assert_int_equal(e.attr_valid, 0);
	assert_int_equal(call(t, FUSE_OPEN, e.nodeid, &p, 1), 0);
	memcpy(&o, t->reply, sizeof(o));
	assert_true(o.open_flags & FOPEN_DIRECT_IO);
	/* A device reset forgets everything; the next driver must INIT again. */
	fake_write(&t->d, VIRTIO_MMIO_STATUS, 0);
	bring_up(t);
	lookup(t, FUSE_ROOT_ID, "c");
	assert_int_equal(t->error, -EIO);
	init_fuse(t, 37);
	assert_int_equal(fs_read(t, e.nodeid, o.fh, 0, 1), -EBADF);
}

/* Running the server out of descriptors: ENFILE/EMFILE, and it recovers after FORGET. */
static void test_fd_exhaustion(void **state)
{
	struct rlimit old, low = { .rlim_cur = 96 };
	struct fs_test *t;
	struct fuse_entry_out e[80];
	unsigned int i, ok = 0, failed = 0;
	uint64_t fhs[80];
	char name[32];

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	fs_setup_opts(state, false, VM_FS_CACHE_AUTO); /* tables: 36 nodes, 12 handles */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	t = *state;
	init_fuse(t, 37);
	for (i = 0; i < 80; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		write_host_file(t, name, "x");
	}
	for (i = 0; i < 80; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		e[i] = lookup(t, FUSE_ROOT_ID, name);
		if (t->error == 0)
			ok++;
		else
			assert_int_equal(t->error, -ENFILE), failed++;
	}
	assert_true(ok >= 16 && ok < 80);
	assert_true(failed > 0);
	/* Open files: EMFILE past the handle table. */
	for (i = 0, failed = 0; i < ok; i++) {
		struct fuse_open_in oi = { .flags = O_RDONLY };
		struct part p = ARG(oi);

		fhs[i] = 0;
		if (call(t, FUSE_OPEN, e[i].nodeid, &p, 1) == 0)
			memcpy(&fhs[i], t->reply, sizeof(fhs[i]));
		else
			assert_int_equal(t->error, -EMFILE), failed++;
	}
	assert_true(failed > 0);
	for (i = 0; i < ok; i++) {
		if (fhs[i])
			release(t, e[i].nodeid, fhs[i], false);
		forget(t, e[i].nodeid, 1);
	}
	/* Everything forgotten: the rest can be looked up now. */
	for (i = ok; i < 80 && i < ok + 10; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		lookup(t, FUSE_ROOT_ID, name);
		assert_int_equal(t->error, 0);
	}
	teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_lengths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_cache_none, setup_uninit, teardown),
		cmocka_unit_test(test_fd_exhaustion),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
