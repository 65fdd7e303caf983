/* Network namespaces, a veth pair and rtnetlink checks for the networking tests. */
#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/veth.h>

#include "common/netlink.h"
#include "netns_fixture.h"

#define FIXTURE_ETHERTYPE 0x88b5 /* IEEE local experimental */

int fixture_veth(int nl, const char *name, const char *peer, int peer_ns)
{
	struct netlink_msg m;
	struct ifinfomsg *ifi = netlink_msg_init(
		&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, sizeof(*ifi));
	struct rtattr *info, *data, *peer_attr;
	struct ifinfomsg peer_ifi = { .ifi_family = AF_UNSPEC };

	ifi->ifi_family = AF_UNSPEC;
	netlink_put_str(&m, IFLA_IFNAME, name);
	info = netlink_nest_begin(&m, IFLA_LINKINFO);
	netlink_put_str(&m, IFLA_INFO_KIND, "veth");
	data = netlink_nest_begin(&m, IFLA_INFO_DATA);
	peer_attr = netlink_put(&m, VETH_INFO_PEER, &peer_ifi, sizeof(peer_ifi));
	netlink_put_str(&m, IFLA_IFNAME, peer);
	netlink_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)peer_ns);
	netlink_nest_end(&m, peer_attr);
	netlink_nest_end(&m, data);
	netlink_nest_end(&m, info);
	return netlink_call(nl, &m, NULL, NULL);
}

struct link_query {
	const char *name;
	uint8_t *mac;
	uint32_t mtu;
	bool up, found;
	int ifindex;
};

static int link_cb(const struct nlmsghdr *h, void *arg)
{
	struct link_query *q = arg;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *tb[IFLA_MAX + 1];

	netlink_attrs(h, sizeof(*ifi), tb, IFLA_MAX);
	if (!tb[IFLA_IFNAME] || strcmp(RTA_DATA(tb[IFLA_IFNAME]), q->name))
		return 0;
	q->found = true;
	q->ifindex = ifi->ifi_index;
	q->up = ifi->ifi_flags & IFF_UP;
	q->mtu = netlink_attr_u32(tb[IFLA_MTU], 0);
	if (q->mac && tb[IFLA_ADDRESS] && RTA_PAYLOAD(tb[IFLA_ADDRESS]) == 6)
		memcpy(q->mac, RTA_DATA(tb[IFLA_ADDRESS]), 6);
	return 0;
}

static int link_query(int nl, struct link_query *q)
{
	struct netlink_msg m;

	netlink_msg_init(&m, RTM_GETLINK, NLM_F_DUMP, sizeof(struct ifinfomsg));
	return netlink_call(nl, &m, link_cb, q);
}

int fixture_link_info(int nl, const char *name, uint8_t mac[6], uint32_t *mtu, bool *up)
{
	struct link_query q = { .name = name, .mac = mac };
	int r = link_query(nl, &q);

	if (r < 0)
		return r;
	if (!q.found)
		return -ENODEV;
	if (mtu)
		*mtu = q.mtu;
	if (up)
		*up = q.up;
	return q.ifindex;
}

int fixture_setup(struct netns_fixture *f, const char *eth0_name)
{
	int r;

	memset(f, 0, sizeof(*f));
	f->peer_ns = f->container_ns = f->nl = f->peer_nl = -1;
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	f->peer_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	f->peer_nl = netlink_open();
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	f->container_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	f->nl = netlink_open();
	if (f->peer_ns < 0 || f->container_ns < 0 || f->nl < 0 || f->peer_nl < 0)
		return -EIO;
	r = fixture_veth(f->nl, eth0_name, "peer0", f->peer_ns);
	if (r < 0)
		return r;
	f->eth0 = fixture_link_info(f->nl, eth0_name, f->eth0_mac, NULL, NULL);
	f->peer0 = fixture_link_info(f->peer_nl, "peer0", f->peer0_mac, NULL, NULL);
	if (f->eth0 < 0 || f->peer0 < 0)
		return -ENODEV;
	return fixture_link_up(f->peer_nl, f->peer0, 0);
}

void fixture_teardown(struct netns_fixture *f)
{
	if (f->nl >= 0)
		close(f->nl);
	if (f->peer_nl >= 0)
		close(f->peer_nl);
	if (f->peer_ns >= 0)
		close(f->peer_ns);
	if (f->container_ns >= 0)
		close(f->container_ns);
}

int fixture_link_up(int nl, int ifindex, uint32_t mtu)
{
	struct netlink_msg m;
	struct ifinfomsg *ifi = netlink_msg_init(&m, RTM_NEWLINK, NLM_F_ACK, sizeof(*ifi));

	ifi->ifi_index = ifindex;
	ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	if (mtu)
		netlink_put_u32(&m, IFLA_MTU, mtu);
	return netlink_call(nl, &m, NULL, NULL);
}

int fixture_addr_add(int nl, int ifindex, uint32_t addr, unsigned int prefix)
{
	struct netlink_msg m;
	struct ifaddrmsg *ifa = netlink_msg_init(
		&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, sizeof(*ifa));
	uint32_t be = htonl(addr);

	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_index = ifindex;
	netlink_put(&m, IFA_LOCAL, &be, 4);
	netlink_put(&m, IFA_ADDRESS, &be, 4);
	return netlink_call(nl, &m, NULL, NULL);
}

int fixture_route_add(int nl, uint32_t dst, unsigned int prefix, uint32_t gateway, int oif,
		      uint32_t metric)
{
	struct netlink_msg m;
	struct rtmsg *rtm = netlink_msg_init(&m, RTM_NEWROUTE,
					     NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, sizeof(*rtm));
	uint32_t be;

	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (prefix) {
		be = htonl(dst);
		netlink_put(&m, RTA_DST, &be, 4);
	}
	if (gateway) {
		be = htonl(gateway);
		netlink_put(&m, RTA_GATEWAY, &be, 4);
	}
	netlink_put_u32(&m, RTA_OIF, (uint32_t)oif);
	if (metric)
		netlink_put_u32(&m, RTA_PRIORITY, metric);
	return netlink_call(nl, &m, NULL, NULL);
}

int fixture_qdisc_add_ingress(int nl, int ifindex)
{
	struct netlink_msg m;
	struct tcmsg *tcm = netlink_msg_init(&m, RTM_NEWQDISC,
					     NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, sizeof(*tcm));

	tcm->tcm_ifindex = ifindex;
	tcm->tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0);
	tcm->tcm_parent = TC_H_INGRESS;
	netlink_put_str(&m, TCA_KIND, "ingress");
	return netlink_call(nl, &m, NULL, NULL);
}

struct tc_query {
	int ifindex;
	const char *kind;
	int count;
};

static int tc_cb(const struct nlmsghdr *h, void *arg)
{
	struct tc_query *q = arg;
	const struct tcmsg *tcm = NLMSG_DATA(h);
	const struct rtattr *tb[TCA_MAX + 1];

	netlink_attrs(h, sizeof(*tcm), tb, TCA_MAX);
	if (tcm->tcm_ifindex == q->ifindex && tb[TCA_KIND] &&
	    !strcmp(RTA_DATA(tb[TCA_KIND]), q->kind))
		q->count++;
	return 0;
}

int fixture_qdisc_count(int nl, int ifindex, const char *kind)
{
	struct netlink_msg m;
	struct tc_query q = { ifindex, kind, 0 };
	struct tcmsg *tcm = netlink_msg_init(&m, RTM_GETQDISC, NLM_F_DUMP, sizeof(*tcm));
	int r;

	tcm->tcm_ifindex = ifindex;
	r = netlink_call(nl, &m, tc_cb, &q);
	return r < 0 ? r : q.count;
}

int fixture_filter_count(int nl, int ifindex, const char *kind)
{
	struct netlink_msg m;
	struct tc_query q = { ifindex, kind, 0 };
	struct tcmsg *tcm = netlink_msg_init(&m, RTM_GETTFILTER, NLM_F_DUMP, sizeof(*tcm));
	int r;

	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_MAKE(TC_H_INGRESS, 0);
	r = netlink_call(nl, &m, tc_cb, &q);
	return r < 0 ? r : q.count;
}

static int tap_cb(const struct nlmsghdr *h, void *arg)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *tb[IFLA_MAX + 1], *rta;
	int *count = arg, len;

	netlink_attrs(h, sizeof(*ifi), tb, IFLA_MAX);
	if (!tb[IFLA_LINKINFO])
		return 0;
	len = RTA_PAYLOAD(tb[IFLA_LINKINFO]);
	for (rta = RTA_DATA(tb[IFLA_LINKINFO]); RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type == IFLA_INFO_KIND && !strcmp(RTA_DATA(rta), "tun"))
			(*count)++;
	return 0;
}

int fixture_tap_count(int nl)
{
	struct netlink_msg m;
	int count = 0, r;

	netlink_msg_init(&m, RTM_GETLINK, NLM_F_DUMP, sizeof(struct ifinfomsg));
	r = netlink_call(nl, &m, tap_cb, &count);
	return r < 0 ? r : count;
}

struct ip_query {
	int ifindex;
	uint32_t addr, gateway;
	unsigned int prefix;
	bool found;
};

static int addr_cb(const struct nlmsghdr *h, void *arg)
{
	struct ip_query *q = arg;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct rtattr *tb[IFA_MAX + 1];
	uint32_t be = htonl(q->addr);

	netlink_attrs(h, sizeof(*ifa), tb, IFA_MAX);
	if (ifa->ifa_family == AF_INET && (int)ifa->ifa_index == q->ifindex &&
	    ifa->ifa_prefixlen == q->prefix && tb[IFA_LOCAL] &&
	    !memcmp(RTA_DATA(tb[IFA_LOCAL]), &be, 4))
		q->found = true;
	return 0;
}

bool fixture_has_addr(int nl, int ifindex, uint32_t addr, unsigned int prefix)
{
	struct netlink_msg m;
	struct ip_query q = { ifindex, addr, 0, prefix, false };
	struct ifaddrmsg *ifa = netlink_msg_init(&m, RTM_GETADDR, NLM_F_DUMP, sizeof(*ifa));

	ifa->ifa_family = AF_INET;
	return netlink_call(nl, &m, addr_cb, &q) == 0 && q.found;
}

static uint32_t attr_ip(const struct rtattr *rta)
{
	uint32_t v = 0;

	if (rta && RTA_PAYLOAD(rta) == 4)
		memcpy(&v, RTA_DATA(rta), 4);
	return ntohl(v);
}

static int route_cb(const struct nlmsghdr *h, void *arg)
{
	struct ip_query *q = arg;
	const struct rtmsg *rtm = NLMSG_DATA(h);
	const struct rtattr *tb[RTA_MAX + 1];

	netlink_attrs(h, sizeof(*rtm), tb, RTA_MAX);
	if (rtm->rtm_family == AF_INET && rtm->rtm_dst_len == q->prefix &&
	    attr_ip(tb[RTA_DST]) == q->addr && attr_ip(tb[RTA_GATEWAY]) == q->gateway &&
	    (int)netlink_attr_u32(tb[RTA_OIF], 0) == q->ifindex)
		q->found = true;
	return 0;
}

bool fixture_has_route(int nl, uint32_t dst, unsigned int prefix, uint32_t gateway, int oif)
{
	struct netlink_msg m;
	struct ip_query q = { oif, dst, gateway, prefix, false };
	struct rtmsg *rtm = netlink_msg_init(&m, RTM_GETROUTE, NLM_F_DUMP, sizeof(*rtm));

	rtm->rtm_family = AF_INET;
	return netlink_call(nl, &m, route_cb, &q) == 0 && q.found;
}

int fixture_packet_socket(int ifindex)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = ifindex };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

size_t fixture_frame(uint8_t *buf, const uint8_t dst[6], const uint8_t src[6], const char *payload)
{
	size_t len = strlen(payload);

	memcpy(buf, dst, 6);
	memcpy(buf + 6, src, 6);
	buf[12] = FIXTURE_ETHERTYPE >> 8;
	buf[13] = FIXTURE_ETHERTYPE & 0xff;
	memcpy(buf + 14, payload, len);
	len += 14;
	while (len < 60) /* the Ethernet minimum, without FCS */
		buf[len++] = 0;
	return len;
}

bool fixture_wait_frame(int fd, const char *payload, int ms)
{
	struct timespec start, now;
	size_t plen = strlen(payload);
	uint8_t buf[2048];

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;
		int left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - (int)((now.tv_sec - start.tv_sec) * 1000 +
				  (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return false;
		n = read(fd, buf, sizeof(buf));
		if (n >= (ssize_t)(14 + plen) && buf[12] == FIXTURE_ETHERTYPE >> 8 &&
		    buf[13] == (FIXTURE_ETHERTYPE & 0xff) && !memcmp(buf + 14, payload, plen))
			return true;
	}
}
