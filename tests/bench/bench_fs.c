/*
 * virtio-fs against native syscalls on the same host directory, in one process (run by
 * tests/bench/virtio_fs.sh). The virtio side is the whole device path: the fake driver
 * (tests/unit/virtio_fake_driver.h) writes a FUSE request chain and notifies, the
 * transport, fs.c and the FUSE server (vmm/fuse_*.c) serve it, the driver collects the
 * used ring; one request at a time, as a guest with one thread in the syscall does. The
 * native side does what a host program does for the same work. The difference is what
 * the device and server cost; a real guest adds its own kernel's time on top.
 *
 * Each workload is the same user-visible work on both sides, the native side doing what a
 * program on the host would do for it (the physical limit):
 *  - stat(2) of a name the guest has not cached: with cache=none LOOKUP + GETATTR, with
 *    cache=auto or always LOOKUP alone (the attributes come with the entry); the FORGETs
 *    come as the guest sends them when it drops inodes, in bursts (forget_burst: 64 at a
 *    time); native: one fstatat(dir, name, AT_SYMLINK_NOFOLLOW).
 *  - creating a 4 KiB file: CREATE + WRITE + RELEASE (+ FORGET); native: openat(O_CREAT |
 *    O_EXCL) + pwrite + close.
 *  - `ls -l` of 10,000 names: READDIRPLUS in 4 KiB replies (as the guest asks), each page's
 *    FORGETs in a burst; native: getdents64 + fstatat of each name.
 *  - 1 GiB sequential WRITE then READ in 1 MiB requests; native: pwrite/pread.
 * With "server" the same requests go straight to a server of their own (fuse_server_handle:
 * no device, ring or eventfds) instead of the device: the difference is the transport.
 * Rounds alternate the sides; medians are reported.
 * usage: bench-fs DIR ROUNDS [WORKLOADS]  (WORKLOADS: a comma list of meta, create, readdir,
 * seq (default all), and of native, virtio, server: the sides, default native and virtio)
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <linux/fuse.h>
#include <linux/virtio_config.h>

#include "fuse.h"
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
	struct fuse_server *server; /* set: requests go straight to it, no device or transport */
	uint64_t forget_gpa;	    /* room for a page's worth of queued FORGETs */
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
	if (b->server) {
		struct iovec req[2], reply = { fake_ptr(&b->d, reply_at), reply_room };

		for (id = 0; id < n; id++)
			req[id] = (struct iovec){ fake_ptr(&b->d, bufs[id].gpa), bufs[id].len };
		used = fuse_server_handle(b->server, req, n, in.len, &reply, reply_room ? 1 : 0,
					  reply_room);
		(void)q;
	} else {
		if (reply_room)
			bufs[n++] = (struct fake_buf){ reply_at, reply_room, true };
		fake_add_chain(&b->d, q, 0, bufs, n);
		fake_kick(&b->d, q);
		if (!fake_pop_used(&b->d, q, &id, &used))
			abort();
	}
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

/*
 * FORGETs of nodes[0 .. n) as a guest sends a burst of them when it drops inodes: each its
 * own chain on the hiprio queue, queued together, one notification.
 */
#define FORGET_BURST 64
static void forget_burst(struct bench *b, const uint64_t *nodes, unsigned int n)
{
	const uint32_t len = sizeof(struct fuse_in_header) + sizeof(struct fuse_forget_in);
	unsigned int i;
	uint32_t id, used;

	if (b->server) {
		for (i = 0; i < n; i++)
			forget(b, nodes[i], 1);
		return;
	}
	for (i = 0; i < n; i++) {
		uint64_t gpa = b->forget_gpa + i * 64;
		struct fuse_in_header in = {
			.len = len, .opcode = FUSE_FORGET, .unique = ++b->unique, .nodeid = nodes[i]
		};
		struct fuse_forget_in f = { .nlookup = 1 };
		struct fake_buf buf = { gpa, len, false };

		memcpy(fake_ptr(&b->d, gpa), &in, sizeof(in));
		memcpy((uint8_t *)fake_ptr(&b->d, gpa) + sizeof(in), &f, sizeof(f));
		fake_add_chain(&b->d, 0, (uint16_t)i, &buf, 1);
	}
	fake_kick(&b->d, 0);
	for (i = 0; i < n; i++)
		if (!fake_pop_used(&b->d, 0, &id, &used))
			abort();
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

/* LOOKUP (+ GETATTR) + FORGET per name; names per second. */
static double meta_virtio(struct bench *b, uint64_t many, bool getattr)
{
	struct fuse_getattr_in g = { 0 };
	uint64_t nodes[FORGET_BURST];
	double t = now();
	unsigned int i, nr = 0;
	char name[32];

	for (i = 0; i < META_OPS; i++) {
		snprintf(name, sizeof(name), "n%05u", i % NAMES);
		nodes[nr] = lookup(b, many, name);
		if (getattr)
			call(b, 1, FUSE_GETATTR, nodes[nr], &g, sizeof(g), 0, 0, 4096);
		if (++nr == FORGET_BURST) {
			forget_burst(b, nodes, nr);
			nr = 0;
		}
	}
	forget_burst(b, nodes, nr);
	return META_OPS / (now() - t);
}

static double meta_native(int dirfd)
{
	double t = now();
	char name[32];
	unsigned int i;
	struct stat st;

	for (i = 0; i < META_OPS; i++) {
		snprintf(name, sizeof(name), "n%05u", i % NAMES);
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			abort();
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
		uint64_t nodes[FORGET_BURST];
		unsigned int nr = 0;

		if (len == 0)
			break;
		while (pos < len) {
			struct fuse_direntplus *d = (void *)(b->reply + pos);

			if (d->entry_out.nodeid)
				nodes[nr++] = d->entry_out.nodeid;
			off = d->dirent.off;
			pos += FUSE_DIRENTPLUS_SIZE(d);
			entries++;
			if (nr == FORGET_BURST)
				abort(); /* a 4 KiB page holds fewer entries than that */
		}
		forget_burst(b, nodes, nr);
	}
	release(b, many, fh, FUSE_RELEASEDIR);
	if (entries != NAMES + 2) {
		fprintf(stderr, "bench-fs: READDIRPLUS listed %u entries, not %u\n", entries,
			NAMES + 2);
		exit(1);
	}
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

/*
 * Is workload (or side) w selected in sel, a comma list? Workloads: meta, create, readdir,
 * seq; sides: native, virtio. What is not named in a class runs in full.
 */
static bool want(const char *sel, const char *w)
{
	static const char *const sides[] = { "native", "virtio", "server" };
	bool side = !strcmp(w, sides[0]) || !strcmp(w, sides[1]) || !strcmp(w, sides[2]),
	     any = false;
	char copy[128], *tok, *save = NULL;

	snprintf(copy, sizeof(copy), "%s", sel);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool tok_side =
			!strcmp(tok, sides[0]) || !strcmp(tok, sides[1]) || !strcmp(tok, sides[2]);

		if (tok_side != side)
			continue;
		any = true;
		if (!strcmp(tok, w))
			return true;
	}
	return !any && strcmp(w, "server"); /* the server alone only when asked for */
}

static void row(const char *name, const char *unit, double *native, double *virtio, unsigned int n)
{
	double a = median(native, n), v = median(virtio, n);

	printf("%-34s %12.0f %12.0f %-8s %6.1f%%\n", name, a, v, unit, 100.0 * v / a);
}

/* As the VMM does before it starts a virtio-fs device (fs.c): as many descriptors as allowed. */
static void raise_nofile(void)
{
	struct rlimit rl = { .rlim_cur = 1048576, .rlim_max = 1048576 };

	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_FS,
					 .id = "bench",
					 .fs_tag = "b" };
	struct fuse_init_in init = { .major = 7, .minor = 37, .flags = FUSE_MAX_PAGES };
	double nat[4][MAX_ROUNDS], vir[5][MAX_ROUNDS], bw[4][MAX_ROUNDS];
	struct bench b = { 0 }, direct = { 0 }, *side;
	struct fuse_server_config direct_config = { .name = "direct",
						    .root = argv[1],
						    .cache = FUSE_CACHE_AUTO };
	uint64_t many_direct = 0, side_many;
	struct virtio_device *dev;
	uint64_t many, data_gpa, root_fh, big_node, big_fh;
	unsigned int rounds, r, i;
	const char *sel;
	int dirfd, manyfd, bigfd;
	static char buf[CHUNK];
	char path[4200];

	if (argc < 3 || argc > 4 || (rounds = atoi(argv[2])) < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "usage: bench-fs DIR ROUNDS (1-%d) [WORKLOADS]\n", MAX_ROUNDS);
		return 2;
	}
	sel = argc == 4 ? argv[3] : "";
	raise_nofile();
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
	b.forget_gpa = fake_alloc(&b.d, FORGET_BURST * 64, 64);
	many = lookup(&b, FUSE_ROOT_ID, "many");
	/*
	 * The same requests straight into a server of its own: what the server alone costs. Not
	 * in the same run as the device: two servers each holding 10,000 nodes slow each other
	 * (the second measured ~25 % slower), so virtio_fs.sh runs this side on its own.
	 */
	direct = b;
	direct.server = NULL;
	if (want(sel, "server")) {
		if (fuse_server_new(&direct_config, &direct.server, NULL) < 0)
			return fprintf(stderr, "bench-fs: cannot create the server\n"), 1;
		call(&direct, 1, FUSE_INIT, 0, &init, sizeof(init), 0, 0, 4096);
		many_direct = lookup(&direct, FUSE_ROOT_ID, "many");
	}
	(void)root_fh;
	bigfd = openat(dirfd, "big", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	{
		struct bench *p = want(sel, "server") ? &direct : &b;
		struct fuse_open_in o = { .flags = O_RDWR };
		struct fuse_open_out out;

		big_node = lookup(p, FUSE_ROOT_ID, "big");
		call(p, 1, FUSE_OPEN, big_node, &o, sizeof(o), 0, 0, 4096);
		memcpy(&out, p->reply, sizeof(out));
		big_fh = out.fh;
	}
	if (want(sel, "seq"))
		big_native(bigfd, buf, true); /* allocated once: every timed write overwrites */
	/* The second side: the device (default), or the server alone ("server"). */
	side = want(sel, "server") ? &direct : &b;
	side_many = want(sel, "server") ? many_direct : many;
	for (r = 0; r < rounds; r++) {
		bool nat_on = want(sel, "native"), vir_on = want(sel, "virtio") || side == &direct;

		if (want(sel, "meta")) {
			nat[0][r] = nat_on ? meta_native(manyfd) : 1;
			vir[0][r] = vir_on ? meta_virtio(side, side_many, true) : 1;
			vir[4][r] = vir_on ? meta_virtio(side, side_many, false) : 1;
		}
		if (want(sel, "create")) {
			nat[1][r] = nat_on ? create_native(dirfd, buf) : 1;
			clean_created(dirfd);
			vir[1][r] = vir_on ? create_virtio(side, FUSE_ROOT_ID, data_gpa) : 1;
			clean_created(dirfd);
		}
		if (want(sel, "readdir")) {
			nat[2][r] = nat_on ? readdirplus_native(manyfd) : 1;
			vir[2][r] = vir_on ? readdirplus_virtio(side, side_many) : 1;
		}
		if (want(sel, "seq")) {
			nat[3][r] = nat_on ? big_native(bigfd, buf, true) : 1;
			vir[3][r] = vir_on ? big_virtio(side, big_node, big_fh, data_gpa, true) : 1;
			bw[0][r] = nat_on ? big_native(bigfd, buf, false) : 1;
			bw[1][r] = vir_on ? big_virtio(side, big_node, big_fh, data_gpa, false) : 1;
		}
	}
	printf("%-34s %12s %12s %-8s %7s\n", "workload", "native",
	       side == &direct ? "server" : "virtio-fs", "unit", "ratio");
	if (want(sel, "meta"))
		row("stat, cache=none: LOOKUP+GETATTR", "ops/s", nat[0], vir[0], rounds);
	if (want(sel, "meta"))
		row("stat, cache=auto: LOOKUP", "ops/s", nat[0], vir[4], rounds);
	if (want(sel, "create"))
		row("CREATE+WRITE 4K+RELEASE", "files/s", nat[1], vir[1], rounds);
	if (want(sel, "readdir"))
		row("ls -l: READDIRPLUS 10,000 names", "names/s", nat[2], vir[2], rounds);
	if (want(sel, "seq")) {
		row("1 GiB sequential WRITE, 1 MiB", "MiB/s", nat[3], vir[3], rounds);
		row("1 GiB sequential READ, 1 MiB", "MiB/s", bw[0], bw[1], rounds);
	}
	fuse_server_destroy(direct.server);
	fake_driver_destroy(&b.d);
	unlinkat(dirfd, "big", 0);
	return 0;
}
