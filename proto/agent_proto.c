/*
 * The agent protocol's message codec (docs/agent-protocol.md), shared by the host and the
 * agent. Each (type, request/reply/event) has a layout: a table of fields with their offset in
 * the C struct, their kind and their cap. One generic encoder and one generic decoder walk
 * those tables, so the bounds checks are written once for every message: a length is checked
 * against its cap and against the bytes left before anything is allocated or copied, an array
 * count against its cap and against the smallest encoding of that many elements, strings must
 * not contain NUL, and a failed decode frees what it had built.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum field_kind {
	F_U32,
	F_U64,
	F_STR,	 /* u32 length, bytes (no NUL); decoded NUL-terminated */
	F_STRV,	 /* u32 count, strings */
	F_ARRAY, /* u32 count, elements of a sub-layout */
	F_BYTES	 /* u32 length, raw bytes (any value): { uint8_t *v; uint32_t n; } */
};

struct layout;

struct field {
	enum field_kind kind;
	size_t offset;
	uint32_t max;		   /* bytes of a string, elements of an array */
	uint32_t str_max;	   /* F_STRV: bytes of each string */
	const struct layout *elem; /* F_ARRAY */
};

struct layout {
	size_t size; /* of the C struct */
	size_t nr_fields;
	const struct field *fields;
};

/* Arrays are { T *v; uint32_t n; } whatever T is. */
struct any_array {
	void *v;
	uint32_t n;
};

#define U32(s, m)                                        \
	{                                                \
		F_U32, offsetof(struct s, m), 0, 0, NULL \
	}
#define U64(s, m)                                        \
	{                                                \
		F_U64, offsetof(struct s, m), 0, 0, NULL \
	}
#define STR(s, m, cap)                                     \
	{                                                  \
		F_STR, offsetof(struct s, m), cap, 0, NULL \
	}
#define BYTES(s, m, cap)                                     \
	{                                                    \
		F_BYTES, offsetof(struct s, m), cap, 0, NULL \
	}
#define STRV(s, m, count, cap)                                  \
	{                                                       \
		F_STRV, offsetof(struct s, m), count, cap, NULL \
	}
#define ARRAY(s, m, count, elem)                                \
	{                                                       \
		F_ARRAY, offsetof(struct s, m), count, 0, &elem \
	}
#define LAYOUT(name, s, ...)                                                          \
	static const struct field name##_fields[] = { __VA_ARGS__ };                  \
	static const struct layout name = { sizeof(struct s), N_ELEMS(name##_fields), \
					    name##_fields }

static const struct layout empty_layout = { 0, 0, NULL };

LAYOUT(hello_layout, agent_hello, U32(agent_hello, major), U32(agent_hello, minor),
       STR(agent_hello, software, AGENT_MAX_NAME));
LAYOUT(mount_layout, agent_mount, STR(agent_mount, source, AGENT_MAX_PATH),
       STR(agent_mount, target, AGENT_MAX_PATH), STR(agent_mount, fstype, AGENT_MAX_NAME),
       STRV(agent_mount, options, AGENT_MAX_OPTIONS, AGENT_MAX_PATH));
LAYOUT(create_layout, agent_create, STR(agent_create, container_id, AGENT_MAX_ID),
       U32(agent_create, rootfs_kind), STR(agent_create, rootfs_source, AGENT_MAX_PATH),
       STR(agent_create, rootfs_fstype, AGENT_MAX_NAME),
       STR(agent_create, rootfs_options, AGENT_MAX_PATH), U32(agent_create, stdio),
       ARRAY(agent_create, mounts, AGENT_MAX_MOUNTS, mount_layout),
       STR(agent_create, oci_config, AGENT_MAX_OCI));
LAYOUT(container_layout, agent_container_ref, STR(agent_container_ref, container_id, AGENT_MAX_ID));
LAYOUT(delete_layout, agent_delete, STR(agent_delete, container_id, AGENT_MAX_ID),
       U32(agent_delete, flags));
LAYOUT(exec_layout, agent_exec, STR(agent_exec, container_id, AGENT_MAX_ID),
       STR(agent_exec, exec_id, AGENT_MAX_ID), U32(agent_exec, stdio),
       STR(agent_exec, process, AGENT_MAX_PROCESS));
LAYOUT(pid_layout, agent_pid, U32(agent_pid, pid));
LAYOUT(signal_layout, agent_signal, STR(agent_signal, container_id, AGENT_MAX_ID),
       STR(agent_signal, exec_id, AGENT_MAX_ID), U32(agent_signal, signal),
       U32(agent_signal, flags));
LAYOUT(process_layout, agent_process_ref, STR(agent_process_ref, container_id, AGENT_MAX_ID),
       STR(agent_process_ref, exec_id, AGENT_MAX_ID));
LAYOUT(exit_layout, agent_exit, STR(agent_exit, container_id, AGENT_MAX_ID),
       STR(agent_exit, exec_id, AGENT_MAX_ID), U32(agent_exit, pid), U32(agent_exit, status),
       U32(agent_exit, flags), U64(agent_exit, exited_at_ns));
LAYOUT(exits_layout, agent_exits, ARRAY(agent_exits, exits, AGENT_MAX_EXITS, exit_layout));
LAYOUT(resize_layout, agent_resize, STR(agent_resize, container_id, AGENT_MAX_ID),
       STR(agent_resize, exec_id, AGENT_MAX_ID), U32(agent_resize, rows), U32(agent_resize, cols));
LAYOUT(proc_layout, agent_process_info, U32(agent_process_info, pid), U32(agent_process_info, ppid),
       U32(agent_process_info, uid), STR(agent_process_info, exec_id, AGENT_MAX_ID),
       STR(agent_process_info, command, AGENT_MAX_NAME));
LAYOUT(ps_layout, agent_ps, U32(agent_ps, flags),
       ARRAY(agent_ps, procs, AGENT_MAX_PROCS, proc_layout));
LAYOUT(stats_layout, agent_stats, U64(agent_stats, cpu_usage_us), U64(agent_stats, cpu_user_us),
       U64(agent_stats, cpu_system_us), U64(agent_stats, cpu_nr_periods),
       U64(agent_stats, cpu_nr_throttled), U64(agent_stats, cpu_throttled_us),
       U64(agent_stats, mem_usage), U64(agent_stats, mem_limit), U64(agent_stats, mem_swap_usage),
       U64(agent_stats, mem_oom), U64(agent_stats, mem_oom_kill), U64(agent_stats, pids_current),
       U64(agent_stats, pids_limit));
LAYOUT(oom_layout, agent_oom, STR(agent_oom, container_id, AGENT_MAX_ID), U64(agent_oom, oom_kill));
LAYOUT(set_time_layout, agent_set_time, U64(agent_set_time, realtime_ns));
LAYOUT(add_entropy_layout, agent_add_entropy, BYTES(agent_add_entropy, data, AGENT_MAX_ENTROPY));
LAYOUT(update_layout, agent_update, STR(agent_update, container_id, AGENT_MAX_ID),
       STR(agent_update, resources, AGENT_MAX_RESOURCES));
LAYOUT(mount_share_layout, agent_mount_share, STR(agent_mount_share, tag, AGENT_MAX_TAG));
LAYOUT(share_path_layout, agent_share_path, STR(agent_share_path, path, AGENT_MAX_PATH));
LAYOUT(freeze_layout, agent_freeze, STR(agent_freeze, container_id, AGENT_MAX_ID),
       U32(agent_freeze, frozen));
LAYOUT(net_iface_layout, agent_net_iface, BYTES(agent_net_iface, mac, AGENT_NET_MAC_LEN),
       STR(agent_net_iface, name, AGENT_MAX_IFNAME), U32(agent_net_iface, mtu));
LAYOUT(net_addr_layout, agent_net_addr, U32(agent_net_addr, iface), U32(agent_net_addr, addr),
       U32(agent_net_addr, prefix));
LAYOUT(net_route_layout, agent_net_route, U32(agent_net_route, iface), U32(agent_net_route, dst),
       U32(agent_net_route, prefix), U32(agent_net_route, gateway), U32(agent_net_route, metric));
LAYOUT(network_layout, agent_network,
       ARRAY(agent_network, ifaces, AGENT_MAX_NET_IFACES, net_iface_layout),
       ARRAY(agent_network, addrs, AGENT_MAX_NET_ADDRS, net_addr_layout),
       ARRAY(agent_network, routes, AGENT_MAX_NET_ROUTES, net_route_layout));
LAYOUT(shutdown_layout, agent_shutdown, U32(agent_shutdown, flags));
LAYOUT(attach_layout, agent_stream_attach, STR(agent_stream_attach, container_id, AGENT_MAX_ID),
       STR(agent_stream_attach, exec_id, AGENT_MAX_ID), U32(agent_stream_attach, stream));
LAYOUT(error_layout, agent_error, U32(agent_error, errno_value),
       STR(agent_error, message, AGENT_MAX_ERROR_MSG));

/* The catalogue: request and reply layouts per type (events have only `event`). */
static const struct message {
	uint16_t type;
	const char *name;
	const struct layout *request, *reply, *event;
} catalogue[] = {
	{ AGENT_HELLO, "HELLO", &hello_layout, &hello_layout, NULL },
	{ AGENT_PING, "PING", &empty_layout, &empty_layout, NULL },
	{ AGENT_SET_TIME, "SET_TIME", &set_time_layout, &empty_layout, NULL },
	{ AGENT_ADD_ENTROPY, "ADD_ENTROPY", &add_entropy_layout, &empty_layout, NULL },
	{ AGENT_CREATE, "CREATE", &create_layout, &pid_layout, NULL },
	{ AGENT_START, "START", &container_layout, &empty_layout, NULL },
	{ AGENT_DELETE, "DELETE", &delete_layout, &empty_layout, NULL },
	{ AGENT_MOUNT_SHARE, "MOUNT_SHARE", &mount_share_layout, &share_path_layout, NULL },
	{ AGENT_NETWORK, "NETWORK", &network_layout, &empty_layout, NULL },
	{ AGENT_EXEC, "EXEC", &exec_layout, &pid_layout, NULL },
	{ AGENT_SIGNAL, "SIGNAL", &signal_layout, &empty_layout, NULL },
	{ AGENT_WAIT, "WAIT", &process_layout, &exit_layout, NULL },
	{ AGENT_ACK_EXIT, "ACK_EXIT", &process_layout, &empty_layout, NULL },
	{ AGENT_LIST_EXITS, "LIST_EXITS", &empty_layout, &exits_layout, NULL },
	{ AGENT_RESIZE, "RESIZE", &resize_layout, &empty_layout, NULL },
	{ AGENT_PS, "PS", &container_layout, &ps_layout, NULL },
	{ AGENT_STATS, "STATS", &container_layout, &stats_layout, NULL },
	{ AGENT_UPDATE, "UPDATE", &update_layout, &empty_layout, NULL },
	{ AGENT_FREEZE, "FREEZE", &freeze_layout, &empty_layout, NULL },
	{ AGENT_SHUTDOWN, "SHUTDOWN", &shutdown_layout, &empty_layout, NULL },
	{ AGENT_STREAM_ATTACH, "STREAM_ATTACH", &attach_layout, &empty_layout, NULL },
	{ AGENT_EVENT_EXIT, "EVENT_EXIT", NULL, NULL, &exit_layout },
	{ AGENT_EVENT_OOM, "EVENT_OOM", NULL, NULL, &oom_layout },
};

static const struct message *message_find(uint16_t type)
{
	for (size_t i = 0; i < N_ELEMS(catalogue); i++)
		if (catalogue[i].type == type)
			return &catalogue[i];
	return NULL;
}

const char *agent_type_name(uint16_t type)
{
	const struct message *m = message_find(type);

	return m ? m->name : "unknown";
}

/*
 * The layout of (type, flags), checking the flag combination and the request id rule
 * (requests and replies carry a non-zero id, events 0): NULL with *err set otherwise.
 */
static const struct layout *layout_of(uint16_t type, uint16_t flags, uint32_t id, int *err)
{
	const struct message *m = message_find(type);
	const struct layout *l;

	*err = -EBADMSG;
	switch (flags) {
	case 0:
	case AGENT_FLAG_REPLY:
		if (id == 0)
			return NULL;
		break;
	case AGENT_FLAG_REPLY | AGENT_FLAG_ERROR:
		/* Error replies decode whatever the type: the agent answers unknown ones so. */
		return id ? &error_layout : NULL;
	case AGENT_FLAG_EVENT:
		if (id != 0)
			return NULL;
		break;
	default:
		return NULL;
	}
	*err = -ENOMSG;
	if (!m)
		return NULL;
	l = flags == 0 ? m->request : flags == AGENT_FLAG_REPLY ? m->reply : m->event;
	return l;
}

/* ---- decoding ---- */

struct cursor {
	const uint8_t *p;
	size_t left;
};

static int get_u32(struct cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return -EBADMSG;
	*v = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 |
	     (uint32_t)c->p[3] << 24;
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int get_u64(struct cursor *c, uint64_t *v)
{
	uint32_t lo, hi;
	int r = get_u32(c, &lo);

	if (r == 0)
		r = get_u32(c, &hi);
	if (r == 0)
		*v = (uint64_t)hi << 32 | lo;
	return r;
}

static int get_str(struct cursor *c, uint32_t max, char **out)
{
	uint32_t len;
	char *s;
	int r = get_u32(c, &len);

	if (r < 0)
		return r;
	if (len > max)
		return -E2BIG;
	if (len > c->left)
		return -EBADMSG;
	if (len && memchr(c->p, '\0', len))
		return -EBADMSG;
	s = malloc((size_t)len + 1);
	if (!s)
		return -ENOMEM;
	if (len)
		memcpy(s, c->p, len);
	s[len] = '\0';
	c->p += len;
	c->left -= len;
	*out = s;
	return 0;
}

/* The fewest bytes an element of l can take on the wire: bounds a count before calloc. */
static size_t layout_min_size(const struct layout *l)
{
	size_t n = 0;

	for (size_t i = 0; i < l->nr_fields; i++)
		n += l->fields[i].kind == F_U64 ? 8 : 4;
	return n;
}

/* Read a count, check it against max and what min-sized elements fit in the rest, allocate. */
static int get_count(struct cursor *c, uint32_t max, size_t min_size, size_t elem_size,
		     struct any_array *a)
{
	uint32_t n;
	int r = get_u32(c, &n);

	if (r < 0)
		return r;
	if (n > max)
		return -E2BIG;
	if (min_size && n > c->left / min_size)
		return -EBADMSG;
	if (n == 0)
		return 0;
	a->v = calloc(n, elem_size);
	if (!a->v)
		return -ENOMEM;
	a->n = n; /* zeroed elements free cleanly if a later one fails */
	return 0;
}

static int decode_layout(const struct layout *l, struct cursor *c, void *base);

static int decode_field(const struct field *f, struct cursor *c, void *base)
{
	void *p = (uint8_t *)base + f->offset;
	struct any_array *a = p;
	int r = 0;

	switch (f->kind) {
	case F_U32:
		return get_u32(c, p);
	case F_U64:
		return get_u64(c, p);
	case F_STR:
		return get_str(c, f->max, p);
	case F_STRV:
		r = get_count(c, f->max, 4, sizeof(char *), a);
		for (uint32_t i = 0; r == 0 && i < a->n; i++)
			r = get_str(c, f->str_max, (char **)a->v + i);
		return r;
	case F_BYTES:
		r = get_count(c, f->max, 1, 1, a);
		if (r == 0 && a->n)
			memcpy(a->v, c->p, a->n);
		if (r == 0) {
			c->p += a->n;
			c->left -= a->n;
		}
		return r;
	case F_ARRAY:
		r = get_count(c, f->max, layout_min_size(f->elem), f->elem->size, a);
		for (uint32_t i = 0; r == 0 && i < a->n; i++)
			r = decode_layout(f->elem, c, (uint8_t *)a->v + i * f->elem->size);
		return r;
	}
	return -EINVAL;
}

static int decode_layout(const struct layout *l, struct cursor *c, void *base)
{
	for (size_t i = 0; i < l->nr_fields; i++) {
		int r = decode_field(&l->fields[i], c, base);

		if (r < 0)
			return r;
	}
	return 0;
}

static void free_layout(const struct layout *l, void *base)
{
	for (size_t i = 0; i < l->nr_fields; i++) {
		const struct field *f = &l->fields[i];
		void *p = (uint8_t *)base + f->offset;
		struct any_array *a = p;

		switch (f->kind) {
		case F_STR:
			free(*(char **)p);
			break;
		case F_STRV:
			for (uint32_t j = 0; j < a->n; j++)
				free(((char **)a->v)[j]);
			free(a->v);
			break;
		case F_ARRAY:
			for (uint32_t j = 0; j < a->n; j++)
				free_layout(f->elem, (uint8_t *)a->v + j * f->elem->size);
			free(a->v);
			break;
		case F_BYTES:
			free(a->v);
			break;
		default:
			break;
		}
	}
}

int agent_msg_decode(const struct agent_header *h, const uint8_t *payload, struct agent_msg *out)
{
	static const uint8_t nothing;
	struct cursor c = { payload ? payload : &nothing, payload ? h->len : 0 };
	const struct layout *l;
	int r;

	memset(out, 0, sizeof(*out));
	out->type = h->type;
	out->flags = h->flags;
	out->id = h->id;
	l = layout_of(h->type, h->flags, h->id, &r);
	if (!l)
		return r;
	if (h->len > AGENT_MAX_PAYLOAD)
		return -EMSGSIZE;
	/* Bytes past the last known field are a later minor version's additions: ignored. */
	r = decode_layout(l, &c, &out->u);
	if (r < 0) {
		free_layout(l, &out->u);
		memset(&out->u, 0, sizeof(out->u));
	}
	return r;
}

void agent_msg_clear(struct agent_msg *m)
{
	int err;
	const struct layout *l = layout_of(m->type, m->flags, m->id, &err);

	if (l)
		free_layout(l, &m->u);
	memset(&m->u, 0, sizeof(m->u));
}

/* ---- encoding ---- */

void agent_buf_free(struct agent_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static int buf_put(struct agent_buf *b, size_t frame_start, const void *data, size_t len)
{
	size_t need = b->len + len;

	if (need - frame_start > AGENT_HDR_LEN + (size_t)AGENT_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *d;

		while (cap < need)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len = need;
	return 0;
}

static int put_u32(struct agent_buf *b, size_t start, uint32_t v)
{
	uint8_t le[4] = { v, v >> 8, v >> 16, v >> 24 };

	return buf_put(b, start, le, 4);
}

static int put_str(struct agent_buf *b, size_t start, const char *s, uint32_t max)
{
	size_t len = s ? strlen(s) : 0;
	int r;

	if (len > max)
		return -E2BIG;
	r = put_u32(b, start, len);
	return r < 0 ? r : buf_put(b, start, s, len);
}

static int encode_layout(const struct layout *l, const void *base, struct agent_buf *b,
			 size_t start);

static int encode_field(const struct field *f, const void *base, struct agent_buf *b, size_t start)
{
	const void *p = (const uint8_t *)base + f->offset;
	const struct any_array *a = p;
	uint64_t v64;
	int r;

	switch (f->kind) {
	case F_U32:
		return put_u32(b, start, *(const uint32_t *)p);
	case F_U64:
		v64 = *(const uint64_t *)p;
		r = put_u32(b, start, (uint32_t)v64);
		return r < 0 ? r : put_u32(b, start, (uint32_t)(v64 >> 32));
	case F_STR:
		return put_str(b, start, *(char *const *)p, f->max);
	case F_BYTES:
		if (a->n > f->max)
			return -E2BIG;
		r = put_u32(b, start, a->n);
		return r < 0 ? r : buf_put(b, start, a->v, a->n);
	case F_STRV:
	case F_ARRAY:
		if (a->n > f->max)
			return -E2BIG;
		r = put_u32(b, start, a->n);
		for (uint32_t i = 0; r == 0 && i < a->n; i++)
			r = f->kind == F_STRV
				    ? put_str(b, start, ((char **)a->v)[i], f->str_max)
				    : encode_layout(f->elem, (uint8_t *)a->v + i * f->elem->size, b,
						    start);
		return r;
	}
	return -EINVAL;
}

static int encode_layout(const struct layout *l, const void *base, struct agent_buf *b,
			 size_t start)
{
	for (size_t i = 0; i < l->nr_fields; i++) {
		int r = encode_field(&l->fields[i], base, b, start);

		if (r < 0)
			return r;
	}
	return 0;
}

int agent_msg_encode(const struct agent_msg *m, struct agent_buf *out)
{
	static const uint8_t zero_hdr[AGENT_HDR_LEN];
	size_t start = out->len;
	struct agent_header h = { AGENT_MAGIC, m->type, m->flags, m->id, 0 };
	int r;
	const struct layout *l = layout_of(m->type, m->flags, m->id, &r);

	if (!l)
		return r == -EBADMSG ? -EINVAL : r;
	r = buf_put(out, start, zero_hdr, sizeof(zero_hdr));
	if (r == 0)
		r = encode_layout(l, &m->u, out, start);
	if (r < 0) {
		out->len = start;
		return r;
	}
	h.len = out->len - start - AGENT_HDR_LEN;
	agent_header_encode(&h, out->data + start);
	return 0;
}

int agent_encode_error(uint16_t type, uint32_t id, int errno_value, const char *message,
		       struct agent_buf *out)
{
	char text[AGENT_MAX_ERROR_MSG + 1];
	struct agent_msg m = { .type = type,
			       .flags = AGENT_FLAG_REPLY | AGENT_FLAG_ERROR,
			       .id = id };

	snprintf(text, sizeof(text), "%s", message ? message : "");
	m.u.error.errno_value = errno_value > 0 ? errno_value : EIO;
	m.u.error.message = text;
	return agent_msg_encode(&m, out);
}

int agent_version_check(const struct agent_hello *peer, char *msg, size_t msg_len)
{
	if (peer->major == AGENT_PROTO_MAJOR)
		return 0;
	snprintf(msg, msg_len,
		 "agent protocol version mismatch: peer (%s) speaks %u.%u, we speak %u.%u; "
		 "use a matching stratus-agent and runtime",
		 peer->software ? peer->software : "?", peer->major, peer->minor, AGENT_PROTO_MAJOR,
		 AGENT_PROTO_MINOR);
	return -EPROTONOSUPPORT;
}
