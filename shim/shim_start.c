/*
 * `containerd-shim-stratus-v2 ... start`: find or start the shim that serves this container
 * and print its address on stdout. containerd 1.6 reads stdout and stderr combined, so a
 * successful start writes nothing else.
 *
 * - A container whose config.json names a pod sandbox (io.kubernetes.cri.sandbox-id) other
 *   than itself joins that sandbox's shim: the sandbox's bundle is the sibling directory named
 *   after it (containerd lays bundles out as .../<namespace>/<id>), its "address" file says
 *   where its shim listens, and that shim must be alive.
 * - Otherwise the address is derived as containerd 1.6's shims derive it (shim.h), the socket
 *   is created here, and the server is forked: a new session, stdio on /dev/null (containerd
 *   reads our stdout until EOF, so the server must not hold it), working directory the
 *   bundle, the listening socket as fd 3. The socket exists before we print the address, so
 *   containerd's first connection waits in the backlog instead of failing.
 * - If the socket is already served (a second start for the same id), that shim is reused.
 * - The runtime options on stdin (shim_options.h): a ShimCgroup is joined by the server we
 *   forked, before its address is printed, as containerd's runc shim does (cgroupfs: the path
 *   below each hierarchy's root, an existing cgroup). Warnings go to the bundle's log FIFO,
 *   which containerd reads from before `start` runs; never to stdout/stderr.
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host_cgroup.h"
#include "shim.h"
#include "shim_options.h"
#include "ttrpc.h"

static char start_bundle[PATH_MAX];

/* A warning of start's: to the bundle's log FIFO if containerd reads it, else nowhere. */
static void start_warn(const char *msg)
{
	char path[PATH_MAX + 8];
	struct stat st;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/log", start_bundle) >= sizeof(path) ||
	    stat(path, &st) < 0 || !S_ISFIFO(st.st_mode))
		return;
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	dprintf(fd, "%s: start: %s\n", SHIM_NAME, msg);
	close(fd);
}

/* The server (pid) into ShimCgroup in every hierarchy of this host where it exists. */
static int join_shim_cgroup(const char *path, pid_t pid, struct error *err)
{
	struct host_cgroup_layout layout;
	int r;

	r = host_cgroup_layout_load(HOST_CGROUP_MOUNTINFO, HOST_CGROUP_SELF, &layout, err);
	if (r < 0)
		return r;
	r = host_cgroup_join(&layout, "ShimCgroup", path, pid, start_warn, err);
	host_cgroup_layout_free(&layout);
	return r;
}

static int print_address(const char *bundle, const char *address, struct error *err)
{
	int r = shim_address_write(bundle, address, err);

	if (r < 0)
		return r;
	if (fputs(address, stdout) == EOF || fflush(stdout) == EOF)
		return error_set_errno(err, -errno, "stdout");
	return 0;
}

static int join_sandbox(const char *bundle, const char *sandbox_id, struct error *err)
{
	char parent[PATH_MAX], sandbox_bundle[PATH_MAX], address[512];
	struct error why = { 0 };
	int r;

	if ((size_t)snprintf(parent, sizeof(parent), "%s", bundle) >= sizeof(parent) ||
	    (size_t)snprintf(sandbox_bundle, sizeof(sandbox_bundle), "%s/%s", dirname(parent),
			     sandbox_id) >= sizeof(sandbox_bundle))
		return error_set(err, -ENAMETOOLONG, "%s: bundle path too long", bundle);
	r = shim_address_read(sandbox_bundle, address, sizeof(address), &why);
	if (r < 0)
		return error_set(err, r, "pod sandbox %s has no shim: %s", sandbox_id, why.msg);
	r = shim_address_alive(address);
	if (r < 0)
		return error_set_errno(err, r, "pod sandbox %s: its shim at %s is not running",
				       sandbox_id, address);
	return print_address(bundle, address, err);
}

/* Listen at address; if a live shim already serves it, say so with -EADDRINUSE. */
static int create_socket(const char *address, int *fd, struct error *err)
{
	const char *path = address + strlen("unix://");
	_cleanup_free_ char *dir = strdup(path);
	struct stat st;
	int r;

	if (!dir)
		return -ENOMEM;
	if (mkdir(dirname(dir), 0700) < 0 && errno != EEXIST)
		return error_set_errno(err, -errno, "%s", dir);
	r = ttrpc_listen(address, fd, err);
	if (r != -EADDRINUSE)
		return r;
	if (shim_address_alive(address) == 0) {
		error_clear(err);
		return -EADDRINUSE;
	}
	/* A stale socket of a shim that died: replace it (only if it is a socket). */
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return error_set(err, -EEXIST, "%s: exists and is not a socket", path);
	if (unlink(path) < 0)
		return error_set_errno(err, -errno, "%s: remove stale socket", path);
	error_clear(err);
	return ttrpc_listen(address, fd, err);
}

static void child_exec(const struct shim_options *opts, const char *self_exe, const char *bundle,
		       const char *address, int listen_fd)
{
	const char *argv[16];
	int i = 0, null_fd;

	if (setsid() < 0)
		_exit(127);
	if (listen_fd != SHIM_LISTEN_FD) {
		if (dup2(listen_fd, SHIM_LISTEN_FD) < 0)
			_exit(127);
	} else if (fcntl(listen_fd, F_SETFD, 0) < 0) {
		_exit(127);
	}
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0)
		_exit(127);
	/* Nothing else of containerd's (its stdout pipe above all) may outlive `start`. */
	close_range(SHIM_LISTEN_FD + 1, ~0U, 0);
	if (chdir(bundle) < 0)
		_exit(127);
	argv[i++] = self_exe;
	argv[i++] = "-namespace";
	argv[i++] = opts->namespace;
	argv[i++] = "-id";
	argv[i++] = opts->id;
	argv[i++] = "-address";
	argv[i++] = opts->address;
	argv[i++] = "-publish-binary";
	argv[i++] = opts->publish_binary;
	argv[i++] = "-bundle";
	argv[i++] = bundle;
	argv[i++] = "-socket";
	argv[i++] = address;
	if (opts->debug)
		argv[i++] = "-debug";
	argv[i] = NULL;
	execv(self_exe, (char *const *)argv);
	_exit(127);
}

int shim_start(const struct shim_options *opts, const char *self_exe, struct error *err)
{
	char bundle[PATH_MAX], sandbox_id[256], address[256];
	struct shim_runc_options ropts = { 0 };
	_cleanup_close_ int fd = -1;
	pid_t pid;
	int r;

	if (opts->bundle) {
		if (!realpath(opts->bundle, bundle))
			return error_set_errno(err, -errno, "-bundle: %s", opts->bundle);
	} else if (!getcwd(bundle, sizeof(bundle))) {
		return error_set_errno(err, -errno, "working directory (the bundle)");
	}
	r = shim_sandbox_id(bundle, sandbox_id, sizeof(sandbox_id), err);
	if (r < 0)
		return r;
	if (sandbox_id[0] && strcmp(sandbox_id, opts->id))
		return join_sandbox(bundle, sandbox_id, err);
	snprintf(start_bundle, sizeof(start_bundle), "%s", bundle);
	r = shim_runc_options_read(STDIN_FILENO, &ropts, err);
	if (r < 0)
		return r;

	r = shim_socket_address(opts->address, opts->namespace, opts->id, address, sizeof(address));
	if (r < 0) {
		error_set_errno(err, r, "shim socket address for %s", opts->id);
		goto out;
	}
	r = create_socket(address, &fd, err);
	if (r == -EADDRINUSE) {
		r = print_address(bundle, address, err); /* served already: that shim */
		goto out;
	}
	if (r < 0)
		goto out;

	pid = fork();
	if (pid < 0) {
		r = error_set_errno(err, -errno, "fork");
		goto fail;
	}
	if (pid == 0)
		child_exec(opts, self_exe, bundle, address, fd);
	r = ropts.shim_cgroup ? join_shim_cgroup(ropts.shim_cgroup, pid, err) : 0;
	r = r ?: print_address(bundle, address, err);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto fail;
	}
	goto out;
fail:
	unlink(address + strlen("unix://"));
out:
	shim_runc_options_clear(&ropts);
	return r;
}
