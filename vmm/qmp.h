/*
 * QMP, the QEMU Machine Protocol (docs/interop/qmp-spec.txt in QEMU), as much of it as
 * Kata's StratoVirt driver and `stratus pause/resume` need. Two layers:
 *
 * - struct qmp_session (qmp.c; the commands in qmp_commands.c, qmp_hotplug.c and
 *   qmp_migrate.c): the protocol alone, bytes in and bytes out, no sockets and
 *   no KVM. The VM actions are callbacks (struct qmp_ops), so the unit tests and the fuzzer
 *   drive it in-process.
 * - struct qmp_server (qmp_server.c): the Unix socket on the VM's event loop, one client at
 *   a time, SCM_RIGHTS for getfd, the events of a VM that ends.
 *
 * Limits: a command line is at most QMP_LINE_MAX bytes (longer: an error reply and the line
 * is dropped), JSON nesting at most QMP_DEPTH_MAX, QMP_BURST commands at once and then
 * QMP_RATE per second (the client is slowed by not reading its socket, never the VMM).
 */
#ifndef STRATUS_VMM_QMP_H
#define STRATUS_VMM_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define QMP_LINE_MAX   (64 * 1024)
#define QMP_DEPTH_MAX  32
#define QMP_BURST      64
#define QMP_RATE       100 /* commands per second once the burst is spent */
#define QMP_FDS_MAX    16
#define QMP_FDNAME_MAX 64

struct yajl_val_s;

struct qmp_ops {
	/* Everything the client is sent: complete lines ending in "\r\n". */
	void (*write)(void *opaque, const char *data, size_t len);
	bool (*running)(void *opaque);
	int (*stop)(void *opaque); /* returns once every vCPU is parked */
	int (*cont)(void *opaque);
	void (*quit)(void *opaque);	 /* called after the reply is written */
	void (*powerdown)(void *opaque); /* idem */
	void (*reset)(void *opaque);	 /* idem */
	unsigned int (*nr_cpus)(void *opaque);
	int (*cpu_thread_id)(void *opaque, unsigned int index);
	uint64_t (*now_ns)(void *opaque); /* monotonic clock for the rate limit; NULL: real */
	/*
	 * blockdev-add, blockdev-del, device_add, device_del (hotplug.h) with their arguments
	 * (a yajl_val, NULL if none); NULL: hotplug not supported.
	 */
	int (*hotplug)(void *opaque, const char *command, struct yajl_val_s *args,
		       struct error *err);
	/*
	 * migrate {"uri":"file:PATH"}: write a snapshot of the paused VM to path (NULL: not
	 * supported). migrate_status: the last one, NULL if none, else "completed" or
	 * "failed" with its duration and, if failed, why.
	 */
	int (*migrate)(void *opaque, const char *path, struct error *err);
	const char *(*migrate_status)(void *opaque, uint64_t *total_ms, const char **why);
};

struct qmp_session;

int qmp_session_create(const struct qmp_ops *ops, void *opaque, const char *version,
		       struct qmp_session **out);
void qmp_session_destroy(struct qmp_session *s); /* closes the fds getfd kept */

/* Send the greeting; a new client starts in capabilities-negotiation mode. */
void qmp_session_greet(struct qmp_session *s);

/* How many bytes qmp_session_feed() takes now (0: run qmp_session_process() first). */
size_t qmp_session_room(const struct qmp_session *s);
/* Append input (at most qmp_session_room() bytes are kept; the rest is the caller's). */
size_t qmp_session_feed(struct qmp_session *s, const char *data, size_t len);
/*
 * Run the complete commands buffered, as the rate limit allows. Returns 0 when nothing
 * complete is left, else the milliseconds until the next command may run.
 */
int qmp_session_process(struct qmp_session *s);

/* An fd that came with the input (SCM_RIGHTS); the next getfd names it. Takes ownership. */
void qmp_session_push_fd(struct qmp_session *s, int fd);
/* The fd getfd stored under name, or -1. */
int qmp_session_lookup_fd(const struct qmp_session *s, const char *name);

/* An event line (sent only once capabilities are negotiated); data_json may be NULL. */
void qmp_session_event(struct qmp_session *s, const char *name, const char *data_json);

/* Set once quit, system_powerdown or system_reset announced the end (SHUTDOWN/RESET sent). */
bool qmp_session_end_announced(const struct qmp_session *s);

/* The socket side (qmp_server.c). */
struct vm;
struct qmp_server;

int qmp_server_create(struct vm *vm, const char *path, const char *version, struct qmp_server **out,
		      struct error *err);
/* The VM is over (after vm_run): tell the client why, unless QMP itself asked for it. */
void qmp_server_vm_ended(struct qmp_server *srv, int exit_reason);
/* Closes the client and removes the socket. */
void qmp_server_destroy(struct qmp_server *srv);

#endif
