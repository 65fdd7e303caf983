/*
 * ttrpc: containerd's lightweight RPC over a stream socket, in C, for the shim.
 *
 * Wire format (containerd/ttrpc PROTOCOL.md, channel.go): every message is a 10-byte
 * big-endian header (u32 payload length, u32 stream id, u8 type, u8 flags) and a payload of at
 * most 4 MiB. A request frame carries a protobuf ttrpc.Request {service, method, payload,
 * timeout_nano, metadata}; the response frame on the same stream id carries a ttrpc.Response
 * {google.rpc.Status status, payload}. Client streams have odd ids that only increase.
 *
 * The server runs one epoll loop in the calling thread: non-blocking sockets, partial reads and
 * writes buffered per connection, handlers dispatched by (service, method) in the loop thread.
 * Everything a client sends is untrusted: oversized frames are discarded and answered with
 * ResourceExhausted, bad stream ids with InvalidArgument, unknown services and methods with
 * Unimplemented, exactly as containerd's Go server answers them; nothing a client sends can
 * crash or stall the loop. The client is synchronous (one call at a time), for tests and for
 * the shim's own calls to containerd.
 */
#ifndef STRATUS_SHIM_TTRPC_H
#define STRATUS_SHIM_TTRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TTRPC_HEADER_LEN  10
#define TTRPC_MESSAGE_MAX (4u << 20)

enum ttrpc_type {
	TTRPC_TYPE_REQUEST = 1,
	TTRPC_TYPE_RESPONSE = 2,
	TTRPC_TYPE_DATA = 3,
};

#define TTRPC_FLAG_REMOTE_CLOSED 0x1
#define TTRPC_FLAG_REMOTE_OPEN	 0x2
#define TTRPC_FLAG_NO_DATA	 0x4

/* gRPC status codes (google.rpc.Code), carried in every Response. */
enum ttrpc_code {
	TTRPC_OK = 0,
	TTRPC_CANCELLED = 1,
	TTRPC_UNKNOWN = 2,
	TTRPC_INVALID_ARGUMENT = 3,
	TTRPC_DEADLINE_EXCEEDED = 4,
	TTRPC_NOT_FOUND = 5,
	TTRPC_ALREADY_EXISTS = 6,
	TTRPC_PERMISSION_DENIED = 7,
	TTRPC_RESOURCE_EXHAUSTED = 8,
	TTRPC_FAILED_PRECONDITION = 9,
	TTRPC_ABORTED = 10,
	TTRPC_OUT_OF_RANGE = 11,
	TTRPC_UNIMPLEMENTED = 12,
	TTRPC_INTERNAL = 13,
	TTRPC_UNAVAILABLE = 14,
	TTRPC_DATA_LOSS = 15,
	TTRPC_UNAUTHENTICATED = 16,
};

struct ttrpc_header {
	uint32_t length; /* payload bytes after the header */
	uint32_t stream_id;
	uint8_t type;
	uint8_t flags;
};

void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_LEN]);
void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_LEN], struct ttrpc_header *h);

/* "Unimplemented", "InvalidArgument", ... as gRPC names them; "Code(N)" for unknown codes. */
const char *ttrpc_code_name(int code);

/*
 * One whole frame (header + payload) in a malloc'd buffer; payload_len must be at most
 * TTRPC_MESSAGE_MAX (-EMSGSIZE otherwise).
 */
int ttrpc_frame_build(uint32_t stream_id, uint8_t type, uint8_t flags, const void *payload,
		      size_t payload_len, uint8_t **out, size_t *out_len);

/* Serialized ttrpc.Request / ttrpc.Response (malloc'd). */
int ttrpc_request_pack(const char *service, const char *method, const void *payload,
		       size_t payload_len, int64_t timeout_nano, uint8_t **out, size_t *out_len);
int ttrpc_response_pack(int code, const char *message, const void *payload, size_t payload_len,
			uint8_t **out, size_t *out_len);

/* The outcome of a call as the client sees it: code, message and the response payload. */
struct ttrpc_status {
	int code;
	char message[256];
};

/*
 * Unix socket addresses as containerd writes them: "unix:///path", "/path", or an abstract
 * name with a leading '@' or "\0". Fills addr and its length; -ENAMETOOLONG if it does not fit.
 */
struct sockaddr_un;
int ttrpc_sockaddr(const char *address, struct sockaddr_un *addr, unsigned int *addr_len);

/* A listening, non-blocking, close-on-exec socket at address (a file socket is created 0600). */
int ttrpc_listen(const char *address, int *fd_out, struct error *err);

/* -------- server -------- */

struct ttrpc_server;
struct ttrpc_call;

/*
 * A method handler, called in the loop thread with the request's payload (untrusted bytes).
 * It either finishes the call before returning (ttrpc_call_reply / ttrpc_call_fail) or keeps
 * it and finishes it later from the loop thread (for calls such as Wait that block); a call
 * must be finished exactly once. If the client has gone away meanwhile the answer is dropped.
 */
typedef void (*ttrpc_method_fn)(struct ttrpc_call *call, const uint8_t *payload, size_t len,
				void *opaque);

/* Answer OK with payload (may be NULL/0 for an empty message); frees the call. */
void ttrpc_call_reply(struct ttrpc_call *call, const void *payload, size_t len);
/* Answer with a non-OK status; frees the call. */
void ttrpc_call_fail(struct ttrpc_call *call, int code, const char *fmt, ...) _printf_(3, 4);
/* The request's deadline in nanoseconds (0: none) and the caller's stream id. */
int64_t ttrpc_call_timeout_nano(const struct ttrpc_call *call);
uint32_t ttrpc_call_stream_id(const struct ttrpc_call *call);

/* Extra fds on the server's loop (signalfd, pidfd, timers): cb runs in the loop thread. */
typedef void (*ttrpc_fd_fn)(int fd, uint32_t events, void *opaque);

struct ttrpc_server_config {
	unsigned int max_connections; /* 0: 64; connections beyond it are closed at once */
	size_t max_pending_output;    /* 0: 16 MiB; a client that does not read is not read */
	unsigned int max_calls;	      /* 0: 1024 unanswered calls per connection, then
				       * ResourceExhausted */
};

int ttrpc_server_new(const struct ttrpc_server_config *config, struct ttrpc_server **out);
/* Closes every connection and listener; finish or fail every kept call before this. */
void ttrpc_server_destroy(struct ttrpc_server *srv);

/* -EEXIST if (service, method) is already registered. */
int ttrpc_server_register(struct ttrpc_server *srv, const char *service, const char *method,
			  ttrpc_method_fn fn, void *opaque);

/* Serve connections accepted on listen_fd (the server takes ownership of the fd). */
int ttrpc_server_add_listener(struct ttrpc_server *srv, int listen_fd);
/* Serve an already connected socket (socketpair, inherited fd); takes ownership on success. */
int ttrpc_server_add_conn(struct ttrpc_server *srv, int fd);
int ttrpc_server_add_fd(struct ttrpc_server *srv, int fd, uint32_t events, ttrpc_fd_fn cb,
			void *opaque);
int ttrpc_server_remove_fd(struct ttrpc_server *srv, int fd);

/*
 * Run the loop until ttrpc_server_stop(); then flush what is queued for each client (bounded
 * to about a second) and return 0, or a negative errno if epoll fails.
 */
int ttrpc_server_run(struct ttrpc_server *srv);
/* One pass of the loop, waiting at most timeout_ms: returns 0 or a negative errno. */
int ttrpc_server_poll(struct ttrpc_server *srv, int timeout_ms);
/* Ask run() to return; safe from any thread and from handlers. */
void ttrpc_server_stop(struct ttrpc_server *srv);
bool ttrpc_server_stopping(const struct ttrpc_server *srv);
unsigned int ttrpc_server_connections(const struct ttrpc_server *srv);

/* -------- client -------- */

struct ttrpc_client;

int ttrpc_client_connect(const char *address, struct ttrpc_client **out, struct error *err);
/* A client on an already connected socket (takes ownership of fd). */
int ttrpc_client_new_fd(int fd, struct ttrpc_client **out);
void ttrpc_client_destroy(struct ttrpc_client *client);

/*
 * Call service/method and wait up to timeout_ms (also sent as the request's timeout_nano;
 * <= 0: wait forever). Returns 0 when a response arrived (status in *st; on OK the response
 * payload in *resp, malloc'd, may be NULL when empty), or a negative errno for a transport
 * failure: -ETIMEDOUT, -ECONNRESET (peer closed), -EPROTO (malformed response), -EMSGSIZE.
 */
int ttrpc_client_call(struct ttrpc_client *client, const char *service, const char *method,
		      const void *payload, size_t len, int timeout_ms, struct ttrpc_status *st,
		      uint8_t **resp, size_t *resp_len);

#endif
