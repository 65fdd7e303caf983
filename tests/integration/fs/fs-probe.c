/*
 * Guest half of tests/integration/test_virtio_fs.sh, in C (static) because every exec in the
 * guest costs ~0.4 s on a PVM host and some checks need syscalls busybox lacks (xattrs,
 * mmap, pwrite far out). Prints "FS key=value" lines the host test matches.
 *   fs-probe all DIR         the file checks on the share mounted at DIR
 *   fs-probe mkmany DIR N    create N empty files DIR/gNNNNN
 *   fs-probe count DIR       "FS count=N": entries of DIR other than . and ..
 *   fs-probe durable FILE    write, fsync, print "FS durable=synced", then wait forever
 *   fs-probe getxattr FILE NAME   (on the host) print the value
 *   fs-probe check-mmap FILE      (on the host) "ok" if FILE holds check_mmap's pattern
 *   fs-probe bench DIR LABEL  timings for tests/bench/virtio_fs_cache.sh: re-reading an
 *                            8 MiB file, stat of 1,000 names, creating 200 small files
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static char path_buf[4][512];

static const char *at(int i, const char *dir, const char *name)
{
	snprintf(path_buf[i], sizeof(path_buf[i]), "%s/%s", dir, name);
	return path_buf[i];
}

static void report(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const char *key, const char *fmt, ...)
{
	va_list ap;

	printf("FS %s=", key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static const char *err_name(int e)
{
	switch (e) {
	case 0:
		return "none";
	case ENOENT:
		return "ENOENT";
	case EXDEV:
		return "EXDEV";
	case EROFS:
		return "EROFS";
	case EACCES:
		return "EACCES";
	case EPERM:
		return "EPERM";
	case ELOOP:
		return "ELOOP";
	case ENOTDIR:
		return "ENOTDIR";
	default:
		return strerror(e);
	}
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size);
	close(fd);
	return n;
}

static void check_basic(const char *dir)
{
	const char *text = "hello virtio-fs\n";
	char buf[256] = { 0 };
	struct stat st;

	report("create", "%s",
	       write_file(at(0, dir, "new.txt"), text, strlen(text)) ? "FAIL" : "ok");
	report("read", "%s",
	       read_file(at(0, dir, "new.txt"), buf, sizeof(buf)) == (ssize_t)strlen(text) &&
			       !strcmp(buf, text)
		       ? "ok"
		       : "FAIL");
	report("rename", "%s",
	       rename(at(0, dir, "new.txt"), at(1, dir, "renamed.txt")) ? "FAIL" : "ok");
	report("link", "%s",
	       link(at(0, dir, "renamed.txt"), at(1, dir, "hard.txt")) == 0 &&
			       stat(at(0, dir, "renamed.txt"), &st) == 0 && st.st_nlink == 2
		       ? "ok"
		       : "FAIL");
	memset(buf, 0, sizeof(buf));
	report("symlink", "%s",
	       symlink("renamed.txt", at(0, dir, "sym")) == 0 &&
			       readlink(at(0, dir, "sym"), buf, sizeof(buf)) == 11 &&
			       read_file(at(0, dir, "sym"), buf + 100, 100) == (ssize_t)strlen(text)
		       ? "ok"
		       : "FAIL");
	chmod(at(0, dir, "renamed.txt"), 0751);
	stat(at(0, dir, "renamed.txt"), &st);
	report("chmod", "%o", st.st_mode & 07777);
	if (chown(at(0, dir, "renamed.txt"), 1234, 5678) < 0)
		report("chown", "FAIL-%s", err_name(errno));
	stat(at(0, dir, "renamed.txt"), &st);
	report("chown", "%u:%u", st.st_uid, st.st_gid);
	truncate(at(0, dir, "renamed.txt"), 12345);
	stat(at(0, dir, "renamed.txt"), &st);
	report("truncate", "%lld", (long long)st.st_size);
	if (mkdir(at(0, dir, "d1"), 0700) == 0 && mkdir(at(0, dir, "d1/d2"), 0755) == 0 &&
	    rmdir(at(0, dir, "d1/d2")) == 0 && unlink(at(0, dir, "hard.txt")) == 0)
		report("mkdir-rmdir-unlink", "ok");
	else
		report("mkdir-rmdir-unlink", "FAIL-%s", err_name(errno));
}

static void check_xattr(const char *dir)
{
	const char *f = at(0, dir, "xattr.txt");
	char val[64] = { 0 }, list[256] = { 0 };
	ssize_t n, l;

	write_file(f, "x", 1);
	if (setxattr(f, "user.stratus", "xattr-value", 11, 0) < 0 ||
	    setxattr(f, "user.gone", "1", 1, 0) < 0) {
		report("xattr", "FAIL-set-%s", err_name(errno));
		return;
	}
	n = getxattr(f, "user.stratus", val, sizeof(val));
	l = listxattr(f, list, sizeof(list));
	if (removexattr(f, "user.gone") < 0) {
		report("xattr", "FAIL-remove-%s", err_name(errno));
		return;
	}
	report("xattr", "%s",
	       n == 11 && !memcmp(val, "xattr-value", 11) && l > 0 &&
			       memmem(list, l, "user.stratus", 13) &&
			       getxattr(f, "user.gone", val, sizeof(val)) < 0 && errno == ENODATA
		       ? "ok"
		       : "FAIL");
}

/* 1 MiB through a shared writable mapping, then read back with read(). */
static void check_mmap(const char *dir)
{
	const size_t len = 1 << 20;
	int fd = open(at(0, dir, "mmap.bin"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	unsigned char *p, *back = malloc(len);
	size_t i;
	int ok;

	if (fd < 0 || ftruncate(fd, len) < 0 || !back) {
		report("mmap", "FAIL-setup-%s", err_name(errno));
		return;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		report("mmap", "FAIL-map-%s", err_name(errno));
		return;
	}
	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + (i >> 12));
	ok = msync(p, len, MS_SYNC) == 0;
	munmap(p, len);
	close(fd);
	ok = ok && read_file(at(0, dir, "mmap.bin"), (char *)back, len) == (ssize_t)len;
	for (i = 0; ok && i < len; i++)
		ok = back[i] == (unsigned char)(i * 7 + (i >> 12));
	report("mmap", "%s", ok ? "ok" : "FAIL");
	free(back);
}

/* 4 bytes at 5 GiB: the file is sparse and > 4 GiB. */
static void check_sparse(const char *dir)
{
	const off_t off = 5LL << 30;
	int fd = open(at(0, dir, "sparse.bin"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	char buf[4] = { 0 };
	struct stat st;

	if (fd < 0 || pwrite(fd, "END!", 4, off) != 4 || fsync(fd) < 0 || fstat(fd, &st) < 0 ||
	    pread(fd, buf, 4, off) != 4) {
		report("sparse", "FAIL-%s", err_name(errno));
		return;
	}
	close(fd);
	report("sparse", "%lld %s", (long long)st.st_size, memcmp(buf, "END!", 4) ? "FAIL" : "ok");
}

/*
 * What the guest can name is the guest's: host symlinks and ".." resolve in the guest, so
 * none of these reaches stratus-host-marker, which the host put next to the share.
 */
static void check_escapes(const char *dir)
{
	char buf[64];
	int fd;

	fd = open(at(0, dir, "to-secret"), O_RDONLY);
	report("escape-host-symlink", "%s", fd < 0 ? err_name(errno) : "OPENED");
	fd = open(at(0, dir, "to-parent"), O_RDONLY);
	report("escape-relative-symlink", "%s", fd < 0 ? err_name(errno) : "OPENED");
	fd = open(at(0, dir, "../stratus-host-marker"), O_RDONLY);
	report("escape-dotdot", "%s", fd < 0 ? err_name(errno) : "OPENED");
	report("escape-root-symlink", "%s",
	       access(at(0, dir, "to-root/init"), F_OK) == 0 ? "guest-root" : err_name(errno));
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	snprintf(buf, sizeof(buf), "/proc/self/fd/%d/../stratus-host-marker", fd);
	report("escape-proc-fd", "%s", access(buf, F_OK) < 0 ? err_name(errno) : "FOUND");
	close(fd);
	report("escape-rename", "%s",
	       rename(at(0, dir, "renamed.txt"), "/tmp/stolen") < 0 ? err_name(errno) : "MOVED");
	report("escape-link", "%s",
	       link(at(0, dir, "renamed.txt"), "/tmp/linked") < 0 ? err_name(errno) : "LINKED");
	report("escape-link-in", "%s",
	       link("/init", at(0, dir, "init-link")) < 0 ? err_name(errno) : "LINKED");
	/* Links the guest makes are stored as links: the host never follows them. */
	symlink("/", at(0, dir, "guest-root-link"));
	symlink("../../../../etc/passwd", at(0, dir, "guest-dotdot-link"));
	symlink("/proc/self/fd/3", at(0, dir, "guest-proc-link"));
}

static int mkmany(const char *dir, long n)
{
	char name[32];
	long i;

	mkdir(dir, 0755);
	for (i = 0; i < n; i++) {
		int fd;

		snprintf(name, sizeof(name), "g%05ld", i);
		fd = open(at(0, dir, name), O_WRONLY | O_CREAT, 0644);
		if (fd < 0) {
			report("mkmany", "FAIL-%ld-%s", i, err_name(errno));
			return 1;
		}
		close(fd);
	}
	report("mkmany", "%ld", n);
	return 0;
}

static int count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long n = 0;

	if (!d) {
		report("count", "FAIL-%s", err_name(errno));
		return 1;
	}
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	report("count", "%ld", n);
	return 0;
}

static int durable(const char *file)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, "durable-data\n", 13) != 13 || fsync(fd) < 0) {
		report("durable", "FAIL-%s", err_name(errno));
		return 1;
	}
	report("durable", "synced");
	for (;;)
		pause(); /* the host kills the VMM now */
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Median-free, plain totals: the host runs this once per cache mode in the same boot. */
static int bench(const char *dir, const char *label)
{
	static char buf[65536];
	double t0, t_read, t_stat, t_create;
	char name[64];
	struct stat st;
	int i, pass, fd;

	t0 = now_ms();
	for (pass = 0; pass < 5; pass++) {
		fd = open(at(0, dir, "big"), O_RDONLY);
		if (fd < 0)
			return report("bench", "FAIL-%s", err_name(errno)), 1;
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
	t_read = (now_ms() - t0) / 5;
	t0 = now_ms();
	for (pass = 0; pass < 3; pass++)
		for (i = 0; i < 1000; i++) {
			snprintf(name, sizeof(name), "files/f%03d", i);
			if (stat(at(0, dir, name), &st) < 0)
				return report("bench", "FAIL-stat-%s", err_name(errno)), 1;
		}
	t_stat = (now_ms() - t0) / 3;
	t0 = now_ms();
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "new-%03d", i);
		fd = open(at(0, dir, name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, buf, 4096) != 4096)
			return report("bench", "FAIL-create-%s", err_name(errno)), 1;
		close(fd);
	}
	t_create = now_ms() - t0;
	report("bench", "%s read-8MiB=%.1fms stat-1000=%.1fms create-200=%.1fms", label, t_read,
	       t_stat, t_create);
	return 0;
}

static int host_getxattr(const char *file, const char *name)
{
	char val[256];
	ssize_t n = getxattr(file, name, val, sizeof(val) - 1);

	if (n < 0)
		return printf("%s\n", err_name(errno)), 1;
	val[n] = 0;
	printf("%s\n", val);
	return 0;
}

static int host_check_mmap(const char *file)
{
	const size_t len = 1 << 20;
	unsigned char *back = malloc(len + 1);
	ssize_t n = back ? read_file(file, (char *)back, len + 1) : -1;
	size_t i;
	int ok = n == (ssize_t)len;

	for (i = 0; ok && i < len; i++)
		ok = back[i] == (unsigned char)(i * 7 + (i >> 12));
	printf("%s\n", ok ? "ok" : "bad");
	free(back);
	return !ok;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "all")) {
		check_basic(argv[2]);
		check_xattr(argv[2]);
		check_mmap(argv[2]);
		check_sparse(argv[2]);
		check_escapes(argv[2]);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "mkmany"))
		return mkmany(argv[2], atol(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "count"))
		return count(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "getxattr"))
		return host_getxattr(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "check-mmap"))
		return host_check_mmap(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "bench"))
		return bench(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "durable"))
		return durable(argv[2]);
	fprintf(stderr, "usage: fs-probe all DIR | mkmany DIR N | count DIR | durable FILE\n");
	return 2;
}
