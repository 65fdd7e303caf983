/*
 * A container's network namespace carried into its VM (docs/networking.md): the host side of
 * Kata's "tcfilter" model. In the namespace named by config.json's network path (made by
 * podman/CNI, a CRI runtime or a test), netns_plan() lists the links, IPv4 addresses and the
 * main table's IPv4 routes; for each non-loopback Ethernet link that is up it creates a tap
 * (IFF_TAP|IFF_NO_PI), brings it up with the link's MTU, and adds an ingress qdisc on both
 * with a u32 match-all filter whose mirred action redirects every frame to the other's
 * egress. The tap fds become the VM's virtio-net backends and the agent's NETWORK request
 * (proto/agent_proto.h) describes the rest. The taps vanish when the last fd closes (the
 * monitor's, when the VM ends); netns_teardown() removes the ingress qdiscs from the links.
 * All of it is raw rtnetlink (common/netlink.h) from a short-lived thread that entered the
 * namespace: the calling thread never changes namespace.
 */
#ifndef STRATUS_RUNTIME_NETNS_H
#define STRATUS_RUNTIME_NETNS_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"
#include "common/error.h"
#include "oci_spec.h"

/* The file of a container's state directory that records its plan for delete. */
#define NETNS_RECORD "network"

/* One link of the namespace carried into the VM. */
struct netns_iface {
	char name[IF_NAMESIZE];
	int ifindex; /* in the namespace */
	uint8_t mac[AGENT_NET_MAC_LEN];
	uint32_t mtu;
	char tap_name[IF_NAMESIZE];
	int tap_ifindex;
	int tap_fd; /* -1 once given away or closed */
};

struct netns_plan {
	struct netns_iface *ifaces;
	size_t n_ifaces;
	struct agent_net_iface *net_ifaces; /* the NETWORK request's views of ifaces */
	struct agent_net_addr *addrs;
	size_t n_addrs;
	struct agent_net_route *routes;
	size_t n_routes;
	size_t n_skipped_ipv6;	/* IPv6 addresses and routes: not carried (no IPv6 in the guest) */
	size_t n_skipped_links; /* up links that are neither Ethernet nor loopback */
};

/*
 * List the namespace at path and, for each link carried, make its tap and the redirects.
 * Errors name the interface and the step; a failure leaves nothing behind. A namespace with
 * only lo gives a plan of no interface (and makes nothing).
 */
int netns_plan(const char *path, struct netns_plan *plan, struct error *err);

/* The NETWORK request's body: views into plan, valid while it lives. */
void netns_plan_network(const struct netns_plan *plan, struct agent_network *out);

/* Close the taps still held (they vanish) and free the plan. */
void netns_plan_destroy(struct netns_plan *plan);

/*
 * Remove the ingress qdiscs (and with them the filters) from the links named (ifindex and
 * name, both must match) in the namespace at path. A namespace or link that is gone already,
 * or a link without the qdisc, is not an error.
 */
int netns_teardown(const char *path, const struct netns_iface *ifaces, size_t n, struct error *err);

/*
 * The plan recorded in a file (of the container's state directory) for netns_teardown at
 * delete: the path, then one "ifindex name" line per link.
 */
int netns_record_write(const char *file, const char *path, const struct netns_plan *plan,
		       struct error *err);
/* Tear down what file records; no file: nothing to do. */
int netns_record_teardown(const char *file, struct error *err);

/*
 * netns_config.c: config.json's network namespace path (linux.namespaces[*index]), or NULL;
 * whether it is one (errors name the JSON path); and the config the agent gets, without the
 * path: the whole entry dropped when interfaces are carried (the container runs in the VM's
 * own namespace, where its NICs are), else the entry kept without its path.
 */
const char *netns_spec_path(const struct oci_spec *spec, size_t *index);
int netns_check(const char *path, size_t index, struct error *err);
int netns_agent_config(const char *config, size_t len, bool drop, char **out, struct error *err);

#endif
