/*
 * The agent protocol (docs/agent-protocol.md): the one header the host (runtime/, shim/) and
 * the guest's stratus-agent (agent/) share. Frames are a 16-byte little-endian header (magic,
 * type, flags, request id, payload length) and a payload of fixed fields: u32, u64,
 * length-carried strings, arrays of strings and arrays of small structs, every length bounded
 * by a cap named here. The codec (agent_proto.c) and the incremental frame reader
 * (agent_frame.c) are compiled into both sides and depend on nothing but libc: the peer is
 * hostile either way (the guest to the host, and the agent must survive any frame the host
 * sends), so decoding never reads past its buffer, checks every length before use and leaves
 * nothing behind on failure.
 */
#ifndef STRATUS_AGENT_PROTO_H
#define STRATUS_AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_PROTO_MAJOR 1
/*
 * 1.1: SET_TIME, UPDATE, rootfs kind DIR; 1.2: ADD_ENTROPY; 1.3: MOUNT_SHARE, FREEZE (pods);
 * 1.4: NETWORK (a network namespace's interfaces, docs/networking.md)
 */
#define AGENT_PROTO_MINOR 4

/* vsock ports the agent listens on. */
#define AGENT_PORT_CONTROL 1024 /* requests, replies, events */
#define AGENT_PORT_STDIO   1025 /* one connection per stdio stream (STREAM_ATTACH, then raw) */

/* Framing. */
#define AGENT_MAGIC	  0x41525453u /* "STRA" on the wire */
#define AGENT_HDR_LEN	  16
#define AGENT_MAX_PAYLOAD (1u << 20)

/* Caps on every variable-length field (bytes for strings, elements for arrays). */
#define AGENT_MAX_ID	     256	 /* container id, exec id */
#define AGENT_MAX_PATH	     4096	 /* paths, mount sources, fs types, option strings */
#define AGENT_MAX_NAME	     256	 /* software version, process command */
#define AGENT_MAX_ERROR_MSG  1024	 /* error reply text */
#define AGENT_MAX_OCI	     (512 << 10) /* OCI config.json blob */
#define AGENT_MAX_PROCESS    (256 << 10) /* OCI process JSON blob */
#define AGENT_MAX_RESOURCES  (64 << 10)	 /* OCI linux.resources JSON blob */
#define AGENT_MAX_MOUNTS     256
#define AGENT_MAX_OPTIONS    64	  /* options of one mount */
#define AGENT_MAX_EXITS	     1024 /* unacknowledged exit records the agent keeps */
#define AGENT_MAX_PROCS	     8192 /* ps entries */
#define AGENT_MAX_ENTROPY    512  /* ADD_ENTROPY bytes */
#define AGENT_MAX_TAG	     36	  /* virtio-fs tag (MOUNT_SHARE): the device's tag field */
#define AGENT_MAX_NET_IFACES 16	  /* NETWORK interfaces */
#define AGENT_MAX_NET_ADDRS  64	  /* NETWORK IPv4 addresses, all interfaces together */
#define AGENT_MAX_NET_ROUTES 128  /* NETWORK IPv4 routes */
#define AGENT_NET_MAC_LEN    6	  /* NETWORK interface MAC: exactly this many bytes */
#define AGENT_MAX_IFNAME     15	  /* NETWORK interface name: IFNAMSIZ - 1 */

/* Header flags: exactly one of the four valid combinations. */
#define AGENT_FLAG_REPLY 0x1
#define AGENT_FLAG_ERROR 0x2 /* with REPLY: the payload is struct agent_error */
#define AGENT_FLAG_EVENT 0x4 /* agent-initiated, request id 0 */

enum agent_type {
	AGENT_HELLO = 0x0001,
	AGENT_PING = 0x0002,
	AGENT_SET_TIME = 0x0003,    /* 1.1 */
	AGENT_ADD_ENTROPY = 0x0004, /* 1.2 */
	AGENT_CREATE = 0x0010,
	AGENT_START = 0x0011,
	AGENT_DELETE = 0x0012,
	AGENT_MOUNT_SHARE = 0x0013, /* 1.3 */
	AGENT_NETWORK = 0x0014,	    /* 1.4 */
	AGENT_EXEC = 0x0020,
	AGENT_SIGNAL = 0x0021,
	AGENT_WAIT = 0x0022,
	AGENT_ACK_EXIT = 0x0023,
	AGENT_LIST_EXITS = 0x0024,
	AGENT_RESIZE = 0x0025,
	AGENT_PS = 0x0030,
	AGENT_STATS = 0x0031,
	AGENT_UPDATE = 0x0032, /* 1.1 */
	AGENT_FREEZE = 0x0033, /* 1.3 */
	AGENT_SHUTDOWN = 0x0040,
	AGENT_STREAM_ATTACH = 0x0050,
	AGENT_EVENT_EXIT = 0x0100,
	AGENT_EVENT_OOM = 0x0101,
};

enum agent_rootfs_kind {
	AGENT_ROOTFS_VIRTIOFS = 1, /* source is a virtio-fs tag */
	AGENT_ROOTFS_BLOCK = 2,	   /* source is a guest block device, with fstype */
	AGENT_ROOTFS_DIR = 3,	   /* 1.1: source is a directory the agent sees, bind-mounted */
};

/* stdio masks (CREATE, EXEC) and stream numbers (STREAM_ATTACH). */
enum agent_stream {
	AGENT_STREAM_STDIN = 0,
	AGENT_STREAM_STDOUT = 1,
	AGENT_STREAM_STDERR = 2,
	AGENT_STREAM_PTY = 3, /* the terminal: both directions on one stream */
	AGENT_STREAM_NR,
};
#define AGENT_STDIO_BIT(s) (1u << (s))

#define AGENT_SIGNAL_ALL     0x1 /* every process of the container */
#define AGENT_DELETE_FORCE   0x1 /* kill what still runs */
#define AGENT_EXIT_SIGNALED  0x1 /* status is a signal number, else an exit code */
#define AGENT_EXIT_OOM	     0x2 /* the OOM killer ended it */
#define AGENT_EXIT_CORE	     0x4
#define AGENT_PS_TRUNCATED   0x1
#define AGENT_STATS_NO_LIMIT UINT64_MAX

/* A decoded string is never NULL: "" when empty. Arrays: v has n elements (v NULL if 0). */
struct agent_strv {
	char **v;
	uint32_t n;
};
#define AGENT_ARRAY(type)   \
	struct {            \
		type *v;    \
		uint32_t n; \
	}

struct agent_hello {
	uint32_t major, minor;
	char *software; /* "stratus-agent 0.1.0": for messages only */
};

struct agent_mount {
	char *source, *target, *fstype;
	struct agent_strv options;
};

struct agent_create {
	char *container_id;
	uint32_t rootfs_kind; /* enum agent_rootfs_kind */
	char *rootfs_source, *rootfs_fstype, *rootfs_options;
	uint32_t stdio; /* AGENT_STDIO_BIT mask of the init process's streams */
	AGENT_ARRAY(struct agent_mount) mounts; /* replaces config.mounts, host paths translated */
	char *oci_config; /* config.json (JSON text); root and mounts are ignored */
};

struct agent_container_ref { /* START, PS, STATS requests */
	char *container_id;
};

struct agent_delete {
	char *container_id;
	uint32_t flags; /* AGENT_DELETE_FORCE */
};

struct agent_exec {
	char *container_id, *exec_id;
	uint32_t stdio;
	char *process; /* OCI process object (JSON text) */
};

struct agent_pid { /* CREATE and EXEC replies */
	uint32_t pid;
};

struct agent_signal {
	char *container_id, *exec_id; /* exec_id "" is the container's init */
	uint32_t signal, flags;	      /* AGENT_SIGNAL_ALL */
};

struct agent_process_ref { /* WAIT, ACK_EXIT */
	char *container_id, *exec_id;
};

struct agent_exit { /* WAIT reply, EVENT_EXIT, LIST_EXITS entries */
	char *container_id, *exec_id;
	uint32_t pid;
	uint32_t status; /* exit code, or signal number with AGENT_EXIT_SIGNALED */
	uint32_t flags;
	uint64_t exited_at_ns; /* guest CLOCK_REALTIME */
};

struct agent_exits {
	AGENT_ARRAY(struct agent_exit) exits;
};

struct agent_resize {
	char *container_id, *exec_id;
	uint32_t rows, cols;
};

struct agent_process_info {
	uint32_t pid, ppid, uid;
	char *exec_id; /* "" if no exec started it (init's descendants) */
	char *command;
};

struct agent_ps {
	uint32_t flags; /* AGENT_PS_TRUNCATED */
	AGENT_ARRAY(struct agent_process_info) procs;
};

struct agent_stats { /* cgroup v2 counters of the container */
	uint64_t cpu_usage_us, cpu_user_us, cpu_system_us;
	uint64_t cpu_nr_periods, cpu_nr_throttled, cpu_throttled_us;
	uint64_t mem_usage, mem_limit, mem_swap_usage, mem_oom, mem_oom_kill;
	uint64_t pids_current, pids_limit; /* limits: AGENT_STATS_NO_LIMIT for "max" */
};

struct agent_oom {
	char *container_id;
	uint64_t oom_kill; /* memory.events oom_kill counter */
};

struct agent_set_time {
	uint64_t realtime_ns; /* the host's CLOCK_REALTIME */
};

struct agent_add_entropy {
	AGENT_ARRAY(uint8_t) data; /* random bytes from the host, 1 to AGENT_MAX_ENTROPY */
};

struct agent_update {
	char *container_id;
	char *resources; /* OCI linux.resources object (JSON text) */
};

struct agent_mount_share { /* MOUNT_SHARE request (1.3) */
	char *tag;	   /* virtio-fs tag, 1 to AGENT_MAX_TAG bytes of [A-Za-z0-9_.-] */
};

struct agent_share_path { /* MOUNT_SHARE reply (1.3) */
	char *path;	  /* where the agent mounted the share, in its own mount namespace */
};

struct agent_freeze { /* FREEZE request (1.3) */
	char *container_id;
	uint32_t frozen; /* 1: freeze the container's cgroup, 0: thaw it */
};

/*
 * NETWORK (1.4). IPv4 addresses are u32 whose most significant byte is the first octet
 * (10.1.2.3 is 0x0a010203). Interfaces, addresses and routes are separate arrays; an address
 * or a route names its interface by index into ifaces.
 */
struct agent_net_iface {
	AGENT_ARRAY(uint8_t) mac; /* AGENT_NET_MAC_LEN bytes: the guest NIC to configure */
	char *name;		  /* its new name, 1 to AGENT_MAX_IFNAME bytes */
	uint32_t mtu;		  /* 0: leave it */
};

struct agent_net_addr {
	uint32_t iface;	 /* index into ifaces */
	uint32_t addr;	 /* IPv4 */
	uint32_t prefix; /* 0 to 32 */
};

struct agent_net_route {
	uint32_t iface;	  /* index into ifaces: the route's device */
	uint32_t dst;	  /* IPv4 network, no bits past prefix */
	uint32_t prefix;  /* 0 to 32; 0 with dst 0 is the default route */
	uint32_t gateway; /* IPv4, 0: none (a link route) */
	uint32_t metric;  /* priority, 0: the kernel's default */
};

struct agent_network {
	AGENT_ARRAY(struct agent_net_iface) ifaces;
	AGENT_ARRAY(struct agent_net_addr) addrs;
	AGENT_ARRAY(struct agent_net_route) routes;
};

struct agent_shutdown {
	uint32_t flags; /* none defined: must be 0 */
};

struct agent_stream_attach {
	char *container_id, *exec_id;
	uint32_t stream; /* enum agent_stream */
};

struct agent_error {
	uint32_t errno_value; /* positive Linux errno */
	char *message;
};

struct agent_header {
	uint32_t magic;
	uint16_t type, flags;
	uint32_t id;
	uint32_t len;
};

/* A whole message: the header fields and the body its (type, flags) selects. */
struct agent_msg {
	uint16_t type, flags;
	uint32_t id;
	union {
		struct agent_hello hello;
		struct agent_create create;
		struct agent_container_ref container;
		struct agent_delete del;
		struct agent_exec exec;
		struct agent_pid pid;
		struct agent_signal signal;
		struct agent_process_ref process;
		struct agent_exit exit;
		struct agent_exits exits;
		struct agent_resize resize;
		struct agent_ps ps;
		struct agent_stats stats;
		struct agent_oom oom;
		struct agent_shutdown shutdown;
		struct agent_set_time set_time;
		struct agent_add_entropy add_entropy;
		struct agent_update update;
		struct agent_mount_share mount_share;
		struct agent_share_path share_path;
		struct agent_freeze freeze;
		struct agent_network network;
		struct agent_stream_attach attach;
		struct agent_error error;
	} u;
};

/* A growable output buffer; never grows past one maximal frame. */
struct agent_buf {
	uint8_t *data;
	size_t len, cap;
};

void agent_buf_free(struct agent_buf *b);

/*
 * Append m as one frame. -E2BIG if a field passes its cap, -EMSGSIZE if the payload passes
 * AGENT_MAX_PAYLOAD, -ENOMSG for a (type, flags) with no layout, -EINVAL for bad flags or id;
 * out is unchanged on error.
 */
int agent_msg_encode(const struct agent_msg *m, struct agent_buf *out);

/*
 * Decode one frame's payload (h->len bytes). On success out owns its strings (release with
 * agent_msg_clear). On error out->u is zeroed but out->type/flags/id are set, so the agent can
 * answer the request: -ENOMSG for an unknown type (answer EOPNOTSUPP), -EBADMSG for a
 * malformed payload, -E2BIG for a length or count over its cap, -ENOMEM.
 */
int agent_msg_decode(const struct agent_header *h, const uint8_t *payload, struct agent_msg *out);
void agent_msg_clear(struct agent_msg *m);

/* Encode an error reply to request (type, id): errno_value > 0, message truncated to its cap. */
int agent_encode_error(uint16_t type, uint32_t id, int errno_value, const char *message,
		       struct agent_buf *out);

/* The peer's HELLO against ours: 0, or -EPROTONOSUPPORT with a sentence in msg. */
int agent_version_check(const struct agent_hello *peer, char *msg, size_t msg_len);

const char *agent_type_name(uint16_t type);

/* Header codec: agent_header_decode checks the magic (-EPROTO) and len (-EMSGSIZE) only. */
void agent_header_encode(const struct agent_header *h, uint8_t out[AGENT_HDR_LEN]);
int agent_header_decode(const uint8_t in[AGENT_HDR_LEN], uint32_t max_payload,
			struct agent_header *h);

/*
 * Incremental frame reader for a non-blocking stream. It never consumes a byte past the end
 * of the current frame (after STREAM_ATTACH the same socket carries raw stdio), and refuses a
 * frame whose header announces more than max_payload before buffering any of it. Errors are
 * sticky: the stream is out of sync and must be closed.
 */
struct agent_reader {
	uint8_t hdr_buf[AGENT_HDR_LEN];
	uint32_t hdr_have, payload_have, max_payload;
	struct agent_header hdr;
	uint8_t *payload;
	bool ready;
	int error;
};

void agent_reader_init(struct agent_reader *r, uint32_t max_payload);
void agent_reader_destroy(struct agent_reader *r);

/* Consume bytes up to the end of one frame: returns how many, or a negative errno. */
ssize_t agent_reader_feed(struct agent_reader *r, const void *data, size_t len);

/*
 * Read from fd until one frame is complete: 1 when it is, -EAGAIN when fd has no more now,
 * 0 at end of stream between frames, -ECONNRESET at end of stream inside a frame, or the
 * negative errno of a read or framing failure.
 */
int agent_reader_read(struct agent_reader *r, int fd);

/* Decode the complete frame (agent_msg_decode's result) and make room for the next. */
int agent_reader_take(struct agent_reader *r, struct agent_msg *out);

#endif
