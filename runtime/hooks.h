/*
 * OCI hooks (runtime-spec config.md "POSIX-platform Hooks"), run on the host: in a VM
 * runtime there is no runtime or container namespace on the host side, so every kind runs in
 * the runtime's own namespaces, at the lifecycle point the spec names (docs/runtime.md). Each
 * hook gets the container's state JSON on stdin, its own args and env (nothing else of ours),
 * and is killed when its timeout passes. Its stdout and stderr are captured (the runtime's
 * own may be the container's stdio) and the first line of them goes into the error.
 */
#ifndef STRATUS_RUNTIME_HOOKS_H
#define STRATUS_RUNTIME_HOOKS_H

#include "oci_spec.h"

#define HOOK_OUTPUT_MAX 4096

/*
 * Run the hooks of kind in order, stopping at the first failure: 0, or a negative errno with
 * "hooks.<kind>[i]: <path>: <why>" in err.
 */
int hooks_run(const struct oci_spec *spec, enum oci_hook_kind kind, const char *state_json,
	      struct error *err);

/* One hook; path_name is how messages name it ("hooks.prestart[0]"). */
int hook_run(const struct oci_hook *hook, const char *path_name, const char *state_json,
	     struct error *err);

#endif
