/*
 * The agent's NETWORK (agent/agent_net.c), natively as root in network namespaces of the
 * test's own (skipped where unshare is not permitted): veth ends named as virtio NICs come up
 * in a guest (ens3, ens4) stand for the guest's NICs, their peers for the host. NETWORK finds
 * each by MAC, renames it (two NICs swapping names), sets the MTU, the addresses (with their
 * broadcast), lo and the links up and the routes (link routes before those via a gateway);
 * then a UDP datagram from this namespace reaches a socket on the peer's side. The same
 * request again changes nothing and succeeds. Refusals name the interface, address or route:
 * a MAC of 5 bytes, no NIC with the MAC, a bad name, the same name twice, an address on an
 * interface past the list, a route with host bits, a gateway nothing reaches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent_internal.h"
#include "netns_fixture.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static struct netns_fixture fx;
static int setup_error, ens4, peer1;
static uint8_t ens4_mac[6];

static int group_setup(void **state)
{
	(void)state;
	setup_error = fixture_setup(&fx, "ens3");
	if (setup_error == 0)
		setup_error = fixture_veth(fx.nl, "ens4", "peer1", fx.peer_ns);
	if (setup_error < 0) {
		fprintf(stderr, "test_agent_net: network namespaces with veth pairs: %s: skipped\n",
			strerror(-setup_error));
		return 0;
	}
	ens4 = fixture_link_info(fx.nl, "ens4", ens4_mac, NULL, NULL);
	peer1 = fixture_link_info(fx.peer_nl, "peer1", NULL, NULL, NULL);
	assert_true(ens4 > 0 && peer1 > 0);
	/* The host's side: 10.88.0.1/24 on peer0. */
	assert_int_equal(fixture_addr_add(fx.peer_nl, fx.peer0, IP(10, 88, 0, 1), 24), 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fixture_teardown(&fx);
	return 0;
}

#define REQUIRE_NETNS()              \
	do {                         \
		if (setup_error < 0) \
			skip();      \
	} while (0)

/* ens3 becomes eth1 and ens4 eth0 ... then, swapped, the names the host gave. */
static void test_network_configures_the_nics(void **state)
{
	struct agent_net_iface ifaces[] = {
		{ { fx.eth0_mac, 6 }, "eth0", 1400 },
		{ { ens4_mac, 6 }, "eth1", 0 },
	};
	struct agent_net_addr addrs[] = { { 0, IP(10, 88, 0, 2), 24 },
					  { 1, IP(172, 20, 0, 5), 16 } };
	struct agent_net_route routes[] = {
		{ 0, 0, 0, IP(10, 88, 0, 1), 0 },		     /* default via the host */
		{ 0, IP(192, 168, 60, 0), 24, IP(10, 88, 0, 1), 5 }, /* via, with a metric */
		{ 1, IP(198, 51, 100, 0), 24, 0, 0 },		     /* a link route */
	};
	struct agent_network n = { { ifaces, 2 }, { addrs, 2 }, { routes, 3 } };
	char err[AGENT_MAX_ERROR_MSG] = "";
	uint8_t mac[6];
	uint32_t mtu;
	bool up;
	int eth0, eth1;

	(void)state;
	REQUIRE_NETNS();
	/* First the names crosswise: ens3 -> eth1, ens4 -> eth0. */
	ifaces[0].name = "eth1", ifaces[1].name = "eth0";
	assert_int_equal(net_apply(&n, err, sizeof(err)), 0);
	assert_int_equal(fixture_link_info(fx.nl, "eth1", mac, NULL, NULL), fx.eth0);
	assert_int_equal(fixture_link_info(fx.nl, "eth0", NULL, NULL, NULL), ens4);
	/* Then swapped: each NIC found by its MAC again. */
	ifaces[0].name = "eth0", ifaces[1].name = "eth1";
	assert_int_equal(net_apply(&n, err, sizeof(err)), 0);
	eth0 = fixture_link_info(fx.nl, "eth0", mac, &mtu, &up);
	assert_int_equal(eth0, fx.eth0);
	assert_memory_equal(mac, fx.eth0_mac, 6);
	assert_int_equal(mtu, 1400);
	assert_true(up);
	eth1 = fixture_link_info(fx.nl, "eth1", mac, &mtu, &up);
	assert_int_equal(eth1, ens4);
	assert_memory_equal(mac, ens4_mac, 6);
	assert_int_equal(mtu, 1500); /* 0: left as it was */
	assert_true(up);
	assert_true(fixture_link_info(fx.nl, "lo", NULL, NULL, &up) > 0 && up);
	assert_true(fixture_has_addr(fx.nl, eth0, IP(10, 88, 0, 2), 24));
	assert_true(fixture_has_addr(fx.nl, eth1, IP(172, 20, 0, 5), 16));
	assert_true(fixture_has_route(fx.nl, 0, 0, IP(10, 88, 0, 1), eth0));
	assert_true(fixture_has_route(fx.nl, IP(192, 168, 60, 0), 24, IP(10, 88, 0, 1), eth0));
	assert_true(fixture_has_route(fx.nl, IP(198, 51, 100, 0), 24, 0, eth1));
	assert_false(fixture_has_route(fx.nl, 0, 0, IP(10, 88, 0, 1), eth1));

	/* It works: a datagram from here to the host's side of the veth. */
	struct sockaddr_in host = { .sin_family = AF_INET,
				    .sin_port = htons(5555),
				    .sin_addr.s_addr = htonl(IP(10, 88, 0, 1)) };
	struct pollfd p;
	char buf[32] = "";
	int rx, tx;

	assert_int_equal(setns(fx.peer_ns, CLONE_NEWNET), 0);
	rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(rx, (struct sockaddr *)&host, sizeof(host)), 0);
	assert_int_equal(setns(fx.container_ns, CLONE_NEWNET), 0);
	tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(sendto(tx, "hello-host", 10, 0, (struct sockaddr *)&host, sizeof(host)),
			 10);
	p = (struct pollfd){ rx, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(recv(rx, buf, sizeof(buf) - 1, 0), 10);
	assert_string_equal(buf, "hello-host");
	close(rx);
	close(tx);

	/* The same request once more: nothing to change, no error. */
	assert_int_equal(net_apply(&n, err, sizeof(err)), 0);
	assert_int_equal(fixture_link_info(fx.nl, "eth0", NULL, NULL, NULL), fx.eth0);
}

static void expect_refusal(const struct agent_network *n, int e, const char *msg)
{
	char err[AGENT_MAX_ERROR_MSG] = "";

	assert_int_equal(net_apply(n, err, sizeof(err)), e);
	if (!strstr(err, msg))
		fail_msg("\"%s\" is not in \"%s\"", msg, err);
}

static void test_refusals_name_the_field(void **state)
{
	uint8_t nobody[6] = { 0x02, 0xde, 0xad, 0xbe, 0xef, 0x01 };
	struct agent_net_iface ifaces[2] = { { { fx.eth0_mac, 6 }, "eth0", 0 },
					     { { ens4_mac, 6 }, "eth1", 0 } };
	struct agent_net_addr addr = { 1, IP(10, 0, 0, 1), 8 };
	struct agent_net_route route = { 0, IP(10, 0, 0, 1), 8, 0, 0 };
	struct agent_network n = { { ifaces, 1 }, { NULL, 0 }, { NULL, 0 } };

	(void)state;
	REQUIRE_NETNS();
	ifaces[0].mac.n = 5;
	expect_refusal(&n, -EINVAL, "interfaces[0] (eth0): a MAC of 5 bytes, not 6");
	ifaces[0].mac = (typeof(ifaces[0].mac)){ nobody, 6 };
	expect_refusal(&n, -ENODEV,
		       "interfaces[0] (eth0): no NIC with MAC 02:de:ad:be:ef:01 in the guest");
	ifaces[0].mac = (typeof(ifaces[0].mac)){ fx.eth0_mac, 6 };
	ifaces[0].name = "a/b";
	expect_refusal(&n, -EINVAL, "interfaces[0].name \"a/b\": not a valid interface name");
	ifaces[0].name = "lo";
	expect_refusal(&n, -EINVAL, "interfaces[0].name \"lo\"");
	ifaces[0].name = "eth0", ifaces[1].name = "eth0";
	n.ifaces.n = 2;
	expect_refusal(&n, -EINVAL, "interfaces[1] (eth0): the same name or MAC as interfaces[0]");
	n.ifaces.n = 1;
	ifaces[0].mtu = 20;
	expect_refusal(&n, -EINVAL, "interfaces[0] (eth0): MTU 20: not 68 to 65535");
	ifaces[0].mtu = 0;
	n.addrs = (typeof(n.addrs)){ &addr, 1 };
	expect_refusal(&n, -EINVAL, "addresses[0] (10.0.0.1/8 on interface 1 of 1): invalid");
	n.addrs.n = 0;
	n.routes = (typeof(n.routes)){ &route, 1 };
	expect_refusal(&n, -EINVAL, "routes[0] (10.0.0.1/8 on interface 0 of 1): invalid");
	route.prefix = 40; /* past 32: refused, never shifted by (what the fuzzer found) */
	expect_refusal(&n, -EINVAL, "routes[0] (10.0.0.1/40 on interface 0 of 1): invalid");
	route = (struct agent_net_route){ 0, 0, 0, IP(203, 0, 113, 1), 0 };
	expect_refusal(&n, -ENETUNREACH, "routes[0] (0.0.0.0/0 via 203.0.113.1 dev eth0)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_network_configures_the_nics),
		cmocka_unit_test(test_refusals_name_the_field),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
