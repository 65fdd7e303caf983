/*
 * x86_64 state in a snapshot (docs/snapshots.md): per vCPU the general and special
 * registers, FPU/SSE/AVX state (KVM_GET_XSAVE, or KVM_GET_FPU where KVM has no XSAVE), XCRs,
 * every MSR KVM lists and lets us read, MP state, LAPIC, pending events and debug registers;
 * per VM the in-kernel PIC pair and IOAPIC, the PIT when there is one, and kvm-clock.
 *
 * KVM structs are stored as they are: they are the kernel's stable ABI. Restore follows the
 * order the state depends on (QEMU's, for the same reasons): registers and MSRs first
 * (including the TSC), then MP state and LAPIC, then the TSC deadline (KVM drops it unless
 * the LAPIC timer is already in TSC-deadline mode), then pending events. kvm-clock comes
 * last, moved forward by the host time that passed since the save (KVM_CLOCK_REALTIME where
 * KVM has it), so the guest's clocks do not start from the moment the template was taken.
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <linux/kvm.h>

#include "../../arch.h"
#include "../../log.h"
#include "../../snapshot.h"
#include "../../vcpu.h"
#include "../../vm.h"
#include "arch_vm.h"

#define MSR_IA32_TSC_DEADLINE 0x6e0
#define SNAPSHOT_MAX_MSRS     1024
#define XSAVE_LEGACY_SIZE     4096 /* struct kvm_xsave without extra[] */

struct msr_list {
	struct kvm_msrs header;
	struct kvm_msr_entry entries[SNAPSHOT_MAX_MSRS];
};

static int vcpu_get(struct vcpu *vcpu, unsigned long req, const char *what, void *buf,
		    struct error *err)
{
	if (ioctl(vcpu->fd, req, buf) < 0)
		return error_set_errno(err, -errno, "vcpu%u: %s", vcpu->id, what);
	return 0;
}

static int vcpu_put_section(struct vcpu *vcpu, struct snapshot_writer *w, const char *what,
			    const void *data, size_t len)
{
	char name[SNAPSHOT_SECTION_NAME];

	snprintf(name, sizeof(name), "vcpu%u.%s", vcpu->id, what);
	return snapshot_put(w, name, data, len);
}

/* How many bytes KVM_GET_XSAVE2 fills (>= 4096), or 0 if KVM has no XSAVE at all. */
static size_t xsave_size(struct vm *vm)
{
	int size;

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0)
		return 0;
	size = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return size > XSAVE_LEGACY_SIZE ? (size_t)size : XSAVE_LEGACY_SIZE;
}

/*
 * MSRs with guest state that KVM_GET_MSR_INDEX_LIST leaves out (QEMU saves them on its
 * own): the MTRRs, which our boot code sets (MTRRdefType) and the guest reads back.
 */
static const uint32_t extra_msrs[] = {
	0x2ff,		     /* MTRRdefType */
	0x250, 0x258, 0x259, /* fixed-range MTRRs */
	0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
	0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207, /* variable: base, mask */
	0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f,
};

/* Read one MSR into out if this vCPU lets us; KVM_GET_MSRS stops at the first refusal. */
static void vcpu_read_msr(struct vcpu *vcpu, uint32_t index, struct msr_list *out)
{
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entry;
	} one = { .header.nmsrs = 1, .entry.index = index };
	unsigned int i;

	for (i = 0; i < out->header.nmsrs; i++)
		if (out->entries[i].index == index)
			return;
	if (out->header.nmsrs < SNAPSHOT_MAX_MSRS && ioctl(vcpu->fd, KVM_GET_MSRS, &one) == 1)
		out->entries[out->header.nmsrs++] = one.entry;
}

/* The MSRs KVM lists for save/restore and the MTRRs, minus those this vCPU will not read. */
static int vcpu_read_msrs(struct vcpu *vcpu, struct msr_list *out, struct error *err)
{
	struct {
		struct kvm_msr_list header;
		uint32_t indices[SNAPSHOT_MAX_MSRS];
	} list = { .header.nmsrs = SNAPSHOT_MAX_MSRS };
	unsigned int i;

	if (ioctl(vcpu->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &list) < 0)
		return error_set_errno(err, -errno, "KVM_GET_MSR_INDEX_LIST");
	out->header.nmsrs = 0;
	for (i = 0; i < list.header.nmsrs && i < SNAPSHOT_MAX_MSRS; i++)
		vcpu_read_msr(vcpu, list.indices[i], out);
	for (i = 0; i < ARRAY_SIZE(extra_msrs); i++)
		vcpu_read_msr(vcpu, extra_msrs[i], out);
	return 0;
}

static int vcpu_save(struct vcpu *vcpu, struct snapshot_writer *w, struct error *err)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_mp_state mp;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_xcrs xcrs;
	size_t xsize = xsave_size(vcpu->vm);
	_cleanup_free_ struct msr_list *msrs = calloc(1, sizeof(*msrs));
	_cleanup_free_ void *fpu = calloc(1, xsize ? xsize : sizeof(struct kvm_fpu));
	int r;

	if (!msrs || !fpu)
		return error_set(err, -ENOMEM, "out of memory");
	if ((r = vcpu_get(vcpu, KVM_GET_REGS, "KVM_GET_REGS", &regs, err)) < 0 ||
	    (r = vcpu_get(vcpu, KVM_GET_SREGS, "KVM_GET_SREGS", &sregs, err)) < 0 ||
	    (r = vcpu_get(vcpu, KVM_GET_MP_STATE, "KVM_GET_MP_STATE", &mp, err)) < 0 ||
	    (r = vcpu_get(vcpu, KVM_GET_LAPIC, "KVM_GET_LAPIC", &lapic, err)) < 0 ||
	    (r = vcpu_get(vcpu, KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", &events, err)) < 0 ||
	    (r = vcpu_get(vcpu, KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS", &debugregs, err)) < 0)
		return r;
	if (xsize > XSAVE_LEGACY_SIZE)
		r = vcpu_get(vcpu, KVM_GET_XSAVE2, "KVM_GET_XSAVE2", fpu, err);
	else if (xsize)
		r = vcpu_get(vcpu, KVM_GET_XSAVE, "KVM_GET_XSAVE", fpu, err);
	else
		r = vcpu_get(vcpu, KVM_GET_FPU, "KVM_GET_FPU", fpu, err);
	if (r < 0)
		return r;
	r = vcpu_read_msrs(vcpu, msrs, err);
	if (r < 0)
		return r;
	vcpu_put_section(vcpu, w, "regs", &regs, sizeof(regs));
	vcpu_put_section(vcpu, w, "sregs", &sregs, sizeof(sregs));
	vcpu_put_section(vcpu, w, "mp_state", &mp, sizeof(mp));
	vcpu_put_section(vcpu, w, "lapic", &lapic, sizeof(lapic));
	vcpu_put_section(vcpu, w, "events", &events, sizeof(events));
	vcpu_put_section(vcpu, w, "debugregs", &debugregs, sizeof(debugregs));
	vcpu_put_section(vcpu, w, xsize ? "xsave" : "fpu", fpu,
			 xsize ? xsize : sizeof(struct kvm_fpu));
	if (ioctl(vcpu->vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		r = vcpu_get(vcpu, KVM_GET_XCRS, "KVM_GET_XCRS", &xcrs, err);
		if (r < 0)
			return r;
		vcpu_put_section(vcpu, w, "xcrs", &xcrs, sizeof(xcrs));
	}
	return vcpu_put_section(vcpu, w, "msrs", msrs->entries,
				msrs->header.nmsrs * sizeof(msrs->entries[0]));
}

static int vm_save_irqchips(struct vm *vm, struct snapshot_writer *w, struct error *err)
{
	static const char *const names[] = { "x86.pic_master", "x86.pic_slave", "x86.ioapic" };
	struct kvm_clock_data clock = { 0 };
	struct kvm_pit_state2 pit;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		struct kvm_irqchip chip = { .chip_id = i };

		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return error_set_errno(err, -errno, "KVM_GET_IRQCHIP %s", names[i]);
		snapshot_put(w, names[i], &chip, sizeof(chip));
	}
	if (vm->config.pit) {
		if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
			return error_set_errno(err, -errno, "KVM_GET_PIT2");
		snapshot_put(w, "x86.pit", &pit, sizeof(pit));
	}
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return error_set_errno(err, -errno, "KVM_GET_CLOCK");
	return snapshot_put(w, "x86.clock", &clock, sizeof(clock));
}

int arch_vm_save(struct vm *vm, struct snapshot_writer *w, struct error *err)
{
	unsigned int i;
	int r;

	r = vm_save_irqchips(vm, w, err);
	for (i = 0; r == 0 && i < vm->nr_vcpus; i++)
		r = vcpu_save(vm->vcpus[i], w, err);
	if (r == 0 && w->error)
		r = error_set_errno(err, w->error, "snapshot: cannot store the CPU state");
	return r;
}

/* Restore. */

static int vcpu_section(struct vcpu *vcpu, const struct snapshot_file *f, const char *what,
			void *buf, size_t len, struct error *err)
{
	char name[SNAPSHOT_SECTION_NAME];

	snprintf(name, sizeof(name), "vcpu%u.%s", vcpu->id, what);
	return snapshot_get_exact(f, name, buf, len, err);
}

static int vcpu_set(struct vcpu *vcpu, unsigned long req, const char *what, void *buf,
		    struct error *err)
{
	if (ioctl(vcpu->fd, req, buf) < 0)
		return error_set_errno(err, -errno, "vcpu%u: %s", vcpu->id, what);
	return 0;
}

/* All MSRs but the TSC deadline, or only that one (deadline_only), in the saved order. */
static int vcpu_restore_msrs(struct vcpu *vcpu, const struct snapshot_file *f, bool deadline_only,
			     struct error *err)
{
	_cleanup_free_ struct msr_list *msrs = calloc(1, sizeof(*msrs));
	const struct kvm_msr_entry *saved;
	char name[SNAPSHOT_SECTION_NAME];
	size_t len, i, n = 0;
	int r;

	if (!msrs)
		return error_set(err, -ENOMEM, "out of memory");
	snprintf(name, sizeof(name), "vcpu%u.msrs", vcpu->id);
	if (snapshot_get(f, name, (const void **)&saved, &len) < 0 || len % sizeof(*saved) ||
	    len / sizeof(*saved) > SNAPSHOT_MAX_MSRS)
		return error_set(err, -EBADMSG, "%s: snapshot has no valid '%s' state", f->path,
				 name);
	for (i = 0; i < len / sizeof(*saved); i++) {
		struct kvm_msr_entry e;

		memcpy(&e, &saved[i], sizeof(e));
		if ((e.index == MSR_IA32_TSC_DEADLINE) == deadline_only)
			msrs->entries[n++] = e;
	}
	msrs->header.nmsrs = n;
	r = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
	if (r < 0)
		return error_set_errno(err, -errno, "vcpu%u: KVM_SET_MSRS", vcpu->id);
	if ((size_t)r != n)
		return error_set(err, -EINVAL, "vcpu%u: KVM refused to restore MSR 0x%x", vcpu->id,
				 msrs->entries[r].index);
	return 0;
}

static int vcpu_restore_fpu(struct vcpu *vcpu, const struct snapshot_file *f, struct error *err)
{
	size_t xsize = xsave_size(vcpu->vm), len;
	char name[SNAPSHOT_SECTION_NAME];
	_cleanup_free_ void *buf = NULL;
	const void *data;

	snprintf(name, sizeof(name), "vcpu%u.xsave", vcpu->id);
	if (snapshot_get(f, name, &data, &len) == 0) {
		if (!xsize)
			return error_set(err, -ENOTSUP,
					 "%s: the snapshot has XSAVE state, this host's KVM "
					 "cannot restore it",
					 f->path);
		/* A smaller saved area is fine (fewer features in use); a larger one is not. */
		if (len < XSAVE_LEGACY_SIZE || len > xsize)
			return error_set(err, -EINVAL,
					 "%s: snapshot XSAVE area of %zu bytes, "
					 "this host's KVM takes %zu",
					 f->path, len, xsize);
		buf = calloc(1, xsize);
		if (!buf)
			return error_set(err, -ENOMEM, "out of memory");
		memcpy(buf, data, len);
		return vcpu_set(vcpu, KVM_SET_XSAVE, "KVM_SET_XSAVE", buf, err);
	}
	buf = calloc(1, sizeof(struct kvm_fpu));
	if (!buf)
		return error_set(err, -ENOMEM, "out of memory");
	if (vcpu_section(vcpu, f, "fpu", buf, sizeof(struct kvm_fpu), err) < 0)
		return -EBADMSG;
	return vcpu_set(vcpu, KVM_SET_FPU, "KVM_SET_FPU", buf, err);
}

static int vcpu_restore(struct vcpu *vcpu, const struct snapshot_file *f, struct error *err)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_mp_state mp;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_xcrs xcrs;
	char name[SNAPSHOT_SECTION_NAME];
	const void *data;
	bool have_xcrs;
	size_t len;
	int r;

	if ((r = vcpu_section(vcpu, f, "regs", &regs, sizeof(regs), err)) < 0 ||
	    (r = vcpu_section(vcpu, f, "sregs", &sregs, sizeof(sregs), err)) < 0 ||
	    (r = vcpu_section(vcpu, f, "mp_state", &mp, sizeof(mp), err)) < 0 ||
	    (r = vcpu_section(vcpu, f, "lapic", &lapic, sizeof(lapic), err)) < 0 ||
	    (r = vcpu_section(vcpu, f, "events", &events, sizeof(events), err)) < 0 ||
	    (r = vcpu_section(vcpu, f, "debugregs", &debugregs, sizeof(debugregs), err)) < 0)
		return r;
	snprintf(name, sizeof(name), "vcpu%u.xcrs", vcpu->id);
	have_xcrs = snapshot_get(f, name, &data, &len) == 0;
	if (have_xcrs) {
		if ((r = vcpu_section(vcpu, f, "xcrs", &xcrs, sizeof(xcrs), err)) < 0)
			return r;
		if (ioctl(vcpu->vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) <= 0)
			return error_set(err, -ENOTSUP,
					 "%s: the snapshot has XCRs, this host's KVM cannot "
					 "restore them",
					 f->path);
	}
	if ((r = vcpu_set(vcpu, KVM_SET_SREGS, "KVM_SET_SREGS", &sregs, err)) < 0 ||
	    (r = vcpu_set(vcpu, KVM_SET_REGS, "KVM_SET_REGS", &regs, err)) < 0 ||
	    (r = vcpu_restore_fpu(vcpu, f, err)) < 0)
		return r;
	if (have_xcrs && (r = vcpu_set(vcpu, KVM_SET_XCRS, "KVM_SET_XCRS", &xcrs, err)) < 0)
		return r;
	if ((r = vcpu_restore_msrs(vcpu, f, false, err)) < 0 ||
	    (r = vcpu_set(vcpu, KVM_SET_MP_STATE, "KVM_SET_MP_STATE", &mp, err)) < 0 ||
	    (r = vcpu_set(vcpu, KVM_SET_LAPIC, "KVM_SET_LAPIC", &lapic, err)) < 0 ||
	    (r = vcpu_restore_msrs(vcpu, f, true, err)) < 0)
		return r;
	/* Everything pending is restored as it was; no SMM on this machine. */
	events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
		       (events.flags & KVM_VCPUEVENT_VALID_SHADOW) |
		       (events.flags & KVM_VCPUEVENT_VALID_PAYLOAD);
	if ((r = vcpu_set(vcpu, KVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", &events, err)) < 0 ||
	    (r = vcpu_set(vcpu, KVM_SET_DEBUGREGS, "KVM_SET_DEBUGREGS", &debugregs, err)) < 0)
		return r;
	/* The guest's soft-lockup watchdog must not count the time the snapshot sat on disk. */
	if (ioctl(vcpu->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
		log_debug("vcpu%u: KVM_KVMCLOCK_CTRL: %s", vcpu->id, strerror(errno));
	return 0;
}

static int vm_restore_irqchips(struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	static const char *const names[] = { "x86.pic_master", "x86.pic_slave", "x86.ioapic" };
	struct kvm_pit_state2 pit;
	unsigned int i;
	int r;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		struct kvm_irqchip chip;

		r = snapshot_get_exact(f, names[i], &chip, sizeof(chip), err);
		if (r < 0)
			return r;
		if (chip.chip_id != i)
			return error_set(err, -EBADMSG, "%s: snapshot '%s' state is malformed",
					 f->path, names[i]);
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return error_set_errno(err, -errno, "KVM_SET_IRQCHIP %s", names[i]);
	}
	if (!vm->config.pit)
		return 0;
	r = snapshot_get_exact(f, "x86.pit", &pit, sizeof(pit), err);
	if (r < 0)
		return r;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return error_set_errno(err, -errno, "KVM_SET_PIT2");
	return 0;
}

/*
 * kvm-clock: the saved value, moved on by the host's real time since the save. KVM does it
 * itself given KVM_CLOCK_REALTIME (Linux 5.16+), else we add the difference.
 */
static int vm_restore_clock(struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	struct kvm_clock_data saved, clock = { 0 };
	int caps = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK);
	uint64_t then, now_ns;
	struct timespec now;
	int r;

	r = snapshot_get_exact(f, "x86.clock", &saved, sizeof(saved), err);
	if (r < 0)
		return r;
	clock.clock = saved.clock;
	if (caps > 0 && (caps & KVM_CLOCK_REALTIME) && (saved.flags & KVM_CLOCK_REALTIME)) {
		clock.flags = KVM_CLOCK_REALTIME;
		clock.realtime = saved.realtime;
	} else {
		clock_gettime(CLOCK_REALTIME, &now);
		now_ns = (uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec;
		then = (saved.flags & KVM_CLOCK_REALTIME) ? saved.realtime : f->header.created_ns;
		if (now_ns > then)
			clock.clock += now_ns - then;
	}
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return error_set_errno(err, -errno, "KVM_SET_CLOCK");
	return 0;
}

int arch_vm_restore(struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	unsigned int i;
	int r;

	r = vm_restore_irqchips(vm, f, err);
	for (i = 0; r == 0 && i < vm->nr_vcpus; i++)
		r = vcpu_restore(vm->vcpus[i], f, err);
	return r < 0 ? r : vm_restore_clock(vm, f, err);
}
