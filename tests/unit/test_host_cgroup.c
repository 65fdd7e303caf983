/*
 * host_cgroup.c: linux.cgroupsPath resolved as runc resolves it (cgroupfs absolute and
 * relative, systemd slice:prefix:name with the slice expanded), bad forms refused naming the
 * field, and the directories made and removed in a scratch tree (not a real cgroupfs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "host_cgroup.h"

static void expect_path(const char *in, enum host_cgroup_manager m, const char *own,
			const char *want)
{
	struct error err = { 0 };
	_cleanup_free_ char *out = NULL;

	assert_int_equal(host_cgroup_resolve(in, m, own, &out, &err), 0);
	assert_string_equal(out, want);
}

static void expect_bad(const char *in, enum host_cgroup_manager m)
{
	struct error err = { 0 };
	char *out = NULL;

	assert_int_equal(host_cgroup_resolve(in, m, "/user.slice/a.scope", &out, &err), -EINVAL);
	assert_null(out);
	assert_non_null(strstr(err.msg, "linux.cgroupsPath"));
}

static void test_cgroupfs_absolute(void **state)
{
	(void)state;
	expect_path("/stratus/c1", HOST_CGROUP_CGROUPFS, "/user.slice/a.scope", "/stratus/c1");
	expect_path("//a/./b//", HOST_CGROUP_CGROUPFS, "/x", "/a/b");
	/* ".." never climbs above the root */
	expect_path("/../../a/../b", HOST_CGROUP_CGROUPFS, "/x", "/b");
}

static void test_cgroupfs_relative(void **state)
{
	(void)state;
	/* below the parent of our own cgroup, as runc */
	expect_path("c1", HOST_CGROUP_CGROUPFS, "/user.slice/session-1.scope", "/user.slice/c1");
	expect_path("a/b", HOST_CGROUP_CGROUPFS, "/", "/a/b");
	/* cleaned on its own first: ".." stays below the base */
	expect_path("../../c1", HOST_CGROUP_CGROUPFS, "/kubepods/pod1/shim", "/kubepods/pod1/c1");
}

static void test_systemd(void **state)
{
	(void)state;
	expect_path("system.slice:stratus:abc", HOST_CGROUP_SYSTEMD, "/",
		    "/system.slice/stratus-abc.scope");
	expect_path("kubepods-besteffort-pod1.slice:cri-containerd:id", HOST_CGROUP_SYSTEMD, "/",
		    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/"
		    "cri-containerd-id.scope");
	expect_path(":p:n", HOST_CGROUP_SYSTEMD, "/", "/system.slice/p-n.scope");
	expect_path("-.slice::n", HOST_CGROUP_SYSTEMD, "/", "/n.scope");
	expect_path("a.slice:p:b-c.slice", HOST_CGROUP_SYSTEMD, "/", "/a.slice/b-c.slice");
}

static void test_auto(void **state)
{
	(void)state;
	/* as runc's cgroupfs manager: a colon is part of a relative path */
	expect_path("system.slice:p:n", HOST_CGROUP_CGROUPFS, "/a/b", "/a/system.slice:p:n");
	/* the shim (no SystemdCgroup option to read): CRI's systemd form picks systemd */
	expect_path("k-p1.slice:cri:id", HOST_CGROUP_AUTO, "/a/b",
		    "/k.slice/k-p1.slice/cri-id.scope");
	expect_path(":cri:id", HOST_CGROUP_AUTO, "/a/b", "/system.slice/cri-id.scope");
	expect_path("/k/p1/id", HOST_CGROUP_AUTO, "/a/b", "/k/p1/id");
	expect_path("x:cri:id", HOST_CGROUP_AUTO, "/a/b", "/a/x:cri:id");
	expect_path("d/k.slice:cri:id", HOST_CGROUP_AUTO, "/a/b", "/a/d/k.slice:cri:id");
}

static void test_expand_slice(void **state)
{
	_cleanup_free_ char *a = NULL, *b = NULL;

	(void)state;
	assert_int_equal(host_cgroup_expand_slice("a-b-c.slice", &a), 0);
	assert_string_equal(a, "/a.slice/a-b.slice/a-b-c.slice");
	assert_int_equal(host_cgroup_expand_slice("-.slice", &b), 0);
	assert_string_equal(b, "");
	assert_int_equal(host_cgroup_expand_slice("a--b.slice", &a), -EINVAL);
	assert_int_equal(host_cgroup_expand_slice("-a.slice", &a), -EINVAL);
	assert_int_equal(host_cgroup_expand_slice("a-.slice", &a), -EINVAL);
	assert_int_equal(host_cgroup_expand_slice("a.scope", &a), -EINVAL);
	assert_int_equal(host_cgroup_expand_slice("a/b.slice", &a), -EINVAL);
}

static void test_bad_forms(void **state)
{
	(void)state;
	expect_bad("", HOST_CGROUP_CGROUPFS);
	expect_bad("/", HOST_CGROUP_CGROUPFS);
	expect_bad("/a/..", HOST_CGROUP_CGROUPFS);
	expect_bad("/stratus/c1", HOST_CGROUP_SYSTEMD);
	expect_bad("a:b", HOST_CGROUP_SYSTEMD);
	expect_bad("a.slice:b:c:d", HOST_CGROUP_SYSTEMD);
	expect_bad("a.slice:p:", HOST_CGROUP_SYSTEMD);
	expect_bad("a.slice:p:x/y", HOST_CGROUP_SYSTEMD);
	expect_bad("a.slice:p/q:n", HOST_CGROUP_SYSTEMD);
	expect_bad("notaslice:p:n", HOST_CGROUP_SYSTEMD);
	expect_bad("a--b.slice:p:n", HOST_CGROUP_SYSTEMD);
	expect_bad("a.slice:p:..", HOST_CGROUP_SYSTEMD);
}

static void test_create_remove(void **state)
{
	char tmpl[] = "/tmp/test_host_cgroup.XXXXXX", path[256];
	_cleanup_free_ char *created = NULL, *again = NULL;
	struct error err = { 0 };
	struct stat st;
	char *root;

	(void)state;
	root = mkdtemp(tmpl);
	assert_non_null(root);
	snprintf(path, sizeof(path), "%s/have", root);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(host_cgroup_create(root, "/have/x/y", &created, &err), 0);
	assert_string_equal(created, "/have/x");
	snprintf(path, sizeof(path), "%s/have/x/y", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	/* all there already: nothing made, nothing to remove */
	assert_int_equal(host_cgroup_create(root, "/have/x/y", &again, &err), 0);
	assert_null(again);
	/* a directory still in use stays */
	snprintf(path, sizeof(path), "%s/have/x/y/busy", root);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_not_equal(host_cgroup_remove(root, "/have/x/y", created), 0);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(host_cgroup_remove(root, "/have/x/y", created), 0);
	snprintf(path, sizeof(path), "%s/have/x", root);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/have", root);
	assert_int_equal(stat(path, &st), 0);
	/* a failure leaves nothing it made */
	snprintf(path, sizeof(path), "%s/have/file", root);
	assert_int_equal(close(creat(path, 0644)), 0);
	assert_int_not_equal(host_cgroup_create(root, "/have/file/z", &again, &err), 0);
	assert_non_null(strstr(err.msg, "linux.cgroupsPath"));
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/have", root);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(root), 0);
}

static void test_own(void **state)
{
	_cleanup_free_ char *own = NULL;

	(void)state;
	if (!host_cgroup_is_v2(HOST_CGROUP_ROOT))
		skip();
	assert_int_equal(host_cgroup_own(&own), 0);
	assert_true(own[0] == '/');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroupfs_absolute),
		cmocka_unit_test(test_cgroupfs_relative),
		cmocka_unit_test(test_systemd),
		cmocka_unit_test(test_expand_slice),
		cmocka_unit_test(test_bad_forms),
		cmocka_unit_test(test_create_remove),
		cmocka_unit_test(test_own),
		cmocka_unit_test(test_auto),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
