/*
 * state.json (runtime/state.h): a state written and read back field by field, the JSON a
 * caller sees (OCI fields, live status, no private fields), the atomic replace leaving no
 * temp file, hostile or broken files refused with the field named, container ID rules, and
 * the monitor's liveness (a live PID with another start time is not our monitor, a zombie is
 * dead). Also the pure helpers next to it: signal names, the exec process built from
 * config.json.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec_process.h"
#include "signal_name.h"
#include "state.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/stratus-state-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/state.json", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

static void fill(struct container_state *st)
{
	static struct state_annotation ann[] = { { "org.example.a", "1" },
						 { "org.example.\"quoted\"", "line\nbreak" } };
	static struct host_cgroup_dir dirs[] = {
		{ .path = "/sys/fs/cgroup/memory/stratus/c1",
		  .created = "/sys/fs/cgroup/memory/stratus" },
		{ .path = "/sys/fs/cgroup/unified/k/c1" },
	};

	memset(st, 0, sizeof(*st));
	st->oci_version = "1.2.0";
	st->id = "c1";
	st->status = CONTAINER_CREATED;
	st->pid = getpid();
	process_start_time(getpid(), &st->pid_start_time);
	st->bundle = "/srv/bundle";
	st->rootfs = "/srv/bundle/rootfs";
	st->created = "2026-01-01T00:00:00.000000001Z";
	st->owner = "";
	st->vm_vcpus = 2;
	st->vm_mem_mib = 384;
	st->annotations = ann;
	st->n_annotations = 2;
	st->host_cgroup.dirs = dirs;
	st->host_cgroup.n = 2;
}

static void test_round_trip(void **state)
{
	struct container_state in, out;
	struct error err = { 0 };
	char tmp[128];

	(void)state;
	fill(&in);
	assert_int_equal(state_write(dir, &in, &err), 0);
	snprintf(tmp, sizeof(tmp), "%s/.state.json.%d.tmp", dir, (int)getpid());
	assert_int_equal(access(tmp, F_OK), -1); /* renamed into place */
	assert_int_equal(state_read(dir, &out, &err), 0);
	assert_string_equal(out.oci_version, "1.2.0");
	assert_string_equal(out.id, "c1");
	assert_int_equal(out.status, CONTAINER_CREATED);
	assert_int_equal(out.pid, getpid());
	assert_int_equal(out.pid_start_time, in.pid_start_time);
	assert_int_equal(out.vm_vcpus, 2);
	assert_int_equal(out.vm_mem_mib, 384);
	assert_string_equal(out.bundle, "/srv/bundle");
	assert_string_equal(out.rootfs, "/srv/bundle/rootfs");
	assert_string_equal(out.created, in.created);
	assert_int_equal(out.n_annotations, 2);
	assert_string_equal(out.annotations[1].key, "org.example.\"quoted\"");
	assert_string_equal(out.annotations[1].value, "line\nbreak");
	assert_int_equal(out.host_cgroup.n, 2);
	assert_string_equal(out.host_cgroup.dirs[0].path, "/sys/fs/cgroup/memory/stratus/c1");
	assert_string_equal(out.host_cgroup.dirs[0].created, "/sys/fs/cgroup/memory/stratus");
	assert_string_equal(out.host_cgroup.dirs[1].path, "/sys/fs/cgroup/unified/k/c1");
	assert_null(out.host_cgroup.dirs[1].created);
	assert_true(state_monitor_alive(&out));
	assert_int_equal(state_live_status(&out), CONTAINER_CREATED);
	/* a second write replaces the first */
	in.status = CONTAINER_PAUSED;
	assert_int_equal(state_write(dir, &in, &err), 0);
	state_clear(&out);
	assert_int_equal(state_read(dir, &out, &err), 0);
	assert_int_equal(out.status, CONTAINER_PAUSED);
	state_clear(&out);
}

static void test_public_json(void **state)
{
	struct container_state in;
	char *json;

	(void)state;
	fill(&in);
	assert_int_equal(state_to_json(&in, false, &json), 0);
	assert_non_null(strstr(json, "\"ociVersion\":\"1.2.0\""));
	assert_non_null(strstr(json, "\"id\":\"c1\""));
	assert_non_null(strstr(json, "\"status\":\"created\""));
	assert_non_null(strstr(json, "\"bundle\":\"/srv/bundle\""));
	assert_non_null(strstr(json, "\"annotations\":{\"org.example.a\":\"1\""));
	assert_null(strstr(json, "pidStartTime")); /* private */
	assert_null(strstr(json, "hostCgroup"));
	free(json);
	in.status = CONTAINER_STOPPED; /* runc reports pid 0 once stopped */
	assert_int_equal(state_to_json(&in, false, &json), 0);
	assert_non_null(strstr(json, "\"pid\":0,"));
	free(json);
}

static void expect_parse_error(const char *json, const char *msg)
{
	struct container_state st;
	struct error err = { 0 };

	assert_true(state_parse(json, strlen(json), &st, &err) < 0);
	assert_string_equal(err.msg, msg);
}

static void test_bad_files(void **state)
{
	(void)state;
	expect_parse_error("[]", "state.json: must be an object");
	expect_parse_error("{", "state.json: not valid JSON: parse error: premature EOF");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\"}",
			   "state.json: bundle: must be a string");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"zombie\","
			   "\"bundle\":\"/b\",\"pid\":1}",
			   "state.json: status: unknown \"zombie\"");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\","
			   "\"bundle\":\"/b\",\"pid\":-4}",
			   "state.json: pid: must be a non-negative integer");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\","
			   "\"bundle\":\"/b\",\"pid\":4,\"annotations\":{\"a\":1}}",
			   "state.json: annotations.a: must be a string");
	expect_parse_error("{\"ociVersion\":1}", "state.json: ociVersion: must be a string");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\","
			   "\"bundle\":\"/b\",\"pid\":4,\"stratus\":{\"vmVcpus\":0}}",
			   "state.json: stratus.vmVcpus: must be 1 .. 4096");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\","
			   "\"bundle\":\"/b\",\"pid\":4,\"stratus\":{\"vmMemoryMiB\":\"1\"}}",
			   "state.json: stratus.vmMemoryMiB: must be a positive integer");
	/* delete removes what these name: never a path out of the hierarchy */
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\","
			   "\"bundle\":\"/b\",\"pid\":4,\"stratus\":{\"hostCgroup\":\"/a/b\"}}",
			   "state.json: stratus.hostCgroup: must be an array (64 at most)");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\","
			   "\"bundle\":\"/b\",\"pid\":4,\"stratus\":{\"hostCgroup\":["
			   "{\"path\":\"/s/a/b\"},{\"path\":\"/s/a/../..\"}]}}",
			   "state.json: stratus.hostCgroup[1]: path must be a cgroup directory and "
			   "created that or a parent of it");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\","
			   "\"bundle\":\"/b\",\"pid\":4,\"stratus\":{\"hostCgroup\":["
			   "{\"path\":\"/s/a/b\",\"created\":\"/s/ab\"}]}}",
			   "state.json: stratus.hostCgroup[0]: path must be a cgroup directory and "
			   "created that or a parent of it");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\","
			   "\"bundle\":\"/b\",\"pid\":4,\"stratus\":{\"hostCgroup\":["
			   "{\"path\":\"/s/a/b\",\"created\":\"/s/a/.\"}]}}",
			   "state.json: stratus.hostCgroup[0]: path must be a cgroup directory and "
			   "created that or a parent of it");
	expect_parse_error("{\"ociVersion\":\"1\",\"id\":\"x\",\"status\":\"running\","
			   "\"bundle\":\"/b\",\"pid\":4,\"stratus\":{\"hostCgroup\":["
			   "{\"path\":\"relative\"}]}}",
			   "state.json: stratus.hostCgroup[0]: path must be a cgroup directory and "
			   "created that or a parent of it");
}

static void test_missing(void **state)
{
	struct container_state st;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(state_read("/nonexistent-stratus-dir", &st, &err), -ENOENT);
}

static void test_ids(void **state)
{
	struct error err = { 0 };
	char longid[300];

	(void)state;
	assert_int_equal(state_id_check("abc-DEF_1.2+3", &err), 0);
	assert_int_equal(state_id_check("", &err), -EINVAL);
	assert_string_equal(err.msg, "container ID: must not be empty");
	error_clear(&err);
	assert_int_equal(state_id_check("..", &err), -EINVAL);
	error_clear(&err);
	assert_int_equal(state_id_check("a/b", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "invalid character"));
	memset(longid, 'a', 256);
	longid[256] = '\0';
	assert_int_equal(state_id_check(longid, NULL), -EINVAL);
	longid[255] = '\0';
	assert_int_equal(state_id_check(longid, NULL), 0);
}

static void test_liveness(void **state)
{
	struct container_state st;
	uint64_t start;
	pid_t child;

	(void)state;
	fill(&st);
	st.pid_start_time += 1; /* the PID was recycled: not our monitor */
	assert_false(state_monitor_alive(&st));
	assert_int_equal(state_live_status(&st), CONTAINER_STOPPED);
	child = fork();
	if (child == 0)
		_exit(0);
	/* a zombie is dead */
	for (int i = 0; i < 500; i++) {
		char path[64], buf[256];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", child);
		f = fopen(path, "r");
		if (f && fgets(buf, sizeof(buf), f) && strstr(buf, ") Z ")) {
			fclose(f);
			break;
		}
		if (f)
			fclose(f);
		usleep(10000);
	}
	assert_int_equal(process_start_time(child, &start), -ESRCH);
	waitpid(child, NULL, 0);
	assert_int_equal(process_start_time(-1, &start), -ESRCH);
}

static void test_timestamp(void **state)
{
	char ts[64];

	(void)state;
	assert_int_equal(state_timestamp(ts, sizeof(ts)), 0);
	assert_int_equal(strlen(ts), strlen("2026-01-01T00:00:00.000000000Z"));
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[strlen(ts) - 1], 'Z');
}

static void test_signals(void **state)
{
	struct error err = { 0 };
	int sig;

	(void)state;
	assert_int_equal(signal_parse("KILL", &sig, &err), 0);
	assert_int_equal(sig, SIGKILL);
	assert_int_equal(signal_parse("sigterm", &sig, &err), 0);
	assert_int_equal(sig, SIGTERM);
	assert_int_equal(signal_parse("9", &sig, &err), 0);
	assert_int_equal(sig, 9);
	assert_int_equal(signal_parse("SIGRTMIN+2", &sig, &err), 0);
	assert_int_equal(sig, SIGRTMIN + 2);
	assert_int_equal(signal_parse("RTMAX-1", &sig, &err), 0);
	assert_int_equal(sig, SIGRTMAX - 1);
	assert_int_equal(signal_parse("SIGWINCH", &sig, &err), 0);
	assert_int_equal(sig, SIGWINCH);
	assert_int_equal(signal_parse("0", &sig, &err), -EINVAL);
	error_clear(&err);
	assert_int_equal(signal_parse("65", &sig, &err), -EINVAL);
	error_clear(&err);
	assert_int_equal(signal_parse("SIGRTMAX+1", &sig, &err), -EINVAL);
	error_clear(&err);
	assert_int_equal(signal_parse("BOGUS", &sig, &err), -EINVAL);
	assert_string_equal(err.msg, "signal: unknown signal \"BOGUS\"");
}

static void test_exec_process(void **state)
{
	const char *config =
		"{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":true,\"user\":{\"uid\":5,"
		"\"gid\":6,\"umask\":18},\"args\":[\"sh\"],\"env\":[\"PATH=/bin\",\"A=1\"],"
		"\"cwd\":\"/\",\"capabilities\":{\"bounding\":[\"CAP_KILL\"],\"ambient\":[]},"
		"\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}]}}";
	char *args[] = { "echo", "hi there", NULL };
	char *env[] = { "A=2", "B=3", NULL };
	char *caps[] = { "CAP_NET_ADMIN", NULL };
	struct exec_process_opts o = { .args = args };
	struct error err = { 0 };
	char *json;

	(void)state;
	assert_int_equal(exec_process_json(config, &o, &json, &err), 0);
	/* the template's keys stay, terminal is the flag's (false), args are ours */
	assert_non_null(strstr(json, "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\""));
	assert_non_null(strstr(json, "\"terminal\":false"));
	assert_non_null(strstr(json, "\"args\":[\"echo\",\"hi there\"]"));
	assert_non_null(strstr(json, "\"env\":[\"PATH=/bin\",\"A=1\"]"));
	assert_non_null(strstr(json, "\"cwd\":\"/\""));
	assert_non_null(strstr(json, "\"user\":{\"uid\":5,\"gid\":6,\"umask\":18}"));
	free(json);
	o.env = env;
	o.caps = caps;
	o.cwd = "/tmp";
	o.has_user = true;
	o.uid = 1000;
	o.gid = 100;
	o.terminal = true;
	o.no_new_privs = true;
	assert_int_equal(exec_process_json(config, &o, &json, &err), 0);
	assert_non_null(strstr(json, "\"env\":[\"PATH=/bin\",\"A=2\",\"B=3\"]"));
	assert_non_null(strstr(json, "\"cwd\":\"/tmp\""));
	assert_null(strstr(json, "\"cwd\":\"/\""));
	assert_non_null(strstr(json, "\"user\":{\"umask\":18,\"uid\":1000,\"gid\":100}"));
	assert_non_null(strstr(json, "\"bounding\":[\"CAP_KILL\",\"CAP_NET_ADMIN\"]"));
	assert_non_null(strstr(json, "\"effective\":[\"CAP_NET_ADMIN\"]"));
	assert_non_null(strstr(json, "\"ambient\":[]"));
	assert_non_null(strstr(json, "\"terminal\":true"));
	assert_non_null(strstr(json, "\"noNewPrivileges\":true"));
	free(json);
	o.args = (char *[]){ NULL };
	assert_int_equal(exec_process_json(config, &o, &json, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no command"));
}

static char lock_root[64];

static int remove_container_dir(const char *path)
{
	char file[256];

	snprintf(file, sizeof(file), "%s/%s", path, STATE_LOCK_FILE);
	unlink(file);
	return rmdir(path) < 0 ? -errno : 0;
}

/* A child that waits for the lock of "c" and exits with what state_lock returned (negated). */
static pid_t lock_in_child(int held)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct error err = { 0 };
		int fd, r;

		close(held); /* the parent's lock, which this fork shares */
		r = state_lock(lock_root, "c", &fd, &err);

		_exit(r == -ENOENT && strstr(err.msg, "does not exist") ? 100 : -r);
	}
	return pid;
}

static void test_locks(void **state)
{
	struct error err = { 0 };
	int fd, fd2, status;
	char path[128];
	pid_t child;

	(void)state;
	strcpy(lock_root, "/tmp/stratus-lock-XXXXXX");
	assert_non_null(mkdtemp(lock_root));
	/* no container (and no root at all): does not exist */
	assert_int_equal(state_lock(lock_root, "c", &fd, &err), -ENOENT);
	assert_string_equal(err.msg, "container \"c\" does not exist");
	error_clear(&err);
	assert_int_equal(state_lock("/nonexistent/root", "c", &fd, &err), -ENOENT);
	error_clear(&err);
	/* create: the directory and its lock; a rival create fails at once, leaving it alone */
	assert_int_equal(state_lock_create(lock_root, "c", &fd, &err), 0);
	assert_int_equal(state_lock_create(lock_root, "c", &fd2, &err), -EEXIST);
	assert_string_equal(err.msg, "container \"c\" already exists");
	assert_int_equal(fd2, -1);
	error_clear(&err);
	snprintf(path, sizeof(path), "%s/c/%s", lock_root, STATE_LOCK_FILE);
	assert_int_equal(access(path, F_OK), 0);
	/* held: another command times out with one line naming the container */
	setenv(STATE_LOCK_TIMEOUT_ENV, "0", 1);
	assert_int_equal(state_lock(lock_root, "c", &fd2, &err), -ETIMEDOUT);
	assert_string_equal(err.msg, "container \"c\" is locked by another stratus command "
				     "(waited 0 s; STRATUS_LOCK_TIMEOUT)");
	error_clear(&err);
	unsetenv(STATE_LOCK_TIMEOUT_ENV);
	/* released: the next one gets it */
	state_unlock(fd);
	assert_int_equal(state_lock(lock_root, "c", &fd, &err), 0);
	/* a waiter whose container is deleted meanwhile: does not exist, nothing recreated */
	child = lock_in_child(fd);
	usleep(100000);
	assert_int_equal(state_remove_dir(lock_root, "c", remove_container_dir, &err), 0);
	state_unlock(fd);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 100);
	snprintf(path, sizeof(path), "%s/c", lock_root);
	assert_int_equal(access(path, F_OK), -1);
	/* a waiter gets the lock once the holder dies (the kernel drops it) */
	assert_int_equal(state_lock_create(lock_root, "c", &fd, &err), 0);
	child = lock_in_child(fd);
	usleep(100000);
	assert_int_equal(waitpid(child, &status, WNOHANG), 0); /* still waiting */
	state_unlock(fd);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(state_remove_dir(lock_root, "c", remove_container_dir, &err), 0);
	assert_int_equal(rmdir(lock_root), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test(test_public_json),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_liveness),
		cmocka_unit_test(test_timestamp),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_exec_process),
		cmocka_unit_test(test_locks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
