/*
 * Unit tests for vmm/arch/x86_64/emulate.c: POPCNT, LZCNT and TZCNT with register operands
 * (values, flags, every register, operand sizes), their prefixes, and random sources
 * checked against this CPU's own instructions. Harness: x86_emulate_harness.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "x86_emulate_harness.h"

/* --- POPCNT / LZCNT / TZCNT: values and flags ----------------------------------------- */

struct bitcount_case {
	enum x86_insn kind;
	unsigned int bits;
	uint64_t src;
	uint64_t result;
	uint64_t flags; /* of the arithmetic flags, exactly these are set */
};

#define TOP16	0x8000ULL
#define TOP32	0x80000000ULL
#define TOP64	0x8000000000000000ULL
#define ONES(b) ((b) == 64 ? UINT64_MAX : (1ULL << (b)) - 1)

static const struct bitcount_case bitcount_cases[] = {
	{ X86_INSN_POPCNT, 16, 0, 0, RFLAGS_ZF },
	{ X86_INSN_POPCNT, 16, 1, 1, 0 },
	{ X86_INSN_POPCNT, 16, TOP16, 1, 0 },
	{ X86_INSN_POPCNT, 16, ONES(16), 16, 0 },
	{ X86_INSN_POPCNT, 32, 0, 0, RFLAGS_ZF },
	{ X86_INSN_POPCNT, 32, 1, 1, 0 },
	{ X86_INSN_POPCNT, 32, TOP32, 1, 0 },
	{ X86_INSN_POPCNT, 32, ONES(32), 32, 0 },
	{ X86_INSN_POPCNT, 32, 0x00f0f00f, 12, 0 },
	{ X86_INSN_POPCNT, 64, 0, 0, RFLAGS_ZF },
	{ X86_INSN_POPCNT, 64, 1, 1, 0 },
	{ X86_INSN_POPCNT, 64, TOP64, 1, 0 },
	{ X86_INSN_POPCNT, 64, ONES(64), 64, 0 },

	{ X86_INSN_LZCNT, 16, 0, 16, RFLAGS_CF },
	{ X86_INSN_LZCNT, 16, 1, 15, 0 },
	{ X86_INSN_LZCNT, 16, TOP16, 0, RFLAGS_ZF },
	{ X86_INSN_LZCNT, 16, ONES(16), 0, RFLAGS_ZF },
	{ X86_INSN_LZCNT, 32, 0, 32, RFLAGS_CF },
	{ X86_INSN_LZCNT, 32, 1, 31, 0 },
	{ X86_INSN_LZCNT, 32, TOP32, 0, RFLAGS_ZF },
	{ X86_INSN_LZCNT, 32, ONES(32), 0, RFLAGS_ZF },
	{ X86_INSN_LZCNT, 32, 0x00010000, 15, 0 },
	{ X86_INSN_LZCNT, 64, 0, 64, RFLAGS_CF },
	{ X86_INSN_LZCNT, 64, 1, 63, 0 },
	{ X86_INSN_LZCNT, 64, TOP64, 0, RFLAGS_ZF },
	{ X86_INSN_LZCNT, 64, ONES(64), 0, RFLAGS_ZF },

	{ X86_INSN_TZCNT, 16, 0, 16, RFLAGS_CF },
	{ X86_INSN_TZCNT, 16, 1, 0, RFLAGS_ZF },
	{ X86_INSN_TZCNT, 16, TOP16, 15, 0 },
	{ X86_INSN_TZCNT, 16, ONES(16), 0, RFLAGS_ZF },
	{ X86_INSN_TZCNT, 32, 0, 32, RFLAGS_CF },
	{ X86_INSN_TZCNT, 32, 1, 0, RFLAGS_ZF },
	{ X86_INSN_TZCNT, 32, TOP32, 31, 0 },
	{ X86_INSN_TZCNT, 32, ONES(32), 0, RFLAGS_ZF },
	{ X86_INSN_TZCNT, 32, 0x00010000, 16, 0 },
	{ X86_INSN_TZCNT, 64, 0, 64, RFLAGS_CF },
	{ X86_INSN_TZCNT, 64, 1, 0, RFLAGS_ZF },
	{ X86_INSN_TZCNT, 64, TOP64, 63, 0 },
	{ X86_INSN_TZCNT, 64, ONES(64), 0, RFLAGS_ZF },
};

static uint8_t bitcount_opcode(enum x86_insn kind)
{
	return kind == X86_INSN_POPCNT ? 0xb8 : kind == X86_INSN_LZCNT ? 0xbd : 0xbc;
}

/* [66] F3 [REX] 0F op modrm: REX gets W for 64-bit plus the given R/X/B bits. */
static size_t encode_bitcount(uint8_t *out, enum x86_insn kind, unsigned int bits, uint8_t rex,
			      uint8_t modrm)
{
	size_t n = 0;

	if (bits == 16)
		out[n++] = 0x66;
	out[n++] = 0xf3;
	if (bits == 64)
		rex |= 0x48;
	if (rex)
		out[n++] = rex | 0x40;
	out[n++] = 0x0f;
	out[n++] = bitcount_opcode(kind);
	out[n++] = modrm;
	return n;
}

/* What the destination register must hold after writing `result` at this size. */
static uint64_t merged(uint64_t old, uint64_t result, unsigned int bits)
{
	if (bits == 16)
		return (old & ~0xffffULL) | result;
	return result; /* 32-bit writes zero-extend */
}

static void check_bitcount_case(const struct bitcount_case *c, bool memory)
{
	struct kvm_regs regs, before;
	struct kvm_sregs sregs;
	struct fake_mem mem;
	struct x86_emulate_ops ops;
	uint8_t bytes[16];
	size_t len;
	/* Garbage above the operand size must not count. */
	uint64_t src = c->src | (c->bits == 64 ? 0 : 0xdead0000beef0000ULL << (c->bits - 16) << 16);

	setup_long(&regs, &sregs);
	/* All arithmetic flags set before, so clearing shows; IF and bit 1 must survive. */
	regs.rflags = RFLAGS_FIXED | RFLAGS_IF | RFLAGS_ARITH;
	regs.rdx = 0xaaaaaaaaaaaaaaaaULL;
	if (memory) {
		/* dest rdx, source [rax] */
		regs.rax = 0x7ffff000;
		fake_init(&mem, &ops, 0x7ffff000, NULL, 0);
		fake_set_u64(&mem, src);
		len = encode_bitcount(bytes, c->kind, c->bits, 0, 0x10);
	} else {
		/* dest rdx, source rcx */
		regs.rcx = src;
		len = encode_bitcount(bytes, c->kind, c->bits, 0, 0xd1);
	}
	before = regs;
	expect_done(&regs, &sregs, bytes, len, memory ? &ops : NULL, c->kind, len,
		    X86_EMULATE_DONE);
	if (memory) {
		assert_int_equal(mem.reads, 1);
		assert_int_equal(mem.last_gva, 0x7ffff000);
		assert_int_equal(mem.last_len, c->bits / 8);
	}
	before.rip += len;
	before.rdx = merged(0xaaaaaaaaaaaaaaaaULL, c->result, c->bits);
	before.rflags = RFLAGS_FIXED | RFLAGS_IF | c->flags;
	assert_memory_equal(&regs, &before, sizeof(regs));
}

static void test_bitcount_values(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bitcount_cases) / sizeof(bitcount_cases[0]); i++) {
		check_bitcount_case(&bitcount_cases[i], false);
		check_bitcount_case(&bitcount_cases[i], true);
	}
}

/* popcnt r64, r64 for every destination and source register, REX.R and REX.B included. */
static void test_bitcount_all_registers(void **state)
{
	struct kvm_regs regs, before;
	struct kvm_sregs sregs;
	uint8_t bytes[8];
	unsigned int dst, src;
	size_t len;

	(void)state;
	for (dst = 0; dst < 16; dst++) {
		for (src = 0; src < 16; src++) {
			uint8_t rex = (dst & 8 ? 0x4 : 0) | (src & 8 ? 0x1 : 0);
			uint8_t modrm = 0xc0 | (dst & 7) << 3 | (src & 7);

			setup_long(&regs, &sregs);
			/* A different popcount per register: src has src+1 bits set. */
			for (unsigned int i = 0; i < 16; i++)
				*reg(&regs, i) = ONES(i + 1) << 20;
			before = regs;
			len = encode_bitcount(bytes, X86_INSN_POPCNT, 64, rex, modrm);
			assert_int_equal(emulate(&regs, &sregs, bytes, len, NULL, NULL),
					 X86_EMULATE_DONE);
			before.rip += len;
			*reg(&before, dst) = src + 1;
			before.rflags = RFLAGS_FIXED | RFLAGS_IF;
			assert_memory_equal(&regs, &before, sizeof(regs));
		}
	}
}

/* 32-bit and 16-bit forms also reach r8-r15 through REX without W. */
static void test_bitcount_rex_no_w(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	const uint8_t lzcnt_r9d_r14d[] = { 0xf3, 0x45, 0x0f, 0xbd, 0xce };
	const uint8_t tzcnt_r15w_ax[] = { 0x66, 0xf3, 0x44, 0x0f, 0xbc, 0xf8 };

	(void)state;
	setup_long(&regs, &sregs);
	regs.r14 = 0xffffffff00000100ULL;
	regs.r9 = UINT64_MAX;
	expect_done(&regs, &sregs, lzcnt_r9d_r14d, sizeof(lzcnt_r9d_r14d), NULL, X86_INSN_LZCNT, 5,
		    X86_EMULATE_DONE);
	assert_int_equal(regs.r9, 23);

	regs.rax = 0x1230;
	regs.r15 = 0x1111222233334444ULL;
	expect_done(&regs, &sregs, tzcnt_r15w_ax, sizeof(tzcnt_r15w_ax), NULL, X86_INSN_TZCNT, 6,
		    X86_EMULATE_DONE);
	assert_int_equal(regs.r15, 0x1111222233330004ULL);
}

/* --- Prefixes ------------------------------------------------------------------------ */

static void run_popcnt(const uint8_t *bytes, size_t len, uint64_t src, uint64_t dest_before,
		       uint64_t dest_after)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	setup_long(&regs, &sregs);
	regs.rcx = src;
	regs.rax = dest_before;
	expect_done(&regs, &sregs, bytes, len, NULL, X86_INSN_POPCNT, len, X86_EMULATE_DONE);
	assert_int_equal(regs.rax, dest_after);
}

static void test_prefixes(void **state)
{
	const uint8_t osize_rexw[] = { 0x66, 0xf3, 0x48, 0x0f, 0xb8, 0xc1 };
	const uint8_t rep_osize[] = { 0xf3, 0x66, 0x0f, 0xb8, 0xc1 };
	const uint8_t osize_rep[] = { 0x66, 0xf3, 0x0f, 0xb8, 0xc1 };
	const uint8_t rex_before_rep[] = { 0x48, 0xf3, 0x0f, 0xb8, 0xc1 };
	const uint8_t rex_before_osize[] = { 0xf3, 0x48, 0x66, 0x0f, 0xb8, 0xc1 };
	const uint8_t two_rex[] = { 0xf3, 0x41, 0x48, 0x0f, 0xb8, 0xc1 };
	const uint8_t segs[] = { 0x2e, 0x3e, 0x26, 0x36, 0xf3, 0x0f, 0xb8, 0xc1 };
	const uint8_t addr32_reg[] = { 0x67, 0xf3, 0x48, 0x0f, 0xb8, 0xc1 };
	uint64_t all = UINT64_MAX;

	(void)state;
	/* REX.W wins over 66. */
	run_popcnt(osize_rexw, sizeof(osize_rexw), all, 0x1234, 64);
	/* 66 in either order with F3: 16 bits, upper bits of the destination kept. */
	run_popcnt(rep_osize, sizeof(rep_osize), all, 0xaaaaaaaaaaaaaaaaULL, 0xaaaaaaaaaaaa0010ULL);
	run_popcnt(osize_rep, sizeof(osize_rep), all, 0xaaaaaaaaaaaaaaaaULL, 0xaaaaaaaaaaaa0010ULL);
	/* A REX that is not right before the opcode is ignored: 32-bit. */
	run_popcnt(rex_before_rep, sizeof(rex_before_rep), all, all, 32);
	run_popcnt(rex_before_osize, sizeof(rex_before_osize), all, all, 0xffffffffffff0010ULL);
	/* Of two REX prefixes only the last counts: REX.W, not REX.B (which would be r9). */
	run_popcnt(two_rex, sizeof(two_rex), all, 0, 64);
	/* Segment overrides and 67 do nothing to a register operand. */
	run_popcnt(segs, sizeof(segs), all, all, 32);
	run_popcnt(addr32_reg, sizeof(addr32_reg), all, all, 64);
}

static void test_prefixes_refused(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct fake_mem mem;
	struct x86_emulate_ops ops;
	const uint8_t lock_popcnt[] = { 0xf0, 0xf3, 0x0f, 0xb8, 0xc1 };
	const uint8_t lock_lzcnt_mem[] = { 0xf3, 0xf0, 0x0f, 0xbd, 0x00 };
	const uint8_t lock_tzcnt[] = { 0xf3, 0xf0, 0x48, 0x0f, 0xbc, 0xc1 };
	const uint8_t repne_rep[] = { 0xf2, 0xf3, 0x0f, 0xb8, 0xc1 };
	const uint8_t repne[] = { 0xf2, 0x0f, 0xb8, 0xc1 };
	const uint8_t jmpe[] = { 0x0f, 0xb8, 0xc1 };
	const uint8_t bsf[] = { 0x0f, 0xbc, 0xc1 };
	const uint8_t bsr[] = { 0x48, 0x0f, 0xbd, 0xc1 };
	uint8_t bytes[20];
	size_t i;

	(void)state;
	setup_long(&regs, &sregs);
	expect_unhandled(&regs, &sregs, lock_popcnt, sizeof(lock_popcnt), NULL, X86_INSN_POPCNT);
	expect_unhandled(&regs, &sregs, lock_lzcnt_mem, sizeof(lock_lzcnt_mem), NULL,
			 X86_INSN_LZCNT);
	expect_unhandled(&regs, &sregs, lock_tzcnt, sizeof(lock_tzcnt), NULL, X86_INSN_TZCNT);
	expect_unhandled(&regs, &sregs, repne_rep, sizeof(repne_rep), NULL, X86_INSN_UNKNOWN);
	expect_unhandled(&regs, &sregs, repne, sizeof(repne), NULL, X86_INSN_UNKNOWN);
	expect_unhandled(&regs, &sregs, jmpe, sizeof(jmpe), NULL, X86_INSN_UNKNOWN);
	expect_unhandled(&regs, &sregs, bsf, sizeof(bsf), NULL, X86_INSN_UNKNOWN);
	expect_unhandled(&regs, &sregs, bsr, sizeof(bsr), NULL, X86_INSN_UNKNOWN);

	/* 14 prefixes + INT3 is exactly 15 bytes and fine... */
	for (i = 0; i < 14; i++)
		bytes[i] = i % 2 ? 0x66 : 0x3e;
	bytes[14] = 0xcc;
	expect_done(&regs, &sregs, bytes, 15, NULL, X86_INSN_INT3, 15, X86_EMULATE_INJECT_BP);
	/* ...15 prefixes + INT3 is 16: #GP on hardware. */
	setup_long(&regs, &sregs);
	for (i = 0; i < 15; i++)
		bytes[i] = 0x66;
	bytes[15] = 0xcc;
	expect_unhandled(&regs, &sregs, bytes, 16, NULL, X86_INSN_UNKNOWN);
	/* ...also when the 16th byte could be fetched: nothing past 15 bytes is read. */
	fake_init(&mem, &ops, regs.rip, bytes, 16);
	expect_unhandled(&regs, &sregs, bytes, 15, &ops, X86_INSN_UNKNOWN);
	assert_int_equal(mem.reads, 0);
	expect_unhandled(&regs, &sregs, bytes, 3, &ops, X86_INSN_UNKNOWN);
	assert_true(mem.last_gva + mem.last_len <= regs.rip + 15);
	/* 16 prefixes. */
	for (i = 0; i < 16; i++)
		bytes[i] = 0x3e;
	bytes[16] = 0xcc;
	expect_unhandled(&regs, &sregs, bytes, 17, NULL, X86_INSN_UNKNOWN);
	/* A POPCNT whose SIB and disp32 push it to 16 bytes. */
	for (i = 0; i < 7; i++)
		bytes[i] = 0x3e;
	memcpy(bytes + 7, (const uint8_t[]){ 0xf3, 0x0f, 0xb8, 0x04, 0x25, 0, 0, 0, 0 }, 9);
	expect_unhandled(&regs, &sregs, bytes, 16, NULL, X86_INSN_POPCNT);
	/* One prefix fewer, 15 bytes: decodes, and only fails for want of memory. */
	expect_unhandled(&regs, &sregs, bytes + 1, 15, NULL, X86_INSN_POPCNT);
}

/* --- Against the host CPU ------------------------------------------------------------ */

#if defined(__x86_64__)
static bool host_has_bitcounts(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 23))) /* POPCNT */
		return false;
	if (!__get_cpuid(0x80000001, &a, &b, &c, &d) || !(c & (1u << 5))) /* LZCNT (ABM) */
		return false;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 3))) /* BMI1: TZCNT */
		return false;
	return true;
}

#define HOST_RUN(mnemonic, type, src, res, flags)         \
	do {                                              \
		type s_ = (type)(src), r_;                \
		asm(mnemonic " %2, %0\n\tpushf\n\tpop %1" \
		    : "=&r"(r_), "=r"(flags)              \
		    : "r"(s_)                             \
		    : "cc");                              \
		res = r_;                                 \
	} while (0)

static void host_bitcount(enum x86_insn kind, unsigned int bits, uint64_t src, uint64_t *res,
			  uint64_t *flags)
{
#define HOST_SIZES(m)                                             \
	do {                                                      \
		if (bits == 16)                                   \
			HOST_RUN(m, uint16_t, src, *res, *flags); \
		else if (bits == 32)                              \
			HOST_RUN(m, uint32_t, src, *res, *flags); \
		else                                              \
			HOST_RUN(m, uint64_t, src, *res, *flags); \
	} while (0)
	if (kind == X86_INSN_POPCNT)
		HOST_SIZES("popcnt");
	else if (kind == X86_INSN_LZCNT)
		HOST_SIZES("lzcnt");
	else
		HOST_SIZES("tzcnt");
#undef HOST_SIZES
}

/* Random sources through the emulator and through this CPU: same result, same CF/ZF. */
static void test_against_host(void **state)
{
	static const enum x86_insn kinds[] = { X86_INSN_POPCNT, X86_INSN_LZCNT, X86_INSN_TZCNT };
	static const unsigned int sizes[] = { 16, 32, 64 };
	unsigned int k, s, n;

	(void)state;
	if (!host_has_bitcounts())
		skip();
	for (k = 0; k < 3; k++) {
		for (s = 0; s < 3; s++) {
			for (n = 0; n < 2000; n++) {
				struct kvm_regs regs;
				struct kvm_sregs sregs;
				uint8_t bytes[8];
				uint64_t src = rng() >> (rng() % 64), res, flags, defined;
				size_t len;

				setup_long(&regs, &sregs);
				regs.rcx = src;
				regs.rax = 0;
				len = encode_bitcount(bytes, kinds[k], sizes[s], 0, 0xc1);
				assert_int_equal(emulate(&regs, &sregs, bytes, len, NULL, NULL),
						 X86_EMULATE_DONE);
				host_bitcount(kinds[k], sizes[s], src, &res, &flags);
				assert_int_equal(regs.rax, res);
				defined = kinds[k] == X86_INSN_POPCNT ? RFLAGS_ARITH
								      : RFLAGS_CF | RFLAGS_ZF;
				assert_int_equal(regs.rflags & defined, flags & defined);
			}
		}
	}
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitcount_values),
		cmocka_unit_test(test_bitcount_all_registers),
		cmocka_unit_test(test_bitcount_rex_no_w),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_prefixes_refused),
#if defined(__x86_64__)
		cmocka_unit_test(test_against_host),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
