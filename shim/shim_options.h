/*
 * containerd's runtime options for a runc-type shim (containerd.runc.v1.Options, our
 * shim/proto/containerd/runc/options/oci.proto), as containerd 1.6 hands them over: a
 * marshaled google.protobuf.Any on `start`'s stdin (or nothing), and the Any in Create's
 * options. We use two fields: ShimCgroup (the cgroup `start` puts the server in) and
 * SystemdCgroup (the manager for linux.cgroupsPath). Any other type of options (CRI's
 * runtimeoptions.v1.Options for a non-runc runtime type) is not ours to read: none.
 * docs/shim.md "Runtime options".
 */
#ifndef STRATUS_SHIM_SHIM_OPTIONS_H
#define STRATUS_SHIM_SHIM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define SHIM_RUNC_OPTIONS_TYPE "containerd.runc.v1.Options"
#define SHIM_OPTIONS_MAX       (1u << 20) /* bytes of stdin read at most */
#define SHIM_OPTIONS_STDIN_MS  10000	  /* containerd writes them at once, then closes */

struct shim_runc_options {
	bool present; /* the Any held a containerd.runc.v1.Options */
	bool systemd_cgroup;
	char *shim_cgroup; /* NULL: none */
};

/*
 * An Any's type_url and value: a containerd.runc.v1.Options (type_url that name, bare or
 * after a "/", as type.googleapis.com/... puts it) is decoded into *out; another type leaves
 * out->present false. Bytes that do not decode are an error naming what (e.g. "options").
 */
int shim_runc_options_from_any(const char *what, const char *type_url, const uint8_t *value,
			       size_t len, struct shim_runc_options *out, struct error *err);

/* `start`'s stdin bytes: nothing (no options) or a marshaled Any, as above. */
int shim_runc_options_decode(const uint8_t *data, size_t len, struct shim_runc_options *out,
			     struct error *err);

/*
 * Read fd (`start`'s stdin) to its end and decode it. A terminal or a closed fd is read as
 * nothing; a pipe that does not end within SHIM_OPTIONS_STDIN_MS is an error.
 */
int shim_runc_options_read(int fd, struct shim_runc_options *out, struct error *err);

void shim_runc_options_clear(struct shim_runc_options *o);

#endif
