/*
 * The host side of container networking (netns.h, docs/networking.md): list a network
 * namespace's links, IPv4 addresses and routes, and give each Ethernet link that is up a tap
 * joined to it by two tc redirects (ingress qdisc, u32 match-all filter, mirred egress
 * redirect), all over rtnetlink from a thread that entered the namespace. The attribute
 * layouts are the kernel's uapi (linux/pkt_sched.h, pkt_cls.h, tc_act/tc_mirred.h).
 */
#include <arpa/inet.h>
#include <net/if.h> /* before the linux/ headers, which then skip their copy of it */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>

#include "common/netlink.h"
#include "netns.h"

#define TAP_NAME_TEMPLATE "stratus%d" /* the kernel picks the number */
#define FILTER_PRIO	  1

/* What the thread in the namespace works on. */
struct netns_job {
	struct netns_plan *plan;
	const struct netns_iface *ifaces; /* teardown */
	size_t n;
	struct error *err;
	const char *path;
	int ns_fd; /* the namespace to enter */
	int nl;	   /* rtnetlink, in it */
};

/* Run fn in a thread that entered the network namespace at path; its result. */
static int netns_run(const char *path, void *(*fn)(void *), struct netns_job *job, bool missing_ok)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	pthread_t t;
	void *ret;
	int r;

	if (fd < 0 && missing_ok && errno == ENOENT)
		return 0;
	if (fd < 0)
		return error_set_errno(job->err, -errno, "network namespace %s", path);
	job->path = path;
	job->ns_fd = fd;
	job->nl = -1;
	r = pthread_create(&t, NULL, fn, job);
	if (r)
		return error_set_errno(job->err, -r, "network namespace %s: thread", path);
	pthread_join(t, &ret);
	return (int)(intptr_t)ret;
}

/* The thread's first step: enter the namespace and open rtnetlink there. */
static int netns_enter(struct netns_job *job)
{
	if (setns(job->ns_fd, CLONE_NEWNET) < 0)
		return error_set_errno(job->err, -errno,
				       "network namespace %s: not one we can enter", job->path);
	job->nl = netlink_open();
	if (job->nl < 0)
		return error_set_errno(job->err, job->nl, "network namespace %s: rtnetlink socket",
				       job->path);
	return 0;
}

static struct netns_iface *plan_iface(struct netns_plan *p, int ifindex)
{
	for (size_t i = 0; i < p->n_ifaces; i++)
		if (p->ifaces[i].ifindex == ifindex)
			return &p->ifaces[i];
	return NULL;
}

static bool link_is_tun(const struct rtattr *linkinfo)
{
	const struct rtattr *rta;
	int len;

	if (!linkinfo)
		return false;
	len = RTA_PAYLOAD(linkinfo);
	for (rta = RTA_DATA(linkinfo); RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type == IFLA_INFO_KIND && RTA_PAYLOAD(rta) >= 3 &&
		    !strncmp(RTA_DATA(rta), "tun", RTA_PAYLOAD(rta)))
			return true;
	return false;
}

static int links_cb(const struct nlmsghdr *h, void *arg)
{
	struct netns_job *job = arg;
	struct netns_plan *p = job->plan;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *tb[IFLA_MAX + 1];
	struct netns_iface *it;
	const char *name;

	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return 0;
	netlink_attrs(h, sizeof(*ifi), tb, IFLA_MAX);
	if ((ifi->ifi_flags & IFF_LOOPBACK) || !(ifi->ifi_flags & IFF_UP) || !tb[IFLA_IFNAME])
		return 0;
	/* A tap is never the container's interface: it is ours, or another runtime's. */
	if (link_is_tun(tb[IFLA_LINKINFO]))
		return 0;
	name = RTA_DATA(tb[IFLA_IFNAME]);
	if (ifi->ifi_type != ARPHRD_ETHER || !tb[IFLA_ADDRESS] ||
	    RTA_PAYLOAD(tb[IFLA_ADDRESS]) != AGENT_NET_MAC_LEN) {
		p->n_skipped_links++;
		return 0;
	}
	if (p->n_ifaces == AGENT_MAX_NET_IFACES)
		return error_set(job->err, -E2BIG,
				 "more than %d network interfaces: %s is one too many",
				 AGENT_MAX_NET_IFACES, name);
	it = &p->ifaces[p->n_ifaces++];
	snprintf(it->name, sizeof(it->name), "%.*s", (int)RTA_PAYLOAD(tb[IFLA_IFNAME]), name);
	it->ifindex = ifi->ifi_index;
	memcpy(it->mac, RTA_DATA(tb[IFLA_ADDRESS]), AGENT_NET_MAC_LEN);
	it->mtu = netlink_attr_u32(tb[IFLA_MTU], 0);
	return 0;
}

static int addrs_cb(const struct nlmsghdr *h, void *arg)
{
	struct netns_job *job = arg;
	struct netns_plan *p = job->plan;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct rtattr *tb[IFA_MAX + 1], *a;
	struct netns_iface *it;
	uint32_t addr;

	if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)))
		return 0;
	it = plan_iface(p, (int)ifa->ifa_index);
	if (!it)
		return 0;
	if (ifa->ifa_family == AF_INET6 && ifa->ifa_scope == RT_SCOPE_UNIVERSE)
		p->n_skipped_ipv6++;
	if (ifa->ifa_family != AF_INET)
		return 0;
	netlink_attrs(h, sizeof(*ifa), tb, IFA_MAX);
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || RTA_PAYLOAD(a) != 4 || ifa->ifa_prefixlen > 32)
		return 0;
	if (p->n_addrs == AGENT_MAX_NET_ADDRS)
		return error_set(job->err, -E2BIG, "%s: more than %d IPv4 addresses in all",
				 it->name, AGENT_MAX_NET_ADDRS);
	memcpy(&addr, RTA_DATA(a), 4);
	p->addrs[p->n_addrs++] = (struct agent_net_addr){ (uint32_t)(it - p->ifaces), ntohl(addr),
							  ifa->ifa_prefixlen };
	return 0;
}

static uint32_t attr_ipv4(const struct rtattr *rta)
{
	uint32_t v = 0;

	if (rta && RTA_PAYLOAD(rta) == 4)
		memcpy(&v, RTA_DATA(rta), 4);
	return ntohl(v);
}

static int routes_cb(const struct nlmsghdr *h, void *arg)
{
	struct netns_job *job = arg;
	struct netns_plan *p = job->plan;
	const struct rtmsg *rtm = NLMSG_DATA(h);
	const struct rtattr *tb[RTA_MAX + 1];
	struct netns_iface *it;

	if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(*rtm)))
		return 0;
	netlink_attrs(h, sizeof(*rtm), tb, RTA_MAX);
	if (rtm->rtm_family == AF_INET6 && rtm->rtm_protocol != RTPROT_KERNEL)
		p->n_skipped_ipv6++;
	/* The main table's unicast routes; the kernel's own come back with the addresses. */
	if (rtm->rtm_family != AF_INET || rtm->rtm_type != RTN_UNICAST ||
	    netlink_attr_u32(tb[RTA_TABLE], rtm->rtm_table) != RT_TABLE_MAIN ||
	    rtm->rtm_protocol == RTPROT_KERNEL || (rtm->rtm_flags & RTM_F_CLONED) ||
	    rtm->rtm_dst_len > 32)
		return 0;
	it = plan_iface(p, (int)netlink_attr_u32(tb[RTA_OIF], 0));
	if (!it)
		return 0; /* multipath, or a device not carried */
	if (p->n_routes == AGENT_MAX_NET_ROUTES)
		return error_set(job->err, -E2BIG, "%s: more than %d IPv4 routes in all", it->name,
				 AGENT_MAX_NET_ROUTES);
	p->routes[p->n_routes++] =
		(struct agent_net_route){ (uint32_t)(it - p->ifaces), attr_ipv4(tb[RTA_DST]),
					  rtm->rtm_dst_len, attr_ipv4(tb[RTA_GATEWAY]),
					  netlink_attr_u32(tb[RTA_PRIORITY], 0) };
	return 0;
}

static int dump(struct netns_job *job, uint16_t type, uint8_t family,
		int (*cb)(const struct nlmsghdr *, void *), const char *what)
{
	struct netlink_msg m;
	int r;

	/* ifinfomsg, ifaddrmsg and rtmsg all start with the family byte. */
	*(uint8_t *)netlink_msg_init(&m, type, NLM_F_DUMP, sizeof(struct rtmsg)) = family;
	if (type == RTM_GETLINK)
		m.u.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	else if (type == RTM_GETADDR)
		m.u.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r = netlink_call(job->nl, &m, cb, job);
	return r < 0 ? error_set_errno(job->err, r, "listing the %s", what) : 0;
}

static int link_set_up(int nl, int ifindex, uint32_t mtu)
{
	struct netlink_msg m;
	struct ifinfomsg *ifi = netlink_msg_init(&m, RTM_NEWLINK, NLM_F_ACK, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	if (mtu)
		netlink_put_u32(&m, IFLA_MTU, mtu);
	return netlink_call(nl, &m, NULL, NULL);
}

static struct tcmsg *tc_msg(struct netlink_msg *m, uint16_t type, uint16_t flags, int ifindex)
{
	struct tcmsg *tcm = netlink_msg_init(m, type, NLM_F_ACK | flags, sizeof(*tcm));

	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	return tcm;
}

static int qdisc_ingress(int nl, int ifindex, bool add)
{
	struct netlink_msg m;
	struct tcmsg *tcm = tc_msg(&m, add ? RTM_NEWQDISC : RTM_DELQDISC,
				   add ? NLM_F_CREATE | NLM_F_EXCL : 0, ifindex);

	tcm->tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0);
	tcm->tcm_parent = TC_H_INGRESS;
	netlink_put_str(&m, TCA_KIND, "ingress");
	if (add)
		netlink_nest_end(&m, netlink_nest_begin(&m, TCA_OPTIONS));
	return netlink_call(nl, &m, NULL, NULL);
}

/* On from's ingress: every frame (u32, one key of mask 0) to to's egress (mirred redirect). */
static int filter_redirect(int nl, int from, int to)
{
	/* The selector and its one key (all zero: mask 0, value 0, offset 0): keys[] ends it. */
	uint32_t sel_buf[(sizeof(struct tc_u32_sel) + sizeof(struct tc_u32_key) + 3) / 4] = { 0 };
	struct tc_u32_sel *sel = (struct tc_u32_sel *)sel_buf;
	struct tc_mirred mirred = { .action = TC_ACT_STOLEN,
				    .eaction = TCA_EGRESS_REDIR,
				    .ifindex = (uint32_t)to };
	struct netlink_msg m;
	struct tcmsg *tcm = tc_msg(&m, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, from);
	struct rtattr *opts, *acts, *act, *act_opts;

	tcm->tcm_parent = TC_H_MAKE(TC_H_INGRESS, 0);
	tcm->tcm_info = TC_H_MAKE(FILTER_PRIO << 16, htons(ETH_P_ALL));
	sel->flags = TC_U32_TERMINAL;
	sel->nkeys = 1; /* mask 0 matches every frame */
	netlink_put_str(&m, TCA_KIND, "u32");
	opts = netlink_nest_begin(&m, TCA_OPTIONS);
	netlink_put(&m, TCA_U32_SEL, sel, sizeof(struct tc_u32_sel) + sizeof(struct tc_u32_key));
	acts = netlink_nest_begin(&m, TCA_U32_ACT);
	act = netlink_nest_begin(&m, 1); /* the first action of the list */
	netlink_put_str(&m, TCA_ACT_KIND, "mirred");
	act_opts = netlink_nest_begin(&m, TCA_ACT_OPTIONS);
	netlink_put(&m, TCA_MIRRED_PARMS, &mirred, sizeof(mirred));
	netlink_nest_end(&m, act_opts);
	netlink_nest_end(&m, act);
	netlink_nest_end(&m, acts);
	netlink_nest_end(&m, opts);
	return netlink_call(nl, &m, NULL, NULL);
}

/* A tap of this namespace (the thread is in it while it opens /dev/net/tun). */
static int tap_create(struct netns_job *job, struct netns_iface *it)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return error_set_errno(job->err, -errno, "%s: open /dev/net/tun", it->name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP_NAME_TEMPLATE);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int r = -errno;

		close(fd);
		return error_set_errno(job->err, r, "%s: creating its tap (TUNSETIFF)", it->name);
	}
	it->tap_fd = fd;
	snprintf(it->tap_name, sizeof(it->tap_name), "%s", ifr.ifr_name);
	it->tap_ifindex = (int)if_nametoindex(it->tap_name);
	if (!it->tap_ifindex)
		return error_set_errno(job->err, -errno, "%s: tap %s: no index", it->name,
				       it->tap_name);
	return 0;
}

/* The tap of it, up, and the redirects both ways; qdiscs[] notes what to undo. */
static int iface_connect(struct netns_job *job, struct netns_iface *it, bool qdiscs[2])
{
	int r = tap_create(job, it);

	if (r < 0)
		return r;
	r = link_set_up(job->nl, it->tap_ifindex, it->mtu);
	if (r < 0)
		return error_set_errno(job->err, r, "%s: setting tap %s up with MTU %u", it->name,
				       it->tap_name, it->mtu);
	r = qdisc_ingress(job->nl, it->ifindex, true);
	if (r == -EEXIST)
		return error_set(job->err, r,
				 "%s: adding an ingress qdisc: it has one already (another "
				 "runtime's tc filters?)",
				 it->name);
	if (r < 0)
		return error_set_errno(job->err, r, "%s: adding an ingress qdisc (sch_ingress)",
				       it->name);
	qdiscs[0] = true;
	r = qdisc_ingress(job->nl, it->tap_ifindex, true);
	if (r < 0)
		return error_set_errno(job->err, r, "%s: adding an ingress qdisc to tap %s",
				       it->name, it->tap_name);
	qdiscs[1] = true;
	r = filter_redirect(job->nl, it->ifindex, it->tap_ifindex);
	if (r < 0)
		return error_set_errno(
			job->err, r, "%s: redirecting its ingress to tap %s (cls_u32, act_mirred)",
			it->name, it->tap_name);
	r = filter_redirect(job->nl, it->tap_ifindex, it->ifindex);
	if (r < 0)
		return error_set_errno(job->err, r, "%s: redirecting tap %s's ingress to it",
				       it->name, it->tap_name);
	return 0;
}

static void *plan_thread(void *arg)
{
	struct netns_job *job = arg;
	struct netns_plan *p = job->plan;
	bool qdiscs[AGENT_MAX_NET_IFACES][2] = { { false } };
	size_t i;
	int r = netns_enter(job);

	r = r ?: dump(job, RTM_GETLINK, AF_UNSPEC, links_cb, "links");
	r = r ?: dump(job, RTM_GETADDR, AF_UNSPEC, addrs_cb, "addresses");
	r = r ?: dump(job, RTM_GETROUTE, AF_UNSPEC, routes_cb, "routes");
	for (i = 0; r == 0 && i < p->n_ifaces; i++)
		r = iface_connect(job, &p->ifaces[i], qdiscs[i]);
	if (r < 0) {
		/* Undo: the tap's qdisc goes with the tap, the link's is removed. */
		for (i = 0; i < p->n_ifaces; i++) {
			if (qdiscs[i][0])
				qdisc_ingress(job->nl, p->ifaces[i].ifindex, false);
			if (p->ifaces[i].tap_fd >= 0)
				close(p->ifaces[i].tap_fd);
			p->ifaces[i].tap_fd = -1;
		}
	}
	if (job->nl >= 0)
		close(job->nl);
	return (void *)(intptr_t)r;
}

int netns_plan(const char *path, struct netns_plan *p, struct error *err)
{
	struct netns_job job = { .plan = p, .err = err };
	int r;

	memset(p, 0, sizeof(*p));
	p->ifaces = calloc(AGENT_MAX_NET_IFACES, sizeof(*p->ifaces));
	p->net_ifaces = calloc(AGENT_MAX_NET_IFACES, sizeof(*p->net_ifaces));
	p->addrs = calloc(AGENT_MAX_NET_ADDRS, sizeof(*p->addrs));
	p->routes = calloc(AGENT_MAX_NET_ROUTES, sizeof(*p->routes));
	if (!p->ifaces || !p->net_ifaces || !p->addrs || !p->routes) {
		netns_plan_destroy(p);
		return error_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < AGENT_MAX_NET_IFACES; i++)
		p->ifaces[i].tap_fd = -1;
	r = netns_run(path, plan_thread, &job, false);
	if (r < 0) {
		netns_plan_destroy(p);
		return r;
	}
	for (size_t i = 0; i < p->n_ifaces; i++)
		p->net_ifaces[i] = (struct agent_net_iface){
			{ p->ifaces[i].mac, AGENT_NET_MAC_LEN }, p->ifaces[i].name, p->ifaces[i].mtu
		};
	return 0;
}

void netns_plan_network(const struct netns_plan *p, struct agent_network *out)
{
	memset(out, 0, sizeof(*out));
	out->ifaces.v = p->net_ifaces;
	out->ifaces.n = p->n_ifaces;
	out->addrs.v = p->addrs;
	out->addrs.n = p->n_addrs;
	out->routes.v = p->routes;
	out->routes.n = p->n_routes;
}

void netns_plan_destroy(struct netns_plan *p)
{
	for (size_t i = 0; p->ifaces && i < p->n_ifaces; i++)
		if (p->ifaces[i].tap_fd >= 0)
			close(p->ifaces[i].tap_fd);
	free(p->ifaces);
	free(p->net_ifaces);
	free(p->addrs);
	free(p->routes);
	memset(p, 0, sizeof(*p));
}

static void *teardown_thread(void *arg)
{
	struct netns_job *job = arg;
	int r = netns_enter(job);

	for (size_t i = 0; r == 0 && i < job->n; i++) {
		const struct netns_iface *it = &job->ifaces[i];
		char name[IF_NAMESIZE];
		int q;

		/* The same link still: a reused index of another link is not ours to touch. */
		if (!if_indextoname((unsigned int)it->ifindex, name) || strcmp(name, it->name))
			continue;
		q = qdisc_ingress(job->nl, it->ifindex, false);
		if (q < 0 && q != -ENOENT && q != -EINVAL)
			r = error_set_errno(job->err, q, "%s: removing its ingress qdisc",
					    it->name);
	}
	if (job->nl >= 0)
		close(job->nl);
	return (void *)(intptr_t)r;
}

int netns_teardown(const char *path, const struct netns_iface *ifaces, size_t n, struct error *err)
{
	struct netns_job job = { .ifaces = ifaces, .n = n, .err = err };

	return n ? netns_run(path, teardown_thread, &job, true) : 0;
}

int netns_record_write(const char *file, const char *path, const struct netns_plan *p,
		       struct error *err)
{
	FILE *f = fopen(file, "we");
	int r = 0;

	if (!f)
		return error_set_errno(err, -errno, "%s", file);
	fprintf(f, "%s\n", path);
	for (size_t i = 0; i < p->n_ifaces; i++)
		fprintf(f, "%d %s\n", p->ifaces[i].ifindex, p->ifaces[i].name);
	if (fflush(f) != 0 || ferror(f))
		r = error_set_errno(err, -errno, "%s", file);
	fclose(f);
	return r;
}

int netns_record_teardown(const char *file, struct error *err)
{
	struct netns_iface ifaces[AGENT_MAX_NET_IFACES];
	char path[4096], line[64];
	size_t n = 0;
	FILE *f = fopen(file, "re");
	int r;

	if (!f && errno == ENOENT)
		return 0;
	if (!f)
		return error_set_errno(err, -errno, "%s", file);
	if (!fgets(path, sizeof(path), f) || !strchr(path, '\n')) {
		fclose(f);
		return error_set(err, -EINVAL, "%s: no network namespace path", file);
	}
	*strchr(path, '\n') = '\0';
	while (n < AGENT_MAX_NET_IFACES && fgets(line, sizeof(line), f)) {
		struct netns_iface *it = &ifaces[n];

		memset(it, 0, sizeof(*it));
		if (sscanf(line, "%d %15s", &it->ifindex, it->name) == 2 && it->ifindex > 0)
			n++;
	}
	fclose(f);
	r = netns_teardown(path, ifaces, n, err);
	if (r == 0)
		unlink(file);
	return r;
}
