/*
 * virtio-rng, the entropy device (virtio 1.2 §5.4): device ID 4, no feature bits, no
 * configuration space, one queue (requestq) of device-writable buffers that we fill from
 * getrandom(2). The guest sees it as /dev/hwrng (Linux virtio_rng, "virtio_rng.0").
 *
 * A hostile guest must not turn this into a way to make the VMM work without bound: each
 * request gets at most RNG_MAX_PER_REQUEST bytes (§5.4.6.1 lets the device fill less than
 * the whole buffer; the used length says how much), and one notification processes at most
 * RNG_MAX_PER_ROUND bytes before yielding the event loop and coming back for the rest.
 *
 * Over time, a token bucket of bytes (rng.h) bounds the rate. A request is only taken off
 * the queue once the bucket holds a useful amount (RNG_GRANT_DIVISOR: about 10 ms of
 * refill); until then it stays in the available ring and a timerfd on the main loop says
 * when to look again. So an empty bucket delays requests, never answers them empty, never
 * blocks the loop, and no popped request is ever held across events (a snapshot or a reset
 * finds none in flight).
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../../device.h"
#include "../../event_loop.h"
#include "../../log.h"
#include "../../vm.h"
#include "mmio.h"
#include "rng.h"
#include "virtio.h"

#define RNG_QUEUE_SIZE	    256
#define RNG_MAX_PER_REQUEST KIB(64)
#define RNG_MAX_PER_ROUND   KIB(256)
#define RNG_GRANT_DIVISOR   100 /* wait for rate/100 bytes (10 ms), or the burst if smaller */
#define NSEC_PER_SEC	    1000000000ULL

struct rng_bucket {
	uint64_t rate;	 /* bytes per second */
	uint64_t burst;	 /* bytes, the bucket's size */
	uint64_t tokens; /* bytes */
	uint64_t last_ns;
	uint64_t carry; /* refill below one byte, in byte-nanoseconds per second */
};

struct virtio_rng {
	struct virtio_device dev;
	char name[VM_DEVICE_ID_MAX + 16];
	struct iovec iov[RNG_QUEUE_SIZE];
	struct rng_bucket bucket;
	int timer_fd;
	bool timer_armed;
	struct event_loop *loop;	 /* where timer_fd is watched, NULL if nowhere */
	uint64_t requests, bytes, waits; /* for the debug log */
};

static uint64_t rng_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void rng_bucket_refill(struct rng_bucket *b, uint64_t now)
{
	unsigned __int128 gained;

	if (now <= b->last_ns)
		return;
	gained = (unsigned __int128)(now - b->last_ns) * b->rate + b->carry;
	b->last_ns = now;
	if (gained / NSEC_PER_SEC >= b->burst - b->tokens) {
		b->tokens = b->burst;
		b->carry = 0;
		return;
	}
	b->tokens += (uint64_t)(gained / NSEC_PER_SEC);
	b->carry = (uint64_t)(gained % NSEC_PER_SEC);
}

/* The least the bucket must hold before a request is taken. */
static uint64_t rng_bucket_grant(const struct rng_bucket *b)
{
	return MAX(1ULL, MIN(b->burst, b->rate / RNG_GRANT_DIVISOR));
}

/* Nanoseconds until the bucket holds rng_bucket_grant() bytes (at least 1 ms). */
static uint64_t rng_bucket_wait_ns(const struct rng_bucket *b)
{
	uint64_t missing = rng_bucket_grant(b) - MIN(b->tokens, rng_bucket_grant(b));
	unsigned __int128 ns = (unsigned __int128)missing * NSEC_PER_SEC;

	ns = ns > b->carry ? ns - b->carry : 0;
	ns = (ns + b->rate - 1) / b->rate;
	return MAX((uint64_t)ns, 1000000ULL);
}

static void rng_arm_timer(struct virtio_rng *rng)
{
	uint64_t ns = rng_bucket_wait_ns(&rng->bucket);
	struct itimerspec when = { .it_value = { .tv_sec = (time_t)(ns / NSEC_PER_SEC),
						 .tv_nsec = (long)(ns % NSEC_PER_SEC) } };

	if (rng->timer_armed)
		return;
	if (timerfd_settime(rng->timer_fd, 0, &when, NULL) < 0) {
		log_once(LOG_WARN, "%s: timerfd_settime: %s", rng->name, strerror(errno));
		return;
	}
	rng->timer_armed = true;
	rng->waits++;
}

/* Fill up to max bytes of a buffer; returns how many were filled. */
static size_t rng_fill(void *buf, size_t max)
{
	size_t done = 0;

	while (done < max) {
		ssize_t n = getrandom((uint8_t *)buf + done, max - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_once(LOG_WARN, "virtio-rng: getrandom: %s", strerror(errno));
			break;
		}
		done += n;
	}
	return done;
}

/* Fill the writable part of a chain, up to limit bytes; returns the bytes written. */
static uint32_t rng_request(const struct virtq_chain *chain, size_t limit)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < chain->nr_in && done < limit; i++) {
		size_t want = MIN(chain->in[i].iov_len, limit - done);
		size_t got = rng_fill(chain->in[i].iov_base, want);

		done += got;
		if (got < want)
			break;
	}
	return done;
}

/* Take a request only if the bucket holds enough for it; else wait for the timer. */
static bool rng_may_take(struct virtio_rng *rng)
{
	struct rng_bucket *b = &rng->bucket;

	rng_bucket_refill(b, rng_now_ns());
	if (b->tokens >= rng_bucket_grant(b))
		return true;
	rng_arm_timer(rng);
	return false;
}

static void rng_queue_notify(struct virtio_device *dev, unsigned int q)
{
	struct virtio_rng *rng = container_of(dev, struct virtio_rng, dev);
	struct virtq *vq = &dev->queues[q];
	struct virtq_chain chain;
	unsigned int chains = 0;
	uint64_t bytes = 0;
	bool waiting = false;

	virtq_chain_init(&chain, rng->iov, ARRAY_SIZE(rng->iov));
	while (chains < vq->size && bytes < RNG_MAX_PER_ROUND) {
		uint32_t len;

		if (!rng_may_take(rng)) {
			waiting = true;
			break;
		}
		if (virtq_pop_chain(vq, &chain) <= 0)
			break;
		len = rng_request(&chain, MIN(RNG_MAX_PER_REQUEST, rng->bucket.tokens));
		rng->bucket.tokens -= len;
		virtq_push_used(vq, chain.head, len);
		bytes += len;
		chains++;
	}
	rng->requests += chains;
	rng->bytes += bytes;
	virtio_device_notify_used(dev, q);
	/* A bad chain stops the loop too; the transport sees vq->broken and fails the device. */
	if (!vq->broken && !waiting && (chains >= vq->size || bytes >= RNG_MAX_PER_ROUND))
		virtio_device_queue_kick(dev, q); /* more may be waiting: after other events */
}

int virtio_rng_timer_fd(struct virtio_device *dev)
{
	return container_of(dev, struct virtio_rng, dev)->timer_fd;
}

void virtio_rng_timer_expired(struct virtio_device *dev)
{
	struct virtio_rng *rng = container_of(dev, struct virtio_rng, dev);
	uint64_t expirations;

	if (read(rng->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_once(LOG_WARN, "%s: timerfd: %s", rng->name, strerror(errno));
	rng->timer_armed = false;
	virtio_device_queue_kick(dev, 0); /* through the transport, which checks the queue */
}

int virtio_rng_set_rate(struct virtio_device *dev, uint64_t bytes_per_sec, uint64_t burst)
{
	struct virtio_rng *rng = container_of(dev, struct virtio_rng, dev);

	if (bytes_per_sec < VIRTIO_RNG_MIN_BYTES_PER_SEC ||
	    bytes_per_sec > VIRTIO_RNG_MAX_BYTES_PER_SEC || burst < 1 ||
	    burst > VIRTIO_RNG_MAX_BYTES_PER_SEC)
		return -EINVAL;
	rng->bucket = (struct rng_bucket){
		.rate = bytes_per_sec,
		.burst = burst,
		.tokens = burst,
		.last_ns = rng_now_ns(),
	};
	return 0;
}

/* The driver reset the device: a pending wait is for a queue that is gone. */
static void rng_reset(struct virtio_device *dev)
{
	struct virtio_rng *rng = container_of(dev, struct virtio_rng, dev);
	struct itimerspec off = { 0 };

	if (rng->timer_armed && timerfd_settime(rng->timer_fd, 0, &off, NULL) == 0)
		rng->timer_armed = false;
}

static void rng_destroy(struct virtio_device *dev)
{
	struct virtio_rng *rng = container_of(dev, struct virtio_rng, dev);

	log_debug("%s: served %llu requests, %llu bytes; waited for the rate limit %llu times",
		  dev->name, (unsigned long long)rng->requests, (unsigned long long)rng->bytes,
		  (unsigned long long)rng->waits);
	if (rng->loop)
		event_loop_remove(rng->loop, rng->timer_fd);
	close(rng->timer_fd);
	free(rng);
}

static const struct virtio_device_ops rng_ops = {
	.queue_notify = rng_queue_notify,
	.reset = rng_reset,
	.destroy = rng_destroy,
};

int virtio_rng_new(const char *name, struct virtio_device **out)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));

	if (!rng)
		return -ENOMEM;
	rng->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (rng->timer_fd < 0) {
		int r = -errno;

		free(rng);
		return r;
	}
	snprintf(rng->name, sizeof(rng->name), "%s", name && *name ? name : "virtio-rng");
	rng->dev.name = rng->name;
	rng->dev.device_id = VIRTIO_ID_RNG;
	rng->dev.nr_queues = 1;
	rng->dev.queue_max_size[0] = RNG_QUEUE_SIZE;
	rng->dev.ops = &rng_ops;
	virtio_rng_set_rate(&rng->dev, VIRTIO_RNG_DEFAULT_BYTES_PER_SEC,
			    VIRTIO_RNG_DEFAULT_BYTES_PER_SEC);
	*out = &rng->dev;
	return 0;
}

static int rng_create(struct vm *vm, const struct vm_device_config *spec,
		      struct virtio_device **out, struct error *err)
{
	int r = virtio_rng_new(spec->id, out);

	(void)vm;
	if (r < 0)
		return error_set_errno(err, r, "virtio-rng: cannot create the device");
	if (spec->rng_bytes_per_sec)
		virtio_rng_set_rate(*out, spec->rng_bytes_per_sec, spec->rng_bytes_per_sec);
	return 0;
}

static void rng_on_timer(void *opaque, uint32_t events)
{
	(void)events;
	virtio_rng_timer_expired(opaque);
}

/* Once attached, the rate limit's timer joins the main loop (where the queue runs). */
static int rng_attached(struct vm *vm, struct virtio_device *dev, struct error *err)
{
	struct virtio_rng *rng = container_of(dev, struct virtio_rng, dev);
	int r = event_loop_add(vm->loop, rng->timer_fd, EPOLLIN, rng_on_timer, dev);

	if (r < 0)
		return error_set_errno(err, r, "%s: event loop", rng->name);
	rng->loop = vm->loop;
	return 0;
}

/* One virtio-rng per "-device virtio-rng-device", in command-line order. */
static int rng_init(struct vm *vm, struct error *err)
{
	return virtio_mmio_vm_attach_all(vm, VM_DEVICE_VIRTIO_RNG, rng_create, rng_attached, err);
}

static const struct device_ops rng_device = {
	.name = "virtio-rng",
	.level = DEVICE_LEVEL_VIRTIO,
	.init = rng_init,
};
DEVICE_REGISTER(rng_device);
