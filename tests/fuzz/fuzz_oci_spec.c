/*
 * libFuzzer target for config.json parsing (runtime/oci_spec.h): arbitrary bytes through
 * oci_spec_parse() without a bundle, then VM sizing on whatever parsed. Any crash, leak,
 * sanitizer report or multi-line error message is a bug: a config is hostile input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci_spec.h"
#include "vm_sizing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oci_spec *spec = NULL;
	struct error err = { 0 };
	unsigned int vcpus;
	uint64_t mem;

	if (oci_spec_parse((const char *)data, size, NULL, &spec, &err) < 0) {
		if (!err.msg[0] || strchr(err.msg, '\n'))
			abort();
		return 0;
	}
	error_clear(&err);
	if (oci_spec_vm_size(spec, &vcpus, &mem, &err) == 0 && (vcpus < 1 || vcpus > 64 || !mem))
		abort();
	oci_spec_free(spec);
	return 0;
}
