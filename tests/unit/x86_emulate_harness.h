/*
 * What the x86 emulator tests share (x86_emulate_harness.c): test_x86_emulate.c (INT3,
 * CLAC/STAC, FWAIT, refusals, truncated and random bytes), test_x86_emulate_bitcount.c
 * (POPCNT/LZCNT/TZCNT values, prefixes, against the host CPU) and
 * test_x86_emulate_memory.c (memory operands). Registers are plain structs; guest memory is
 * a fake ops->read serving one small buffer at a known guest-virtual address.
 */
#ifndef STRATUS_TEST_X86_EMULATE_HARNESS_H
#define STRATUS_TEST_X86_EMULATE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/emulate.h"

#define RFLAGS_FIXED 0x2ULL
#define RFLAGS_CF    (1ULL << 0)
#define RFLAGS_PF    (1ULL << 2)
#define RFLAGS_AF    (1ULL << 4)
#define RFLAGS_ZF    (1ULL << 6)
#define RFLAGS_SF    (1ULL << 7)
#define RFLAGS_IF    (1ULL << 9)
#define RFLAGS_OF    (1ULL << 11)
#define RFLAGS_AC    (1ULL << 18)
#define RFLAGS_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

#define KERNEL_RIP 0xffffffff81234560ULL
#define BOOT_EIP   0x00100040ULL

/* Fake guest memory: size bytes at gva; every read is recorded. */
struct fake_mem {
	uint64_t gva;
	uint8_t buf[64];
	size_t size;
	bool fail;
	unsigned int reads;
	uint64_t last_gva;
	size_t last_len;
	uint64_t log_gva[32]; /* the first 32 reads */
	size_t log_len[32];
};

/* Register by its x86 encoding number, written independently of the code under test. */
__u64 *reg(struct kvm_regs *regs, unsigned int index);
void fill_regs(struct kvm_regs *regs);
/* A 64-bit kernel at CPL 0, as the vCPU loop would see it after KVM_GET_REGS/SREGS. */
void setup_long(struct kvm_regs *regs, struct kvm_sregs *sregs);
/* 32-bit protected mode as in the early boot code. */
void setup_prot32(struct kvm_regs *regs, struct kvm_sregs *sregs);
void set_cpl3(struct kvm_sregs *sregs);

int fake_read(void *opaque, uint64_t gva, void *buf, size_t len);
void fake_init(struct fake_mem *mem, struct x86_emulate_ops *ops, uint64_t gva, const void *data,
	       size_t size);
void fake_set_u64(struct fake_mem *mem, uint64_t value);

/* Runs x86_emulate on an exactly-sized heap copy of the bytes, so ASan sees over-reads. */
enum x86_emulate_result emulate(struct kvm_regs *regs, struct kvm_sregs *sregs,
				const uint8_t *bytes, size_t len, const struct x86_emulate_ops *ops,
				enum x86_insn *kind);
/* The instruction is refused and neither register set changes. */
void expect_unhandled(struct kvm_regs *regs, struct kvm_sregs *sregs, const uint8_t *bytes,
		      size_t len, const struct x86_emulate_ops *ops, enum x86_insn want);
/* Emulated with the wanted result and kind, RIP advanced by len_done, sregs untouched. */
void expect_done(struct kvm_regs *regs, struct kvm_sregs *sregs, const uint8_t *bytes, size_t len,
		 const struct x86_emulate_ops *ops, enum x86_insn want, size_t len_done,
		 enum x86_emulate_result want_result);

/* xorshift64*: deterministic, so a failure reproduces. */
uint64_t rng(void);

#endif
