/*
 * QMP block hotplug arguments and the node table (vmm/hotplug.c) against a fake device
 * backend: Kata's exact JSON is accepted, every malformed or unsupported argument gets a
 * message naming it, nodes are opened (read-only, locked) at blockdev-add and cannot be
 * deleted while a device uses them, device_add passes the slot and node to the device.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>
#include <cmocka.h>

#include "hotplug.h"

struct fake {
	struct blk_hotplug_request last;
	char node[64], id[64];
	int attached, detached, fail_attach;
	bool in_use;
};

static int fake_attach(void *opaque, const struct blk_hotplug_request *req, struct error *err)
{
	struct fake *f = opaque;

	if (f->fail_attach)
		return error_set(err, -EBUSY, "addr %d: the slot is in use", req->slot);
	f->last = *req;
	snprintf(f->node, sizeof(f->node), "%s", req->node);
	snprintf(f->id, sizeof(f->id), "%s", req->id);
	f->attached++;
	f->in_use = true;
	return req->slot < 0 ? 0 : req->slot;
}

static int fake_detach(void *opaque, const char *id, char *node, size_t size, struct error *err)
{
	struct fake *f = opaque;

	if (!f->in_use || strcmp(id, f->id))
		return error_set(err, -ENODEV, "Device '%s' not found", id);
	snprintf(node, size, "%s", f->node);
	f->detached++;
	f->in_use = false;
	return 0;
}

static bool fake_in_use(void *opaque, const char *node)
{
	struct fake *f = opaque;

	return f->in_use && !strcmp(node, f->node);
}

struct ctx {
	struct fake fake;
	struct hotplug *hp;
	char dir[64], img[128], img2[128];
	struct error err;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct hotplug_backend be = { .attach = fake_attach,
				      .detach = fake_detach,
				      .node_in_use = fake_in_use };
	int fd;

	snprintf(c->dir, sizeof(c->dir), "/tmp/test_hotplug.XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->img, sizeof(c->img), "%s/disk.img", c->dir);
	snprintf(c->img2, sizeof(c->img2), "%s/disk2.img", c->dir);
	fd = open(c->img, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	fd = open(c->img2, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	be.opaque = &c->fake;
	assert_int_equal(hotplug_create(&be, &c->hp), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	hotplug_destroy(c->hp);
	unlink(c->img);
	unlink(c->img2);
	rmdir(c->dir);
	free(c);
	return 0;
}

/* Run command with JSON arguments (printf-style, ' stands for "); 0 or the error. */
static int run(struct ctx *c, const char *command, const char *fmt, ...)
{
	char json[1024], errbuf[128];
	yajl_val args = NULL;
	va_list ap;
	char *p;
	int r;

	memset(&c->err, 0, sizeof(c->err));
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(json, sizeof(json), fmt, ap);
		va_end(ap);
		for (p = json; *p; p++)
			if (*p == '\'')
				*p = '"';
		args = yajl_tree_parse(json, errbuf, sizeof(errbuf));
		assert_non_null(args);
	}
	r = hotplug_execute(c->hp, command, args, &c->err);
	yajl_tree_free(args);
	return r;
}

#define EXPECT_FAIL(c, message, ...)                                              \
	do {                                                                      \
		assert_true(run(c, __VA_ARGS__) < 0);                             \
		if (!strstr((c)->err.msg, message))                               \
			fail_msg("expected '%s' in '%s'", message, (c)->err.msg); \
	} while (0)

#define KATA_ADD                                                                              \
	"{'driver':'raw','node-name':'%s','read-only':%s,'file':{'driver':'file','filename':" \
	"'%s','aio':'native'},'cache':{'direct':false,'no-flush':false}}"

static void test_kata_conversation(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(run(c, "blockdev-add", KATA_ADD, "drive-1", "false", c->img), 0);
	assert_int_equal(
		run(c, "device_add",
		    "{'id':'drive-1','driver':'virtio-blk-mmio','drive':'drive-1','addr':'1'}"),
		0);
	assert_int_equal(c->fake.attached, 1);
	assert_int_equal(c->fake.last.slot, 1);
	assert_string_equal(c->fake.id, "drive-1");
	assert_string_equal(c->fake.last.path, c->img);
	assert_false(c->fake.last.readonly);
	assert_false(c->fake.last.direct);
	assert_true(c->fake.last.fd >= 0);
	assert_int_equal(fcntl(c->fake.last.fd, F_GETFL) & O_ACCMODE, O_RDWR);
	/* In use: the node stays, and a second device cannot take it. */
	EXPECT_FAIL(c, "Node 'drive-1' is in use", "blockdev-del", "{'node-name':'drive-1'}");
	EXPECT_FAIL(c, "node 'drive-1' is already in use", "device_add",
		    "{'id':'d2','driver':'virtio-blk-mmio','drive':'drive-1'}");
	assert_int_equal(run(c, "device_del", "{'id':'drive-1'}"), 0);
	assert_int_equal(c->fake.detached, 1);
	EXPECT_FAIL(c, "Device 'drive-1' not found", "device_del", "{'id':'drive-1'}");
	assert_int_equal(run(c, "blockdev-del", "{'node-name':'drive-1'}"), 0);
	EXPECT_FAIL(c, "Failed to find node with node-name='drive-1'", "blockdev-del",
		    "{'node-name':'drive-1'}");
	/* The image is closed and unlocked: it can be added again. */
	assert_int_equal(run(c, "blockdev-add", KATA_ADD, "drive-1", "false", c->img), 0);
}

static void test_blockdev_add_errors(void **state)
{
	struct ctx *c = *state;

	EXPECT_FAIL(c, "Parameter 'node-name' is missing", "blockdev-add", NULL);
	EXPECT_FAIL(c, "Parameter 'node-name' is missing", "blockdev-add",
		    "{'file':{'driver':'file','filename':'%s'}}", c->img);
	EXPECT_FAIL(c, "Parameter 'node-name' expects 1 to", "blockdev-add",
		    "{'node-name':'a b','file':{'driver':'file','filename':'%s'}}", c->img);
	EXPECT_FAIL(c, "Parameter 'node-name' expects a string", "blockdev-add",
		    "{'node-name':7,'file':{'driver':'file','filename':'%s'}}", c->img);
	EXPECT_FAIL(c, "Parameter 'file' is missing", "blockdev-add", "{'node-name':'n'}");
	EXPECT_FAIL(c, "Parameter 'file' expects an object", "blockdev-add",
		    "{'node-name':'n','file':'%s'}", c->img);
	EXPECT_FAIL(c, "Parameter 'file.filename' is missing", "blockdev-add",
		    "{'node-name':'n','file':{'driver':'file'}}");
	EXPECT_FAIL(c, "'file.driver': 'nbd' is not supported", "blockdev-add",
		    "{'node-name':'n','file':{'driver':'nbd','filename':'x'}}");
	EXPECT_FAIL(c, "Parameter 'driver': 'qcow2' is not supported", "blockdev-add",
		    "{'node-name':'n','driver':'qcow2','file':{'driver':'file','filename':'%s'}}",
		    c->img);
	EXPECT_FAIL(c, "Parameter 'read-only' expects a boolean", "blockdev-add",
		    "{'node-name':'n','read-only':'yes','file':{'driver':'file','filename':'%s'}}",
		    c->img);
	EXPECT_FAIL(c, "Parameter 'bogus' is unexpected", "blockdev-add",
		    "{'node-name':'n','bogus':1,'file':{'driver':'file','filename':'%s'}}", c->img);
	EXPECT_FAIL(c, "Parameter 'cache.writeback' is unexpected", "blockdev-add",
		    "{'node-name':'n','cache':{'writeback':true},'file':{'driver':'file',"
		    "'filename':'%s'}}",
		    c->img);
	EXPECT_FAIL(c, "Could not open '/nonexistent/x.img'", "blockdev-add",
		    "{'node-name':'n','file':{'driver':'file','filename':'/nonexistent/x.img'}}");
	assert_int_equal(run(c, "blockdev-add", KATA_ADD, "n", "false", c->img), 0);
	EXPECT_FAIL(c, "Duplicate nodes with node-name='n'", "blockdev-add", KATA_ADD, "n", "false",
		    c->img2);
	/* A second writer on the same image: locked out, as with -drive. */
	EXPECT_FAIL(c, "is in use by another process", "blockdev-add", KATA_ADD, "m", "false",
		    c->img);
	/* Read-only nodes share the image among readers only. */
	EXPECT_FAIL(c, "is in use by another process", "blockdev-add", KATA_ADD, "m", "true",
		    c->img);
	assert_int_equal(run(c, "blockdev-add", KATA_ADD, "ro1", "true", c->img2), 0);
	assert_int_equal(run(c, "blockdev-add", KATA_ADD, "ro2", "true", c->img2), 0);
	assert_int_equal(run(c, "device_add",
			     "{'id':'r','driver':'virtio-blk-device','drive':'ro2','addr':3}"),
			 0);
	assert_true(c->fake.last.readonly);
	assert_int_equal(fcntl(c->fake.last.fd, F_GETFL) & O_ACCMODE, O_RDONLY);
}

static void test_device_add_errors(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(run(c, "blockdev-add", KATA_ADD, "n", "false", c->img), 0);
	EXPECT_FAIL(c, "Parameter 'driver' is missing", "device_add", NULL);
	EXPECT_FAIL(c, "Parameter 'id' is missing", "device_add",
		    "{'driver':'virtio-blk-mmio','drive':'n'}");
	EXPECT_FAIL(c, "Parameter 'drive' is missing", "device_add",
		    "{'driver':'virtio-blk-mmio','id':'d'}");
	EXPECT_FAIL(c, "'virtio-net-mmio' cannot be hot-plugged", "device_add",
		    "{'driver':'virtio-net-mmio','id':'d','drive':'n'}");
	EXPECT_FAIL(c, "no block node 'zz'", "device_add",
		    "{'driver':'virtio-blk-mmio','id':'d','drive':'zz'}");
	EXPECT_FAIL(c, "Parameter 'addr' expects a slot number", "device_add",
		    "{'driver':'virtio-blk-mmio','id':'d','drive':'n','addr':'x'}");
	EXPECT_FAIL(c, "Parameter 'addr' expects a slot number", "device_add",
		    "{'driver':'virtio-blk-mmio','id':'d','drive':'n','addr':'-1'}");
	EXPECT_FAIL(c, "Parameter 'addr' expects a slot number", "device_add",
		    "{'driver':'virtio-blk-mmio','id':'d','drive':'n','addr':99}");
	EXPECT_FAIL(c, "Parameter 'addr' expects a slot number", "device_add",
		    "{'driver':'virtio-blk-mmio','id':'d','drive':'n','addr':true}");
	EXPECT_FAIL(c, "Parameter 'romfile' is unexpected", "device_add",
		    "{'driver':'virtio-blk-mmio','id':'d','drive':'n','romfile':''}");
	EXPECT_FAIL(c, "Parameter 'id' expects 1 to", "device_add",
		    "{'driver':'virtio-blk-mmio','id':'','drive':'n'}");
	c->fake.fail_attach = 1;
	EXPECT_FAIL(c, "addr 2: the slot is in use", "device_add",
		    "{'driver':'virtio-blk-mmio','id':'d','drive':'n','addr':'0x2'}");
	c->fake.fail_attach = 0;
	assert_int_equal(c->fake.attached, 0);
	assert_int_equal(run(c, "device_add", "{'driver':'virtio-blk-mmio','id':'d','drive':'n'}"),
			 0);
	assert_int_equal(c->fake.last.slot, -1); /* no addr: the first free slot */
	EXPECT_FAIL(c, "Parameter 'id' is missing", "device_del", "{}");
	EXPECT_FAIL(c, "Parameter 'id' is missing", "device_del", NULL);
	EXPECT_FAIL(c, "Device 'other' not found", "device_del", "{'id':'other'}");
	EXPECT_FAIL(c, "Parameter 'node-name' is missing", "blockdev-del", "{}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kata_conversation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blockdev_add_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_add_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
