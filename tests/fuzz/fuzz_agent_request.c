/*
 * libFuzzer target for the agent's request path (agent/agent_ctl.c and everything a request
 * reaches: the OCI process and container config parsers with yajl, the seccomp compiler, the
 * mount option parser, the cgroup limits parser, exit records, waits, PS). Each input is the
 * byte stream of one control connection after a valid HELLO, fed through a socketpair to the
 * real dispatcher and event loop (agent_step). The agent runs dry: it parses and answers
 * everything but never forks, mounts, creates cgroups or sets the clock. Every byte the agent
 * sends back must decode as a frame: a malformed reply is a crash.
 * Run: tests/fuzz/run.sh agent_request SECONDS.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "agent_internal.h"

static struct agent *agent;

static void agent_once(void)
{
	int control[2], stdio[2];

	if (agent)
		return;
	/* Stand-ins for the listeners: their peers never connect, so they never fire. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, control) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, stdio) < 0 ||
	    agent_create(control[0], stdio[0], &agent) < 0)
		abort();
	agent->dry_run = true;
	agent_configure(agent, "/nonexistent/stratus-fuzz", "/nonexistent/stratus-fuzz");
}

/* Read what the agent answered; every frame must decode. False once the agent hung up. */
static bool drain(int fd, struct agent_reader *rd)
{
	for (;;) {
		struct agent_msg m;
		int r = agent_reader_read(rd, fd);

		if (r == -EAGAIN)
			return true;
		if (r == 0 || r == -ECONNRESET)
			return false;
		if (r < 0)
			abort(); /* the agent sent a frame that does not parse */
		if (agent_reader_take(rd, &m) < 0)
			abort();
		agent_msg_clear(&m);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_msg hello = { .type = AGENT_HELLO, .id = 1 };
	struct agent_buf b = { 0 };
	struct agent_reader rd;
	size_t off = 0;
	bool open = true;
	int sp[2];

	agent_once();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0)
		abort();
	if (ctl_adopt(agent, sp[0]) < 0)
		abort();
	hello.u.hello = (struct agent_hello){ AGENT_PROTO_MAJOR, AGENT_PROTO_MINOR, "fuzz" };
	if (agent_msg_encode(&hello, &b) < 0 || write(sp[1], b.data, b.len) != (ssize_t)b.len)
		abort();
	agent_buf_free(&b);
	agent_reader_init(&rd, AGENT_MAX_PAYLOAD);
	/* Feed the input as the socket takes it, letting the agent answer in between. */
	for (int turns = 0; open && turns < 10000; turns++) {
		if (off < size) {
			ssize_t n = write(sp[1], data + off, size - off);

			if (n > 0)
				off += (size_t)n;
			if (off == size)
				shutdown(sp[1], SHUT_WR);
		} else if (size == 0 && off == 0) {
			shutdown(sp[1], SHUT_WR);
			off = 1;
		}
		agent_step(agent, 0);
		open = drain(sp[1], &rd);
	}
	agent_reader_destroy(&rd);
	close(sp[1]);
	agent_step(agent, 0); /* the agent notices the hang-up, if it has not closed first */
	return 0;
}
