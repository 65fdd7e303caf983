/*
 * Address buses for port I/O and MMIO (see bus.h). A sorted array searched by bisection:
 * a microVM has a handful of ranges, and the hot virtio notifications bypass the bus
 * entirely through ioeventfds.
 */
#include <string.h>

#include "bus.h"
#include "log.h"

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	free(bus->ranges);
	pthread_rwlock_destroy(&bus->lock);
	bus->ranges = NULL;
	bus->nr_ranges = 0;
}

/* Index of the first range whose end lies above addr. */
static unsigned int bus_search(const struct bus *bus, uint64_t addr)
{
	unsigned int lo = 0, hi = bus->nr_ranges;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (r->base + r->len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_access_fn access, void *opaque,
		 const char *name)
{
	struct bus_range *ranges;
	unsigned int i;
	int r = 0;

	if (len == 0 || base + len < base)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = bus_search(bus, base);
	if (i < bus->nr_ranges && bus->ranges[i].base < base + len) {
		r = -EEXIST;
		goto out;
	}
	ranges = realloc(bus->ranges, (bus->nr_ranges + 1) * sizeof(*ranges));
	if (!ranges) {
		r = -ENOMEM;
		goto out;
	}
	memmove(&ranges[i + 1], &ranges[i], (bus->nr_ranges - i) * sizeof(*ranges));
	ranges[i] = (struct bus_range){ base, len, access, opaque, name };
	bus->ranges = ranges;
	bus->nr_ranges++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	unsigned int i;
	int r = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	i = bus_search(bus, base);
	if (i < bus->nr_ranges && bus->ranges[i].base == base) {
		memmove(&bus->ranges[i], &bus->ranges[i + 1],
			(bus->nr_ranges - i - 1) * sizeof(*bus->ranges));
		bus->nr_ranges--;
		r = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	struct bus_range range;
	bool found = false;
	unsigned int i;

	pthread_rwlock_rdlock(&bus->lock);
	i = bus_search(bus, addr);
	if (i < bus->nr_ranges && bus->ranges[i].base <= addr &&
	    range_fits(addr - bus->ranges[i].base, len, bus->ranges[i].len)) {
		range = bus->ranges[i];
		found = true;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (found) {
		range.access(range.opaque, addr - range.base, data, len, is_write);
		return true;
	}
	if (!is_write)
		memset(data, 0xff, len);
	log_debug("%s: unclaimed %s of %u bytes at 0x%llx", bus->name, is_write ? "write" : "read",
		  len, (unsigned long long)addr);
	return false;
}
