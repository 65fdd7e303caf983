/*
 * Unit tests for the agent's container set-up (agent_setup.c, agent_mount.c, agent_config.c,
 * agent_seccomp.c, agent_cgroup.c), run natively as root through the harness of
 * test_agent_harness.c: a busybox rootfs (kind DIR), the agent in its own mount namespace.
 * What a container's process sees is asserted from inside it: only the rootfs after
 * pivot_root, /proc, the minimal /dev, hostname, user, groups, umask, rlimits, capability
 * sets, NoNewPrivs, a seccomp rule, masked and read-only paths, a read-only bind mount and a
 * sysctl. Bad configs fail CREATE with a message naming the step and the field, and leave no
 * process or directory behind. EXEC joins the namespaces; PS sees a grandchild; SET_TIME,
 * UPDATE and STATS; and an OOM kill reported as such where the host has a memory controller.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_client.h"
#include "test_agent_harness.h"

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static char data_dir[128];
static char *proc_opts[] = { "nosuid", "nodev", "noexec" };
static char *tmp_opts[] = { "nosuid", "nodev", "mode=1777", "size=1m" };
static char *data_opts[] = { "rbind", "ro", "nosuid", "rprivate" };

static void test_isolation(void **state)
{
	struct harness *h = *state;
	struct agent_mount mounts[] = {
		{ "proc", "/proc", "proc", { proc_opts, 3 } },
		{ "tmpfs", "/tmp", "tmpfs", { tmp_opts, 4 } },
		{ data_dir, "/data", "bind", { data_opts, 4 } },
	};
	/* Everything the process object and linux section can ask for, checked from inside. */
	static const char script[] =
		"ls /; hostname; echo domain=$(cat /proc/sys/kernel/domainname); id -u; id -g; "
		"id -G; umask; ulimit -n; ulimit -Hn; grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' "
		"/proc/self/status; cat /proc/self/oom_score_adj; echo pid1=$(cat /proc/1/comm); "
		"echo $$; mkdir /tmp/x 2>&1; echo masked=$(cat /etc/secret); "
		"echo maskeddir=$(ls /etc/secretdir); touch /data/new 2>&1; cat /data/hello; "
		"echo shmmax=$(cat /proc/sys/kernel/shmmax); ls /dev; readlink /dev/ptmx; "
		"echo dev ok > /dev/null && echo null ok; pwd; echo $FOO; grep SigBlk "
		"/proc/self/status";
	char config[8192], *out;
	int status;

	host_connect(h);
	snprintf(data_dir, sizeof(data_dir), "%s/data-src", h->dir);
	mkdir(data_dir, 0755);
	chmod(data_dir, 0777); /* so only the read-only mount can refuse the container's user */
	char hello[200];
	snprintf(hello, sizeof(hello), "%s/hello", data_dir);
	FILE *f = fopen(hello, "w");
	assert_non_null(f);
	fputs("from the host\n", f);
	fclose(f);
	snprintf(config, sizeof(config),
		 "{\"ociVersion\": \"1.0.2\", \"hostname\": \"box\", \"domainname\": \"dom\", "
		 "\"process\": {\"args\": [\"sh\", \"-c\", \"%s\"], \"env\": "
		 "[\"PATH=/bin\", \"FOO=bar\"], \"cwd\": \"/usr/lib\", "
		 "\"user\": {\"uid\": 1000, \"gid\": 1001, \"additionalGids\": [2000, 3000], "
		 "\"umask\": 23}, \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 123, "
		 "\"hard\": 456}], \"capabilities\": {\"bounding\": [\"CAP_CHOWN\", \"CAP_KILL\", "
		 "\"CAP_NET_BIND_SERVICE\"], \"effective\": [\"CAP_KILL\"], \"permitted\": "
		 "[\"CAP_KILL\"], \"inheritable\": [\"CAP_KILL\"], \"ambient\": [\"CAP_KILL\"]}, "
		 "\"noNewPrivileges\": true, \"oomScoreAdj\": 100}, "
		 "\"linux\": {\"namespaces\": %s, \"sysctl\": {\"kernel.shmmax\": \"12345678\"}, "
		 "\"maskedPaths\": [\"/etc/secret\", \"/etc/secretdir\", \"/nonexistent\"], "
		 "\"readonlyPaths\": [\"/etc\"], "
		 "\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": "
		 "[\"SCMP_ARCH_X86_64\"], \"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\"], "
		 "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13}, {\"names\": "
		 "[\"no_such_syscall\"], \"action\": \"SCMP_ACT_KILL\"}]}}}",
		 script, NS_DEFAULT);
	out = run_config(h, "iso", config, mounts, 3, &status);
	assert_int_equal(status, 0);
	/* pivot_root: the rootfs only, with our /dev, /proc, /tmp and /data. */
	expect_line(out, "bin\ndata\ndev\netc\nproc\nsys\ntmp\nusr\n");
	expect_line(out, "\nbox\n");
	expect_line(out, "domain=dom\n");
	expect_line(out, "\n1000\n1001\n1001 2000 3000\n0027\n123\n456\n");
	expect_line(out, "CapEff:\t0000000000000020\n");
	expect_line(out, "CapBnd:\t0000000000000421\n");
	expect_line(out, "CapAmb:\t0000000000000020\n");
	expect_line(out, "NoNewPrivs:\t1\n");
	expect_line(out, "\n100\n");
	expect_line(out, "pid1=sh\n1\n");      /* a pid namespace: sh is its init */
	expect_line(out, "Permission denied"); /* the seccomp rule, with errnoRet 13 */
	expect_line(out, "masked=\n");
	expect_line(out, "maskeddir=\n");
	expect_line(out, "Read-only file system");
	expect_line(out, "from the host\n");
	expect_line(out, "shmmax=12345678\n");
	expect_line(out, "core\nfd\nfull\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\n"
			 "tty\nurandom\nzero\npts/ptmx\nnull ok\n/usr/lib\nbar\n");
	expect_line(out, "SigBlk:\t0000000000000000\n"); /* not the agent's blocked SIGCHLD */
	free(out);
	/* The host's view did not change: nothing was created in the bind source. */
	assert_int_equal(count_entries(data_dir), 1);
	assert_int_equal(unlink(hello), 0);
	assert_int_equal(rmdir(data_dir), 0);
}

/* Processes whose parent is pid: the agent's children, from /proc. */
static int children_of(pid_t pid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		char path[300], buf[512], *paren;
		int ppid = 0;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && (paren = strrchr(buf, ')')) &&
		    sscanf(paren + 1, " %*c %d", &ppid) == 1 && ppid == pid)
			n++;
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

/* The config `runc spec` writes, with its mounts as the host would translate them. */
static void test_default_spec(void **state)
{
	struct harness *h = *state;
	static char *proc_o[] = { "nosuid", "noexec", "nodev" };
	static char *dev_o[] = { "nosuid", "strictatime", "mode=755", "size=65536k" };
	static char *pts_o[] = { "nosuid",	  "noexec",    "newinstance",
				 "ptmxmode=0666", "mode=0620", "gid=5" };
	static char *shm_o[] = { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" };
	static char *mq_o[] = { "nosuid", "noexec", "nodev" };
	static char *sys_o[] = { "nosuid", "noexec", "nodev", "ro" };
	static char *cg_o[] = { "nosuid", "noexec", "nodev", "relatime", "ro" };
	struct agent_mount mounts[] = {
		{ "proc", "/proc", "proc", { proc_o, 3 } },
		{ "tmpfs", "/dev", "tmpfs", { dev_o, 4 } },
		{ "devpts", "/dev/pts", "devpts", { pts_o, 6 } },
		{ "shm", "/dev/shm", "tmpfs", { shm_o, 5 } },
		{ "mqueue", "/dev/mqueue", "mqueue", { mq_o, 3 } },
		{ "sysfs", "/sys", "sysfs", { sys_o, 4 } },
		{ "cgroup", "/sys/fs/cgroup", "cgroup", { cg_o, 5 } },
	};
	char *out;
	int status;

	host_connect(h);
	out = run_config(
		h, "default",
		"{\"ociVersion\": \"1.0.2-dev\", \"process\": {\"terminal\": false, \"user\": "
		"{\"uid\": 0, \"gid\": 0}, \"args\": [\"sh\", \"-c\", \"grep -E "
		"'^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; ulimit -n; hostname; "
		"cat /proc/sys/kernel/hostname; ls /dev/mqueue /sys/fs/cgroup >/dev/null && "
		"echo mounted; touch /sys/x 2>&1; cat /proc/sysrq-trigger; echo ok\"], "
		"\"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", "
		"\"TERM=xterm\"], \"cwd\": \"/\", \"capabilities\": {\"bounding\": "
		"[\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"], \"effective\": "
		"[\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"], \"permitted\": "
		"[\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"], \"ambient\": "
		"[\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]}, \"rlimits\": "
		"[{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}], "
		"\"noNewPrivileges\": true}, \"root\": {\"path\": \"rootfs\", \"readonly\": "
		"true}, \"hostname\": \"runc\", \"mounts\": [], \"linux\": {\"resources\": "
		"{\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]}, \"namespaces\": "
		"[{\"type\": \"pid\"}, {\"type\": \"network\"}, {\"type\": \"ipc\"}, "
		"{\"type\": \"uts\"}, {\"type\": \"mount\"}, {\"type\": \"cgroup\"}], "
		"\"maskedPaths\": [\"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", "
		"\"/proc/keys\", \"/proc/latency_stats\", \"/proc/timer_list\", "
		"\"/proc/timer_stats\", \"/proc/sched_debug\", \"/sys/firmware\", "
		"\"/proc/scsi\"], \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", "
		"\"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\"]}}",
		mounts, sizeof(mounts) / sizeof(mounts[0]), &status);
	assert_int_equal(status, 0);
	expect_line(out, "CapEff:\t0000000020000420\n");
	expect_line(out, "CapBnd:\t0000000020000420\n");
	expect_line(out, "NoNewPrivs:\t1\n");
	expect_line(out, "1024\nrunc\nrunc\nmounted\n");
	expect_line(out, "Read-only file system");
	expect_line(out, "\nok\n");
	free(out);
}

/* A CREATE that must fail with errno e and a message holding what. */
static void expect_create_fails(struct harness *h, const char *config,
				const struct agent_mount *mounts, uint32_t n, int e,
				const char *what)
{
	int r = create_config(h, "bad", 0, config, mounts, n);

	if (r != -e || !strstr(h->c.err, what))
		fail_msg("expected %d \"%s\", got %d \"%s\"", -e, what, r, h->c.err);
}

#define CONFIG(process_extra, linux_extra)                                                   \
	"{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"" process_extra "}, \"linux\": " \
	"{\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\"}]" linux_extra "}}"

static void test_bad_configs(void **state)
{
	struct harness *h = *state;
	static char *none[] = { NULL };
	struct agent_mount bad_fs = { "x", "/tmp", "nosuchfs", { none, 0 } };
	struct agent_mount relative = { "proc", "proc", "proc", { none, 0 } };
	struct agent_create kind0 = { "k0", 0, "", "", "", 0, { NULL, 0 }, CONFIG("", "") };
	uint32_t pid;

	host_connect(h);
	expect_create_fails(h, CONFIG(", \"capabilities\": {\"bounding\": [\"CAP_FOO\"]}", ""),
			    NULL, 0, EINVAL,
			    "process.capabilities.bounding: unknown capability CAP_FOO");
	expect_create_fails(h, CONFIG("", ""), &bad_fs, 1, ENODEV,
			    "mount nosuchfs on /tmp: No such device");
	expect_create_fails(h, CONFIG("", ""), &relative, 1, EINVAL, "must be absolute");
	expect_create_fails(h,
			    "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/nope\"}, "
			    "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}}",
			    NULL, 0, ENOENT, "process.cwd: chdir /nope: No such file or directory");
	expect_create_fails(h, CONFIG("", ", \"seccomp\": {\"defaultAction\": \"SCMP_ACT_NOPE\"}"),
			    NULL, 0, EINVAL, "linux.seccomp.defaultAction");
	expect_create_fails(h,
			    CONFIG(", \"rlimits\": [{\"type\": \"RLIMIT_NOPE\", \"soft\": 1, "
				   "\"hard\": 1}]",
				   ""),
			    NULL, 0, EINVAL, "process.rlimits[0].type: unknown rlimit RLIMIT_NOPE");
	expect_create_fails(h, CONFIG("", ", \"sysctl\": {\"kernel.nosuchthing\": \"1\"}"), NULL, 0,
			    ENOENT, "linux.sysctl: kernel.nosuchthing: No such file or directory");
	expect_create_fails(h, "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}}", NULL, 0,
			    EINVAL, "linux.namespaces: a mount namespace is required");
	expect_create_fails(
		h,
		"{\"hostname\": \"h\", \"process\": {\"args\": [\"true\"], "
		"\"cwd\": \"/\"}, \"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}}",
		NULL, 0, EINVAL, "hostname: needs a uts namespace");
	assert_int_equal(agent_client_create(&h->c, &kind0, &pid), -EINVAL);
	assert_non_null(strstr(h->c.err, "rootfs_kind 0"));
	/* Nothing left behind: no process, no container, no directory. */
	assert_int_equal(children_of(h->agent), 0);
	assert_int_equal(count_entries(h->run), 0);
	assert_int_equal(agent_client_delete(&h->c, "bad", 0), -ENOENT);
	/* A missing binary fails START, with the exec's reason; the exit is recorded. */
	assert_int_equal(create_config(h, "bad", 0,
				       "{\"process\": {\"args\": [\"/nope\"], \"cwd\": \"/\"}, "
				       "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}}",
				       NULL, 0),
			 0);
	assert_int_equal(agent_client_start(&h->c, "bad"), -ENOEXEC);
	assert_non_null(strstr(h->c.err, "exec /nope: No such file or directory"));
	assert_int_equal(wait_status(h, "bad", ""), 127);
	assert_int_equal(count_entries(h->run), 0);
}

static void test_exec_joins(void **state)
{
	struct harness *h = *state;
	char p[512], *s;
	int out;

	host_connect(h);
	assert_int_equal(
		create_config(h, "join", 0,
			      "{\"hostname\": \"joined\", \"process\": {\"args\": "
			      "[\"sh\", \"-c\", \"echo init > /tmp/mark; exec sleep 30\"], "
			      "\"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": "
			      "{\"namespaces\": " NS_DEFAULT ", \"seccomp\": {\"defaultAction\": "
			      "\"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\", "
			      "\"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\"}]}}}",
			      (struct agent_mount[]){ { "proc", "/proc", "proc", { NULL, 0 } },
						      { "tmpfs", "/tmp", "tmpfs", { NULL, 0 } } },
			      2),
		0);
	assert_int_equal(agent_client_start(&h->c, "join"), 0);
	out = stream_open(h, "join", "e1", AGENT_STREAM_STDOUT);
	/* Same uts, pid and mount namespaces (the init's tmpfs), the root, and the user given. */
	snprintf(p, sizeof(p),
		 "{\"args\": [\"sh\", \"-c\", \"while [ ! -e /tmp/mark ] || [ $(cat /proc/1/comm) "
		 "!= "
		 "sleep ]; do sleep 0.05; done; "
		 "hostname; cat /proc/1/comm; cat /tmp/mark; ls /; id -u; mkdir /tmp/d 2>&1\"], "
		 "\"env\": "
		 "[\"PATH=/bin\"], \"cwd\": \"/\", \"user\": {\"uid\": 7, \"gid\": 7}}");
	assert_int_equal(exec(h, "join", "e1", OUT, p), 0);
	s = read_all(out, NULL);
	assert_int_equal(wait_status(h, "join", "e1"), 1); /* mkdir failed */
	expect_line(s, "joined\nsleep\ninit\nbin\ndata\ndev\netc\nproc\nsys\ntmp\nusr\n7\n");
	expect_line(s,
		    "Operation not permitted"); /* the container's seccomp filter, default EPERM */
	free(s);
	/* A binary that is not there fails the EXEC itself, with the reason. */
	assert_int_equal(
		exec(h, "join", "e3", 0, "{\"args\": [\"/nope\"], \"cwd\": \"/\", \"env\": []}"),
		-ENOENT);
	assert_non_null(strstr(h->c.err, "exec /nope: No such file or directory"));
	assert_int_equal(agent_client_signal(&h->c, "join", "", SIGKILL, 0), 0);
	assert_int_equal(wait_status(h, "join", ""), 137);
	/* The init is gone: no more EXEC. */
	assert_int_equal(exec(h, "join", "e2", 0, p), -ENOENT);
}

/* A user namespace: root inside, an unprivileged range outside, the rootfs's owner unmapped. */
static void test_user_namespace(void **state)
{
	struct harness *h = *state;
	struct agent_mount proc = { "proc", "/proc", "proc", { proc_opts, 3 } };
	char *out;
	int status;

	host_connect(h);
	out = run_config(
		h, "userns",
		"{\"process\": {\"args\": [\"sh\", \"-c\", \"id -u; cat /proc/self/uid_map; "
		"cat /proc/self/gid_map; stat -c %u /bin/busybox; hostname\"], \"env\": "
		"[\"PATH=/bin\"], \"cwd\": \"/\"}, \"hostname\": \"inside\", \"linux\": "
		"{\"namespaces\": [{\"type\": \"user\"}, {\"type\": \"mount\"}, "
		"{\"type\": \"pid\"}, {\"type\": \"uts\"}], \"uidMappings\": "
		"[{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}], "
		"\"gidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": "
		"65536}]}}",
		&proc, 1, &status);
	assert_int_equal(status, 0);
	expect_line(out, "0\n");
	expect_line(out, "0     100000      65536\n");
	expect_line(out, "\n65534\ninside\n");
	free(out);
	/* Mappings are required with a user namespace. */
	assert_int_equal(create_config(h, "userns2", 0,
				       "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, "
				       "\"linux\": {\"namespaces\": [{\"type\": \"user\"}, "
				       "{\"type\": \"mount\"}]}}",
				       NULL, 0),
			 -EINVAL);
	assert_non_null(strstr(h->c.err, "linux.uidMappings"));
}

/* A pod: the second container joins the first one's network and uts namespaces by path. */
static void test_join_namespace(void **state)
{
	struct harness *h = *state;
	struct agent_msg req = { .type = AGENT_PS }, reply;
	char config[1024], *a, *b;
	int out, status;
	uint32_t pid;

	host_connect(h);
	out = stream_open(h, "pause", "", AGENT_STREAM_STDOUT);
	assert_int_equal(
		create_config(h, "pause", OUT,
			      "{\"hostname\": \"pod\", \"process\": {\"args\": [\"sh\", "
			      "\"-c\", \"readlink /proc/self/ns/net; exec sleep 30\"], "
			      "\"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": "
			      "{\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\"}, "
			      "{\"type\": \"network\"}, {\"type\": \"uts\"}]}}",
			      (struct agent_mount[]){ { "proc", "/proc", "proc", { NULL, 0 } } },
			      1),
		0);
	assert_int_equal(agent_client_start(&h->c, "pause"), 0);
	char buf[128] = "";
	ssize_t n = read(out, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	a = buf;
	req.u.container.container_id = "pause";
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), 0);
	assert_true(reply.u.ps.procs.n >= 1);
	pid = reply.u.ps.procs.v[0].pid;
	agent_msg_clear(&reply);
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"sh\", \"-c\", \"readlink /proc/self/ns/net; "
		 "hostname\"], \"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": "
		 "{\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\"}, {\"type\": "
		 "\"network\", \"path\": \"/proc/%u/ns/net\"}, {\"type\": \"uts\", \"path\": "
		 "\"/proc/%u/ns/uts\"}]}}",
		 pid, pid);
	b = run_config(h, "member", config,
		       (struct agent_mount[]){ { "proc", "/proc", "proc", { NULL, 0 } } }, 1,
		       &status);
	assert_int_equal(status, 0);
	assert_true(strncmp(a, "net:[", 5) == 0);
	expect_line(b, a); /* the same network namespace */
	expect_line(b, "pod\n");
	free(b);
	/* A path that is no namespace: CREATE says so. */
	assert_int_equal(create_config(h, "member2", 0,
				       "{\"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, "
				       "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, "
				       "{\"type\": \"network\", \"path\": \"/nonexistent\"}]}}",
				       NULL, 0),
			 -ENOENT);
	assert_non_null(strstr(h->c.err, "linux.namespaces: open /nonexistent"));
	assert_int_equal(agent_client_signal(&h->c, "pause", "", SIGKILL, 0), 0);
	assert_int_equal(wait_status(h, "pause", ""), 137);
	close(out);
}

static void test_ps_grandchild(void **state)
{
	struct harness *h = *state;
	struct agent_msg req = { .type = AGENT_PS }, reply;
	char p[256];
	uint32_t n = 0, sleeps = 0;

	host_connect(h);
	snprintf(p, sizeof(p), SH, "sleep 30 & sleep 31 & wait");
	run(h, "tree", 0, p);
	req.u.container.container_id = "tree";
	/* The shell forks and execs its children on its own time: poll until all three show. */
	for (int i = 0; i < 200 && (n < 3 || sleeps < 2); i++) {
		assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), 0);
		n = reply.u.ps.procs.n;
		sleeps = 0;
		for (uint32_t k = 0; k < n; k++)
			sleeps += !strcmp(reply.u.ps.procs.v[k].command, "sleep");
		agent_msg_clear(&reply);
		if (n < 3 || sleeps < 2)
			usleep(50 * 1000);
	}
	assert_int_equal(n, 3);
	assert_int_equal(sleeps, 2);
	assert_int_equal(agent_client_signal(&h->c, "tree", "", SIGKILL, AGENT_SIGNAL_ALL), 0);
	assert_int_equal(wait_status(h, "tree", ""), 137);
}

static void test_time_update_stats(void **state)
{
	struct harness *h = *state;
	struct agent_stats st;
	char p[256];

	host_connect(h);
	/*
	 * Natively this "guest" clock is the host's: only the refusals are tried here, never a
	 * clock_settime (the in-VM tests set it; test_agent_client checks what connect sends).
	 */
	assert_int_equal(agent_client_set_time(&h->c, 0), -EINVAL);
	assert_int_equal(agent_client_set_time(&h->c, 946684799999999999ull), -EINVAL);
	assert_non_null(strstr(h->c.err, "before 2000"));
	assert_int_equal(agent_client_update(&h->c, "nope", "{}"), -ENOENT);
	snprintf(p, sizeof(p), SH,
		 "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exec sleep 30");
	run(h, "upd", 0, p);
	if (!test_cgroup_root[0]) {
		assert_int_equal(agent_client_update(&h->c, "upd", "{}"), -EOPNOTSUPP);
		assert_int_equal(agent_client_stats(&h->c, "upd", &st), -EOPNOTSUPP);
	} else {
		assert_int_equal(agent_client_update(&h->c, "upd", "{\"memory\": 5}"), -EINVAL);
		assert_int_equal(agent_client_update(&h->c, "upd", "not json"), -EINVAL);
		assert_int_equal(
			agent_client_update(&h->c, "upd", "{\"unified\": {\"../../x\": \"1\"}}"),
			-EINVAL);
		assert_int_equal(agent_client_update(&h->c, "upd", "{}"), 0);
		/* cpu.stat is there without any controller: the busy loop shows in it. */
		for (int i = 0; i < 200; i++) {
			assert_int_equal(agent_client_stats(&h->c, "upd", &st), 0);
			if (st.cpu_usage_us >= 1000)
				break;
			usleep(50 * 1000);
		}
		assert_true(st.cpu_usage_us >= 1000);
		assert_true(st.cpu_usage_us >= st.cpu_user_us);
	}
	assert_int_equal(agent_client_signal(&h->c, "upd", "", SIGKILL, 0), 0);
	assert_int_equal(wait_status(h, "upd", ""), 137);
}

/* The memory controller in our cgroup root, or the OOM test is skipped. */
static bool have_memory_controller(void)
{
	char path[1200], buf[256] = "";
	FILE *f;

	if (!test_cgroup_root[0])
		return false;
	snprintf(path, sizeof(path), "%s/cgroup.controllers", test_cgroup_root);
	f = fopen(path, "re");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	return strstr(buf, "memory") != NULL;
}

static void test_oom(void **state)
{
	struct harness *h = *state;
	struct agent_msg ev;
	char config[1024];
	bool oom_event = false;

	if (!have_memory_controller())
		skip();
	host_connect(h);
	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"sh\", \"-c\", \"x=a; while true; do x=$x$x; done\"], "
		 "\"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": {\"namespaces\": %s, "
		 "\"resources\": {\"memory\": {\"limit\": 16777216, \"swap\": 16777216}}}}",
		 NS_DEFAULT);
	assert_int_equal(create_config(h, "oom", 0, config, NULL, 0), 0);
	assert_int_equal(agent_client_start(&h->c, "oom"), 0);
	assert_int_equal(agent_client_wait(&h->c, "oom", "", TIMEOUT_MS, &ev), 0);
	assert_int_equal(ev.u.exit.status, SIGKILL);
	assert_true(ev.u.exit.flags & AGENT_EXIT_OOM);
	agent_msg_clear(&ev);
	while (agent_client_next_event(&h->c, &ev, 1000) == 0) {
		oom_event |= ev.type == AGENT_EVENT_OOM;
		agent_msg_clear(&ev);
	}
	assert_true(oom_event);
	assert_int_equal(agent_client_ack_exit(&h->c, "oom", ""), 0);
}

/* The agent's root cannot be pivoted (an initramfs): the rootfs is moved to / and chrooted. */
static void test_unpivotable_root(void **state)
{
	struct harness *h = *state;
	char p[512], *s;
	int out, status;

	host_connect(h);
	snprintf(p, sizeof(p),
		 "{\"process\": {\"args\": [\"sh\", \"-c\", \"ls /; echo $$; exec sleep 30\"], "
		 "\"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, \"root\": {\"readonly\": true}, "
		 "\"linux\": {\"namespaces\": %s}}",
		 NS_DEFAULT);
	out = stream_open(h, "initrd", "", AGENT_STREAM_STDOUT);
	assert_int_equal(
		create_config(h, "initrd", OUT, p,
			      (struct agent_mount[]){ { "proc", "/proc", "proc", { NULL, 0 } } },
			      1),
		0);
	assert_int_equal(agent_client_start(&h->c, "initrd"), 0);
	char buf[256] = "";
	size_t n = 0;
	ssize_t r;
	while (!strstr(buf, "\n1\n") && n < sizeof(buf) - 1 &&
	       (r = read(out, buf + n, sizeof(buf) - 1 - n)) > 0) {
		n += (size_t)r;
		buf[n] = '\0';
	}
	expect_line(buf, "bin\ndata\ndev\netc\nproc\nsys\ntmp\nusr\n1\n");
	/* EXEC lands in the same root, read-only as the config says. */
	int e = stream_open(h, "initrd", "e1", AGENT_STREAM_STDOUT);
	assert_int_equal(exec(h, "initrd", "e1", OUT,
			      "{\"args\": [\"sh\", \"-c\", \"ls /; touch /x 2>&1\"], "
			      "\"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}"),
			 0);
	s = read_all(e, NULL);
	assert_int_equal(wait_status(h, "initrd", "e1"), 1);
	expect_line(s, "bin\ndata\ndev\netc\nproc\nsys\ntmp\nusr\n");
	expect_line(s, "Read-only file system");
	free(s);
	assert_int_equal(agent_client_signal(&h->c, "initrd", "", SIGKILL, 0), 0);
	status = wait_status(h, "initrd", "");
	assert_int_equal(status, 137);
	close(out);
}

/* A container's network namespace, as readlink /proc/self/ns/net shows it (malloc'd). */
static char *container_netns(struct harness *h, const char *cid, const char *namespaces)
{
	char config[1024], *out;
	int status;

	snprintf(config, sizeof(config),
		 "{\"process\": {\"args\": [\"sh\", \"-c\", \"readlink /proc/self/ns/net; "
		 "cat /proc/net/dev\"], \"env\": [\"PATH=/bin\"], \"cwd\": \"/\"}, \"linux\": "
		 "{\"namespaces\": [%s]}}",
		 namespaces);
	out = run_config(h, cid, config,
			 (struct agent_mount[]){ { "proc", "/proc", "proc", { NULL, 0 } } }, 1,
			 &status);
	assert_int_equal(status, 0);
	assert_true(strncmp(out, "net:[", 5) == 0);
	/* only lo, whichever namespace it is */
	assert_non_null(strstr(out, " lo:"));
	assert_null(strstr(out, "eth"));
	return out;
}

/*
 * In a VM with only lo, the first container that asks for a new network namespace gets the
 * VM's own (the agent's): no per-net set-up in the guest kernel. Only the first: the next
 * one gets a new one, and a member joining by path gets the one it names.
 */
static void test_vm_network_lent_once(void **state)
{
	struct harness *h = *state;
	static const char ns_new[] = "{\"type\": \"mount\"}, {\"type\": \"network\"}";
	char agent_ns[128] = "", path[64], *first, *second, *third;
	ssize_t n;

	host_connect(h); /* the agent serves: it is in its own namespace by now */
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)h->agent);
	n = readlink(path, agent_ns, sizeof(agent_ns) - 1);
	assert_true(n > 0);
	agent_ns[n] = '\0';
	first = container_netns(h, "first", ns_new);
	assert_true(strncmp(first, agent_ns, (size_t)n) == 0 && first[n] == '\n');
	second = container_netns(h, "second", ns_new);
	assert_false(strncmp(second, agent_ns, (size_t)n) == 0);
	assert_false(strncmp(second, first, (size_t)n + 1) == 0);
	/* no network entry: the agent's namespace, as before */
	third = container_netns(h, "third", "{\"type\": \"mount\"}");
	assert_true(strncmp(third, agent_ns, (size_t)n) == 0);
	free(first);
	free(second);
	free(third);
}

static int vm_setup(void **state)
{
	harness_vm = true;
	return harness_setup(state);
}

static int vm_teardown(void **state)
{
	int r = harness_teardown(state);

	harness_vm = false;
	return r;
}

static int chroot_setup(void **state)
{
	harness_chroot = true;
	return harness_setup(state);
}

static int chroot_teardown(void **state)
{
	int r = harness_teardown(state);

	harness_chroot = false;
	return r;
}

#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_isolation),
		T(test_default_spec),
		T(test_bad_configs),
		T(test_exec_joins),
		T(test_user_namespace),
		T(test_join_namespace),
		T(test_ps_grandchild),
		T(test_time_update_stats),
		T(test_oom),
		cmocka_unit_test_setup_teardown(test_unpivotable_root, chroot_setup,
						chroot_teardown),
		cmocka_unit_test_setup_teardown(test_vm_network_lent_once, vm_setup, vm_teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_agent_setup: needs root (namespaces, mounts)\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, rootfs_setup, rootfs_teardown);
}
