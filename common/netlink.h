/*
 * A small rtnetlink client (rtnetlink(7)), header-only so that both the host runtime
 * (runtime/netns.c: taps and tc filters in a container's network namespace) and the agent
 * (agent/agent_net.c: the guest's NICs, addresses and routes) use it without a library: build
 * one request in a fixed buffer (attributes, nests), send it and read its acknowledgement, or
 * walk a dump. Requests are ours and bounded (NETLINK_MSG_MAX); a full buffer fails the send
 * with -EMSGSIZE instead of truncating. Replies come from the kernel of the caller's network
 * namespace, and are still walked with the length-checked NLMSG_ and RTA_ macros.
 */
#ifndef STRATUS_COMMON_NETLINK_H
#define STRATUS_COMMON_NETLINK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#define NETLINK_MSG_MAX 4096
#define NETLINK_RECV	32768

struct netlink_msg {
	union {
		struct nlmsghdr h;
		char buf[NETLINK_MSG_MAX];
	} u;
	bool overflow;
};

/* A NETLINK_ROUTE socket of the calling thread's network namespace, or -errno. */
static inline int netlink_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int one = 1;

	if (fd < 0)
		return -errno;
	/* Extended acks are not needed; strict checking lets dumps filter in the kernel. */
	setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
	return fd;
}

/* Start a request of type with flags (NLM_F_REQUEST added); the family header follows. */
static inline void *netlink_msg_init(struct netlink_msg *m, uint16_t type, uint16_t flags,
				     size_t family_len)
{
	memset(m, 0, sizeof(*m));
	m->u.h.nlmsg_len = NLMSG_LENGTH(family_len);
	m->u.h.nlmsg_type = type;
	m->u.h.nlmsg_flags = NLM_F_REQUEST | flags;
	return NLMSG_DATA(&m->u.h);
}

static inline struct rtattr *netlink_put(struct netlink_msg *m, uint16_t type, const void *data,
					 size_t len)
{
	size_t off = NLMSG_ALIGN(m->u.h.nlmsg_len);
	struct rtattr *rta;

	if (m->overflow || off + RTA_SPACE(len) > sizeof(m->u.buf)) {
		m->overflow = true;
		return NULL;
	}
	rta = (struct rtattr *)(m->u.buf + off);
	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	m->u.h.nlmsg_len = off + RTA_SPACE(len);
	return rta;
}

static inline void netlink_put_u32(struct netlink_msg *m, uint16_t type, uint32_t v)
{
	netlink_put(m, type, &v, sizeof(v));
}

static inline void netlink_put_str(struct netlink_msg *m, uint16_t type, const char *s)
{
	netlink_put(m, type, s, strlen(s) + 1);
}

/* A nested attribute: its children are put after it, then netlink_nest_end sets its length. */
static inline struct rtattr *netlink_nest_begin(struct netlink_msg *m, uint16_t type)
{
	return netlink_put(m, type, NULL, 0);
}

static inline void netlink_nest_end(struct netlink_msg *m, struct rtattr *nest)
{
	if (nest && !m->overflow)
		nest->rta_len = (char *)&m->u.buf[m->u.h.nlmsg_len] - (char *)nest;
}

static inline int netlink_send(int fd, struct netlink_msg *m)
{
	static uint32_t seq;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	ssize_t n;

	if (m->overflow)
		return -EMSGSIZE;
	m->u.h.nlmsg_seq = ++seq ? seq : ++seq;
	do
		n = sendto(fd, m->u.buf, m->u.h.nlmsg_len, 0, (struct sockaddr *)&kernel,
			   sizeof(kernel));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)m->u.h.nlmsg_len ? 0 : -EIO;
}

/*
 * Send m and read until the answer to it is complete. Each message of a reply (a dump's
 * entries) goes to cb, if given; cb's negative return ends the walk (the rest is still
 * read). Returns 0 (NLMSG_DONE, or an ack of 0), the kernel's -errno, or cb's error.
 */
static inline int netlink_call(int fd, struct netlink_msg *m,
			       int (*cb)(const struct nlmsghdr *h, void *arg), void *arg)
{
	static __thread char buf[NETLINK_RECV] __attribute__((aligned(NLMSG_ALIGNTO)));
	bool dump = m->u.h.nlmsg_flags & NLM_F_DUMP;
	int r = netlink_send(fd, m), cb_r = 0;

	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		size_t len;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		for (len = (size_t)n; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != m->u.h.nlmsg_seq)
				continue; /* a late answer to an earlier request */
			if (h->nlmsg_type == NLMSG_DONE)
				return cb_r;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					return -EBADMSG;
				return e->error ? e->error : cb_r;
			}
			if (cb && cb_r == 0)
				cb_r = cb(h, arg);
			if (!dump)
				return cb_r;
		}
	}
}

/* The attributes after a family header of hdr_len bytes, by type (up to max); others skipped. */
static inline void netlink_attrs(const struct nlmsghdr *h, size_t hdr_len, const struct rtattr **tb,
				 unsigned int max)
{
	const struct rtattr *rta;
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(hdr_len);

	memset(tb, 0, sizeof(*tb) * (max + 1));
	if (len < 0)
		return;
	rta = (const struct rtattr *)((const char *)NLMSG_DATA(h) + NLMSG_ALIGN(hdr_len));
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type <= max)
			tb[rta->rta_type] = rta;
}

/* An attribute's u32 value, or dflt when absent or too short. */
static inline uint32_t netlink_attr_u32(const struct rtattr *rta, uint32_t dflt)
{
	uint32_t v;

	if (!rta || RTA_PAYLOAD(rta) < sizeof(v))
		return dflt;
	memcpy(&v, RTA_DATA(rta), sizeof(v));
	return v;
}

#endif
