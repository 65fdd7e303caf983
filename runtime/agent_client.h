/*
 * The host's client for stratus-agent (docs/agent-protocol.md), shared by the stratus CLI and
 * the containerd shim: connect to a VM's hybrid-vsock Unix socket ("CONNECT <port>\n", then
 * "OK <n>\n"), the version handshake, and synchronous requests matched to their reply by
 * request id. No threads: events (exits, OOM) that arrive while a request waits are queued and
 * read with agent_client_next_event(), or the caller polls agent_client_fd(). The agent is
 * hostile: every reply is decoded by the shared bounds-checked codec, and a reply that does
 * not answer what was asked breaks the connection rather than being believed.
 */
#ifndef STRATUS_RUNTIME_AGENT_CLIENT_H
#define STRATUS_RUNTIME_AGENT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_proto.h"

#define AGENT_CLIENT_MAX_EVENTS 64
#define AGENT_CLIENT_ERR_MAX	512

struct agent_client {
	int fd;
	int timeout_ms; /* per request; < 0 waits forever */
	bool broken;	/* a protocol violation or I/O failure: only destroy is left */
	uint32_t next_id;
	struct agent_reader reader;
	struct agent_hello peer; /* the agent's HELLO (owned) */
	struct agent_msg events[AGENT_CLIENT_MAX_EVENTS];
	unsigned int ev_head, ev_count;
	bool events_lost;		/* the queue overflowed: LIST_EXITS to catch up */
	char err[AGENT_CLIENT_ERR_MAX]; /* the last failure, for a person */
};

void agent_client_init(struct agent_client *c, int timeout_ms);
void agent_client_destroy(struct agent_client *c);

/*
 * Connect to guest vsock port through the hybrid-vsock socket at path: a non-blocking stream
 * fd positioned after the "OK" line, or a negative errno with a message in err.
 */
int agent_vsock_connect(const char *path, uint32_t port, int timeout_ms, char *err, size_t err_len);

/*
 * A VM's first connection (its monitor's, after a boot or a restore): connect to the agent's
 * control port and shake hands; then, with an agent of protocol 1.1 or later, set the guest's
 * clock to ours (SET_TIME: the guest has no RTC) and, from 1.2, add entropy to its RNG (a
 * clone shares its template's). Both are per VM, not per connection.
 */
int agent_client_connect(struct agent_client *c, const char *vsock_path);

/*
 * Any later connection to a VM the monitor has set up (CLI verbs, exec and pod relays): the
 * handshake alone, its HELLO sent with the vsock CONNECT line; the version check is the same.
 */
int agent_client_connect_plain(struct agent_client *c, const char *vsock_path);

/* Use an already connected stream (takes fd, closing it on failure) and shake hands. */
int agent_client_attach(struct agent_client *c, int fd);

static inline int agent_client_fd(const struct agent_client *c)
{
	return c->fd;
}

/*
 * Send req (its id is assigned here) and wait timeout_ms (< 0: forever) for its reply into
 * *reply (release with agent_msg_clear). An error reply returns its negative errno, with the
 * agent's message in c->err; reply is then empty.
 */
int agent_client_call(struct agent_client *c, struct agent_msg *req, struct agent_msg *reply,
		      int timeout_ms);

/* The next event (queued first, then from the stream): 0, -ETIMEDOUT, or a failure. */
int agent_client_next_event(struct agent_client *c, struct agent_msg *ev, int timeout_ms);

/* Typed requests (timeout: c->timeout_ms, except wait). */
int agent_client_ping(struct agent_client *c);
int agent_client_create(struct agent_client *c, const struct agent_create *req, uint32_t *pid);
int agent_client_start(struct agent_client *c, const char *container_id);
int agent_client_exec(struct agent_client *c, const struct agent_exec *req, uint32_t *pid);
int agent_client_signal(struct agent_client *c, const char *container_id, const char *exec_id,
			int signal, uint32_t flags);
/* The exit record into *exit (agent_msg_clear it); then agent_client_ack_exit(). */
int agent_client_wait(struct agent_client *c, const char *container_id, const char *exec_id,
		      int timeout_ms, struct agent_msg *exit);
int agent_client_ack_exit(struct agent_client *c, const char *container_id, const char *exec_id);
int agent_client_resize(struct agent_client *c, const char *container_id, const char *exec_id,
			uint32_t rows, uint32_t cols);
int agent_client_stats(struct agent_client *c, const char *container_id, struct agent_stats *out);
int agent_client_delete(struct agent_client *c, const char *container_id, uint32_t flags);
/* SET_TIME (1.1): the guest's CLOCK_REALTIME := realtime_ns. */
int agent_client_set_time(struct agent_client *c, uint64_t realtime_ns);
/* ADD_ENTROPY (1.2): len (1 to AGENT_MAX_ENTROPY) random bytes into the guest's pool. */
int agent_client_add_entropy(struct agent_client *c, const void *bytes, size_t len);
/* UPDATE (1.1): apply an OCI linux.resources object (JSON text) to the container's cgroup. */
int agent_client_update(struct agent_client *c, const char *container_id, const char *resources);
int agent_client_shutdown(struct agent_client *c);
/*
 * MOUNT_SHARE (1.3): the agent mounts virtio-fs tag (once) in its own mount namespace; *path
 * (malloc'd, absolute) is where. -EOPNOTSUPP, with c->err, from an agent older than 1.3.
 */
int agent_client_mount_share(struct agent_client *c, const char *tag, char **path);
/*
 * FREEZE (1.3): freeze (frozen) or thaw the container's cgroup; answered once cgroup.events
 * says so. -EOPNOTSUPP, with c->err, from an agent older than 1.3.
 */
int agent_client_freeze(struct agent_client *c, const char *container_id, bool frozen);
/*
 * NETWORK (1.4): configure the guest's NICs as n describes a network namespace (after HELLO,
 * before CREATE). -EOPNOTSUPP, with c->err, from an agent older than 1.4.
 */
int agent_client_network(struct agent_client *c, const struct agent_network *n);

/*
 * Open the stdio streams of a process named by stdio (AGENT_STDIO_BIT()s) at once: every
 * CONNECT, each carrying its STREAM_ATTACH, is sent before any answer is read, so the guest
 * takes them together. fds[AGENT_STREAM_NR] gets a non-blocking fd per stream asked for (-1
 * for the others); on failure none is left open and err names the stream.
 */
int agent_streams_open(const char *vsock_path, const char *container_id, const char *exec_id,
		       uint32_t stdio, int timeout_ms, int *fds, char *err, size_t err_len);

/*
 * Open one stdio stream of a process: a connection to the agent's stdio port, STREAM_ATTACH,
 * and its reply; the returned fd (non-blocking) then carries the raw bytes.
 */
int agent_stream_open(const char *vsock_path, const char *container_id, const char *exec_id,
		      enum agent_stream stream, int timeout_ms, char *err, size_t err_len);

#endif
