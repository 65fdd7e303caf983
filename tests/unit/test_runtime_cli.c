/*
 * The stratus CLI's flag parsing (runtime/cli/): global flags, and each verb's flags and
 * arguments as runc takes them, with the one-line error a user sees for each mistake.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stratus_cli.h"

#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)))
/* CALL(fn, ("verb", "arg"...), more...): fn(argc, argv, more...) */
#define CALL(fn, args, ...) fn(ARGC args, ARGV args, __VA_ARGS__)

static void test_global(void **state)
{
	struct cli_global g;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(CALL(cli_global_parse, ("stratus", "state", "x"), &g, &err), 0);
	assert_string_equal(g.root, "/run/stratus");
	assert_string_equal(g.command, "state");
	assert_int_equal(g.argc, 2);
	assert_string_equal(g.argv[1], "x");
	assert_int_equal(CALL(cli_global_parse,
			      ("stratus", "--root", "/tmp/r", "--log", "/tmp/l", "--log-format",
			       "json", "--debug", "--systemd-cgroup", "--cgroup-manager", "systemd",
			       "kill", "--all", "x"),
			      &g, &err),
			 0);
	assert_string_equal(g.root, "/tmp/r");
	assert_string_equal(g.log_path, "/tmp/l");
	assert_int_equal(g.log_format, CLI_LOG_JSON);
	assert_true(g.debug);
	assert_true(g.systemd_cgroup);
	/* the verb's flags are the verb's */
	assert_string_equal(g.command, "kill");
	assert_string_equal(g.argv[1], "--all");
	assert_int_equal(CALL(cli_global_parse, ("stratus", "-v"), &g, &err), 0);
	assert_true(g.version);
	assert_int_equal(
		CALL(cli_global_parse, ("stratus", "--log-format", "xml", "list"), &g, &err),
		-EINVAL);
	assert_string_equal(err.msg, "--log-format: must be text or json, not \"xml\"");
	error_clear(&err);
	assert_int_equal(CALL(cli_global_parse, ("stratus", "--bogus", "list"), &g, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown global flag --bogus");
	error_clear(&err);
	assert_int_equal(CALL(cli_global_parse, ("stratus", "--root"), &g, &err), -EINVAL);
	assert_string_equal(err.msg, "--root: needs a value");
	error_clear(&err);
	assert_int_equal(
		CALL(cli_global_parse, ("stratus", "--cgroup-manager", "x", "list"), &g, &err),
		-EINVAL);
}

static void test_create(void **state)
{
	struct cli_create_args a;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(CALL(cli_create_parse, ("create", "c1"), false, &a, &err), 0);
	assert_string_equal(a.bundle, ".");
	assert_string_equal(a.id, "c1");
	assert_null(a.pid_file);
	assert_int_equal(CALL(cli_create_parse,
			      ("create", "-b", "/b", "--pid-file", "/p", "--console-socket", "/s",
			       "--no-pivot", "--no-new-keyring", "--preserve-fds", "0", "c2"),
			      false, &a, &err),
			 0);
	assert_string_equal(a.bundle, "/b");
	assert_string_equal(a.pid_file, "/p");
	assert_string_equal(a.console_socket, "/s");
	assert_string_equal(a.id, "c2");
	assert_int_equal(CALL(cli_create_parse, ("create", "--bundle=/x", "c3"), false, &a, &err),
			 0);
	assert_string_equal(a.bundle, "/x");
	assert_int_equal(CALL(cli_create_parse, ("create"), false, &a, &err), -EINVAL);
	assert_string_equal(err.msg, "create: requires exactly 1 argument (got 0)");
	error_clear(&err);
	assert_int_equal(CALL(cli_create_parse, ("create", "a", "b"), false, &a, &err), -EINVAL);
	assert_string_equal(err.msg, "create: requires exactly 1 argument (got 2)");
	error_clear(&err);
	assert_int_equal(
		CALL(cli_create_parse, ("create", "--preserve-fds", "2", "c"), false, &a, &err),
		-EINVAL);
	assert_non_null(strstr(err.msg, "--preserve-fds: host file descriptors cannot"));
	error_clear(&err);
	assert_int_equal(CALL(cli_create_parse, ("create", "--detach", "c"), false, &a, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "create: unknown flag --detach");
	error_clear(&err);
	assert_int_equal(CALL(cli_create_parse, ("create", "-x", "c"), false, &a, &err), -EINVAL);
	assert_string_equal(err.msg, "create: unknown flag -x");
	error_clear(&err);
	assert_int_equal(CALL(cli_create_parse, ("create", "c", "--bundle"), false, &a, &err),
			 -EINVAL);
	error_clear(&err);
	assert_int_equal(CALL(cli_create_parse, ("create", "--bundle"), false, &a, &err), -EINVAL);
	assert_string_equal(err.msg, "create: --bundle: needs a value");
	error_clear(&err);
	/* run's own flags */
	assert_int_equal(
		CALL(cli_create_parse, ("run", "-d", "--keep", "-b", "/b", "r1"), true, &a, &err),
		0);
	assert_true(a.detach);
	assert_true(a.keep);
	assert_string_equal(a.id, "r1");
}

static void test_kill_delete(void **state)
{
	struct cli_kill_args k;
	struct cli_delete_args d;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(CALL(cli_kill_parse, ("kill", "c"), &k, &err), 0);
	assert_int_equal(k.signal, SIGTERM);
	assert_false(k.all);
	assert_int_equal(CALL(cli_kill_parse, ("kill", "--all", "c", "KILL"), &k, &err), 0);
	assert_int_equal(k.signal, SIGKILL);
	assert_true(k.all);
	assert_int_equal(CALL(cli_kill_parse, ("kill", "-a", "c", "10"), &k, &err), 0);
	assert_int_equal(k.signal, 10);
	assert_int_equal(CALL(cli_kill_parse, ("kill", "c", "SIGFOO"), &k, &err), -EINVAL);
	assert_string_equal(err.msg, "signal: unknown signal \"SIGFOO\"");
	error_clear(&err);
	assert_int_equal(CALL(cli_kill_parse, ("kill"), &k, &err), -EINVAL);
	assert_string_equal(err.msg, "kill: requires at least 1 argument (got 0)");
	error_clear(&err);
	assert_int_equal(CALL(cli_kill_parse, ("kill", "a", "b", "c"), &k, &err), -EINVAL);
	assert_string_equal(err.msg, "kill: takes at most 2 arguments (got 3)");
	error_clear(&err);
	assert_int_equal(CALL(cli_delete_parse, ("delete", "-f", "c"), &d, &err), 0);
	assert_true(d.force);
	assert_int_equal(CALL(cli_delete_parse, ("delete", "--force", "c"), &d, &err), 0);
	assert_true(d.force);
	assert_int_equal(CALL(cli_delete_parse, ("delete", "c"), &d, &err), 0);
	assert_false(d.force);
	assert_int_equal(CALL(cli_delete_parse, ("delete", "--now", "c"), &d, &err), -EINVAL);
	assert_string_equal(err.msg, "delete: unknown flag --now");
}

static void test_exec(void **state)
{
	struct cli_exec_args a;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(CALL(cli_exec_parse, ("exec", "c", "ls", "-l", "/"), &a, &err), 0);
	assert_string_equal(a.id, "c");
	assert_string_equal(a.args[0], "ls");
	assert_string_equal(a.args[1], "-l"); /* the command's flags are the command's */
	assert_null(a.args[3]);
	assert_int_equal(CALL(cli_exec_parse,
			      ("exec", "-t", "-d", "--cwd", "/tmp", "-e", "A=1", "--env", "B=2",
			       "-u", "1000:100", "--cap", "CAP_KILL", "--no-new-privs",
			       "--pid-file", "/p", "--console-socket", "/s", "c", "sh"),
			      &a, &err),
			 0);
	assert_true(a.tty);
	assert_true(a.detach);
	assert_string_equal(a.cwd, "/tmp");
	assert_int_equal(a.n_env, 2);
	assert_string_equal(a.env[1], "B=2");
	assert_null(a.env[2]);
	assert_true(a.has_user);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.gid, 100);
	assert_string_equal(a.caps[0], "CAP_KILL");
	assert_true(a.no_new_privs);
	assert_int_equal(CALL(cli_exec_parse, ("exec", "-u", "7", "c", "id"), &a, &err), 0);
	assert_int_equal(a.uid, 7);
	assert_int_equal(a.gid, 0);
	assert_int_equal(CALL(cli_exec_parse, ("exec", "--process", "/p.json", "c"), &a, &err), 0);
	assert_string_equal(a.process_file, "/p.json");
	assert_int_equal(CALL(cli_exec_parse, ("exec", "c"), &a, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "exec: requires a command after the container ID, or --process");
	error_clear(&err);
	assert_int_equal(CALL(cli_exec_parse, ("exec"), &a, &err), -EINVAL);
	error_clear(&err);
	assert_int_equal(CALL(cli_exec_parse, ("exec", "-u", "root", "c", "id"), &a, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "exec: --user: must be UID[:GID] (numbers), not \"root\"");
	error_clear(&err);
	assert_int_equal(CALL(cli_exec_parse, ("exec", "-u", "-1", "c", "id"), &a, &err), -EINVAL);
	error_clear(&err);
	assert_int_equal(CALL(cli_exec_parse, ("exec", "-e", "NOVALUE", "c", "id"), &a, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "exec: --env: must be KEY=VALUE, not \"NOVALUE\"");
	error_clear(&err);
	assert_int_equal(CALL(cli_exec_parse, ("exec", "--cwd", "rel", "c", "id"), &a, &err),
			 -EINVAL);
	error_clear(&err);
	assert_int_equal(CALL(cli_exec_parse, ("exec", "--cap", "NET_ADMIN", "c", "id"), &a, &err),
			 -EINVAL);
	error_clear(&err);
	assert_int_equal(CALL(cli_exec_parse, ("exec", "--preserve-fds", "1", "c", "id"), &a, &err),
			 -EINVAL);
	error_clear(&err);
	assert_int_equal(CALL(cli_exec_parse, ("exec", "-p", "/p", "c", "id"), &a, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not both"));
}

static void test_format_events(void **state)
{
	struct cli_format_args f;
	struct cli_events_args e;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(
		cli_format_parse("list", ARGC("list", "-q"), ARGV("list", "-q"), false, &f, &err),
		0);
	assert_true(f.quiet);
	assert_int_equal(cli_format_parse("list", ARGC("list", "--format", "json"),
					  ARGV("list", "--format", "json"), false, &f, &err),
			 0);
	assert_true(f.json);
	assert_int_equal(cli_format_parse("list", ARGC("list", "-f", "yaml"),
					  ARGV("list", "-f", "yaml"), false, &f, &err),
			 -EINVAL);
	assert_string_equal(err.msg, "list: --format: must be table or json, not \"yaml\"");
	error_clear(&err);
	assert_int_equal(
		cli_format_parse("list", ARGC("list", "x"), ARGV("list", "x"), false, &f, &err),
		-EINVAL);
	error_clear(&err);
	assert_int_equal(cli_format_parse("ps", ARGC("ps", "-f", "json", "c"),
					  ARGV("ps", "-f", "json", "c"), true, &f, &err),
			 0);
	assert_string_equal(f.id, "c");
	assert_int_equal(cli_format_parse("ps", ARGC("ps"), ARGV("ps"), true, &f, &err), -EINVAL);
	error_clear(&err);
	assert_int_equal(CALL(cli_events_parse, ("events", "--stats", "c"), &e, &err), 0);
	assert_true(e.stats);
	assert_int_equal(e.interval_ms, 5000);
	assert_int_equal(CALL(cli_events_parse, ("events", "--interval", "250ms", "c"), &e, &err),
			 0);
	assert_int_equal(e.interval_ms, 250);
	assert_int_equal(CALL(cli_events_parse, ("events", "--interval=2m", "c"), &e, &err), 0);
	assert_int_equal(e.interval_ms, 120000);
	assert_int_equal(CALL(cli_events_parse, ("events", "--interval", "soon", "c"), &e, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "events: --interval: not a duration"));
}

static void test_update_memory(void **state)
{
	long long v;

	(void)state;
	assert_int_equal(cli_parse_memory("-1", &v), 0);
	assert_int_equal(v, -1);
	assert_int_equal(cli_parse_memory("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(cli_parse_memory("512m", &v), 0);
	assert_int_equal(v, 512LL << 20);
	assert_int_equal(cli_parse_memory("1G", &v), 0);
	assert_int_equal(v, 1LL << 30);
	assert_int_equal(cli_parse_memory("1.5g", &v), 0);
	assert_int_equal(v, 3LL << 29);
	assert_int_equal(cli_parse_memory("64MiB", &v), 0);
	assert_int_equal(v, 64LL << 20);
	assert_int_equal(cli_parse_memory("100kb", &v), 0);
	assert_int_equal(v, 102400);
	assert_int_equal(cli_parse_memory("10 m", &v), 0);
	assert_int_equal(v, 10LL << 20);
	assert_int_equal(cli_parse_memory("", &v), -EINVAL);
	assert_int_equal(cli_parse_memory("-2", &v), -EINVAL);
	assert_int_equal(cli_parse_memory("m", &v), -EINVAL);
	assert_int_equal(cli_parse_memory("12x", &v), -EINVAL);
	assert_int_equal(cli_parse_memory("1mm", &v), -EINVAL);
	assert_int_equal(cli_parse_memory("99999999p", &v), -EINVAL);
}

static void expect_update_error(char **argv, int argc, const char *msg)
{
	struct cli_update_args a;
	struct error err = { 0 };

	assert_int_equal(cli_update_parse(argc, argv, &a, &err), -EINVAL);
	assert_string_equal(err.msg, msg);
}

#define UPDATE_ERROR(msg, ...) expect_update_error(ARGV(__VA_ARGS__), ARGC(__VA_ARGS__), msg)

static void test_update(void **state)
{
	struct cli_update_args a;
	struct error err = { 0 };
	char *json = NULL;

	(void)state;
	assert_int_equal(CALL(cli_update_parse,
			      ("update", "--memory", "256m", "--memory-swap=-1", "--pids-limit",
			       "50", "--cpu-quota", "-1", "--cpu-period", "100000", "--cpu-shares",
			       "512", "--cpuset-cpus", "0-1", "--cpuset-mems", "0",
			       "--memory-reservation", "1g", "--blkio-weight", "500", "c"),
			      &a, &err),
			 0);
	assert_string_equal(a.id, "c");
	assert_null(a.resources);
	assert_int_equal(a.n_set, 9);
	assert_int_equal(a.blkio_weight, 1 + 490 * 9999 / 990);
	assert_int_equal(cli_update_json(NULL, &a, &json, &err), 0);
	assert_string_equal(json, "{\"memory\":{\"limit\":268435456,"
				  "\"reservation\":1073741824},\"cpu\":{\"quota\":-1,"
				  "\"period\":100000,\"shares\":512,\"cpus\":\"0-1\","
				  "\"mems\":\"0\"},\"pids\":{\"limit\":50},"
				  "\"unified\":{\"io.weight\":\"default 4950\"}}");
	free(json);
	/* the flags override the file's fields; the rest of the file is kept as written */
	assert_int_equal(CALL(cli_update_parse,
			      ("update", "-r", "-", "--pids-limit", "7", "--memory", "1k", "c"), &a,
			      &err),
			 0);
	assert_string_equal(a.resources, "-");
	assert_int_equal(
		cli_update_json("{\"pids\": {\"limit\": 3}, \"memory\": {\"high\": 1.5e3, "
				"\"limit\": 9}, \"cpu\": {\"cpus\": \"0\"}, \"x\": [null, true]}",
				&a, &json, &err),
		0);
	assert_string_equal(json, "{\"pids\":{\"limit\":7},\"memory\":{\"high\":1.5e3,"
				  "\"limit\":1024},\"cpu\":{\"cpus\":\"0\"},\"x\":[null,true]}");
	free(json);
	json = NULL;
	assert_int_equal(cli_update_json("[1]", &a, &json, &err), -EINVAL);
	assert_string_equal(err.msg, "update: --resources: -: must be a JSON object");
	error_clear(&err);
	/* the guest has no swap: -1 or the limit's value are dropped, others refused */
	assert_int_equal(CALL(cli_update_parse,
			      ("update", "--memory-swap", "2k", "--memory", "2k", "c"), &a, &err),
			 0);
	assert_int_equal(cli_update_json(NULL, &a, &json, &err), 0);
	assert_string_equal(json, "{\"memory\":{\"limit\":2048}}");
	free(json);
	json = NULL;
	assert_int_equal(CALL(cli_update_parse, ("update", "--memory-swap", "1g", "c"), &a, &err),
			 0);
	assert_int_equal(cli_update_json(NULL, &a, &json, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "update: memory.swap (--memory-swap): the VM has no swap: only -1 "
			    "or the memory limit's value");
	assert_null(json);
	error_clear(&err);

	UPDATE_ERROR(
		"update: --memory: must be a size like 512m, 1g or -1 (unlimited), not \"lots\"",
		"update", "--memory", "lots", "c");
	UPDATE_ERROR("update: --pids-limit: must be an integer, -1 for unlimited, not \"x\"",
		     "update", "--pids-limit=x", "c");
	UPDATE_ERROR("update: --cpu-period: must be a positive integer, not \"0\"", "update",
		     "--cpu-period", "0", "c");
	UPDATE_ERROR("update: --cpu-shares: must be a non-negative integer, not \"-5\"", "update",
		     "--cpu-shares", "-5", "c");
	UPDATE_ERROR("update: --cpuset-cpus: must be a list like 0-2,4, not \"all\"", "update",
		     "--cpuset-cpus", "all", "c");
	UPDATE_ERROR("update: --blkio-weight: must be a weight from 10 to 1000, not \"5\"",
		     "update", "--blkio-weight", "5", "c");
	UPDATE_ERROR("update: --kernel-memory: kernel memory limits are obsolete (cgroup v2 counts "
		     "kernel memory in --memory)",
		     "update", "--kernel-memory", "1m", "c");
	UPDATE_ERROR("update: --cpu-rt-runtime: the real-time CPU scheduler has no cgroup v2 "
		     "interface (the guest runs cgroup v2)",
		     "update", "--cpu-rt-runtime", "10", "c");
	UPDATE_ERROR("update: --l3-cache-schema: Intel RDT cannot be controlled from inside a VM",
		     "update", "--l3-cache-schema", "L3:0=f", "c");
	UPDATE_ERROR("update: --mem-bw-schema: Intel RDT cannot be controlled from inside a VM",
		     "update", "--mem-bw-schema=MB:0=20", "c");
	UPDATE_ERROR("update: nothing to update: give --resources FILE|- or a flag such as "
		     "--memory or --pids-limit",
		     "update", "c");
	UPDATE_ERROR("update: --memory: needs a value", "update", "--memory");
	UPDATE_ERROR("update: unknown flag --swappiness", "update", "--swappiness", "1", "c");
	UPDATE_ERROR("update: requires exactly 1 argument (got 0)", "update", "--memory", "1m");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_global),	      cmocka_unit_test(test_create),
		cmocka_unit_test(test_kill_delete),   cmocka_unit_test(test_exec),
		cmocka_unit_test(test_format_events), cmocka_unit_test(test_update_memory),
		cmocka_unit_test(test_update),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
