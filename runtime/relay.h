/*
 * Byte relays between host fds (the caller's stdio, a pty) and the agent's stdio streams,
 * for the monitor (the container's init) and `stratus exec`. Each pipe moves bytes one way
 * through a bounded buffer, so a side that stops reading stalls only its own pipe (the
 * guest's flow control does the rest). At end of input a pipe into a socket is half-closed
 * (the agent then closes the process's stdin); a reader that went away (EPIPE) drops the
 * rest of that pipe instead of blocking the others. The caller adds its own fds (agent
 * control connection, signalfd) to each poll round.
 */
#ifndef STRATUS_RUNTIME_RELAY_H
#define STRATUS_RUNTIME_RELAY_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#define RELAY_MAX_PIPES 4
#define RELAY_BUF_SIZE	65536

struct relay_pipe {
	int from, to;
	bool half_close; /* shutdown(to, SHUT_WR) at end of input */
	bool eof, done;
	size_t off, len;
	char buf[RELAY_BUF_SIZE];
};

struct relay {
	struct relay_pipe pipes[RELAY_MAX_PIPES];
	unsigned int n;
};

void relay_init(struct relay *r);
/* Returns the pipe's index, or -ENOSPC. */
int relay_add(struct relay *r, int from, int to, bool half_close);

/*
 * One round: poll the pipes and extra[0..n_extra) for up to timeout_ms, then move what is
 * ready. extra[i].revents tells the caller what happened to its fds. 0 or a negative errno
 * (EINTR is 0).
 */
int relay_step(struct relay *r, struct pollfd *extra, unsigned int n_extra, int timeout_ms);

/* The pipe has seen end of input and delivered everything. */
static inline bool relay_pipe_done(const struct relay *r, int i)
{
	return i < 0 || r->pipes[i].done;
}

#endif
