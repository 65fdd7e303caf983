/*
 * oci_spec_vm_size(): the microVM's vCPU count and memory for a parsed config.json; the rules
 * and their precedence are in vm_sizing.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vm_sizing.h"

/* A decimal annotation in [min, max]; 1 when absent, 0 when set, negative on error. */
static int annotation_number(const struct oci_spec *spec, const char *key, uint64_t min,
			     uint64_t max, uint64_t *out, struct error *err)
{
	const char *s = oci_spec_annotation(spec, key);
	char *end;
	uint64_t v;

	if (!s)
		return 1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v < min || v > max)
		return error_set(
			err, -EINVAL,
			"config.json: annotations[\"%s\"]: must be an integer from %" PRIu64
			" to %" PRIu64,
			key, min, max);
	*out = v;
	return 0;
}

/*
 * A CRI sandbox annotation (a signed decimal, as containerd writes it): its value when > 0,
 * 0 when absent, not a sandbox, or <= 0 (unset), negative on error.
 */
static int64_t sandbox_number(const struct oci_spec *spec, const char *key, struct error *err)
{
	const char *type = oci_spec_annotation(spec, VM_SIZE_CRI_TYPE);
	const char *s = oci_spec_annotation(spec, key);
	char *end;
	long long v;

	if (!s || !type || strcmp(type, "sandbox") != 0)
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (!*s || *end || errno)
		return error_set(err, -EINVAL,
				 "config.json: annotations[\"%s\"]: must be an integer", key);
	return v > 0 ? v : 0;
}

/*
 * What sizes the VM in place of linux.resources: a CRI sandbox's pod totals (containerd's
 * sandbox-cpu-quota/period and sandbox-memory, the sum of its containers' limits) when given,
 * else the container's own.
 */
static int sizing_resources(const struct oci_spec *spec, struct oci_resources *res,
			    struct error *err)
{
	int64_t quota = sandbox_number(spec, VM_SIZE_CRI_CPU_QUOTA, err);
	int64_t period = quota < 0 ? 0 : sandbox_number(spec, VM_SIZE_CRI_CPU_PERIOD, err);
	int64_t mem = quota < 0 || period < 0 ? 0 : sandbox_number(spec, VM_SIZE_CRI_MEMORY, err);

	if (quota < 0 || period < 0 || mem < 0)
		return -EINVAL;
	*res = spec->linux_.resources;
	if (quota > 0 && period > 0) {
		res->has_cpu_quota = res->has_cpu_period = true;
		res->cpu_quota = quota;
		res->cpu_period = (uint64_t)period;
	}
	if (mem > 0 && ((uint64_t)mem >> 20) >= VM_SIZE_MAX_MEM_MIB - VM_SIZE_BASE_MIB)
		return error_set(err, -EINVAL,
				 "config.json: annotations[\"%s\"]: more than the %u MiB a microVM "
				 "can have",
				 VM_SIZE_CRI_MEMORY, VM_SIZE_MAX_MEM_MIB - VM_SIZE_BASE_MIB);
	if (mem > 0) {
		res->has_memory_limit = true;
		res->memory_limit = mem;
	}
	return 0;
}

static int size_vcpus(const struct oci_spec *spec, const struct oci_resources *res,
		      unsigned int *vcpus, struct error *err)
{
	uint64_t v = 1;
	int r = annotation_number(spec, VM_SIZE_ANNOTATION_VCPUS, 1, VM_SIZE_MAX_VCPUS, &v, err);

	if (r < 0)
		return r;
	if (r > 0 && res->has_cpu_quota && res->cpu_quota > 0 && res->has_cpu_period &&
	    res->cpu_period > 0) {
		uint64_t q = (uint64_t)res->cpu_quota;

		v = q / res->cpu_period + (q % res->cpu_period != 0);
		v = v < 1 ? 1 : v > VM_SIZE_MAX_VCPUS ? VM_SIZE_MAX_VCPUS : v;
	}
	*vcpus = (unsigned int)v;
	return 0;
}

static int size_memory(const struct oci_spec *spec, const struct oci_resources *res,
		       uint64_t *mem_mib, struct error *err)
{
	uint64_t v = VM_SIZE_BASE_MIB;
	int r = annotation_number(spec, VM_SIZE_ANNOTATION_MEMORY, VM_SIZE_MIN_MEM_MIB,
				  VM_SIZE_MAX_MEM_MIB, &v, err);

	if (r < 0)
		return r;
	if (r > 0 && res->has_memory_limit && res->memory_limit > 0) {
		uint64_t limit = (uint64_t)res->memory_limit;
		uint64_t mib = (limit >> 20) + ((limit & ((1u << 20) - 1)) != 0);

		if (mib > VM_SIZE_MAX_MEM_MIB - VM_SIZE_BASE_MIB)
			return error_set(err, -EINVAL,
					 "config.json: linux.resources.memory.limit: more than the "
					 "%u MiB a microVM can have",
					 VM_SIZE_MAX_MEM_MIB - VM_SIZE_BASE_MIB);
		v = VM_SIZE_BASE_MIB + mib;
	}
	*mem_mib = v;
	return 0;
}

int oci_spec_vm_size(const struct oci_spec *spec, unsigned int *vcpus, uint64_t *mem_mib,
		     struct error *err)
{
	struct oci_resources res;

	return sizing_resources(spec, &res, err) ?: size_vcpus(spec, &res, vcpus, err)
						       ?: size_memory(spec, &res, mem_mib, err);
}
