/*
 * x86_64 per-VM state shared by the arch files (not part of libvmm's API).
 */
#ifndef STRATUS_VMM_X86_ARCH_VM_H
#define STRATUS_VMM_X86_ARCH_VM_H

#include <linux/kvm.h>

#include "boot.h"

struct arch_vm {
	struct kvm_cpuid2 *supported_cpuid; /* KVM_GET_SUPPORTED_CPUID, before per-vCPU fix-ups */
	struct x86_kernel kernel;
	bool pvh; /* enter through the PVH entry, else the 64-bit one */
};

/* Boot page tables and GDT in guest memory (cpu.c), shared by every vCPU. */
int x86_write_boot_tables(struct vm_mem *mem, struct error *err);

#endif
