/*
 * The x86_64 machine: guest RAM around the MMIO hole, the in-kernel PIC/IOAPIC/LAPIC (and
 * PIT if asked for), and direct kernel boot (kernel, initrd, zero page or PVH start info, MP table).
 * Host quirks: on PVM "native" hosts the guest kernel needs our syscall fix-up turned on.
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../../arch.h"
#include "../../file.h"
#include "../../log.h"
#include "../../vm.h"
#include "arch_vm.h"
#include "layout.h"

#define X86_TSS_ADDR	      0xfffbd000ULL
#define X86_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define X86_MAX_CPUID_ENTRIES 256

/*
 * What a PVM "native" host needs on the guest command line (docs/guest-kernel.md):
 * - stratus.pvm_syscall: our guest-kernel patch 0001 completes user SYSCALLs there;
 * - clearcpuid: hides features from the guest *kernel* only (user space, which runs
 *   natively, still sees them through CPUID): cx16, because KVM's emulator lacks
 *   CMPXCHG16B (SLUB's cmpxchg_double); xsave, because it lacks XSAVE/XRSTOR (the kernel
 *   then switches FPU state with FXSAVE, so no AVX for guest user space); erms and fsrm, because "rep movsb" copies and
 *   page clears run at half the speed of the unrolled loops under the interpreter.
 * - boot time, where each guest kernel instruction costs ~270 ns (measured savings in
 *   docs/guest-kernel.md): noreplace-smp, so a 1-vCPU guest does not rewrite its ~6,000
 *   LOCK prefixes one text_poke() at a time (~1 s); percpu_alloc=page, so the first
 *   per-CPU chunk is built from pages rather than carved out of a zeroed 2 MiB block
 *   (~0.4 s). On hardware KVM both cost nothing worth saving, and the defaults are better
 *   there (no LOCK on a uniprocessor, per-CPU data in large pages).
 */
#define PVM_GUEST_PARAMS \
	"stratus.pvm_syscall=1 clearcpuid=cx16,xsave,erms,fsrm noreplace-smp percpu_alloc=page"

void arch_detect_quirks(struct vm *vm)
{
	vm->quirks.pvm = access("/sys/module/kvm_pvm", F_OK) == 0;
}

static int x86_alloc_ram(struct vm *vm, struct error *err)
{
	uint64_t size = vm->config.mem_size;
	uint64_t low = MIN(size, X86_MMIO_HOLE_GPA);
	int r;

	r = vm_mem_alloc_region(&vm->mem, 0, low, err);
	if (r < 0 || size == low)
		return r;
	return vm_mem_alloc_region(&vm->mem, X86_MMIO_HOLE_END, size - low, err);
}

static int x86_get_supported_cpuid(struct vm *vm, struct error *err)
{
	struct kvm_cpuid2 *cpuid;

	cpuid = calloc(1, sizeof(*cpuid) + X86_MAX_CPUID_ENTRIES * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return error_set(err, -ENOMEM, "out of memory");
	cpuid->nent = X86_MAX_CPUID_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		free(cpuid);
		return error_set_errno(err, -errno, "KVM_GET_SUPPORTED_CPUID");
	}
	vm->arch->supported_cpuid = cpuid;
	return 0;
}

int arch_vm_init(struct vm *vm, struct error *err)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = X86_IDENTITY_MAP_ADDR;
	int r;

	if (vm->config.nr_vcpus == 0 || vm->config.nr_vcpus > X86_MAX_VCPUS)
		return error_set(err, -EINVAL, "-smp: %u vCPUs, must be 1 to %u",
				 vm->config.nr_vcpus, X86_MAX_VCPUS);
	vm->arch = calloc(1, sizeof(*vm->arch));
	if (!vm->arch)
		return error_set(err, -ENOMEM, "out of memory");
	r = x86_alloc_ram(vm, err);
	if (r < 0)
		return r;
	if (vm->quirks.pvm && vm_cmdline_append(vm, PVM_GUEST_PARAMS) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, X86_TSS_ADDR) < 0)
		return error_set_errno(err, -errno, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
		return error_set_errno(err, -errno, "KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP) < 0)
		return error_set_errno(err, -errno, "KVM_CREATE_IRQCHIP");
	/* Off by default: see docs/vmm.md ("No PIT by default"). */
	if (vm->config.pit && ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return error_set_errno(err, -errno, "KVM_CREATE_PIT2");
	return x86_get_supported_cpuid(vm, err);
}

void arch_vm_destroy(struct vm *vm)
{
	if (!vm->arch)
		return;
	free(vm->arch->supported_cpuid);
	free(vm->arch);
	vm->arch = NULL;
}

static int x86_load_images(struct vm *vm, struct x86_boot_args *args, struct error *err)
{
	struct arch_vm *arch = vm->arch;
	struct file_map image;
	int r;

	r = file_map_open(&image, vm->config.kernel_path, "kernel", err);
	if (r < 0)
		return r;
	r = x86_kernel_load(&vm->mem, image.data, image.size, &arch->kernel, err);
	file_map_close(&image);
	if (r < 0)
		return r;
	if (!vm->config.initrd_path)
		return 0;
	r = file_map_open(&image, vm->config.initrd_path, "initrd", err);
	if (r < 0)
		return r;
	r = x86_initrd_load(&vm->mem, &arch->kernel, image.data, image.size, &args->initrd_gpa,
			    err);
	args->initrd_size = image.size;
	file_map_close(&image);
	return r;
}

static int x86_choose_entry(struct vm *vm, struct error *err)
{
	struct arch_vm *arch = vm->arch;

	switch (vm->config.boot_entry) {
	case VM_BOOT_PVH:
		if (!arch->kernel.pvh_entry)
			return error_set(err, -ENOEXEC, "kernel: %s has no PVH entry note",
					 vm->config.kernel_path);
		arch->pvh = true;
		return 0;
	case VM_BOOT_LINUX64:
		if (!arch->kernel.entry64)
			return error_set(err, -ENOEXEC, "kernel: %s has no 64-bit entry",
					 vm->config.kernel_path);
		arch->pvh = false;
		return 0;
	default:
		arch->pvh = arch->kernel.pvh_entry != 0;
		if (!arch->pvh && !arch->kernel.entry64)
			return error_set(err, -ENOEXEC, "kernel: %s has no usable entry point",
					 vm->config.kernel_path);
		return 0;
	}
}

int arch_vm_load(struct vm *vm, struct error *err)
{
	struct x86_boot_args args = { 0 };
	int r;

	r = x86_load_images(vm, &args, err);
	if (r < 0)
		return r;
	r = x86_choose_entry(vm, err);
	if (r < 0)
		return r;
	args.cmdline = vm->cmdline ? vm->cmdline : "";
	if (vm->arch->pvh)
		r = x86_pvh_info_setup(&vm->mem, &args, err);
	else
		r = x86_boot_params_setup(&vm->mem, &vm->arch->kernel, &args, err);
	if (r < 0)
		return r;
	r = x86_mptable_setup(&vm->mem, vm->config.nr_vcpus, err);
	if (r < 0)
		return r;
	log_debug("kernel entry 0x%llx (%s), command line: %s",
		  (unsigned long long)(vm->arch->pvh ? vm->arch->kernel.pvh_entry
						     : vm->arch->kernel.entry64),
		  vm->arch->pvh ? "PVH" : "64-bit", vm->cmdline);
	return x86_write_boot_tables(&vm->mem, err);
}
