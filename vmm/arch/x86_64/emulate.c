/*
 * Finishing the few instructions KVM's emulator hands back on PVM "native" hosts (see
 * emulate.h). The vCPU loop passes the registers from KVM_GET_REGS/SREGS and the instruction
 * bytes from KVM_EXIT_INTERNAL_ERROR; we decode exactly INT3, CLAC, STAC, POPCNT, LZCNT,
 * TZCNT and FWAIT and refuse everything else, because a wrong guess here silently corrupts
 * the guest while a refusal stops it with the bytes in the log.
 *
 * The work is in two steps: x86_decode() turns prefixes, opcode, ModRM, SIB and displacement
 * into a struct x86_decoded_insn (Intel SDM Vol. 2A §2.1 "Instruction Format", §2.2.1 "REX
 * Prefixes"), fetching bytes KVM did not give us from CS:RIP; then one executor per
 * instruction updates a copy of the registers, which is written back only on success, so an
 * UNHANDLED result never leaves the vCPU half-changed. POPCNT/LZCNT/TZCNT are decoded only in
 * 64-bit mode; INT3, CLAC, STAC and FWAIT also in 32-bit protected mode for early boot.
 * Anything the hardware would answer with an exception we cannot raise through this API
 * (#UD, #GP, #PF, #NM) is UNHANDLED: the VMM stops the VM rather than run on from a state
 * real hardware would never produce.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arch/x86_64/emulate.h"
#include "util.h"

#define X86_MAX_INSN_LEN 15 /* longer is #GP (SDM Vol. 3A §6.15, "Interrupt 13") */

#define RFLAGS_CF    (1ULL << 0)
#define RFLAGS_PF    (1ULL << 2)
#define RFLAGS_AF    (1ULL << 4)
#define RFLAGS_ZF    (1ULL << 6)
#define RFLAGS_SF    (1ULL << 7)
#define RFLAGS_OF    (1ULL << 11)
#define RFLAGS_VM    (1ULL << 17)
#define RFLAGS_AC    (1ULL << 18)
#define RFLAGS_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

#define CR0_PE	 (1ULL << 0)
#define CR0_MP	 (1ULL << 1)
#define CR0_TS	 (1ULL << 3)
#define CR4_LA57 (1ULL << 12)
#define EFER_LMA (1ULL << 10)

#define REX_B 0x1
#define REX_X 0x2
#define REX_R 0x4
#define REX_W 0x8

enum x86_mode {
	X86_MODE_OTHER, /* real, virtual-8086 or 16-bit protected mode: not handled */
	X86_MODE_PROT32,
	X86_MODE_LONG64,
};

enum x86_segment {
	X86_SEG_DEFAULT,
	X86_SEG_ES,
	X86_SEG_CS,
	X86_SEG_SS,
	X86_SEG_DS,
	X86_SEG_FS,
	X86_SEG_GS,
};

/* Instruction bytes: those KVM gave us, then more read from CS:RIP on demand. */
struct x86_fetch {
	uint8_t bytes[X86_MAX_INSN_LEN];
	size_t have;
	uint64_t linear; /* linear address of bytes[0] */
	uint64_t linear_mask;
	const struct x86_emulate_ops *ops;
};

struct x86_decoded_insn {
	enum x86_insn kind;
	enum x86_mode mode;
	bool lock, rep, repne, operand_size, address_size; /* F0, F3, F2, 66, 67 */
	enum x86_segment segment;
	uint8_t rex; /* 0 when absent or ignored */
	uint8_t modrm, sib;
	bool has_sib;
	int32_t disp;
	unsigned int operand_bytes; /* 2, 4 or 8 */
	size_t len;
};

const char *x86_insn_name(enum x86_insn kind)
{
	static const char *const names[X86_INSN_NR] = {
		[X86_INSN_UNKNOWN] = "unknown", [X86_INSN_INT3] = "int3",
		[X86_INSN_CLAC] = "clac",	[X86_INSN_STAC] = "stac",
		[X86_INSN_POPCNT] = "popcnt",	[X86_INSN_LZCNT] = "lzcnt",
		[X86_INSN_TZCNT] = "tzcnt",	[X86_INSN_FWAIT] = "fwait",
	};

	if ((unsigned int)kind >= X86_INSN_NR)
		return "unknown";
	return names[kind];
}

/*
 * General-purpose register by its 4-bit encoding (SDM Vol. 2A §2.1.5, Table 2-2 and §2.2.1.2:
 * REX.R/X/B supply bit 3). struct kvm_regs lists them in a different order.
 */
static __u64 *x86_reg(struct kvm_regs *regs, unsigned int index)
{
	static const size_t offsets[16] = {
		offsetof(struct kvm_regs, rax), offsetof(struct kvm_regs, rcx),
		offsetof(struct kvm_regs, rdx), offsetof(struct kvm_regs, rbx),
		offsetof(struct kvm_regs, rsp), offsetof(struct kvm_regs, rbp),
		offsetof(struct kvm_regs, rsi), offsetof(struct kvm_regs, rdi),
		offsetof(struct kvm_regs, r8),	offsetof(struct kvm_regs, r9),
		offsetof(struct kvm_regs, r10), offsetof(struct kvm_regs, r11),
		offsetof(struct kvm_regs, r12), offsetof(struct kvm_regs, r13),
		offsetof(struct kvm_regs, r14), offsetof(struct kvm_regs, r15),
	};

	return (__u64 *)((char *)regs + offsets[index & 15]);
}

/* 64-bit mode needs EFER.LMA and CS.L (SDM Vol. 3A §5.2.1); otherwise CS.D picks 32-bit. */
static enum x86_mode x86_cpu_mode(const struct kvm_regs *regs, const struct kvm_sregs *sregs)
{
	if (!(sregs->cr0 & CR0_PE) || (regs->rflags & RFLAGS_VM))
		return X86_MODE_OTHER;
	if ((sregs->efer & EFER_LMA) && sregs->cs.l)
		return X86_MODE_LONG64;
	if (sregs->cs.db)
		return X86_MODE_PROT32;
	return X86_MODE_OTHER;
}

/*
 * CPL is CS.RPL, and for a non-conforming code segment also CS.DPL. We ask for both to be 0:
 * if KVM ever reports them disagreeing we would rather stop than guess the privilege level.
 */
static bool x86_cpl_is_zero(const struct kvm_sregs *sregs)
{
	return (sregs->cs.selector & 3) == 0 && sregs->cs.dpl == 0;
}

/* Make bytes [0, end) available, reading what KVM did not give us from CS:RIP. */
static int x86_fetch_ensure(struct x86_fetch *fetch, size_t end)
{
	uint64_t linear;

	if (end > X86_MAX_INSN_LEN)
		return -E2BIG;
	if (end <= fetch->have)
		return 0;
	if (!fetch->ops || !fetch->ops->read)
		return -EFAULT;
	linear = (fetch->linear + fetch->have) & fetch->linear_mask;
	if (fetch->ops->read(fetch->ops->opaque, linear, fetch->bytes + fetch->have,
			     end - fetch->have) != 0)
		return -EFAULT;
	fetch->have = end;
	return 0;
}

static int x86_fetch_u8(struct x86_fetch *fetch, size_t pos, uint8_t *out)
{
	int r = x86_fetch_ensure(fetch, pos + 1);

	if (r < 0)
		return r;
	*out = fetch->bytes[pos];
	return 0;
}

/*
 * Legacy prefixes in any order, then in 64-bit mode a REX. A REX that is not the last prefix
 * is ignored (SDM Vol. 2A §2.2.1), as is all but the last of repeated segment overrides.
 * Returns the position of the first opcode byte.
 */
static int x86_decode_prefixes(struct x86_decoded_insn *insn, struct x86_fetch *fetch)
{
	size_t pos;
	uint8_t b;
	int r;

	for (pos = 0;; pos++) {
		r = x86_fetch_u8(fetch, pos, &b);
		if (r < 0)
			return r;
		if (insn->mode == X86_MODE_LONG64 && (b & 0xf0) == 0x40) {
			insn->rex = b;
			continue;
		}
		switch (b) {
		case 0xf0:
			insn->lock = true;
			break;
		case 0xf2:
			insn->repne = true;
			break;
		case 0xf3:
			insn->rep = true;
			break;
		case 0x66:
			insn->operand_size = true;
			break;
		case 0x67:
			insn->address_size = true;
			break;
		case 0x26:
			insn->segment = X86_SEG_ES;
			break;
		case 0x2e:
			insn->segment = X86_SEG_CS;
			break;
		case 0x36:
			insn->segment = X86_SEG_SS;
			break;
		case 0x3e:
			insn->segment = X86_SEG_DS;
			break;
		case 0x64:
			insn->segment = X86_SEG_FS;
			break;
		case 0x65:
			insn->segment = X86_SEG_GS;
			break;
		default:
			return (int)pos;
		}
		insn->rex = 0;
	}
}

/* ModRM, SIB and displacement (SDM Vol. 2A §2.1.5 Tables 2-2, 2-3; §2.2.1.6 RIP-relative). */
static int x86_decode_modrm(struct x86_decoded_insn *insn, struct x86_fetch *fetch, size_t pos)
{
	unsigned int mod, rm, disp_bytes = 0, i;
	uint32_t disp = 0;
	int r;

	r = x86_fetch_u8(fetch, pos++, &insn->modrm);
	if (r < 0)
		return r;
	mod = insn->modrm >> 6;
	rm = insn->modrm & 7;
	if (mod != 3 && rm == 4) {
		insn->has_sib = true;
		r = x86_fetch_u8(fetch, pos++, &insn->sib);
		if (r < 0)
			return r;
	}
	if (mod == 1)
		disp_bytes = 1;
	else if (mod == 2 || (mod == 0 && rm == 5) ||
		 (mod == 0 && insn->has_sib && (insn->sib & 7) == 5))
		disp_bytes = 4;
	r = x86_fetch_ensure(fetch, pos + disp_bytes);
	if (r < 0)
		return r;
	for (i = 0; i < disp_bytes; i++)
		disp |= (uint32_t)fetch->bytes[pos + i] << (8 * i);
	if (disp_bytes == 1)
		insn->disp = (int8_t)disp;
	else
		insn->disp = (int32_t)disp;
	insn->len = pos + disp_bytes;
	return 0;
}

/* 0F 01 CA/CB: CLAC/STAC, "NP" encodings, so 66/F2/F3 make them something else. */
static int x86_decode_0f01(struct x86_decoded_insn *insn, struct x86_fetch *fetch, size_t pos)
{
	uint8_t modrm;
	int r;

	r = x86_fetch_u8(fetch, pos, &modrm);
	if (r < 0)
		return r;
	if (insn->operand_size || insn->rep || insn->repne)
		return -ENOENT;
	if (modrm == 0xca)
		insn->kind = X86_INSN_CLAC;
	else if (modrm == 0xcb)
		insn->kind = X86_INSN_STAC;
	else
		return -ENOENT;
	insn->len = pos + 1;
	return 0;
}

/*
 * F3 0F B8/BC/BD /r: POPCNT, TZCNT, LZCNT (SDM Vol. 2B "POPCNT", "TZCNT"; Vol. 2A "LZCNT").
 * F3 is the mandatory prefix; without it these are JMPE, BSF and BSR, and with F2 as well
 * the encoding is not one we trust ourselves to name.
 */
static int x86_decode_bitcount(struct x86_decoded_insn *insn, struct x86_fetch *fetch,
			       uint8_t opcode, size_t pos)
{
	if (!insn->rep || insn->repne)
		return -ENOENT;
	if (opcode == 0xb8)
		insn->kind = X86_INSN_POPCNT;
	else if (opcode == 0xbc)
		insn->kind = X86_INSN_TZCNT;
	else
		insn->kind = X86_INSN_LZCNT;
	if (insn->mode != X86_MODE_LONG64)
		return -EOPNOTSUPP; /* 16/32-bit addressing is not implemented */
	if (insn->rex & REX_W)
		insn->operand_bytes = 8; /* REX.W wins over 66 (SDM Vol. 2A §2.2.1.2) */
	else if (insn->operand_size)
		insn->operand_bytes = 2;
	else
		insn->operand_bytes = 4;
	return x86_decode_modrm(insn, fetch, pos);
}

static int x86_decode_0f(struct x86_decoded_insn *insn, struct x86_fetch *fetch, size_t pos)
{
	uint8_t opcode;
	int r;

	r = x86_fetch_u8(fetch, pos, &opcode);
	if (r < 0)
		return r;
	switch (opcode) {
	case 0x01:
		return x86_decode_0f01(insn, fetch, pos + 1);
	case 0xb8:
	case 0xbc:
	case 0xbd:
		return x86_decode_bitcount(insn, fetch, opcode, pos + 1);
	default:
		return -ENOENT;
	}
}

/* Fills insn; on failure insn->kind still says what was recognised, if anything. */
static int x86_decode(struct x86_decoded_insn *insn, struct x86_fetch *fetch)
{
	uint8_t opcode;
	int pos, r;

	pos = x86_decode_prefixes(insn, fetch);
	if (pos < 0)
		return pos;
	r = x86_fetch_u8(fetch, (size_t)pos, &opcode);
	if (r < 0)
		return r;
	switch (opcode) {
	case 0xcc: /* SDM Vol. 2A "INT n/INTO/INT3/INT1"; CD 03 is INT n, not this */
		insn->kind = X86_INSN_INT3;
		break;
	case 0x9b: /* SDM Vol. 2B "WAIT/FWAIT" */
		insn->kind = X86_INSN_FWAIT;
		break;
	case 0x0f:
		return x86_decode_0f(insn, fetch, (size_t)pos + 1);
	default:
		return -ENOENT;
	}
	insn->len = (size_t)pos + 1;
	return 0;
}

static void x86_advance_rip(struct kvm_regs *regs, const struct x86_decoded_insn *insn)
{
	regs->rip += insn->len;
	if (insn->mode != X86_MODE_LONG64)
		regs->rip = (uint32_t)regs->rip;
}

/* Bits 63:47 (63:56 with 5-level paging) must all equal (SDM Vol. 1 §3.3.7.1). */
static bool x86_is_canonical(uint64_t addr, const struct kvm_sregs *sregs)
{
	unsigned int shift = (sregs->cr4 & CR4_LA57) ? 7 : 16;

	return (uint64_t)((int64_t)(addr << shift) >> shift) == addr;
}

/*
 * Linear address of a 64-bit mode memory operand. Only FS and GS have a base in 64-bit mode
 * (SDM Vol. 1 §3.7.4.1); a 67 prefix truncates the effective address to 32 bits before it is
 * added.
 */
static uint64_t x86_memory_address(const struct x86_decoded_insn *insn, struct kvm_regs *regs,
				   const struct kvm_sregs *sregs)
{
	unsigned int mod = insn->modrm >> 6, rm = insn->modrm & 7;
	uint64_t ea = (uint64_t)(int64_t)insn->disp;

	if (!insn->has_sib && mod == 0 && rm == 5) {
		ea += regs->rip + insn->len; /* RIP-relative: from the next instruction */
	} else if (!insn->has_sib) {
		ea += *x86_reg(regs, rm | ((insn->rex & REX_B) ? 8 : 0));
	} else {
		unsigned int scale = insn->sib >> 6;
		unsigned int index = ((insn->sib >> 3) & 7) | ((insn->rex & REX_X) ? 8 : 0);
		unsigned int base = (insn->sib & 7) | ((insn->rex & REX_B) ? 8 : 0);

		if (index != 4) /* 100b without REX.X means no index; r12 is allowed */
			ea += *x86_reg(regs, index) << scale;
		if (!(mod == 0 && (base & 7) == 5)) /* mod 0, base 101b: disp32, no base */
			ea += *x86_reg(regs, base);
	}
	if (insn->address_size)
		ea = (uint32_t)ea;
	if (insn->segment == X86_SEG_FS)
		ea += sregs->fs.base;
	else if (insn->segment == X86_SEG_GS)
		ea += sregs->gs.base;
	return ea;
}

/*
 * The source operand of POPCNT/LZCNT/TZCNT, masked to the operand size. Memory operands are
 * read only at CPL 0: ops->read does not know the access privilege, and a user-mode access
 * to a supervisor page would have to #PF, not be read for it.
 */
static int x86_read_source(const struct x86_decoded_insn *insn, struct kvm_regs *regs,
			   const struct kvm_sregs *sregs, const struct x86_emulate_ops *ops,
			   uint64_t *out)
{
	uint64_t mask =
		insn->operand_bytes == 8 ? UINT64_MAX : (1ULL << (8 * insn->operand_bytes)) - 1;
	uint8_t buf[8];
	uint64_t gva, value = 0;
	unsigned int i;

	if ((insn->modrm >> 6) == 3) {
		value = *x86_reg(regs, (insn->modrm & 7) | ((insn->rex & REX_B) ? 8 : 0));
		*out = value & mask;
		return 0;
	}
	if (!x86_cpl_is_zero(sregs) || !ops || !ops->read)
		return -EPERM;
	gva = x86_memory_address(insn, regs, sregs);
	if (!x86_is_canonical(gva, sregs) ||
	    !x86_is_canonical(gva + insn->operand_bytes - 1, sregs))
		return -EFAULT;
	if (ops->read(ops->opaque, gva, buf, insn->operand_bytes) != 0)
		return -EFAULT;
	for (i = 0; i < insn->operand_bytes; i++)
		value |= (uint64_t)buf[i] << (8 * i);
	*out = value;
	return 0;
}

/* 16-bit results keep bits 63:16; 32-bit results zero bits 63:32 (SDM Vol. 1 §3.4.1.1). */
static void x86_write_dest(const struct x86_decoded_insn *insn, struct kvm_regs *regs,
			   uint64_t value)
{
	__u64 *reg = x86_reg(regs, ((insn->modrm >> 3) & 7) | ((insn->rex & REX_R) ? 8 : 0));

	if (insn->operand_bytes == 2)
		*reg = (*reg & ~0xffffULL) | (value & 0xffff);
	else if (insn->operand_bytes == 4)
		*reg = (uint32_t)value;
	else
		*reg = value;
}

/*
 * POPCNT: ZF = (source == 0), the other five arithmetic flags cleared. LZCNT/TZCNT: CF =
 * (source == 0), ZF = (result == 0); the SDM leaves OF, SF, AF and PF undefined and we clear
 * them, as the Intel parts we checked do.
 */
static enum x86_emulate_result x86_exec_bitcount(const struct x86_decoded_insn *insn,
						 struct kvm_regs *regs,
						 const struct kvm_sregs *sregs,
						 const struct x86_emulate_ops *ops)
{
	unsigned int bits = 8 * insn->operand_bytes;
	uint64_t src, result, flags = 0;

	if (x86_read_source(insn, regs, sregs, ops, &src) < 0)
		return X86_EMULATE_UNHANDLED;
	if (insn->kind == X86_INSN_POPCNT) {
		result = (uint64_t)__builtin_popcountll(src);
		if (src == 0)
			flags |= RFLAGS_ZF;
	} else {
		if (src == 0)
			result = bits;
		else if (insn->kind == X86_INSN_LZCNT)
			result = (uint64_t)__builtin_clzll(src) - (64 - bits);
		else
			result = (uint64_t)__builtin_ctzll(src);
		if (src == 0)
			flags |= RFLAGS_CF;
		if (result == 0)
			flags |= RFLAGS_ZF;
	}
	x86_write_dest(insn, regs, result);
	regs->rflags = (regs->rflags & ~RFLAGS_ARITH) | flags;
	x86_advance_rip(regs, insn);
	return X86_EMULATE_DONE;
}

/*
 * CLAC/STAC are #UD above CPL 0 (SDM Vol. 2A "CLAC", Vol. 2B "STAC"). We cannot raise #UD,
 * and finishing them for user code would let it toggle SMAP for the kernel, so we refuse and
 * the VMM stops the VM. The CPUID.SMAP check is the guest kernel's: it only patches these in
 * when the CPU it was given reports SMAP.
 */
static enum x86_emulate_result x86_exec_clac_stac(const struct x86_decoded_insn *insn,
						  struct kvm_regs *regs,
						  const struct kvm_sregs *sregs)
{
	if (!x86_cpl_is_zero(sregs))
		return X86_EMULATE_UNHANDLED;
	if (insn->kind == X86_INSN_STAC)
		regs->rflags |= RFLAGS_AC;
	else
		regs->rflags &= ~RFLAGS_AC;
	x86_advance_rip(regs, insn);
	return X86_EMULATE_DONE;
}

/*
 * FWAIT only checks for pending unmasked x87 exceptions. Our guests run the kernel with x87
 * exceptions masked and never leave one pending in kernel code, and we cannot see the FPU
 * status word here, so it is a no-op. With CR0.MP and CR0.TS both set it would be #NM
 * (SDM Vol. 2B "WAIT/FWAIT"), which we cannot raise: refuse.
 */
static enum x86_emulate_result x86_exec_fwait(const struct x86_decoded_insn *insn,
					      struct kvm_regs *regs, const struct kvm_sregs *sregs)
{
	if ((sregs->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
		return X86_EMULATE_UNHANDLED;
	x86_advance_rip(regs, insn);
	return X86_EMULATE_DONE;
}

/*
 * INT3 is a trap: the #BP the caller injects must see RIP past the instruction, as hardware
 * pushes it. No CPL check here: INT3 is legal at any CPL, and whether user code may reach
 * the handler is up to the IDT gate's DPL when the caller delivers the #BP.
 */
static enum x86_emulate_result x86_exec_int3(const struct x86_decoded_insn *insn,
					     struct kvm_regs *regs)
{
	x86_advance_rip(regs, insn);
	return X86_EMULATE_INJECT_BP;
}

static enum x86_emulate_result x86_execute(const struct x86_decoded_insn *insn,
					   struct kvm_regs *regs, const struct kvm_sregs *sregs,
					   const struct x86_emulate_ops *ops)
{
	if (insn->lock) /* #UD for every instruction here */
		return X86_EMULATE_UNHANDLED;
	switch (insn->kind) {
	case X86_INSN_INT3:
		return x86_exec_int3(insn, regs);
	case X86_INSN_CLAC:
	case X86_INSN_STAC:
		return x86_exec_clac_stac(insn, regs, sregs);
	case X86_INSN_POPCNT:
	case X86_INSN_LZCNT:
	case X86_INSN_TZCNT:
		return x86_exec_bitcount(insn, regs, sregs, ops);
	case X86_INSN_FWAIT:
		return x86_exec_fwait(insn, regs, sregs);
	default:
		return X86_EMULATE_UNHANDLED;
	}
}

enum x86_emulate_result x86_emulate(struct kvm_regs *regs, struct kvm_sregs *sregs,
				    const uint8_t *insn, size_t len,
				    const struct x86_emulate_ops *ops, enum x86_insn *kind)
{
	struct x86_decoded_insn decoded = { .kind = X86_INSN_UNKNOWN };
	struct x86_fetch fetch = { .ops = ops };
	enum x86_emulate_result result;
	struct kvm_regs copy;
	int r;

	if (kind)
		*kind = X86_INSN_UNKNOWN;
	if (!regs || !sregs)
		return X86_EMULATE_UNHANDLED;
	decoded.mode = x86_cpu_mode(regs, sregs);
	if (decoded.mode == X86_MODE_OTHER)
		return X86_EMULATE_UNHANDLED;

	fetch.have = insn ? MIN(len, (size_t)X86_MAX_INSN_LEN) : 0;
	if (fetch.have)
		memcpy(fetch.bytes, insn, fetch.have);
	if (decoded.mode == X86_MODE_LONG64) {
		fetch.linear = regs->rip; /* CS.base is treated as 0 in 64-bit mode */
		fetch.linear_mask = UINT64_MAX;
	} else {
		fetch.linear = sregs->cs.base + (uint32_t)regs->rip;
		fetch.linear_mask = UINT32_MAX;
	}

	r = x86_decode(&decoded, &fetch);
	if (kind)
		*kind = decoded.kind;
	if (r < 0)
		return X86_EMULATE_UNHANDLED;

	copy = *regs;
	result = x86_execute(&decoded, &copy, sregs, ops);
	if (result != X86_EMULATE_UNHANDLED)
		*regs = copy;
	return result;
}
