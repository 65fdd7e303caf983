/*
 * Where a shim listens and how containerd finds it: the socket address derived from
 * (containerd address, namespace, id) as containerd 1.6's shims derive it, the bundle's
 * "address" file, the pod grouping annotation in config.json, and a liveness probe.
 */
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "shim.h"
#include "ttrpc.h"

#define CONFIG_MAX (4u << 20)

int shim_socket_address(const char *address, const char *ns, const char *id, char *out,
			size_t out_len)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	const char *dir = getenv("STRATUS_SHIM_SOCKET_DIR");
	_cleanup_free_ char *path = NULL;
	int n;

	if (!dir || !*dir)
		dir = SHIM_SOCKET_DIR_DEFAULT;
	/* filepath.Join(address, ns, id): address is an absolute socket path. */
	if (asprintf(&path, "%s/%s/%s", address, ns, id) < 0)
		return -ENOMEM;
	SHA256((const unsigned char *)path, strlen(path), digest);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	n = snprintf(out, out_len, "unix://%s/%s", dir, hex);
	if (n < 0 || (size_t)n >= out_len)
		return -ENAMETOOLONG;
	/* The path must fit a sockaddr_un. */
	if (strlen(out) - strlen("unix://") >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int shim_address_write(const char *bundle, const char *address, struct error *err)
{
	char tmp[4096], final[4096];
	_cleanup_close_ int fd = -1;
	size_t len = strlen(address);

	if ((size_t)snprintf(final, sizeof(final), "%s/address", bundle) >= sizeof(final) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.address.tmp", bundle) >= sizeof(tmp))
		return error_set(err, -ENAMETOOLONG, "%s: bundle path too long", bundle);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return error_set_errno(err, -errno, "%s", tmp);
	if (write(fd, address, len) != (ssize_t)len || fsync(fd) < 0) {
		int r = -errno;

		unlink(tmp);
		return error_set_errno(err, r ? r : -EIO, "%s: write", tmp);
	}
	if (rename(tmp, final) < 0) {
		int r = -errno;

		unlink(tmp);
		return error_set_errno(err, r, "%s: rename", final);
	}
	return 0;
}

int shim_address_read(const char *bundle, char *out, size_t out_len, struct error *err)
{
	char path[4096];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	if ((size_t)snprintf(path, sizeof(path), "%s/address", bundle) >= sizeof(path))
		return error_set(err, -ENAMETOOLONG, "%s: bundle path too long", bundle);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return error_set_errno(err, -errno, "%s", path);
	n = read(fd, out, out_len - 1);
	if (n < 0)
		return error_set_errno(err, -errno, "%s", path);
	if ((size_t)n == out_len - 1)
		return error_set(err, -ENAMETOOLONG, "%s: address too long", path);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	if (!n)
		return error_set(err, -ENOENT, "%s: empty", path);
	return 0;
}

static int read_small_file(const char *path, char **out, struct error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct stat st;

	if (fd < 0)
		return error_set_errno(err, -errno, "%s", path);
	if (fstat(fd, &st) < 0)
		return error_set_errno(err, -errno, "%s", path);
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX)
		return error_set(err, -EFBIG, "%s: not a regular file of at most 4 MiB", path);
	buf = malloc(st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_set_errno(err, -errno, "%s", path);
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	*out = ptr_steal(&buf);
	return 0;
}

int shim_sandbox_id(const char *bundle, char *out, size_t out_len, struct error *err)
{
	static const char *const key[] = { "annotations", SHIM_SANDBOX_ANNOTATION, NULL };
	char path[4096], errbuf[256];
	_cleanup_free_ char *text = NULL;
	yajl_val root, v, ann;
	const char *anno_path[] = { "annotations", NULL };
	int r;

	out[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/config.json", bundle) >= sizeof(path))
		return error_set(err, -ENAMETOOLONG, "%s: bundle path too long", bundle);
	r = read_small_file(path, &text, err);
	if (r < 0)
		return r;
	root = yajl_tree_parse(text, errbuf, sizeof(errbuf));
	if (!root) {
		char *nl = strchr(errbuf, '\n');

		if (nl)
			*nl = '\0';
		return error_set(err, -EINVAL, "%s: not valid JSON: %s", path, errbuf);
	}
	ann = yajl_tree_get(root, anno_path, yajl_t_any);
	if (ann && !YAJL_IS_OBJECT(ann)) {
		yajl_tree_free(root);
		return error_set(err, -EINVAL, "%s: annotations: must be an object of strings",
				 path);
	}
	v = yajl_tree_get(root, (const char **)key, yajl_t_any);
	if (v && !YAJL_IS_STRING(v)) {
		yajl_tree_free(root);
		return error_set(err, -EINVAL, "%s: annotations.\"%s\": must be a string", path,
				 SHIM_SANDBOX_ANNOTATION);
	}
	if (v) {
		const char *s = YAJL_GET_STRING(v);

		if (strlen(s) >= out_len || strchr(s, '/') || !strcmp(s, "..") || !strcmp(s, ".")) {
			r = error_set(err, -EINVAL,
				      "%s: annotations.\"%s\": \"%.64s\" is not a container id",
				      path, SHIM_SANDBOX_ANNOTATION, s);
			yajl_tree_free(root);
			return r;
		}
		strcpy(out, s);
	}
	yajl_tree_free(root);
	return 0;
}

int shim_address_alive(const char *address)
{
	struct sockaddr_un addr;
	unsigned int len;
	_cleanup_close_ int fd = -1;
	int r = ttrpc_sockaddr(address, &addr, &len);

	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, len) < 0)
		return -errno;
	return 0;
}
