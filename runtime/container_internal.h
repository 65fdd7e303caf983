/* Shared by the container_*.c files of libstratus, not part of its API (container.h). */
#ifndef STRATUS_RUNTIME_CONTAINER_INTERNAL_H
#define STRATUS_RUNTIME_CONTAINER_INTERNAL_H

#include "container.h"
#include "oci_spec.h"

/* The hooks of kind, given the state JSON with status in place of st's. */
int container_run_hooks(const struct oci_spec *spec, enum oci_hook_kind kind,
			const struct container_state *st, enum container_status status,
			struct error *err);

#endif
