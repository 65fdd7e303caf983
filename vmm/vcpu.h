/*
 * A virtual CPU and the thread that runs it: KVM_RUN in a loop, each exit dispatched in one
 * switch (port and MMIO accesses to the buses, stops to the VM, instruction fix-ups to the
 * arch code).
 */
#ifndef STRATUS_VMM_VCPU_H
#define STRATUS_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "error.h"

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	atomic_int tid; /* kernel thread id, for query-cpus and logs; 0 until running */
	bool thread_started;
};

int vcpu_create(struct vm *vm, unsigned int id, struct vcpu **out, struct error *err);
void vcpu_destroy(struct vcpu *vcpu);

/* Start the vCPU thread (all vCPUs are set up before the first one starts). */
int vcpu_start(struct vcpu *vcpu, struct error *err);

/* Make KVM_RUN return so the thread looks at the VM state (stop, pause). */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

/* Block the kick signal in the calling thread (call before creating other threads). */
void vcpu_signals_init(void);

#endif
