/*
 * The guest's way out. With no ACPI the guest kernel cannot power off; our guest-kernel
 * patch (guest-kernel-config/patches/0002) writes one byte to this port on power-off (0)
 * and on panic (1) when booted with stratus.exit_port=<port>, which this device adds.
 */
#include <string.h>

#include "../device.h"
#include "../log.h"
#include "../vm.h"
#include "layout.h"

static void exit_port_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			     bool is_write)
{
	struct vm *vm = opaque;

	(void)offset;
	if (!is_write) {
		memset(data, 0xff, len);
		return;
	}
	switch (data[0]) {
	case X86_EXIT_POWEROFF:
		log_info("guest powered off");
		vm_request_exit(vm, VM_EXIT_POWEROFF);
		break;
	case X86_EXIT_PANIC:
		log_warn("guest kernel panicked");
		vm_request_exit(vm, VM_EXIT_PANIC);
		break;
	default:
		log_once(LOG_WARN, "exit port: unknown value %u", data[0]);
	}
}

static int exit_port_init(struct vm *vm, struct error *err)
{
	int r = bus_register(&vm->pio_bus, X86_EXIT_PORT, 1, exit_port_access, vm, "exit-port");

	if (r < 0)
		return error_set_errno(err, r, "exit port 0x%x", X86_EXIT_PORT);
	return vm_cmdline_append(vm, "stratus.exit_port=0x%x", X86_EXIT_PORT);
}

static const struct device_ops exit_port_device = {
	.name = "exit-port",
	.level = DEVICE_LEVEL_PLATFORM,
	.init = exit_port_init,
};
DEVICE_REGISTER(exit_port_device);
