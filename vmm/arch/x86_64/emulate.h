/*
 * Finishing instructions KVM's emulator cannot do. On PVM "native" hosts guest kernel code
 * is interpreted by KVM, and a few instructions (INT3, CLAC/STAC, POPCNT/LZCNT/TZCNT, FWAIT)
 * come back as KVM_EXIT_INTERNAL_ERROR with the instruction bytes. This module decodes them
 * and updates the vCPU registers; nothing here issues ioctls, so it is tested with plain
 * structs.
 */
#ifndef STRATUS_VMM_X86_EMULATE_H
#define STRATUS_VMM_X86_EMULATE_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

enum x86_insn {
	X86_INSN_UNKNOWN,
	X86_INSN_INT3,
	X86_INSN_CLAC,
	X86_INSN_STAC,
	X86_INSN_POPCNT,
	X86_INSN_LZCNT,
	X86_INSN_TZCNT,
	X86_INSN_FWAIT,
	X86_INSN_NR,
};

enum x86_emulate_result {
	X86_EMULATE_DONE,      /* registers updated, RIP past the instruction */
	X86_EMULATE_INJECT_BP, /* RIP past the INT3; the caller injects #BP */
	X86_EMULATE_UNHANDLED, /* not an instruction we finish: stop the VM */
};

/*
 * Guest-virtual memory access (the caller walks the guest's page tables). Used for memory
 * operands and for instruction bytes KVM did not pass. Return 0 with all len bytes filled,
 * or non-zero: the instruction is then UNHANDLED, since we cannot raise the #PF the guest
 * would have seen. Operands are read only at CPL 0 (user-mode memory operands are refused
 * before reading); instruction bytes at any CPL. Nothing here applies U/S or SMAP checks.
 */
struct x86_emulate_ops {
	int (*read)(void *opaque, uint64_t gva, void *buf, size_t len);
	void *opaque;
};

/*
 * Emulate the instruction at regs->rip whose bytes are insn[0..len). len may be short of
 * the full instruction only if ops->read can fetch the rest from CS:RIP; ops may be NULL.
 * On DONE or INJECT_BP *regs holds the result with RIP past the instruction; on UNHANDLED
 * *regs is untouched. *sregs is only read. *kind (if kind is not NULL) is set to what was
 * decoded, also on UNHANDLED when the opcode was recognised (e.g. CLAC at CPL 3), and to
 * X86_INSN_UNKNOWN otherwise.
 */
enum x86_emulate_result x86_emulate(struct kvm_regs *regs, struct kvm_sregs *sregs,
				    const uint8_t *insn, size_t len,
				    const struct x86_emulate_ops *ops, enum x86_insn *kind);

const char *x86_insn_name(enum x86_insn kind);

#endif
