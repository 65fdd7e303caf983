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

#define AGENT_MAX_CONTROL	128   /* control connections at once (docs/pods.md: a relay each) */
#define AGENT_MAX_PENDING	64    /* unclaimed stdio attachments */
#define AGENT_PENDING_TTL_MS	60000 /* an unclaimed attachment is closed after this */
#define AGENT_ATTACH_TIMEOUT_MS 5000  /* for the STREAM_ATTACH frame itself */
#define AGENT_EXIT_GRACE_MS	500   /* report an exit at most this long after the reap */
#define AGENT_RELAY_BUF		(64 << 10) /* per stream and direction */
#define AGENT_CTL_MAX_BACKLOG	(4u << 20) /* unsent bytes before a stalled host is dropped */
#define AGENT_MAX_SHARES	16	   /* virtio-fs shares mounted by MOUNT_SHARE */
#define AGENT_FREEZE_TIMEOUT_MS 5000	   /* FREEZE: cgroup.events must agree by then */

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
	bool creator; /* sent CREATE (the host's monitor): never the one replaced */
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

struct rlimit_spec {
	int resource;
	uint64_t soft, hard;
};

enum cap_set {
	CAP_BOUNDING,
	CAP_EFFECTIVE,
	CAP_PERMITTED,
	CAP_INHERITABLE,
	CAP_AMBIENT,
	CAP_NR
};

struct process_spec {
	char **args, **env; /* NULL-terminated */
	char *cwd;
	bool terminal;
	uint32_t rows, cols;
	bool has_user; /* process.user: uid, gid, additionalGids, umask */
	uint32_t uid, gid;
	uint32_t *groups;
	size_t ngroups;
	bool has_umask;
	uint32_t umask;
	struct rlimit_spec *rlimits;
	size_t nrlimits;
	bool has_caps; /* process.capabilities: one mask per set */
	uint64_t caps[CAP_NR];
	bool no_new_privs;
	bool has_oom_score_adj;
	int oom_score_adj;
};

/* linux.resources, as far as cgroup v2 has it: has_* says which were given. */
struct cgroup_limits {
	bool has_mem_limit, has_mem_swap, has_mem_low, has_pids, has_cpu_quota, has_cpu_period;
	bool has_cpu_weight;
	int64_t mem_limit, mem_swap, mem_low, pids, cpu_quota; /* -1: unlimited */
	uint64_t cpu_period, cpu_weight;
	char *cpus, *mems; /* cpuset, NULL if not given */
	char **unified;	   /* key, value, key, value, ..., NULL */
};

struct id_map {
	uint32_t inside, outside, size;
};

#define SPEC_MAX_JOIN	 7
#define SPEC_MAX_ID_MAPS 5 /* what the kernel takes in one uid_map write (since 4.15: 340) */

/* A node of linux.devices. */
struct device_spec {
	char *path;	   /* under /dev/ */
	unsigned int type; /* S_IFCHR, S_IFBLK or S_IFIFO */
	uint32_t major, minor, mode, uid, gid;
};

/* The container-level parts of config.json ("linux", "root", "hostname"). */
struct container_spec {
	int clone_flags; /* CLONE_NEW* to create, except CLONE_NEWCGROUP */
	bool cgroup_ns;	 /* unshared after the cgroup is joined */
	char *hostname, *domainname;
	char **sysctl;		   /* key, value, key, value, ..., NULL */
	char **masked, **readonly; /* NULL-terminated */
	bool root_readonly;
	unsigned long rootfs_propagation; /* MS_PRIVATE unless rootfsPropagation says */
	struct id_map uid_map[SPEC_MAX_ID_MAPS], gid_map[SPEC_MAX_ID_MAPS];
	unsigned int nuid_map, ngid_map;
	struct cgroup_limits limits;
	void *seccomp;			/* a libseccomp filter (scmp_filter_ctx), NULL for none */
	char *join_path[SPEC_MAX_JOIN]; /* namespaces joined by path (a pod's) */
	int join_type[SPEC_MAX_JOIN];
	int join_index[SPEC_MAX_JOIN]; /* its linux.namespaces[i], for messages */
	int njoin;
	struct device_spec *devices; /* linux.devices */
	size_t ndevices;
};

/* A mount of CREATE's list, its options parsed as runc does. */
struct mount_spec {
	const char *source, *target, *fstype; /* borrowed from the request */
	unsigned long flags;		      /* MS_* for mount(2) */
	unsigned long propagation;	      /* MS_PRIVATE, MS_SHARED, ... (| MS_REC), or 0 */
	bool bind, ro_remount;
	char *data; /* the options mount(2) does not know: the fs's own */
};

/* A created container: its init is the process with exec id "". */
struct container {
	struct container *next;
	char *id;
	char *rootfs_dir; /* the mountpoint the child mounted the rootfs on (its own namespace) */
	char *cgroup;	  /* its cgroup directory, NULL if cgroups are unavailable */
	struct agent_watch oom_w; /* inotify on memory.events, fd -1 if none */
	uint32_t oom_w_events;
	uint64_t oom_kill;
	pid_t init_pid;
	struct container_spec spec;
	/* FREEZE (agent_freeze.c) */
	bool frozen;		     /* cgroup.freeze is 1: the host paused it */
	bool freeze_pending;	     /* a FREEZE waits for cgroup.events to agree */
	struct agent_watch freeze_w; /* inotify on cgroup.events while pending, fd -1 if none */
	uint32_t freeze_w_events;
	struct ctl_conn *freeze_conn; /* the request's connection, NULL if it went away */
	uint32_t freeze_id;
	int64_t freeze_deadline_ms;
};

/* A virtio-fs share mounted by MOUNT_SHARE, in the agent's own mount namespace. */
struct share {
	char tag[AGENT_MAX_TAG + 1];
	char *path;
};

enum process_state {
	PROC_SETUP, /* CREATE or EXEC: the child is being set up, the reply waits for it */
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
	int start_fd;  /* the child execs when this pipe is written (closed: it exits) */
	int report_fd; /* the child's reports: set-up, then until START why its exec failed */
	/* While a reply waits on the report pipe (CREATE, EXEC, START): agent_proc.c */
	struct agent_watch report_w; /* fd: report_fd, watched while reply_conn is set */
	uint32_t report_events;
	struct ctl_conn *reply_conn; /* NULL: nobody waits, or the host went away */
	uint32_t reply_id;
	uint16_t reply_type;
	bool reply_pending;
	char report_buf[AGENT_MAX_ERROR_MSG + 8];
	size_t report_have;
	bool ready;	   /* 'R' seen: set up (CREATE), or waiting for go (EXEC) */
	pid_t helper;	   /* EXEC: the helper that clones the process, until reaped */
	bool setup_reaped; /* PROC_SETUP: the process was reaped, with setup_status */
	int setup_status;
	int64_t setup_deadline_ms; /* reply_pending: the 120 s bound */
	int pty_master;
	int console_sock; /* PROC_SETUP with a terminal: where the child sends the pty master */
	struct relay
		*relays[AGENT_STREAM_NR]; /* indexed by stream; pty uses [PTY] out, [STDIN] in */
	int64_t report_deadline_ms;	  /* PROC_REAPED: report at the latest then */
	uint64_t oom_kills_at_start;	  /* the cgroup's oom_kill count when it started */
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
	struct container *containers;
	struct share shares[AGENT_MAX_SHARES];
	unsigned int nshares;
	char *run_dir;	   /* rootfs mountpoints: RUN_DIR/<container id> */
	char *cgroup_root; /* container cgroups: CGROUP_ROOT/<container id> */
	bool cgroup_ready; /* cgroup_root exists with its controllers enabled */
	bool guest;	   /* the VM's PID 1 (agent_prepare): SHUTDOWN syncs before its reply */
	bool vm_net;	   /* our network namespace is the VM's, not yet lent (agent_prepare) */
	bool dry_run;	   /* the fuzz target: parse and answer, never start, mount or set time */
	void (*setup_hook)(const char *container_id); /* tests: a stall point in CREATE's child */
	char share_fstype[16]; /* MOUNT_SHARE's: "virtiofs" (tests: agent_set_share_fstype) */
};

/* agent_setup.c: fork the process of CREATE or EXEC and set it up in the child */
struct spawn_request {
	struct container *c; /* the container (CREATE: new, EXEC: existing) */
	const struct process_spec *spec;
	bool create;
	const struct agent_create *create_req; /* CREATE: rootfs and mounts */
	struct mount_spec *mounts;
	size_t nmounts;
	void (*hook)(const char *container_id); /* agent_set_setup_hook() */
};
/* The fds a child gets (-1: /dev/null) and the agent's ends of them. */
struct child_io {
	int child[3], agent[3]; /* stdin, stdout, stderr */
	int console[2]; /* process.terminal: the agent's end and the child's (agent_pty.c) */
};
/* CREATE: *report (if not NULL) is the pipe on which a failed exec after START shows. */
/* agent.c */
int64_t agent_now_ms(void);
int agent_step(struct agent *a, int max_wait_ms);
int agent_watch_set(struct agent *a, struct agent_watch *w, uint32_t events, uint32_t *cur);
void agent_watch_del(struct agent *a, struct agent_watch *w, uint32_t *cur);
int agent_take_stream(struct agent *a, const char *cid, const char *eid, uint32_t stream);
bool agent_has_stream(struct agent *a, const char *cid, const char *eid, uint32_t stream);

/* agent_ctl.c */
void ctl_accept(struct agent *a, struct agent_watch *w, uint32_t events);
int ctl_adopt(struct agent *a, int fd); /* a connected control stream (takes fd) */
void ctl_send(struct agent *a, struct ctl_conn *c, const struct agent_msg *m);
void ctl_send_error(struct agent *a, struct ctl_conn *c, const struct agent_msg *req, int e,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ctl_broadcast(struct agent *a, const struct agent_msg *m);
/* Sending may drop a connection (a dead or stalled host): is c still one of ours? */
bool ctl_is_open(struct agent *a, const struct ctl_conn *c);
void ctl_close_all(struct agent *a);

/* agent_proc.c */
/*
 * CREATE, EXEC and START answer m on conn once the child reports (asynchronously, from the
 * loop): 0 when that reply is pending, or -errno with err for an immediate error reply.
 */
int proc_spawn(struct agent *a, const struct spawn_request *req, const char *eid, uint32_t stdio,
	       struct ctl_conn *conn, const struct agent_msg *m, char *err, size_t err_len);
int proc_start(struct agent *a, struct process *p, struct ctl_conn *conn,
	       const struct agent_msg *m);
struct process *proc_find(struct agent *a, const char *cid, const char *eid);
void proc_reap_all(struct agent *a);
void proc_check_report(struct agent *a, struct process *p);
void proc_report_due(struct agent *a, int64_t now);
int64_t proc_next_deadline(struct agent *a);
void proc_free(struct agent *a, struct process *p);
void proc_forget_conn(struct agent *a, struct ctl_conn *c);
void proc_kill_all(struct agent *a);
int proc_ps(struct agent *a, const char *cid, struct agent_ps *out);

#define SETUP_TIMEOUT_MS 120000 /* the guest kernel is slow: mounts can take seconds */

/* Fork the child (CREATE: the init, *pid; EXEC: the helper, *pid) and let it go; *report. */
void setup_prepare(void); /* what every spawn needs once: the agent's bounding set */
int setup_spawn(struct agent *a, const struct spawn_request *req, const struct child_io *io,
		int start_fd, pid_t *pid, int *report, char *err, size_t err_len);
#define REPORT_E_HDR 7 /* a failure report: 'E', int32 errno, uint16 length, the message */
/* An 'E' report at buf: 1 while incomplete, else -errno with its message in err. */
int setup_report_error(const char *buf, size_t have, bool eof, char *err, size_t err_len);
/* The report bytes so far (eof: closed): 1 needs more, 0 finished, -errno with err failed. */
int setup_report_parse(struct process *p, bool eof, char *err, size_t err_len);
int setup_container_dir(struct agent *a, const char *cid, char **out, char *err, size_t err_len);

/* agent_pty.c: the terminal from the container's devpts (in the child), and its master */
int pty_child_setup(int sock, const struct process_spec *spec, bool console, char *err,
		    size_t err_len);
int pty_recv_master(int sock); /* the master fd, or -errno */

/* agent_mount.c: in the container's child, before it runs anything of the container's */
int mount_parse(const struct agent_mount *m, struct mount_spec *out, char *err, size_t err_len);
void mount_spec_free(struct mount_spec *m, size_t n);
int mount_rootfs(const struct agent_create *req, const char *dir, char *err, size_t err_len);
int mount_all(const char *root, const struct mount_spec *m, size_t n,
	      const struct container_spec *cs, bool console, char *err, size_t err_len);
/* mkdir -p path inside root (RESOLVE_IN_ROOT; the last component a file if is_file): O_PATH fd */
int mount_create_in_root(int root, const char *path, bool is_file);

/* agent_devices.c: linux.devices */
int devices_parse(const void *yajl_linux, struct container_spec *cs, char *err, size_t err_len);
void devices_free(struct container_spec *cs);
int devices_create(int root, const struct container_spec *cs, char *err, size_t err_len);
int mount_pivot(const char *root, const struct container_spec *cs, char *err, size_t err_len);

/* agent_config.c: the container-level config (CREATE's config.json) */
int config_parse(const char *json, struct container_spec *out, char *err, size_t err_len);
bool ns_joined(const struct container_spec *cs, int type); /* type joined by path */
/* Paths "container:<id>" to /proc/<init of id>/ns/<type>: ENOENT naming the JSON path. */
int config_resolve_containers(struct agent *a, struct container_spec *cs, char *err,
			      size_t err_len);
void config_free(struct container_spec *cs);
/* A new network namespace asked for: the VM's own instead, once, if it has only lo */
void config_lend_vm_network(struct agent *a, struct container_spec *cs);

/* agent_passwd.c: HOME from the container's /etc/passwd (in the child, after the pivot) */
#define PATH_MAX_HOME 4096
int passwd_home_parse(const char *buf, size_t len, uint32_t uid, char *out, size_t out_len);
int passwd_home(const char *path, uint32_t uid, char *out, size_t out_len);
char **passwd_env_with_home(char **env, uint32_t uid);

/* agent_seccomp.c */
int seccomp_parse(const void *yajl_seccomp, void **out, char *err, size_t err_len);
void seccomp_free(void *filter);
int seccomp_apply(void *filter);

/* agent_cgroup.c */
int cgroup_limits_parse(const void *yajl_resources, const char *prefix, struct cgroup_limits *out,
			char *err, size_t err_len);
void cgroup_limits_free(struct cgroup_limits *l);
int cgroup_root_ready(struct agent *a); /* cgroup_root made, its controllers enabled: once */
int cgroup_create(struct agent *a, struct container *c, char *err, size_t err_len);
int cgroup_apply(const char *dir, const struct cgroup_limits *l, char *err, size_t err_len);
int cgroup_join(const char *dir, pid_t pid);
void cgroup_destroy(struct agent *a, struct container *c);
int cgroup_stats(const char *dir, struct agent_stats *out);
uint64_t cgroup_oom_kills(const char *dir);
int cgroup_pids(const char *dir, pid_t **out, size_t *n);
int cgroup_freeze(const char *dir, bool frozen); /* write cgroup.freeze */
int cgroup_frozen(const char *dir);		 /* cgroup.events' frozen: 0, 1 or -errno */

/* agent_container.c */
struct container *container_find(struct agent *a, const char *cid);
struct container *container_new(struct agent *a, const char *cid);
void container_free(struct agent *a, struct container *c);
void container_do_update(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m);
void container_do_stats(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m);
void container_do_set_time(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m);
void container_do_add_entropy(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m);
uint64_t container_oom_kills(struct agent *a, const char *cid);
void container_watch_oom(struct agent *a, struct container *c);

/* agent_freeze.c: FREEZE, answered once cgroup.events agrees (inotify) or the bound passes */
void freeze_do(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m);
void freeze_due(struct agent *a, int64_t now);
int64_t freeze_next_deadline(struct agent *a);
void freeze_forget_conn(struct agent *a, struct ctl_conn *c);
void freeze_cancel(struct agent *a, struct container *c, const char *why); /* answer, unwatch */

/* agent_net.c: NETWORK (1.4), the guest's NICs configured as the host's namespace has them */
void net_do_network(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m);
/* Check, then apply in the caller's network namespace; err names the interface or route. */
int net_apply(const struct agent_network *n, char *err, size_t err_len);

/* agent_share.c: MOUNT_SHARE */
void share_do_mount(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m);
void share_unmount_all(struct agent *a);

/* agent_trace.c: step timestamps on the console, only when turned on (agent.h) */
extern int agent_trace_fd;
void agent_trace_at(const char *fmt, ...) _printf_(1, 2);
#define agent_trace(...)                             \
	do {                                         \
		if (agent_trace_fd >= 0)             \
			agent_trace_at(__VA_ARGS__); \
	} while (0)

/* agent_relay.c */
struct relay *relay_new(struct agent *a, struct process *p, int src, int dst, bool to_process);
void relay_pump(struct agent *a, struct relay *r);
void relay_free(struct agent *a, struct relay *r);

/* agent_spec.c */
int spec_parse_process(const char *json, bool in_config, struct process_spec *out, char *err,
		       size_t err_len);
void spec_free(struct process_spec *s);

#endif
