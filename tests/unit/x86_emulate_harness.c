/*
 * The x86 emulator tests' shared harness (x86_emulate_harness.h): registers by encoding
 * number, CPU-mode set-ups, a fake guest memory that records its reads, and runners that
 * check what x86_emulate() did.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "x86_emulate_harness.h"

/* Register by its x86 encoding number, written independently of the code under test. */
__u64 *reg(struct kvm_regs *regs, unsigned int index)
{
	switch (index) {
	case 0:
		return &regs->rax;
	case 1:
		return &regs->rcx;
	case 2:
		return &regs->rdx;
	case 3:
		return &regs->rbx;
	case 4:
		return &regs->rsp;
	case 5:
		return &regs->rbp;
	case 6:
		return &regs->rsi;
	case 7:
		return &regs->rdi;
	case 8:
		return &regs->r8;
	case 9:
		return &regs->r9;
	case 10:
		return &regs->r10;
	case 11:
		return &regs->r11;
	case 12:
		return &regs->r12;
	case 13:
		return &regs->r13;
	case 14:
		return &regs->r14;
	default:
		return &regs->r15;
	}
}

void fill_regs(struct kvm_regs *regs)
{
	unsigned int i;

	for (i = 0; i < 16; i++)
		*reg(regs, i) = 0x1000000000000000ULL * (i + 1) + 0x10101 * i + 0xa5;
}

/* A 64-bit kernel at CPL 0, as the vCPU loop would see it after KVM_GET_REGS/SREGS. */
void setup_long(struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	memset(regs, 0, sizeof(*regs));
	memset(sregs, 0, sizeof(*sregs));
	fill_regs(regs);
	regs->rip = KERNEL_RIP;
	regs->rflags = RFLAGS_FIXED | RFLAGS_IF;
	sregs->cr0 = 0x80050033; /* PG, AM, WP, NE, ET, MP, PE */
	sregs->cr4 = 0x3606f0;
	sregs->efer = 0xd01; /* NX, LMA, LME, SCE */
	sregs->cs.selector = 0x10;
	sregs->cs.l = 1;
	sregs->cs.present = 1;
	sregs->cs.s = 1;
	sregs->cs.type = 0xb;
	sregs->ss.selector = 0x18;
	/* Bases that 64-bit mode must ignore, and FS/GS bases it must use. */
	sregs->ds.base = 0x7000;
	sregs->es.base = 0x7100;
	sregs->ss.base = 0x7200;
	sregs->cs.base = 0x7300;
	sregs->fs.base = 0x7f0000001000ULL;
	sregs->gs.base = 0xffff888000000000ULL;
}

/* 32-bit protected mode as in the early boot code. */
void setup_prot32(struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	memset(regs, 0, sizeof(*regs));
	memset(sregs, 0, sizeof(*sregs));
	fill_regs(regs);
	regs->rip = BOOT_EIP;
	regs->rflags = RFLAGS_FIXED;
	sregs->cr0 = 0x11; /* ET, PE */
	sregs->cs.selector = 0x10;
	sregs->cs.db = 1;
	sregs->cs.present = 1;
	sregs->cs.s = 1;
	sregs->cs.type = 0xb;
	sregs->cs.limit = 0xffffffff;
}

void set_cpl3(struct kvm_sregs *sregs)
{
	sregs->cs.selector = 0x33;
	sregs->cs.dpl = 3;
}

int fake_read(void *opaque, uint64_t gva, void *buf, size_t len)
{
	struct fake_mem *mem = opaque;

	if (mem->reads < 32) {
		mem->log_gva[mem->reads] = gva;
		mem->log_len[mem->reads] = len;
	}
	mem->reads++;
	mem->last_gva = gva;
	mem->last_len = len;
	assert_non_null(buf);
	assert_true(len > 0 && len <= 15);
	if (mem->fail || gva < mem->gva || gva - mem->gva > mem->size ||
	    len > mem->size - (gva - mem->gva))
		return -14; /* -EFAULT */
	memcpy(buf, mem->buf + (gva - mem->gva), len);
	return 0;
}

void fake_init(struct fake_mem *mem, struct x86_emulate_ops *ops, uint64_t gva, const void *data,
	       size_t size)
{
	memset(mem, 0, sizeof(*mem));
	mem->gva = gva;
	/* Bytes past what a test provides are poison, so over-reads show. */
	memset(mem->buf, 0xee, sizeof(mem->buf));
	if (data)
		memcpy(mem->buf, data, size);
	mem->size = sizeof(mem->buf);
	ops->read = fake_read;
	ops->opaque = mem;
}

void fake_set_u64(struct fake_mem *mem, uint64_t value)
{
	unsigned int i;

	for (i = 0; i < 8; i++)
		mem->buf[i] = (uint8_t)(value >> (8 * i));
}

/* Runs x86_emulate on an exactly-sized heap copy of the bytes, so ASan sees over-reads. */
enum x86_emulate_result emulate(struct kvm_regs *regs, struct kvm_sregs *sregs,
				const uint8_t *bytes, size_t len, const struct x86_emulate_ops *ops,
				enum x86_insn *kind)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum x86_emulate_result r;

	assert_non_null(copy);
	if (len)
		memcpy(copy, bytes, len);
	r = x86_emulate(regs, sregs, copy, len, ops, kind);
	free(copy);
	return r;
}

/* The instruction is refused and neither register set changes. */
void expect_unhandled(struct kvm_regs *regs, struct kvm_sregs *sregs, const uint8_t *bytes,
		      size_t len, const struct x86_emulate_ops *ops, enum x86_insn want)
{
	struct kvm_regs before = *regs;
	struct kvm_sregs sbefore = *sregs;
	enum x86_insn kind = X86_INSN_NR;

	assert_int_equal(emulate(regs, sregs, bytes, len, ops, &kind), X86_EMULATE_UNHANDLED);
	assert_int_equal(kind, want);
	assert_memory_equal(regs, &before, sizeof(before));
	assert_memory_equal(sregs, &sbefore, sizeof(sbefore));
}

/* Emulated with the wanted result and kind, RIP advanced by len_done, sregs untouched. */
void expect_done(struct kvm_regs *regs, struct kvm_sregs *sregs, const uint8_t *bytes, size_t len,
		 const struct x86_emulate_ops *ops, enum x86_insn want, size_t len_done,
		 enum x86_emulate_result want_result)
{
	struct kvm_regs before = *regs;
	struct kvm_sregs sbefore = *sregs;
	enum x86_insn kind = X86_INSN_NR;

	assert_int_equal(emulate(regs, sregs, bytes, len, ops, &kind), want_result);
	assert_int_equal(kind, want);
	assert_int_equal(regs->rip, before.rip + len_done);
	assert_memory_equal(sregs, &sbefore, sizeof(sbefore));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

uint64_t rng(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}
