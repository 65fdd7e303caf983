/*
 * Unit tests for vmm/arch/x86_64/emulate.c: the instructions we finish for KVM on PVM hosts.
 * Registers are plain structs; guest memory is a fake ops->read serving one small buffer at a
 * known guest-virtual address and recording what was asked of it.
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

/* Register by its x86 encoding number, written independently of the code under test. */
static __u64 *reg(struct kvm_regs *regs, unsigned int index)
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

static void fill_regs(struct kvm_regs *regs)
{
	unsigned int i;

	for (i = 0; i < 16; i++)
		*reg(regs, i) = 0x1000000000000000ULL * (i + 1) + 0x10101 * i + 0xa5;
}

/* A 64-bit kernel at CPL 0, as the vCPU loop would see it after KVM_GET_REGS/SREGS. */
static void setup_long(struct kvm_regs *regs, struct kvm_sregs *sregs)
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
static void setup_prot32(struct kvm_regs *regs, struct kvm_sregs *sregs)
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

static void set_cpl3(struct kvm_sregs *sregs)
{
	sregs->cs.selector = 0x33;
	sregs->cs.dpl = 3;
}

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

static int fake_read(void *opaque, uint64_t gva, void *buf, size_t len)
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

static void fake_init(struct fake_mem *mem, struct x86_emulate_ops *ops, uint64_t gva,
		      const void *data, size_t size)
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

static void fake_set_u64(struct fake_mem *mem, uint64_t value)
{
	unsigned int i;

	for (i = 0; i < 8; i++)
		mem->buf[i] = (uint8_t)(value >> (8 * i));
}

/* Runs x86_emulate on an exactly-sized heap copy of the bytes, so ASan sees over-reads. */
static enum x86_emulate_result emulate(struct kvm_regs *regs, struct kvm_sregs *sregs,
				       const uint8_t *bytes, size_t len,
				       const struct x86_emulate_ops *ops, enum x86_insn *kind)
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
static void expect_unhandled(struct kvm_regs *regs, struct kvm_sregs *sregs, const uint8_t *bytes,
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
static void expect_done(struct kvm_regs *regs, struct kvm_sregs *sregs, const uint8_t *bytes,
			size_t len, const struct x86_emulate_ops *ops, enum x86_insn want,
			size_t len_done, enum x86_emulate_result want_result)
{
	struct kvm_regs before = *regs;
	struct kvm_sregs sbefore = *sregs;
	enum x86_insn kind = X86_INSN_NR;

	assert_int_equal(emulate(regs, sregs, bytes, len, ops, &kind), want_result);
	assert_int_equal(kind, want);
	assert_int_equal(regs->rip, before.rip + len_done);
	assert_memory_equal(sregs, &sbefore, sizeof(sbefore));
}

/* --- INT3 ---------------------------------------------------------------------------- */

static void test_int3(void **state)
{
	struct kvm_regs regs, before;
	struct kvm_sregs sregs;
	const uint8_t int3[] = { 0xcc, 0x90, 0x90 };

	(void)state;
	setup_long(&regs, &sregs);
	before = regs;
	expect_done(&regs, &sregs, int3, sizeof(int3), NULL, X86_INSN_INT3, 1,
		    X86_EMULATE_INJECT_BP);
	before.rip += 1;
	assert_memory_equal(&regs, &before, sizeof(regs));

	setup_prot32(&regs, &sregs);
	before = regs;
	expect_done(&regs, &sregs, int3, 1, NULL, X86_INSN_INT3, 1, X86_EMULATE_INJECT_BP);
	before.rip += 1;
	assert_memory_equal(&regs, &before, sizeof(regs));

	/* EIP wraps at 4 GiB in 32-bit mode. */
	regs.rip = 0xffffffff;
	assert_int_equal(emulate(&regs, &sregs, int3, 1, NULL, NULL), X86_EMULATE_INJECT_BP);
	assert_int_equal(regs.rip, 0);

	/* INT3 is legal at any CPL. */
	setup_long(&regs, &sregs);
	set_cpl3(&sregs);
	expect_done(&regs, &sregs, int3, 1, NULL, X86_INSN_INT3, 1, X86_EMULATE_INJECT_BP);
}

static void test_int3_refused(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	const uint8_t int_3[] = { 0xcd, 0x03 };
	const uint8_t lock_int3[] = { 0xf0, 0xcc };
	const uint8_t inc_int3[] = { 0x40, 0xcc }; /* INC EAX in 32-bit mode */

	(void)state;
	setup_long(&regs, &sregs);
	expect_unhandled(&regs, &sregs, int_3, sizeof(int_3), NULL, X86_INSN_UNKNOWN);
	expect_unhandled(&regs, &sregs, lock_int3, sizeof(lock_int3), NULL, X86_INSN_INT3);
	setup_prot32(&regs, &sregs);
	expect_unhandled(&regs, &sregs, inc_int3, sizeof(inc_int3), NULL, X86_INSN_UNKNOWN);
	/* ...while in 64-bit mode 40 is a REX prefix, ignored by INT3. */
	setup_long(&regs, &sregs);
	expect_done(&regs, &sregs, inc_int3, sizeof(inc_int3), NULL, X86_INSN_INT3, 2,
		    X86_EMULATE_INJECT_BP);
}

/* --- CLAC / STAC --------------------------------------------------------------------- */

static void check_clac_stac(struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	const uint8_t clac[] = { 0x0f, 0x01, 0xca };
	const uint8_t stac[] = { 0x0f, 0x01, 0xcb };
	struct kvm_regs before;

	regs->rflags = RFLAGS_FIXED | RFLAGS_IF | RFLAGS_ZF | RFLAGS_CF;
	before = *regs;
	expect_done(regs, sregs, stac, sizeof(stac), NULL, X86_INSN_STAC, 3, X86_EMULATE_DONE);
	before.rip += 3;
	before.rflags |= RFLAGS_AC;
	assert_memory_equal(regs, &before, sizeof(before));
	/* STAC with AC already set keeps it set. */
	expect_done(regs, sregs, stac, sizeof(stac), NULL, X86_INSN_STAC, 3, X86_EMULATE_DONE);
	assert_int_equal(regs->rflags, before.rflags);

	before = *regs;
	expect_done(regs, sregs, clac, sizeof(clac), NULL, X86_INSN_CLAC, 3, X86_EMULATE_DONE);
	before.rip += 3;
	before.rflags &= ~RFLAGS_AC;
	assert_memory_equal(regs, &before, sizeof(before));
	assert_int_equal(regs->rflags, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_ZF | RFLAGS_CF);
}

static void test_clac_stac_cpl0(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	(void)state;
	setup_long(&regs, &sregs);
	check_clac_stac(&regs, &sregs);
	setup_prot32(&regs, &sregs);
	check_clac_stac(&regs, &sregs);
}

static void test_clac_stac_refused(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	const uint8_t clac[] = { 0x0f, 0x01, 0xca };
	const uint8_t stac[] = { 0x0f, 0x01, 0xcb };
	const uint8_t lock_clac[] = { 0xf0, 0x0f, 0x01, 0xca };
	const uint8_t osize_stac[] = { 0x66, 0x0f, 0x01, 0xcb };
	const uint8_t rep_clac[] = { 0xf3, 0x0f, 0x01, 0xca };
	const uint8_t monitor[] = { 0x0f, 0x01, 0xc8 };

	(void)state;
	setup_long(&regs, &sregs);
	set_cpl3(&sregs);
	regs.rflags |= RFLAGS_AC;
	expect_unhandled(&regs, &sregs, clac, sizeof(clac), NULL, X86_INSN_CLAC);
	regs.rflags &= ~RFLAGS_AC;
	expect_unhandled(&regs, &sregs, stac, sizeof(stac), NULL, X86_INSN_STAC);

	/* CPL 3 in 32-bit mode, and an RPL/DPL disagreement, are refused too. */
	setup_prot32(&regs, &sregs);
	set_cpl3(&sregs);
	expect_unhandled(&regs, &sregs, stac, sizeof(stac), NULL, X86_INSN_STAC);
	setup_long(&regs, &sregs);
	sregs.cs.dpl = 3;
	expect_unhandled(&regs, &sregs, stac, sizeof(stac), NULL, X86_INSN_STAC);
	setup_long(&regs, &sregs);
	sregs.cs.selector = 0x13;
	expect_unhandled(&regs, &sregs, stac, sizeof(stac), NULL, X86_INSN_STAC);

	setup_long(&regs, &sregs);
	expect_unhandled(&regs, &sregs, lock_clac, sizeof(lock_clac), NULL, X86_INSN_CLAC);
	expect_unhandled(&regs, &sregs, osize_stac, sizeof(osize_stac), NULL, X86_INSN_UNKNOWN);
	expect_unhandled(&regs, &sregs, rep_clac, sizeof(rep_clac), NULL, X86_INSN_UNKNOWN);
	expect_unhandled(&regs, &sregs, monitor, sizeof(monitor), NULL, X86_INSN_UNKNOWN);
}

/* --- FWAIT --------------------------------------------------------------------------- */

static void test_fwait(void **state)
{
	struct kvm_regs regs, before;
	struct kvm_sregs sregs;
	const uint8_t fstsw[] = { 0x9b, 0xdf, 0xe0 }; /* FWAIT; FNSTSW AX */
	const uint8_t lock_fwait[] = { 0xf0, 0x9b };

	(void)state;
	setup_long(&regs, &sregs);
	before = regs;
	/* Only the FWAIT is ours; KVM goes on with the FNSTSW. */
	expect_done(&regs, &sregs, fstsw, sizeof(fstsw), NULL, X86_INSN_FWAIT, 1, X86_EMULATE_DONE);
	before.rip += 1;
	assert_memory_equal(&regs, &before, sizeof(regs));

	setup_prot32(&regs, &sregs);
	expect_done(&regs, &sregs, fstsw, 1, NULL, X86_INSN_FWAIT, 1, X86_EMULATE_DONE);

	/* CR0.TS alone does not trap FWAIT; TS with MP is #NM, which we cannot raise. */
	setup_long(&regs, &sregs);
	sregs.cr0 = (sregs.cr0 & ~0x2ULL) | 0x8;
	expect_done(&regs, &sregs, fstsw, 1, NULL, X86_INSN_FWAIT, 1, X86_EMULATE_DONE);
	sregs.cr0 |= 0x2 | 0x8;
	expect_unhandled(&regs, &sregs, fstsw, 1, NULL, X86_INSN_FWAIT);

	setup_long(&regs, &sregs);
	expect_unhandled(&regs, &sregs, lock_fwait, sizeof(lock_fwait), NULL, X86_INSN_FWAIT);
}

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

/* --- Truncated instructions ---------------------------------------------------------- */

static void test_truncated(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct fake_mem mem;
	struct x86_emulate_ops ops;
	const uint8_t popcnt_rip[] = { 0xf3, 0x48, 0x0f, 0xb8, 0x05, 0x10, 0x00, 0x00, 0x00 };
	const uint8_t clac[] = { 0x0f, 0x01, 0xca };
	size_t have;

	(void)state;
	setup_long(&regs, &sregs);
	/* Without ops, every truncation of the instruction is refused. */
	expect_unhandled(&regs, &sregs, popcnt_rip, 0, NULL, X86_INSN_UNKNOWN);
	expect_unhandled(&regs, &sregs, popcnt_rip, 2, NULL, X86_INSN_UNKNOWN);
	for (have = 4; have < sizeof(popcnt_rip); have++)
		expect_unhandled(&regs, &sregs, popcnt_rip, have, NULL, X86_INSN_POPCNT);
	expect_unhandled(&regs, &sregs, clac, 2, NULL, X86_INSN_UNKNOWN);
	assert_int_equal(x86_emulate(&regs, &sregs, NULL, 0, NULL, NULL), X86_EMULATE_UNHANDLED);

	/*
	 * With ops, the rest comes from CS:RIP. The fake serves the code at RIP; the operand
	 * at RIP+9+0x10 lies inside the same buffer.
	 */
	for (have = 0; have <= sizeof(popcnt_rip); have++) {
		setup_long(&regs, &sregs);
		fake_init(&mem, &ops, regs.rip, popcnt_rip, sizeof(popcnt_rip));
		memset(mem.buf + 9 + 0x10, 0xff, 8);
		expect_done(&regs, &sregs, popcnt_rip, have, &ops, X86_INSN_POPCNT,
			    sizeof(popcnt_rip), X86_EMULATE_DONE);
		assert_int_equal(regs.rax, 64);
		/*
		 * The last read is the operand; every fetch before it stays inside the bytes
		 * KVM did not give us, never past the end of the instruction.
		 */
		assert_int_equal(mem.last_gva, KERNEL_RIP + 9 + 0x10);
		assert_int_equal(mem.last_len, 8);
		assert_true(mem.reads >= 1 && mem.reads <= 32);
		if (have == sizeof(popcnt_rip))
			assert_int_equal(mem.reads, 1);
		else
			assert_true(mem.reads >= 2);
		for (unsigned int i = 0; i + 1 < mem.reads; i++) {
			assert_true(mem.log_gva[i] >= KERNEL_RIP + have);
			assert_true(mem.log_gva[i] + mem.log_len[i] <= KERNEL_RIP + 9);
		}
	}

	/* A fetch failure is a refusal. */
	setup_long(&regs, &sregs);
	fake_init(&mem, &ops, regs.rip, popcnt_rip, sizeof(popcnt_rip));
	mem.fail = true;
	expect_unhandled(&regs, &sregs, popcnt_rip, 3, &ops, X86_INSN_UNKNOWN);

	/* 32-bit mode fetches from CS.base + EIP. */
	setup_prot32(&regs, &sregs);
	sregs.cs.base = 0x10000;
	fake_init(&mem, &ops, 0x10000 + BOOT_EIP, clac, sizeof(clac));
	expect_done(&regs, &sregs, clac, 1, &ops, X86_INSN_CLAC, 3, X86_EMULATE_DONE);
	/* The fetches cover exactly the two missing bytes. */
	assert_int_equal(mem.log_gva[0], 0x10000 + BOOT_EIP + 1);
	assert_int_equal(mem.last_gva + mem.last_len, 0x10000 + BOOT_EIP + 3);
}

/* --- Refusals: other instructions and CPU modes -------------------------------------- */

static void test_unknown(void **state)
{
	static const struct {
		uint8_t bytes[15];
		size_t len;
	} unknown[] = {
		{ { 0x0f, 0x0b }, 2 },			       /* ud2 */
		{ { 0x0f, 0xae, 0x28 }, 3 },		       /* xrstor [rax] */
		{ { 0x48, 0x0f, 0xae, 0x6c, 0x24, 0x10 }, 6 }, /* xrstor64 [rsp+0x10] */
		{ { 0xcd, 0x03 }, 2 },			       /* int 3 (the two-byte form) */
		{ { 0x90 }, 1 },			       /* nop */
		{ { 0xf3, 0x90 }, 2 },			       /* pause */
		{ { 0x0f, 0x01, 0xc8 }, 3 },		       /* monitor */
		{ { 0x0f, 0x01, 0xf8 }, 3 },		       /* swapgs */
		{ { 0xf3, 0x0f, 0xb9, 0xc1 }, 4 },	       /* ud1 with F3 */
		{ { 0xf3, 0x0f, 0xbe, 0xc1 }, 4 },	       /* movsx */
		{ { 0xf3, 0x0f, 0x38, 0xf6, 0xc1 }, 5 },       /* adox */
		{ { 0xc4, 0xe2, 0x78, 0xf2, 0xc1 }, 5 },       /* andn (VEX) */
		{ { 0x0f }, 1 },			       /* half an opcode */
	};
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		setup_long(&regs, &sregs);
		expect_unhandled(&regs, &sregs, unknown[i].bytes, unknown[i].len, NULL,
				 X86_INSN_UNKNOWN);
		setup_prot32(&regs, &sregs);
		expect_unhandled(&regs, &sregs, unknown[i].bytes, unknown[i].len, NULL,
				 X86_INSN_UNKNOWN);
	}
}

static void test_modes(void **state)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	const uint8_t int3[] = { 0xcc };
	const uint8_t popcnt[] = { 0xf3, 0x0f, 0xb8, 0xc1 };
	const uint8_t lzcnt[] = { 0xf3, 0x0f, 0xbd, 0xc1 };

	(void)state;
	/* Bit counts in 32-bit mode are recognised but not emulated. */
	setup_prot32(&regs, &sregs);
	expect_unhandled(&regs, &sregs, popcnt, sizeof(popcnt), NULL, X86_INSN_POPCNT);
	expect_unhandled(&regs, &sregs, lzcnt, sizeof(lzcnt), NULL, X86_INSN_LZCNT);
	/* Compatibility mode (LMA, CS.L=0, CS.D=1) decodes as 32-bit. */
	setup_long(&regs, &sregs);
	sregs.cs.l = 0;
	sregs.cs.db = 1;
	expect_unhandled(&regs, &sregs, popcnt, sizeof(popcnt), NULL, X86_INSN_POPCNT);
	/* CS.L without EFER.LMA is not 64-bit mode. */
	setup_long(&regs, &sregs);
	sregs.efer = 0;
	expect_unhandled(&regs, &sregs, popcnt, sizeof(popcnt), NULL, X86_INSN_UNKNOWN);
	/* Real mode, 16-bit protected mode and virtual-8086 mode: nothing. */
	setup_prot32(&regs, &sregs);
	sregs.cr0 = 0;
	expect_unhandled(&regs, &sregs, int3, 1, NULL, X86_INSN_UNKNOWN);
	setup_prot32(&regs, &sregs);
	sregs.cs.db = 0;
	expect_unhandled(&regs, &sregs, int3, 1, NULL, X86_INSN_UNKNOWN);
	setup_prot32(&regs, &sregs);
	regs.rflags |= 1ULL << 17;
	expect_unhandled(&regs, &sregs, int3, 1, NULL, X86_INSN_UNKNOWN);
	/* NULL registers and a NULL kind do not crash. */
	assert_int_equal(x86_emulate(NULL, &sregs, int3, 1, NULL, NULL), X86_EMULATE_UNHANDLED);
	assert_int_equal(x86_emulate(&regs, NULL, int3, 1, NULL, NULL), X86_EMULATE_UNHANDLED);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(x86_insn_name(X86_INSN_UNKNOWN), "unknown");
	assert_string_equal(x86_insn_name(X86_INSN_INT3), "int3");
	assert_string_equal(x86_insn_name(X86_INSN_CLAC), "clac");
	assert_string_equal(x86_insn_name(X86_INSN_STAC), "stac");
	assert_string_equal(x86_insn_name(X86_INSN_POPCNT), "popcnt");
	assert_string_equal(x86_insn_name(X86_INSN_LZCNT), "lzcnt");
	assert_string_equal(x86_insn_name(X86_INSN_TZCNT), "tzcnt");
	assert_string_equal(x86_insn_name(X86_INSN_FWAIT), "fwait");
	assert_string_equal(x86_insn_name(X86_INSN_NR), "unknown");
	assert_string_equal(x86_insn_name((enum x86_insn) - 1), "unknown");
}

/* --- Random bytes -------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* Serves random bytes anywhere, or fails, as the test decides. */
static int random_read(void *opaque, uint64_t gva, void *buf, size_t len)
{
	size_t i;

	(void)gva;
	assert_true(len > 0 && len <= 15);
	if (*(bool *)opaque)
		return -14;
	for (i = 0; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)rng();
	return 0;
}

static void test_random_bytes(void **state)
{
	unsigned int first, round;
	bool fail_reads = false;
	const struct x86_emulate_ops ops = { .read = random_read, .opaque = &fail_reads };
	unsigned int done = 0;

	(void)state;
	for (first = 0; first < 256; first++) {
		for (round = 0; round < 3000; round++) {
			struct kvm_regs regs, before;
			struct kvm_sregs sregs, sbefore;
			enum x86_insn kind = X86_INSN_NR;
			enum x86_emulate_result r;
			uint8_t bytes[15];
			uint64_t dice = rng();
			size_t len = 1 + dice % 15, i, changed;

			if ((dice >> 8) & 1)
				setup_long(&regs, &sregs);
			else
				setup_prot32(&regs, &sregs);
			if (((dice >> 9) & 7) == 0)
				set_cpl3(&sregs);
			/* Small register values sometimes, so memory operands can be canonical. */
			if ((dice >> 12) & 1)
				for (i = 0; i < 16; i++)
					*reg(&regs, i) = rng() & 0xffff;
			regs.rflags = RFLAGS_FIXED | (rng() & 0x40cd5);
			fail_reads = ((dice >> 13) & 3) == 0;
			bytes[0] = (uint8_t)first;
			for (i = 1; i < len; i++) {
				/* Bias towards the bytes we decode so the deep paths get hit. */
				static const uint8_t likely[] = { 0x0f, 0xf3, 0x66, 0x48, 0xb8,
								  0xbc, 0xbd, 0x01, 0xca, 0x65 };
				uint64_t x = rng();

				bytes[i] = (x & 1) ? likely[(x >> 1) % sizeof(likely)]
						   : (uint8_t)(x >> 8);
			}
			before = regs;
			sbefore = sregs;
			r = emulate(&regs, &sregs, bytes, len, ((dice >> 15) & 1) ? &ops : NULL,
				    &kind);
			assert_true(kind < X86_INSN_NR);
			assert_memory_equal(&sregs, &sbefore, sizeof(sregs));
			if (r == X86_EMULATE_UNHANDLED) {
				assert_memory_equal(&regs, &before, sizeof(regs));
				continue;
			}
			done++;
			assert_int_not_equal(kind, X86_INSN_UNKNOWN);
			assert_int_equal(r == X86_EMULATE_INJECT_BP, kind == X86_INSN_INT3);
			assert_in_range(regs.rip - before.rip, 1, 15);
			/* At most one general-purpose register, the destination, changed. */
			for (i = 0, changed = 0; i < 16; i++)
				changed += *reg(&regs, i) != *reg(&before, i);
			assert_in_range(changed, 0, 1);
		}
	}
	print_message("%u of %u random instructions emulated\n", done, 256 * 3000);
	assert_true(done > 0);
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
		cmocka_unit_test(test_int3),
		cmocka_unit_test(test_int3_refused),
		cmocka_unit_test(test_clac_stac_cpl0),
		cmocka_unit_test(test_clac_stac_refused),
		cmocka_unit_test(test_fwait),
		cmocka_unit_test(test_bitcount_values),
		cmocka_unit_test(test_bitcount_all_registers),
		cmocka_unit_test(test_bitcount_rex_no_w),
		cmocka_unit_test(test_memory_forms),
		cmocka_unit_test(test_memory_refused),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_prefixes_refused),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_random_bytes),
#if defined(__x86_64__)
		cmocka_unit_test(test_against_host),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
