/*
 * virtio-mmio transport, version 2 (virtio 1.2 §4.2.2, §4.2.3), and the device-facing
 * helpers of virtio.h. Register accesses arrive on vCPU threads through the MMIO bus; queue
 * notifications arrive as eventfd events on the thread that runs the device's queues. One
 * mutex per device serialises the two, so a reset never races a queue being processed.
 *
 * The driver is hostile: every register write is checked against the state machine of
 * §3.1.1 (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, in that order; clearing bits only by
 * writing 0, which resets the device and every queue), FEATURES_OK is refused unless the
 * driver took VIRTIO_F_VERSION_1 and nothing we did not offer, queue registers are frozen
 * while the queue is ready, and ring addresses are checked when QueueReady is written.
 * Anything the driver gets wrong that leaves the device unusable sets DEVICE_NEEDS_RESET
 * (§2.1.2) rather than touching memory outside guest RAM or stopping the VMM.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <linux/virtio_mmio.h>

#include "../../log.h"
#include "mmio.h"

#define VIRTIO_MMIO_VERSION_MODERN 2
#define VIRTIO_MMIO_FAIL_LOG_MAX   8 /* failures logged per device; a guest can loop */

#define STATUS_DRIVER_BITS                                                                    \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | \
	 VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FAILED)

struct virtio_mmio_notifier {
	struct virtio_mmio *mmio;
	unsigned int index;
	int fd;
	bool watched;
	bool ioeventfd; /* KVM signals fd directly; else QueueNotify writes reach the bus */
};

struct virtio_mmio {
	struct virtio_device *dev;
	uint64_t base;
	unsigned int gsi;
	struct virtio_mmio_host host;
	pthread_mutex_t lock;
	int irq_fd;
	bool irqfd;
	struct virtio_mmio_notifier notifiers[VIRTIO_MAX_QUEUES];

	uint32_t status;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint32_t interrupt_status;  /* atomic: read by vCPUs, set by the queue thread */
	uint32_t *isr;		    /* &interrupt_status, or a word shared with another process */
	uint32_t config_generation; /* atomic */
	unsigned int failures;	    /* for the log only */
};

static uint64_t virtio_mmio_offered(const struct virtio_device *dev)
{
	return dev->features | VIRTIO_TRANSPORT_FEATURES;
}

static void virtio_mmio_interrupt(struct virtio_mmio *m, uint32_t reason)
{
	uint64_t one = 1;

	__atomic_fetch_or(m->isr, reason, __ATOMIC_SEQ_CST);
	if (write(m->irq_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_once(LOG_WARN, "virtio: cannot raise an interrupt: %s", strerror(errno));
}

void virtio_device_lock(struct virtio_device *dev)
{
	pthread_mutex_lock(&dev->transport->lock);
}

void virtio_device_unlock(struct virtio_device *dev)
{
	pthread_mutex_unlock(&dev->transport->lock);
}

void virtio_device_notify_used(struct virtio_device *dev, unsigned int q)
{
	struct virtq *vq;

	if (q >= dev->nr_queues)
		return;
	vq = &dev->queues[q];
	if (virtq_should_notify(vq))
		virtio_mmio_interrupt(dev->transport, VIRTIO_MMIO_INT_VRING);
	/* Chains popped outside a notification (e.g. host data for the guest) break it too. */
	if (vq->broken)
		virtio_device_fail(dev, "queue %u: %s", q, vq->error);
}

void virtio_device_queue_kick(struct virtio_device *dev, unsigned int q)
{
	uint64_t one = 1;

	if (q < dev->nr_queues && write(dev->transport->notifiers[q].fd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		log_once(LOG_WARN, "virtio: cannot kick a queue: %s", strerror(errno));
}

void virtio_device_config_changed(struct virtio_device *dev)
{
	struct virtio_mmio *m = dev->transport;

	__atomic_fetch_add(&m->config_generation, 1, __ATOMIC_SEQ_CST);
	if (m->status & VIRTIO_CONFIG_S_DRIVER_OK)
		virtio_mmio_interrupt(m, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_device_fail(struct virtio_device *dev, const char *fmt, ...)
{
	struct virtio_mmio *m = dev->transport;
	char reason[256];
	va_list ap;

	if (m->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	m->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (m->failures++ < VIRTIO_MMIO_FAIL_LOG_MAX)
		log_warn("%s: %s: device needs reset%s", dev->name, reason,
			 m->failures == VIRTIO_MMIO_FAIL_LOG_MAX ? " (not logged again)" : "");
	/* §2.1.2: with DRIVER_OK, tell the driver through a configuration change. */
	if (m->status & VIRTIO_CONFIG_S_DRIVER_OK)
		virtio_mmio_interrupt(m, VIRTIO_MMIO_INT_CONFIG);
}

/* Queue processing, on the thread that watches the queue's eventfd. */
static void virtio_mmio_run_queue(struct virtio_mmio *m, unsigned int q)
{
	struct virtio_device *dev = m->dev;
	struct virtq *vq = &dev->queues[q];

	/* §2.1.2 / §3.1: nothing before DRIVER_OK, nothing once the device needs a reset. */
	if (!(m->status & VIRTIO_CONFIG_S_DRIVER_OK) || (m->status & VIRTIO_CONFIG_S_NEEDS_RESET) ||
	    !vq->ready || vq->broken)
		return;
	dev->ops->queue_notify(dev, q);
	if (vq->broken)
		virtio_device_fail(dev, "queue %u: %s", q, vq->error);
}

static void virtio_mmio_on_notify(void *arg, uint32_t events)
{
	struct virtio_mmio_notifier *n = arg;
	struct virtio_mmio *m = n->mmio;
	uint64_t count;

	(void)events;
	if (read(n->fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_once(LOG_WARN, "virtio: queue notification: %s", strerror(errno));
	pthread_mutex_lock(&m->lock);
	virtio_mmio_run_queue(m, n->index);
	pthread_mutex_unlock(&m->lock);
}

static void virtio_mmio_ioeventfd(struct virtio_mmio *m, unsigned int q, bool assign)
{
	struct virtio_mmio_notifier *n = &m->notifiers[q];
	int r;

	if (!m->host.ioeventfd || n->ioeventfd == assign)
		return;
	r = m->host.ioeventfd(m->host.opaque, n->fd, m->base + VIRTIO_MMIO_QUEUE_NOTIFY, q, assign);
	if (r < 0) {
		/* Not fatal: QueueNotify writes then exit to us and take the bus path. */
		log_once(LOG_WARN, "virtio: ioeventfd: %s; notifications go through MMIO exits",
			 strerror(-r));
		return;
	}
	n->ioeventfd = assign;
}

static void virtio_mmio_reset(struct virtio_mmio *m)
{
	struct virtio_device *dev = m->dev;
	unsigned int q;

	if (dev->ops->reset)
		dev->ops->reset(dev);
	for (q = 0; q < dev->nr_queues; q++) {
		virtio_mmio_ioeventfd(m, q, false);
		virtq_reset(&dev->queues[q]);
	}
	dev->driver_features = 0;
	m->status = 0;
	m->device_features_sel = m->driver_features_sel = m->queue_sel = 0;
	__atomic_store_n(m->isr, 0, __ATOMIC_SEQ_CST);
}

static bool virtio_mmio_features_ok(struct virtio_mmio *m)
{
	struct virtio_device *dev = m->dev;
	uint64_t extra = dev->driver_features & ~virtio_mmio_offered(dev);

	if (extra) {
		log_debug("%s: driver accepted features 0x%llx the device did not offer", dev->name,
			  (unsigned long long)extra);
		return false;
	}
	/* Linux refuses a version 2 device without it; so do we, the other way round. */
	if (!virtio_device_has_feature(dev, VIRTIO_F_VERSION_1)) {
		log_debug("%s: driver did not accept VIRTIO_F_VERSION_1", dev->name);
		return false;
	}
	return true;
}

static void virtio_mmio_driver_ok(struct virtio_mmio *m)
{
	struct virtio_device *dev = m->dev;
	unsigned int q;

	log_debug("%s: driver ready, features 0x%llx", dev->name,
		  (unsigned long long)dev->driver_features);
	if (dev->ops->activate && dev->ops->activate(dev) < 0) {
		virtio_device_fail(dev, "cannot activate the device");
		return;
	}
	/* Buffers made available before DRIVER_OK were not processed: look now. */
	for (q = 0; q < dev->nr_queues; q++)
		if (dev->queues[q].ready)
			virtio_device_queue_kick(dev, q);
}

/* Status writes (§2.1, §3.1.1): bits are only added, in order; 0 resets the device. */
static void virtio_mmio_set_status(struct virtio_mmio *m, uint32_t value)
{
	uint32_t old = m->status, add;

	if (value == 0) {
		if (old)
			log_debug("%s: reset by the driver", m->dev->name);
		virtio_mmio_reset(m);
		return;
	}
	value &= STATUS_DRIVER_BITS;
	if (old & STATUS_DRIVER_BITS & ~value) {
		log_once(LOG_WARN, "%s: driver cleared status bits without a reset: ignored",
			 m->dev->name);
		return;
	}
	add = value & ~old;
	if ((add & VIRTIO_CONFIG_S_DRIVER) && !(old & VIRTIO_CONFIG_S_ACKNOWLEDGE) &&
	    !(add & VIRTIO_CONFIG_S_ACKNOWLEDGE))
		add &= ~VIRTIO_CONFIG_S_DRIVER;
	if ((add & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    (!((old | add) & VIRTIO_CONFIG_S_DRIVER) || !virtio_mmio_features_ok(m)))
		add &= ~VIRTIO_CONFIG_S_FEATURES_OK; /* the driver reads it back (§3.1.1) */
	if ((add & VIRTIO_CONFIG_S_DRIVER_OK) && !((old | add) & VIRTIO_CONFIG_S_FEATURES_OK))
		add &= ~VIRTIO_CONFIG_S_DRIVER_OK;
	m->status = old | add;
	if ((add & VIRTIO_CONFIG_S_DRIVER_OK) && !(m->status & VIRTIO_CONFIG_S_NEEDS_RESET))
		virtio_mmio_driver_ok(m);
}

static struct virtq *virtio_mmio_selected(struct virtio_mmio *m)
{
	return m->queue_sel < m->dev->nr_queues ? &m->dev->queues[m->queue_sel] : NULL;
}

static void virtio_mmio_queue_ready(struct virtio_mmio *m, struct virtq *vq, uint32_t value)
{
	struct virtio_device *dev = m->dev;
	unsigned int q = vq - dev->queues;

	if (!value) {
		virtio_mmio_ioeventfd(m, q, false);
		virtq_disable(vq);
		return;
	}
	if (vq->ready)
		return;
	if (!(m->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
		virtio_device_fail(dev, "queue %u enabled before FEATURES_OK", q);
		return;
	}
	if (m->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	if (virtq_enable(vq, dev->driver_features) < 0) {
		virtio_device_fail(dev, "queue %u: %s", q, vq->error);
		return;
	}
	log_debug("%s: queue %u ready, %u entries", dev->name, q, vq->size);
	virtio_mmio_ioeventfd(m, q, true);
}

/* The bus path for QueueNotify: no ioeventfd matched this write. */
static void virtio_mmio_queue_notify(struct virtio_mmio *m, uint32_t value)
{
	/* Without VIRTIO_F_NOTIFICATION_DATA the value is the queue index (§4.2.2). */
	if (value < m->dev->nr_queues)
		virtio_device_queue_kick(m->dev, value);
}

static void virtio_mmio_set_half(uint64_t *field, bool high, uint32_t value)
{
	if (high)
		*field = (*field & 0xffffffffULL) | ((uint64_t)value << 32);
	else
		*field = (*field & ~0xffffffffULL) | value;
}

/* Queue configuration registers: frozen while the queue is ready (§4.2.2). */
static void virtio_mmio_write_queue_reg(struct virtio_mmio *m, uint64_t offset, uint32_t value)
{
	struct virtq *vq = virtio_mmio_selected(m);

	if (!vq || vq->ready)
		return;
	switch (offset) {
	case VIRTIO_MMIO_QUEUE_NUM:
		/* Out of range becomes 0, which QueueReady then refuses. */
		vq->size = value <= vq->max_size ? value : 0;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		virtio_mmio_set_half(&vq->desc_gpa, offset & 4, value);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		virtio_mmio_set_half(&vq->avail_gpa, offset & 4, value);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		virtio_mmio_set_half(&vq->used_gpa, offset & 4, value);
		break;
	}
}

static void virtio_mmio_write_reg(struct virtio_mmio *m, uint64_t offset, uint32_t value)
{
	struct virtio_device *dev = m->dev;
	struct virtq *vq;

	switch (offset) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		m->device_features_sel = value;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (!(m->status & VIRTIO_CONFIG_S_FEATURES_OK) && m->driver_features_sel < 2)
			virtio_mmio_set_half(&dev->driver_features, m->driver_features_sel, value);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		m->driver_features_sel = value;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		m->queue_sel = value;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		vq = virtio_mmio_selected(m);
		if (vq)
			virtio_mmio_queue_ready(m, vq, value);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		virtio_mmio_queue_notify(m, value);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		__atomic_fetch_and(m->isr, ~value, __ATOMIC_SEQ_CST);
		break;
	case VIRTIO_MMIO_STATUS:
		virtio_mmio_set_status(m, value);
		break;
	default:
		virtio_mmio_write_queue_reg(m, offset, value);
		break;
	}
}

static uint32_t virtio_mmio_read_queue_reg(struct virtio_mmio *m, uint64_t offset)
{
	struct virtq *vq = virtio_mmio_selected(m);

	if (!vq)
		return 0; /* §4.2.2: QueueNumMax reads 0 for a queue that does not exist */
	switch (offset) {
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq->max_size;
	case VIRTIO_MMIO_QUEUE_NUM:
		return vq->size;
	case VIRTIO_MMIO_QUEUE_READY:
		return vq->ready;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		return vq->desc_gpa >> (offset & 4 ? 32 : 0);
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		return vq->avail_gpa >> (offset & 4 ? 32 : 0);
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		return vq->used_gpa >> (offset & 4 ? 32 : 0);
	default:
		return 0;
	}
}

static uint32_t virtio_mmio_read_reg(struct virtio_mmio *m, uint64_t offset)
{
	struct virtio_device *dev = m->dev;

	switch (offset) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return VIRTIO_MMIO_VERSION_MODERN;
	case VIRTIO_MMIO_DEVICE_ID:
		return dev->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return m->device_features_sel < 2
			       ? virtio_mmio_offered(dev) >> (32 * m->device_features_sel)
			       : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return __atomic_load_n(m->isr, __ATOMIC_SEQ_CST);
	case VIRTIO_MMIO_STATUS:
		return m->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffff; /* §4.2.2: no shared memory regions (length -1) */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return __atomic_load_n(&m->config_generation, __ATOMIC_SEQ_CST);
	default:
		return virtio_mmio_read_queue_reg(m, offset);
	}
}

static void virtio_mmio_config_access(struct virtio_mmio *m, uint64_t offset, uint8_t *data,
				      uint32_t len, bool is_write)
{
	struct virtio_device *dev = m->dev;

	if (!range_fits(offset, len, dev->config_size)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write) {
		if (dev->ops->config_write)
			dev->ops->config_write(dev, offset, data, len);
	} else if (dev->ops->config_read) {
		dev->ops->config_read(dev, offset, data, len);
	} else {
		memset(data, 0, len);
	}
}

void virtio_mmio_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_mmio *m = opaque;
	uint32_t value;

	pthread_mutex_lock(&m->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		virtio_mmio_config_access(m, offset - VIRTIO_MMIO_CONFIG, data, len, is_write);
	} else if (len != 4 || (offset & 3)) {
		/* §4.2.2: control registers take aligned 32-bit accesses only. */
		log_once(LOG_WARN, "%s: %u-byte access to register 0x%llx ignored", m->dev->name,
			 len, (unsigned long long)offset);
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		memcpy(&value, data, 4);
		virtio_mmio_write_reg(m, offset, value);
	} else {
		value = virtio_mmio_read_reg(m, offset);
		memcpy(data, &value, 4);
	}
	pthread_mutex_unlock(&m->lock);
}

static int virtio_mmio_check_device(const struct virtio_device *dev, struct error *err)
{
	unsigned int q;

	if (dev->nr_queues > VIRTIO_MAX_QUEUES || !dev->ops->queue_notify)
		return error_set(err, -EINVAL, "%s: bad virtio device", dev->name);
	for (q = 0; q < dev->nr_queues; q++) {
		unsigned int n = dev->queue_max_size[q];

		if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
			return error_set(err, -EINVAL, "%s: queue %u: bad maximum size %u",
					 dev->name, q, n);
	}
	return 0;
}

static int virtio_mmio_setup_fds(struct virtio_mmio *m, struct error *err)
{
	struct virtio_device *dev = m->dev;
	unsigned int q;
	int r;

	m->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->irq_fd < 0)
		return error_set_errno(err, -errno, "%s: eventfd", dev->name);
	if (m->host.irqfd) {
		r = m->host.irqfd(m->host.opaque, m->irq_fd, m->gsi, true);
		if (r < 0)
			return error_set_errno(err, r, "%s: irqfd on GSI %u", dev->name, m->gsi);
		m->irqfd = true;
	}
	for (q = 0; q < dev->nr_queues; q++) {
		struct virtio_mmio_notifier *n = &m->notifiers[q];

		n->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->fd < 0)
			return error_set_errno(err, -errno, "%s: eventfd", dev->name);
		if (dev->queues_elsewhere)
			continue;
		r = m->host.watch(m->host.opaque, dev->loop, n->fd, virtio_mmio_on_notify, n);
		if (r < 0)
			return error_set_errno(err, r, "%s: cannot watch queue %u", dev->name, q);
		n->watched = true;
	}
	return 0;
}

int virtio_mmio_create(struct virtio_device *dev, const struct vm_mem *mem, uint64_t base,
		       unsigned int gsi, const struct virtio_mmio_host *host,
		       struct virtio_mmio **out, struct error *err)
{
	struct virtio_mmio *m;
	unsigned int q;
	int r;

	r = virtio_mmio_check_device(dev, err);
	if (r < 0) {
		dev->ops->destroy(dev);
		return r;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		dev->ops->destroy(dev);
		return error_set(err, -ENOMEM, "%s: out of memory", dev->name);
	}
	m->dev = dev;
	m->base = base;
	m->gsi = gsi;
	m->host = *host;
	m->irq_fd = -1;
	m->isr = &m->interrupt_status;
	pthread_mutex_init(&m->lock, NULL);
	dev->transport = m;
	for (q = 0; q < dev->nr_queues; q++) {
		virtq_init(&dev->queues[q], mem, dev->queue_max_size[q]);
		m->notifiers[q] = (struct virtio_mmio_notifier){ .mmio = m, .index = q, .fd = -1 };
	}
	r = virtio_mmio_setup_fds(m, err);
	if (r < 0) {
		virtio_mmio_destroy(m);
		return r;
	}
	*out = m;
	return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
	struct virtio_device *dev;
	unsigned int q;

	if (!m)
		return;
	dev = m->dev;
	for (q = 0; q < dev->nr_queues; q++) {
		struct virtio_mmio_notifier *n = &m->notifiers[q];

		virtio_mmio_ioeventfd(m, q, false);
		if (n->watched)
			m->host.unwatch(m->host.opaque, dev->loop, n->fd);
		if (n->fd >= 0)
			close(n->fd);
	}
	if (m->irqfd)
		m->host.irqfd(m->host.opaque, m->irq_fd, m->gsi, false);
	if (m->irq_fd >= 0)
		close(m->irq_fd);
	dev->ops->destroy(dev);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int virtio_mmio_irq_fd(const struct virtio_mmio *mmio)
{
	return mmio->irq_fd;
}

int virtio_mmio_queue_fd(const struct virtio_mmio *mmio, unsigned int q)
{
	return q < mmio->dev->nr_queues ? mmio->notifiers[q].fd : -1;
}

void virtio_mmio_share_isr(struct virtio_mmio *mmio, uint32_t *word)
{
	pthread_mutex_lock(&mmio->lock);
	__atomic_store_n(word, __atomic_load_n(mmio->isr, __ATOMIC_SEQ_CST), __ATOMIC_SEQ_CST);
	mmio->isr = word;
	pthread_mutex_unlock(&mmio->lock);
}

uint64_t virtio_mmio_base(const struct virtio_mmio *mmio)
{
	return mmio->base;
}

unsigned int virtio_mmio_gsi(const struct virtio_mmio *mmio)
{
	return mmio->gsi;
}

int virtio_mmio_slot_alloc(struct virtio_mmio_slots *slots, uint64_t *base, unsigned int *gsi)
{
	uint64_t b = slots->first_base + (uint64_t)slots->used * VIRTIO_MMIO_SIZE;
	unsigned int g = slots->first_gsi + slots->used;

	if (g > slots->last_gsi || !range_fits(b, VIRTIO_MMIO_SIZE, slots->end))
		return -ENOSPC;
	slots->used++;
	*base = b;
	*gsi = g;
	return 0;
}

/* The snapshot layout (docs/snapshots.md): a change here is a new SNAPSHOT_VERSION. */
_Static_assert(sizeof(struct virtio_mmio_state) == 56 + VIRTIO_MAX_QUEUES * 40,
	       "struct virtio_mmio_state is part of the snapshot format");

void virtio_mmio_save(struct virtio_mmio *m, struct virtio_mmio_state *out)
{
	struct virtio_device *dev = m->dev;
	unsigned int q;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&m->lock);
	out->device_id = dev->device_id;
	out->nr_queues = dev->nr_queues;
	out->config_size = dev->config_size;
	out->offered_features = virtio_mmio_offered(dev);
	out->driver_features = dev->driver_features;
	out->status = m->status;
	out->device_features_sel = m->device_features_sel;
	out->driver_features_sel = m->driver_features_sel;
	out->queue_sel = m->queue_sel;
	out->interrupt_status = __atomic_load_n(m->isr, __ATOMIC_SEQ_CST);
	out->config_generation = __atomic_load_n(&m->config_generation, __ATOMIC_SEQ_CST);
	for (q = 0; q < dev->nr_queues; q++) {
		const struct virtq *vq = &dev->queues[q];
		struct virtio_mmio_queue_state *s = &out->queues[q];

		s->desc_gpa = vq->desc_gpa;
		s->avail_gpa = vq->avail_gpa;
		s->used_gpa = vq->used_gpa;
		s->size = vq->size;
		s->ready = vq->ready;
		s->broken = vq->broken;
		s->last_avail_idx = vq->last_avail_idx;
		s->used_idx = vq->used_idx;
		s->signalled_used = vq->signalled_used;
	}
	pthread_mutex_unlock(&m->lock);
}

static int virtio_mmio_restore_queues(struct virtio_mmio *m, const struct virtio_mmio_state *in,
				      struct error *err)
{
	struct virtio_device *dev = m->dev;
	unsigned int q;

	for (q = 0; q < dev->nr_queues; q++) {
		const struct virtio_mmio_queue_state *s = &in->queues[q];
		struct virtq *vq = &dev->queues[q];

		vq->desc_gpa = s->desc_gpa;
		vq->avail_gpa = s->avail_gpa;
		vq->used_gpa = s->used_gpa;
		vq->size = s->size <= vq->max_size ? s->size : 0;
		if (!s->ready)
			continue;
		if (virtq_restore(vq, dev->driver_features, s->last_avail_idx, s->used_idx,
				  s->signalled_used) < 0)
			return error_set(err, -EINVAL, "%s: snapshot queue %u: %s", dev->name, q,
					 vq->error);
		vq->broken = s->broken;
		virtio_mmio_ioeventfd(m, q, true);
	}
	return 0;
}

static int virtio_mmio_restore_locked(struct virtio_mmio *m, const struct virtio_mmio_state *in,
				      struct error *err)
{
	struct virtio_device *dev = m->dev;
	unsigned int q;
	int r;

	if (in->device_id != dev->device_id || in->nr_queues != dev->nr_queues ||
	    in->config_size != dev->config_size)
		return error_set(err, -EINVAL, "%s: the snapshot has another device here",
				 dev->name);
	if (in->offered_features != virtio_mmio_offered(dev))
		return error_set(err, -EINVAL,
				 "%s: device features 0x%llx, the snapshot's driver was offered "
				 "0x%llx (e.g. readonly= differs)",
				 dev->name, (unsigned long long)virtio_mmio_offered(dev),
				 (unsigned long long)in->offered_features);
	dev->driver_features = in->driver_features;
	m->status = in->status;
	m->device_features_sel = in->device_features_sel;
	m->driver_features_sel = in->driver_features_sel;
	m->queue_sel = in->queue_sel;
	__atomic_store_n(m->isr, in->interrupt_status, __ATOMIC_SEQ_CST);
	__atomic_store_n(&m->config_generation, in->config_generation, __ATOMIC_SEQ_CST);
	r = virtio_mmio_restore_queues(m, in, err);
	if (r < 0)
		return r;
	if (!(m->status & VIRTIO_CONFIG_S_DRIVER_OK) || (m->status & VIRTIO_CONFIG_S_NEEDS_RESET))
		return 0;
	if (dev->ops->activate && dev->ops->activate(dev) < 0)
		return error_set(err, -EIO, "%s: cannot activate the restored device", dev->name);
	if (dev->ops->restored)
		dev->ops->restored(dev);
	/* Buffers the guest made available while the snapshot was taken: look now. */
	for (q = 0; q < dev->nr_queues; q++)
		if (dev->queues[q].ready)
			virtio_device_queue_kick(dev, q);
	return 0;
}

int virtio_mmio_restore(struct virtio_mmio *m, const struct virtio_mmio_state *in,
			struct error *err)
{
	int r;

	pthread_mutex_lock(&m->lock);
	r = virtio_mmio_restore_locked(m, in, err);
	pthread_mutex_unlock(&m->lock);
	return r;
}
