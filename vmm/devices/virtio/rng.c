/*
 * virtio-rng, the entropy device (virtio 1.2 §5.4): device ID 4, no feature bits, no
 * configuration space, one queue (requestq) of device-writable buffers that we fill from
 * getrandom(2). The guest sees it as /dev/hwrng (Linux virtio_rng, "virtio_rng.0").
 *
 * A hostile guest must not turn this into a way to make the VMM work without bound: each
 * request gets at most RNG_MAX_PER_REQUEST bytes (§5.4.6.1 lets the device fill less than
 * the whole buffer; the used length says how much), and one notification processes at most
 * RNG_MAX_PER_ROUND bytes before yielding the event loop and coming back for the rest.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "../../device.h"
#include "../../log.h"
#include "../../vm.h"
#include "mmio.h"
#include "virtio.h"

#define RNG_QUEUE_SIZE	    256
#define RNG_MAX_PER_REQUEST KIB(64)
#define RNG_MAX_PER_ROUND   KIB(256)

struct virtio_rng {
	struct virtio_device dev;
	char name[VM_DEVICE_ID_MAX + 16];
	struct iovec iov[RNG_QUEUE_SIZE];
	uint64_t requests, bytes; /* served, for the debug log */
};

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

/* Fill the writable part of a chain, up to the per-request cap; returns the bytes written. */
static uint32_t rng_request(const struct virtq_chain *chain)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < chain->nr_in && done < RNG_MAX_PER_REQUEST; i++) {
		size_t want = MIN(chain->in[i].iov_len, RNG_MAX_PER_REQUEST - done);
		size_t got = rng_fill(chain->in[i].iov_base, want);

		done += got;
		if (got < want)
			break;
	}
	return done;
}

static void rng_queue_notify(struct virtio_device *dev, unsigned int q)
{
	struct virtio_rng *rng = container_of(dev, struct virtio_rng, dev);
	struct virtq *vq = &dev->queues[q];
	struct virtq_chain chain;
	unsigned int chains = 0;
	uint64_t bytes = 0;

	virtq_chain_init(&chain, rng->iov, ARRAY_SIZE(rng->iov));
	while (chains < vq->size && bytes < RNG_MAX_PER_ROUND && virtq_pop_chain(vq, &chain) > 0) {
		uint32_t len = rng_request(&chain);

		virtq_push_used(vq, chain.head, len);
		bytes += len;
		chains++;
	}
	rng->requests += chains;
	rng->bytes += bytes;
	virtio_device_notify_used(dev, q);
	/* A bad chain stops the loop too; the transport sees vq->broken and fails the device. */
	if (!vq->broken && (chains >= vq->size || bytes >= RNG_MAX_PER_ROUND))
		virtio_device_queue_kick(dev, q); /* more may be waiting: after other events */
}

static void rng_destroy(struct virtio_device *dev)
{
	struct virtio_rng *rng = container_of(dev, struct virtio_rng, dev);

	log_debug("%s: served %llu requests, %llu bytes", dev->name,
		  (unsigned long long)rng->requests, (unsigned long long)rng->bytes);
	free(rng);
}

static const struct virtio_device_ops rng_ops = {
	.queue_notify = rng_queue_notify,
	.destroy = rng_destroy,
};

int virtio_rng_new(const char *name, struct virtio_device **out)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));

	if (!rng)
		return -ENOMEM;
	snprintf(rng->name, sizeof(rng->name), "%s", name && *name ? name : "virtio-rng");
	rng->dev.name = rng->name;
	rng->dev.device_id = VIRTIO_ID_RNG;
	rng->dev.nr_queues = 1;
	rng->dev.queue_max_size[0] = RNG_QUEUE_SIZE;
	rng->dev.ops = &rng_ops;
	*out = &rng->dev;
	return 0;
}

static int rng_create(struct vm *vm, const struct vm_device_config *spec,
		      struct virtio_device **out, struct error *err)
{
	int r = virtio_rng_new(spec->id, out);

	(void)vm;
	return r < 0 ? error_set(err, r, "virtio-rng: out of memory") : 0;
}

/* One virtio-rng per "-device virtio-rng-device", in command-line order. */
static int rng_init(struct vm *vm, struct error *err)
{
	return virtio_mmio_vm_attach_all(vm, VM_DEVICE_VIRTIO_RNG, rng_create, NULL, err);
}

static const struct device_ops rng_device = {
	.name = "virtio-rng",
	.level = DEVICE_LEVEL_VIRTIO,
	.init = rng_init,
};
DEVICE_REGISTER(rng_device);
