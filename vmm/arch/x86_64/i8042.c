/*
 * Just enough of the PC keyboard controller for the guest to reboot: command 0xFE on
 * port 0x64 pulses the CPU reset line, which ends the VM (a microVM does not reboot; the
 * caller decides whether to start a new one). Linux uses it with reboot=k. The status
 * register reads 0: no data, input buffer empty, so the kernel's kb_wait() returns at once.
 */
#include <string.h>

#include "../../device.h"
#include "../../log.h"
#include "../../vm.h"
#include "layout.h"

#define I8042_DATA	0
#define I8042_COMMAND	4
#define I8042_CMD_RESET 0xfe

static void i8042_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (offset == I8042_COMMAND && data[0] == I8042_CMD_RESET) {
		log_info("guest reset through the i8042");
		vm_request_exit(vm, VM_EXIT_RESET);
	}
}

static int i8042_init(struct vm *vm, struct error *err)
{
	int r = bus_register(&vm->pio_bus, X86_I8042_PORT, 5, i8042_access, vm, "i8042");

	if (r < 0)
		return error_set_errno(err, r, "i8042: ports 0x60-0x64");
	return vm_cmdline_append(vm, "reboot=k");
}

static const struct device_ops i8042_device = {
	.name = "i8042",
	.level = DEVICE_LEVEL_PLATFORM,
	.init = i8042_init,
};
DEVICE_REGISTER(i8042_device);
