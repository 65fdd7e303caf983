/*
 * stratus-agent's core (docs/agent-protocol.md): the guest's PID 1 minus its PID-1 duties
 * (those live in init.c, called by main.c). One epoll loop serves the control port (requests,
 * replies, EVENT_EXIT), the stdio port (STREAM_ATTACH, then raw bytes), SIGCHLD via a
 * signalfd, and the copy loops between process pipes or ptys and their stdio connections.
 * The transport is a seam: the caller hands over two listening sockets, AF_VSOCK in the guest
 * or AF_UNIX in the native unit tests. Every container gets its rootfs, namespaces, cgroup,
 * capabilities and seccomp filter from CREATE (agent/README.md).
 */
#ifndef STRATUS_AGENT_H
#define STRATUS_AGENT_H

#include <stdint.h>

struct agent;

/* Take ownership of two listening sockets (control, stdio): 0 or a negative errno. */
int agent_create(int control_fd, int stdio_fd, struct agent **out);

#define AGENT_DEFAULT_RUN_DIR	  "/run/stratus"	   /* rootfs mountpoints */
#define AGENT_DEFAULT_CGROUP_ROOT "/sys/fs/cgroup/stratus" /* container cgroups */

/*
 * Where container rootfs mountpoints (RUN_DIR/<id>) and cgroups (CGROUP_ROOT/<id>) go; NULL
 * keeps the default. The native tests point both at their own temporary places.
 */
int agent_configure(struct agent *a, const char *run_dir, const char *cgroup_root);

/*
 * Tests only: hook runs in each CREATE's child after the agent let it go, before any of its
 * set-up (a place to stall one container's set-up while the agent serves others).
 */
void agent_set_setup_hook(struct agent *a, void (*hook)(const char *container_id));

/*
 * Tests only: MOUNT_SHARE mounts this filesystem type (its source the tag) instead of
 * virtiofs, which a native test host has no device for (a tmpfs stands in for the share).
 */
int agent_set_share_fstype(struct agent *a, const char *fstype);

/*
 * What every container needs and no container changes, done once before serving (PID 1: in
 * a template, before the snapshot, so no CREATE pays for it): the run directory and the
 * cgroup root with its controllers enabled. Best effort: CREATE still does what failed.
 * It also says that the agent is the VM's PID 1: SHUTDOWN kills and syncs before it answers,
 * and the agent's network namespace is the VM's own: the first container that asks for a new
 * one gets it instead, if the VM has no interface but lo (agent_config.c).
 */
void agent_prepare(struct agent *a);

/* Serve until SHUTDOWN (returns 0, everything killed and reaped) or a fatal error (< 0). */
int agent_run(struct agent *a);
void agent_destroy(struct agent *a);

/*
 * Step timestamps (agent_trace.c) on fd, a copy of it kept: main.c turns them on for the
 * command-line word "stratus.trace" or the file /etc/stratus-trace.
 */
void agent_trace_enable(int fd);

/* Listening sockets for the two transports: a fd or a negative errno. */
int agent_listen_unix(const char *path);
int agent_listen_vsock(uint32_t port);

#endif
