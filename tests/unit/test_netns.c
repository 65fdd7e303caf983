/*
 * The host side of container networking (runtime/netns.c), as root in network namespaces of
 * the test's own (skipped where unshare is not permitted): a container namespace holding
 * veth eth0 (an address, a default route and one more route) whose peer is in a second
 * namespace. The plan lists eth0 with its MAC, MTU, address and routes, and makes a tap with
 * ingress qdiscs and u32 filters on both; a frame written to the tap fd comes out of the
 * peer, and a frame sent into the peer arrives on the tap fd (the redirects work both ways).
 * Teardown leaves no qdisc, closing the fd no tap; the plan of a namespace with only lo is
 * empty; errors (no such path, not a network namespace, an ingress qdisc already there) name
 * what failed and leave nothing behind; the record file drives the same teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "netns.h"
#include "netns_fixture.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static struct netns_fixture fx;
static int setup_error;
static const char *ns_path = "/proc/self/ns/net";

static int group_setup(void **state)
{
	(void)state;
	setup_error = fixture_setup(&fx, "eth0");
	if (setup_error < 0) {
		fprintf(stderr, "test_netns: network namespaces with a veth pair: %s: skipped\n",
			strerror(-setup_error));
		return 0;
	}
	assert_int_equal(fixture_link_up(fx.nl, fx.eth0, 1400), 0);
	assert_int_equal(fixture_addr_add(fx.nl, fx.eth0, IP(10, 77, 0, 2), 24), 0);
	assert_int_equal(fixture_route_add(fx.nl, 0, 0, IP(10, 77, 0, 1), fx.eth0, 0), 0);
	assert_int_equal(
		fixture_route_add(fx.nl, IP(192, 168, 50, 0), 24, IP(10, 77, 0, 1), fx.eth0, 7), 0);
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

static void test_plan_redirects_both_ways(void **state)
{
	struct netns_plan p;
	struct agent_network net;
	struct error err = { 0 };
	uint8_t frame[128];
	size_t len;
	int pkt;

	(void)state;
	REQUIRE_NETNS();
	assert_int_equal(netns_plan(ns_path, &p, &err), 0);
	assert_int_equal(p.n_ifaces, 1);
	assert_string_equal(p.ifaces[0].name, "eth0");
	assert_int_equal(p.ifaces[0].ifindex, fx.eth0);
	assert_memory_equal(p.ifaces[0].mac, fx.eth0_mac, 6);
	assert_int_equal(p.ifaces[0].mtu, 1400);
	assert_true(p.ifaces[0].tap_fd >= 0);
	assert_true(p.ifaces[0].tap_ifindex > 0);
	assert_int_equal(p.n_addrs, 1);
	assert_int_equal(p.addrs[0].iface, 0);
	assert_int_equal(p.addrs[0].addr, IP(10, 77, 0, 2));
	assert_int_equal(p.addrs[0].prefix, 24);
	/* The default route and 192.168.50.0/24 (the kernel's 10.77.0.0/24 is not carried). */
	assert_int_equal(p.n_routes, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct agent_net_route *rt = &p.routes[i];

		assert_int_equal(rt->iface, 0);
		assert_int_equal(rt->gateway, IP(10, 77, 0, 1));
		if (rt->prefix == 0) {
			assert_int_equal(rt->dst, 0);
		} else {
			assert_int_equal(rt->dst, IP(192, 168, 50, 0));
			assert_int_equal(rt->prefix, 24);
			assert_int_equal(rt->metric, 7);
		}
	}
	netns_plan_network(&p, &net);
	assert_int_equal(net.ifaces.n, 1);
	assert_int_equal(net.ifaces.v[0].mac.n, 6);
	assert_memory_equal(net.ifaces.v[0].mac.v, fx.eth0_mac, 6);
	assert_string_equal(net.ifaces.v[0].name, "eth0");
	assert_int_equal(net.ifaces.v[0].mtu, 1400);
	assert_int_equal(net.addrs.n, 1);
	assert_int_equal(net.routes.n, 2);

	/* What the kernel now has: the tap up with eth0's MTU, qdiscs and filters on both. */
	uint32_t mtu = 0;
	bool up = false;

	assert_int_equal(fixture_link_info(fx.nl, p.ifaces[0].tap_name, NULL, &mtu, &up),
			 p.ifaces[0].tap_ifindex);
	assert_int_equal(mtu, 1400);
	assert_true(up);
	assert_int_equal(fixture_qdisc_count(fx.nl, fx.eth0, "ingress"), 1);
	assert_int_equal(fixture_qdisc_count(fx.nl, p.ifaces[0].tap_ifindex, "ingress"), 1);
	assert_true(fixture_filter_count(fx.nl, fx.eth0, "u32") >= 1);
	assert_true(fixture_filter_count(fx.nl, p.ifaces[0].tap_ifindex, "u32") >= 1);

	/* tap -> eth0 -> peer0: what the guest sends leaves by the veth. */
	assert_int_equal(setns(fx.peer_ns, CLONE_NEWNET), 0);
	pkt = fixture_packet_socket(fx.peer0);
	assert_int_equal(setns(fx.container_ns, CLONE_NEWNET), 0);
	assert_true(pkt >= 0);
	len = fixture_frame(frame, fx.peer0_mac, fx.eth0_mac, "guest-to-peer");
	assert_int_equal(write(p.ifaces[0].tap_fd, frame, len), len);
	assert_true(fixture_wait_frame(pkt, "guest-to-peer", 10000));
	/* peer0 -> eth0 -> tap: what reaches the veth goes to the guest. */
	len = fixture_frame(frame, fx.eth0_mac, fx.peer0_mac, "peer-to-guest");
	assert_int_equal(write(pkt, frame, len), len);
	assert_true(fixture_wait_frame(p.ifaces[0].tap_fd, "peer-to-guest", 10000));
	close(pkt);

	/* Teardown: no qdisc on eth0; the tap goes with its fd. */
	assert_int_equal(netns_teardown(ns_path, p.ifaces, p.n_ifaces, &err), 0);
	assert_int_equal(fixture_qdisc_count(fx.nl, fx.eth0, "ingress"), 0);
	assert_true(fixture_filter_count(fx.nl, fx.eth0, "u32") <= 0);
	netns_plan_destroy(&p);
	assert_int_equal(fixture_tap_count(fx.nl), 0);
	/* A second teardown finds nothing to remove, and says nothing. */
	struct netns_iface gone = { .name = "eth0", .ifindex = fx.eth0 };

	assert_int_equal(netns_teardown(ns_path, &gone, 1, &err), 0);
	assert_int_equal(err.code, 0);
}

/* podman --network none: only lo, nothing to carry, nothing made. */
static void test_only_loopback(void **state)
{
	struct netns_plan p;
	struct error err = { 0 };
	char path[64];
	int ready[2], hold[2];
	pid_t child;
	char c;

	(void)state;
	REQUIRE_NETNS();
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(ready[0]);
		close(hold[1]);
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1 || read(hold[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)child);
	assert_int_equal(netns_plan(path, &p, &err), 0);
	assert_int_equal(p.n_ifaces, 0);
	assert_int_equal(p.n_addrs, 0);
	assert_int_equal(p.n_routes, 0);
	netns_plan_destroy(&p);
	close(hold[1]);
	close(ready[0]);
	waitpid(child, NULL, 0);
}

static void test_errors_leave_nothing(void **state)
{
	struct netns_plan p;
	struct error err = { 0 };

	(void)state;
	REQUIRE_NETNS();
	assert_int_equal(netns_plan("/nonexistent/netns", &p, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/netns"));
	error_clear(&err);
	assert_int_equal(netns_plan("/proc/self/ns/uts", &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "/proc/self/ns/uts: not one we can enter"));
	error_clear(&err);
	/* eth0 has an ingress qdisc already: refused, naming it; no tap, the qdisc not ours. */
	assert_int_equal(fixture_qdisc_add_ingress(fx.nl, fx.eth0), 0);
	assert_int_equal(netns_plan(ns_path, &p, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "eth0: adding an ingress qdisc: it has one already"));
	error_clear(&err);
	assert_int_equal(fixture_tap_count(fx.nl), 0);
	assert_int_equal(fixture_qdisc_count(fx.nl, fx.eth0, "ingress"), 1);
	struct netns_iface eth0 = { .name = "eth0", .ifindex = fx.eth0 };

	assert_int_equal(netns_teardown(ns_path, &eth0, 1, &err), 0);
	assert_int_equal(fixture_qdisc_count(fx.nl, fx.eth0, "ingress"), 0);
	/* A link renamed since (its index reused by another name) is left alone. */
	struct netns_iface other = { .name = "eth9", .ifindex = fx.eth0 };

	assert_int_equal(fixture_qdisc_add_ingress(fx.nl, fx.eth0), 0);
	assert_int_equal(netns_teardown(ns_path, &other, 1, &err), 0);
	assert_int_equal(fixture_qdisc_count(fx.nl, fx.eth0, "ingress"), 1);
	assert_int_equal(netns_teardown(ns_path, &eth0, 1, &err), 0);
	/* A namespace gone before the teardown: nothing to do. */
	assert_int_equal(netns_teardown("/nonexistent/netns", &eth0, 1, &err), 0);
	assert_int_equal(err.code, 0);
}

/* What create records, delete tears down: the file names the path and the links. */
static void test_record_teardown(void **state)
{
	char dir[] = "/tmp/test_netns.XXXXXX", file[64];
	struct netns_plan p;
	struct error err = { 0 };

	(void)state;
	REQUIRE_NETNS();
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/network", dir);
	assert_int_equal(netns_record_teardown(file, &err), 0); /* no file: nothing */
	assert_int_equal(netns_plan(ns_path, &p, &err), 0);
	assert_int_equal(netns_record_write(file, ns_path, &p, &err), 0);
	netns_plan_destroy(&p);
	assert_int_equal(fixture_qdisc_count(fx.nl, fx.eth0, "ingress"), 1);
	assert_int_equal(netns_record_teardown(file, &err), 0);
	assert_int_equal(fixture_qdisc_count(fx.nl, fx.eth0, "ingress"), 0);
	assert_int_equal(access(file, F_OK), -1);
	assert_int_equal(fixture_tap_count(fx.nl), 0);
	rmdir(dir);
}

/* The agent's config: no host path; with interfaces no network entry at all. */
static void test_agent_config(void **state)
{
	const char *config =
		"{\"ociVersion\":\"1.0.2\",\"linux\":{\"namespaces\":[{\"type\":\"pid\"},"
		"{\"type\":\"network\",\"path\":\"/var/run/netns/cni-1\"},{\"type\":\"ipc\"}]},"
		"\"process\":{\"args\":[\"sh\"]}}";
	struct error err = { 0 };
	char *out;

	(void)state;
	assert_int_equal(netns_agent_config(config, strlen(config), true, &out, &err), 0);
	assert_string_equal(out, "{\"ociVersion\":\"1.0.2\",\"linux\":{\"namespaces\":[{\"type\":"
				 "\"pid\"},{\"type\":\"ipc\"}]},\"process\":{\"args\":[\"sh\"]}}");
	free(out);
	assert_int_equal(netns_agent_config(config, strlen(config), false, &out, &err), 0);
	assert_string_equal(out, "{\"ociVersion\":\"1.0.2\",\"linux\":{\"namespaces\":[{\"type\":"
				 "\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"}]},"
				 "\"process\":{\"args\":[\"sh\"]}}");
	free(out);
	assert_int_equal(netns_agent_config("[1]", 3, true, &out, &err), -EINVAL);
	assert_null(out);
	assert_string_equal(err.msg, "config.json: must be a JSON object");
}

/* create's early check: the path must be a network namespace, named by its JSON path. */
static void test_check(void **state)
{
	struct error err = { 0 };

	(void)state;
	assert_int_equal(netns_check("/proc/self/ns/net", 1, &err), 0);
	assert_int_equal(netns_check("/proc/self/ns/uts", 1, &err), -EINVAL);
	assert_string_equal(err.msg,
			    "linux.namespaces[1].path: /proc/self/ns/uts: not a network namespace");
	error_clear(&err);
	assert_int_equal(netns_check("/var/run/netns/stratus-none", 3, &err), -ENOENT);
	assert_string_equal(err.msg, "linux.namespaces[3].path: /var/run/netns/stratus-none: No "
				     "such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_redirects_both_ways),
		cmocka_unit_test(test_only_loopback),
		cmocka_unit_test(test_errors_leave_nothing),
		cmocka_unit_test(test_record_teardown),
		cmocka_unit_test(test_agent_config),
		cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
