/*
 * An address bus: the port-I/O space and the MMIO space each have one. Devices claim ranges;
 * vCPU exits are dispatched to the device owning the address. Accesses nobody claims read as
 * all-ones and drop writes, as on real hardware.
 *
 * Ranges are registered while the VM is built, before any vCPU runs; lookups take a read
 * lock so later hotplug can add ranges safely.
 */
#ifndef STRATUS_VMM_BUS_H
#define STRATUS_VMM_BUS_H

#include <pthread.h>
#include <stdint.h>

#include "util.h"

/* offset is relative to the range's base; data holds len (1, 2, 4 or 8) bytes. */
typedef void (*bus_access_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			      bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_access_fn access;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for logs */
	pthread_rwlock_t lock;
	struct bus_range *ranges; /* sorted by base, never overlapping */
	unsigned int nr_ranges;
};

void bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);

/* -EEXIST if the range overlaps one already registered. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_access_fn access, void *opaque,
		 const char *name);
int bus_unregister(struct bus *bus, uint64_t base);

/* Dispatch one access; returns false if no device claims addr (data then reads as 0xff). */
bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
