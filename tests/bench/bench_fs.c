/*
 * virtio-fs against native syscalls on the same host directory, in one process (run by
 * tests/bench/virtio_fs.sh). The virtio side is the whole device path: the fake driver
 * (tests/unit/virtio_fake_driver.h) writes a FUSE request chain and notifies, the
 * transport, fs.c and the FUSE server (vmm/fuse_*.c) serve it, the driver collects the
 * used ring; one request at a time, as a guest with one thread in the syscall does. The
 * native side makes the syscalls the server makes for the same work. The difference is
 * what the device and server cost; a real guest adds its own kernel's time on top.
 *
 * Workloads: LOOKUP+GETATTR (+FORGET) of existing names vs openat(O_PATH)+fstat+close;
 * CREATE+WRITE(4 KiB)+RELEASE vs open(O_CREAT)+pwrite+close; READDIRPLUS over 10,000 names
 * (4 KiB replies, like the guest) vs getdents64 + fstatat of each name; 1 GiB sequential
 * WRITE then READ in 1 MiB requests vs pwrite/pread. Rounds alternate native and virtio;
 * medians are reported.
 * usage: bench-fs DIR ROUNDS
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <linux/fuse.h>
#include <linux/virtio_config.h>

#include "log.h"
#include "vm.h"
#include "virtio_fake_driver.h"

#define RAM_SIZE  MIB(8)
#define QSIZE	  256
#define REQ_GPA	  (b->req_gpa)
#define REPLY_GPA (b->reply_gpa)
#define NAMES	  10000
#define META_OPS  20000
#define CREATES	  5000
#define BIG	  GIB(1)
#define CHUNK	  MIB(1)

struct bench {
	struct fake_driver d;
	const char *dir;
	uint64_t unique;
	uint64_t req_gpa, reply_gpa; /* a request's header and arguments; a small reply */
	struct fuse_out_header out;
	uint8_t *reply;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * One request on queue q: header + arg (copied into RAM), then data_len bytes already in
 * RAM at data_gpa (WRITE), then reply_room bytes of reply. Returns the used length.
 */
static uint32_t call(struct bench *b, unsigned int q, uint32_t opcode, uint64_t nodeid,
		     const void *arg, uint32_t arg_len, uint64_t data_gpa, uint32_t data_len,
		     uint32_t reply_room)
{
	struct fuse_in_header in = { .len = sizeof(in) + arg_len + data_len,
				     .opcode = opcode,
				     .unique = ++b->unique,
				     .nodeid = nodeid };
	uint8_t *p = fake_ptr(&b->d, REQ_GPA);
	/* READ: the data lands at data_gpa (data_len 0); everything else: the reply buffer. */
	uint64_t reply_at = data_gpa && !data_len ? data_gpa : REPLY_GPA;
	struct fake_buf bufs[3];
	unsigned int n = 0;
	uint32_t id, used = 0;

	memcpy(p, &in, sizeof(in));
	memcpy(p + sizeof(in), arg, arg_len);
	bufs[n++] = (struct fake_buf){ REQ_GPA, sizeof(in) + arg_len, false };
	if (data_len)
		bufs[n++] = (struct fake_buf){ data_gpa, data_len, false };
	if (reply_room)
		bufs[n++] = (struct fake_buf){ reply_at, reply_room, true };
	fake_add_chain(&b->d, q, 0, bufs, n);
	fake_kick(&b->d, q);
	if (!fake_pop_used(&b->d, q, &id, &used))
		abort();
	if (used) {
		memcpy(&b->out, fake_ptr(&b->d, reply_at), sizeof(b->out));
		b->reply = (uint8_t *)fake_ptr(&b->d, reply_at) + sizeof(b->out);
		if (b->out.error) {
			fprintf(stderr, "bench-fs: opcode %u: %s\n", opcode,
				strerror(-b->out.error));
			exit(1);
		}
	}
	return used;
}

static uint64_t lookup(struct bench *b, uint64_t parent, const char *name)
{
	struct fuse_entry_out e;

	call(b, 1, FUSE_LOOKUP, parent, name, strlen(name) + 1, 0, 0, 4096);
	memcpy(&e, b->reply, sizeof(e));
	return e.nodeid;
}

static void forget(struct bench *b, uint64_t node, uint64_t n)
{
	struct fuse_forget_in f = { .nlookup = n };

	call(b, 0, FUSE_FORGET, node, &f, sizeof(f), 0, 0, 0);
}

static void release(struct bench *b, uint64_t node, uint64_t fh, uint32_t opcode)
{
	struct fuse_release_in r = { .fh = fh };

	call(b, 1, opcode, node, &r, sizeof(r), 0, 0, 4096);
}

static uint64_t open_node(struct bench *b, uint64_t node, uint32_t opcode, uint32_t flags)
{
	struct fuse_open_in o = { .flags = flags };
	struct fuse_open_out out;

	call(b, 1, opcode, node, &o, sizeof(o), 0, 0, 4096);
	memcpy(&out, b->reply, sizeof(out));
	return out.fh;
}

/* LOOKUP + GETATTR + FORGET per name; operations (lookup+getattr pairs) per second. */
static double meta_virtio(struct bench *b, uint64_t many)
{
	struct fuse_getattr_in g = { 0 };
	double t = now();
	char name[32];
	unsigned int i;

	for (i = 0; i < META_OPS; i++) {
		uint64_t node;

		snprintf(name, sizeof(name), "n%05u", i % NAMES);
		node = lookup(b, many, name);
		call(b, 1, FUSE_GETATTR, node, &g, sizeof(g), 0, 0, 4096);
		forget(b, node, 1);
	}
	return META_OPS / (now() - t);
}

static double meta_native(int dirfd)
{
	double t = now();
	char name[32];
	unsigned int i;
	struct stat st;

	for (i = 0; i < META_OPS; i++) {
		int fd;

		snprintf(name, sizeof(name), "n%05u", i % NAMES);
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0)
			abort();
		close(fd);
	}
	return META_OPS / (now() - t);
}

static void clean_created(int dirfd)
{
	char name[32];
	unsigned int i;

	for (i = 0; i < CREATES; i++) {
		snprintf(name, sizeof(name), "c%05u", i);
		unlinkat(dirfd, name, 0);
	}
}

/* CREATE + WRITE 4 KiB + RELEASE (+FORGET); files per second. */
static double create_virtio(struct bench *b, uint64_t dir, uint64_t data_gpa)
{
	double t = now();
	char arg[sizeof(struct fuse_create_in) + 32];
	unsigned int i;

	for (i = 0; i < CREATES; i++) {
		struct fuse_create_in c = { .flags = O_WRONLY | O_CREAT | O_EXCL,
					    .mode = S_IFREG | 0644 };
		struct fuse_write_in w = { .size = 4096 };
		struct fuse_entry_out e;
		struct fuse_open_out o;
		int len;

		memcpy(arg, &c, sizeof(c));
		len = snprintf(arg + sizeof(c), 32, "c%05u", i) + 1;
		call(b, 1, FUSE_CREATE, dir, arg, sizeof(c) + len, 0, 0, 4096);
		memcpy(&e, b->reply, sizeof(e));
		memcpy(&o, b->reply + sizeof(e), sizeof(o));
		w.fh = o.fh;
		call(b, 1, FUSE_WRITE, e.nodeid, &w, sizeof(w), data_gpa, 4096, 4096);
		release(b, e.nodeid, o.fh, FUSE_RELEASE);
		forget(b, e.nodeid, 1);
	}
	return CREATES / (now() - t);
}

static double create_native(int dirfd, const void *data)
{
	double t = now();
	char name[32];
	unsigned int i;

	for (i = 0; i < CREATES; i++) {
		int fd;

		snprintf(name, sizeof(name), "c%05u", i);
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 || pwrite(fd, data, 4096, 0) != 4096)
			abort();
		close(fd);
	}
	return CREATES / (now() - t);
}

/* A full READDIRPLUS listing of the 10,000 names in 4 KiB replies; entries per second. */
static double readdirplus_virtio(struct bench *b, uint64_t many)
{
	double t = now();
	uint64_t fh = open_node(b, many, FUSE_OPENDIR, O_RDONLY), off = 0;
	unsigned int entries = 0;

	for (;;) {
		struct fuse_read_in r = { .fh = fh, .offset = off, .size = 4096 };
		uint32_t used = call(b, 1, FUSE_READDIRPLUS, many, &r, sizeof(r), 0, 0, 4096 + 16);
		uint32_t pos = 0, len = used - sizeof(struct fuse_out_header);

		if (len == 0)
			break;
		while (pos < len) {
			struct fuse_direntplus *d = (void *)(b->reply + pos);

			if (d->entry_out.nodeid)
				forget(b, d->entry_out.nodeid, 1);
			off = d->dirent.off;
			pos += FUSE_DIRENTPLUS_SIZE(d);
			entries++;
		}
	}
	release(b, many, fh, FUSE_RELEASEDIR);
	return entries / (now() - t);
}

static double readdirplus_native(int dirfd)
{
	double t = now();
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	static char buf[4096];
	unsigned int entries = 0;
	long n, pos;
	struct stat st;

	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (pos = 0; pos < n;) {
			struct dirent64 *d = (void *)(buf + pos);

			fstatat(dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW);
			entries++;
			pos += d->d_reclen;
		}
	}
	close(fd);
	return entries / (now() - t);
}

/* 1 GiB in 1 MiB WRITEs or READs at increasing offsets; MiB/s. */
static double big_virtio(struct bench *b, uint64_t node, uint64_t fh, uint64_t gpa, bool write)
{
	double t = now();
	uint64_t off;

	for (off = 0; off < BIG; off += CHUNK) {
		if (write) {
			struct fuse_write_in w = { .fh = fh, .offset = off, .size = CHUNK };

			call(b, 1, FUSE_WRITE, node, &w, sizeof(w), gpa, CHUNK, 4096);
		} else {
			struct fuse_read_in r = { .fh = fh, .offset = off, .size = CHUNK };

			call(b, 1, FUSE_READ, node, &r, sizeof(r), gpa, 0, CHUNK + 16);
		}
	}
	return (BIG >> 20) / (now() - t);
}

static double big_native(int fd, void *buf, bool write)
{
	double t = now();
	uint64_t off;

	for (off = 0; off < BIG; off += CHUNK)
		if ((write ? pwrite(fd, buf, CHUNK, off) : pread(fd, buf, CHUNK, off)) != CHUNK)
			abort();
	return (BIG >> 20) / (now() - t);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

#define MAX_ROUNDS 15

static void row(const char *name, const char *unit, double *native, double *virtio, unsigned int n)
{
	double a = median(native, n), v = median(virtio, n);

	printf("%-34s %12.0f %12.0f %-8s %6.1f%%\n", name, a, v, unit, 100.0 * v / a);
}

int main(int argc, char **argv)
{
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_FS,
					 .id = "bench",
					 .fs_tag = "b" };
	struct fuse_init_in init = { .major = 7, .minor = 37, .flags = FUSE_MAX_PAGES };
	double nat[4][MAX_ROUNDS], vir[4][MAX_ROUNDS], bw[4][MAX_ROUNDS];
	struct bench b = { 0 };
	struct virtio_device *dev;
	uint64_t many, data_gpa, root_fh, big_node, big_fh;
	unsigned int rounds, r, i;
	int dirfd, manyfd, bigfd;
	static char buf[CHUNK];
	char path[4200];

	if (argc != 3 || (rounds = atoi(argv[2])) < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "usage: bench-fs DIR ROUNDS (1-%d)\n", MAX_ROUNDS);
		return 2;
	}
	log_init(open("/dev/null", O_WRONLY | O_CLOEXEC), LOG_ERROR);
	snprintf(spec.path, sizeof(spec.path), "%s", argv[1]);
	dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/many", argv[1]);
	mkdir(path, 0755);
	manyfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || manyfd < 0)
		return perror(argv[1]), 1;
	for (i = 0; i < NAMES; i++) {
		snprintf(path, sizeof(path), "n%05u", i);
		close(openat(manyfd, path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	}
	if (virtio_fs_new(&spec, &dev, NULL) < 0 ||
	    fake_driver_init(&b.d, dev, RAM_SIZE + MIB(8)) < 0)
		return fprintf(stderr, "bench-fs: cannot create the device\n"), 1;
	fake_negotiate(&b.d, 1ULL << VIRTIO_F_VERSION_1);
	fake_setup_queue(&b.d, 0, QSIZE);
	fake_setup_queue(&b.d, 1, QSIZE);
	fake_driver_ok(&b.d);
	b.req_gpa = fake_alloc(&b.d, KIB(64), 4096);
	b.reply_gpa = fake_alloc(&b.d, KIB(64), 4096);
	call(&b, 1, FUSE_INIT, 0, &init, sizeof(init), 0, 0, 4096);
	data_gpa = fake_alloc(&b.d, CHUNK + 4096, 4096);
	if (!data_gpa)
		return fprintf(stderr, "bench-fs: out of fake RAM\n"), 1;
	memset(fake_ptr(&b.d, data_gpa), 'd', CHUNK);
	memset(buf, 'd', sizeof(buf));
	many = lookup(&b, FUSE_ROOT_ID, "many");
	(void)root_fh;
	bigfd = openat(dirfd, "big", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	{
		struct fuse_open_in o = { .flags = O_RDWR };
		struct fuse_open_out out;

		big_node = lookup(&b, FUSE_ROOT_ID, "big");
		call(&b, 1, FUSE_OPEN, big_node, &o, sizeof(o), 0, 0, 4096);
		memcpy(&out, b.reply, sizeof(out));
		big_fh = out.fh;
	}
	big_native(bigfd, buf, true); /* allocated once: every timed write overwrites */
	for (r = 0; r < rounds; r++) {
		nat[0][r] = meta_native(manyfd);
		vir[0][r] = meta_virtio(&b, many);
		nat[1][r] = create_native(dirfd, buf);
		clean_created(dirfd);
		vir[1][r] = create_virtio(&b, FUSE_ROOT_ID, data_gpa);
		clean_created(dirfd);
		nat[2][r] = readdirplus_native(manyfd);
		vir[2][r] = readdirplus_virtio(&b, many);
		nat[3][r] = big_native(bigfd, buf, true);
		vir[3][r] = big_virtio(&b, big_node, big_fh, data_gpa, true);
		bw[0][r] = big_native(bigfd, buf, false);
		bw[1][r] = big_virtio(&b, big_node, big_fh, data_gpa, false);
	}
	printf("%-34s %12s %12s %-8s %7s\n", "workload", "native", "virtio-fs", "unit", "ratio");
	row("LOOKUP+GETATTR (+FORGET)", "ops/s", nat[0], vir[0], rounds);
	row("CREATE+WRITE 4K+RELEASE", "files/s", nat[1], vir[1], rounds);
	row("READDIRPLUS 10,000 names", "names/s", nat[2], vir[2], rounds);
	row("1 GiB sequential WRITE, 1 MiB", "MiB/s", nat[3], vir[3], rounds);
	row("1 GiB sequential READ, 1 MiB", "MiB/s", bw[0], bw[1], rounds);
	fake_driver_destroy(&b.d);
	unlinkat(dirfd, "big", 0);
	return 0;
}
