/*
 * Protocol 1.3 in the agent (docs/pods.md), natively as root through the harness of
 * test_agent_harness.c: FREEZE of a running container (a counter it writes stops, then goes
 * on after the thaw; cgroup.events agrees), EXEC and START refused while frozen, SIGKILL and a
 * forced DELETE of a frozen container, FREEZE's refusals (unknown id, bad flag, no cgroup v2),
 * a freeze that cannot complete (a task stuck on a FUSE mount that never answers) undone and
 * answered ETIMEDOUT after its 5 s bound, and one still waiting superseded by the next;
 * namespace paths "container:<id>" (a member in the first container's pid, network, uts and
 * ipc namespaces sees its processes, a third container without paths does not; an unknown or
 * exited container is ENOENT naming linux.namespaces[i].path); MOUNT_SHARE's tag checks and,
 * without virtio-fs on the test host, a failed mount that leaves no directory behind; and,
 * with a tmpfs standing in for virtio-fs (agent_set_share_fstype), a share mounted once in
 * the agent's namespace, the same path again, a member writing into it through a bind mount
 * and a later one reading it, the 16-tag bound, and everything detached at SHUTDOWN.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_client.h"
#include "test_agent_harness.h"

static struct agent_mount proc_mount = { "proc", "/proc", "proc", { NULL, 0 } };

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The number the counter container last wrote to its file (0 before the first write). */
static long counter_read(const char *file)
{
	char buf[32] = "";
	FILE *f = fopen(file, "re");
	long v = 0;

	if (f && fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* Wait until the counter moves past `after` (it runs) or 20 s pass: its value then. */
static long counter_moves(const char *file, long after)
{
	long v = counter_read(file);

	for (int i = 0; i < 2000 && v <= after; i++) {
		sleep_ms(10);
		v = counter_read(file);
	}
	return v;
}

static int cgroup_frozen_now(const char *cid)
{
	char path[1200], buf[256] = "";
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "%s/%s/cgroup.events", test_cgroup_root, cid);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	p = strstr(buf, "frozen ");
	assert_non_null(p);
	return p[7] - '0';
}

/* A container that counts into /tmp/<file> of the shared rootfs, ten times a second or so. */
static void start_counter(struct harness *h, const char *cid, char *file, size_t len)
{
	char process[512], script[256];

	snprintf(file, len, "%s/tmp/count-%s-%d", test_rootfs, cid, (int)getpid());
	unlink(file);
	snprintf(script, sizeof(script),
		 "i=0; while :; do i=$((i+1)); echo $i > /tmp/count-%s-%d.new; mv "
		 "/tmp/count-%s-%d.new /tmp/count-%s-%d; usleep 20000; done",
		 cid, (int)getpid(), cid, (int)getpid(), cid, (int)getpid());
	snprintf(process, sizeof(process), SH, script);
	run(h, cid, 0, process);
	assert_true(counter_moves(file, 0) > 0);
}

static void test_freeze_and_thaw(void **state)
{
	struct harness *h = *state;
	char file[256];
	long frozen_at, later;

	if (!test_cgroup_root[0])
		skip(); /* no cgroup v2 on this host */
	host_connect(h);
	start_counter(h, "counter", file, sizeof(file));
	assert_int_equal(agent_client_freeze(&h->c, "counter", true), 0);
	/* The reply came once the kernel said so. */
	assert_int_equal(cgroup_frozen_now("counter"), 1);
	frozen_at = counter_read(file);
	sleep_ms(400); /* 20 writes' worth */
	assert_int_equal(counter_read(file), frozen_at);
	/* Frozen again: nothing to wait for, answered at once. */
	assert_int_equal(agent_client_freeze(&h->c, "counter", true), 0);
	/* EXEC and a second START are refused while frozen; PS and STATS still answer. */
	assert_int_equal(exec(h, "counter", "e1", 0, "{\"args\": [\"true\"], \"cwd\": \"/\"}"),
			 -EBUSY);
	assert_non_null(strstr(h->c.err, "paused"));
	struct agent_stats stats;

	assert_int_equal(agent_client_stats(&h->c, "counter", &stats), 0);
	assert_int_equal(agent_client_freeze(&h->c, "counter", false), 0);
	assert_int_equal(cgroup_frozen_now("counter"), 0);
	later = counter_moves(file, frozen_at);
	assert_true(later > frozen_at);
	/* Running again: EXEC works. */
	assert_int_equal(exec(h, "counter", "e2", 0, "{\"args\": [\"true\"], \"cwd\": \"/\"}"), 0);
	assert_int_equal(wait_status(h, "counter", "e2"), 0);
	/* A signal to a frozen container: SIGKILL ends it. */
	assert_int_equal(agent_client_freeze(&h->c, "counter", true), 0);
	assert_int_equal(agent_client_signal(&h->c, "counter", "", SIGKILL, AGENT_SIGNAL_ALL), 0);
	assert_int_equal(wait_status(h, "counter", ""), 137);
	unlink(file);
}

static void test_freeze_then_delete_force(void **state)
{
	struct harness *h = *state;
	char file[256], cgroup[1200];
	struct stat st;

	if (!test_cgroup_root[0])
		skip();
	host_connect(h);
	start_counter(h, "doomed", file, sizeof(file));
	assert_int_equal(agent_client_freeze(&h->c, "doomed", true), 0);
	assert_int_equal(agent_client_delete(&h->c, "doomed", 0), -EBUSY);
	assert_int_equal(agent_client_delete(&h->c, "doomed", AGENT_DELETE_FORCE), 0);
	assert_int_equal(wait_status(h, "doomed", ""), 137);
	/* Acknowledged: the cgroup is gone with it. */
	snprintf(cgroup, sizeof(cgroup), "%s/doomed", test_cgroup_root);
	assert_int_equal(stat(cgroup, &st), -1);
	unlink(file);
}

/* A created container (its init waits for START) can be frozen, then not started. */
static void test_freeze_created(void **state)
{
	struct harness *h = *state;

	if (!test_cgroup_root[0])
		skip();
	host_connect(h);
	assert_int_equal(create(h, "waiting", 0, "{\"args\": [\"true\"], \"cwd\": \"/\"}"), 0);
	assert_int_equal(agent_client_freeze(&h->c, "waiting", true), 0);
	assert_int_equal(agent_client_start(&h->c, "waiting"), -EBUSY);
	assert_non_null(strstr(h->c.err, "paused"));
	assert_int_equal(agent_client_freeze(&h->c, "waiting", false), 0);
	assert_int_equal(agent_client_start(&h->c, "waiting"), 0);
	assert_int_equal(wait_status(h, "waiting", ""), 0);
}

static void test_freeze_refusals(void **state)
{
	struct harness *h = *state;
	struct agent_msg req = { .type = AGENT_FREEZE }, reply;

	host_connect(h);
	assert_int_equal(agent_client_freeze(&h->c, "nosuch", true), -ENOENT);
	assert_string_equal(h->c.err, "agent: FREEZE: FREEZE: no container nosuch");
	assert_int_equal(agent_client_freeze(&h->c, "nosuch", false), -ENOENT);
	/* A flag other than 0 or 1, which the client cannot send: by hand. */
	req.u.freeze = (struct agent_freeze){ "nosuch", 2 };
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), -EINVAL);
	assert_non_null(strstr(h->c.err, "must be 0 or 1"));
	if (!test_cgroup_root[0])
		return;
	/* An exited init: nothing to freeze. */
	run(h, "gone", 0, "{\"args\": [\"true\"], \"cwd\": \"/\"}");
	struct agent_msg ev;

	assert_int_equal(agent_client_wait(&h->c, "gone", "", TIMEOUT_MS, &ev), 0);
	agent_msg_clear(&ev);
	assert_int_equal(agent_client_freeze(&h->c, "gone", true), -ESRCH);
	assert_int_equal(agent_client_ack_exit(&h->c, "gone", ""), 0);
}

/* An agent without cgroup v2 (its cgroup root is no cgroup2 mount): EOPNOTSUPP. */
static void test_freeze_without_cgroups(void **state)
{
	struct harness *h = *state;

	host_connect(h);
	run(h, "plain", 0, "{\"args\": [\"sleep\", \"60\"], \"cwd\": \"/\"}");
	assert_int_equal(agent_client_freeze(&h->c, "plain", true), -EOPNOTSUPP);
	assert_non_null(strstr(h->c.err, "no cgroup v2"));
	assert_int_equal(agent_client_signal(&h->c, "plain", "", SIGKILL, 0), 0);
	assert_int_equal(wait_status(h, "plain", ""), 137);
}

static char saved_cgroup_root[sizeof(test_cgroup_root)];

static int no_cgroup_setup(void **state)
{
	memcpy(saved_cgroup_root, test_cgroup_root, sizeof(test_cgroup_root));
	test_cgroup_root[0] = '\0'; /* the harness then points the agent at a non-cgroup path */
	return harness_setup(state);
}

static int no_cgroup_teardown(void **state)
{
	int r = harness_teardown(state);

	memcpy(test_cgroup_root, saved_cgroup_root, sizeof(test_cgroup_root));
	return r;
}

/*
 * A FUSE mount whose server never answers (not even INIT): a task that opens it waits in a
 * killable sleep, which the cgroup v2 freezer cannot interrupt. The test process moves to a
 * mount namespace of its own first, so the mount never reaches the host's.
 */
static int fuse_fd = -1;
static char fuse_dir[80];

static int stuck_fuse_setup(void **state)
{
	char opts[128];

	assert_int_equal(unshare(CLONE_NEWNS), 0);
	assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	/* Inside the rootfs: its recursive bind carries the mount along without a request. */
	snprintf(fuse_dir, sizeof(fuse_dir), "%s/fuse", test_rootfs);
	assert_int_equal(mkdir(fuse_dir, 0755), 0);
	fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fuse_fd);
	if (fuse_fd < 0 || mount("stuck", fuse_dir, "fuse", 0, opts) < 0) {
		print_message("no FUSE here (%s): the freeze timeout is not tested\n",
			      strerror(errno));
		if (fuse_fd >= 0)
			close(fuse_fd);
		fuse_fd = -1;
	}
	return harness_setup(state);
}

static int stuck_fuse_teardown(void **state)
{
	int r = harness_teardown(state);

	if (fuse_fd >= 0) {
		umount2(fuse_dir, MNT_DETACH);
		close(fuse_fd); /* the connection ends with its last fd */
		fuse_fd = -1;
	}
	rmdir(fuse_dir);
	return r;
}

/* Some process of the container in uninterruptible (here: killable) sleep, within 20 s. */
static bool container_has_sleeper(struct harness *h, const char *cid)
{
	for (int tries = 0; tries < 2000; tries++) {
		struct agent_msg req = { .type = AGENT_PS }, reply;
		bool found = false;

		req.u.container.container_id = (char *)cid;
		assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), 0);
		for (uint32_t i = 0; i < reply.u.ps.procs.n && !found; i++) {
			char path[64], line[512] = "", *end;
			FILE *f;

			snprintf(path, sizeof(path), "/proc/%u/stat", reply.u.ps.procs.v[i].pid);
			f = fopen(path, "re");
			if (f && fgets(line, sizeof(line), f) && (end = strrchr(line, ')')))
				found = end[1] == ' ' && end[2] == 'D';
			if (f)
				fclose(f);
		}
		agent_msg_clear(&reply);
		if (found)
			return true;
		sleep_ms(10);
	}
	return false;
}

struct freezer {
	struct harness h; /* its own connection */
	int result;
};

static void *freeze_thread(void *arg)
{
	struct freezer *fz = arg;

	fz->result = agent_client_freeze(&fz->h.c, "stuck", true);
	return NULL;
}

static void read_cgroup_file(const char *cid, const char *file, char *buf, size_t len)
{
	char path[1200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", test_cgroup_root, cid, file);
	f = fopen(path, "re");
	assert_non_null(f);
	buf[0] = '\0';
	assert_non_null(fgets(buf, (int)len, f));
	fclose(f);
}

/* A freeze that cannot complete is undone after its bound and answered ETIMEDOUT. */
static void test_freeze_timeout(void **state)
{
	struct harness *h = *state;
	char value[8] = "";

	if (!test_cgroup_root[0] || fuse_fd < 0)
		skip();
	host_connect(h);
	assert_int_equal(create_config(h, "stuck", 0,
				       "{\"process\": {\"args\": [\"ls\", \"/fuse\"], \"env\": "
				       "[\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": "
				       "{\"namespaces\": [{\"type\": \"mount\"}]}}",
				       &proc_mount, 1),
			 0);
	assert_int_equal(agent_client_start(&h->c, "stuck"), 0);
	assert_true(container_has_sleeper(h, "stuck"));
	assert_int_equal(agent_client_freeze(&h->c, "stuck", true), -ETIMEDOUT);
	assert_non_null(strstr(h->c.err, "not frozen after 5000 ms"));
	assert_non_null(strstr(h->c.err, "thawed again"));
	/* Thawed for real, and the agent agrees: EXEC is allowed. */
	read_cgroup_file("stuck", "cgroup.freeze", value, sizeof(value));
	assert_string_equal(value, "0\n");
	/* A FREEZE still waiting is superseded by the next one: ECANCELED, and the thaw wins. */
	struct freezer fz = { .h = *h };
	pthread_t t;

	host_connect(&fz.h);
	assert_int_equal(pthread_create(&t, NULL, freeze_thread, &fz), 0);
	for (int i = 0; i < 2000 && strcmp(value, "1\n"); i++) {
		sleep_ms(10);
		read_cgroup_file("stuck", "cgroup.freeze", value, sizeof(value));
	}
	assert_string_equal(value, "1\n");
	assert_int_equal(agent_client_freeze(&h->c, "stuck", false), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(fz.result, -ECANCELED);
	assert_non_null(strstr(fz.h.c.err, "superseded by a later FREEZE"));
	agent_client_destroy(&fz.h.c);
	read_cgroup_file("stuck", "cgroup.freeze", value, sizeof(value));
	assert_string_equal(value, "0\n");
	assert_int_equal(exec(h, "stuck", "e1", 0, "{\"args\": [\"true\"], \"cwd\": \"/\"}"), 0);
	assert_int_equal(wait_status(h, "stuck", "e1"), 0);
	assert_int_equal(agent_client_signal(&h->c, "stuck", "", SIGKILL, AGENT_SIGNAL_ALL), 0);
	assert_int_equal(wait_status(h, "stuck", ""), 137);
}

/* The pid namespace's processes, as `ps` lists them, and the namespace links compared. */
#define POD_SCRIPT                                                                           \
	"ps -o args; for ns in pid net uts ipc mnt; do if [ $(readlink /proc/1/ns/$ns) = "   \
	"$(readlink /proc/self/ns/$ns) ]; then echo same $ns; else echo own $ns; fi; done; " \
	"hostname"

static void test_container_namespace_paths(void **state)
{
	struct harness *h = *state;
	char config[2048], *out;
	int status;

	host_connect(h);
	/* The sandbox: its own pid, network, uts and ipc namespaces, and a hostname. */
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"sleep\", \"4242\"], \"env\": [\"PATH=/bin\"], "
		 "\"cwd\": \"/\"}, \"hostname\": \"pod-host\", \"linux\": {\"namespaces\": "
		 "[{\"type\": \"mount\"}, {\"type\": \"pid\"}, {\"type\": \"network\"}, "
		 "{\"type\": \"uts\"}, {\"type\": \"ipc\"}]}}");
	assert_int_equal(create_config(h, "sandbox", 0, config, &proc_mount, 1), 0);
	assert_int_equal(agent_client_start(&h->c, "sandbox"), 0);

	/* A member joins them by the sandbox's id; a mount namespace of its own. */
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"sh\", \"-c\", \"" POD_SCRIPT "\"], \"env\": "
		 "[\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": {\"namespaces\": [{\"type\": "
		 "\"mount\"}, {\"type\": \"pid\", \"path\": \"container:sandbox\"}, {\"type\": "
		 "\"network\", \"path\": \"container:sandbox\"}, {\"type\": \"uts\", \"path\": "
		 "\"container:sandbox\"}, {\"type\": \"ipc\", \"path\": \"container:sandbox\"}]}}");
	out = run_config(h, "member", config, &proc_mount, 1, &status);
	assert_int_equal(status, 0);
	expect_line(out, "sleep 4242\n"); /* the sandbox's init is its pid 1 */
	expect_line(out, "same pid\nsame net\nsame uts\nsame ipc\nown mnt\npod-host\n");
	free(out);

	/* A third container without paths: its own namespaces, no sandbox process. */
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"sh\", \"-c\", \"" POD_SCRIPT "\"], \"env\": "
		 "[\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": {\"namespaces\": " NS_DEFAULT "}}");
	out = run_config(h, "stranger", config, &proc_mount, 1, &status);
	assert_int_equal(status, 0);
	assert_null(strstr(out, "sleep 4242"));
	expect_line(out, "COMMAND\n"); /* ps ran, and saw only this container */
	assert_null(strstr(out, "pod-host"));
	free(out);

	/* No such container, named by the JSON path of the entry. */
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"linux\": "
		 "{\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"network\", \"path\": "
		 "\"container:nosuch\"}]}}");
	assert_int_equal(create_config(h, "lost", 0, config, NULL, 0), -ENOENT);
	assert_string_equal(h->c.err, "agent: CREATE: config.json: linux.namespaces[1].path: "
				      "container:nosuch: no such container");
	/* Nor a container naming itself. */
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"linux\": "
		 "{\"namespaces\": [{\"type\": \"uts\", \"path\": \"container:self\"}, {\"type\": "
		 "\"mount\"}]}}");
	assert_int_equal(create_config(h, "self", 0, config, NULL, 0), -ENOENT);
	assert_non_null(strstr(h->c.err, "linux.namespaces[0].path: container:self"));

	/* The sandbox's init exits: joining it is ENOENT until it is gone, then as unknown. */
	assert_int_equal(agent_client_signal(&h->c, "sandbox", "", SIGKILL, 0), 0);
	struct agent_msg ev;

	assert_int_equal(agent_client_wait(&h->c, "sandbox", "", TIMEOUT_MS, &ev), 0);
	agent_msg_clear(&ev);
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"linux\": "
		 "{\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\", \"path\": "
		 "\"container:sandbox\"}]}}");
	assert_int_equal(create_config(h, "late", 0, config, NULL, 0), -ENOENT);
	assert_string_equal(h->c.err, "agent: CREATE: config.json: linux.namespaces[1].path: "
				      "container:sandbox: its init has exited");
	assert_int_equal(agent_client_ack_exit(&h->c, "sandbox", ""), 0);
	assert_int_equal(create_config(h, "late", 0, config, NULL, 0), -ENOENT);
	assert_non_null(strstr(h->c.err, "no such container"));
	/* A relative path is still refused, naming what is allowed. */
	assert_int_equal(create_config(h, "rel", 0,
				       "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, "
				       "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, "
				       "{\"type\": \"pid\", \"path\": \"proc/1/ns/pid\"}]}}",
				       NULL, 0),
			 -EINVAL);
	assert_non_null(strstr(h->c.err, "container:<id>"));
}

static void test_mount_share(void **state)
{
	static const char *bad[] = { "",     ".",
				     "..",   "a/b",
				     "../x", "tag with space",
				     "t\\x", "0123456789012345678901234567890123456" /* 37 */ };
	struct harness *h = *state;
	char *path = NULL, shares[160], dir[200], tag[AGENT_MAX_TAG + 1];
	struct agent_msg req = { .type = AGENT_MOUNT_SHARE }, reply;
	struct stat st;
	int r;

	host_connect(h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = agent_client_mount_share(&h->c, bad[i], &path);
		/* Empty or over the codec's cap: refused by the client already, else the agent. */
		assert_int_equal(r, -EINVAL);
		assert_null(path);
		assert_non_null(strstr(h->c.err, "MOUNT_SHARE: tag"));
	}
	/* The agent checks for itself: an empty tag sent by hand. */
	req.u.mount_share.tag = "";
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), -EINVAL);
	assert_non_null(strstr(h->c.err, "agent: MOUNT_SHARE: MOUNT_SHARE: tag"));
	/* 36 bytes is a valid tag: it gets as far as mount(2). */
	memset(tag, 'm', AGENT_MAX_TAG);
	tag[AGENT_MAX_TAG] = '\0';
	snprintf(shares, sizeof(shares), "%s-shares", h->run);
	snprintf(dir, sizeof(dir), "%s/%s", shares, tag);
	r = agent_client_mount_share(&h->c, tag, &path);
	/* No virtio-fs device here: the mount fails with the kernel's errno, leaving nothing. */
	assert_true(r < 0 && r != -EINVAL);
	assert_null(path);
	assert_non_null(strstr(h->c.err, "mount virtiofs on"));
	assert_int_equal(stat(dir, &st), -1);
	assert_int_equal(stat(shares, &st), -1);
	/* The same again: nothing was recorded, so it is tried again, with the same answer. */
	assert_int_equal(agent_client_mount_share(&h->c, tag, &path), r);
	assert_int_equal(stat(shares, &st), -1);
	assert_false(h->c.broken);
	assert_int_equal(agent_client_ping(&h->c), 0);
}

/* How many mounts the agent has on path, from its own mount namespace. */
static int agent_mounts_on(struct harness *h, const char *path)
{
	char file[64], line[1024], mnt[512];
	FILE *f;
	int n = 0;

	snprintf(file, sizeof(file), "/proc/%d/mountinfo", (int)h->agent);
	f = fopen(file, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1 && !strcmp(mnt, path))
			n++;
	fclose(f);
	return n;
}

/* With a tmpfs standing in for virtio-fs: mounted once, reachable by later containers. */
static void test_mount_share_mounted(void **state)
{
	static char *rbind[] = { "rbind" };
	struct harness *h = *state;
	char expect[200], *path = NULL, *again = NULL, tag[8], source[220], *out;
	struct agent_mount share = { source, "/shared", "bind", { rbind, 1 } };
	struct agent_mount mounts[2] = { proc_mount, share };
	int status;

	host_connect(h);
	snprintf(expect, sizeof(expect), "%s-shares/m1", h->run);
	assert_int_equal(agent_client_mount_share(&h->c, "m1", &path), 0);
	assert_string_equal(path, expect);
	assert_int_equal(agent_mounts_on(h, expect), 1);
	/* Idempotent: the same path, no second mount. */
	assert_int_equal(agent_client_mount_share(&h->c, "m1", &again), 0);
	assert_string_equal(again, path);
	assert_int_equal(agent_mounts_on(h, expect), 1);
	free(again);
	/* A member writes into the share through a bind mount, a later one reads it. */
	snprintf(source, sizeof(source), "%s", path);
	mounts[1].source = source;
	out = run_config(h, "writer",
			 "{\"process\": {\"args\": [\"sh\", \"-c\", \"mkdir /shared/member && echo "
			 "hi > /shared/member/note\"], \"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, "
			 "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}}",
			 mounts, 2, &status);
	assert_int_equal(status, 0);
	free(out);
	snprintf(source, sizeof(source), "%s/member", path);
	out = run_config(h, "reader",
			 "{\"process\": {\"args\": [\"cat\", \"/shared/note\"], \"env\": "
			 "[\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": {\"namespaces\": "
			 "[{\"type\": \"mount\"}]}}",
			 mounts, 2, &status);
	assert_int_equal(status, 0);
	assert_string_equal(out, "hi\n");
	free(out);
	/* The containers' mounts stayed in their own namespaces. */
	assert_int_equal(agent_mounts_on(h, expect), 1);
	free(path);
	/* At most 16 tags; a known one still answers. */
	for (int i = 2; i <= 16; i++) {
		snprintf(tag, sizeof(tag), "m%d", i);
		assert_int_equal(agent_client_mount_share(&h->c, tag, &path), 0);
		free(path);
	}
	assert_int_equal(agent_client_mount_share(&h->c, "m17", &path), -ENOSPC);
	assert_null(path);
	assert_int_equal(agent_client_mount_share(&h->c, "m16", &path), 0);
	free(path);
	/* The teardown's SHUTDOWN detaches them all: its rmdir of the test directory checks. */
}

static int tmpfs_share_setup(void **state)
{
	harness_share_fstype = "tmpfs";
	return harness_setup(state);
}

static int tmpfs_share_teardown(void **state)
{
	harness_share_fstype = NULL;
	return harness_teardown(state);
}

#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_freeze_and_thaw),
		T(test_freeze_then_delete_force),
		T(test_freeze_created),
		T(test_freeze_refusals),
		cmocka_unit_test_setup_teardown(test_freeze_timeout, stuck_fuse_setup,
						stuck_fuse_teardown),
		cmocka_unit_test_setup_teardown(test_freeze_without_cgroups, no_cgroup_setup,
						no_cgroup_teardown),
		T(test_container_namespace_paths),
		T(test_mount_share),
		cmocka_unit_test_setup_teardown(test_mount_share_mounted, tmpfs_share_setup,
						tmpfs_share_teardown),
	};

	if (geteuid() != 0) {
		print_message("needs root (namespaces, mounts, cgroups): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, rootfs_setup, rootfs_teardown);
}
