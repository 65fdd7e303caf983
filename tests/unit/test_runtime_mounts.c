/*
 * The rootfs and bind-mount translation (runtime/rootfs.h) on real host paths in a temporary
 * bundle: which shares (tags, host directories, read-only), which mounts CREATE carries (a
 * directory mounted as virtiofs on its destination with only its flag options, a file bound
 * from its parent's staging mount, the parents of several files shared once, the staging
 * covered at the end, a /dev/shm bind as a guest tmpfs), non-bind mounts passed as written,
 * and the refusals naming the field: a missing or special source, no source, more shares
 * than the VM has devices for. A block-device rootfs by annotation. As root, the host side
 * of a files share (rootfs_stage_files in a child's own mount namespace): exactly the files,
 * ro/rw as bound, nothing on the host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rootfs.h"
#include "runtime_mount_assert.h"

static char dir[64];

static void make_file(const char *name, const char *content)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void make_dir(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(mkdir(path, 0755), 0);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/stratus-mounts-XXXXXX");
	assert_non_null(mkdtemp(dir));
	make_dir("rootfs");
	make_dir("data");
	make_dir("etc");
	make_file("etc/hosts", "127.0.0.1 localhost\n");
	make_file("etc/resolv.conf", "nameserver 192.0.2.1\n");
	make_file("etc/hostname", "box\n");
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

/* A config with root.readonly ro and the given mounts (JSON array elements, %s = dir). */
static struct oci_spec *spec_with(bool ro, const char *mounts_fmt)
{
	char mounts[4096], json[8192];
	struct error err = { 0 };
	struct oci_spec *spec = NULL;

	snprintf(mounts, sizeof(mounts), mounts_fmt, dir, dir, dir, dir, dir, dir);
	snprintf(json, sizeof(json),
		 "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":%s},"
		 "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/"
		 "\",\"user\":{\"uid\":0,\"gid\":0}},\"mounts\":[%s]}",
		 ro ? "true" : "false", mounts);
	if (oci_spec_parse(json, strlen(json), dir, &spec, &err) < 0)
		fail_msg("config: %s", err.msg);
	return spec;
}

static void assert_file(const struct rootfs_file *f, const char *host, const char *name, bool ro)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, host);
	assert_string_equal(f->host, path);
	assert_string_equal(f->name, name);
	assert_int_equal(f->readonly, ro);
}

/* The same file bound twice is staged once, read-write if either mount is. */
static void test_file_twice(void **state)
{
	struct oci_spec *spec = spec_with(
		false, "{\"destination\":\"/a\",\"type\":\"bind\",\"source\":\"%s/etc/hosts\","
		       "\"options\":[\"ro\"]},"
		       "{\"destination\":\"/b\",\"type\":\"bind\",\"source\":\"%s/etc/hosts\"}");
	struct error err = { 0 };
	struct rootfs r;

	(void)state;
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), 0);
	assert_int_equal(r.n_shares, 2);
	assert_int_equal(r.shares[1].n_files, 1);
	assert_file(&r.shares[1].files[0], "etc/hosts", "hosts", false);
	assert_int_equal(r.n_mounts, 4); /* staging, /a, /b, the cover */
	assert_mount(&r.mounts[1], "/run/stratus/c1/dev/.stratus-shares/m0/hosts", "/a", "bind",
		     "ro");
	assert_mount(&r.mounts[2], "/run/stratus/c1/dev/.stratus-shares/m0/hosts", "/b", "bind",
		     "");
	rootfs_destroy(&r);
	oci_spec_free(spec);
}

static void test_rootfs_only(void **state)
{
	struct oci_spec *spec = spec_with(true, "{\"destination\":\"/proc\",\"type\":\"proc\","
						"\"source\":\"proc\",\"options\":[\"nosuid\"]}");
	struct error err = { 0 };
	char root[128];
	struct rootfs r;

	(void)state;
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), 0);
	snprintf(root, sizeof(root), "%s/rootfs", dir);
	assert_int_equal(r.kind, AGENT_ROOTFS_VIRTIOFS);
	assert_string_equal(r.source, "rootfs");
	assert_int_equal(r.n_shares, 1);
	assert_string_equal(r.shares[0].tag, "rootfs");
	assert_string_equal(r.shares[0].path, root);
	assert_true(r.shares[0].readonly);
	assert_int_equal(r.n_mounts, 1);
	assert_mount(&r.mounts[0], "proc", "/proc", "proc", "nosuid");
	rootfs_destroy(&r);
	oci_spec_free(spec);
}

static void test_binds(void **state)
{
	struct oci_spec *spec = spec_with(
		false,
		"{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"},"
		"{\"destination\":\"/data\",\"type\":\"bind\",\"source\":\"%s/data\","
		"\"options\":[\"rbind\",\"ro\",\"nosuid\",\"rprivate\",\"z\"]},"
		"{\"destination\":\"/etc/hosts\",\"source\":\"%s/etc/hosts\","
		"\"options\":[\"bind\",\"ro\"]},"
		"{\"destination\":\"/data2\",\"type\":\"bind\",\"source\":\"data\"},"
		"{\"destination\":\"/etc/resolv.conf\",\"type\":\"bind\",\"source\":\"%s/etc/"
		"resolv.conf\",\"options\":[\"rbind\"]},"
		"{\"destination\":\"/data3\",\"type\":\"bind\",\"source\":\"%s/data/\","
		"\"options\":[\"ro\"]},"
		"{\"destination\":\"/etc/hostname\",\"type\":\"bind\",\"source\":\"%s/etc/"
		"hostname\","
		"\"options\":[\"ro\"]},"
		"{\"destination\":\"/dev/shm\",\"type\":\"bind\",\"source\":\"/nonexistent/"
		"shm\",\"options\":[\"rbind\"]}");
	struct error err = { 0 };
	char path[256];
	struct rootfs r;

	(void)state;
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), 0);
	assert_false(r.shares[0].readonly);
	/* rootfs, data ro, etc (one share for three files), data rw */
	assert_int_equal(r.n_shares, 4);
	snprintf(path, sizeof(path), "%s/data", dir);
	assert_string_equal(r.shares[1].tag, "m0");
	assert_string_equal(r.shares[1].path, path);
	assert_true(r.shares[1].readonly);
	/* the files' share is a staging directory holding exactly them, not their parent */
	assert_string_equal(r.shares[2].tag, "m1");
	assert_string_equal(r.shares[2].path, "/state/files-m1");
	assert_false(r.shares[2].readonly); /* resolv.conf is bound rw */
	assert_int_equal(r.shares[2].n_files, 3);
	assert_file(&r.shares[2].files[0], "etc/hosts", "hosts", true);
	assert_file(&r.shares[2].files[1], "etc/resolv.conf", "resolv.conf", false);
	assert_file(&r.shares[2].files[2], "etc/hostname", "hostname", true);
	assert_int_equal(r.shares[1].n_files, 0);
	assert_int_equal(r.shares[3].n_files, 0);
	snprintf(path, sizeof(path), "%s/data", dir);
	assert_string_equal(r.shares[3].tag, "m2");
	assert_string_equal(r.shares[3].path, path);
	assert_false(r.shares[3].readonly);

	assert_int_equal(r.n_mounts, 10);
	assert_mount(&r.mounts[0], "tmpfs", "/dev", "tmpfs", "");
	assert_mount(&r.mounts[1], "m0", "/data", "virtiofs", "ro,nosuid,rprivate");
	assert_mount(&r.mounts[2], "m1", "/dev/.stratus-shares/m1", "virtiofs", "");
	assert_mount(&r.mounts[3], "/run/stratus/c1/dev/.stratus-shares/m1/hosts", "/etc/hosts",
		     "bind", "bind,ro");
	assert_mount(&r.mounts[4], "m2", "/data2", "virtiofs", "");
	assert_mount(&r.mounts[5], "/run/stratus/c1/dev/.stratus-shares/m1/resolv.conf",
		     "/etc/resolv.conf", "bind", "rbind");
	assert_mount(&r.mounts[6], "m0", "/data3", "virtiofs", "ro");
	assert_mount(&r.mounts[7], "/run/stratus/c1/dev/.stratus-shares/m1/hostname",
		     "/etc/hostname", "bind", "ro");
	/* podman's host /dev/shm becomes a guest tmpfs: no share, the source unused */
	assert_mount(&r.mounts[8], "shm", "/dev/shm", "tmpfs",
		     "nosuid,nodev,noexec,mode=1777,size=65536k");
	assert_mount(&r.mounts[9], "tmpfs", "/dev/.stratus-shares", "tmpfs",
		     "ro,nosuid,nodev,noexec,mode=000,size=4k");
	rootfs_destroy(&r);
	oci_spec_free(spec);
}

/* Files of a read-only parent; a /dev mounted after the staging hides it without a tmpfs. */
static void test_staging_ro_and_dev_after(void **state)
{
	struct oci_spec *spec = spec_with(
		true,
		"{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"%s/etc/hosts\","
		"\"options\":[\"ro\"]},"
		"{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"}");
	struct error err = { 0 };
	struct rootfs r;

	(void)state;
	assert_int_equal(rootfs_prepare(spec, dir, "x", "/state", &r, &err), 0);
	assert_int_equal(r.n_shares, 2);
	assert_true(r.shares[1].readonly);
	assert_int_equal(r.n_mounts, 3);
	assert_mount(&r.mounts[0], "m0", "/dev/.stratus-shares/m0", "virtiofs", "ro");
	assert_mount(&r.mounts[1], "/run/stratus/x/dev/.stratus-shares/m0/hosts", "/etc/hosts",
		     "bind", "ro");
	assert_mount(&r.mounts[2], "tmpfs", "/dev", "tmpfs", "");
	rootfs_destroy(&r);
	oci_spec_free(spec);
}

/* A symlinked source is shared by what it points to. */
static void test_symlink_source(void **state)
{
	struct oci_spec *spec = spec_with(
		false, "{\"destination\":\"/h\",\"type\":\"bind\",\"source\":\"%s/link\"}");
	struct error err = { 0 };
	char link[256], target[256];
	struct rootfs r;

	(void)state;
	snprintf(link, sizeof(link), "%s/link", dir);
	snprintf(target, sizeof(target), "%s/etc/hostname", dir);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), 0);
	assert_string_equal(r.shares[1].path, "/state/files-m0");
	assert_int_equal(r.shares[1].n_files, 1);
	assert_file(&r.shares[1].files[0], "etc/hostname", "hostname", false);
	assert_string_equal(r.mounts[1].source, "/run/stratus/c1/dev/.stratus-shares/m0/hostname");
	rootfs_destroy(&r);
	oci_spec_free(spec);
	unlink(link);
}

static void expect_refused(const char *mounts, int code, const char *msg_fmt)
{
	struct oci_spec *spec = spec_with(false, mounts);
	struct error err = { 0 };
	char want[512];
	struct rootfs r;

	snprintf(want, sizeof(want), msg_fmt, dir);
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), code);
	assert_string_equal(err.msg, want);
	assert_int_equal(r.n_shares, 0);
	assert_null(r.mounts);
	oci_spec_free(spec);
}

static void test_refusals(void **state)
{
	(void)state;
	expect_refused("{\"destination\":\"/proc\",\"type\":\"proc\"},"
		       "{\"destination\":\"/x\",\"type\":\"bind\",\"source\":\"%s/missing\"}",
		       -ENOENT, "mounts[1].source: %s/missing: No such file or directory");
	expect_refused("{\"destination\":\"/x\",\"options\":[\"rbind\"]}", -EINVAL,
		       "mounts[0].source: required for a bind mount");
	expect_refused("{\"destination\":\"/x\",\"type\":\"bind\",\"source\":\"/dev/null\"}",
		       -EINVAL,
		       "mounts[0].source: /dev/null: only directories and regular files can be "
		       "shared with the VM");
}

/* 14 directories fit with the rootfs; the 15th is refused, naming its mount. */
static void test_too_many_shares(void **state)
{
	char mounts[4096] = "", one[256], want[512];
	struct error err = { 0 };
	struct oci_spec *spec;
	struct rootfs r;

	(void)state;
	for (int i = 0; i < ROOTFS_MAX_SHARES; i++) {
		snprintf(one, sizeof(one), "d%d", i);
		make_dir(one);
		snprintf(one, sizeof(one),
			 "%s{\"destination\":\"/m%d\",\"type\":\"bind\",\"source\":\"d%d\"}",
			 i ? "," : "", i, i);
		strcat(mounts, one);
	}
	spec = spec_with(false, mounts);
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), -E2BIG);
	snprintf(want, sizeof(want),
		 "mounts[14].source: d14: more than %d host directories to share with the VM "
		 "(the rootfs and %d bind mounts)",
		 ROOTFS_MAX_SHARES, ROOTFS_MAX_SHARES - 1);
	assert_string_equal(err.msg, want);
	oci_spec_free(spec);
	/* one fewer fits */
	strrchr(mounts, '{')[-1] = '\0';
	spec = spec_with(false, mounts);
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), 0);
	assert_int_equal(r.n_shares, ROOTFS_MAX_SHARES);
	assert_string_equal(r.shares[ROOTFS_MAX_SHARES - 1].tag, "m13");
	rootfs_destroy(&r);
	oci_spec_free(spec);
}

/* A config with annotations (JSON object members) and root.readonly. */
static struct oci_spec *spec_annotated(const char *annotations, const char *mounts)
{
	char json[4096];
	struct error err = { 0 };
	struct oci_spec *spec = NULL;

	snprintf(json, sizeof(json),
		 "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
		 "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}},"
		 "\"annotations\":{%s},\"mounts\":[%s]}",
		 annotations, mounts);
	if (oci_spec_parse(json, strlen(json), dir, &spec, &err) < 0)
		fail_msg("config: %s", err.msg);
	return spec;
}

/* io.stratus.rootfs.block: the image as virtio-blk, kind 2; bind mounts still shares. */
static void test_block_rootfs(void **state)
{
	char mount[512], path[512];
	struct error err = { 0 };
	struct oci_spec *spec;
	struct rootfs r;

	(void)state;
	make_file("disk.img", "not really ext4");
	snprintf(mount, sizeof(mount),
		 "{\"destination\":\"/d\",\"type\":\"bind\",\"source\":\"%s/data\"}", dir);
	spec = spec_annotated("\"io.stratus.rootfs.block\":\"disk.img\","
			      "\"io.stratus.rootfs.block.fstype\":\"xfs\"",
			      mount);
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), 0);
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	assert_string_equal(r.block, path);
	assert_true(r.block_readonly);
	assert_int_equal(r.kind, AGENT_ROOTFS_BLOCK);
	assert_string_equal(r.source, "/dev/vda");
	assert_string_equal(r.fstype, "xfs");
	assert_string_equal(r.options, "ro");
	assert_int_equal(r.n_shares, 1);
	assert_string_equal(r.shares[0].tag, "m0");
	assert_mount(&r.mounts[0], "m0", "/d", "virtiofs", "");
	rootfs_destroy(&r);
	oci_spec_free(spec);

	spec = spec_annotated("\"io.stratus.rootfs.block\":\"/nonexistent.img\"", "");
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), -ENOENT);
	assert_string_equal(err.msg, "annotations[io.stratus.rootfs.block]: /nonexistent.img: No "
				     "such file or directory");
	oci_spec_free(spec);
	error_clear(&err);
	spec = spec_annotated("\"io.stratus.rootfs.block\":\"data\"", "");
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), -EINVAL);
	assert_string_equal(err.msg, "annotations[io.stratus.rootfs.block]: data: not a disk image "
				     "or block device");
	oci_spec_free(spec);
	error_clear(&err);
	spec = spec_annotated("\"io.stratus.rootfs.block\":\"disk.img\","
			      "\"io.stratus.rootfs.block.fstype\":\"ext4,dax\"",
			      "");
	assert_int_equal(rootfs_prepare(spec, dir, "c1", "/state", &r, &err), -EINVAL);
	assert_string_equal(err.msg, "annotations[io.stratus.rootfs.block.fstype]: \"ext4,dax\" is "
				     "not a filesystem type");
	oci_spec_free(spec);
}

/* In a child (its own mount namespace): exactly the files, ro and rw as bound. */
static int stage_child(const struct rootfs *r, const char *share_dir)
{
	char path[600], buf[64] = "";
	struct error err = { 0 };
	FILE *f;
	int fd;

	if (rootfs_stage_files(r, &err) < 0) {
		fprintf(stderr, "stage: %s\n", err.msg);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/hosts", share_dir);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f) || strcmp(buf, "127.0.0.1 localhost\n"))
		return 2;
	fclose(f);
	if (open(path, O_WRONLY) >= 0 || errno != EROFS)
		return 3; /* bound ro */
	snprintf(path, sizeof(path), "%s/resolv.conf", share_dir);
	fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, "search x\n", 9) != 9)
		return 4; /* bound rw: the write reaches the host file */
	close(fd);
	snprintf(path, sizeof(path), "%s/hostname", share_dir);
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return 5; /* the parent's other files are not there */
	snprintf(path, sizeof(path), "%s/new", share_dir);
	if (open(path, O_WRONLY | O_CREAT, 0644) >= 0 || errno != EROFS)
		return 6; /* the staging tmpfs is read-only */
	return 0;
}

static void test_stage_files(void **state)
{
	struct oci_spec *spec = spec_with(
		false, "{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"%s/etc/"
		       "hosts\",\"options\":[\"ro\"]},"
		       "{\"destination\":\"/etc/resolv.conf\",\"type\":\"bind\",\"source\":\"%s/"
		       "etc/resolv.conf\"}");
	char state_dir[256], share_dir[300], path[600], buf[64] = "";
	struct error err = { 0 };
	struct rootfs r;
	int status;
	pid_t pid;
	FILE *f;

	(void)state;
	if (geteuid() != 0) {
		oci_spec_free(spec);
		skip(); /* mounting needs root */
	}
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
	assert_int_equal(mkdir(state_dir, 0700), 0);
	assert_int_equal(rootfs_prepare(spec, dir, "c1", state_dir, &r, &err), 0);
	snprintf(share_dir, sizeof(share_dir), "%s/files-m0", state_dir);
	assert_string_equal(r.shares[1].path, share_dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(stage_child(&r, share_dir));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the host's namespace has no mount there: an empty directory */
	snprintf(path, sizeof(path), "%s/hosts", share_dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/etc/resolv.conf", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "search x\n");
	fclose(f);
	rootfs_destroy(&r);
	oci_spec_free(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rootfs_only),
		cmocka_unit_test(test_binds),
		cmocka_unit_test(test_staging_ro_and_dev_after),
		cmocka_unit_test(test_symlink_source),
		cmocka_unit_test(test_file_twice),
		cmocka_unit_test(test_block_rootfs),
		cmocka_unit_test(test_stage_files),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_too_many_shares),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
