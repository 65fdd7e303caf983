/*
 * Internals shared by the ttrpc server's two halves: ttrpc_server.c (the loop, listeners,
 * extra fds, registration) and ttrpc_conn.c (one client connection: frames in, answers out,
 * calls). Not part of the API (ttrpc.h).
 */
#ifndef STRATUS_SHIM_TTRPC_INTERNAL_H
#define STRATUS_SHIM_TTRPC_INTERNAL_H

#include <stdatomic.h>

#include "ttrpc.h"

#define TTRPC_READ_BUDGET	 (1u << 20) /* bytes read per connection per wake-up */
#define TTRPC_BODY_INITIAL	 4096
#define TTRPC_DEFAULT_MAX_CONNS	 64
#define TTRPC_DEFAULT_MAX_OUTPUT (16u << 20)
#define TTRPC_DEFAULT_MAX_CALLS	 1024
#define TTRPC_STOP_FLUSH_MS	 1000

enum source_kind {
	SOURCE_LISTENER,
	SOURCE_CONN,
	SOURCE_WATCH,
	SOURCE_WAKE
};

struct source {
	enum source_kind kind;
	bool dead;
};

struct method {
	char *service;
	char *method;
	ttrpc_method_fn fn;
	void *opaque;
	struct method *next;
};

struct listener {
	struct source src;
	int fd;
	struct listener *next;
};

struct watch {
	struct source src;
	int fd;
	ttrpc_fd_fn cb;
	void *opaque;
	struct watch *next;
};

struct conn {
	struct source src;
	struct ttrpc_server *srv;
	uint64_t id;
	int fd;
	uint32_t events; /* what epoll currently watches */
	unsigned int pending_calls;

	uint8_t hdr[TTRPC_HEADER_LEN];
	size_t hdr_got;
	struct ttrpc_header h;
	bool in_body;
	uint8_t *body;
	size_t body_got, body_cap;
	uint32_t discard; /* bytes of an oversized frame still to skip */
	uint32_t last_stream_id;

	uint8_t *out;
	size_t out_off, out_len, out_cap;

	struct conn *next;
};

struct ttrpc_server {
	int epoll_fd;
	int wake_fd;
	struct source wake_src;
	atomic_bool stopping;
	unsigned int max_conns;
	size_t max_output;
	unsigned int max_calls;
	unsigned int nconns;
	uint64_t next_conn_id;
	struct method *methods;
	struct listener *listeners;
	struct watch *watches;
	struct conn *conns;
};

struct ttrpc_call {
	struct ttrpc_server *srv;
	uint64_t conn_id;
	uint32_t stream_id;
	int64_t timeout_nano;
};

struct conn *ttrpc_conn_new(struct ttrpc_server *srv, int fd);
void ttrpc_conn_free(struct conn *c);
void ttrpc_conn_kill(struct conn *c);
/* Bytes queued for the client and not yet sent. */
size_t ttrpc_conn_backlog(const struct conn *c);
/* Re-arm epoll for what the connection needs now (input unless stopping or backed up). */
void ttrpc_conn_update_events(struct conn *c);
/* Send what is queued, as far as the socket takes it. */
void ttrpc_conn_flush(struct conn *c);
/* Read and serve what the client sent (bounded per call). */
void ttrpc_conn_readable(struct conn *c);

#endif
