/*
 * Unit tests for vmm/arch/x86_64/emulate.c: memory operands (ModRM/SIB/displacement forms,
 * RIP-relative, segment bases, 32-bit addressing) and the memory accesses refused.
 * Harness: x86_emulate_harness.h.
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

/* --- Memory operands ----------------------------------------------------------------- */

struct memory_form {
	const char *name;
	uint8_t bytes[15];
	size_t len;
	void (*setup)(struct kvm_regs *regs);
	bool rip_relative; /* gva is then a displacement from the next instruction */
	uint64_t gva;
	unsigned int size; /* operand bytes read */
	unsigned int dest; /* ModRM.reg */
};

#define FORM(n, fn, rip, addr, sz, dst, ...)                                                       \
	{                                                                                          \
		.name = n, .setup = fn, .rip_relative = rip, .gva = addr, .size = sz, .dest = dst, \
		.bytes = { __VA_ARGS__ }, .len = sizeof((uint8_t[]){ __VA_ARGS__ })                \
	}

#define VMALLOC 0xffffc90000000000ULL
#define GS_BASE 0xffff888000000000ULL
#define FS_BASE 0x7f0000001000ULL

static void regs_base(struct kvm_regs *regs)
{
	regs->rax = VMALLOC + 0x1000;
	regs->rsp = VMALLOC + 0x2000;
	regs->rbp = VMALLOC + 0x3000;
	regs->r12 = VMALLOC + 0x4000;
	regs->r13 = VMALLOC + 0x5000;
	regs->rcx = 0x10;
	regs->r9 = 0x20;
}

static void regs_index(struct kvm_regs *regs)
{
	regs->rax = VMALLOC + 0x6000;
	regs->rcx = 0x10;
	regs->r9 = 0x20;
	regs->r12 = 0x30;
	regs->rsp = 0x5555555555555555ULL; /* never an index */
}

static void regs_small(struct kvm_regs *regs)
{
	regs->rax = 0x100;
}

static void regs_addr32(struct kvm_regs *regs)
{
	regs->rax = 0xabcdef0000008000ULL; /* with 67 only EAX counts */
	regs->rbx = 0x100;
}

static const struct memory_form memory_forms[] = {
	/* popcnt eax, [rax] */
	FORM("[rax]", regs_base, false, VMALLOC + 0x1000, 4, 0, 0xf3, 0x0f, 0xb8, 0x00),
	/* popcnt rax, [rsp+8]: rm 100 needs a SIB, base rsp, index none */
	FORM("[rsp+disp8]", regs_base, false, VMALLOC + 0x2008, 8, 0, 0xf3, 0x48, 0x0f, 0xb8, 0x44,
	     0x24, 0x08),
	/* lzcnt eax, [rsp-8] */
	FORM("[rsp-disp8]", regs_base, false, VMALLOC + 0x1ff8, 4, 0, 0xf3, 0x0f, 0xbd, 0x44, 0x24,
	     0xf8),
	/* lzcnt ecx, [rbp+0x100] */
	FORM("[rbp+disp32]", regs_base, false, VMALLOC + 0x3100, 4, 1, 0xf3, 0x0f, 0xbd, 0x8d, 0x00,
	     0x01, 0x00, 0x00),
	/* lzcnt ecx, [rbp-0x10] */
	FORM("[rbp-disp32]", regs_base, false, VMALLOC + 0x2ff0, 4, 1, 0xf3, 0x0f, 0xbd, 0x8d, 0xf0,
	     0xff, 0xff, 0xff),
	/* tzcnt eax, [r12]: base 100 with REX.B still needs a SIB */
	FORM("[r12]", regs_base, false, VMALLOC + 0x4000, 4, 0, 0xf3, 0x41, 0x0f, 0xbc, 0x04, 0x24),
	/* popcnt eax, [r13]: rm 101 with mod 0 would be RIP-relative, so mod 1 disp8 0 */
	FORM("[r13]", regs_base, false, VMALLOC + 0x5000, 4, 0, 0xf3, 0x41, 0x0f, 0xb8, 0x45, 0x00),
	/* popcnt eax, [r13] through a SIB: base 101 + REX.B, mod 1 */
	FORM("[r13] sib", regs_base, false, VMALLOC + 0x5000, 4, 0, 0xf3, 0x41, 0x0f, 0xb8, 0x44,
	     0x25, 0x00),
	/* popcnt r11, [r12+r9*8] with REX.WRXB */
	FORM("[r12+r9*8]", regs_base, false, VMALLOC + 0x4100, 8, 11, 0xf3, 0x4f, 0x0f, 0xb8, 0x1c,
	     0xcc),
	/* popcnt eax, [rip+0x10] */
	FORM("[rip+disp32]", NULL, true, 0x10, 4, 0, 0xf3, 0x0f, 0xb8, 0x05, 0x10, 0x00, 0x00,
	     0x00),
	/* popcnt rax, [rip-0x20] */
	FORM("[rip-disp32]", NULL, true, (uint64_t)-0x20, 8, 0, 0xf3, 0x48, 0x0f, 0xb8, 0x05, 0xe0,
	     0xff, 0xff, 0xff),
	/* REX.B does not turn RIP-relative into [r13] (SDM Vol. 2A Table 2-5) */
	FORM("[rip] rex.b", regs_base, true, 0, 4, 0, 0xf3, 0x41, 0x0f, 0xb8, 0x05, 0x00, 0x00,
	     0x00, 0x00),
	/* popcnt rax, [rax+r9*8]: REX.WX, SIB scale 3, index 001, base 000 */
	FORM("[rax+r9*8]", regs_index, false, VMALLOC + 0x6100, 8, 0, 0xf3, 0x4a, 0x0f, 0xb8, 0x04,
	     0xc8),
	/* popcnt eax, [rax+r12*2]: with REX.X, index 100 is r12, not "none" */
	FORM("[rax+r12*2]", regs_index, false, VMALLOC + 0x6060, 4, 0, 0xf3, 0x42, 0x0f, 0xb8, 0x04,
	     0x60),
	/* popcnt eax, [rax+(none)*4]: index 100 without REX.X is no index */
	FORM("[rax] index none", regs_index, false, VMALLOC + 0x6000, 4, 0, 0xf3, 0x0f, 0xb8, 0x04,
	     0xa0),
	/* popcnt eax, [rcx*8+0x1000]: base 101 with mod 0 is disp32 and no base */
	FORM("[rcx*8+disp32]", regs_index, false, 0x1080, 4, 0, 0xf3, 0x0f, 0xb8, 0x04, 0xcd, 0x00,
	     0x10, 0x00, 0x00),
	/* ...and REX.B does not make that base r13 (SDM Vol. 2A Table 2-5) */
	FORM("[disp32] rex.b", regs_base, false, 0x2000, 4, 0, 0xf3, 0x41, 0x0f, 0xb8, 0x04, 0x25,
	     0x00, 0x20, 0x00, 0x00),
	/* popcnt eax, [rbp+rcx+4]: base 101 with mod 1 is rbp */
	FORM("[rbp+rcx+disp8]", regs_base, false, VMALLOC + 0x3014, 4, 0, 0xf3, 0x0f, 0xb8, 0x44,
	     0x0d, 0x04),
	/* popcnt rax, gs:[0x28] (SIB without base or index) */
	FORM("gs:[disp32]", NULL, false, GS_BASE + 0x28, 8, 0, 0x65, 0xf3, 0x48, 0x0f, 0xb8, 0x04,
	     0x25, 0x28, 0x00, 0x00, 0x00),
	/* popcnt eax, fs:[rax] */
	FORM("fs:[rax]", regs_small, false, FS_BASE + 0x100, 4, 0, 0x64, 0xf3, 0x0f, 0xb8, 0x00),
	/* ds:, es:, cs:, ss: have no base in 64-bit mode (setup_long gives them one) */
	FORM("ds:[rax]", regs_small, false, 0x100, 4, 0, 0x3e, 0xf3, 0x0f, 0xb8, 0x00),
	FORM("es:[rax]", regs_small, false, 0x100, 4, 0, 0x26, 0xf3, 0x0f, 0xb8, 0x00),
	FORM("cs:[rax]", regs_small, false, 0x100, 4, 0, 0x2e, 0xf3, 0x0f, 0xb8, 0x00),
	FORM("ss:[rax]", regs_small, false, 0x100, 4, 0, 0x36, 0xf3, 0x0f, 0xb8, 0x00),
	/* repeated and conflicting segment prefixes: the last one counts */
	FORM("gs gs gs", regs_small, false, GS_BASE + 0x100, 4, 0, 0x65, 0x65, 0x65, 0xf3, 0x0f,
	     0xb8, 0x00),
	FORM("gs ds", regs_small, false, 0x100, 4, 0, 0x65, 0x3e, 0xf3, 0x0f, 0xb8, 0x00),
	FORM("ds gs", regs_small, false, GS_BASE + 0x100, 4, 0, 0x3e, 0x65, 0xf3, 0x0f, 0xb8, 0x00),
	/* 67: a 32-bit effective address, [eax+ebx] */
	FORM("addr32 [eax+ebx]", regs_addr32, false, 0x8100, 4, 0, 0x67, 0xf3, 0x0f, 0xb8, 0x04,
	     0x18),
	/* 67 with GS: the base is added after truncation */
	FORM("addr32 gs:[eax]", regs_addr32, false, GS_BASE + 0x8000, 4, 0, 0x67, 0x65, 0xf3, 0x0f,
	     0xb8, 0x00),
	/* 66: a 16-bit operand is a 2-byte read */
	FORM("word [rax]", regs_small, false, 0x100, 2, 0, 0x66, 0xf3, 0x0f, 0xbc, 0x00),
};

static enum x86_insn form_kind(const struct memory_form *f)
{
	size_t i;

	for (i = 0; i + 1 < f->len; i++) {
		if (f->bytes[i] == 0x0f) {
			return f->bytes[i + 1] == 0xb8	 ? X86_INSN_POPCNT
			       : f->bytes[i + 1] == 0xbd ? X86_INSN_LZCNT
							 : X86_INSN_TZCNT;
		}
	}
	fail();
	return X86_INSN_UNKNOWN;
}

static void check_memory_form(const struct memory_form *f)
{
	struct kvm_regs regs, before;
	struct kvm_sregs sregs;
	struct fake_mem mem;
	struct x86_emulate_ops ops;
	enum x86_insn kind = form_kind(f);
	uint64_t gva, result, flags = 0;

	print_message("memory form %s\n", f->name);
	setup_long(&regs, &sregs);
	regs.rflags = RFLAGS_FIXED | RFLAGS_ARITH;
	if (f->setup)
		f->setup(&regs);
	gva = f->rip_relative ? regs.rip + f->len + f->gva : f->gva;
	fake_init(&mem, &ops, gva, NULL, 0);
	fake_set_u64(&mem, 0x0f0f0f0f0f0f0f0fULL);
	before = regs;

	expect_done(&regs, &sregs, f->bytes, f->len, &ops, kind, f->len, X86_EMULATE_DONE);
	assert_int_equal(mem.reads, 1);
	assert_int_equal(mem.last_gva, gva);
	assert_int_equal(mem.last_len, f->size);

	/* 0x0f in every byte: 4 bits each, 4 leading zeros, no trailing zeros. */
	if (kind == X86_INSN_POPCNT)
		result = 4 * f->size;
	else if (kind == X86_INSN_LZCNT)
		result = 4;
	else
		result = 0;
	if (result == 0)
		flags = RFLAGS_ZF;
	before.rip += f->len;
	before.rflags = RFLAGS_FIXED | flags;
	if (f->size == 2)
		*reg(&before, f->dest) = (*reg(&before, f->dest) & ~0xffffULL) | result;
	else
		*reg(&before, f->dest) = result;
	assert_memory_equal(&regs, &before, sizeof(regs));
}

static void test_memory_forms(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(memory_forms) / sizeof(memory_forms[0]); i++)
		check_memory_form(&memory_forms[i]);
}

static void test_memory_refused(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct fake_mem mem;
	struct x86_emulate_ops ops;
	const uint8_t popcnt_rax_mem[] = { 0xf3, 0x48, 0x0f, 0xb8, 0x00 }; /* popcnt rax, [rax] */
	const uint8_t popcnt_reg[] = { 0xf3, 0x48, 0x0f, 0xb8, 0xc1 };	   /* popcnt rax, rcx */

	(void)state;
	/* The read fails: refused, nothing changed. */
	setup_long(&regs, &sregs);
	regs.rax = VMALLOC;
	fake_init(&mem, &ops, VMALLOC, NULL, 0);
	mem.fail = true;
	expect_unhandled(&regs, &sregs, popcnt_rax_mem, sizeof(popcnt_rax_mem), &ops,
			 X86_INSN_POPCNT);
	assert_int_equal(mem.reads, 1);
	assert_int_equal(mem.last_gva, VMALLOC);

	/* Half the operand lies outside what the fake serves. */
	mem.fail = false;
	regs.rax = VMALLOC + sizeof(mem.buf) - 4;
	expect_unhandled(&regs, &sregs, popcnt_rax_mem, sizeof(popcnt_rax_mem), &ops,
			 X86_INSN_POPCNT);

	/* No ops at all. */
	regs.rax = VMALLOC;
	expect_unhandled(&regs, &sregs, popcnt_rax_mem, sizeof(popcnt_rax_mem), NULL,
			 X86_INSN_POPCNT);

	/* A non-canonical address is #GP on hardware: refused without reading. */
	mem.reads = 0;
	regs.rax = 0x0000800000000000ULL;
	expect_unhandled(&regs, &sregs, popcnt_rax_mem, sizeof(popcnt_rax_mem), &ops,
			 X86_INSN_POPCNT);
	regs.rax = 0x00007ffffffffffcULL; /* the 8-byte operand runs past the canonical end */
	expect_unhandled(&regs, &sregs, popcnt_rax_mem, sizeof(popcnt_rax_mem), &ops,
			 X86_INSN_POPCNT);
	regs.rax = 0xffff7ffffffffffcULL; /* starts non-canonical, ends canonical */
	expect_unhandled(&regs, &sregs, popcnt_rax_mem, sizeof(popcnt_rax_mem), &ops,
			 X86_INSN_POPCNT);
	assert_int_equal(mem.reads, 0);
	/* ...but with 5-level paging 0x0000800000000000 is fine. */
	sregs.cr4 |= 1ULL << 12;
	regs.rax = 0x0000800000000000ULL;
	fake_init(&mem, &ops, regs.rax, NULL, 0);
	expect_done(&regs, &sregs, popcnt_rax_mem, sizeof(popcnt_rax_mem), &ops, X86_INSN_POPCNT, 5,
		    X86_EMULATE_DONE);

	/* At CPL 3 a memory operand is refused (ops->read does not check privilege)... */
	setup_long(&regs, &sregs);
	set_cpl3(&sregs);
	regs.rax = VMALLOC;
	fake_init(&mem, &ops, VMALLOC, NULL, 0);
	expect_unhandled(&regs, &sregs, popcnt_rax_mem, sizeof(popcnt_rax_mem), &ops,
			 X86_INSN_POPCNT);
	assert_int_equal(mem.reads, 0);
	/* ...while a register operand is fine. */
	regs.rcx = 0xff;
	expect_done(&regs, &sregs, popcnt_reg, sizeof(popcnt_reg), NULL, X86_INSN_POPCNT, 5,
		    X86_EMULATE_DONE);
	assert_int_equal(regs.rax, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_forms),
		cmocka_unit_test(test_memory_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
