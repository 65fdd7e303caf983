/*
 * Unit tests for virtio-rng's rate limit (vmm/devices/virtio/rng.c, rng.h), driven by the
 * fake driver: a guest that asks for more than the bucket holds waits (its requests stay
 * available, the timerfd says when to go on), is never answered empty, and over any
 * interval gets at most burst + rate * time bytes. The bounds are checked against the
 * clock, so a slow machine makes them looser, never false.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <linux/virtio_config.h>

#include "devices/virtio/rng.h"
#include "virtio_fake_driver.h"

#define RAM_SIZE MIB(4)
#define F_V1	 (1ULL << VIRTIO_F_VERSION_1)
#define S_FEAT	 (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)
#define WAIT_MS	 30000 /* generous: the machine may be loaded */

struct rng_test {
	struct fake_driver d;
	struct timespec start; /* when the bucket was last full */
};

static int setup(void **state)
{
	struct rng_test *t = calloc(1, sizeof(*t));
	struct virtio_device *dev;

	assert_non_null(t);
	assert_int_equal(virtio_rng_new("rng0", &dev), 0);
	assert_int_equal(fake_driver_init(&t->d, dev, RAM_SIZE), 0);
	assert_int_equal(fake_negotiate(&t->d, F_V1), S_FEAT);
	assert_int_equal(fake_setup_queue(&t->d, 0, 64), 1);
	assert_int_equal(fake_driver_ok(&t->d), S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct rng_test *t = *state;

	fake_driver_destroy(&t->d);
	free(t);
	return 0;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

static void set_rate(struct rng_test *t, uint64_t rate, uint64_t burst)
{
	clock_gettime(CLOCK_MONOTONIC, &t->start);
	assert_int_equal(virtio_rng_set_rate(t->d.dev, rate, burst), 0);
}

/* A request for len bytes in one writable descriptor at slot. */
static void request(struct rng_test *t, uint16_t slot, uint32_t len)
{
	uint64_t buf = fake_alloc(&t->d, len, 64);

	assert_int_not_equal(buf, 0);
	fake_set_desc(&t->d, 0, slot, buf, len, VRING_DESC_F_WRITE, 0);
	fake_make_avail(&t->d, 0, slot);
}

/* Collect what was used: every answer has bytes in it; returns the bytes. */
static uint64_t collect(struct rng_test *t, unsigned int *done)
{
	uint64_t bytes = 0;
	uint32_t id, len;

	while (fake_pop_used(&t->d, 0, &id, &len)) {
		assert_true(len > 0);
		bytes += len;
		(*done)++;
	}
	return bytes;
}

/* What the bucket may have given since it was full (one byte of rounding slack). */
static void assert_within_rate(struct rng_test *t, uint64_t bytes, uint64_t rate, uint64_t burst)
{
	double bound = (double)burst + (double)rate * seconds_since(&t->start) + 1;

	assert_true((double)bytes <= bound);
}

/* Wait for the timer, let it kick the queue, run the queue. Returns false on a timeout. */
static bool wait_timer(struct rng_test *t, int timeout_ms)
{
	int fd = virtio_rng_timer_fd(t->d.dev);
	bool ready = false;

	fake_driver_poll_round(&t->d, fd, timeout_ms, &ready);
	if (!ready)
		return false;
	virtio_rng_timer_expired(t->d.dev);
	fake_driver_pump(&t->d);
	return true;
}

static void test_rate_bounds(void **state)
{
	struct rng_test *t = *state;
	struct virtio_device *dev = t->d.dev;

	assert_int_equal(virtio_rng_set_rate(dev, 63, 4096), -EINVAL);
	assert_int_equal(virtio_rng_set_rate(dev, VIRTIO_RNG_MIN_BYTES_PER_SEC, 1), 0);
	assert_int_equal(virtio_rng_set_rate(dev, 4096, 0), -EINVAL);
	assert_int_equal(virtio_rng_set_rate(dev, VIRTIO_RNG_MAX_BYTES_PER_SEC + 1, 4096), -EINVAL);
	assert_int_equal(virtio_rng_set_rate(dev, VIRTIO_RNG_MAX_BYTES_PER_SEC,
					     VIRTIO_RNG_MAX_BYTES_PER_SEC),
			 0);
}

/*
 * 1000 bytes/s, a 4 KiB burst, four 4 KiB requests: the first is served whole at once, the
 * others wait for the timer and are served in part as the bucket refills (§5.4.6.1), none
 * empty, and never faster than the rate.
 */
static void test_empty_bucket_waits(void **state)
{
	struct rng_test *t = *state;
	unsigned int i, done = 0, rounds = 0;
	uint64_t bytes;
	uint32_t id, len;

	set_rate(t, 1000, 4096);
	for (i = 0; i < 4; i++)
		request(t, i, 4096);
	fake_kick(&t->d, 0);
	assert_true(fake_pop_used(&t->d, 0, &id, &len));
	assert_int_equal(id, 0);
	assert_int_equal(len, 4096);
	done = 1;
	bytes = 4096 + collect(t, &done);
	assert_within_rate(t, bytes, 1000, 4096);
	/* The rest come through the timer, each at least the grant (rate / 100 bytes). */
	while (done < 4) {
		assert_true(wait_timer(t, WAIT_MS));
		bytes += collect(t, &done);
		assert_within_rate(t, bytes, 1000, 4096);
		assert_true(++rounds < 1000);
	}
}

/* A higher rate: many requests over several timer rounds stay within burst + rate * t. */
static void test_sustained_rate(void **state)
{
	struct rng_test *t = *state;
	unsigned int i, done = 0;
	uint64_t bytes = 0;

	set_rate(t, 200000, 8192);
	for (i = 0; i < 48; i++)
		request(t, i, 4096);
	fake_kick(&t->d, 0);
	bytes += collect(t, &done);
	assert_true(done >= 2); /* the burst at once */
	assert_within_rate(t, bytes, 200000, 8192);
	while (done < 48) {
		assert_true(wait_timer(t, WAIT_MS));
		bytes += collect(t, &done);
		assert_within_rate(t, bytes, 200000, 8192);
	}
}

/* The default (1 MiB/s, 1 MiB burst) serves a booting guest at once, then limits it. */
static void test_default_limit(void **state)
{
	struct rng_test *t = *state;
	unsigned int i, done = 0;
	uint64_t bytes;

	clock_gettime(CLOCK_MONOTONIC, &t->start); /* the bucket was full at creation, earlier */
	for (i = 0; i < 16; i++)
		request(t, i, KIB(64));
	fake_kick(&t->d, 0);
	bytes = collect(t, &done);
	assert_int_equal(done, 16);
	assert_int_equal(bytes, VIRTIO_RNG_DEFAULT_BYTES_PER_SEC);
	for (i = 16; i < 20; i++)
		request(t, i, KIB(64));
	fake_kick(&t->d, 0);
	bytes += collect(t, &done);
	/* The 1 MiB burst was spent: what follows comes at the rate. */
	assert_within_rate(t, bytes, VIRTIO_RNG_DEFAULT_BYTES_PER_SEC,
			   VIRTIO_RNG_DEFAULT_BYTES_PER_SEC);
	while (done < 20) {
		assert_true(wait_timer(t, WAIT_MS));
		bytes += collect(t, &done);
		assert_within_rate(t, bytes, VIRTIO_RNG_DEFAULT_BYTES_PER_SEC,
				   VIRTIO_RNG_DEFAULT_BYTES_PER_SEC);
	}
}

/* A reset while the guest waits disarms the timer; the device works again afterwards. */
static void test_reset_while_waiting(void **state)
{
	struct rng_test *t = *state;
	unsigned int done = 0;
	bool ready = true;

	set_rate(t, 1000, 64);
	request(t, 0, 64);
	request(t, 1, 64);
	fake_kick(&t->d, 0);
	collect(t, &done);
	assert_int_equal(done, 1); /* the second waits for 10 bytes (10 ms) */
	fake_write(&t->d, VIRTIO_MMIO_STATUS, 0);
	fake_driver_poll_round(&t->d, virtio_rng_timer_fd(t->d.dev), 200, &ready);
	assert_false(ready);

	assert_int_equal(fake_negotiate(&t->d, F_V1), S_FEAT);
	assert_int_equal(fake_setup_queue(&t->d, 0, 64), 1);
	assert_int_equal(fake_driver_ok(&t->d), S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK);
	request(t, 0, 16);
	fake_kick(&t->d, 0);
	done = 0;
	collect(t, &done);
	while (!done) {
		assert_true(wait_timer(t, WAIT_MS));
		collect(t, &done);
	}
}

#define RNG_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		RNG_TEST(test_rate_bounds),	    RNG_TEST(test_empty_bucket_waits),
		RNG_TEST(test_sustained_rate),	    RNG_TEST(test_default_limit),
		RNG_TEST(test_reset_while_waiting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
