/*
 * `containerd-shim-stratus-v2 ... delete`: containerd's cleanup after a shim it can no longer
 * reach (it died, or Delete over ttrpc failed). Prints a containerd.task.v2.DeleteResponse on
 * stdout, as containerd expects: the task is reported killed (exit status 128 + SIGKILL, as
 * runc's shim reports it) at the current time. It removes the dead shim's socket and, through
 * libstratus, the container the shim left behind (its monitor, hence its VM, is killed and its
 * state removed); containerd itself unmounts <bundle>/rootfs afterwards.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "container.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "shim.h"

/* The container of a dead shim: force-delete it; a container that is not there is fine. */
static void remove_container(const struct shim_options *opts)
{
	struct error e = { 0 };
	char root[4096];
	int r;

	if (!opts->id || shim_state_root(opts->namespace, root, sizeof(root)) < 0)
		return;
	r = container_delete(root, opts->id, true, &e);
	if (r < 0 && r != -ENOENT)
		fprintf(stderr, "%s: delete %s: %s\n", SHIM_NAME, opts->id, e.msg);
}

/* Remove the socket the bundle's address file names if nothing serves it any more. */
static void remove_stale_socket(const char *bundle)
{
	char address[512];
	struct error err = { 0 };
	struct stat st;
	const char *path;

	if (shim_address_read(bundle, address, sizeof(address), &err) < 0)
		return;
	if (strncmp(address, "unix://", 7) || shim_address_alive(address) == 0)
		return;
	path = address + 7;
	if (path[0] == '/' && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
}

int shim_delete(const struct shim_options *opts, struct error *err)
{
	Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	char bundle[PATH_MAX];
	struct timespec now;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;

	if (opts->bundle)
		snprintf(bundle, sizeof(bundle), "%s", opts->bundle);
	else if (!getcwd(bundle, sizeof(bundle)))
		return error_set_errno(err, -errno, "working directory (the bundle)");
	/* the container first: until its processes are gone, one of them may still hold the
	 * socket open and make it look served */
	remove_container(opts);
	remove_stale_socket(bundle);

	clock_gettime(CLOCK_REALTIME, &now);
	ts.seconds = now.tv_sec;
	ts.nanos = (int32_t)now.tv_nsec;
	resp.pid = 0;
	resp.exit_status = 128 + SIGKILL;
	resp.exited_at = &ts;
	len = containerd__task__v2__delete_response__get_packed_size(&resp);
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	containerd__task__v2__delete_response__pack(&resp, buf);
	if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) == EOF)
		return error_set_errno(err, -EIO, "stdout");
	return 0;
}
