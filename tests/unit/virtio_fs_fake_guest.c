/* The fake virtio-fs guest: see virtio_fs_fake_guest.h. */
#include "virtio_fs_fake_guest.h"

void host_path(struct fs_test *t, const char *rel, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", t->root, rel);
}

void write_host_file(struct fs_test *t, const char *rel, const char *text)
{
	char path[256];
	int fd;

	host_path(t, rel, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

void bring_up(struct fs_test *t)
{
	assert_int_equal(fake_negotiate(&t->d, F_V1) & VIRTIO_CONFIG_S_FEATURES_OK,
			 VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(fake_setup_queue(&t->d, HIPRIO, QSIZE), 1);
	assert_int_equal(fake_setup_queue(&t->d, REQUESTQ, QSIZE), 1);
	assert_true(fake_driver_ok(&t->d) & VIRTIO_CONFIG_S_DRIVER_OK);
	t->req_gpa = fake_alloc(&t->d, REQ_MAX, 4096);
	t->reply_gpa = fake_alloc(&t->d, REPLY_MAX, 4096);
	assert_true(t->req_gpa && t->reply_gpa);
}

/* Submit bufs on q, kick, collect: the used length (NO_USED if none came back). */
uint32_t submit(struct fs_test *t, unsigned int q, const struct fake_buf *bufs, unsigned int n)
{
	uint32_t id, len;

	fake_add_chain(&t->d, q, 0, bufs, n);
	fake_kick(&t->d, q);
	if (!fake_pop_used(&t->d, q, &id, &len))
		return NO_USED;
	return len;
}

/* Write a request (header + parts) at req_gpa; returns its length. */
uint32_t build(struct fs_test *t, uint32_t opcode, uint64_t nodeid, const struct part *parts,
	       unsigned int n)
{
	uint8_t *p = fake_ptr(&t->d, t->req_gpa);
	struct fuse_in_header in = { .opcode = opcode,
				     .unique = ++t->unique,
				     .nodeid = nodeid,
				     .uid = 0,
				     .gid = 0,
				     .pid = 1 };
	uint32_t len = sizeof(in);
	unsigned int i;

	for (i = 0; i < n; i++) {
		assert_true(len + parts[i].len <= REQ_MAX);
		memcpy(p + len, parts[i].p, parts[i].len);
		len += parts[i].len;
	}
	in.len = len;
	memcpy(p, &in, sizeof(in));
	return len;
}

/* Parse the reply at reply_gpa after a used length. */
void collect(struct fs_test *t, uint32_t used)
{
	struct fuse_out_header out;

	t->used = used;
	t->error = 1;
	t->len = 0;
	t->reply = NULL;
	if (used == NO_USED || used < sizeof(out))
		return;
	memcpy(&out, fake_ptr(&t->d, t->reply_gpa), sizeof(out));
	assert_int_equal(out.len, used);
	assert_int_equal(out.unique, t->unique);
	t->error = out.error;
	t->reply = (uint8_t *)fake_ptr(&t->d, t->reply_gpa) + sizeof(out);
	t->len = used - sizeof(out);
}

/* A request on the request queue with reply room reply_room; returns the FUSE error. */
int32_t call_room(struct fs_test *t, uint32_t opcode, uint64_t nodeid, const struct part *parts,
		  unsigned int n, uint32_t reply_room)
{
	uint32_t len = build(t, opcode, nodeid, parts, n);
	struct fake_buf bufs[2] = { { t->req_gpa, len, false },
				    { t->reply_gpa, reply_room, true } };

	memset(fake_ptr(&t->d, t->reply_gpa), 0xee, 64);
	collect(t, submit(t, REQUESTQ, bufs, reply_room ? 2 : 1));
	return t->error;
}

int32_t call(struct fs_test *t, uint32_t opcode, uint64_t nodeid, const struct part *parts,
	     unsigned int n)
{
	return call_room(t, opcode, nodeid, parts, n, REPLY_MAX);
}

void init_fuse(struct fs_test *t, uint32_t minor)
{
	struct fuse_init_in in = { .major = 7,
				   .minor = minor,
				   .max_readahead = 131072,
				   .flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES |
					    FUSE_POSIX_LOCKS | FUSE_WRITEBACK_CACHE };
	struct part p = ARG(in);

	assert_int_equal(call(t, FUSE_INIT, 0, &p, 1), 0);
}

int fs_setup_opts(void **state, bool readonly, enum vm_fs_cache cache)
{
	struct fs_test *t = calloc(1, sizeof(*t));
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_FS,
					 .readonly = readonly,
					 .fs_cache = cache };
	struct virtio_device *dev;
	struct error err = { 0 };

	assert_non_null(t);
	snprintf(t->root, sizeof(t->root), "/tmp/stratus-fs-test.XXXXXX");
	snprintf(t->outside, sizeof(t->outside), "/tmp/stratus-fs-outside.XXXXXX");
	assert_non_null(mkdtemp(t->root));
	assert_non_null(mkdtemp(t->outside));
	snprintf(spec.path, sizeof(spec.path), "%s", t->root);
	snprintf(spec.id, sizeof(spec.id), "fs0");
	snprintf(spec.fs_tag, sizeof(spec.fs_tag), "myfs");
	if (virtio_fs_new(&spec, &dev, &err) < 0)
		fail_msg("virtio_fs_new: %s", err.msg);
	assert_int_equal(fake_driver_init(&t->d, dev, RAM_SIZE), 0);
	bring_up(t);
	*state = t;
	return 0;
}

int setup(void **state)
{
	int r = fs_setup_opts(state, false, VM_FS_CACHE_AUTO);

	init_fuse(*state, 37);
	return r;
}

int setup_ro(void **state)
{
	int r = fs_setup_opts(state, true, VM_FS_CACHE_AUTO);

	init_fuse(*state, 37);
	return r;
}

int setup_uninit(void **state)
{
	return fs_setup_opts(state, false, VM_FS_CACHE_NONE);
}

int teardown(void **state)
{
	struct fs_test *t = *state;
	char cmd[256];

	fake_driver_destroy(&t->d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", t->root, t->outside);
	assert_int_equal(system(cmd), 0);
	free(t);
	return 0;
}

/* LOOKUP name under parent: the entry (error in t->error). */
struct fuse_entry_out lookup(struct fs_test *t, uint64_t parent, const char *name)
{
	struct fuse_entry_out e = { 0 };
	struct part p = NAME(name);

	if (call(t, FUSE_LOOKUP, parent, &p, 1) == 0) {
		assert_int_equal(t->len, sizeof(e));
		memcpy(&e, t->reply, sizeof(e));
	}
	return e;
}

uint64_t open_file(struct fs_test *t, uint64_t node, uint32_t flags)
{
	struct fuse_open_in in = { .flags = flags };
	struct fuse_open_out out;
	struct part p = ARG(in);

	assert_int_equal(call(t, FUSE_OPEN, node, &p, 1), 0);
	memcpy(&out, t->reply, sizeof(out));
	return out.fh;
}

struct fuse_entry_out create(struct fs_test *t, uint64_t parent, const char *name, uint32_t mode,
			     uint64_t *fh)
{
	struct fuse_create_in in = { .flags = O_RDWR | O_CREAT | O_EXCL, .mode = S_IFREG | mode };
	struct part p[2] = { ARG(in), NAME(name) };
	struct fuse_entry_out e = { 0 };
	struct fuse_open_out o;

	if (call(t, FUSE_CREATE, parent, p, 2) == 0) {
		assert_int_equal(t->len, sizeof(e) + sizeof(o));
		memcpy(&e, t->reply, sizeof(e));
		memcpy(&o, t->reply + sizeof(e), sizeof(o));
		*fh = o.fh;
	}
	return e;
}

int32_t fs_write(struct fs_test *t, uint64_t node, uint64_t fh, uint64_t off, const void *data,
		 uint32_t len)
{
	struct fuse_write_in in = { .fh = fh, .offset = off, .size = len };
	struct part p[2] = { ARG(in), { data, len } };

	return call(t, FUSE_WRITE, node, p, 2);
}

int32_t fs_read(struct fs_test *t, uint64_t node, uint64_t fh, uint64_t off, uint32_t size)
{
	struct fuse_read_in in = { .fh = fh, .offset = off, .size = size };
	struct part p = ARG(in);

	return call(t, FUSE_READ, node, &p, 1);
}

void release(struct fs_test *t, uint64_t node, uint64_t fh, bool dir)
{
	struct fuse_release_in in = { .fh = fh };
	struct part p = ARG(in);

	assert_int_equal(call(t, dir ? FUSE_RELEASEDIR : FUSE_RELEASE, node, &p, 1), 0);
}

void forget(struct fs_test *t, uint64_t node, uint64_t n)
{
	struct fuse_forget_in in = { .nlookup = n };
	struct part p = ARG(in);
	uint32_t len = build(t, FUSE_FORGET, node, &p, 1);
	struct fake_buf buf = { t->req_gpa, len, false };

	assert_int_equal(submit(t, HIPRIO, &buf, 1), 0); /* no reply */
}
