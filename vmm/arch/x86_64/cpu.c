/*
 * x86_64 vCPU boot state: CPUID (KVM's supported set with the topology and host fix-ups),
 * MSRs, FPU, LAPIC LINT pins, and the registers for either entry: 64-bit long mode with
 * identity-mapped page tables (Linux boot protocol, rsi = zero page) or 32-bit protected
 * mode without paging (PVH, ebx = start info). Only vCPU 0 gets entry registers; the others
 * wait for INIT/SIPI from the guest.
 */
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "../../arch.h"
#include "../../log.h"
#include "../../vcpu.h"
#include "../../vm.h"
#include "arch_vm.h"
#include "layout.h"

#define GDT_NULL    0
#define GDT_CODE32  1
#define GDT_CODE64  2
#define GDT_DATA    3
#define GDT_TSS	    4
#define GDT_ENTRIES 5

#define CR0_PE	 (1ULL << 0)
#define CR0_ET	 (1ULL << 4)
#define CR0_PG	 (1ULL << 31)
#define CR4_PAE	 (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define PTE_PRESENT (1ULL << 0)
#define PTE_RW	    (1ULL << 1)
#define PTE_PS	    (1ULL << 7)

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_TSC	      0x10
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR	      0xc0000081
#define MSR_LSTAR	      0xc0000082
#define MSR_CSTAR	      0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define APIC_LVT0	 0x350
#define APIC_LVT1	 0x360
#define APIC_MODE_NMI	 4
#define APIC_MODE_EXTINT 7

/* A GDT descriptor (Intel SDM vol. 3A §3.4.5) from flags/access, base and limit. */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
	       ((uint64_t)(limit & 0x000f0000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
	       (uint64_t)(limit & 0x0000ffff);
}

/* The boot GDT: flat 32-bit code (PVH), 64-bit code, data, and a TSS for TR. */
static uint64_t boot_gdt_entry(unsigned int index)
{
	switch (index) {
	case GDT_CODE32:
		return gdt_entry(0xc09b, 0, 0xfffff);
	case GDT_CODE64:
		return gdt_entry(0xa09b, 0, 0xfffff);
	case GDT_DATA:
		return gdt_entry(0xc093, 0, 0xfffff);
	case GDT_TSS:
		return gdt_entry(0x808b, 0, 0xfffff);
	default:
		return 0;
	}
}

/* The KVM view of a GDT descriptor, as the CPU would cache it on a segment load. */
static struct kvm_segment segment_from_gdt(uint64_t entry, unsigned int index)
{
	uint32_t limit = (uint32_t)((entry & 0xffff) | ((entry >> 32) & 0xf0000));
	bool granular = (entry >> 55) & 1;

	return (struct kvm_segment){
		.base = (uint32_t)(((entry >> 16) & 0xffffff) | ((entry >> 32) & 0xff000000)),
		.limit = granular ? (limit << 12) | 0xfff : limit,
		.selector = (uint16_t)(index * 8),
		.type = (entry >> 40) & 0xf,
		.present = (entry >> 47) & 1,
		.dpl = (entry >> 45) & 3,
		.db = (entry >> 54) & 1,
		.s = (entry >> 44) & 1,
		.l = (entry >> 53) & 1,
		.g = granular,
	};
}

int x86_write_boot_tables(struct vm_mem *mem, struct error *err)
{
	uint64_t pml4 = X86_PDPT_GPA | PTE_PRESENT | PTE_RW;
	uint64_t gdt[GDT_ENTRIES], pdpt[4], pd[512];
	unsigned int i, j;

	for (i = 0; i < GDT_ENTRIES; i++)
		gdt[i] = boot_gdt_entry(i);
	if (vm_mem_write(mem, X86_GDT_GPA, gdt, sizeof(gdt)) < 0 ||
	    vm_mem_write(mem, X86_PML4_GPA, &pml4, sizeof(pml4)) < 0)
		return error_set(err, -EFAULT, "boot tables do not fit in guest memory");
	/* Identity map 0-4 GiB with 2 MiB pages: covers the kernel, boot data and initrd. */
	for (i = 0; i < 4; i++) {
		pdpt[i] = (X86_PD_GPA + i * 4096) | PTE_PRESENT | PTE_RW;
		for (j = 0; j < 512; j++)
			pd[j] = ((uint64_t)i << 30) + ((uint64_t)j << 21) +
				(PTE_PRESENT | PTE_RW | PTE_PS);
		if (vm_mem_write(mem, X86_PD_GPA + i * 4096, pd, sizeof(pd)) < 0)
			return error_set(err, -EFAULT,
					 "boot page tables do not fit in guest memory");
	}
	if (vm_mem_write(mem, X86_PDPT_GPA, pdpt, sizeof(pdpt)) < 0)
		return error_set(err, -EFAULT, "boot page tables do not fit in guest memory");
	return 0;
}

static void cpuid_set_topology(struct kvm_cpuid_entry2 *e, unsigned int id, unsigned int nr)
{
	unsigned int shift = 0;

	while ((1u << shift) < nr)
		shift++;
	switch (e->function) {
	case 1:
		e->ebx = (e->ebx & 0x0000ffff) | (id << 24) | (MIN(nr, 255u) << 16);
		e->ecx |= 1u << 31; /* hypervisor present */
		if (nr > 1)
			e->edx |= 1u << 28; /* HTT: the logical count above is valid */
		break;
	case 4:
		e->eax = (e->eax & 0x03ffffff) | ((nr - 1) << 26);
		break;
	case 0xb:
	case 0x1f:
		/* One thread per core, nr cores per package (SDM vol. 2A, CPUID leaf 0BH). */
		e->edx = id;
		if (e->index == 0) {
			e->eax = 0;
			e->ebx = 1;
			e->ecx = (1u << 8) | 0;
		} else if (e->index == 1) {
			e->eax = shift;
			e->ebx = nr;
			e->ecx = (2u << 8) | 1;
		} else {
			e->eax = e->ebx = 0;
			e->ecx = e->index;
		}
		break;
	}
}

static int x86_vcpu_set_cpuid(struct vcpu *vcpu, struct error *err)
{
	const struct kvm_cpuid2 *supported = vcpu->vm->arch->supported_cpuid;
	size_t size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	_cleanup_free_ struct kvm_cpuid2 *cpuid = malloc(size);
	unsigned int i;

	if (!cpuid)
		return error_set(err, -ENOMEM, "out of memory");
	memcpy(cpuid, supported, size);
	for (i = 0; i < cpuid->nent; i++)
		cpuid_set_topology(&cpuid->entries[i], vcpu->id, vcpu->vm->config.nr_vcpus);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
		return error_set_errno(err, -errno, "vcpu%u: KVM_SET_CPUID2", vcpu->id);
	return 0;
}

static int x86_vcpu_set_msrs(struct vcpu *vcpu, struct error *err)
{
	static const struct kvm_msr_entry boot_msrs[] = {
		{ .index = MSR_IA32_SYSENTER_CS },
		{ .index = MSR_IA32_SYSENTER_ESP },
		{ .index = MSR_IA32_SYSENTER_EIP },
		{ .index = MSR_STAR },
		{ .index = MSR_CSTAR },
		{ .index = MSR_KERNEL_GS_BASE },
		{ .index = MSR_SYSCALL_MASK },
		{ .index = MSR_LSTAR },
		{ .index = MSR_IA32_TSC },
		{ .index = MSR_IA32_MISC_ENABLE, .data = 1 },	       /* fast strings */
		{ .index = MSR_MTRR_DEF_TYPE, .data = (1 << 11) | 6 }, /* MTRRs on, default WB */
	};
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entries[ARRAY_SIZE(boot_msrs)];
	} msrs = { .header.nmsrs = ARRAY_SIZE(boot_msrs) };
	int n;

	memcpy(msrs.entries, boot_msrs, sizeof(boot_msrs));
	n = ioctl(vcpu->fd, KVM_SET_MSRS, &msrs);
	if (n < 0)
		return error_set_errno(err, -errno, "vcpu%u: KVM_SET_MSRS", vcpu->id);
	if (n != (int)ARRAY_SIZE(boot_msrs))
		log_once(LOG_WARN, "vcpu%u: KVM refused MSR 0x%x", vcpu->id, boot_msrs[n].index);
	return 0;
}

static int x86_vcpu_set_lapic(struct vcpu *vcpu, struct error *err)
{
	struct kvm_lapic_state lapic;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return error_set_errno(err, -errno, "vcpu%u: KVM_GET_LAPIC", vcpu->id);
	*lvt0 = (*lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
	*lvt1 = (*lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		return error_set_errno(err, -errno, "vcpu%u: KVM_SET_LAPIC", vcpu->id);
	return 0;
}

static void x86_boot_sregs(struct kvm_sregs *sregs, bool pvh)
{
	struct kvm_segment data = segment_from_gdt(boot_gdt_entry(GDT_DATA), GDT_DATA);

	sregs->gdt.base = X86_GDT_GPA;
	sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs->idt.base = X86_IDT_GPA;
	sregs->idt.limit = 0xffff; /* no IDT yet: any exception triple-faults, cleanly */
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = segment_from_gdt(boot_gdt_entry(GDT_TSS), GDT_TSS);
	if (pvh) {
		/* PVH: 32-bit flat protected mode, paging off (xen/include/public/arch-x86/hvm/start_info.h). */
		sregs->cs = segment_from_gdt(boot_gdt_entry(GDT_CODE32), GDT_CODE32);
		sregs->cr0 = CR0_PE | CR0_ET;
		sregs->cr4 = 0;
		sregs->efer = 0;
		return;
	}
	/* Linux 64-bit boot protocol: long mode, __BOOT_CS 0x10, __BOOT_DS 0x18 (boot.rst). */
	sregs->cs = segment_from_gdt(boot_gdt_entry(GDT_CODE64), GDT_CODE64);
	sregs->cr3 = X86_PML4_GPA;
	sregs->cr4 = CR4_PAE;
	sregs->cr0 = CR0_PE | CR0_ET | CR0_PG;
	sregs->efer = EFER_LME | EFER_LMA;
}

static int x86_vcpu_set_boot_regs(struct vcpu *vcpu, struct error *err)
{
	struct arch_vm *arch = vcpu->vm->arch;
	struct kvm_regs regs = { .rflags = 2 };
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct kvm_sregs sregs;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return error_set_errno(err, -errno, "vcpu%u: KVM_GET_SREGS", vcpu->id);
	x86_boot_sregs(&sregs, arch->pvh);
	if (arch->pvh) {
		regs.rip = arch->kernel.pvh_entry;
		regs.rbx = X86_PVH_INFO_GPA;
	} else {
		regs.rip = arch->kernel.entry64;
		regs.rsi = X86_ZERO_PAGE_GPA;
		regs.rsp = regs.rbp = X86_BOOT_STACK_GPA;
	}
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return error_set_errno(err, -errno, "vcpu%u: KVM_SET_SREGS", vcpu->id);
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return error_set_errno(err, -errno, "vcpu%u: KVM_SET_REGS", vcpu->id);
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return error_set_errno(err, -errno, "vcpu%u: KVM_SET_FPU", vcpu->id);
	return 0;
}

int arch_vcpu_init(struct vcpu *vcpu, struct error *err)
{
	int r;

	r = x86_vcpu_set_cpuid(vcpu, err);
	if (r < 0)
		return r;
	r = x86_vcpu_set_msrs(vcpu, err);
	if (r < 0)
		return r;
	r = x86_vcpu_set_lapic(vcpu, err);
	if (r < 0)
		return r;
	if (vcpu->id == 0)
		return x86_vcpu_set_boot_regs(vcpu, err);
	return 0;
}
