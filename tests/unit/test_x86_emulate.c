/*
 * Unit tests for vmm/arch/x86_64/emulate.c, the instructions we finish for KVM on PVM hosts:
 * INT3, CLAC/STAC, FWAIT, and what is refused (other instructions, CPU modes, truncated and
 * random bytes). The bit counts are in test_x86_emulate_bitcount.c, memory operands in
 * test_x86_emulate_memory.c; the harness is x86_emulate_harness.h.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int3),	       cmocka_unit_test(test_int3_refused),
		cmocka_unit_test(test_clac_stac_cpl0), cmocka_unit_test(test_clac_stac_refused),
		cmocka_unit_test(test_fwait),	       cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_unknown),	       cmocka_unit_test(test_modes),
		cmocka_unit_test(test_names),	       cmocka_unit_test(test_random_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
