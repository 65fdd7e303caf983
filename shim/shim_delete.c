/*
 * `containerd-shim-stratus-v2 ... delete`: containerd's cleanup after a shim it can no longer
 * reach (it died, or Delete over ttrpc failed). Prints a containerd.task.v2.DeleteResponse on
 * stdout, as containerd expects: the task is reported killed (exit status 128 + SIGKILL, as
 * runc's shim reports it) at the current time. It removes the dead shim's socket and, through
 * libstratus, the container the shim left behind (its monitor, hence its VM, is killed and its
 * state removed; a pod member's relay, its container in the sandbox's VM and its host mounts);
 * containerd itself unmounts <bundle>/rootfs afterwards.
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

/* containerd kills `delete` after 5 s (io.containerd.timeout.shim.cleanup) */
#define DELETE_MEMBER_WAIT_MS  4000
#define DELETE_MEMBER_RETRY_MS 250

/* A pod member (docs/pods.md): its state names its sandbox. */
static bool is_member(const char *root, const char *id)
{
	struct container_state st;
	struct error e = { 0 };
	bool member;

	if (container_load(root, id, &st, &e) < 0)
		return false;
	member = st.sandbox != NULL;
	state_clear(&st);
	return member;
}

static long elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/*
 * The container of a dead shim: force-delete it; a container that is not there is fine.
 * containerd runs the deletes of a dead shim's tasks at the same time, so a pod member's can
 * meet its sandbox's VM going down under it (the agent no longer answering); once the VM is
 * gone a member's delete is the host's part only, so a member's failed delete is tried again
 * for up to 4 s, within containerd's 5 s for the whole clean-up.
 */
static void remove_container(const struct shim_options *opts)
{
	struct timespec start;
	struct error e = { 0 };
	char root[4096];
	int r;

	if (!opts->id || shim_state_root(opts->namespace, root, sizeof(root)) < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &start);
	r = container_delete(root, opts->id, true, &e);
	while (r < 0 && r != -ENOENT && elapsed_ms(&start) < DELETE_MEMBER_WAIT_MS &&
	       is_member(root, opts->id)) {
		usleep(DELETE_MEMBER_RETRY_MS * 1000);
		error_clear(&e);
		r = container_delete(root, opts->id, true, &e);
	}
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
