/*
 * stratus-vmm: libvmm behind a StratoVirt-style command line. Parses options, sets up the
 * log, console and pid file, optionally daemonizes (the parent exits once the VM runs, or
 * with the child's error), then runs the VM and exits with a status that says how the VM
 * ended (see cli_usage and docs/vmm.md).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "qmp.h"
#include "sandbox.h"
#include "seccomp.h"
#include "vm.h"

#define EXIT_USAGE 2

static int open_log(const struct cli_options *opts, struct error *err)
{
	int fd;

	if (!opts->log_path) {
		log_init(2, opts->log_debug ? LOG_DEBUG : LOG_INFO);
		return 0;
	}
	fd = open(opts->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return error_set_errno(err, -errno, "-D: cannot open %s", opts->log_path);
	log_init(fd, LOG_DEBUG);
	return 0;
}

static int open_console(struct cli_options *opts, struct error *err)
{
	switch (opts->serial) {
	case CLI_SERIAL_STDIO:
		if (opts->daemonize)
			return error_set(err, -EINVAL,
					 "-daemonize: the console cannot be stdio; "
					 "use -serial file:PATH or none");
		opts->vm.serial_fd = 1;
		opts->vm.serial_in_fd = 0;
		break;
	case CLI_SERIAL_FILE:
		opts->vm.serial_fd =
			open(opts->serial_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (opts->vm.serial_fd < 0)
			return error_set_errno(err, -errno, "-serial: cannot open %s",
					       opts->serial_path);
		break;
	case CLI_SERIAL_SOCKET: /* the serial device listens (vm->config.serial_socket) */
	case CLI_SERIAL_NONE:
		break;
	}
	return 0;
}

/*
 * Fork; the parent waits on a pipe for the child's verdict and exits with it. Returns the
 * write end of the pipe in the child (-1 when not daemonizing).
 */
static int daemonize(struct error *err)
{
	int pipe_fds[2], null_fd;
	char status = 1;
	pid_t pid;

	if (pipe2(pipe_fds, O_CLOEXEC) < 0)
		return error_set_errno(err, -errno, "-daemonize: pipe");
	pid = fork();
	if (pid < 0)
		return error_set_errno(err, -errno, "-daemonize: fork");
	if (pid > 0) {
		close(pipe_fds[1]);
		if (read(pipe_fds[0], &status, 1) != 1)
			status = 1; /* the child died before it could say */
		_exit(status);
	}
	close(pipe_fds[0]);
	setsid();
	if (chdir("/") < 0)
		return error_set_errno(err, -errno, "-daemonize: chdir");
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		dup2(null_fd, 0);
		dup2(null_fd, 1);
		if (log_fd() != 2)
			dup2(null_fd, 2);
		close(null_fd);
	}
	return pipe_fds[1];
}

static void notify_parent(int *fd, char status)
{
	if (*fd < 0)
		return;
	if (write(*fd, &status, 1) < 0)
		log_warn("cannot report to the parent: %s", strerror(errno));
	close(*fd);
	*fd = -1;
}

static int write_pidfile(const char *path, struct error *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char line[32];
	int n;

	if (fd < 0)
		return error_set_errno(err, -errno, "-pidfile: cannot create %s", path);
	n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	if (write(fd, line, n) != n)
		return error_set_errno(err, -errno, "-pidfile: cannot write %s", path);
	return 0;
}

/* -daemonize moves to "/": make the paths used after that absolute first. */
static int absolute_path(const char **path, char **owned, struct error *err)
{
	char cwd[4096];

	if (!*path || (*path)[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return error_set_errno(err, -errno, "getcwd");
	if (asprintf(owned, "%s/%s", cwd, *path) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	*path = *owned;
	return 0;
}

/* -daemonize moves to "/": the QMP socket path too. */
static int absolute_qmp_path(struct cli_options *opts, struct error *err)
{
	const char *path = opts->qmp_path;
	char *owned = NULL;
	int r;

	if (!path[0] || path[0] == '/')
		return 0;
	r = absolute_path(&path, &owned, err);
	if (r == 0 && strlen(owned) >= sizeof(opts->qmp_path))
		r = error_set(err, -ENAMETOOLONG, "-qmp: socket path too long: %s", owned);
	if (r == 0)
		snprintf(opts->qmp_path, sizeof(opts->qmp_path), "%s", owned);
	free(owned);
	return r;
}

static void log_options(const struct cli_options *opts)
{
	if (opts->uuid[0])
		log_info("VM uuid %s", opts->uuid);
	if (opts->disable_seccomp)
		log_warn("-disable-seccomp: SECCOMP FILTERS DISABLED: every syscall is open to a "
			 "guest that takes over the VMM");
	else if (opts->seccomp_log)
		log_warn("-seccomp-log: syscalls off the seccomp lists are only logged (see "
			 "dmesg / the audit log), not fatal");
}

/*
 * Jail, ids, capabilities, no_new_privs: after everything is opened, before any vCPU thread
 * exists. In the jail the directories of the sockets (QMP, serial, vsock and its PATH_<port>
 * peers) and of the pid file stay reachable at the same paths.
 */
static int drop_privileges(const struct cli_options *opts, struct error *err)
{
	struct sandbox_config cfg = { .jail_dir = opts->sandbox_dir };
	unsigned int i;
	int r = 0;

	if (opts->sandbox_dir) {
		r = sandbox_add_bind(&cfg, opts->qmp_path, err);
		if (r == 0)
			r = sandbox_add_bind(&cfg, opts->vm.serial_socket, err);
		if (r == 0)
			r = sandbox_add_bind(&cfg, opts->pidfile, err);
		for (i = 0; r == 0 && i < opts->nr_sandbox_binds; i++)
			r = sandbox_add_dir(&cfg, opts->sandbox_binds[i], err);
		for (i = 0; r == 0 && i < opts->vm.nr_devices; i++)
			if (opts->vm.devices[i].type == VM_DEVICE_VIRTIO_VSOCK)
				r = sandbox_add_bind(&cfg, opts->vm.devices[i].path, err);
		if (r < 0)
			return r;
	}
	cfg.runas = opts->runas;
	cfg.uid = opts->runas_uid;
	cfg.gid = opts->runas_gid;
	return sandbox_apply(&cfg, err);
}

static int run(struct cli_options *opts)
{
	char *paths[5] = { NULL, NULL, NULL, NULL, NULL };
	struct error err = { 0 };
	int parent_fd = -1, status;
	bool pid_written = false;
	enum vm_exit_reason reason;
	struct qmp_server *qmp = NULL;
	struct vm *vm = NULL;

	if (open_log(opts, &err) < 0 || open_console(opts, &err) < 0)
		goto fail;
	if (opts->daemonize) {
		if (absolute_path(&opts->vm.kernel_path, &paths[0], &err) < 0 ||
		    absolute_path(&opts->vm.initrd_path, &paths[1], &err) < 0 ||
		    absolute_path(&opts->pidfile, &paths[2], &err) < 0 ||
		    absolute_path(&opts->vm.serial_socket, &paths[3], &err) < 0 ||
		    absolute_path(&opts->vm.incoming, &paths[4], &err) < 0 ||
		    absolute_qmp_path(opts, &err) < 0)
			goto fail;
		parent_fd = daemonize(&err);
		if (parent_fd < 0)
			goto fail;
	}
	opts->vm.runas = opts->runas; /* virtio-fs shares' processes switch too */
	opts->vm.runas_uid = opts->runas_uid;
	opts->vm.runas_gid = opts->runas_gid;
	opts->vm.seccomp = opts->disable_seccomp ? SECCOMP_OFF
			   : opts->seccomp_log	 ? SECCOMP_LOG
						 : SECCOMP_KILL;
	if (opts->pidfile) {
		if (write_pidfile(opts->pidfile, &err) < 0)
			goto fail;
		pid_written = true;
	}
	if (vm_create(&opts->vm, &vm, &err) < 0)
		goto fail;
	if (opts->qmp_path[0] &&
	    qmp_server_create(vm, opts->qmp_path, STRATUS_VERSION, &qmp, &err) < 0)
		goto fail;
	if (drop_privileges(opts, &err) < 0)
		goto fail;
	log_options(opts);
	log_info("%s%sVM with %u vCPU(s), %llu MiB: starting", opts->name ? opts->name : "",
		 opts->name ? ": " : "", opts->vm.nr_vcpus,
		 (unsigned long long)(opts->vm.mem_size >> 20));
	notify_parent(&parent_fd, 0);
	reason = vm_run(vm);
	status = vm_exit_status(reason);
	qmp_server_vm_ended(qmp, reason);
	qmp_server_destroy(qmp);
	log_info("VM stopped: %s (exit status %d)", vm_exit_reason_name(reason), status);
	vm_destroy(vm);
	if (pid_written)
		unlink(opts->pidfile);
	goto out;
fail:
	qmp_server_destroy(qmp);
	vm_destroy(vm);
	fprintf(stderr, "stratus-vmm: %s\n", err.msg);
	if (log_fd() != 2)
		log_error("%s", err.msg);
	notify_parent(&parent_fd, 1);
	if (pid_written)
		unlink(opts->pidfile);
	status = 1;
out:
	free(paths[0]);
	free(paths[1]);
	free(paths[2]);
	free(paths[3]);
	free(paths[4]);
	return status;
}

/* Close [from, to] (both >= 3), with close_range or one by one on old kernels. */
static void close_fds(unsigned int from, unsigned int to)
{
	if (from > to || close_range(from, to, 0) == 0)
		return;
	for (; from <= MIN(to, 1023u); from++)
		close((int)from);
}

/*
 * Nothing inherited by accident reaches the guest's side of the VMM: every descriptor but
 * stdio and the ones -netdev tap,fd=N hands over (cli_netdev.c) is closed.
 */
static void close_inherited(const struct cli_options *opts)
{
	unsigned int keep[VM_MAX_DEVICES], nr = 0, i, j, next = 3;

	for (i = 0; i < opts->nr_netdevs; i++) {
		if (!opts->netdevs[i].fd_set)
			continue;
		for (j = nr++; j > 0 && keep[j - 1] > (unsigned int)opts->netdevs[i].fd; j--)
			keep[j] = keep[j - 1];
		keep[j] = (unsigned int)opts->netdevs[i].fd;
	}
	if (!nr) {
		sandbox_close_inherited();
		return;
	}
	for (i = 0; i < nr; i++) {
		if (keep[i] > next)
			close_fds(next, keep[i] - 1);
		next = keep[i] + 1;
	}
	close_fds(next, ~0u);
}

int main(int argc, char *argv[])
{
	struct cli_options opts;
	struct error err = { 0 };

	/* A console or log reader that goes away must not kill the VM. */
	signal(SIGPIPE, SIG_IGN);
	/* Parsing opens nothing; what is inherited is closed right after. */
	if (cli_parse(argc, argv, &opts, &err) < 0) {
		sandbox_close_inherited();
		fprintf(stderr, "stratus-vmm: %s\n", err.msg);
		return EXIT_USAGE;
	}
	close_inherited(&opts);
	if (opts.help) {
		cli_usage(stdout);
		return 0;
	}
	if (opts.print_seccomp) {
		seccomp_print(stdout);
		return 0;
	}
	if (opts.version) {
		printf("stratus-vmm %s\n", STRATUS_VERSION);
		return 0;
	}
	return run(&opts);
}
