/*
 * containerd's runtime options for the shim (shim_options.h): decoded with protoc-c's code for
 * our oci.proto, the Any unwrapped by hand (type_url compared by its last component).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "shim_options.h"

void shim_runc_options_clear(struct shim_runc_options *o)
{
	free(o->shim_cgroup);
	memset(o, 0, sizeof(*o));
}

int shim_runc_options_from_any(const char *what, const char *type_url, const uint8_t *value,
			       size_t len, struct shim_runc_options *out, struct error *err)
{
	const char *name = type_url ? strrchr(type_url, '/') : NULL;
	Containerd__Runc__V1__Options *o;

	memset(out, 0, sizeof(*out));
	name = name ? name + 1 : type_url;
	if (!name || strcmp(name, SHIM_RUNC_OPTIONS_TYPE))
		return 0;
	o = containerd__runc__v1__options__unpack(NULL, len, value);
	if (!o)
		return error_set(err, -EINVAL, "%s: cannot decode %s", what,
				 SHIM_RUNC_OPTIONS_TYPE);
	out->present = true;
	out->systemd_cgroup = o->systemd_cgroup;
	if (o->shim_cgroup && o->shim_cgroup[0] && !(out->shim_cgroup = strdup(o->shim_cgroup))) {
		containerd__runc__v1__options__free_unpacked(o, NULL);
		return error_set(err, -ENOMEM, "out of memory");
	}
	containerd__runc__v1__options__free_unpacked(o, NULL);
	return 0;
}

int shim_runc_options_decode(const uint8_t *data, size_t len, struct shim_runc_options *out,
			     struct error *err)
{
	Google__Protobuf__Any *any;
	int r;

	memset(out, 0, sizeof(*out));
	if (!len)
		return 0;
	any = google__protobuf__any__unpack(NULL, len, data);
	if (!any)
		return error_set(err, -EINVAL,
				 "stdin: the runtime options are not a google.protobuf.Any");
	r = shim_runc_options_from_any("stdin", any->type_url, any->value.data, any->value.len, out,
				       err);
	google__protobuf__any__free_unpacked(any, NULL);
	return r;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int shim_runc_options_read(int fd, struct shim_runc_options *out, struct error *err)
{
	long long deadline = now_ms() + SHIM_OPTIONS_STDIN_MS;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (fstat(fd, &st) < 0 || isatty(fd) || S_ISCHR(st.st_mode) || S_ISDIR(st.st_mode))
		return 0; /* closed, a terminal, /dev/null: no options */
	buf = malloc(SHIM_OPTIONS_MAX);
	if (!buf)
		return error_set(err, -ENOMEM, "out of memory");
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) == 0)
			return error_set(err, -ETIMEDOUT,
					 "stdin: the runtime options did not end within %d s",
					 SHIM_OPTIONS_STDIN_MS / 1000);
		n = read(fd, buf + len, SHIM_OPTIONS_MAX - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return error_set_errno(err, -errno, "stdin: the runtime options");
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == SHIM_OPTIONS_MAX)
			return error_set(err, -E2BIG, "stdin: the runtime options: over %u bytes",
					 SHIM_OPTIONS_MAX);
	}
	return shim_runc_options_decode(buf, len, out, err);
}
