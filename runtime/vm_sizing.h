/*
 * How big a microVM a container gets, from its config.json: vCPUs and guest memory. Precedence,
 * for each of the two: the stratus annotation when present (io.stratus.vm.vcpus,
 * io.stratus.vm.memory_mb: a deliberate, stratus-specific choice wins over a derived one), else
 * linux.resources (vCPUs = ceil(cpu.quota / cpu.period); memory = VM_SIZE_BASE_MIB + the
 * container's memory.limit rounded up to MiB, so the guest kernel and agent never eat into the
 * container's budget), else the defaults (1 vCPU, VM_SIZE_BASE_MIB). A quota above
 * VM_SIZE_MAX_VCPUS is clamped (cgroups allow it; the VM cannot use more); an annotation out of
 * range, or a memory limit that would need more than VM_SIZE_MAX_MEM_MIB, is an error naming it.
 * A CRI pod sandbox (io.kubernetes.cri.container-type "sandbox") is sized for the whole pod: the
 * pod totals containerd (>= 1.6.7, from the kubelet's PodSandboxConfig) writes in its
 * sandbox-cpu-quota/-period and sandbox-memory annotations stand in for linux.resources when
 * set (> 0), as Kata does; its members get no VM of their own (docs/pods.md).
 */
#ifndef STRATUS_RUNTIME_VM_SIZING_H
#define STRATUS_RUNTIME_VM_SIZING_H

#include <stdint.h>

#include "oci_spec.h"

#define VM_SIZE_ANNOTATION_VCPUS  "io.stratus.vm.vcpus"
#define VM_SIZE_ANNOTATION_MEMORY "io.stratus.vm.memory_mb"
#define VM_SIZE_CRI_TYPE	  "io.kubernetes.cri.container-type"
#define VM_SIZE_CRI_CPU_QUOTA	  "io.kubernetes.cri.sandbox-cpu-quota"
#define VM_SIZE_CRI_CPU_PERIOD	  "io.kubernetes.cri.sandbox-cpu-period"
#define VM_SIZE_CRI_MEMORY	  "io.kubernetes.cri.sandbox-memory"
#define VM_SIZE_MAX_VCPUS	  64u
#define VM_SIZE_BASE_MIB	  128u
#define VM_SIZE_MIN_MEM_MIB	  64u
#define VM_SIZE_MAX_MEM_MIB	  (256u * 1024) /* 256 GiB */

int oci_spec_vm_size(const struct oci_spec *spec, unsigned int *vcpus, uint64_t *mem_mib,
		     struct error *err);

#endif
