/*
 * Boot timer: the guest's init writes X86_BOOT_TIMER_MAGIC to this MMIO byte when
 * userspace is up (busybox: `devmem 0xd0000000 8 123`), and the VMM logs how long that
 * took since the VMM started, as Firecracker's boot timer does. Benchmarks read that line.
 */
#include <string.h>

#include "../device.h"
#include "../log.h"
#include "../vm.h"
#include "layout.h"

static void boot_timer_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			      bool is_write)
{
	(void)opaque;
	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (offset == 0 && data[0] == X86_BOOT_TIMER_MAGIC)
		log_info("guest boot completed in %.3f ms", log_uptime() * 1000.0);
}

static int boot_timer_init(struct vm *vm, struct error *err)
{
	int r = bus_register(&vm->mmio_bus, X86_BOOT_TIMER_GPA, 4096, boot_timer_access, NULL,
			     "boot-timer");

	return r < 0 ? error_set_errno(err, r, "boot timer: MMIO 0x%llx",
				       (unsigned long long)X86_BOOT_TIMER_GPA)
		     : 0;
}

static const struct device_ops boot_timer_device = {
	.name = "boot-timer",
	.level = DEVICE_LEVEL_PLATFORM,
	.init = boot_timer_init,
};
DEVICE_REGISTER(boot_timer_device);
