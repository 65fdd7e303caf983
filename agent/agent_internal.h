/*
 * The agent core's private types, shared by its files: agent.c (event loop, listeners,
 * stdio attachments), agent_ctl.c (control connections and request dispatch), agent_proc.c
 * (processes and exit records), agent_relay.c (stdio copy loops with back-pressure) and
 * agent_spec.c (the OCI process object, parsed with yajl).
 */
#ifndef STRATUS_AGENT_INTERNAL_H
#define STRATUS_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent.h"
#include "agent_proto.h"
#include "common/util.h"

#define AGENT_MAX_CONTROL	8	   /* control connections at once */
#define AGENT_MAX_PENDING	64	   /* unclaimed stdio attachments */
#define AGENT_PENDING_TTL_MS	60000	   /* an unclaimed attachment is closed after this */
#define AGENT_ATTACH_TIMEOUT_MS 5000	   /* for the STREAM_ATTACH frame itself */
#define AGENT_EXIT_GRACE_MS	500	   /* report an exit at most this long after the reap */
#define AGENT_RELAY_BUF		(64 << 10) /* per stream and direction */
#define AGENT_CTL_MAX_BACKLOG	(4u << 20) /* unsent bytes before a stalled host is dropped */

struct agent;

/* Every fd in the epoll set carries one of these: the loop calls fn with the events. */
struct agent_watch {
	int fd;
	void (*fn)(struct agent *a, struct agent_watch *w, uint32_t events);
};

struct ctl_conn {
	struct agent_watch w;
	struct agent_reader reader;
	struct agent_buf out;
	size_t out_off;
	uint64_t seq; /* accept order: the oldest is replaced when all slots are taken */
	bool hello_done;
};

/* A stdio connection whose STREAM_ATTACH frame is still arriving (non-blocking). */
struct attaching {
	struct agent_watch w;
	struct agent_reader reader;
	int64_t expires_ms;
};

/* A stdio connection that has attached and waits for its CREATE or EXEC. */
struct pending_stream {
	int fd;
	char *container_id, *exec_id;
	uint32_t stream;
	int64_t expires_ms;
};

/* One direction of a stdio stream: src -> buf -> dst, never more than buf in flight. */
struct relay {
	struct agent_watch src_w, dst_w;
	uint32_t src_events, dst_events; /* what is registered now */
	uint8_t *buf;
	size_t off, len;
	bool src_eof, dst_dead, done;
	bool to_process; /* stdin: dst is the process; else dst is the host */
	struct process *p;
};

struct waiter {
	struct ctl_conn *c;
	uint32_t id;
};

struct process_spec {
	char **args, **env; /* NULL-terminated */
	char *cwd;
	bool terminal;
	uint32_t rows, cols;
};

enum process_state {
	PROC_CREATED,
	PROC_RUNNING,
	PROC_REAPED,
	PROC_EXITED
};

struct process {
	struct process *next;
	char *container_id, *exec_id;
	pid_t pid;
	enum process_state state;
	int start_fd; /* CREATE: the child execs when this pipe is written or closed */
	int pty_master;
	struct relay
		*relays[AGENT_STREAM_NR]; /* indexed by stream; pty uses [PTY] out, [STDIN] in */
	int64_t report_deadline_ms;	  /* PROC_REAPED: report at the latest then */
	struct agent_exit exit;		  /* PROC_EXITED: the record (owned strings) */
	struct waiter *waiters;
	unsigned int nwaiters;
};

struct agent {
	int epfd;
	struct agent_watch control_w, stdio_w, signal_w;
	struct ctl_conn *ctl[AGENT_MAX_CONTROL];
	struct attaching *attaching[AGENT_MAX_PENDING];
	struct pending_stream pending[AGENT_MAX_PENDING];
	unsigned int npending;
	struct process *procs;
	unsigned int nexits; /* unacknowledged records */
	uint64_t ctl_seq;
	bool shutdown;
};

/* agent.c */
int64_t agent_now_ms(void);
int agent_watch_set(struct agent *a, struct agent_watch *w, uint32_t events, uint32_t *cur);
void agent_watch_del(struct agent *a, struct agent_watch *w, uint32_t *cur);
int agent_take_stream(struct agent *a, const char *cid, const char *eid, uint32_t stream);
bool agent_has_stream(struct agent *a, const char *cid, const char *eid, uint32_t stream);

/* agent_ctl.c */
void ctl_accept(struct agent *a, struct agent_watch *w, uint32_t events);
void ctl_send(struct agent *a, struct ctl_conn *c, const struct agent_msg *m);
void ctl_send_error(struct agent *a, struct ctl_conn *c, const struct agent_msg *req, int e,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ctl_broadcast(struct agent *a, const struct agent_msg *m);
void ctl_close_all(struct agent *a);

/* agent_proc.c */
int proc_spawn(struct agent *a, const char *cid, const char *eid, uint32_t stdio,
	       const struct process_spec *spec, bool start_now, struct process **out, char *err,
	       size_t err_len);
int proc_start(struct agent *a, struct process *p);
struct process *proc_find(struct agent *a, const char *cid, const char *eid);
void proc_reap_all(struct agent *a);
void proc_check_report(struct agent *a, struct process *p);
void proc_report_due(struct agent *a, int64_t now);
int64_t proc_next_deadline(struct agent *a);
void proc_free(struct agent *a, struct process *p);
void proc_forget_conn(struct agent *a, struct ctl_conn *c);
void proc_kill_all(struct agent *a);
int proc_ps(struct agent *a, const char *cid, struct agent_ps *out);

/* agent_relay.c */
struct relay *relay_new(struct agent *a, struct process *p, int src, int dst, bool to_process);
void relay_pump(struct agent *a, struct relay *r);
void relay_free(struct agent *a, struct relay *r);

/* agent_spec.c */
int spec_parse_process(const char *json, bool in_config, struct process_spec *out, char *err,
		       size_t err_len);
void spec_free(struct process_spec *s);

#endif
