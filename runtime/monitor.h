/*
 * The monitor: one process per container, forked (and setsid) by `stratus create`, whose PID
 * is the container's PID as callers see it (docs/runtime.md "The monitor"). It runs the VM
 * (restored from the template snapshot create found for it, else cold-booted: template.h)
 * with libvmm in-process (vm_run on its main thread, vCPU threads, the QMP server at
 * <dir>/qmp.sock, the hybrid vsock at <dir>/vsock.sock) and one supervisor thread that talks
 * to the agent: connect once it is up, attach the init's stdio streams, CREATE, report to
 * `create` through notify_fd, relay the stdio it inherited (fds 0/1/2, or a pty whose master
 * went to --console-socket) for the container's whole life, and when the init exits drain
 * its output, SHUTDOWN the agent and exit with the init's status (code, or 128+signal).
 * Killing the monitor kills the VM: it lives in this process.
 */
#ifndef STRATUS_RUNTIME_MONITOR_H
#define STRATUS_RUNTIME_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_proto.h"
#include "guest_assets.h"
#include "netns.h"
#include "rootfs.h"

#define MONITOR_LOG	     "monitor.log"
#define MONITOR_CONSOLE	     "console.log"
#define MONITOR_VSOCK	     "vsock.sock"
#define MONITOR_QMP	     "qmp.sock"
#define MONITOR_GUEST_CID    3
#define MONITOR_EXIT_VM_LOST 255 /* the VM ended without the init's exit being reported */

/* What the monitor tells `create` on notify_fd: MONITOR_READY, or an error line. */
#define MONITOR_READY "ready\n"
/*
 * An error line that starts so: the VM could not be restored from cfg->template_snapshot (or
 * its agent did not answer); `create` removes the template and forks a cold-booting monitor.
 */
#define MONITOR_TEMPLATE_FAILED "template failed: "
/* How long a restored agent may take to answer before the template is deemed bad. */
#define MONITOR_RESTORE_AGENT_MS 20000
/* The guest's command line (the template's too: it is in the snapshot's memory). */
#define MONITOR_CMDLINE "console=ttyS0 quiet panic=-1"

struct monitor_config {
	const char *id;
	const char *state_dir;
	const struct guest_assets *assets;
	const char *template_snapshot; /* restore from this template (template.h); NULL: boot */
	unsigned int vcpus;
	uint64_t mem_mib;
	const struct rootfs *rootfs;
	const char *oci_config; /* config.json text, for CREATE */
	struct agent_mount *mounts;
	uint32_t n_mounts;
	bool terminal;		    /* process.terminal */
	const char *console_socket; /* terminal: where the pty master goes; NULL: relay fds 0/1 */
	/*
	 * The interfaces of config.json's network namespace (netns.h): one virtio-net device
	 * per tap, with the interface's MAC and MTU, and NETWORK to the agent before CREATE;
	 * NULL: no NIC. Never with template_snapshot (a template has no NIC).
	 */
	const struct netns_plan *network;
	uint32_t console_rows, console_cols;
	int notify_fd;
	int agent_timeout_ms;
	bool debug;
};

/* In the forked child: never returns. */
_Noreturn void monitor_main(const struct monitor_config *cfg);

struct vm_config;

/* The machine (not its devices) of a container's VM; the template builder's too. */
void monitor_vm_config(struct vm_config *vc, const struct guest_assets *assets, unsigned int vcpus,
		       uint64_t mem_mib, int serial_fd);

/* Drop every capability and set no_new_privs, once the VM is built. */
void monitor_drop_privileges(void);

#endif
