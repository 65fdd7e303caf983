/*
 * What the generic VMM asks of the architecture code (arch/<arch>/). One implementation per
 * architecture; nothing outside arch/ includes arch headers directly except through this.
 */
#ifndef STRATUS_VMM_ARCH_H
#define STRATUS_VMM_ARCH_H

#include "error.h"

struct vm;
struct vcpu;

/* Host detection (sets vm->quirks) before the VM is created. */
void arch_detect_quirks(struct vm *vm);

/* After KVM_CREATE_VM: guest memory layout, interrupt controllers, timers. */
int arch_vm_init(struct vm *vm, struct error *err);
void arch_vm_destroy(struct vm *vm);

/* After devices are set up (the command line is final): load kernel, initrd, tables. */
int arch_vm_load(struct vm *vm, struct error *err);

/* Put a freshly created vCPU in its boot state (CPUID, MSRs, registers, LAPIC). */
int arch_vcpu_init(struct vcpu *vcpu, struct error *err);

/*
 * Handle an exit the generic loop does not know (e.g. emulation failures).
 * Returns 0 to resume the vCPU, or a negative errno to stop the VM.
 */
int arch_vcpu_exit(struct vcpu *vcpu);

#endif
