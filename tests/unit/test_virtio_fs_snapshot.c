/*
 * Unit tests for virtio-fs in snapshots and for slots (vmm/devices/virtio/fs.c,
 * docs/snapshots.md "virtio-fs"), through the fake driver, no KVM: a share the guest never
 * used saves, one it sent FUSE_INIT to (or merely queued a request on) is refused naming the
 * device; a restore refuses another tag at the position, a slot the guest used given a share,
 * and a malformed section. A slot (no source) answers every request ENODEV and a FORGET with
 * nothing, survives hostile chains, and is always saved.
 */
#include <linux/virtio_mmio.h>

#include "virtio_fs_fake_guest.h"

static int setup_slot(void **state)
{
	struct fs_test *t = calloc(1, sizeof(*t));
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_FS };
	struct virtio_device *dev;
	struct error err = { 0 };

	assert_non_null(t);
	/* teardown() removes these; the slot itself shares nothing. */
	snprintf(t->root, sizeof(t->root), "/tmp/stratus-fs-test.XXXXXX");
	snprintf(t->outside, sizeof(t->outside), "/tmp/stratus-fs-outside.XXXXXX");
	assert_non_null(mkdtemp(t->root));
	assert_non_null(mkdtemp(t->outside));
	snprintf(spec.id, sizeof(spec.id), "m0");
	snprintf(spec.fs_tag, sizeof(spec.fs_tag), "m0");
	if (virtio_fs_new(&spec, &dev, &err) < 0)
		fail_msg("virtio_fs_new: %s", err.msg);
	assert_int_equal(fake_driver_init(&t->d, dev, RAM_SIZE), 0);
	bring_up(t);
	*state = t;
	return 0;
}

static void expect_error(const struct error *err, const char *what)
{
	if (!strstr(err->msg, what))
		fail_msg("expected '%s' in '%s'", what, err->msg);
}

static struct virtio_fs_state saved_state(const char *tag, uint32_t flags)
{
	struct virtio_fs_state s = { .flags = flags };

	snprintf(s.tag, sizeof(s.tag), "%s", tag);
	return s;
}

/* Brought up (DRIVER_OK, queues ready) but never mounted: saved, as a share. */
static void test_share_unused_saves(void **state)
{
	struct fs_test *t = *state;
	struct virtio_fs_state s;
	struct error err = { 0 };

	assert_int_equal(virtio_fs_save(t->d.dev, &s, &err), 0);
	assert_string_equal(s.tag, "myfs");
	assert_int_equal(s.flags, 0);
	assert_int_equal(s.reserved, 0);
	/* Restored onto the same configuration: accepted. */
	assert_int_equal(virtio_fs_check_restore(t->d.dev, &s, "/x.snap", &err), 0);
}

/* FUSE_INIT answered: the session would be unknown to a clone's server. */
static void test_share_in_use_refused(void **state)
{
	struct fs_test *t = *state;
	struct virtio_fs_state s;
	struct error err = { 0 };

	init_fuse(t, 37);
	assert_int_equal(virtio_fs_save(t->d.dev, &s, &err), -EBUSY);
	expect_error(&err, "virtio-fs device 'fs0' (tag 'myfs'): the guest has used the share");
}

/* A request only queued (not yet served) is in flight: refused too. */
static void test_share_queued_refused(void **state)
{
	struct fs_test *t = *state;
	struct virtio_fs_state s;
	struct error err = { 0 };
	uint32_t len = build(t, FUSE_INIT, 0, NULL, 0);
	struct fake_buf bufs[2] = { { t->req_gpa, len, false }, { t->reply_gpa, 4096, true } };

	fake_add_chain(&t->d, REQUESTQ, 0, bufs, 2); /* no kick: nothing served yet */
	assert_int_equal(fake_used_idx(&t->d, REQUESTQ), 0);
	assert_int_equal(virtio_fs_save(t->d.dev, &s, &err), -EBUSY);
	expect_error(&err, "tag 'myfs'");
}

static void test_restore_refusals(void **state)
{
	struct fs_test *t = *state;
	struct virtio_fs_state s;
	struct error err = { 0 };

	s = saved_state("other", 0);
	assert_int_equal(virtio_fs_check_restore(t->d.dev, &s, "/x.snap", &err), -EINVAL);
	expect_error(&err, "(virtio-fs 'fs0'): tag 'myfs', but the snapshot /x.snap has tag "
			   "'other' at this position");

	/* Same tag, longer: not the same tag (the guest read every byte). */
	memset(&err, 0, sizeof(err));
	s = saved_state("myfs2", VIRTIO_FS_STATE_SLOT);
	assert_int_equal(virtio_fs_check_restore(t->d.dev, &s, "/x.snap", &err), -EINVAL);

	/* A slot the guest tried to mount cannot become a share: its rings are used. */
	memset(&err, 0, sizeof(err));
	s = saved_state("myfs", VIRTIO_FS_STATE_SLOT | VIRTIO_FS_STATE_USED);
	assert_int_equal(virtio_fs_check_restore(t->d.dev, &s, "/x.snap", &err), -EINVAL);
	expect_error(&err, "already tried to mount slot 'myfs'; it can only stay a slot");

	/* An unused slot may (that is what slots are for). */
	memset(&err, 0, sizeof(err));
	s = saved_state("myfs", VIRTIO_FS_STATE_SLOT);
	assert_int_equal(virtio_fs_check_restore(t->d.dev, &s, "/x.snap", &err), 0);

	/* Unknown flags or reserved bits: malformed. */
	s = saved_state("myfs", 1u << 7);
	assert_int_equal(virtio_fs_check_restore(t->d.dev, &s, "/x.snap", &err), -EBADMSG);
	expect_error(&err, "/x.snap: snapshot virtio-fs state is malformed");
	memset(&err, 0, sizeof(err));
	s = saved_state("myfs", 0);
	s.reserved = 1;
	assert_int_equal(virtio_fs_check_restore(t->d.dev, &s, "/x.snap", &err), -EBADMSG);
	/* A tag without its NUL (hostile file) is just another tag. */
	memset(&err, 0, sizeof(err));
	s = saved_state("", 0);
	memset(s.tag, 'A', sizeof(s.tag));
	assert_int_equal(virtio_fs_check_restore(t->d.dev, &s, "/x.snap", &err), -EINVAL);
}

/* A slot: every request gets ENODEV at once (a mount fails instead of hanging). */
static void test_slot_answers_enodev(void **state)
{
	struct fs_test *t = *state;
	struct virtio_fs_state s;
	struct error err = { 0 };
	struct fuse_init_in in = { .major = 7, .minor = 37 };
	struct fuse_forget_in fin = { .nlookup = 1 };
	struct part p = ARG(in), pf = ARG(fin), name = NAME("x");
	struct virtio_fs_config c;
	uint32_t len;

	/* The tag is in the configuration space as for a share. */
	bus_access(&t->d.bus, FAKE_MMIO_BASE + VIRTIO_MMIO_CONFIG, (uint8_t *)&c, sizeof(c), false);
	assert_memory_equal(c.tag, "m0\0", 3);
	assert_int_equal(c.num_request_queues, 1);

	assert_int_equal(virtio_fs_save(t->d.dev, &s, &err), 0);
	assert_int_equal(s.flags, VIRTIO_FS_STATE_SLOT);

	assert_int_equal(call(t, FUSE_INIT, 0, &p, 1), -ENODEV);
	assert_int_equal(t->len, 0);
	assert_int_equal(call(t, FUSE_LOOKUP, 1, &name, 1), -ENODEV);
	/* FORGET on hiprio: used, with nothing written (FUSE has no reply to it). */
	len = build(t, FUSE_FORGET, 1, &pf, 1);
	assert_int_equal(submit(t, HIPRIO, &(struct fake_buf){ t->req_gpa, len, false }, 1), 0);

	/* Hostile chains: a header cut short, no room for the reply: used with nothing. */
	assert_int_equal(submit(t, REQUESTQ, &(struct fake_buf){ t->req_gpa, 10, false }, 1), 0);
	assert_int_equal(call_room(t, FUSE_GETATTR, 1, NULL, 0, 8), 1);
	assert_int_equal(t->used, 0);

	/* Saved still (a slot always is), marked used: a restore keeps it a slot. */
	memset(&err, 0, sizeof(err));
	assert_int_equal(virtio_fs_save(t->d.dev, &s, &err), 0);
	assert_int_equal(s.flags, VIRTIO_FS_STATE_SLOT | VIRTIO_FS_STATE_USED);
	assert_string_equal(s.tag, "m0");
	assert_int_equal(virtio_fs_check_restore(t->d.dev, &s, "/x.snap", &err), 0);
}

/* A full queue of requests at once: all answered, a queue's worth per round. */
static void test_slot_many_requests(void **state)
{
	struct fs_test *t = *state;
	uint32_t len = build(t, FUSE_GETATTR, 1, NULL, 0);
	struct fake_buf bufs[2] = { { t->req_gpa, len, false }, { t->reply_gpa, 64, true } };
	unsigned int i, n = 0;
	uint32_t id, used;

	for (i = 0; i < QSIZE / 2; i++)
		fake_add_chain(&t->d, REQUESTQ, i * 2, bufs, 2);
	fake_kick(&t->d, REQUESTQ);
	while (fake_pop_used(&t->d, REQUESTQ, &id, &used)) {
		assert_int_equal(used, sizeof(struct fuse_out_header));
		n++;
	}
	assert_int_equal(n, QSIZE / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_share_unused_saves, setup_uninit, teardown),
		cmocka_unit_test_setup_teardown(test_share_in_use_refused, setup_uninit, teardown),
		cmocka_unit_test_setup_teardown(test_share_queued_refused, setup_uninit, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refusals, setup_uninit, teardown),
		cmocka_unit_test_setup_teardown(test_slot_answers_enodev, setup_slot, teardown),
		cmocka_unit_test_setup_teardown(test_slot_many_requests, setup_slot, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
