/*
 * stratus-agentctl's stdio relay: host files on one side, the agent's stdio streams (one
 * vsock connection per stream, docs/agent-protocol.md "stdio") on the other. A poll loop
 * with one 64 KiB buffer per direction; the stream sockets are non-blocking. stdin's end of
 * file is a half-close of its stream (the agent then closes the process's stdin); a pty
 * stream is never half-closed, since that would end the terminal's output too. The loop ends
 * when every output stream has reached end of file, which the agent sends only after the
 * process's output is all written, so a file is complete when the loop returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_client.h"
#include "agentctl.h"

#define RELAY_BUF (64 << 10)

struct pipe {
	int src, dst;
	bool output;	 /* stream to host file: the loop waits for its end */
	bool half_close; /* at the source's end, shutdown(dst, SHUT_WR) */
	bool src_eof, dst_dead, done;
	size_t len, off;
	char buf[RELAY_BUF];
};

static int open_host(const char *path, int std_fd, bool input)
{
	int fd;

	if (!strcmp(path, "-"))
		return dup(std_fd);
	fd = input ? open(path, O_RDONLY | O_CLOEXEC)
		   : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fprintf(stderr, "agentctl: --%s %s: %s\n",
			input	      ? "stdin"
			: std_fd == 1 ? "stdout"
				      : "stderr",
			path, strerror(errno));
	return fd;
}

int agentctl_stdio_open(struct agentctl_stdio *io, const char *sock, const char *container_id,
			const char *exec_id, int timeout_ms)
{
	const char *paths[3] = { io->in, io->out, io->err };
	char err[AGENT_CLIENT_ERR_MAX];

	for (int i = 0; i < 3; i++)
		io->host[i] = -1;
	for (int i = 0; i < AGENT_STREAM_NR; i++)
		io->stream[i] = -1;
	io->mask = 0;
	if (io->tty && io->err) {
		fprintf(stderr, "agentctl: --stderr: a terminal has no separate stderr\n");
		return 1;
	}
	for (int i = 0; i < 3; i++) {
		if (!paths[i])
			continue;
		io->host[i] = open_host(paths[i], i, i == 0);
		if (io->host[i] < 0)
			goto fail;
		if (!io->tty)
			io->mask |= AGENT_STDIO_BIT(i);
	}
	if (io->tty)
		io->mask = AGENT_STDIO_BIT(AGENT_STREAM_PTY);
	for (int s = 0; s < AGENT_STREAM_NR; s++) {
		if (!(io->mask & AGENT_STDIO_BIT(s)))
			continue;
		io->stream[s] = agent_stream_open(sock, container_id, exec_id, s, timeout_ms, err,
						  sizeof(err));
		if (io->stream[s] < 0) {
			fprintf(stderr, "agentctl: attach stream %d: %s\n", s, err);
			goto fail;
		}
	}
	return 0;
fail:
	agentctl_stdio_close(io);
	return 1;
}

void agentctl_stdio_close(struct agentctl_stdio *io)
{
	for (int i = 0; i < 3; i++) {
		if (io->host[i] >= 0)
			close(io->host[i]);
		io->host[i] = -1;
	}
	for (int i = 0; i < AGENT_STREAM_NR; i++) {
		if (io->stream[i] >= 0)
			close(io->stream[i]);
		io->stream[i] = -1;
	}
}

static void pipe_step(struct pipe *p, short revents, bool src_side)
{
	ssize_t n;

	if (src_side && revents) {
		n = read(p->src, p->buf, sizeof(p->buf));
		if (n > 0)
			p->len = (size_t)n, p->off = 0;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			p->src_eof = true;
	} else if (!src_side && revents) {
		n = write(p->dst, p->buf + p->off, p->len - p->off);
		if (n > 0)
			p->off += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			p->dst_dead = true;
		if (p->dst_dead || p->off == p->len)
			p->len = p->off = 0; /* nobody reads: drop, never stall the process */
	}
	if (p->src_eof && p->len == 0 && !p->done) {
		if (p->half_close && !p->dst_dead)
			shutdown(p->dst, SHUT_WR);
		p->done = true;
	}
}

static int relay_loop(struct pipe *pipes, int n)
{
	struct pollfd pfd[3];
	bool src_side[3];
	int outputs, outputs_left;

	for (;;) {
		outputs = outputs_left = 0;
		for (int i = 0; i < n; i++) {
			outputs += pipes[i].output;
			outputs_left += pipes[i].output && !pipes[i].done;
		}
		/* With outputs, their end is the process's; without, the input's end. */
		if (outputs_left == 0 && (outputs > 0 || n == 0 || pipes[0].done))
			return 0;
		for (int i = 0; i < n; i++) {
			struct pipe *p = &pipes[i];

			src_side[i] = p->len == 0;
			pfd[i].fd = p->done ? -1 : src_side[i] ? p->src : p->dst;
			pfd[i].events = src_side[i] ? POLLIN : POLLOUT;
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("agentctl: poll");
			return -1;
		}
		for (int i = 0; i < n; i++)
			if (!pipes[i].done)
				pipe_step(&pipes[i], pfd[i].revents, src_side[i]);
	}
}

int agentctl_relay(struct agentctl_stdio *io)
{
	struct pipe *pipes = calloc(3, sizeof(*pipes));
	int n = 0, r, pty = io->stream[AGENT_STREAM_PTY];

	if (!pipes) {
		agentctl_stdio_close(io);
		return -1;
	}
	/* The input first: without outputs, relay_loop waits for pipes[0], the input. */
	if (io->host[0] >= 0)
		pipes[n++] = (struct pipe){ .src = io->host[0],
					    .dst = io->tty ? pty : io->stream[AGENT_STREAM_STDIN],
					    .half_close = !io->tty };
	if (io->tty && io->host[1] >= 0)
		pipes[n++] = (struct pipe){ .src = pty, .dst = io->host[1], .output = true };
	for (int s = AGENT_STREAM_STDOUT; !io->tty && s <= AGENT_STREAM_STDERR; s++)
		if (io->host[s] >= 0)
			pipes[n++] = (struct pipe){ .src = io->stream[s],
						    .dst = io->host[s],
						    .output = true };
	if (io->tty && io->host[1] < 0 && pty >= 0) {
		/* Terminal output nobody keeps: still drained until the end. */
		pipes[n] = (struct pipe){ .src = pty,
					  .dst = open("/dev/null", O_WRONLY),
					  .output = true };
		if (pipes[n].dst >= 0)
			n++;
	}
	r = relay_loop(pipes, n);
	if (io->tty && io->host[1] < 0 && n > 0 && pipes[n - 1].output)
		close(pipes[n - 1].dst);
	free(pipes);
	agentctl_stdio_close(io);
	return r;
}

int agentctl_relay_detach(struct agentctl_stdio *io, int close_fd)
{
	int devnull;
	pid_t pid;

	if (io->mask == 0)
		return 0;
	pid = fork();
	if (pid < 0) {
		perror("agentctl: fork");
		agentctl_stdio_close(io);
		return -1;
	}
	if (pid > 0) {
		agentctl_stdio_close(io);
		return 0;
	}
	/* The child: leave the caller's terminal and pipes, so $(agentctl create) returns. */
	setsid();
	if (close_fd >= 0)
		close(close_fd);
	devnull = open("/dev/null", O_RDWR);
	for (int i = 0; devnull >= 0 && i < 3; i++)
		dup2(devnull, i);
	if (devnull > 2)
		close(devnull);
	_exit(agentctl_relay(io) < 0 ? 1 : 0);
}
