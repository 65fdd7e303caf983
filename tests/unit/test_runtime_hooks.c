/*
 * Host hooks (runtime/hooks.h) with real executables (sh scripts written here): the state on
 * stdin, exactly the hook's args and env, order within a kind and the stop at the first
 * failure, exit status and signal reported with the hook's first line of output, the
 * timeout killing a hook that hangs, and a missing hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hooks.h"

static char dir[64];

static void write_script(const char *name, const char *body)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	chmod(path, 0755);
}

static char *slurp(const char *name)
{
	static char buf[4096];
	char path[128];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/stratus-hooks-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct oci_hook make_hook(const char *name, char **args, char **env, unsigned int timeout)
{
	static char paths[8][128];
	static int next;
	struct oci_hook h = { 0 };
	char *p = paths[next++ % 8];
	size_t n = 0;

	snprintf(p, 128, "%s/%s", dir, name);
	h.path = p;
	while (args && args[n])
		n++;
	h.args.n = n;
	h.args.v = args;
	n = 0;
	while (env && env[n])
		n++;
	h.env.n = n;
	h.env.v = env;
	h.timeout = timeout;
	return h;
}

static void test_stdin_args_env(void **state)
{
	char out[160], body[512];
	char *args[] = { "hook-name", "one", "two words", NULL };
	char *env[] = { "HOOK_VAR=x y", NULL };
	struct error err = { 0 };
	struct oci_hook h;
	char *got;

	(void)state;
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(body, sizeof(body),
		 "{ cat; echo; echo \"argv0=$0 args=$1|$2 n=$#\"; echo \"var=$HOOK_VAR\"; "
		 "echo \"home=${HOME:-unset}\"; } > %s",
		 out);
	write_script("h1", body);
	h = make_hook("h1", args, env, 10);
	assert_int_equal(hook_run(&h, "hooks.prestart[0]", "{\"id\":\"c1\"}", &err), 0);
	got = slurp("out");
	assert_non_null(got);
	assert_non_null(strstr(got, "{\"id\":\"c1\"}\n"));
	assert_non_null(strstr(got, "args=one|two words n=2"));
	assert_non_null(strstr(got, "var=x y"));
	assert_non_null(strstr(got, "home=unset")); /* nothing of our environment */
}

static void test_failure_message(void **state)
{
	struct error err = { 0 };
	struct oci_hook h;

	(void)state;
	write_script("fail", "echo 'no network for you' >&2; echo second line >&2; exit 3");
	h = make_hook("fail", NULL, NULL, 0);
	assert_int_equal(hook_run(&h, "hooks.createRuntime[1]", "{}", &err), -ECANCELED);
	assert_non_null(strstr(err.msg, "hooks.createRuntime[1]: "));
	assert_non_null(strstr(err.msg, "/fail: exit status 3: no network for you"));
	assert_null(strchr(err.msg, '\n'));
	error_clear(&err);
	write_script("killed", "kill -9 $$");
	h = make_hook("killed", NULL, NULL, 0);
	assert_int_equal(hook_run(&h, "hooks.poststop[0]", "{}", &err), -ECANCELED);
	assert_non_null(strstr(err.msg, "killed by signal 9"));
}

static void test_timeout(void **state)
{
	struct error err = { 0 };
	struct oci_hook h;
	time_t start = time(NULL);

	(void)state;
	write_script("hang", "exec sleep 100");
	h = make_hook("hang", NULL, NULL, 1);
	assert_int_equal(hook_run(&h, "hooks.poststart[0]", "{}", &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "timed out after 1 s"));
	assert_true(time(NULL) - start < 30);
}

static void test_missing_and_ignoring_stdin(void **state)
{
	struct error err = { 0 };
	struct oci_hook h;
	char big[200000];

	(void)state;
	h = make_hook("does-not-exist", NULL, NULL, 0);
	assert_int_equal(hook_run(&h, "hooks.prestart[0]", "{}", &err), -ECANCELED);
	assert_non_null(strstr(err.msg, "exit status 127: exec: No such file or directory"));
	/* a hook that never reads a big state must not block us */
	write_script("deaf", "exit 0");
	h = make_hook("deaf", NULL, NULL, 10);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	error_clear(&err);
	assert_int_equal(hook_run(&h, "hooks.prestart[0]", big, &err), 0);
}

static void test_order_and_stop(void **state)
{
	char body[256], out[160];
	struct oci_hook hooks[3];
	struct oci_spec spec = { 0 };
	struct error err = { 0 };

	(void)state;
	snprintf(out, sizeof(out), "%s/order", dir);
	snprintf(body, sizeof(body), "echo a >> %s", out);
	write_script("a", body);
	write_script("b", "exit 1");
	snprintf(body, sizeof(body), "echo c >> %s", out);
	write_script("c", body);
	hooks[0] = make_hook("a", NULL, NULL, 0);
	hooks[1] = make_hook("b", NULL, NULL, 0);
	hooks[2] = make_hook("c", NULL, NULL, 0);
	spec.hooks[OCI_HOOK_CREATE_CONTAINER].n = 3;
	spec.hooks[OCI_HOOK_CREATE_CONTAINER].hooks = hooks;
	assert_int_equal(hooks_run(&spec, OCI_HOOK_CREATE_CONTAINER, "{}", &err), -ECANCELED);
	assert_non_null(strstr(err.msg, "hooks.createContainer[1]: "));
	assert_string_equal(slurp("order"), "a\n");
	/* no hooks of a kind: nothing to do */
	assert_int_equal(hooks_run(&spec, OCI_HOOK_POSTSTOP, "{}", &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stdin_args_env),
		cmocka_unit_test(test_failure_message),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_missing_and_ignoring_stdin),
		cmocka_unit_test(test_order_and_stop),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
