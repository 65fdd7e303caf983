/*
 * What the generic VMM asks of the architecture code (arch/<arch>/). One implementation per
 * architecture; nothing outside arch/ includes arch headers directly except through this.
 */
#ifndef STRATUS_VMM_ARCH_H
#define STRATUS_VMM_ARCH_H

#include "error.h"

struct vm;
struct vcpu;
struct snapshot_writer;
struct snapshot_file;

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

/*
 * Snapshots (arch/<arch>/snapshot.c): the interrupt controllers, timers, clock and every
 * vCPU's state, saved with the VM paused, restored into a VM just created for it.
 */
int arch_vm_save(struct vm *vm, struct snapshot_writer *w, struct error *err);
int arch_vm_restore(struct vm *vm, const struct snapshot_file *f, struct error *err);

#endif
