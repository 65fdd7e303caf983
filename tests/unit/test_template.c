/*
 * The template cache without a VM (runtime/template.h): when templates are wanted, the key
 * and what changes it, the template VM's device layout with and without a container's
 * shares, finding, listing and removing templates in a directory of fake ones, and the
 * `stratus template` command line. Building one boots a VM: tests/integration/test_cli.sh.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "container.h"
#include "stratus_cli.h"
#include "template.h"
#include "vm.h"

/* err cleared: the first failure recorded wins (common/error.h) */
#define E (error_clear(&err), &err)

static char tmpdir[256], kernel[300], initramfs[300], troot[300];

static void write_file(const char *path, const char *text, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	if (text)
		assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	if (size)
		assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_template.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", tmpdir);
	snprintf(initramfs, sizeof(initramfs), "%s/initramfs.cpio", tmpdir);
	snprintf(troot, sizeof(troot), "%s/templates", tmpdir);
	write_file(kernel, "kernel", 0);
	write_file(initramfs, "initramfs", 0);
	setenv(TEMPLATE_DIR_ENV, troot, 1);
	unsetenv(TEMPLATE_ENV);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	container_remove_tree(tmpdir);
	return 0;
}

static void test_wanted(void **state)
{
	struct oci_kv kv[2] = { { (char *)"other", (char *)"false" },
				{ (char *)TEMPLATE_ANNOTATION, (char *)"true" } };
	struct oci_spec spec;

	(void)state;
	memset(&spec, 0, sizeof(spec));
	spec.annotations.kv = kv;
	spec.annotations.n = 2;
	assert_true(template_wanted(&spec));
	kv[1].value = (char *)"false";
	assert_false(template_wanted(&spec));
	kv[1].value = (char *)"true";
	setenv(TEMPLATE_ENV, "0", 1);
	assert_false(template_wanted(&spec));
	setenv(TEMPLATE_ENV, "1", 1);
	assert_true(template_wanted(&spec));
	unsetenv(TEMPLATE_ENV);
	assert_string_equal(template_root(), troot);
}

static void test_key(void **state)
{
	struct guest_assets a = { kernel, initramfs };
	char k1[TEMPLATE_KEY_LEN + 1], k2[TEMPLATE_KEY_LEN + 1];
	struct timespec times[2] = { { 0, UTIME_OMIT }, { 1000, 5 } };
	struct error err = { 0 };

	(void)state;
	assert_int_equal(template_key(&a, 1, 128, k1, E), 0);
	assert_int_equal(strlen(k1), TEMPLATE_KEY_LEN);
	assert_int_equal(template_key(&a, 1, 128, k2, E), 0);
	assert_string_equal(k1, k2);
	assert_int_equal(template_key(&a, 2, 128, k2, E), 0);
	assert_string_not_equal(k1, k2);
	assert_int_equal(template_key(&a, 1, 256, k2, E), 0);
	assert_string_not_equal(k1, k2);
	/* the kernel touched: another key */
	assert_int_equal(utimensat(AT_FDCWD, kernel, times, 0), 0);
	assert_int_equal(template_key(&a, 1, 128, k2, E), 0);
	assert_string_not_equal(k1, k2);
	assert_int_equal(template_key(&a, 1, 128, k1, E), 0);
	/* the initramfs rewritten (same mtime second is not enough: size and inode count) */
	write_file(initramfs, "initramfs, rebuilt", 0);
	assert_int_equal(template_key(&a, 1, 128, k2, E), 0);
	assert_string_not_equal(k1, k2);
	/* a missing asset is an error naming it */
	a.kernel = (char *)"/nonexistent/vmlinux";
	assert_int_equal(template_key(&a, 1, 128, k2, E), -ENOENT);
	assert_non_null(strstr(err.msg, "template: kernel /nonexistent/vmlinux"));
}

static void test_layout(void **state)
{
	struct vm_config vc;
	struct rootfs rootfs;

	(void)state;
	memset(&vc, 0, sizeof(vc));
	assert_int_equal(template_layout(&vc, "/run/x/vsock.sock", NULL), 0);
	assert_int_equal(vc.nr_devices, 1 + ROOTFS_MAX_SHARES);
	assert_int_equal(vc.devices[0].type, VM_DEVICE_VIRTIO_VSOCK);
	assert_string_equal(vc.devices[0].path, "/run/x/vsock.sock");
	assert_int_equal(vc.devices[0].guest_cid, 3);
	assert_string_equal(vc.devices[1].fs_tag, "rootfs");
	assert_string_equal(vc.devices[2].fs_tag, "m0");
	assert_string_equal(vc.devices[ROOTFS_MAX_SHARES].fs_tag, "m13");
	for (unsigned int i = 1; i < vc.nr_devices; i++) {
		assert_int_equal(vc.devices[i].type, VM_DEVICE_VIRTIO_FS);
		assert_string_equal(vc.devices[i].path, "");
	}

	memset(&rootfs, 0, sizeof(rootfs));
	rootfs.n_shares = 2;
	snprintf(rootfs.shares[0].tag, ROOTFS_TAG_MAX, "rootfs");
	rootfs.shares[0].path = (char *)"/bundle/rootfs";
	rootfs.shares[0].readonly = true;
	snprintf(rootfs.shares[1].tag, ROOTFS_TAG_MAX, "m0");
	rootfs.shares[1].path = (char *)"/data";
	assert_true(template_fits(&rootfs));
	assert_int_equal(template_layout(&vc, "/v", &rootfs), 0);
	assert_int_equal(vc.nr_devices, 1 + ROOTFS_MAX_SHARES);
	assert_string_equal(vc.devices[1].path, "/bundle/rootfs");
	assert_true(vc.devices[1].readonly);
	assert_string_equal(vc.devices[2].path, "/data");
	assert_false(vc.devices[2].readonly);
	assert_string_equal(vc.devices[3].path, "");
	/* a share no slot takes */
	snprintf(rootfs.shares[1].tag, ROOTFS_TAG_MAX, "m99");
	assert_int_equal(template_layout(&vc, "/v", &rootfs), -E2BIG);
	/* a block rootfs: cold boot */
	rootfs.block = (char *)"/img";
	assert_false(template_fits(&rootfs));
	assert_int_equal(template_layout(&vc, "/v", &rootfs), -ENOTSUP);
}

/* A fake template: <troot>/<key>/{snapshot,template.json}. */
static void fake_template(const char *key, const char *json_key, unsigned int vcpus,
			  size_t snapshot_size)
{
	char path[600], json[1200];

	mkdir(troot, 0700);
	snprintf(path, sizeof(path), "%s/%s", troot, key);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s/snapshot", troot, key);
	write_file(path, NULL, snapshot_size);
	snprintf(path, sizeof(path), "%s/%s/template.json", troot, key);
	snprintf(json, sizeof(json),
		 "{\"key\":\"%s\",\"vcpus\":%u,\"memory_mib\":128,\"kernel\":{\"path\":\"%s\"},"
		 "\"initramfs\":{\"path\":\"%s\"},\"created\":\"2026-01-01T00:00:00Z\","
		 "\"build_ms\":9000}",
		 json_key, vcpus, kernel, initramfs);
	write_file(path, json, 0);
}

static void test_list_remove(void **state)
{
	struct template_info *v;
	struct error err = { 0 };
	unsigned int removed;
	size_t n;

	(void)state;
	container_remove_tree(troot);
	assert_int_equal(template_list(&v, &n, E), 0); /* no directory yet: none */
	assert_int_equal(n, 0);
	fake_template("aaaa000000000001", "aaaa000000000001", 1, 1 << 20);
	fake_template("aaaa000000000002", "aaaa000000000002", 2, 1 << 20);
	fake_template("bbbb000000000003", "bbbb000000000003", 4, 1 << 20);
	fake_template("cccc000000000004", "another-key", 1, 1 << 20);  /* not what it claims */
	fake_template("dddd000000000005", "dddd000000000005", 1, 100); /* truncated */
	assert_int_equal(template_list(&v, &n, E), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].key, "aaaa000000000001");
	assert_int_equal(v[1].vcpus, 2);
	assert_int_equal(v[2].mem_mib, 128);
	assert_string_equal(v[2].kernel, kernel);
	assert_string_equal(v[2].created, "2026-01-01T00:00:00Z");
	assert_int_equal(v[2].build_ms, 9000);
	template_list_free(v, n);

	assert_int_equal(template_remove("aaaa", &removed, E), -EINVAL);
	assert_non_null(strstr(err.msg, "ambiguous"));
	assert_int_equal(template_remove("ffff", &removed, E), -ENOENT);
	assert_string_equal(err.msg, "template \"ffff\" does not exist");
	assert_int_equal(template_remove("bbbb", &removed, E), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(template_remove(NULL, &removed, E), 0);
	assert_int_equal(removed, 4); /* the two valid ones and the two broken ones */
	assert_int_equal(template_list(&v, &n, E), 0);
	assert_int_equal(n, 0);
	template_list_free(v, n);
}

static void test_get_existing_and_discard(void **state)
{
	struct guest_assets a = { kernel, initramfs };
	char key[TEMPLATE_KEY_LEN + 1], path[600];
	struct template_info info;
	struct error err = { 0 };
	char *snapshot = NULL;

	(void)state;
	container_remove_tree(troot);
	assert_int_equal(template_key(&a, 1, 128, key, E), 0);
	fake_template(key, key, 1, 1 << 20);
	/* there: no build, its snapshot */
	assert_int_equal(template_get(&a, 1, 128, false, &snapshot, &info, E), 0);
	snprintf(path, sizeof(path), "%s/%s/snapshot", troot, key);
	assert_string_equal(snapshot, path);
	assert_string_equal(info.key, key);
	template_info_clear(&info);
	template_discard(snapshot);
	free(snapshot);
	snprintf(path, sizeof(path), "%s/%s", troot, key);
	assert_int_equal(access(path, F_OK), -1);
	/* a root that cannot be put in a QMP argument */
	setenv(TEMPLATE_DIR_ENV, "/tmp/a\"b", 1);
	assert_int_equal(template_get(&a, 1, 128, false, &snapshot, NULL, E), -EINVAL);
	assert_non_null(strstr(err.msg, TEMPLATE_DIR_ENV));
	setenv(TEMPLATE_DIR_ENV, troot, 1);
}

static void test_cli_parse(void **state)
{
	struct cli_template_args a;
	struct error err = { 0 };
	char *create[] = { "template", "create", "--vcpus", "2", "--memory", "512", NULL };
	char *list[] = { "template", "list", "--format", "json", NULL };
	char *rm[] = { "template", "delete", "abc", NULL };
	char *rm_all[] = { "template", "rm", "--all", NULL };
	char *rm_none[] = { "template", "rm", NULL };
	char *bad_vcpus[] = { "template", "create", "--vcpus", "0", NULL };
	char *bad_mem[] = { "template", "create", "--memory", "12x", NULL };
	char *bad_flag[] = { "template", "list", "--vcpus", "2", NULL };
	char *bad_cmd[] = { "template", "make", NULL };
	char *none[] = { "template", NULL };
	char *extra[] = { "template", "list", "x", NULL };

	(void)state;
	assert_int_equal(cli_template_parse(6, create, &a, E), 0);
	assert_string_equal(a.command, "create");
	assert_int_equal(a.vcpus, 2);
	assert_int_equal(a.mem_mib, 512);
	assert_int_equal(cli_template_parse(4, list, &a, E), 0);
	assert_true(a.json);
	assert_int_equal(cli_template_parse(3, rm, &a, E), 0);
	assert_string_equal(a.command, "rm");
	assert_string_equal(a.key, "abc");
	assert_int_equal(cli_template_parse(3, rm_all, &a, E), 0);
	assert_true(a.all);
	assert_null(a.key);
	assert_int_equal(cli_template_parse(2, rm_none, &a, E), -EINVAL);
	assert_string_equal(err.msg, "template rm: requires a template key or --all");
	assert_int_equal(cli_template_parse(4, bad_vcpus, &a, E), -EINVAL);
	assert_string_equal(err.msg,
			    "template create: --vcpus: must be a number from 1 to 64, not \"0\"");
	assert_int_equal(cli_template_parse(4, bad_mem, &a, E), -EINVAL);
	assert_non_null(strstr(err.msg, "--memory: must be a number from 64 to"));
	assert_int_equal(cli_template_parse(4, bad_flag, &a, E), -EINVAL);
	assert_string_equal(err.msg, "template list: unknown flag --vcpus");
	assert_int_equal(cli_template_parse(2, bad_cmd, &a, E), -EINVAL);
	assert_string_equal(err.msg, "template: unknown command \"make\" (create, list or rm)");
	assert_int_equal(cli_template_parse(1, none, &a, E), -EINVAL);
	assert_int_equal(cli_template_parse(3, extra, &a, E), -EINVAL);
	assert_string_equal(err.msg, "template list: takes no arguments (got \"x\")");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wanted),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_list_remove),
		cmocka_unit_test(test_get_existing_and_discard),
		cmocka_unit_test(test_cli_parse),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
