/*
 * Unit tests for vmm/bus.c (address dispatch) and vmm/event_loop.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <cmocka.h>

#include "bus.h"
#include "event_loop.h"

struct access_log {
	uint64_t offset;
	uint32_t len;
	bool is_write;
	int calls;
};

static void record(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct access_log *log = opaque;

	log->offset = offset;
	log->len = len;
	log->is_write = is_write;
	log->calls++;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void test_dispatch(void **state)
{
	struct access_log a = { 0 }, b = { 0 };
	struct bus bus;
	uint8_t data[8];

	(void)state;
	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x3f8, 8, record, &a, "a"), 0);
	assert_int_equal(bus_register(&bus, 0x60, 5, record, &b, "b"), 0);
	assert_true(bus_access(&bus, 0x3fd, data, 1, false));
	assert_int_equal(a.offset, 5);
	assert_int_equal(data[0], 0x5a);
	assert_true(bus_access(&bus, 0x64, data, 1, true));
	assert_int_equal(b.offset, 4);
	assert_true(b.is_write);
	/* Unclaimed: reads all-ones, nobody called. */
	memset(data, 0, sizeof(data));
	assert_false(bus_access(&bus, 0x70, data, 4, false));
	assert_int_equal(data[0], 0xff);
	assert_int_equal(data[3], 0xff);
	/* Straddling the end of a range is not that device's. */
	assert_false(bus_access(&bus, 0x3ff, data, 2, false));
	assert_int_equal(a.calls, 1);
	bus_destroy(&bus);
}

static void test_overlap_and_unregister(void **state)
{
	struct access_log a = { 0 };
	struct bus bus;
	uint8_t data[1];

	(void)state;
	bus_init(&bus, "test");
	assert_int_equal(bus_register(&bus, 0x1000, 0x1000, record, &a, "a"), 0);
	assert_int_equal(bus_register(&bus, 0x1fff, 2, record, &a, "x"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x800, 0x801, record, &a, "x"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0, 0, record, &a, "x"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 2, record, &a, "x"), -EINVAL);
	assert_int_equal(bus_register(&bus, 0x2000, 1, record, &a, "b"), 0);
	assert_int_equal(bus_unregister(&bus, 0x1000), 0);
	assert_false(bus_access(&bus, 0x1000, data, 1, false));
	assert_true(bus_access(&bus, 0x2000, data, 1, false));
	assert_int_equal(bus_unregister(&bus, 0x1000), -ENOENT);
	bus_destroy(&bus);
}

struct loop_ctx {
	struct event_loop *loop;
	int fd;
	int fired;
};

static void on_event(void *opaque, uint32_t events)
{
	struct loop_ctx *ctx = opaque;
	uint64_t v;

	(void)events;
	assert_int_equal(read(ctx->fd, &v, sizeof(v)), sizeof(v));
	ctx->fired++;
	/* A callback may remove itself and stop the loop. */
	assert_int_equal(event_loop_remove(ctx->loop, ctx->fd), 0);
	event_loop_stop(ctx->loop);
}

static void test_event_loop(void **state)
{
	struct loop_ctx ctx = { 0 };
	uint64_t one = 1;

	(void)state;
	assert_int_equal(event_loop_create(&ctx.loop), 0);
	ctx.fd = eventfd(0, EFD_NONBLOCK);
	assert_int_equal(event_loop_add(ctx.loop, ctx.fd, EPOLLIN, on_event, &ctx), 0);
	assert_int_equal(event_loop_add(ctx.loop, ctx.fd, EPOLLIN, on_event, &ctx), -EEXIST);
	assert_int_equal(write(ctx.fd, &one, sizeof(one)), sizeof(one));
	assert_int_equal(event_loop_run(ctx.loop), 0);
	assert_int_equal(ctx.fired, 1);
	assert_int_equal(event_loop_remove(ctx.loop, ctx.fd), -ENOENT);
	event_loop_destroy(ctx.loop);
	close(ctx.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_overlap_and_unregister),
		cmocka_unit_test(test_event_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
