/*
 * stratus-agent: the guest's PID 1 (docs/agent-protocol.md). Parses the command line, does
 * the PID-1 set-up when it is PID 1 (init.c), opens the transport and runs the core
 * (agent.c). Transports: "--listen vsock:PORT" (the guest: control on PORT, stdio on PORT+1,
 * default 1024), "--listen unix:PATH" (native tests: control at PATH, stdio at PATH.stdio),
 * "--listen fd:CONTROL,STDIO" (inherited listening sockets). "--no-init" skips the PID-1
 * mounts even as PID 1. "stratus.trace" (or /etc/stratus-trace) turns on the step
 * timestamps (agent_trace.c). As PID 1 it prepares what every container needs before
 * serving (agent_prepare), so a template's snapshot holds it. As PID 1 it never exits: after SHUTDOWN, and on any fatal error
 * (logged on the console first), it syncs and powers off; and since the kernel hands init
 * every unknown command-line word without "=", unknown arguments are logged and ignored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "agent_proto.h"
#include "init.h"

static int usage(void)
{
	fprintf(stderr, "usage: stratus-agent [--no-init] [--listen vsock:PORT|unix:PATH|"
			"fd:CONTROL,STDIO]\n");
	return 2;
}

static int open_listeners(const char *spec, int *control, int *stdio)
{
	char path[4096];
	unsigned int a, b;

	if (!strncmp(spec, "vsock:", 6)) {
		a = (unsigned int)strtoul(spec + 6, NULL, 10);
		*control = agent_listen_vsock(a);
		*stdio = agent_listen_vsock(a + 1);
	} else if (!strncmp(spec, "unix:", 5) && strlen(spec + 5) + 7 < sizeof(path)) {
		snprintf(path, sizeof(path), "%s.stdio", spec + 5);
		*control = agent_listen_unix(spec + 5);
		*stdio = agent_listen_unix(path);
	} else if (sscanf(spec, "fd:%u,%u", &a, &b) == 2) {
		*control = (int)a;
		*stdio = (int)b;
	} else {
		return -EINVAL;
	}
	return *control < 0 ? *control : *stdio < 0 ? *stdio : 0;
}

int main(int argc, char **argv)
{
	const char *listen = "vsock:1024";
	bool no_init = false, trace = false, pid1 = getpid() == 1;
	struct agent *a;
	int control, stdio, r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-init"))
			no_init = true;
		else if (!strcmp(argv[i], "stratus.trace"))
			trace = true;
		else if (!strcmp(argv[i], "--listen") && i + 1 < argc)
			listen = argv[++i];
		else if (pid1) /* a word from the kernel command line: not ours to refuse */
			agent_init_log("ignoring argument \"%s\"", argv[i]);
		else
			return usage();
	}
	if (pid1 && !no_init)
		agent_init_pid1();
	if (trace || access("/etc/stratus-trace", F_OK) == 0)
		agent_trace_enable(STDERR_FILENO);
	if (pid1 && !strncmp(listen, "vsock:", 6)) {
		r = agent_init_vsock_cid();
		if (r < 0) {
			agent_init_log("listen %s: %s", listen,
				       r == -ENODEV ? "the VM has no vsock device" : strerror(-r));
			agent_init_poweroff();
		}
		agent_init_log("guest vsock cid %d", r);
	}
	r = open_listeners(listen, &control, &stdio);
	if (r == 0)
		r = agent_create(control, stdio, &a);
	if (r == 0 && pid1)
		agent_prepare(a);
	if (r < 0) {
		agent_init_log("listen %s: %s", listen, strerror(-r));
		if (pid1)
			agent_init_poweroff();
		return 1;
	}
	agent_init_log("protocol %d.%d, listening on %s", AGENT_PROTO_MAJOR, AGENT_PROTO_MINOR,
		       listen);
	r = agent_run(a);
	agent_destroy(a);
	if (r < 0)
		agent_init_log("event loop: %s", strerror(-r));
	if (pid1) /* PID 1 must never exit: power off instead (a panic otherwise). */
		agent_init_poweroff();
	return r < 0 ? 1 : 0;
}
