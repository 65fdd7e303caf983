/*
 * containerd-shim-stratus-v2: the containerd runtime v2 shim for stratus. containerd runs the
 * binary as `-namespace NS -address ADDR -publish-binary BIN -id ID [-debug] [-bundle DIR]
 * start|delete` with the bundle as working directory; `start` forks the long-lived server
 * (the same binary, no action, the listening socket as fd 3) and prints its address; the
 * server answers the containerd.task.v2.Task ttrpc service. docs/shim.md.
 */
#ifndef STRATUS_SHIM_SHIM_H
#define STRATUS_SHIM_SHIM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define SHIM_VERSION "0.1.0"
#define SHIM_NAME    "containerd-shim-stratus-v2"
/* containerd 1.6 puts shim sockets here; STRATUS_SHIM_SOCKET_DIR overrides it (tests). */
#define SHIM_SOCKET_DIR_DEFAULT "/run/containerd/s"
/* The listening socket handed from `start` to the server it forks. */
#define SHIM_LISTEN_FD 3
/* libstratus's state root for the shim's containers: DIR/<namespace>. */
#define SHIM_ROOT_DEFAULT	"/run/stratus/containerd"
#define SHIM_ROOT_ENV		"STRATUS_SHIM_ROOT"
#define SHIM_SANDBOX_ANNOTATION "io.kubernetes.cri.sandbox-id"

enum shim_action {
	SHIM_ACTION_SERVE, /* no action word: the server process `start` forked */
	SHIM_ACTION_START,
	SHIM_ACTION_DELETE,
};

struct shim_options {
	const char *namespace;
	const char *address; /* containerd's main (gRPC) socket */
	const char *publish_binary;
	const char *id;
	const char *bundle; /* default: the working directory */
	const char *socket; /* -socket: the address the server serves (informational) */
	bool debug;
	bool version;
	enum shim_action action;
};

/* Parse argv as Go's flag package does (-flag value, -flag=value, --flag, bools bare). */
int shim_flags_parse(int argc, char **argv, struct shim_options *opts, struct error *err);

/*
 * The socket address containerd 1.6 shims use: "unix://" DIR "/" hex(sha256(address "/" ns "/"
 * id)), DIR being /run/containerd/s or $STRATUS_SHIM_SOCKET_DIR.
 */
int shim_socket_address(const char *address, const char *ns, const char *id, char *out,
			size_t out_len);
/* The bundle's "address" file (written atomically, read back without trailing space). */
int shim_address_write(const char *bundle, const char *address, struct error *err);
int shim_address_read(const char *bundle, char *out, size_t out_len, struct error *err);
/*
 * The io.kubernetes.cri.sandbox-id annotation of bundle/config.json into out; "" when the
 * annotation is absent. A config.json that cannot be read or parsed is an error naming it.
 */
int shim_sandbox_id(const char *bundle, char *out, size_t out_len, struct error *err);
/* 0 if something accepts connections at address, else a negative errno. */
int shim_address_alive(const char *address);

int shim_start(const struct shim_options *opts, const char *self_exe, struct error *err);
int shim_delete(const struct shim_options *opts, struct error *err);
/* SHIM_ROOT_ENV or SHIM_ROOT_DEFAULT, "/" ns: where libstratus keeps the shim's containers. */
int shim_state_root(const char *ns, char *out, size_t out_len);
int shim_serve(const struct shim_options *opts, struct error *err);

#endif
