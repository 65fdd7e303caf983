/*
 * stratus-agentctl's stdio relay (agentctl_relay.c): the host ends of one process's streams,
 * attached to the agent's stdio port before CREATE or EXEC, and the poll loop that copies
 * them to and from host files.
 */
#ifndef STRATUS_AGENTCTL_H
#define STRATUS_AGENTCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_proto.h"

struct agentctl_stdio {
	const char *in, *out, *err; /* host files, "-" for ours, NULL for none */
	bool tty;		    /* one pty stream: in feeds it, out receives it */
	uint32_t mask;		    /* AGENT_STDIO_BIT of each attached stream */
	int host[3];		    /* host fds for in, out, err (-1: none) */
	int stream[AGENT_STREAM_NR];
};

/* Open the host files and attach the streams they need: 0, or 1 with a message printed. */
int agentctl_stdio_open(struct agentctl_stdio *io, const char *sock, const char *container_id,
			const char *exec_id, int timeout_ms);
void agentctl_stdio_close(struct agentctl_stdio *io);

/* Copy until every output stream reaches end of file; closes everything: 0 or -1. */
int agentctl_relay(struct agentctl_stdio *io);

/* The same in a detached child (closing close_fd there); the caller's copies are closed. */
int agentctl_relay_detach(struct agentctl_stdio *io, int close_fd);

#endif
