/*
 * x86_64 exits the generic vCPU loop hands over: emulation failures. On PVM "native"
 * hosts KVM interprets guest kernel code and gives up on a few instructions; with
 * KVM_CAP_EXIT_ON_EMULATION_FAILURE it returns them to us with their bytes, and emulate.c
 * finishes them. Each kind is logged once; anything else stops the VM with the bytes.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "../../arch.h"
#include "../../log.h"
#include "../../vcpu.h"
#include "../../vm.h"
#include "emulate.h"

static atomic_ulong x86_emulated[X86_INSN_NR];

/* Read guest-virtual memory page by page through the vCPU's current page tables. */
static int x86_read_gva(void *opaque, uint64_t gva, void *buf, size_t len)
{
	struct vcpu *vcpu = opaque;
	uint8_t *out = buf;

	while (len) {
		struct kvm_translation tr = { .linear_address = gva };
		size_t chunk = MIN(len, 4096 - (gva & 4095));

		if (ioctl(vcpu->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
			return -EFAULT;
		if (vm_mem_read(&vcpu->vm->mem, tr.physical_address, out, chunk) < 0)
			return -EFAULT;
		gva += chunk;
		out += chunk;
		len -= chunk;
	}
	return 0;
}

static int x86_inject_bp(struct vcpu *vcpu)
{
	struct kvm_vcpu_events events;

	if (ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &events) < 0)
		return -errno;
	events.exception.injected = 1;
	events.exception.nr = 3;
	events.exception.has_error_code = 0;
	events.flags = 0;
	return ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &events) < 0 ? -errno : 0;
}

static void x86_log_failure(struct vcpu *vcpu, const struct kvm_regs *regs, const uint8_t *insn,
			    size_t len)
{
	char hex[3 * 15 + 1] = "";
	size_t i;

	for (i = 0; i < len && i < 15; i++)
		snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x ", insn[i]);
	log_error("vcpu%u: KVM cannot emulate the instruction at rip 0x%llx (bytes: %s), "
		  "stopping the VM",
		  vcpu->id, (unsigned long long)regs->rip, len ? hex : "none given");
}

static int x86_handle_emulation_failure(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	const struct x86_emulate_ops ops = { .read = x86_read_gva, .opaque = vcpu };
	enum x86_emulate_result result;
	enum x86_insn kind = X86_INSN_UNKNOWN;
	const uint8_t *insn = NULL;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	size_t len = 0;

	if (run->emulation_failure.ndata >= 3 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		insn = run->emulation_failure.insn_bytes;
		len = MIN(run->emulation_failure.insn_size,
			  sizeof(run->emulation_failure.insn_bytes));
	}
	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	log_debug("vcpu%u: emulation failure: ndata %u flags 0x%llx size %u rip 0x%llx cs 0x%x",
		  vcpu->id, run->emulation_failure.ndata,
		  (unsigned long long)run->emulation_failure.flags,
		  run->emulation_failure.insn_size, (unsigned long long)regs.rip,
		  sregs.cs.selector);
	result = x86_emulate(&regs, &sregs, insn, len, &ops, &kind);
	if (result == X86_EMULATE_UNHANDLED) {
		x86_log_failure(vcpu, &regs, insn, len);
		return -ENOTSUP;
	}
	if (atomic_fetch_add(&x86_emulated[kind], 1) == 0)
		log_info("vcpu%u: finishing %s instructions KVM cannot emulate (first at 0x%llx)",
			 vcpu->id, x86_insn_name(kind), (unsigned long long)regs.rip);
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	if (result == X86_EMULATE_INJECT_BP)
		return x86_inject_bp(vcpu);
	return 0;
}

int arch_vcpu_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	if (run->exit_reason != KVM_EXIT_INTERNAL_ERROR) {
		log_error("vcpu%u: unexpected KVM exit %u", vcpu->id, run->exit_reason);
		return -ENOTSUP;
	}
	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION)
		return x86_handle_emulation_failure(vcpu);
	log_error("vcpu%u: KVM internal error, suberror %u", vcpu->id, run->internal.suberror);
	return -EIO;
}
