/*
 * mkcpio: write an uncompressed newc ("070701") cpio archive from a list, without root, byte
 * for byte reproducible. It builds the production initramfs (packaging/initramfs/README.md):
 * the list names every entry, so device nodes such as /dev/console need no mknod, and owners
 * (0:0), mtimes (0) and inode numbers (1, 2, ... in list order) never depend on the host.
 *
 *   mkcpio -o OUT.cpio LIST
 *
 * LIST has one entry per line; blank lines and lines starting with '#' are ignored:
 *   dir  PATH MODE
 *   file PATH MODE SOURCE
 *   nod  PATH MODE c|b MAJOR MINOR
 *   slink PATH MODE TARGET
 * PATH is absolute in the archive; its parent must be "/" or a dir listed before it. MODE is
 * octal permission bits (at most 07777). SOURCE is a host file, read whole.
 *
 * The newc layout (cpio(5), and the kernel's Documentation/driver-api/early-userspace/
 * buffer-format.rst): a 110-byte ASCII header of "070701" and 13 eight-digit hex fields,
 * the NUL-terminated name padded to 4 bytes (counting the header), the data padded to 4, and
 * a final "TRAILER!!!" entry.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ENTRIES   4096
#define MAX_FILE_SIZE (256u << 20)

struct cpio_out {
	FILE *f;
	unsigned long long offset;
	unsigned int next_ino;
};

/* Directory paths seen so far, to check that parents come first and names are unique. */
static char *seen[MAX_ENTRIES];
static unsigned int seen_dir[MAX_ENTRIES];
static unsigned int nr_seen;

static int cpio_pad(struct cpio_out *o)
{
	static const char zeros[4];
	size_t n = (4 - (o->offset & 3)) & 3;

	if (n && fwrite(zeros, 1, n, o->f) != n)
		return -EIO;
	o->offset += n;
	return 0;
}

static int cpio_entry(struct cpio_out *o, const char *name, unsigned int mode, const void *data,
		      unsigned int size, unsigned int rmajor, unsigned int rminor)
{
	char hdr[128];
	size_t namesize = strlen(name) + 1;
	unsigned int ino = strcmp(name, "TRAILER!!!") ? o->next_ino++ : 0;
	unsigned int nlink = S_ISDIR(mode) ? 2 : 1;

	snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 ino, mode, 0u, 0u, nlink, 0u, size, 0u, 0u, rmajor, rminor, (unsigned int)namesize,
		 0u);
	if (fwrite(hdr, 1, 110, o->f) != 110 || fwrite(name, 1, namesize, o->f) != namesize)
		return -EIO;
	o->offset += 110 + namesize;
	if (cpio_pad(o) < 0)
		return -EIO;
	if (size && fwrite(data, 1, size, o->f) != size)
		return -EIO;
	o->offset += size;
	return cpio_pad(o);
}

/* The whole of a regular host file: 0, or -1 with a message printed. */
static int read_source(const char *list, unsigned int line, const char *path, char **data,
		       unsigned int *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = 0, r;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE_SIZE) {
		fprintf(stderr, "mkcpio: %s:%u: source %s: %s\n", list, line, path,
			fd < 0 ? strerror(errno) : "not a regular file of at most 256 MiB");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!*data) {
		close(fd);
		fprintf(stderr, "mkcpio: out of memory\n");
		return -1;
	}
	while (n < st.st_size && (r = read(fd, *data + n, (size_t)(st.st_size - n))) > 0)
		n += r;
	close(fd);
	if (n != st.st_size) {
		fprintf(stderr, "mkcpio: %s:%u: source %s: short read\n", list, line, path);
		free(*data);
		return -1;
	}
	*size = (unsigned int)n;
	return 0;
}

/* An archive path: absolute, no empty, "." or ".." component, parent listed, not a repeat. */
static const char *check_path(const char *path)
{
	const char *p = path, *slash = strrchr(path, '/');
	size_t parent_len = slash ? (size_t)(slash - path) : 0;
	bool parent_ok = parent_len == 0;

	if (path[0] != '/' || path[1] == '\0')
		return "must be an absolute path other than /";
	if (strlen(path) >= 4096)
		return "too long";
	while (*p == '/') {
		size_t n = strcspn(p + 1, "/");

		if (n == 0 || (n == 1 && p[1] == '.') || (n == 2 && p[1] == '.' && p[2] == '.'))
			return "has an empty, \".\" or \"..\" component";
		p += n + 1;
	}
	for (unsigned int i = 0; i < nr_seen; i++) {
		if (!strcmp(seen[i], path))
			return "listed twice";
		if (seen_dir[i] && strlen(seen[i]) == parent_len &&
		    !strncmp(seen[i], path, parent_len))
			parent_ok = true;
	}
	return parent_ok ? NULL : "its parent directory is not listed before it";
}

static int add_line(struct cpio_out *o, const char *list, unsigned int line, char *text)
{
	char *kind = strtok(text, " \t\r\n"), *path, *mode_s, *end, *a, *b, *c;
	unsigned long mode;
	const char *bad;
	int r = -1;

	if (!kind || kind[0] == '#')
		return 0;
	path = strtok(NULL, " \t\r\n");
	mode_s = strtok(NULL, " \t\r\n");
	a = strtok(NULL, " \t\r\n");
	b = strtok(NULL, " \t\r\n");
	c = strtok(NULL, " \t\r\n");
	if (!path || !mode_s) {
		fprintf(stderr, "mkcpio: %s:%u: expected KIND PATH MODE ...\n", list, line);
		return -1;
	}
	errno = 0;
	mode = strtoul(mode_s, &end, 8);
	if (errno || *end || mode > 07777) {
		fprintf(stderr, "mkcpio: %s:%u: mode %s: must be octal, at most 07777\n", list,
			line, mode_s);
		return -1;
	}
	bad = check_path(path);
	if (bad) {
		fprintf(stderr, "mkcpio: %s:%u: path %s: %s\n", list, line, path, bad);
		return -1;
	}
	if (nr_seen == MAX_ENTRIES) {
		fprintf(stderr, "mkcpio: %s:%u: more than %d entries\n", list, line, MAX_ENTRIES);
		return -1;
	}
	seen[nr_seen] = strdup(path);
	seen_dir[nr_seen] = !strcmp(kind, "dir");
	if (!seen[nr_seen++]) {
		fprintf(stderr, "mkcpio: out of memory\n");
		return -1;
	}

	if (!strcmp(kind, "dir") && !a) {
		r = cpio_entry(o, path + 1, S_IFDIR | mode, NULL, 0, 0, 0);
	} else if (!strcmp(kind, "file") && a && !b) {
		char *data;
		unsigned int size;

		if (read_source(list, line, a, &data, &size) < 0)
			return -1;
		r = cpio_entry(o, path + 1, S_IFREG | mode, data, size, 0, 0);
		free(data);
	} else if (!strcmp(kind, "slink") && a && !b && strlen(a) < 4096) {
		r = cpio_entry(o, path + 1, S_IFLNK | mode, a, (unsigned int)strlen(a), 0, 0);
	} else if (!strcmp(kind, "nod") && a && b && c && (!strcmp(a, "c") || !strcmp(a, "b"))) {
		unsigned long major = strtoul(b, &end, 10), minor;

		if (*end || major > 4095 || (minor = strtoul(c, &end, 10), *end) ||
		    minor > 1048575) {
			fprintf(stderr, "mkcpio: %s:%u: nod %s: bad major/minor %s %s\n", list,
				line, path, b, c);
			return -1;
		}
		r = cpio_entry(o, path + 1, (a[0] == 'c' ? S_IFCHR : S_IFBLK) | mode, NULL, 0,
			       (unsigned int)major, (unsigned int)minor);
	} else {
		fprintf(stderr,
			"mkcpio: %s:%u: expected \"dir PATH MODE\", \"file PATH MODE SOURCE\", "
			"\"slink PATH MODE TARGET\" or \"nod PATH MODE c|b MAJOR MINOR\"\n",
			list, line);
		return -1;
	}
	if (r < 0)
		fprintf(stderr, "mkcpio: write: %s\n", strerror(-r));
	return r < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	char tmp[4096], text[8192];
	struct cpio_out o = { .next_ino = 1 };
	const char *out, *list;
	unsigned int line = 0;
	FILE *in;
	int status = 1;

	if (argc != 4 || strcmp(argv[1], "-o")) {
		fprintf(stderr, "usage: mkcpio -o OUT.cpio LIST\n");
		return 2;
	}
	out = argv[2];
	list = argv[3];
	in = fopen(list, "re");
	if (!in) {
		fprintf(stderr, "mkcpio: %s: %s\n", list, strerror(errno));
		return 1;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)getpid()) >= sizeof(tmp) ||
	    !(o.f = fopen(tmp, "we"))) {
		fprintf(stderr, "mkcpio: -o %s: %s\n", out,
			o.f ? "path too long" : strerror(errno));
		fclose(in);
		return 1;
	}
	while (fgets(text, sizeof(text), in)) {
		line++;
		if (!strchr(text, '\n') && !feof(in)) {
			fprintf(stderr, "mkcpio: %s:%u: line too long\n", list, line);
			goto out;
		}
		if (add_line(&o, list, line, text) < 0)
			goto out;
	}
	if (ferror(in)) {
		fprintf(stderr, "mkcpio: %s: read error\n", list);
		goto out;
	}
	if (cpio_entry(&o, "TRAILER!!!", 0, NULL, 0, 0, 0) < 0 || fflush(o.f) ||
	    fsync(fileno(o.f)) < 0) {
		fprintf(stderr, "mkcpio: %s: %s\n", tmp, strerror(errno ? errno : EIO));
		goto out;
	}
	status = 0;
out:
	if (fclose(o.f) && status == 0) {
		fprintf(stderr, "mkcpio: %s: %s\n", tmp, strerror(errno));
		status = 1;
	}
	fclose(in);
	if (status == 0 && rename(tmp, out) < 0) {
		fprintf(stderr, "mkcpio: -o %s: %s\n", out, strerror(errno));
		status = 1;
	}
	if (status)
		unlink(tmp);
	for (unsigned int i = 0; i < nr_seen; i++)
		free(seen[i]);
	return status;
}
