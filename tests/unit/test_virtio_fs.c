/*
 * Unit tests for virtio-fs (vmm/devices/virtio/fs.c, virtio 1.2 §5.11) and its FUSE server
 * (vmm/fuse_*.c) through the virtio-mmio transport and the fake driver: configuration
 * space, INIT, each FUSE opcode we serve (checked on the host directory, not only through
 * replies), headers and data split across descriptors. What a hostile guest tries is in
 * test_virtio_fs_hostile.c; the helpers in virtio_fs_fake_guest.c.
 */
#include "virtio_fs_fake_guest.h"

static void test_config(void **state)
{
	struct fs_test *t = *state;
	struct virtio_fs_config c;

	assert_int_equal(fake_read(&t->d, VIRTIO_MMIO_DEVICE_ID), 26);
	bus_access(&t->d.bus, FAKE_MMIO_BASE + VIRTIO_MMIO_CONFIG, (uint8_t *)&c, sizeof(c), false);
	assert_memory_equal(c.tag, "myfs\0\0\0\0", 8);
	assert_int_equal(c.num_request_queues, 1);
}

static void test_init(void **state)
{
	struct fs_test *t = *state;
	struct fuse_init_in old = { .major = 7, .minor = 26 };
	struct fuse_init_out out;
	struct part p = ARG(old);

	/* Nothing before INIT. */
	lookup(t, FUSE_ROOT_ID, "x");
	assert_int_equal(t->error, -EIO);
	/* Too old a protocol, a wrong major. */
	assert_int_equal(call(t, FUSE_INIT, 0, &p, 1), -EPROTO);
	old.minor = 38;
	old.major = 8;
	assert_int_equal(call(t, FUSE_INIT, 0, &p, 1), -EPROTO);
	init_fuse(t, 37);
	memcpy(&out, t->reply, sizeof(out));
	assert_int_equal(t->len, sizeof(out));
	assert_int_equal(out.major, 7);
	assert_int_equal(out.max_write, MIB(1));
	assert_int_equal(out.max_pages, 256);
	assert_int_equal(out.max_readahead, 131072);
	/* Only what we serve: no POSIX locks, no writeback cache. */
	assert_int_equal(out.flags, FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES);
	/* A second INIT is a protocol error; DESTROY allows a new one. */
	old.major = 7;
	assert_int_equal(call(t, FUSE_INIT, 0, &p, 1), -EPROTO);
	assert_int_equal(call(t, FUSE_DESTROY, 0, NULL, 0), 0);
	init_fuse(t, 31);
}

static void test_create_write_read(void **state)
{
	struct fs_test *t = *state;
	char path[256], buf[64] = { 0 };
	uint64_t fh = 0;
	struct fuse_entry_out e = create(t, FUSE_ROOT_ID, "hello.txt", 0640, &fh);
	struct fuse_write_out w;
	struct stat st;
	int fd;

	assert_int_equal(t->error, 0);
	assert_true(S_ISREG(e.attr.mode));
	assert_int_equal(e.attr.mode & 0777, 0640);
	assert_int_equal(fs_write(t, e.nodeid, fh, 0, "hello, world", 12), 0);
	memcpy(&w, t->reply, sizeof(w));
	assert_int_equal(w.size, 12);
	/* On the host, with the mode asked for. */
	host_path(t, "hello.txt", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 12);
	close(fd);
	assert_string_equal(buf, "hello, world");
	/* Read back, at an offset, and past the end. */
	assert_int_equal(fs_read(t, e.nodeid, fh, 7, 100), 0);
	assert_int_equal(t->len, 5);
	assert_memory_equal(t->reply, "world", 5);
	assert_int_equal(fs_read(t, e.nodeid, fh, 100, 100), 0);
	assert_int_equal(t->len, 0);
	release(t, e.nodeid, fh, false);
	/* A released handle is gone. */
	assert_int_equal(fs_read(t, e.nodeid, fh, 0, 10), -EBADF);
	/* O_EXCL on an existing name. */
	create(t, FUSE_ROOT_ID, "hello.txt", 0600, &fh);
	assert_int_equal(t->error, -EEXIST);
}

/* A WRITE whose header and data are spread over many small descriptors. */
static void test_split_descriptors(void **state)
{
	struct fs_test *t = *state;
	uint64_t fh = 0;
	struct fuse_entry_out e = create(t, FUSE_ROOT_ID, "split", 0644, &fh);
	uint8_t data[3000];
	struct fake_buf bufs[16];
	uint32_t len, off = 0, n = 0, cut[] = { 7, 13, 1, 19, 40, 3, 500, 1000 };
	unsigned int i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	{
		struct fuse_write_in in = { .fh = fh, .offset = 0, .size = sizeof(data) };
		struct part p[2] = { ARG(in), { data, sizeof(data) } };

		len = build(t, FUSE_WRITE, e.nodeid, p, 2);
	}
	for (i = 0; i < ARRAY_SIZE(cut) && off < len; i++) {
		bufs[n++] = (struct fake_buf){ t->req_gpa + off, MIN(cut[i], len - off), false };
		off += MIN(cut[i], len - off);
	}
	bufs[n++] = (struct fake_buf){ t->req_gpa + off, len - off, false };
	/* The reply split too: 5 + 11 bytes of out header, then the rest. */
	bufs[n++] = (struct fake_buf){ t->reply_gpa, 5, true };
	bufs[n++] = (struct fake_buf){ t->reply_gpa + 5, 11, true };
	bufs[n++] = (struct fake_buf){ t->reply_gpa + 16, 64, true };
	collect(t, submit(t, REQUESTQ, bufs, n));
	assert_int_equal(t->error, 0);
	assert_int_equal(((struct fuse_write_out *)t->reply)->size, sizeof(data));
	assert_int_equal(fs_read(t, e.nodeid, fh, 0, sizeof(data)), 0);
	assert_int_equal(t->len, sizeof(data));
	assert_memory_equal(t->reply, data, sizeof(data));
}

static void test_lookup_getattr_forget(void **state)
{
	struct fs_test *t = *state;
	struct fuse_getattr_in gi = { 0 };
	struct part p = ARG(gi);
	struct fuse_attr_out a;
	struct fuse_entry_out e, e2;

	write_host_file(t, "file", "12345");
	e = lookup(t, FUSE_ROOT_ID, "file");
	assert_int_equal(t->error, 0);
	assert_int_equal(e.attr.size, 5);
	assert_int_equal(e.entry_valid, 1); /* cache=auto */
	e2 = lookup(t, FUSE_ROOT_ID, "file");
	assert_true(e2.nodeid == e.nodeid); /* one node per inode */
	assert_int_equal(call(t, FUSE_GETATTR, e.nodeid, &p, 1), 0);
	memcpy(&a, t->reply, sizeof(a));
	assert_int_equal(a.attr.size, 5);
	assert_int_equal(a.attr.ino, e.attr.ino);
	lookup(t, FUSE_ROOT_ID, "missing");
	assert_int_equal(t->error, -ENOENT);
	/* Two lookups: one FORGET of 1 keeps it, the second frees it; its id is then stale. */
	forget(t, e.nodeid, 1);
	assert_int_equal(call(t, FUSE_GETATTR, e.nodeid, &p, 1), 0);
	forget(t, e.nodeid, 1);
	assert_int_equal(call(t, FUSE_GETATTR, e.nodeid, &p, 1), -ESTALE);
	/* A new lookup gets a new id (the slot's generation moved on). */
	e2 = lookup(t, FUSE_ROOT_ID, "file");
	assert_true(e2.nodeid != e.nodeid);
	/* BATCH_FORGET, with a count larger than the request holds. */
	{
		struct {
			struct fuse_batch_forget_in in;
			struct fuse_forget_one one;
		} bf = { { .count = 1000 }, { .nodeid = e2.nodeid, .nlookup = 1 } };
		struct part bp = ARG(bf);
		uint32_t len = build(t, FUSE_BATCH_FORGET, 0, &bp, 1);
		struct fake_buf buf = { t->req_gpa, len, false };

		assert_int_equal(submit(t, HIPRIO, &buf, 1), 0);
	}
	assert_int_equal(call(t, FUSE_GETATTR, e2.nodeid, &p, 1), -ESTALE);
	/* The root is never forgotten. */
	forget(t, FUSE_ROOT_ID, 1000);
	assert_int_equal(call(t, FUSE_GETATTR, FUSE_ROOT_ID, &p, 1), 0);
}

static void test_dirs(void **state)
{
	struct fs_test *t = *state;
	struct fuse_mkdir_in mi = { .mode = 0750 };
	struct part p[2] = { ARG(mi), NAME("sub") };
	struct fuse_entry_out d;
	char path[256];
	struct stat st;

	assert_int_equal(call(t, FUSE_MKDIR, FUSE_ROOT_ID, p, 2), 0);
	memcpy(&d, t->reply, sizeof(d));
	assert_true(S_ISDIR(d.attr.mode));
	host_path(t, "sub", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0750);
	write_host_file(t, "sub/inner", "x");
	p[0] = NAME("sub");
	assert_int_equal(call(t, FUSE_RMDIR, FUSE_ROOT_ID, p, 1), -ENOTEMPTY);
	p[0] = NAME("inner");
	assert_int_equal(call(t, FUSE_UNLINK, d.nodeid, p, 1), 0);
	assert_int_equal(call(t, FUSE_UNLINK, d.nodeid, p, 1), -ENOENT);
	p[0] = NAME("sub");
	assert_int_equal(call(t, FUSE_RMDIR, FUSE_ROOT_ID, p, 1), 0);
	assert_int_equal(stat(path, &st), -1);
}

/* READDIR and READDIRPLUS over 300 names, in pages, each name once. */
static void test_readdir(void **state)
{
	struct fs_test *t = *state;
	struct fuse_open_in oi = { 0 };
	struct part p = ARG(oi);
	struct fuse_open_out oo;
	char name[64];
	unsigned int i, pass;

	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "entry-%03u", i);
		write_host_file(t, name, "");
	}
	for (pass = 0; pass < 2; pass++) {
		bool plus = pass == 1;
		uint8_t seen[300] = { 0 };
		uint64_t off = 0;
		unsigned int total = 0, dots = 0;

		assert_int_equal(call(t, FUSE_OPENDIR, FUSE_ROOT_ID, &p, 1), 0);
		memcpy(&oo, t->reply, sizeof(oo));
		for (;;) {
			struct fuse_read_in ri = { .fh = oo.fh, .offset = off, .size = 4096 };
			struct part rp = ARG(ri);
			uint32_t pos = 0;

			assert_int_equal(call(t, plus ? FUSE_READDIRPLUS : FUSE_READDIR,
					      FUSE_ROOT_ID, &rp, 1),
					 0);
			if (t->len == 0)
				break;
			assert_true(t->len <= 4096);
			while (pos < t->len) {
				struct fuse_entry_out *e = (void *)(t->reply + pos);
				struct fuse_dirent *de =
					(void *)(t->reply + pos + (plus ? sizeof(*e) : 0));
				char n[256] = { 0 };

				memcpy(n, de->name, de->namelen);
				if (!strcmp(n, ".") || !strcmp(n, "..")) {
					dots++;
					if (plus)
						assert_int_equal(e->nodeid, 0);
				} else {
					assert_int_equal(sscanf(n, "entry-%u", &i), 1);
					assert_true(i < 300);
					assert_int_equal(seen[i]++, 0);
					total++;
					if (plus) {
						assert_true(e->nodeid != 0);
						assert_true(S_ISREG(e->attr.mode));
						forget(t, e->nodeid, 1);
					}
				}
				off = de->off;
				pos += (plus ? sizeof(*e) : 0) +
				       FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + de->namelen);
			}
		}
		assert_int_equal(total, 300);
		assert_int_equal(dots, 2);
		release(t, FUSE_ROOT_ID, oo.fh, true);
	}
	/* A file handle is not a directory handle. */
	{
		struct fuse_read_in ri = { .fh = 12345, .size = 4096 };
		struct part rp = ARG(ri);

		assert_int_equal(call(t, FUSE_READDIR, FUSE_ROOT_ID, &rp, 1), -EBADF);
	}
}

static void test_rename_link_symlink(void **state)
{
	struct fs_test *t = *state;
	struct fuse_rename_in ri = { .newdir = FUSE_ROOT_ID };
	struct fuse_rename2_in r2 = { .newdir = FUSE_ROOT_ID, .flags = RENAME_NOREPLACE };
	struct part p[3];
	struct fuse_entry_out a, l;
	char path[256], target[64] = { 0 };
	struct stat st;

	write_host_file(t, "a", "A");
	write_host_file(t, "b", "B");
	p[0] = ARG(ri);
	p[1] = NAME("a");
	p[2] = NAME("c");
	assert_int_equal(call(t, FUSE_RENAME, FUSE_ROOT_ID, p, 3), 0);
	host_path(t, "c", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	p[0] = ARG(r2);
	p[1] = NAME("c");
	p[2] = NAME("b");
	assert_int_equal(call(t, FUSE_RENAME2, FUSE_ROOT_ID, p, 3), -EEXIST);
	r2.flags = RENAME_EXCHANGE;
	assert_int_equal(call(t, FUSE_RENAME2, FUSE_ROOT_ID, p, 3), 0);
	r2.flags = 1u << 20;
	assert_int_equal(call(t, FUSE_RENAME2, FUSE_ROOT_ID, p, 3), -EINVAL);
	/* LINK: a second name for the inode, same node id. */
	a = lookup(t, FUSE_ROOT_ID, "b");
	{
		struct fuse_link_in li = { .oldnodeid = a.nodeid };

		p[0] = ARG(li);
		p[1] = NAME("b2");
		assert_int_equal(call(t, FUSE_LINK, FUSE_ROOT_ID, p, 2), 0);
		memcpy(&l, t->reply, sizeof(l));
		assert_true(l.nodeid == a.nodeid);
		assert_int_equal(l.attr.nlink, 2);
	}
	/* SYMLINK and READLINK; the link is not followed by the host. */
	p[0] = NAME("ln");
	p[1] = NAME("/etc/passwd");
	assert_int_equal(call(t, FUSE_SYMLINK, FUSE_ROOT_ID, p, 2), 0);
	memcpy(&l, t->reply, sizeof(l));
	assert_true(S_ISLNK(l.attr.mode));
	host_path(t, "ln", path, sizeof(path));
	assert_int_equal(readlink(path, target, sizeof(target)), 11);
	assert_int_equal(call(t, FUSE_READLINK, l.nodeid, NULL, 0), 0);
	assert_int_equal(t->len, 11);
	assert_memory_equal(t->reply, "/etc/passwd", 11);
	assert_int_equal(call(t, FUSE_READLINK, a.nodeid, NULL, 0), -EINVAL);
	/* MKNOD: a FIFO. */
	{
		struct fuse_mknod_in mi = { .mode = S_IFIFO | 0600 };

		p[0] = ARG(mi);
		p[1] = NAME("fifo");
		assert_int_equal(call(t, FUSE_MKNOD, FUSE_ROOT_ID, p, 2), 0);
		host_path(t, "fifo", path, sizeof(path));
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISFIFO(st.st_mode));
		memcpy(&l, t->reply, sizeof(l));
		/* Never opened by the host: the guest serves FIFOs itself. */
		{
			struct fuse_open_in oi = { .flags = O_RDONLY };
			struct part op = ARG(oi);

			assert_int_equal(call(t, FUSE_OPEN, l.nodeid, &op, 1), -ENXIO);
		}
	}
}

static void test_setattr(void **state)
{
	struct fs_test *t = *state;
	struct fuse_setattr_in in = { .valid = FATTR_MODE | FATTR_SIZE | FATTR_MTIME,
				      .mode = 0604,
				      .size = 3,
				      .mtime = 1000000000 };
	struct part p = ARG(in);
	struct fuse_entry_out e;
	struct fuse_attr_out a;
	char path[256];
	struct stat st;

	write_host_file(t, "f", "abcdef");
	e = lookup(t, FUSE_ROOT_ID, "f");
	assert_int_equal(call(t, FUSE_SETATTR, e.nodeid, &p, 1), 0);
	memcpy(&a, t->reply, sizeof(a));
	assert_int_equal(a.attr.size, 3);
	assert_int_equal(a.attr.mode & 07777, 0604);
	host_path(t, "f", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_mode & 07777, 0604);
	assert_int_equal(st.st_mtime, 1000000000);
	/* Owner change (we may or may not be root: the host decides, we report it). */
	in.valid = FATTR_UID | FATTR_GID;
	in.uid = getuid();
	in.gid = getgid();
	assert_int_equal(call(t, FUSE_SETATTR, e.nodeid, &p, 1), 0);
	/* A file handle that does not exist. */
	in.valid = FATTR_FH | FATTR_SIZE;
	in.fh = 77;
	assert_int_equal(call(t, FUSE_SETATTR, e.nodeid, &p, 1), -EBADF);
	/* Truncating through a symlink node never touches the target. */
	{
		struct part sp[2] = { NAME("sl"), NAME("f") };
		struct fuse_entry_out l;

		assert_int_equal(call(t, FUSE_SYMLINK, FUSE_ROOT_ID, sp, 2), 0);
		memcpy(&l, t->reply, sizeof(l));
		in.valid = FATTR_SIZE;
		in.size = 0;
		assert_int_equal(call(t, FUSE_SETATTR, l.nodeid, &p, 1), -EINVAL);
		in.valid = FATTR_MODE;
		assert_int_equal(call(t, FUSE_SETATTR, l.nodeid, &p, 1), -EOPNOTSUPP);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, 3);
	}
}

static void test_file_ops(void **state)
{
	struct fs_test *t = *state;
	uint64_t fh = 0, fh2 = 0;
	struct fuse_entry_out e = create(t, FUSE_ROOT_ID, "data", 0644, &fh);
	struct fuse_entry_out e2 = create(t, FUSE_ROOT_ID, "copy", 0644, &fh2);
	static uint8_t block[65536];
	struct part p;

	memset(block, 'z', sizeof(block));
	assert_int_equal(fs_write(t, e.nodeid, fh, 1 << 20, block, sizeof(block)), 0);
	/* FSYNC (data only and full), FLUSH. */
	{
		struct fuse_fsync_in fi = { .fh = fh, .fsync_flags = 1 };

		p = ARG(fi);
		assert_int_equal(call(t, FUSE_FSYNC, e.nodeid, &p, 1), 0);
		fi.fsync_flags = 0;
		assert_int_equal(call(t, FUSE_FSYNC, e.nodeid, &p, 1), 0);
		fi.fh = 999;
		assert_int_equal(call(t, FUSE_FSYNC, e.nodeid, &p, 1), -EBADF);
	}
	{
		struct fuse_flush_in fl = { .fh = fh };

		p = ARG(fl);
		assert_int_equal(call(t, FUSE_FLUSH, e.nodeid, &p, 1), 0);
	}
	/* LSEEK: the data starts at 1 MiB, the hole before it. */
	{
		struct fuse_lseek_in li = { .fh = fh, .offset = 0, .whence = SEEK_DATA };
		struct fuse_lseek_out lo;

		p = ARG(li);
		assert_int_equal(call(t, FUSE_LSEEK, e.nodeid, &p, 1), 0);
		memcpy(&lo, t->reply, sizeof(lo));
		assert_true(lo.offset <= (1 << 20));
		li.whence = SEEK_END;
		assert_int_equal(call(t, FUSE_LSEEK, e.nodeid, &p, 1), -EINVAL);
	}
	/* FALLOCATE grows the file. */
	{
		struct fuse_fallocate_in fa = { .fh = fh, .offset = 0, .length = 4 << 20 };
		struct fuse_attr_out a;
		struct fuse_getattr_in gi = { 0 };
		struct part gp = ARG(gi);

		p = ARG(fa);
		assert_int_equal(call(t, FUSE_FALLOCATE, e.nodeid, &p, 1), 0);
		assert_int_equal(call(t, FUSE_GETATTR, e.nodeid, &gp, 1), 0);
		memcpy(&a, t->reply, sizeof(a));
		assert_int_equal(a.attr.size, 4 << 20);
	}
	/* COPY_FILE_RANGE of the 64 KiB block. */
	{
		struct fuse_copy_file_range_in ci = { .fh_in = fh,
						      .off_in = 1 << 20,
						      .nodeid_out = e2.nodeid,
						      .fh_out = fh2,
						      .off_out = 0,
						      .len = sizeof(block) };
		struct fuse_write_out wo;

		p = ARG(ci);
		assert_int_equal(call(t, FUSE_COPY_FILE_RANGE, e.nodeid, &p, 1), 0);
		memcpy(&wo, t->reply, sizeof(wo));
		assert_int_equal(wo.size, sizeof(block));
		assert_int_equal(fs_read(t, e2.nodeid, fh2, 0, sizeof(block)), 0);
		assert_int_equal(t->len, sizeof(block));
		assert_memory_equal(t->reply, block, sizeof(block));
		ci.flags = 1;
		assert_int_equal(call(t, FUSE_COPY_FILE_RANGE, e.nodeid, &p, 1), -EINVAL);
	}
	/* STATFS and ACCESS. */
	{
		struct fuse_statfs_out so;
		struct fuse_access_in ai = { .mask = R_OK | W_OK };

		assert_int_equal(call(t, FUSE_STATFS, FUSE_ROOT_ID, NULL, 0), 0);
		memcpy(&so, t->reply, sizeof(so));
		assert_true(so.st.bsize > 0);
		assert_true(so.st.namelen >= 255);
		p = ARG(ai);
		assert_int_equal(call(t, FUSE_ACCESS, e.nodeid, &p, 1), 0);
		ai.mask = X_OK; /* root, but nobody may execute a 0644 file */
		assert_int_equal(call(t, FUSE_ACCESS, e.nodeid, &p, 1), -EACCES);
	}
	/* A READ bigger than max_write is cut to it. */
	assert_int_equal(fs_read(t, e.nodeid, fh, 0, 8 << 20), 0);
	assert_int_equal(t->len, MIB(1));
}

static void test_xattrs(void **state)
{
	struct fs_test *t = *state;
	struct fuse_setxattr_in si = { .size = 5 };
	struct fuse_getxattr_in gi = { .size = 0 };
	/* Without FUSE_SETXATTR_EXT the guest sends the 8-byte fuse_setxattr_in. */
	struct part p[3] = { { &si, FUSE_COMPAT_SETXATTR_IN_SIZE },
			     NAME("user.test"),
			     { "value", 5 } };
	struct fuse_getxattr_out go;
	struct fuse_entry_out e;
	char path[256];

	write_host_file(t, "x", "");
	e = lookup(t, FUSE_ROOT_ID, "x");
	host_path(t, "x", path, sizeof(path));
	if (setxattr(path, "user.probe", "1", 1, 0) < 0)
		skip(); /* the file system under /tmp has no user xattrs (tmpfs before 6.6) */
	assert_int_equal(call(t, FUSE_SETXATTR, e.nodeid, p, 3), 0);
	/* Size probe, then the value, then a buffer too small. */
	p[0] = ARG(gi);
	p[1] = NAME("user.test");
	assert_int_equal(call(t, FUSE_GETXATTR, e.nodeid, p, 2), 0);
	memcpy(&go, t->reply, sizeof(go));
	assert_int_equal(go.size, 5);
	gi.size = 64;
	assert_int_equal(call(t, FUSE_GETXATTR, e.nodeid, p, 2), 0);
	assert_int_equal(t->len, 5);
	assert_memory_equal(t->reply, "value", 5);
	gi.size = 2;
	assert_int_equal(call(t, FUSE_GETXATTR, e.nodeid, p, 2), -ERANGE);
	gi.size = 256;
	assert_int_equal(call(t, FUSE_LISTXATTR, e.nodeid, p, 1), 0);
	assert_non_null(memmem(t->reply, t->len, "user.test", 10));
	p[0] = NAME("user.test");
	assert_int_equal(call(t, FUSE_REMOVEXATTR, e.nodeid, p, 1), 0);
	p[0] = ARG(gi);
	p[1] = NAME("user.test");
	assert_int_equal(call(t, FUSE_GETXATTR, e.nodeid, p, 2), -ENODATA);
	/* A value that claims more bytes than the request has. */
	si.size = 500;
	p[0] = (struct part){ &si, FUSE_COMPAT_SETXATTR_IN_SIZE };
	p[1] = NAME("user.big");
	p[2] = (struct part){ "abc", 3 };
	assert_int_equal(call(t, FUSE_SETXATTR, e.nodeid, p, 3), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init, setup_uninit, teardown),
		cmocka_unit_test_setup_teardown(test_create_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_descriptors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_getattr_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_link_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setattr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xattrs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
