/*
 * vCPU threads (see vcpu.h). A kick is a signal with a no-op handler plus
 * kvm_run.immediate_exit, so a kick that lands just before KVM_RUN is not lost.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

#include "arch.h"
#include "log.h"
#include "vcpu.h"
#include "vm.h"

#define VCPU_KICK_SIGNAL (SIGRTMIN + 0)

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

void vcpu_signals_init(void)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };
	sigset_t set;

	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int vcpu_create(struct vm *vm, unsigned int id, struct vcpu **out, struct error *err)
{
	struct vcpu *vcpu = calloc(1, sizeof(*vcpu));
	int r;

	if (!vcpu)
		return error_set(err, -ENOMEM, "vcpu%u: out of memory", id);
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		r = error_set_errno(err, -errno, "vcpu%u: KVM_CREATE_VCPU", id);
		free(vcpu);
		return r;
	}
	vcpu->run = mmap(NULL, vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		r = error_set_errno(err, -errno, "vcpu%u: cannot map kvm_run", id);
		vcpu->run = NULL;
		vcpu_destroy(vcpu);
		return r;
	}
	r = arch_vcpu_init(vcpu, err);
	if (r < 0) {
		vcpu_destroy(vcpu);
		return r;
	}
	*out = vcpu;
	return 0;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (!vcpu)
		return;
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->vcpu_mmap_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	free(vcpu);
}

static void vcpu_handle_pio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint64_t bytes = (uint64_t)run->io.size * run->io.count;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t i;

	/* The buffer is KVM's, inside the kvm_run mapping; check anyway. */
	if (!range_fits(run->io.data_offset, bytes, vcpu->vm->vcpu_mmap_size)) {
		log_once(LOG_ERROR, "vcpu%u: port I/O buffer outside kvm_run", vcpu->id);
		return;
	}
	for (i = 0; i < run->io.count; i++, data += run->io.size)
		bus_access(&vcpu->vm->pio_bus, run->io.port, data, run->io.size,
			   run->io.direction == KVM_EXIT_IO_OUT);
}

static void vcpu_handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_exit(vcpu->vm, VM_EXIT_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(vcpu->vm, VM_EXIT_RESET);
		break;
	case KVM_SYSTEM_EVENT_CRASH:
		vm_request_exit(vcpu->vm, VM_EXIT_PANIC);
		break;
	default:
		log_warn("vcpu%u: unknown system event %u", vcpu->id, vcpu->run->system_event.type);
		vm_request_exit(vcpu->vm, VM_EXIT_ERROR);
	}
}

/* Returns 0 to run again, negative to leave the loop. */
static int vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_pio(vcpu);
		return 0;
	case KVM_EXIT_MMIO:
		bus_access(&vcpu->vm->mmio_bus, run->mmio.phys_addr, run->mmio.data,
			   MIN(run->mmio.len, sizeof(run->mmio.data)), run->mmio.is_write);
		return 0;
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_SHUTDOWN:
		log_info("vcpu%u: triple fault", vcpu->id);
		vm_request_exit(vcpu->vm, VM_EXIT_TRIPLE_FAULT);
		return -1;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu_handle_system_event(vcpu);
		return -1;
	case KVM_EXIT_HLT:
		log_info("vcpu%u: halted", vcpu->id);
		vm_request_exit(vcpu->vm, VM_EXIT_POWEROFF);
		return -1;
	case KVM_EXIT_FAIL_ENTRY:
		log_error("vcpu%u: KVM entry failed, reason 0x%llx", vcpu->id,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vm_request_exit(vcpu->vm, VM_EXIT_ERROR);
		return -1;
	default:
		if (arch_vcpu_exit(vcpu) == 0)
			return 0;
		vm_request_exit(vcpu->vm, VM_EXIT_ERROR);
		return -1;
	}
}

/*
 * A port or MMIO read we just answered is finished by KVM only on the next KVM_RUN (the
 * value goes into the guest's register then). Enter once with immediate_exit set, which
 * completes it and returns EINTR without running the guest, so the vCPU state a paused VM
 * shows (a snapshot reads it) is consistent (KVM API: KVM_CAP_IMMEDIATE_EXIT).
 */
static void vcpu_complete_io(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (ioctl(vcpu->fd, KVM_RUN, 0) == 0 || (errno != EINTR && errno != EAGAIN))
		log_once(LOG_WARN, "vcpu%u: completing I/O before a pause: %s", vcpu->id,
			 strerror(errno));
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

/*
 * Park while the VM is paused. kvm-clock is told first (KVM_KVMCLOCK_CTRL), so the guest's
 * soft-lockup watchdog does not fire on resume; KVM refuses it (EINVAL) until the guest
 * enables kvm-clock, which is fine. No device lock is held here.
 */
static void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	if (ioctl(vcpu->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
		log_once(LOG_DEBUG, "vcpu%u: KVM_KVMCLOCK_CTRL: %s", vcpu->id, strerror(errno));
	vcpu_complete_io(vcpu);
	pthread_mutex_lock(&vm->pause_lock);
	vm->nr_parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_requested) && atomic_load(&vm->exit_reason) == VM_EXIT_NONE)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->nr_parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

static void vcpu_finished(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	pthread_mutex_lock(&vm->pause_lock);
	vm->nr_finished++;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

/*
 * This thread's seccomp filter goes in before its first KVM_RUN; then it waits until the
 * main thread has installed its own and releases the vCPUs (vm_run).
 */
static void vcpu_wait_released(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct error err = { 0 };

	if (seccomp_install(SECCOMP_THREAD_VCPU,
			    vm_config_seccomp(&vm->config, SECCOMP_THREAD_VCPU), &err) < 0) {
		log_error("vcpu%u: %s", vcpu->id, err.msg);
		vm_request_exit(vm, VM_EXIT_ERROR);
	}
	seccomp_test_hook(SECCOMP_THREAD_VCPU);
	pthread_mutex_lock(&vm->pause_lock);
	while (!vm->vcpus_released && atomic_load(&vm->exit_reason) == VM_EXIT_NONE)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	pthread_mutex_unlock(&vm->pause_lock);
}

static void *vcpu_thread(void *opaque)
{
	struct vcpu *vcpu = opaque;
	struct vm *vm = vcpu->vm;
	char name[16];
	sigset_t set;

	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	atomic_store(&vcpu->tid, gettid());
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	vcpu_wait_released(vcpu);

	while (atomic_load(&vm->exit_reason) == VM_EXIT_NONE) {
		if (atomic_load(&vm->pause_requested)) {
			vcpu_park(vcpu);
			continue;
		}
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vcpu->run->immediate_exit = 0;
				continue;
			}
			log_error("vcpu%u: KVM_RUN: %s", vcpu->id, strerror(errno));
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
		if (vcpu_handle_exit(vcpu) < 0)
			break;
	}
	vcpu_finished(vcpu);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu, struct error *err)
{
	int r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (r)
		return error_set_errno(err, -r, "vcpu%u: cannot start thread", vcpu->id);
	vcpu->thread_started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	pthread_join(vcpu->thread, NULL);
	vcpu->thread_started = false;
}
