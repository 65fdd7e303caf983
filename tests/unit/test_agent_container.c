/*
 * More of the container set-up (agent/), natively as root through the harness of
 * test_agent_harness.c: HOME from the container's /etc/passwd when the env has none (no NSS,
 * agent_passwd.c); linux.devices created in /dev with their type, numbers, mode and owner, a
 * listed /dev/null winning over the default, and bad entries refused by field; and a pod's
 * second container joining the first one's pid and mount namespaces, and its user and pid
 * namespaces, by path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_client.h"
#include "test_agent_harness.h"

static struct agent_mount proc_mount = { "proc", "/proc", "proc", { NULL, 0 } };

#define USER_PROCESS(uid, env)                                                           \
	"{\"process\": {\"args\": [\"sh\", \"-c\", \"echo home=$HOME\"], \"env\": [" env \
	"], \"cwd\": \"/\", \"user\": {\"uid\": " uid ", \"gid\": " uid "}}, "           \
	"\"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}}"

static void test_home_from_passwd(void **state)
{
	struct harness *h = *state;
	static const struct {
		const char *config, *expect;
	} cases[] = {
		{ USER_PROCESS("1000", "\"PATH=/bin\""), "home=/home/user\n" },
		{ USER_PROCESS("0", "\"PATH=/bin\""), "home=/root\n" },
		{ USER_PROCESS("4242", "\"PATH=/bin\""), "home=/\n" },
		{ USER_PROCESS("1000", "\"PATH=/bin\", \"HOME=/mine\""), "home=/mine\n" },
	};
	char path[128], cid[16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/etc/passwd", test_rootfs);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("root:x:0:0:root:/root:/bin/sh\nbad:x:1000x:0::/bad:/bin/sh\n"
	      "user:x:1000:1000:A User:/home/user:/bin/sh\n",
	      f);
	fclose(f);
	host_connect(h);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int status;
		char *out;

		snprintf(cid, sizeof(cid), "home%zu", i);
		out = run_config(h, cid, cases[i].config, NULL, 0, &status);
		assert_int_equal(status, 0);
		assert_string_equal(out, cases[i].expect);
		free(out);
	}
	unlink(path);
}

#define DEVICES_CONFIG(devices)                                                               \
	"{\"process\": {\"args\": [\"sh\", \"-c\", \"stat -c '%n %F %t %T %a %u %g' "         \
	"/dev/mydev /dev/sub/blk /dev/fifo /dev/null; echo x > /dev/mydev && echo "           \
	"written\"], \"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": {\"namespaces\": " \
	"[{\"type\": \"mount\"}], \"devices\": " devices "}}"

/*
 * The default devices in a /dev of our own are nodes made with the agent's mode and number
 * (no bind mounts: each costs the slow guest kernel a mount), and they work.
 */
static void test_default_devices(void **state)
{
	struct harness *h = *state;
	char *out;
	int status;

	host_connect(h);
	out = run_config(
		h, "defdevs",
		"{\"process\": {\"args\": [\"sh\", \"-c\", \"stat -c '%n %F %t %T %a' "
		"/dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; echo x > "
		"/dev/null && head -c 3 /dev/zero | wc -c; echo binds=$(cut -d ' ' -f 5 "
		"/proc/self/mountinfo | grep -c ^/dev/)\"], \"env\": [\"PATH=/bin\"], "
		"\"cwd\": \"/\"}, "
		"\"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}}",
		(struct agent_mount[]){ { "proc", "/proc", "proc", { NULL, 0 } } }, 1, &status);
	assert_int_equal(status, 0);
	expect_line(out, "/dev/null character special file 1 3 666\n");
	expect_line(out, "/dev/zero character special file 1 5 666\n");
	expect_line(out, "/dev/full character special file 1 7 666\n");
	expect_line(out, "/dev/random character special file 1 8 666\n");
	expect_line(out, "/dev/urandom character special file 1 9 666\n");
	expect_line(out, "/dev/tty character special file 5 0 666\n");
	expect_line(out, "3\n");
	/* /dev itself, /dev/pts and /dev/shm are mounts; no device is */
	expect_line(out, "binds=2\n");
	free(out);
}

static void test_devices(void **state)
{
	struct harness *h = *state;
	static const struct {
		const char *devices, *what;
	} bad[] = {
		{ "[{\"path\": \"/etc/x\", \"type\": \"c\", \"major\": 1, \"minor\": 3}]",
		  "linux.devices[0]: path" },
		{ "[{\"path\": \"/dev/../etc/x\", \"type\": \"c\", \"major\": 1, \"minor\": 3}]",
		  "linux.devices[0]: path" },
		{ "[{\"path\": \"/dev/\", \"type\": \"c\", \"major\": 1, \"minor\": 3}]",
		  "linux.devices[0]: path" },
		{ "[{\"path\": \"/dev/a\", \"type\": \"c\", \"major\": 1, \"minor\": 3}, "
		  "{\"path\": \"/dev/b\", \"type\": \"x\", \"major\": 1, \"minor\": 3}]",
		  "linux.devices[1]: type" },
		{ "[{\"path\": \"/dev/a\", \"type\": \"c\", \"minor\": 3}]",
		  "linux.devices[0]: major" },
		{ "[{\"path\": \"/dev/a\", \"type\": \"b\", \"major\": 1, \"minor\": -1}]",
		  "linux.devices[0]: minor" },
		{ "[{\"path\": \"/dev/a\", \"type\": \"c\", \"major\": 1, \"minor\": 3, "
		  "\"fileMode\": 99999}]",
		  "linux.devices[0]: fileMode" },
		{ "[{\"path\": \"/dev/a\", \"type\": \"c\", \"major\": 1, \"minor\": 3, "
		  "\"uid\": \"root\"}]",
		  "linux.devices[0]: uid" },
		{ "{\"path\": \"/dev/a\"}", "linux.devices: must be an array" },
	};
	char *out;
	int status;

	host_connect(h);
	/* JSON has no octal: 416 = 0640, 384 = 0600, 420 = 0644, 432 = 0660. */
	out = run_config(
		h, "devs",
		DEVICES_CONFIG("[{\"path\": \"/dev/mydev\", \"type\": \"c\", \"major\": 1, "
			       "\"minor\": 3, \"fileMode\": 416, \"uid\": 1000, \"gid\": "
			       "1001}, {\"path\": \"/dev/sub/blk\", \"type\": \"b\", "
			       "\"major\": 7, \"minor\": 0, \"fileMode\": 384}, {\"path\": "
			       "\"/dev/fifo\", \"type\": \"p\", \"fileMode\": 420}, "
			       "{\"path\": \"/dev/null\", \"type\": \"u\", \"major\": 1, "
			       "\"minor\": 5, \"fileMode\": 432}]"),
		NULL, 0, &status);
	assert_int_equal(status, 0);
	expect_line(out, "/dev/mydev character special file 1 3 640 1000 1001\n");
	expect_line(out, "/dev/sub/blk block special file 7 0 600 0 0\n");
	expect_line(out, "/dev/fifo fifo 0 0 644 0 0\n");
	expect_line(out, "/dev/null character special file 1 5 660 0 0\n");
	expect_line(out, "written\n");
	free(out);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char config[1024];
		int r;

		snprintf(config, sizeof(config),
			 "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"linux\": "
			 "{\"namespaces\": [{\"type\": \"mount\"}], \"devices\": %s}}",
			 bad[i].devices);
		r = create_config(h, "baddev", 0, config, NULL, 0);
		if (r != -EINVAL || !strstr(h->c.err, bad[i].what))
			fail_msg("case %zu: expected EINVAL \"%s\", got %d \"%s\"", i, bad[i].what,
				 r, h->c.err);
	}
}

/* A pod's first container, sleeping: its pid (in the agent's view) and its first line. */
static uint32_t start_pause(struct harness *h, const char *namespaces, const char *extra,
			    const struct agent_mount *mounts, uint32_t n, char *line, size_t len)
{
	struct agent_msg req = { .type = AGENT_PS }, reply;
	int out = stream_open(h, "pause", "", AGENT_STREAM_STDOUT);
	char config[2048];
	uint32_t pid;
	ssize_t r;
	size_t have = 0;

	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"sh\", \"-c\", \"%s; exec sleep 60\"], \"env\": "
		 "[\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": {\"namespaces\": %s%s}}",
		 line, namespaces, extra);
	if (create_config(h, "pause", OUT, config, mounts, n) != 0)
		fail_msg("CREATE pause: %s", h->c.err);
	assert_int_equal(agent_client_start(&h->c, "pause"), 0);
	while (have < len - 1 && (r = read(out, line + have, 1)) == 1 && line[have] != '\n')
		have++;
	line[have] = '\0';
	close(out);
	req.u.container.container_id = "pause";
	/* Its line comes before the exec: wait until the init is sleep, as the members expect. */
	for (int i = 0; i < 2000; i++) {
		bool sleeping;

		assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), 0);
		assert_true(reply.u.ps.procs.n >= 1);
		pid = reply.u.ps.procs.v[0].pid;
		sleeping = !strcmp(reply.u.ps.procs.v[0].command, "sleep");
		agent_msg_clear(&reply);
		if (sleeping)
			return pid;
		usleep(10000);
	}
	fail_msg("the pause container's init never became sleep");
	return 0;
}

static void stop_pause(struct harness *h)
{
	assert_int_equal(agent_client_signal(&h->c, "pause", "", SIGKILL, 0), 0);
	assert_int_equal(wait_status(h, "pause", ""), 137);
}

static void test_join_pid_and_mount(void **state)
{
	struct harness *h = *state;
	static char *tmp_o[] = { "size=1m" };
	struct agent_mount mounts[] = { proc_mount, { "tmpfs", "/tmp", "tmpfs", { tmp_o, 1 } } };
	char line[128] = "echo shared > /tmp/mark; readlink /proc/self/ns/pid", config[1024];
	char expect[160], *out;
	uint32_t pid;
	int status;

	host_connect(h);
	pid = start_pause(h, "[{\"type\": \"mount\"}, {\"type\": \"pid\"}]", "", mounts, 2, line,
			  sizeof(line));
	assert_true(strncmp(line, "pid:[", 5) == 0);
	/* No rootfs of its own: the pause's filesystem, its /proc, its processes. */
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"sh\", \"-c\", \"readlink /proc/self/ns/pid; cat "
		 "/tmp/mark; cat /proc/1/comm\"], \"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, "
		 "\"linux\": {\"namespaces\": [{\"type\": \"pid\", \"path\": "
		 "\"/proc/%u/ns/pid\"}, {\"type\": \"mount\", \"path\": \"/proc/%u/ns/mnt\"}]}}",
		 pid, pid);
	out = run_config(h, "member", config, NULL, 0, &status);
	assert_int_equal(status, 0);
	snprintf(expect, sizeof(expect), "%s\nshared\nsleep\n", line);
	assert_string_equal(out, expect);
	free(out);
	/* Created and joined at once, or joined twice: refused. */
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"linux\": "
		 "{\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\"}, {\"type\": "
		 "\"pid\", \"path\": \"/proc/%u/ns/pid\"}]}}",
		 pid);
	assert_int_equal(create_config(h, "both", 0, config, NULL, 0), -EINVAL);
	assert_non_null(strstr(h->c.err, "both created and joined"));
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"linux\": "
		 "{\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\", \"path\": "
		 "\"/proc/%u/ns/pid\"}, {\"type\": \"pid\", \"path\": \"/proc/%u/ns/pid\"}]}}",
		 pid, pid);
	assert_int_equal(create_config(h, "twice", 0, config, NULL, 0), -EINVAL);
	assert_non_null(strstr(h->c.err, "joined twice"));
	/* The agent went back to its own pid namespace: the next container is not in the pod's. */
	out = run_config(h, "after",
			 "{\"process\": {\"args\": [\"readlink\", \"/proc/self/ns/pid\"], "
			 "\"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": {\"namespaces\": "
			 "[{\"type\": \"mount\"}]}}",
			 &proc_mount, 1, &status);
	assert_int_equal(status, 0);
	assert_true(strncmp(out, "pid:[", 5) == 0);
	assert_null(strstr(out, line));
	free(out);
	stop_pause(h);
}

static void test_join_user_and_pid(void **state)
{
	struct harness *h = *state;
	char line[128] = "readlink /proc/self/ns/user", config[1024], expect[200], *out;
	uint32_t pid;
	int status;

	host_connect(h);
	pid = start_pause(h, "[{\"type\": \"user\"}, {\"type\": \"mount\"}, {\"type\": \"pid\"}]",
			  ", \"uidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": "
			  "65536}], \"gidMappings\": [{\"containerID\": 0, \"hostID\": 100000, "
			  "\"size\": 65536}]",
			  &proc_mount, 1, line, sizeof(line));
	assert_true(strncmp(line, "user:[", 6) == 0);
	/* Its own mount namespace and rootfs, created inside the joined user namespace. */
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"sh\", \"-c\", \"readlink /proc/self/ns/user; cat "
		 "/proc/self/uid_map; id -u; cat /proc/1/comm\"], \"env\": [\"PATH=/bin\"], "
		 "\"cwd\": \"/\"}, \"linux\": {\"namespaces\": [{\"type\": \"user\", \"path\": "
		 "\"/proc/%u/ns/user\"}, {\"type\": \"pid\", \"path\": \"/proc/%u/ns/pid\"}, "
		 "{\"type\": \"mount\"}]}}",
		 pid, pid);
	out = run_config(h, "member", config, &proc_mount, 1, &status);
	assert_int_equal(status, 0);
	snprintf(expect, sizeof(expect), "%s\n         0     100000      65536\n0\nsleep\n", line);
	assert_string_equal(out, expect);
	free(out);
	/* A new pid namespace in a joined user namespace: refused up front. */
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"linux\": "
		 "{\"namespaces\": [{\"type\": \"user\", \"path\": \"/proc/%u/ns/user\"}, "
		 "{\"type\": \"mount\"}, {\"type\": \"pid\"}]}}",
		 pid);
	assert_int_equal(create_config(h, "newpid", 0, config, NULL, 0), -EOPNOTSUPP);
	assert_non_null(strstr(h->c.err, "join the pod's pid namespace too"));
	stop_pause(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_home_from_passwd),   T(test_default_devices),   T(test_devices),
		T(test_join_pid_and_mount), T(test_join_user_and_pid),
	};

	if (geteuid() != 0) {
		print_message("needs root (namespaces, mounts): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, rootfs_setup, rootfs_teardown);
}
