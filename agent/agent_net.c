/*
 * NETWORK (protocol 1.4, docs/networking.md): the guest's side of a container's network
 * namespace. The host made one virtio-net NIC per interface of the namespace, with that
 * interface's MAC; here each NIC is found by its MAC, renamed to the interface's name, given
 * its MTU and IPv4 addresses and brought up with lo, then the namespace's routes are added.
 * All of it in the agent's own network namespace, the VM's root one, where the NICs are: the
 * container that asked for that namespace runs in it (the host drops its network entry from
 * CREATE's config, runtime/netns.c). Everything in the request is checked before the first
 * change, and every error names the interface or route. Raw rtnetlink (common/netlink.h).
 */
#include <arpa/inet.h>
#include <net/if.h> /* before the linux/ headers, which then skip their copy of it */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_arp.h>

#include "agent_internal.h"
#include "common/netlink.h"

#define NET_TMP_NAME "stnic%u" /* while names are swapped between NICs */

/* A printable IPv4 (host order in the protocol). */
static const char *ip_str(uint32_t ip, char buf[INET_ADDRSTRLEN])
{
	uint32_t be = htonl(ip);

	return inet_ntop(AF_INET, &be, buf, INET_ADDRSTRLEN);
}

/* The netmask of a prefix length, 0 to 32 (checked first: anything else is a bad request). */
static uint32_t prefix_mask(uint32_t prefix)
{
	return prefix == 0 ? 0 : prefix >= 32 ? ~0u : ~0u << (32 - prefix);
}

static bool ifname_ok(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > AGENT_MAX_IFNAME || !strcmp(name, ".") || !strcmp(name, "..") ||
	    !strcmp(name, "lo"))
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static int net_check(const struct agent_network *n, char *err, size_t err_len)
{
	char ip[INET_ADDRSTRLEN];

	for (uint32_t i = 0; i < n->ifaces.n; i++) {
		const struct agent_net_iface *it = &n->ifaces.v[i];

		if (it->mac.n != AGENT_NET_MAC_LEN) {
			snprintf(err, err_len,
				 "NETWORK: interfaces[%u] (%s): a MAC of %u bytes, not %d", i,
				 it->name, it->mac.n, AGENT_NET_MAC_LEN);
			return -EINVAL;
		}
		if (!ifname_ok(it->name)) {
			snprintf(err, err_len,
				 "NETWORK: interfaces[%u].name \"%s\": not a valid "
				 "interface name",
				 i, it->name);
			return -EINVAL;
		}
		if (it->mtu && (it->mtu < 68 || it->mtu > 65535)) {
			snprintf(err, err_len,
				 "NETWORK: interfaces[%u] (%s): MTU %u: not 68 to 65535", i,
				 it->name, it->mtu);
			return -EINVAL;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (!strcmp(n->ifaces.v[j].name, it->name) ||
			    !memcmp(n->ifaces.v[j].mac.v, it->mac.v, AGENT_NET_MAC_LEN)) {
				snprintf(err, err_len,
					 "NETWORK: interfaces[%u] (%s): the same name or "
					 "MAC as interfaces[%u]",
					 i, it->name, j);
				return -EINVAL;
			}
		}
	}
	for (uint32_t i = 0; i < n->addrs.n; i++) {
		const struct agent_net_addr *ad = &n->addrs.v[i];

		if (ad->iface >= n->ifaces.n || ad->prefix > 32 || !ad->addr) {
			snprintf(err, err_len,
				 "NETWORK: addresses[%u] (%s/%u on interface %u of %u): "
				 "invalid",
				 i, ip_str(ad->addr, ip), ad->prefix, ad->iface, n->ifaces.n);
			return -EINVAL;
		}
	}
	for (uint32_t i = 0; i < n->routes.n; i++) {
		const struct agent_net_route *rt = &n->routes.v[i];
		if (rt->iface >= n->ifaces.n || rt->prefix > 32 ||
		    (rt->dst & ~prefix_mask(rt->prefix))) {
			snprintf(err, err_len,
				 "NETWORK: routes[%u] (%s/%u on interface %u of %u): "
				 "invalid",
				 i, ip_str(rt->dst, ip), rt->prefix, rt->iface, n->ifaces.n);
			return -EINVAL;
		}
	}
	return 0;
}

/* The guest's links by MAC: ifindex[i] for ifaces[i], 0 when no NIC has its MAC. */
struct net_links {
	const struct agent_network *n;
	int ifindex[AGENT_MAX_NET_IFACES];
	char name[AGENT_MAX_NET_IFACES][IF_NAMESIZE];
};

static int links_cb(const struct nlmsghdr *h, void *arg)
{
	struct net_links *l = arg;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct rtattr *tb[IFLA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return 0;
	netlink_attrs(h, sizeof(*ifi), tb, IFLA_MAX);
	if (ifi->ifi_type != ARPHRD_ETHER || !tb[IFLA_ADDRESS] || !tb[IFLA_IFNAME] ||
	    RTA_PAYLOAD(tb[IFLA_ADDRESS]) != AGENT_NET_MAC_LEN)
		return 0;
	for (uint32_t i = 0; i < l->n->ifaces.n; i++) {
		if (memcmp(RTA_DATA(tb[IFLA_ADDRESS]), l->n->ifaces.v[i].mac.v, AGENT_NET_MAC_LEN))
			continue;
		l->ifindex[i] = ifi->ifi_index;
		snprintf(l->name[i], IF_NAMESIZE, "%.*s", (int)RTA_PAYLOAD(tb[IFLA_IFNAME]),
			 (const char *)RTA_DATA(tb[IFLA_IFNAME]));
	}
	return 0;
}

/* Set a link: up or down (flags), a new name, an MTU (NULL/0: unchanged). */
static int link_set(int nl, int ifindex, bool up, const char *name, uint32_t mtu)
{
	struct netlink_msg m;
	struct ifinfomsg *ifi = netlink_msg_init(&m, RTM_NEWLINK, NLM_F_ACK, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = up ? IFF_UP : 0;
	ifi->ifi_change = IFF_UP;
	if (name)
		netlink_put_str(&m, IFLA_IFNAME, name);
	if (mtu)
		netlink_put_u32(&m, IFLA_MTU, mtu);
	return netlink_call(nl, &m, NULL, NULL);
}

static int addr_add(int nl, int ifindex, const struct agent_net_addr *ad)
{
	struct netlink_msg m;
	struct ifaddrmsg *ifa = netlink_msg_init(
		&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK, sizeof(*ifa));
	uint32_t local = htonl(ad->addr);

	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = ad->prefix;
	ifa->ifa_index = ifindex;
	netlink_put(&m, IFA_LOCAL, &local, 4);
	netlink_put(&m, IFA_ADDRESS, &local, 4);
	if (ad->prefix < 31) { /* as `ip addr add ... brd +` */
		uint32_t brd = htonl(ad->addr | ~prefix_mask(ad->prefix));

		netlink_put(&m, IFA_BROADCAST, &brd, 4);
	}
	return netlink_call(nl, &m, NULL, NULL);
}

static int route_add(int nl, int ifindex, const struct agent_net_route *rt)
{
	struct netlink_msg m;
	struct rtmsg *rtm = netlink_msg_init(
		&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK, sizeof(*rtm));
	uint32_t be;

	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = rt->prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = rt->gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (rt->prefix) {
		be = htonl(rt->dst);
		netlink_put(&m, RTA_DST, &be, 4);
	}
	if (rt->gateway) {
		be = htonl(rt->gateway);
		netlink_put(&m, RTA_GATEWAY, &be, 4);
	}
	netlink_put_u32(&m, RTA_OIF, (uint32_t)ifindex);
	if (rt->metric)
		netlink_put_u32(&m, RTA_PRIORITY, rt->metric);
	return netlink_call(nl, &m, NULL, NULL);
}

/* Find the NICs, then names (through temporary ones: two NICs may swap), MTU, up. */
static int net_links(int nl, struct net_links *l, char *err, size_t err_len)
{
	const struct agent_network *n = l->n;
	struct netlink_msg m;
	char tmp[IF_NAMESIZE];
	int r;

	netlink_msg_init(&m, RTM_GETLINK, NLM_F_DUMP, sizeof(struct ifinfomsg));
	r = netlink_call(nl, &m, links_cb, l);
	if (r < 0) {
		snprintf(err, err_len, "NETWORK: listing the guest's links: %s", strerror(-r));
		return r;
	}
	for (uint32_t i = 0; i < n->ifaces.n; i++) {
		const uint8_t *mac = n->ifaces.v[i].mac.v;

		if (l->ifindex[i])
			continue;
		snprintf(err, err_len,
			 "NETWORK: interfaces[%u] (%s): no NIC with MAC "
			 "%02x:%02x:%02x:%02x:%02x:%02x in the guest",
			 i, n->ifaces.v[i].name, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		return -ENODEV;
	}
	for (uint32_t i = 0; i < n->ifaces.n; i++) {
		if (!strcmp(l->name[i], n->ifaces.v[i].name))
			continue;
		snprintf(tmp, sizeof(tmp), NET_TMP_NAME, i % AGENT_MAX_NET_IFACES);
		r = link_set(nl, l->ifindex[i], false, tmp, 0);
		if (r < 0) {
			snprintf(err, err_len, "NETWORK: interfaces[%u] (%s): renaming %s: %s", i,
				 n->ifaces.v[i].name, l->name[i], strerror(-r));
			return r;
		}
	}
	for (uint32_t i = 0; i < n->ifaces.n; i++) {
		const struct agent_net_iface *it = &n->ifaces.v[i];
		bool rename = strcmp(l->name[i], it->name);

		r = link_set(nl, l->ifindex[i], true, rename ? it->name : NULL, it->mtu);
		if (r < 0) {
			snprintf(err, err_len, "NETWORK: interfaces[%u] (%s): %s, MTU %u, up: %s",
				 i, it->name, rename ? "naming it" : "setting", it->mtu,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

static int net_addresses_routes(int nl, const struct net_links *l, char *err, size_t err_len)
{
	const struct agent_network *n = l->n;
	char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
	int r;

	for (uint32_t i = 0; i < n->addrs.n; i++) {
		const struct agent_net_addr *ad = &n->addrs.v[i];

		r = addr_add(nl, l->ifindex[ad->iface], ad);
		if (r < 0) {
			snprintf(err, err_len, "NETWORK: addresses[%u] (%s/%u on %s): %s", i,
				 ip_str(ad->addr, ip), ad->prefix, n->ifaces.v[ad->iface].name,
				 strerror(-r));
			return r;
		}
	}
	/* Link routes first: a gateway must be reachable when its route is added. */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < n->routes.n; i++) {
			const struct agent_net_route *rt = &n->routes.v[i];

			if ((rt->gateway != 0) != (pass == 1))
				continue;
			r = route_add(nl, l->ifindex[rt->iface], rt);
			if (r < 0) {
				snprintf(err, err_len, "NETWORK: routes[%u] (%s/%u%s%s dev %s): %s",
					 i, ip_str(rt->dst, ip), rt->prefix,
					 rt->gateway ? " via " : "",
					 rt->gateway ? ip_str(rt->gateway, gw) : "",
					 n->ifaces.v[rt->iface].name, strerror(-r));
				return r;
			}
		}
	}
	return 0;
}

int net_apply(const struct agent_network *n, char *err, size_t err_len)
{
	struct net_links l = { .n = n };
	int nl, r = net_check(n, err, err_len);

	if (r < 0)
		return r;
	nl = netlink_open();
	if (nl < 0) {
		snprintf(err, err_len, "NETWORK: rtnetlink: %s", strerror(-nl));
		return nl;
	}
	r = net_links(nl, &l, err, err_len);
	if (r == 0) {
		r = link_set(nl, (int)if_nametoindex("lo"), true, NULL, 0);
		if (r < 0)
			snprintf(err, err_len, "NETWORK: lo: up: %s", strerror(-r));
	}
	if (r == 0)
		r = net_addresses_routes(nl, &l, err, err_len);
	close(nl);
	return r;
}

void net_do_network(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m)
{
	struct agent_msg reply = { .type = m->type, .flags = AGENT_FLAG_REPLY, .id = m->id };
	char err[AGENT_MAX_ERROR_MSG];
	int r;

	if (a->dry_run)
		r = net_check(&m->u.network, err, sizeof(err));
	else
		r = net_apply(&m->u.network, err, sizeof(err));
	if (r < 0)
		return ctl_send_error(a, conn, m, -r, "%s", err);
	/* The VM's namespace now has the container's network: never lent as an empty one. */
	if (m->u.network.ifaces.n)
		a->vm_net = false;
	agent_trace("network: %u interfaces, %u addresses, %u routes", m->u.network.ifaces.n,
		    m->u.network.addrs.n, m->u.network.routes.n);
	ctl_send(a, conn, &reply);
}
