/*
 * HOME for a container process whose env lacks it, as runc sets it: the home directory of
 * process.user.uid in the container's own /etc/passwd, or "/" when there is none. Read in the
 * container's child after pivot_root (or EXEC's chroot), never through NSS (nss_none.c). The
 * file is the image's and hostile: only a regular file is read (O_NONBLOCK: a FIFO cannot
 * stall the set-up), at most PASSWD_MAX_FILE bytes of it, lines longer than PASSWD_MAX_LINE
 * or with a NUL are skipped, the uid must be plain decimal, the home an absolute path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_internal.h"

#define PASSWD_MAX_FILE (1 << 20)
#define PASSWD_MAX_LINE 4096

/* A decimal uid (no sign, no spaces, no overflow) in [s, end). */
static bool uid_parse(const char *s, const char *end, uint32_t *out)
{
	uint64_t v = 0;

	if (s == end || end - s > 10)
		return false;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* One line (no newline): name:password:uid:gid:gecos:home[:shell]. */
static int line_home(const char *line, size_t len, uint32_t uid, char *out, size_t out_len)
{
	const char *f[7], *end = line + len, *p = line;
	int n = 0;
	uint32_t u;

	if (len > PASSWD_MAX_LINE || memchr(line, '\0', len))
		return -ENOENT;
	f[n++] = p;
	while (n < 7 && (p = memchr(p, ':', (size_t)(end - p)))) {
		p++;
		f[n++] = p;
	}
	if (n < 6 || !uid_parse(f[2], f[3] - 1, &u) || u != uid)
		return -ENOENT;
	const char *home = f[5], *home_end = n == 7 ? f[6] - 1 : end;
	size_t hl = (size_t)(home_end - home);

	if (hl == 0 || home[0] != '/' || hl >= out_len)
		return -ENOENT;
	memcpy(out, home, hl);
	out[hl] = '\0';
	return 0;
}

int passwd_home_parse(const char *buf, size_t len, uint32_t uid, char *out, size_t out_len)
{
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		if (line_home(p, (size_t)(le - p), uid, out, out_len) == 0)
			return 0;
		p = nl ? nl + 1 : end;
	}
	return -ENOENT;
}

int passwd_home(const char *path, uint32_t uid, char *out, size_t out_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	size_t len = 0;
	struct stat st;
	char *buf;
	int r = -ENOENT;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(buf = malloc(PASSWD_MAX_FILE))) {
		close(fd);
		return -ENOENT;
	}
	while (len < PASSWD_MAX_FILE) {
		ssize_t n = read(fd, buf + len, PASSWD_MAX_FILE - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	r = passwd_home_parse(buf, len, uid, out, out_len);
	free(buf);
	return r;
}

/* process.env with HOME added when it has none: spec->env itself, or a new array. */
char **passwd_env_with_home(char **env, uint32_t uid)
{
	char home[PATH_MAX_HOME] = "/";
	size_t n = 0;
	char **v, *entry;

	for (; env && env[n]; n++)
		if (!strncmp(env[n], "HOME=", 5))
			return env;
	if (passwd_home("/etc/passwd", uid, home, sizeof(home)) < 0)
		strcpy(home, "/");
	v = calloc(n + 2, sizeof(*v));
	entry = malloc(strlen(home) + 6);
	if (!v || !entry) {
		free(v);
		free(entry);
		return env;
	}
	if (n)
		memcpy(v, env, n * sizeof(*v));
	sprintf(entry, "HOME=%s", home);
	v[n] = entry;
	return v; /* in the child, until execve: never freed */
}
