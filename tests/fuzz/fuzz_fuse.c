/*
 * libFuzzer target for virtio-fs (vmm/devices/virtio/fs.c) and its FUSE server
 * (vmm/fuse_*.c) behind the virtio-mmio transport. Each input is up to 16 FUSE requests
 * after an INIT, sent one chain at a time on the request or hiprio queue, to a share made
 * afresh for every input under /dev/shm (or /tmp): files, a directory, a FIFO, and host
 * symlinks to "/", to /proc/self/fd/0 and to a directory outside the share. Node ids and
 * file handles the fuzzer names come from earlier replies (so it gets deep quickly) or are
 * raw; arguments are raw bytes (fh patched in on request), the header's len may lie, and
 * the readable and writable parts are cut at input-chosen points. Checked after each one:
 *  - the used length fits the writable part; a reply has a consistent out header (len ==
 *    used, our unique, error 0 or a negative errno > -4096);
 *  - the directory outside the share still holds only its one file, unchanged;
 *  - the device never asked for a reset (every chain here is well-formed as far as the
 *    virtqueue goes), a reset and a new INIT work, and once the device is gone the process
 *    has exactly the descriptors it had before (nothing leaked on any error path).
 * Input: [0] flags (bit 0 read-only share, bit 1 cache=none), then per request: op u8,
 * node u8, fh u8, shape u8, arg length u16, reply room u16, the arguments, cut points u16.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/fuse.h>
#include <linux/virtio_config.h>

#include "../unit/virtio_fake_driver.h"
#include "log.h"
#include "vm.h"

#define RAM_SIZE     MIB(2)
#define QSIZE	     64
#define REQ_GPA	     (FAKE_RAM_GPA + KIB(64))
#define REPLY_GPA    (FAKE_RAM_GPA + KIB(256))
#define REPLY_MAX    KIB(64)
#define MAX_REQUESTS 16
#define MAX_IDS	     16

struct cursor {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct cursor *c, unsigned int bytes)
{
	uint64_t v = 0;

	bytes = MIN(bytes, (unsigned int)c->left);
	memcpy(&v, c->p, bytes);
	c->p += bytes;
	c->left -= bytes;
	return v;
}

static void skip(struct cursor *c, size_t bytes)
{
	bytes = MIN(bytes, c->left);
	c->p += bytes;
	c->left -= bytes;
}

struct share {
	struct fake_driver d;
	char root[64];
};

static char base[64], outside[96];
static uint64_t nodes[MAX_IDS], fhs[MAX_IDS];
static unsigned int nr_nodes, nr_fhs;
static uint64_t unique;

static const uint32_t ops[] = {
	FUSE_LOOKUP,
	FUSE_FORGET,
	FUSE_GETATTR,
	FUSE_SETATTR,
	FUSE_READLINK,
	FUSE_SYMLINK,
	FUSE_MKNOD,
	FUSE_MKDIR,
	FUSE_UNLINK,
	FUSE_RMDIR,
	FUSE_RENAME,
	FUSE_LINK,
	FUSE_OPEN,
	FUSE_READ,
	FUSE_WRITE,
	FUSE_STATFS,
	FUSE_RELEASE,
	FUSE_FSYNC,
	FUSE_SETXATTR,
	FUSE_GETXATTR,
	FUSE_LISTXATTR,
	FUSE_REMOVEXATTR,
	FUSE_FLUSH,
	FUSE_INIT,
	FUSE_OPENDIR,
	FUSE_READDIR,
	FUSE_RELEASEDIR,
	FUSE_FSYNCDIR,
	FUSE_ACCESS,
	FUSE_CREATE,
	FUSE_DESTROY,
	FUSE_BATCH_FORGET,
	FUSE_FALLOCATE,
	FUSE_READDIRPLUS,
	FUSE_RENAME2,
	FUSE_LSEEK,
	FUSE_COPY_FILE_RANGE,
};

static void must(bool ok)
{
	if (!ok)
		abort();
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* A fresh share: what the last input did to it is gone. */
static void make_share(struct share *s)
{
	char p[160];
	int fd;

	snprintf(s->root, sizeof(s->root), "%s/share", base);
	if (access(s->root, F_OK) == 0)
		must(nftw(s->root, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
	must(mkdir(s->root, 0755) == 0);
	snprintf(p, sizeof(p), "%s/dir", s->root);
	must(mkdir(p, 0755) == 0);
	snprintf(p, sizeof(p), "%s/dir/sub", s->root);
	must(mkdir(p, 0755) == 0);
	snprintf(p, sizeof(p), "%s/file", s->root);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	must(fd >= 0 && write(fd, "0123456789abcdef", 16) == 16);
	close(fd);
	snprintf(p, sizeof(p), "%s/dir/inner", s->root);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	snprintf(p, sizeof(p), "%s/fifo", s->root);
	mkfifo(p, 0600);
	snprintf(p, sizeof(p), "%s/to-root", s->root);
	must(symlink("/", p) == 0);
	snprintf(p, sizeof(p), "%s/to-proc", s->root);
	must(symlink("/proc/self/fd/0", p) == 0);
	snprintf(p, sizeof(p), "%s/to-outside", s->root);
	must(symlink(outside, p) == 0);
}

/* The sibling directory holds exactly "secret" = "secret". */
static void check_outside(void)
{
	char p[160], buf[16] = { 0 };
	struct dirent *e;
	unsigned int n = 0;
	DIR *d = opendir(outside);
	int fd;

	must(d != NULL);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			must(!strcmp(e->d_name, "secret") && ++n == 1);
	closedir(d);
	snprintf(p, sizeof(p), "%s/secret", outside);
	fd = open(p, O_RDONLY);
	must(fd >= 0 && read(fd, buf, sizeof(buf)) == 6 && !memcmp(buf, "secret", 6));
	close(fd);
}

static unsigned int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;

	must(d != NULL);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static unsigned int cut(struct cursor *c, uint64_t gpa, uint32_t len, unsigned int n, bool writable,
			struct fake_buf *bufs)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint32_t piece = i + 1 == n ? len : (uint32_t)(take(c, 2) % (len + 1));

		bufs[i] = (struct fake_buf){ gpa, piece, writable };
		gpa += piece;
		len -= piece;
	}
	return n;
}

static uint64_t pick(uint8_t sel, const uint64_t *ids, unsigned int nr, struct cursor *c)
{
	if (sel == 0xff)
		return take(c, 8);
	if (sel == 0 || nr == 0)
		return FUSE_ROOT_ID;
	return ids[sel % nr];
}

static void remember(uint64_t *ids, unsigned int *nr, uint64_t id)
{
	if (id)
		ids[(*nr)++ % MAX_IDS] = id, *nr = MIN(*nr, (unsigned int)MAX_IDS);
}

/* What a good reply teaches us: new node ids and handles. */
static void learn(uint32_t opcode, const uint8_t *data, uint32_t len)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;

	if ((opcode == FUSE_LOOKUP || opcode == FUSE_MKDIR || opcode == FUSE_CREATE ||
	     opcode == FUSE_SYMLINK || opcode == FUSE_MKNOD || opcode == FUSE_LINK) &&
	    len >= sizeof(e)) {
		memcpy(&e, data, sizeof(e));
		remember(nodes, &nr_nodes, e.nodeid);
	}
	if (opcode == FUSE_CREATE && len >= sizeof(e) + sizeof(o)) {
		memcpy(&o, data + sizeof(e), sizeof(o));
		remember(fhs, &nr_fhs, o.fh);
	}
	if ((opcode == FUSE_OPEN || opcode == FUSE_OPENDIR) && len >= sizeof(o)) {
		memcpy(&o, data, sizeof(o));
		remember(fhs, &nr_fhs, o.fh);
	}
}

/* One request from the input: sent, checked. */
static void one_request(struct cursor *c, struct share *s)
{
	uint8_t op = take(c, 1), node = take(c, 1), fh = take(c, 1), shape = take(c, 1);
	uint32_t arg_len = take(c, 2) % 1024, room = take(c, 2) % (REPLY_MAX + 1);
	uint8_t *req = fake_ptr(&s->d, REQ_GPA);
	struct fuse_in_header in = { .opcode = op & 0x80 ? (uint32_t)take(c, 1)
							 : ops[op % ARRAY_SIZE(ops)],
				     .unique = ++unique,
				     .uid = shape & 0x80 ? 1000 : 0,
				     .gid = shape & 0x80 ? 1000 : 0 };
	struct fake_buf bufs[8];
	struct fuse_out_header out;
	uint32_t used, id, len, n;
	unsigned int q = (shape & 0x40) ? 0 : 1;

	in.nodeid = pick(node, nodes, nr_nodes, c);
	memset(req + sizeof(in), 0, arg_len);
	memcpy(req + sizeof(in), c->p, MIN(MIN((size_t)arg_len, (size_t)255), c->left));
	skip(c, MIN(arg_len, 255u)); /* long arguments are mostly zeros */
	if ((shape & 0x20) && arg_len >= 8) {
		uint64_t h = pick(fh, fhs, nr_fhs, c);

		memcpy(req + sizeof(in), &h, 8);
	}
	len = sizeof(in) + arg_len;
	in.len = (shape & 0x10) ? (uint32_t)take(c, 4) : len;
	memcpy(req, &in, sizeof(in));
	n = cut(c, REQ_GPA, len, 1 + (shape & 3), false, bufs);
	if (room)
		n += cut(c, REPLY_GPA, room, 1 + ((shape >> 2) & 3), true, bufs + n);
	memset(fake_ptr(&s->d, REPLY_GPA), 0xee, MIN(room + 16u, (uint32_t)REPLY_MAX));
	fake_add_chain(&s->d, q, 0, bufs, n);
	fake_kick(&s->d, q);
	must(fake_pop_used(&s->d, q, &id, &used));
	must(id == 0 && used <= room);
	if (used) {
		must(used >= sizeof(out));
		memcpy(&out, fake_ptr(&s->d, REPLY_GPA), sizeof(out));
		must(out.len == used && out.error <= 0 && out.error > -4096);
		must(out.unique == in.unique || out.unique == 0);
		if (out.error == 0)
			learn(in.opcode, (uint8_t *)fake_ptr(&s->d, REPLY_GPA) + sizeof(out),
			      used - sizeof(out));
	}
	must(!(fake_read(&s->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
}

static void bring_up(struct share *s)
{
	struct fuse_init_in init = { .major = 7, .minor = 37, .flags = 0xffffffff };
	struct fuse_in_header in = { .len = sizeof(in) + sizeof(init),
				     .opcode = FUSE_INIT,
				     .unique = ++unique };
	struct fake_buf bufs[2] = { { REQ_GPA, in.len, false }, { REPLY_GPA, 4096, true } };
	uint32_t id, used;

	memset(s->d.ram, 0, KIB(64));
	fake_negotiate(&s->d, 1ULL << VIRTIO_F_VERSION_1);
	fake_program_queue(&s->d, 0, QSIZE, FAKE_RAM_GPA, FAKE_RAM_GPA + KIB(2),
			   FAKE_RAM_GPA + KIB(4));
	fake_program_queue(&s->d, 1, QSIZE, FAKE_RAM_GPA + KIB(8), FAKE_RAM_GPA + KIB(10),
			   FAKE_RAM_GPA + KIB(12));
	fake_driver_ok(&s->d);
	memcpy(fake_ptr(&s->d, REQ_GPA), &in, sizeof(in));
	memcpy(fake_ptr(&s->d, REQ_GPA + sizeof(in)), &init, sizeof(init));
	fake_add_chain(&s->d, 1, 0, bufs, 2);
	fake_kick(&s->d, 1);
	must(fake_pop_used(&s->d, 1, &id, &used) && used > sizeof(struct fuse_out_header));
}

static void share_open(struct share *s, bool readonly, bool cache_none)
{
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_FS,
					 .readonly = readonly,
					 .fs_cache =
						 cache_none ? VM_FS_CACHE_NONE : VM_FS_CACHE_AUTO,
					 .id = "fuzz-fs",
					 .fs_tag = "fuzz" };
	struct virtio_device *dev;

	make_share(s);
	snprintf(spec.path, sizeof(spec.path), "%s", s->root);
	must(virtio_fs_new(&spec, &dev, NULL) == 0);
	must(fake_driver_init(&s->d, dev, RAM_SIZE) == 0);
}

static void setup(void)
{
	static const char *const dirs[] = { "/dev/shm", "/tmp" };
	char p[160];
	unsigned int i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(base, sizeof(base), "%s/stratus-fuzz-fuse.XXXXXX", dirs[i]);
		if (mkdtemp(base))
			break;
	}
	must(i < ARRAY_SIZE(dirs));
	snprintf(outside, sizeof(outside), "%s/outside", base);
	must(mkdir(outside, 0700) == 0);
	snprintf(p, sizeof(p), "%s/secret", outside);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	must(fd >= 0 && write(fd, "secret", 6) == 6);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct share share;
	struct cursor c = { data, size };
	unsigned int i, baseline;
	uint8_t flags;

	if (size < 2)
		return 0;
	if (!base[0]) {
		if (getenv("FUZZ_FUSE_LOG"))
			log_init(2, LOG_DEBUG);
		else /* logs of refused requests would drown the fuzzer's output */
			log_init(open("/dev/null", O_WRONLY | O_CLOEXEC), LOG_ERROR);
		setup();
	}
	flags = take(&c, 1);
	baseline = count_fds();
	share_open(&share, flags & 1, flags & 2);
	nr_nodes = nr_fhs = 0;
	bring_up(&share);
	for (i = 0; i < MAX_REQUESTS && c.left >= 6; i++)
		one_request(&c, &share);
	check_outside();
	/* A reset, then one more request: the server forgets every node and handle. */
	fake_write(&share.d, VIRTIO_MMIO_STATUS, 0);
	bring_up(&share);
	fake_driver_destroy(&share.d);
	must(count_fds() == baseline); /* nothing leaked, whatever the requests did */
	return 0;
}
