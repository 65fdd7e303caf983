/*
 * The native harness shared by the agent's tests: see test_agent_harness.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent.h"
#include "test_agent_harness.h"

char test_rootfs[64];
bool harness_chroot;
bool harness_vm;
void (*harness_setup_hook)(const char *container_id);
const char *harness_share_fstype;
char test_cgroup_root[1100];

/* The cgroup v2 directory of this process, if one is mounted and we may create in it. */
static void find_cgroup_root(void)
{
	char line[1024], mnt[512] = "", path[512] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");

	while (f && fgets(line, sizeof(line), f)) {
		char m[512], type[64];

		if (sscanf(line, "%*s %*s %*s %*s %511s %*[^-]- %63s", m, type) == 2 &&
		    !strcmp(type, "cgroup2")) {
			snprintf(mnt, sizeof(mnt), "%s", m);
			break;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3))
			sscanf(line + 3, "%511s", path);
	if (f)
		fclose(f);
	test_cgroup_root[0] = '\0';
	if (!mnt[0])
		return;
	snprintf(test_cgroup_root, sizeof(test_cgroup_root), "%s%s/stratus-test-%d", mnt,
		 strcmp(path, "/") ? path : "", (int)getpid());
	if (mkdir(test_cgroup_root, 0755) < 0)
		test_cgroup_root[0] = '\0';
}

int rootfs_setup(void **state)
{
	char cmd[512];

	(void)state;
	strcpy(test_rootfs, "/tmp/test-agent-rootfs-XXXXXX");
	assert_non_null(mkdtemp(test_rootfs));
	chmod(test_rootfs, 0755);
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd %s; mkdir -p bin proc sys dev tmp etc usr/lib data; "
		 "cp /bin/busybox bin/busybox; for a in $(bin/busybox --list); do "
		 "[ $a = busybox ] || ln -s busybox bin/$a; done; "
		 "echo secret > etc/secret; mkdir etc/secretdir; echo x > etc/secretdir/f",
		 test_rootfs);
	assert_int_equal(system(cmd), 0);
	find_cgroup_root();
	return 0;
}

int rootfs_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", test_rootfs);
	assert_int_equal(system(cmd), 0);
	if (test_cgroup_root[0])
		rmdir(test_cgroup_root);
	return 0;
}

/*
 * The guest's agent runs from an initramfs, whose root pivot_root cannot move. A chroot whose
 * root is not a mount point gets the same EINVAL: the agent runs in one (with /proc, /dev,
 * /sys and /tmp bound in), so its MS_MOVE + chroot fallback runs natively.
 */
static int chroot_agent(struct harness *h)
{
	static const char *binds[] = { "proc", "dev", "sys", "tmp" };
	char path[256];

	snprintf(path, sizeof(path), "%s/chroot", h->dir);
	if (mkdir(path, 0755) < 0)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		char target[300], source[16];

		snprintf(target, sizeof(target), "%s/%s", path, binds[i]);
		snprintf(source, sizeof(source), "/%s", binds[i]);
		if (mkdir(target, 0755) < 0 ||
		    mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0)
			return -1;
	}
	return chroot(path) < 0 || chdir("/") < 0 ? -1 : 0;
}

static void chroot_cleanup(struct harness *h)
{
	static const char *dirs[] = { "proc", "dev", "sys", "tmp", "" };
	char path[300];

	for (size_t i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/chroot/%s", h->dir, dirs[i]);
		rmdir(path);
	}
}

int harness_setup(void **state)
{
	struct harness *h = calloc(1, sizeof(*h));
	int cfd, sfd;
	struct agent *a;

	strcpy(h->dir, "/tmp/test-agent-XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	chmod(h->dir, 0711); /* a user namespace's root must get through to the mountpoints */
	snprintf(h->control, sizeof(h->control), "%s/control", h->dir);
	snprintf(h->stdio, sizeof(h->stdio), "%s/stdio", h->dir);
	snprintf(h->run, sizeof(h->run), "%s/run", h->dir);
	cfd = agent_listen_unix(h->control);
	sfd = agent_listen_unix(h->stdio);
	assert_true(cfd >= 0 && sfd >= 0);
	h->agent = fork();
	assert_true(h->agent >= 0);
	if (h->agent == 0) {
		alarm(90); /* a stuck agent fails the test instead of hanging it */
		/* Never touch the host's mounts: everything below is in our own namespace. */
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(1);
		if (harness_chroot && chroot_agent(h) < 0)
			_exit(1);
		if (harness_vm && unshare(CLONE_NEWNET) < 0)
			_exit(1);
		if (agent_create(cfd, sfd, &a) < 0 ||
		    agent_configure(a, h->run,
				    test_cgroup_root[0] ? test_cgroup_root
							: "/nonexistent/stratus-test") < 0)
			_exit(1);
		if (harness_vm)
			agent_prepare(a);
		agent_set_setup_hook(a, harness_setup_hook);
		if (harness_share_fstype && agent_set_share_fstype(a, harness_share_fstype) < 0)
			_exit(1);
		int r = agent_run(a);
		agent_destroy(a);
		exit(r < 0 ? 1 : 0); /* exit, not _exit: LeakSanitizer checks the agent */
	}
	close(cfd);
	close(sfd);
	agent_client_init(&h->c, TIMEOUT_MS);
	*state = h;
	return 0;
}

int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

void host_connect(struct harness *h)
{
	agent_client_init(&h->c, TIMEOUT_MS);
	assert_int_equal(agent_client_attach(&h->c, unix_connect(h->control)), 0);
}

int harness_teardown(void **state)
{
	struct harness *h = *state;
	int status;

	agent_client_destroy(&h->c);
	host_connect(h);
	assert_int_equal(agent_client_shutdown(&h->c), 0);
	agent_client_destroy(&h->c);
	assert_int_equal(waitpid(h->agent, &status, 0), h->agent);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(h->control);
	unlink(h->stdio);
	rmdir(h->run); /* empty: every container's directory went with it */
	chroot_cleanup(h);
	assert_int_equal(rmdir(h->dir), 0);
	free(h);
	return 0;
}

int stream_open(struct harness *h, const char *cid, const char *eid, enum agent_stream s)
{
	struct agent_client c;
	struct agent_msg req = { .type = AGENT_STREAM_ATTACH }, reply;
	int fd = unix_connect(h->stdio);

	agent_client_init(&c, TIMEOUT_MS);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	c.fd = fd;
	req.u.attach = (struct agent_stream_attach){ (char *)cid, (char *)eid, s };
	assert_int_equal(agent_client_call(&c, &req, &reply, TIMEOUT_MS), 0);
	agent_msg_clear(&reply);
	c.fd = -1;
	agent_client_destroy(&c);
	fcntl(fd, F_SETFL, 0);
	return fd;
}

int create_config(struct harness *h, const char *cid, uint32_t stdio, const char *config,
		  const struct agent_mount *mounts, uint32_t nmounts)
{
	struct agent_create req = { .container_id = (char *)cid,
				    .rootfs_kind = AGENT_ROOTFS_DIR,
				    .rootfs_source = test_rootfs,
				    .rootfs_fstype = "",
				    .rootfs_options = "",
				    .stdio = stdio,
				    .mounts = { (struct agent_mount *)mounts, nmounts },
				    .oci_config = (char *)config };
	uint32_t pid = 0;
	int r = agent_client_create(&h->c, &req, &pid);

	if (r == 0)
		assert_true(pid > 1);
	else
		print_message("CREATE %s: %s\n", cid, h->c.err);
	return r;
}

int create_ns(struct harness *h, const char *cid, uint32_t stdio, const char *process,
	      const char *namespaces)
{
	static char *proc_opts[] = { "nosuid", "nodev", "noexec" };
	struct agent_mount proc = { "proc", "/proc", "proc", { proc_opts, 3 } };
	size_t len = strlen(process) + strlen(namespaces) + 256;
	char *config = malloc(len);
	int r;

	snprintf(config, len,
		 "{\"ociVersion\": \"1.0.2\", \"process\": %s, \"linux\": {\"namespaces\": %s}}",
		 process, namespaces);
	r = create_config(h, cid, stdio, config, &proc, 1);
	free(config);
	return r;
}

int create(struct harness *h, const char *cid, uint32_t stdio, const char *process)
{
	return create_ns(h, cid, stdio, process, NS_DEFAULT);
}

int exec(struct harness *h, const char *cid, const char *eid, uint32_t stdio, const char *process)
{
	struct agent_exec req = { (char *)cid, (char *)eid, stdio, (char *)process };
	uint32_t pid = 0;

	return agent_client_exec(&h->c, &req, &pid);
}

void run(struct harness *h, const char *cid, uint32_t stdio, const char *process)
{
	assert_int_equal(create(h, cid, stdio, process), 0);
	if (agent_client_start(&h->c, cid) != 0)
		fail_msg("START %s: %s", cid, h->c.err);
}

int wait_status(struct harness *h, const char *cid, const char *eid)
{
	struct agent_msg ev;
	int status;

	assert_int_equal(agent_client_wait(&h->c, cid, eid, TIMEOUT_MS, &ev), 0);
	status = (int)ev.u.exit.status + (ev.u.exit.flags & AGENT_EXIT_SIGNALED ? 128 : 0);
	agent_msg_clear(&ev);
	assert_int_equal(agent_client_ack_exit(&h->c, cid, eid), 0);
	return status;
}

char *read_all(int fd, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t r;

	while ((r = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	assert_true(r == 0);
	buf[n] = '\0';
	if (len)
		*len = n;
	close(fd);
	return buf;
}

char *run_config(struct harness *h, const char *cid, const char *config,
		 const struct agent_mount *mounts, uint32_t n, int *status)
{
	int out = stream_open(h, cid, "", AGENT_STREAM_STDOUT);
	char *s;

	if (create_config(h, cid, OUT, config, mounts, n) != 0)
		fail_msg("CREATE %s: %s", cid, h->c.err);
	assert_int_equal(agent_client_start(&h->c, cid), 0);
	s = read_all(out, NULL);
	*status = wait_status(h, cid, "");
	return s;
}

void expect_line(const char *out, const char *line)
{
	if (!strstr(out, line))
		fail_msg("expected \"%s\" in:\n%s", line, out);
}
