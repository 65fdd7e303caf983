/*
 * The pure parts of pods (runtime/pod.h) on real host paths in a temporary bundle: the role
 * from CRI's annotations (sandbox, member, a sandbox-id naming the container itself, none, a
 * bad sandbox ID named by its annotation); a member's plan (bind sources resolved, relative
 * ones against the bundle, directories and files, ro; refusals naming mounts[N].source) and
 * its CREATE mounts below the guest's pod share (rootfs, m<N> per bind, /dev/shm a tmpfs,
 * other mounts as written); the config rewrite (namespace paths join the sandbox's, entries
 * without one stay new, the rest of the document unchanged). As root: the host side, a
 * member's bind mounts below a pod directory (read-write on the host whatever their ro: the
 * guest enforces it) and their removal, the bundle left intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "pod.h"
#include "runtime_mount_assert.h"

static char dir[64];

static void make_path(const char *name, bool is_dir)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (is_dir) {
		assert_int_equal(mkdir(path, 0755), 0);
		return;
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/stratus-pod-XXXXXX");
	assert_non_null(mkdtemp(dir));
	make_path("rootfs", true);
	make_path("rootfs/keep", false);
	make_path("data", true);
	make_path("hosts", false);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* A config with the given annotations and mounts (JSON members/elements, %s = dir). */
static struct oci_spec *spec_with(const char *annotations, const char *mounts_fmt)
{
	char mounts[4096], json[8192];
	struct error err = { 0 };
	struct oci_spec *spec = NULL;

	snprintf(mounts, sizeof(mounts), mounts_fmt, dir, dir, dir, dir);
	snprintf(json, sizeof(json),
		 "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
		 "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}},"
		 "\"annotations\":{%s},\"mounts\":[%s]}",
		 annotations, mounts);
	if (oci_spec_parse(json, strlen(json), dir, &spec, &err) < 0)
		fail_msg("config: %s", err.msg);
	return spec;
}

#define SANDBOX_ANN "\"io.kubernetes.cri.container-type\":\"sandbox\""

static void assert_role(const char *annotations, const char *id, enum pod_role want,
			const char *want_sandbox)
{
	struct oci_spec *spec = spec_with(annotations, "");
	struct error err = { 0 };
	const char *sandbox;
	enum pod_role role;

	assert_int_equal(pod_role(spec, id, &role, &sandbox, &err), 0);
	assert_int_equal(role, want);
	if (want_sandbox)
		assert_string_equal(sandbox, want_sandbox);
	else
		assert_null(sandbox);
	oci_spec_free(spec);
}

static void test_role(void **state)
{
	struct oci_spec *spec;
	struct error err = { 0 };
	const char *sandbox;
	enum pod_role role;

	(void)state;
	assert_role("", "c1", POD_NONE, NULL);
	assert_role(SANDBOX_ANN ",\"io.kubernetes.cri.sandbox-id\":\"sb\"", "sb", POD_SANDBOX,
		    NULL);
	/* the type decides, whatever the sandbox-id says */
	assert_role(SANDBOX_ANN ",\"io.kubernetes.cri.sandbox-id\":\"other\"", "sb", POD_SANDBOX,
		    NULL);
	assert_role("\"io.kubernetes.cri.container-type\":\"container\","
		    "\"io.kubernetes.cri.sandbox-id\":\"sb\"",
		    "app", POD_MEMBER, "sb");
	assert_role("\"io.kubernetes.cri.sandbox-id\":\"sb\"", "app", POD_MEMBER, "sb");
	/* CRI writes the sandbox's own ID on it too: not a member of itself */
	assert_role("\"io.kubernetes.cri.sandbox-id\":\"sb\"", "sb", POD_NONE, NULL);
	assert_role("\"io.kubernetes.cri.container-type\":\"container\"", "app", POD_NONE, NULL);

	spec = spec_with("\"io.kubernetes.cri.sandbox-id\":\"../etc\"", "");
	assert_int_equal(pod_role(spec, "app", &role, &sandbox, &err), -EINVAL);
	assert_string_equal(err.msg, "annotation io.kubernetes.cri.sandbox-id: container ID: "
				     "invalid character in \"../etc\" (allowed: letters, digits, _ "
				     "+ - .)");
	oci_spec_free(spec);
	spec = spec_with("\"io.kubernetes.cri.sandbox-id\":\"\"", "");
	memset(&err, 0, sizeof(err));
	assert_int_equal(pod_role(spec, "app", &role, &sandbox, &err), -EINVAL);
	assert_string_equal(
		err.msg,
		"annotation io.kubernetes.cri.sandbox-id: container ID: must not be empty");
	oci_spec_free(spec);
}

/* A host namespace path: refused unless a member's (joined in its sandbox's VM). */
static void test_namespace_paths(void **state)
{
	const char *json =
		"{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
		"\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}},"
		"\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":"
		"\"network\",\"path\":\"/var/run/netns/cni-1\"},{\"type\":\"uts\","
		"\"path\":\"/proc/1/ns/uts\"}]}}";
	const char *plain =
		"{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
		"\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}},"
		"\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":"
		"\"network\"}]}}";
	const char *netns = /* podman's or CRI's: only a network path */
		"{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
		"\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}},"
		"\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":"
		"\"network\",\"path\":\"/var/run/netns/cni-1\"}]}}";
	struct oci_spec *spec = NULL;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(oci_spec_parse(json, strlen(json), dir, &spec, &err), 0);
	assert_int_equal(pod_check_namespaces(spec, POD_MEMBER, &err), 0);
	assert_int_equal(pod_check_namespaces(spec, POD_SANDBOX, &err), -EOPNOTSUPP);
	/* The network path is carried into the VM (netns.h); the uts one cannot be. */
	assert_string_equal(err.msg, "linux.namespaces[2].path: /proc/1/ns/uts: the host's uts "
				     "namespace cannot be joined: the container runs in a VM of "
				     "its own (only a pod member joins its sandbox's namespaces)");
	memset(&err, 0, sizeof(err));
	assert_int_equal(pod_check_namespaces(spec, POD_NONE, &err), -EOPNOTSUPP);
	oci_spec_free(spec);
	spec = NULL;
	assert_int_equal(oci_spec_parse(plain, strlen(plain), dir, &spec, &err), 0);
	assert_int_equal(pod_check_namespaces(spec, POD_NONE, &err), 0);
	assert_int_equal(pod_check_namespaces(spec, POD_SANDBOX, &err), 0);
	oci_spec_free(spec);
	spec = NULL;
	assert_int_equal(oci_spec_parse(netns, strlen(netns), dir, &spec, &err), 0);
	assert_int_equal(pod_check_namespaces(spec, POD_NONE, &err), 0);
	assert_int_equal(pod_check_namespaces(spec, POD_SANDBOX, &err), 0);
	oci_spec_free(spec);
}

static void test_plan(void **state)
{
	struct oci_spec *spec = spec_with(
		"", "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
		    "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"%s/data\","
		    "\"options\":[\"rbind\",\"ro\",\"nosuid\"]},"
		    "{\"destination\":\"/dev/shm\",\"type\":\"bind\",\"source\":\"/dev/shm\","
		    "\"options\":[\"rbind\"]},"
		    "{\"destination\":\"/etc/hosts\",\"source\":\"hosts\",\"options\":[\"bind\"]}");
	struct pod_member_plan plan;
	struct error err = { 0 };
	char path[512];

	(void)state;
	assert_int_equal(pod_member_plan(spec, dir, &plan, &err), 0);
	assert_int_equal(plan.n_binds, 2);
	snprintf(path, sizeof(path), "%s/data", dir);
	assert_int_equal(plan.binds[0].index, 1);
	assert_string_equal(plan.binds[0].host, path);
	assert_true(plan.binds[0].dir);
	/* relative: against the bundle */
	snprintf(path, sizeof(path), "%s/hosts", dir);
	assert_int_equal(plan.binds[1].index, 3);
	assert_string_equal(plan.binds[1].host, path);
	assert_false(plan.binds[1].dir);

	assert_int_equal(pod_member_plan_guest(spec, "app", "/run/stratus-shares/m0", &plan, &err),
			 0);
	assert_string_equal(plan.rootfs_source, "/run/stratus-shares/m0/app/rootfs");
	assert_int_equal(plan.n_mounts, 4);
	assert_mount(&plan.mounts[0], "proc", "/proc", "proc", "");
	assert_mount(&plan.mounts[1], "/run/stratus-shares/m0/app/m1", "/data", "bind",
		     "rbind,ro,nosuid");
	assert_mount(&plan.mounts[2], "shm", "/dev/shm", "tmpfs",
		     "nosuid,nodev,noexec,mode=1777,size=65536k");
	assert_mount(&plan.mounts[3], "/run/stratus-shares/m0/app/m3", "/etc/hosts", "bind",
		     "bind");
	pod_member_plan_destroy(&plan);
	oci_spec_free(spec);
}

static void assert_plan_fails(const char *mounts, const char *want)
{
	struct oci_spec *spec = spec_with("", mounts);
	struct pod_member_plan plan;
	struct error err = { 0 };
	char msg[512];

	assert_int_not_equal(pod_member_plan(spec, dir, &plan, &err), 0);
	snprintf(msg, sizeof(msg), want, dir);
	assert_string_equal(err.msg, msg);
	assert_null(plan.binds);
	oci_spec_free(spec);
}

static void test_plan_refusals(void **state)
{
	(void)state;
	assert_plan_fails("{\"destination\":\"/x\",\"type\":\"bind\",\"source\":\"%s/none\"}",
			  "mounts[0].source: %s/none: No such file or directory");
	assert_plan_fails("{\"destination\":\"/a\",\"type\":\"bind\",\"source\":\"%s/data\"},"
			  "{\"destination\":\"/null\",\"type\":\"bind\",\"source\":\"/dev/null\"}",
			  "mounts[1].source: /dev/null: only directories and regular files can be "
			  "shared with the VM");
	assert_plan_fails("{\"destination\":\"/x\",\"options\":[\"rbind\"]}",
			  "mounts[0].source: required for a bind mount");
}

/* The namespaces array of the rewritten config, as "type=path|type=-" */
static void namespaces_of(const char *json, char *out, size_t len)
{
	const char *ns_path[] = { "linux", "namespaces", NULL };
	const char *type_path[] = { "type", NULL }, *path_path[] = { "path", NULL };
	yajl_val root = yajl_tree_parse(json, NULL, 0), ns;

	assert_non_null(root);
	ns = yajl_tree_get(root, ns_path, yajl_t_array);
	assert_non_null(ns);
	out[0] = '\0';
	for (size_t i = 0; i < ns->u.array.len; i++) {
		yajl_val t = yajl_tree_get(ns->u.array.values[i], type_path, yajl_t_string);
		yajl_val p = yajl_tree_get(ns->u.array.values[i], path_path, yajl_t_string);

		snprintf(out + strlen(out), len - strlen(out), "%s%s=%s", i ? "|" : "", t->u.string,
			 p ? p->u.string : "-");
	}
	yajl_tree_free(root);
}

static void test_config(void **state)
{
	const char *config =
		"{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\",\"-c\",\"x\"],"
		"\"env\":[\"A=1\"],\"terminal\":false},\"hostname\":\"h\","
		"\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"/proc/42/ns/pid\"},"
		"{\"type\":\"mount\"},{\"type\":\"network\",\"path\":\"/var/run/netns/cni-1\"},"
		"{\"type\":\"ipc\",\"path\":\"\"}],\"resources\":{\"memory\":{\"limit\":1048576}}}"
		"}";
	const char *args_path[] = { "process", "args", NULL };
	const char *mem_path[] = { "linux", "resources", "memory", "limit", NULL };
	struct error err = { 0 };
	char *out = NULL, ns[512];
	yajl_val root, v;

	(void)state;
	assert_int_equal(pod_member_config(config, strlen(config), "sb", &out, &err), 0);
	namespaces_of(out, ns, sizeof(ns));
	assert_string_equal(ns, "pid=container:sb|mount=-|network=container:sb|ipc=");
	root = yajl_tree_parse(out, NULL, 0);
	v = yajl_tree_get(root, args_path, yajl_t_array);
	assert_int_equal(v->u.array.len, 3);
	assert_string_equal(v->u.array.values[2]->u.string, "x");
	v = yajl_tree_get(root, mem_path, yajl_t_number);
	assert_int_equal(YAJL_GET_INTEGER(v), 1048576);
	yajl_tree_free(root);
	free(out);

	/* no linux section at all: unchanged */
	out = NULL;
	assert_int_equal(pod_member_config("{\"a\":[1,true,null]}", 19, "sb", &out, &err), 0);
	assert_string_equal(out, "{\"a\":[1,true,null]}");
	free(out);
	assert_int_equal(pod_member_config("[1]", 3, "sb", &out, &err), -EINVAL);
	assert_string_equal(err.msg, "config.json: must be a JSON object");
}

/*
 * As root, in a mount namespace of the test's own: a member's directory below a pod share,
 * its binds (the ro one and, with root.readonly, the rootfs read-only on the host too), and its
 * removal leaving the bundle intact.
 */
static void test_host_mounts(void **state)
{
	struct oci_spec *spec = spec_with(
		"", "{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"%s/data\","
		    "\"options\":[\"rbind\",\"ro\"]},"
		    "{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"%s/hosts\"}");
	struct pod_member_plan plan;
	struct error err = { 0 };
	char pod[512], root[512], path[600];
	int status;
	pid_t child;

	(void)state;
	if (geteuid() != 0) {
		oci_spec_free(spec);
		skip();
	}
	assert_int_equal(pod_member_plan(spec, dir, &plan, &err), 0);
	snprintf(root, sizeof(root), "%s/rootfs", dir);
	snprintf(pod, sizeof(pod), "%s/state", dir);
	assert_int_equal(mkdir(pod, 0711), 0);
	child = fork();
	if (child == 0) {
		char *share = NULL;
		int fd;

		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			_exit(10);
		if (pod_share_create(pod, &share, &err) < 0)
			_exit(11);
		if (pod_member_mount(share, "app", root, &plan, &err) < 0)
			_exit(12);
		snprintf(path, sizeof(path), "%s/app/rootfs/keep", share);
		if (access(path, F_OK) < 0)
			_exit(13);
		snprintf(path, sizeof(path), "%s/app/m0/new", share);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		if (fd >= 0 || errno != EROFS)
			_exit(14);
		snprintf(path, sizeof(path), "%s/app/rootfs/new", share);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		if (fd >= 0 || errno != EROFS)
			_exit(18);
		snprintf(path, sizeof(path), "%s/app/m1", share);
		fd = open(path, O_WRONLY | O_APPEND);
		if (fd < 0 || write(fd, "y\n", 2) != 2)
			_exit(15);
		close(fd);
		if (pod_unmount_below(share) != 0 || pod_share_remove(pod) < 0)
			_exit(16);
		snprintf(path, sizeof(path), "%s/pod", pod);
		_exit(access(path, F_OK) == 0 ? 17 : 0);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the bundle is intact: its rootfs, the files written through the binds */
	snprintf(path, sizeof(path), "%s/rootfs/keep", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/data/new", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/hosts", dir);
	{
		char buf[16] = "";
		FILE *f = fopen(path, "r");

		assert_non_null(f);
		assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f), 4);
		fclose(f);
		assert_string_equal(buf, "x\ny\n");
	}
	pod_member_plan_destroy(&plan);
	oci_spec_free(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_role, setup, teardown),
		cmocka_unit_test_setup_teardown(test_namespace_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_mounts, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
