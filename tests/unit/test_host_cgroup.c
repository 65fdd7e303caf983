/*
 * host_cgroup.c, host_cgroup_layout.c: linux.cgroupsPath resolved as runc resolves it
 * (cgroupfs absolute and relative, v1 and v2 rules; systemd slice:prefix:name with the slice
 * expanded), bad forms refused naming the field; the hierarchies read from a fake mountinfo
 * (v1 controllers, a named hierarchy, the unified one, duplicates, escapes, mount roots); and
 * the directories planned, made, joined and removed in a scratch tree standing in for
 * /sys/fs/cgroup (a plain directory, so the test makes the cgroup.procs files the kernel would).
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

static char tmp[64];
static char warnings[4096];

static void warn_capture(const char *msg)
{
	strncat(warnings, msg, sizeof(warnings) - strlen(warnings) - 2);
	strcat(warnings, "\n");
}

static void expect_path(const char *in, enum host_cgroup_manager m, const char *own, bool v2,
			const char *want)
{
	struct error err = { 0 };
	_cleanup_free_ char *out = NULL;

	assert_int_equal(host_cgroup_resolve(in, m, own, v2, &out, &err), 0);
	assert_string_equal(out, want);
}

static void expect_bad(const char *in, enum host_cgroup_manager m)
{
	struct error err = { 0 };
	char *out = NULL;

	assert_int_equal(host_cgroup_resolve(in, m, "/user.slice/a.scope", true, &out, &err),
			 -EINVAL);
	assert_null(out);
	assert_non_null(strstr(err.msg, "config.json: linux.cgroupsPath"));
}

static void test_cgroupfs_absolute(void **state)
{
	(void)state;
	expect_path("/stratus/c1", HOST_CGROUP_CGROUPFS, "/user.slice/a.scope", true,
		    "/stratus/c1");
	expect_path("//a/./b//", HOST_CGROUP_CGROUPFS, "/x", false, "/a/b");
	/* ".." never climbs above the root */
	expect_path("/../../a/../b", HOST_CGROUP_CGROUPFS, "/x", true, "/b");
}

static void test_cgroupfs_relative(void **state)
{
	(void)state;
	/* cgroup v2: below the parent of our own cgroup, as runc's fs2 */
	expect_path("c1", HOST_CGROUP_CGROUPFS, "/user.slice/session-1.scope", true,
		    "/user.slice/c1");
	expect_path("a/b", HOST_CGROUP_CGROUPFS, "/", true, "/a/b");
	/* v1 (and a hybrid host): below our own cgroup, as runc's fs */
	expect_path("c1", HOST_CGROUP_CGROUPFS, "/user.slice/session-1.scope", false,
		    "/user.slice/session-1.scope/c1");
	/* cleaned on its own first: ".." stays below the base */
	expect_path("../../c1", HOST_CGROUP_CGROUPFS, "/kubepods/pod1/shim", true,
		    "/kubepods/pod1/c1");
	expect_path("../../c1", HOST_CGROUP_CGROUPFS, "/kubepods/pod1", false, "/kubepods/pod1/c1");
}

static void test_systemd(void **state)
{
	(void)state;
	expect_path("system.slice:stratus:abc", HOST_CGROUP_SYSTEMD, "/x", false,
		    "/system.slice/stratus-abc.scope");
	expect_path("kubepods-besteffort-pod1.slice:cri-containerd:id", HOST_CGROUP_SYSTEMD, "/",
		    true,
		    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/"
		    "cri-containerd-id.scope");
	expect_path(":p:n", HOST_CGROUP_SYSTEMD, "/", true, "/system.slice/p-n.scope");
	expect_path("-.slice::n", HOST_CGROUP_SYSTEMD, "/", true, "/n.scope");
	expect_path("a.slice:p:b-c.slice", HOST_CGROUP_SYSTEMD, "/", true, "/a.slice/b-c.slice");
}

static void test_auto(void **state)
{
	(void)state;
	/* as runc's cgroupfs manager: a colon is part of a relative path */
	expect_path("system.slice:p:n", HOST_CGROUP_CGROUPFS, "/a/b", true, "/a/system.slice:p:n");
	/* the shim without containerd.runc.v1.Options: CRI's systemd form picks systemd */
	expect_path("k-p1.slice:cri:id", HOST_CGROUP_AUTO, "/a/b", true,
		    "/k.slice/k-p1.slice/cri-id.scope");
	expect_path(":cri:id", HOST_CGROUP_AUTO, "/a/b", true, "/system.slice/cri-id.scope");
	expect_path("/k/p1/id", HOST_CGROUP_AUTO, "/a/b", true, "/k/p1/id");
	expect_path("x:cri:id", HOST_CGROUP_AUTO, "/a/b", true, "/a/x:cri:id");
	expect_path("d/k.slice:cri:id", HOST_CGROUP_AUTO, "/a/b", true, "/a/d/k.slice:cri:id");
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

static void test_path_valid(void **state)
{
	(void)state;
	assert_true(host_cgroup_path_valid("/sys/fs/cgroup/memory/a"));
	assert_true(host_cgroup_path_valid("/a.b/..c/c..."));
	assert_false(host_cgroup_path_valid(NULL));
	assert_false(host_cgroup_path_valid("/"));
	assert_false(host_cgroup_path_valid("a/b"));
	assert_false(host_cgroup_path_valid("/a//b"));
	assert_false(host_cgroup_path_valid("/a/b/"));
	assert_false(host_cgroup_path_valid("/a/./b"));
	assert_false(host_cgroup_path_valid("/a/.."));
}

/* ---- a fake host: mountinfo and /proc/self/cgroup in tmp, hierarchies below tmp ---- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static bool exists(const char *fmt, const char *a)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), fmt, tmp, a);
	return stat(path, &st) == 0;
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/test_host_cgroup.XXXXXX");
	assert_non_null(mkdtemp(tmp));
	warnings[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/*
 * A hybrid host: v1 memory, cpu+cpuacct, cpuset, pids (no line of ours), name=systemd, the
 * memory hierarchy mounted a second time, cgroup v2 at "uni fied" (an escaped space), and a
 * tmpfs that is no cgroup. Our memory cgroup is /user/x, our v2 one /u.
 */
static void fake_hybrid(char *mountinfo, char *self)
{
	static const char *const dirs[] = { "memory",  "cpu,cpuacct", "cpuset",	 "pids",
					    "systemd", "again",	      "uni fied" };
	char text[4096], path[256];

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp, dirs[i]);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	snprintf(text, sizeof(text),
		 "20 1 0:20 / %s rw - tmpfs tmpfs rw\n"
		 "21 20 0:21 / %s/memory rw,nosuid shared:9 - cgroup cgroup rw,memory\n"
		 "22 20 0:22 / %s/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
		 "23 20 0:23 / %s/cpuset rw - cgroup cgroup rw,cpuset,clone_children\n"
		 "24 20 0:24 / %s/pids rw - cgroup cgroup rw,pids\n"
		 "25 20 0:25 / %s/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
		 "26 20 0:21 / %s/again rw - cgroup cgroup rw,memory\n"
		 "27 20 0:26 / %s/uni\\040fied rw - cgroup2 cgroup2 rw,nsdelegate\n",
		 tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp);
	snprintf(mountinfo, 256, "%s/mountinfo", tmp);
	write_file(mountinfo, text);
	snprintf(self, 256, "%s/self", tmp);
	write_file(self, "9:name=systemd:/s\n"
			 "4:memory:/user/x\n"
			 "3:cpuset:/\n"
			 "2:cpu,cpuacct:/\n"
			 "0::/u\n");
	/* the cpuset root's cpus and mems, which a new cpuset cgroup must copy */
	snprintf(path, sizeof(path), "%s/cpuset/cpuset.cpus", tmp);
	write_file(path, "0-3\n");
	snprintf(path, sizeof(path), "%s/cpuset/cpuset.mems", tmp);
	write_file(path, "0\n");
}

static const struct host_cgroup_hierarchy *find(const struct host_cgroup_layout *l,
						const char *controllers)
{
	for (size_t i = 0; i < l->n; i++) {
		if (!strcmp(l->h[i].controllers, controllers))
			return &l->h[i];
	}
	fail_msg("no hierarchy \"%s\"", controllers);
	return NULL;
}

static void test_layout_hybrid(void **state)
{
	char mountinfo[256], self[256], want[256];
	struct host_cgroup_layout l;
	struct error err = { 0 };
	const struct host_cgroup_hierarchy *h;

	(void)state;
	fake_hybrid(mountinfo, self);
	assert_int_equal(host_cgroup_layout_load(mountinfo, self, &l, &err), 0);
	assert_int_equal(l.n, 6); /* the second memory mount is the same hierarchy */
	assert_false(l.unified);
	h = find(&l, "memory");
	snprintf(want, sizeof(want), "%s/memory", tmp);
	assert_string_equal(h->mount, want);
	assert_string_equal(h->own, "/user/x");
	assert_false(h->v2);
	assert_false(h->cpuset);
	assert_string_equal(find(&l, "cpu,cpuacct")->own, "/");
	assert_true(find(&l, "cpuset")->cpuset);
	assert_string_equal(find(&l, "name=systemd")->own, "/s");
	h = find(&l, "pids"); /* no line of ours: named from its options, own unknown */
	assert_null(h->own);
	h = find(&l, "");
	assert_true(h->v2);
	snprintf(want, sizeof(want), "%s/uni fied", tmp);
	assert_string_equal(h->mount, want);
	assert_string_equal(h->own, "/u");
	host_cgroup_layout_free(&l);
}

static void test_layout_unified_and_roots(void **state)
{
	char mountinfo[256], self[256], text[1024];
	struct host_cgroup_layout l;
	struct error err = { 0 };

	(void)state;
	snprintf(mountinfo, sizeof(mountinfo), "%s/mountinfo", tmp);
	snprintf(self, sizeof(self), "%s/self", tmp);
	/* a container's view: the v2 mount's root is /docker/c, our cgroup below it */
	snprintf(text, sizeof(text),
		 "30 1 0:30 /docker/c %s/cg rw - cgroup2 cgroup2 rw\n"
		 "31 1 0:31 / /proc rw - proc proc rw\n",
		 tmp);
	write_file(mountinfo, text);
	write_file(self, "0::/docker/c/init\n");
	assert_int_equal(host_cgroup_layout_load(mountinfo, self, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_true(l.unified);
	assert_string_equal(l.h[0].own, "/init");
	host_cgroup_layout_free(&l);
	/* our cgroup outside the mount's root: unknown */
	write_file(self, "0::/elsewhere\n");
	assert_int_equal(host_cgroup_layout_load(mountinfo, self, &l, &err), 0);
	assert_null(l.h[0].own);
	host_cgroup_layout_free(&l);
	/* no cgroup mounted at all */
	write_file(mountinfo, "31 1 0:31 / /proc rw - proc proc rw\n");
	assert_int_equal(host_cgroup_layout_load(mountinfo, self, &l, &err), 0);
	assert_int_equal(l.n, 0);
	assert_false(l.unified);
	host_cgroup_layout_free(&l);
	assert_int_equal(host_cgroup_layout_load("/nonexistent/mountinfo", self, &l, &err),
			 -ENOENT);
}

static const struct host_cgroup_dir *dir_in(const struct host_cgroup *hc, const char *sub)
{
	char prefix[256];

	snprintf(prefix, sizeof(prefix), "%s/%s/", tmp, sub);
	for (size_t i = 0; i < hc->n; i++) {
		if (!strncmp(hc->dirs[i].path, prefix, strlen(prefix)))
			return &hc->dirs[i];
	}
	fail_msg("no directory in %s", sub);
	return NULL;
}

/* What the kernel would show in each new cgroup: a cgroup.procs file; gone before rmdir. */
static void procs_files(const struct host_cgroup *hc, bool make)
{
	char path[512];

	for (size_t i = 0; i < hc->n; i++) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", hc->dirs[i].path);
		if (make)
			write_file(path, "");
		else
			unlink(path);
		snprintf(path, sizeof(path), "%s/cpuset.cpus", hc->dirs[i].path);
		if (!make)
			unlink(path);
		snprintf(path, sizeof(path), "%s/cpuset.mems", hc->dirs[i].path);
		if (!make)
			unlink(path);
	}
}

static void test_place_absolute(void **state)
{
	char mountinfo[256], self[256], path[512];
	struct host_cgroup_layout l;
	struct host_cgroup hc;
	struct error err = { 0 };
	const struct host_cgroup_dir *d;
	const char *failed = NULL;

	(void)state;
	fake_hybrid(mountinfo, self);
	assert_int_equal(host_cgroup_layout_load(mountinfo, self, &l, &err), 0);
	assert_int_equal(
		host_cgroup_plan(&l, "/stratus/c1", HOST_CGROUP_CGROUPFS, &hc, warn_capture, &err),
		0);
	assert_int_equal(hc.n, 6); /* every hierarchy, own cgroup or not */
	assert_int_equal(host_cgroup_create(&hc, warn_capture, &err), 0);
	assert_string_equal(warnings, "");
	d = dir_in(&hc, "memory");
	snprintf(path, sizeof(path), "%s/memory/stratus/c1", tmp);
	assert_string_equal(d->path, path);
	snprintf(path, sizeof(path), "%s/memory/stratus", tmp);
	assert_string_equal(d->created, path);
	assert_true(exists("%s/uni fied/stratus/%s", "c1"));
	assert_true(exists("%s/systemd/stratus/%s", "c1"));
	/* a new cpuset cgroup took its parent's cpus and mems, at each level made */
	snprintf(path, sizeof(path), "%s/cpuset/stratus/c1/cpuset.cpus", tmp);
	assert_string_equal(read_text(path), "0-3");
	snprintf(path, sizeof(path), "%s/cpuset/stratus/cpuset.mems", tmp);
	assert_string_equal(read_text(path), "0");
	/* the monitor joins every one */
	procs_files(&hc, true);
	assert_int_equal(host_cgroup_enter(&hc, 4242, &failed), 0);
	snprintf(path, sizeof(path), "%s/pids/stratus/c1/cgroup.procs", tmp);
	assert_string_equal(read_text(path), "4242\n");
	snprintf(path, sizeof(path), "%s/uni fied/stratus/c1/cgroup.procs", tmp);
	assert_string_equal(read_text(path), "4242\n");
	/* still in use (here: a child cgroup): stays, with a warning naming it */
	snprintf(path, sizeof(path), "%s/memory/stratus/c1/child", tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	procs_files(&hc, false);
	snprintf(path, sizeof(path), "%s/cpuset/stratus/cpuset.cpus", tmp);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/cpuset/stratus/cpuset.mems", tmp);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/memory/stratus/c1/child", tmp);
	assert_int_not_equal(host_cgroup_remove(&hc, &l, 0, warn_capture), 0);
	assert_non_null(strstr(warnings, "cannot remove the host cgroup"));
	assert_true(exists("%s/memory/stratus/%s", "c1"));
	assert_false(exists("%s/pids/%s", "stratus"));
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(host_cgroup_remove(&hc, &l, 0, warn_capture), 0);
	assert_false(exists("%s/memory/%s", "stratus"));
	assert_false(exists("%s/uni fied/%s", "stratus"));
	assert_true(exists("%s/%s", "memory")); /* the mount points stay */
	/* a parent made for us holding another container's cgroup by now: it stays, silently */
	host_cgroup_clear(&hc);
	assert_int_equal(host_cgroup_plan(&l, "/ns/c2", HOST_CGROUP_CGROUPFS, &hc, NULL, &err), 0);
	assert_int_equal(host_cgroup_create(&hc, NULL, &err), 0);
	snprintf(path, sizeof(path), "%s/pids/ns/other", tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	procs_files(&hc, false);
	snprintf(path, sizeof(path), "%s/cpuset/ns/cpuset.cpus", tmp);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/cpuset/ns/cpuset.mems", tmp);
	assert_int_equal(unlink(path), 0);
	warnings[0] = '\0';
	assert_int_equal(host_cgroup_remove(&hc, &l, 0, warn_capture), 0);
	assert_string_equal(warnings, "");
	assert_false(exists("%s/pids/ns/%s", "c2"));
	assert_true(exists("%s/pids/ns/%s", "other"));
	assert_false(exists("%s/memory/%s", "ns"));
	/* again, all there already: nothing made, nothing to remove */
	host_cgroup_clear(&hc);
	snprintf(path, sizeof(path), "%s/cpuset/have", tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(host_cgroup_plan(&l, "/have", HOST_CGROUP_CGROUPFS, &hc, NULL, &err), 0);
	snprintf(path, sizeof(path), "%s/cpuset/have/cpuset.cpus", tmp);
	write_file(path, "1\n");
	assert_int_equal(host_cgroup_create(&hc, NULL, &err), 0);
	assert_null(dir_in(&hc, "cpuset")->created);
	assert_non_null(dir_in(&hc, "memory")->created);
	assert_string_equal(read_text(path), "1\n"); /* not ours to change */
	host_cgroup_clear(&hc);
	host_cgroup_layout_free(&l);
}

static void test_place_relative_and_systemd(void **state)
{
	char mountinfo[256], self[256], path[512];
	struct host_cgroup_layout l;
	struct host_cgroup hc;
	struct error err = { 0 };

	(void)state;
	fake_hybrid(mountinfo, self);
	assert_int_equal(host_cgroup_layout_load(mountinfo, self, &l, &err), 0);
	/* relative: below our own cgroup in each; pids (own unknown) skipped with a warning */
	assert_int_equal(
		host_cgroup_plan(&l, "k/c1", HOST_CGROUP_CGROUPFS, &hc, warn_capture, &err), 0);
	assert_int_equal(hc.n, 5);
	assert_non_null(strstr(warnings, "pids hierarchy"));
	snprintf(path, sizeof(path), "%s/memory/user/x/k/c1", tmp);
	assert_string_equal(dir_in(&hc, "memory")->path, path);
	snprintf(path, sizeof(path), "%s/uni fied/u/k/c1", tmp);
	assert_string_equal(dir_in(&hc, "uni fied")->path, path);
	snprintf(path, sizeof(path), "%s/cpu,cpuacct/k/c1", tmp);
	assert_string_equal(dir_in(&hc, "cpu,cpuacct")->path, path);
	host_cgroup_clear(&hc);
	/* systemd: the expanded slice from every hierarchy's root */
	warnings[0] = '\0';
	assert_int_equal(host_cgroup_plan(&l, "a-b.slice:pre:n", HOST_CGROUP_SYSTEMD, &hc,
					  warn_capture, &err),
			 0);
	assert_int_equal(hc.n, 6);
	assert_string_equal(warnings, "");
	snprintf(path, sizeof(path), "%s/pids/a.slice/a-b.slice/pre-n.scope", tmp);
	assert_string_equal(dir_in(&hc, "pids")->path, path);
	host_cgroup_clear(&hc);
	/* a bad form: an error naming the field, nothing planned */
	assert_int_equal(host_cgroup_plan(&l, "/x", HOST_CGROUP_SYSTEMD, &hc, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "linux.cgroupsPath"));
	assert_int_equal(hc.n, 0);
	/* disabled, or no path: nowhere */
	assert_int_equal(host_cgroup_plan(&l, "/x", HOST_CGROUP_DISABLED, &hc, NULL, &err), 0);
	assert_int_equal(hc.n, 0);
	assert_int_equal(host_cgroup_plan(&l, "", HOST_CGROUP_CGROUPFS, &hc, NULL, &err), 0);
	assert_int_equal(hc.n, 0);
	host_cgroup_layout_free(&l);
}

static void test_place_failures(void **state)
{
	char mountinfo[256], self[256], text[1024], path[512];
	struct host_cgroup_layout l;
	struct host_cgroup hc;
	struct error err = { 0 };

	(void)state;
	snprintf(mountinfo, sizeof(mountinfo), "%s/mountinfo", tmp);
	snprintf(self, sizeof(self), "%s/self", tmp);
	write_file(self, "0::/\n");
	snprintf(path, sizeof(path), "%s/a", tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/b", tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	/* a hierarchy that refuses us (sysfs: EPERM): skipped with a warning, the rest used */
	snprintf(text, sizeof(text),
		 "1 0 0:1 / %s/a rw - cgroup cgroup rw,memory\n"
		 "2 0 0:2 / /sys rw - cgroup cgroup rw,pids\n"
		 "3 0 0:3 / %s/b rw - cgroup2 cgroup2 rw\n",
		 tmp, tmp);
	write_file(mountinfo, text);
	assert_int_equal(host_cgroup_layout_load(mountinfo, self, &l, &err), 0);
	assert_int_equal(host_cgroup_plan(&l, "/stratus-test-refused", HOST_CGROUP_CGROUPFS, &hc,
					  warn_capture, &err),
			 0);
	assert_int_equal(hc.n, 3);
	assert_int_equal(host_cgroup_create(&hc, warn_capture, &err), 0);
	assert_int_equal(hc.n, 2);
	assert_non_null(strstr(warnings, "/sys/stratus-test-refused: Operation not permitted"));
	assert_true(exists("%s/b/%s", "stratus-test-refused"));
	assert_int_equal(host_cgroup_remove(&hc, &l, 0, NULL), 0);
	assert_false(exists("%s/a/%s", "stratus-test-refused"));
	host_cgroup_clear(&hc);
	/* another failure: an error naming the field, and what was made in others is gone */
	snprintf(path, sizeof(path), "%s/b/file", tmp);
	write_file(path, "");
	assert_int_equal(host_cgroup_plan(&l, "/file/x", HOST_CGROUP_CGROUPFS, &hc, NULL, &err), 0);
	assert_int_equal(host_cgroup_create(&hc, NULL, &err), -ENOTDIR);
	assert_non_null(strstr(err.msg, "linux.cgroupsPath: cannot create"));
	assert_false(exists("%s/a/%s", "file"));
	host_cgroup_clear(&hc);
	host_cgroup_layout_free(&l);
}

static void test_remove_only_below_mounts(void **state)
{
	char mountinfo[256], self[256], text[512], made[512], path[512];
	struct host_cgroup_dir d = { .path = made, .created = made };
	struct host_cgroup hc = { .dirs = &d, .n = 1 };
	struct host_cgroup_layout l;
	struct error err = { 0 };

	(void)state;
	snprintf(mountinfo, sizeof(mountinfo), "%s/mountinfo", tmp);
	snprintf(self, sizeof(self), "%s/self", tmp);
	write_file(self, "0::/\n");
	snprintf(text, sizeof(text), "1 0 0:1 / %s/cg rw - cgroup2 cgroup2 rw\n", tmp);
	write_file(mountinfo, text);
	assert_int_equal(host_cgroup_layout_load(mountinfo, self, &l, &err), 0);
	/* a state.json naming a directory outside every cgroup mount: left alone */
	snprintf(made, sizeof(made), "%s/notcg", tmp);
	assert_int_equal(mkdir(made, 0755), 0);
	assert_int_equal(host_cgroup_remove(&hc, &l, 0, warn_capture), 0);
	assert_true(exists("%s/%s", "notcg"));
	assert_non_null(strstr(warnings, "not below a cgroup mount"));
	/* nor the mount point itself */
	snprintf(made, sizeof(made), "%s/cg", tmp);
	assert_int_equal(mkdir(made, 0755), 0);
	assert_int_equal(host_cgroup_remove(&hc, &l, 0, NULL), 0);
	assert_true(exists("%s/%s", "cg"));
	snprintf(path, sizeof(path), "%s/cg/x", tmp);
	snprintf(made, sizeof(made), "%s", path);
	assert_int_equal(mkdir(made, 0755), 0);
	assert_int_equal(host_cgroup_remove(&hc, &l, 0, NULL), 0);
	assert_false(exists("%s/cg/%s", "x"));
	host_cgroup_layout_free(&l);
}

static void test_join(void **state)
{
	char mountinfo[256], self[256], path[512];
	struct host_cgroup_layout l;
	struct error err = { 0 };

	(void)state;
	fake_hybrid(mountinfo, self);
	assert_int_equal(host_cgroup_layout_load(mountinfo, self, &l, &err), 0);
	/* ShimCgroup exists in memory and v2 only: joined there, a warning for the others */
	snprintf(path, sizeof(path), "%s/memory/pod1", tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/memory/pod1/cgroup.procs", tmp);
	write_file(path, "");
	snprintf(path, sizeof(path), "%s/uni fied/pod1", tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/uni fied/pod1/cgroup.procs", tmp);
	write_file(path, "");
	assert_int_equal(host_cgroup_join(&l, "ShimCgroup", "pod1", 77, warn_capture, &err), 0);
	assert_string_equal(read_text(path), "77\n");
	assert_non_null(strstr(warnings, "ShimCgroup: no cgroup /pod1 in the pids hierarchy"));
	assert_false(exists("%s/pids/%s", "pod1")); /* never made */
	/* nowhere: an error naming it */
	assert_int_equal(host_cgroup_join(&l, "ShimCgroup", "/nope/../nope", 77, NULL, &err),
			 -ENOENT);
	assert_string_equal(err.msg, "ShimCgroup: no cgroup /nope to join on this host");
	host_cgroup_layout_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroupfs_absolute),
		cmocka_unit_test(test_cgroupfs_relative),
		cmocka_unit_test(test_systemd),
		cmocka_unit_test(test_auto),
		cmocka_unit_test(test_expand_slice),
		cmocka_unit_test(test_bad_forms),
		cmocka_unit_test(test_path_valid),
		cmocka_unit_test_setup_teardown(test_layout_hybrid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_unified_and_roots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_place_absolute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_place_relative_and_systemd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_place_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_only_below_mounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
