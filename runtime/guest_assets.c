/*
 * Finding the guest kernel and initramfs (see guest_assets.h). An environment variable that
 * names a missing file is an error of its own rather than a silent fall-through: the user
 * asked for that file.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "guest_assets.h"

static bool is_file(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int find_one(const char *env, const char *exe_dir, const char *file, const char *what,
		    char **out, struct error *err)
{
	const char *value = getenv(env);
	char *candidates[2] = { NULL, NULL };
	int r = -ENOENT;

	if (value && value[0]) {
		if (!is_file(value))
			return error_set(err, -ENOENT, "%s: %s not found: %s", env, what, value);
		*out = strdup(value);
		return *out ? 0 : error_set(err, -ENOMEM, "out of memory");
	}
	if (asprintf(&candidates[0], "%s/%s", exe_dir, file) < 0 ||
	    asprintf(&candidates[1], "%s/../share/stratus/%s", exe_dir, file) < 0) {
		free(candidates[0]);
		return error_set(err, -ENOMEM, "out of memory");
	}
	for (unsigned int i = 0; i < 2 && r < 0; i++) {
		if (is_file(candidates[i])) {
			*out = realpath(candidates[i], NULL);
			r = *out ? 0 : -errno;
		}
	}
	if (r < 0)
		error_set(err, r,
			  "%s not found: set %s, or put %s next to the stratus binary or in "
			  "<prefix>/share/stratus/ (looked in %s)",
			  what, env, file, exe_dir);
	free(candidates[0]);
	free(candidates[1]);
	return r;
}

int guest_assets_find(const char *exe_dir, struct guest_assets *out, struct error *err)
{
	char exe[PATH_MAX];
	ssize_t n;
	int r;

	memset(out, 0, sizeof(*out));
	if (!exe_dir) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return error_set_errno(err, -errno, "cannot resolve /proc/self/exe");
		exe[n] = '\0';
		exe_dir = dirname(exe);
	}
	r = find_one(GUEST_KERNEL_ENV, exe_dir, GUEST_KERNEL_FILE, "guest kernel", &out->kernel,
		     err);
	if (r == 0)
		r = find_one(GUEST_INITRAMFS_ENV, exe_dir, GUEST_INITRAMFS_FILE, "guest initramfs",
			     &out->initramfs, err);
	if (r < 0)
		guest_assets_destroy(out);
	return r;
}

void guest_assets_destroy(struct guest_assets *a)
{
	free(a->kernel);
	free(a->initramfs);
	a->kernel = a->initramfs = NULL;
}
