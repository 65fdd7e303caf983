/*
 * Network namespaces for the networking unit tests (test_netns.c, test_agent_net.c): the
 * test process leaves its namespace for a "peer" one and then a "container" one, joined by a
 * veth pair (no dummy module needed), and set up with rtnetlink (common/netlink.h); plus the
 * dumps the tests check with (qdiscs, filters, addresses, routes) and raw frames.
 */
#ifndef STRATUS_TESTS_NETNS_FIXTURE_H
#define STRATUS_TESTS_NETNS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct netns_fixture {
	int peer_ns, container_ns; /* namespace fds */
	int nl;			   /* rtnetlink in the container namespace */
	int peer_nl;		   /* rtnetlink in the peer namespace */
	int eth0, peer0;	   /* ifindex of the veth ends, each in its namespace */
	uint8_t eth0_mac[6], peer0_mac[6];
};

/*
 * Unshare twice (peer, then container: the process stays in the container namespace) and
 * make veth eth0 (container) / peer0 (peer, up). -errno if not permitted (the test skips).
 */
int fixture_setup(struct netns_fixture *f, const char *eth0_name);
void fixture_teardown(struct netns_fixture *f);

/* One more veth pair: name here, peer in peer_ns. */
int fixture_veth(int nl, const char *name, const char *peer, int peer_ns);
/* rtnetlink helpers: 0 or -errno. addr, dst, gateway: host-order IPv4. */
int fixture_link_up(int nl, int ifindex, uint32_t mtu);
int fixture_addr_add(int nl, int ifindex, uint32_t addr, unsigned int prefix);
int fixture_route_add(int nl, uint32_t dst, unsigned int prefix, uint32_t gateway, int oif,
		      uint32_t metric);
int fixture_qdisc_add_ingress(int nl, int ifindex);
/* How many qdiscs (filters) of kind the link has (on its ingress). */
int fixture_qdisc_count(int nl, int ifindex, const char *kind);
int fixture_filter_count(int nl, int ifindex, const char *kind);
/* How many tun/tap links the namespace of nl has. */
int fixture_tap_count(int nl);
/* Does the link have addr/prefix (IPv4)? Is there a route dst/prefix via gateway on oif? */
bool fixture_has_addr(int nl, int ifindex, uint32_t addr, unsigned int prefix);
bool fixture_has_route(int nl, uint32_t dst, unsigned int prefix, uint32_t gateway, int oif);
int fixture_link_info(int nl, const char *name, uint8_t mac[6], uint32_t *mtu, bool *up);

/* A raw packet socket on ifindex of the current namespace (ETH_P_ALL). */
int fixture_packet_socket(int ifindex);
/* A frame dst <- src, ethertype 0x88b5, with payload; into buf, its length. */
size_t fixture_frame(uint8_t *buf, const uint8_t dst[6], const uint8_t src[6], const char *payload);
/* Read fd (non-blocking ok) until a frame containing payload arrives: true, or false after ms. */
bool fixture_wait_frame(int fd, const char *payload, int ms);

#endif
