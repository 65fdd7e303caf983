/*
 * virtio-net (vmm/devices/virtio/net.c) on a real tap, through the real kernel: as root, in
 * a network namespace of its own (a forked child, so the test's own namespaces stay), a tap
 * opened with virtio_net_open_tap() gets 10.99.0.1/24 and is brought up; the fake driver
 * sends an ARP request for 10.99.0.1 through the device, and the kernel's ARP reply must
 * come back as a receive frame addressed to the device's MAC. That is both directions
 * through a tap. Skipped (with the reason) without root or namespaces.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <linux/if.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "devices/virtio/net.h"
#include "virtio_fake_driver.h"

#define RAM_SIZE MIB(4)
#define QSIZE	 64
#define RXQ	 VIRTIO_NET_QUEUE_RX
#define TXQ	 VIRTIO_NET_QUEUE_TX
#define HDR	 VIRTIO_NET_HDR_LEN
#define F_BASE \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS))
#define S_FEAT (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)
#define S_OK   (S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK)

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
static const uint8_t guest_ip[4] = { 10, 99, 0, 2 }, tap_ip[4] = { 10, 99, 0, 1 };

/* The tap stratus-t0 at 10.99.0.1/24, up: its fd, or an exit status for the parent. */
static int tap_create(int *fd)
{
	struct error err = { 0 };
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int s;

	if (unshare(CLONE_NEWNET) < 0)
		return 77;
	*fd = virtio_net_open_tap("stratus-t0", &err);
	if (*fd < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 77;
	}
	if (virtio_net_check_backend(*fd, "tap", &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 2;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "stratus-t0");
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, tap_ip, 4);
	if (s < 0 || ioctl(s, SIOCSIFADDR, &ifr) < 0)
		return 3;
	inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return 4;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return 5;
	close(s);
	return 0;
}

/* ARP request (RFC 826): who has 10.99.0.1? Tell 10.99.0.2 (guest_mac). */
static void arp_request(uint8_t *arp)
{
	memset(arp, 0xff, 6);
	memcpy(arp + 6, guest_mac, 6);
	memcpy(arp + 12, "\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01", 10);
	memcpy(arp + 22, guest_mac, 6);
	memcpy(arp + 28, guest_ip, 4);
	memset(arp + 32, 0, 6);
	memcpy(arp + 38, tap_ip, 4);
}

/* Exit status: 0 passed, 77 not permitted here, else the step that failed. */
static int tap_child(void)
{
	struct fake_driver d;
	struct error err = { 0 };
	struct virtio_device *dev;
	uint64_t rx[QSIZE], tx;
	int fd, r, i, others = 0;

	r = tap_create(&fd);
	if (r)
		return r;
	if (virtio_net_new("tap0", fd, guest_mac, 1500, &dev, &err) < 0 ||
	    fake_driver_init(&d, dev, RAM_SIZE) < 0)
		return 6;
	if (fake_negotiate(&d, F_BASE) != S_FEAT || fake_setup_queue(&d, RXQ, QSIZE) != 1 ||
	    fake_setup_queue(&d, TXQ, QSIZE) != 1 || fake_driver_ok(&d) != S_OK)
		return 7;
	for (i = 0; i < QSIZE; i++) {
		struct fake_buf b = { rx[i] = fake_alloc(&d, 2048, 64), 1526, true };

		fake_add_chain(&d, RXQ, (uint16_t)i, &b, 1);
	}
	fake_kick(&d, RXQ);
	tx = fake_alloc(&d, HDR + 42, 64);
	arp_request((uint8_t *)fake_ptr(&d, tx) + HDR);
	fake_add_chain(&d, TXQ, 0, &(struct fake_buf){ tx, HDR + 42, false }, 1);
	fake_kick(&d, TXQ);
	/* Up to 20 s for the reply; other frames (IPv6 chatter) are skipped. */
	for (i = 0; i < 2000; i++) {
		bool ready = false;
		uint32_t id, len;

		fake_driver_poll_round(&d, virtio_net_fd(dev), 10, &ready);
		if (ready)
			virtio_net_process(dev);
		while (fake_pop_used(&d, RXQ, &id, &len)) {
			const uint8_t *p = (const uint8_t *)fake_ptr(&d, rx[id]) + HDR;

			if (id >= QSIZE || len < HDR + 42 || memcmp(p + 12, "\x08\x06", 2) ||
			    p[21] != 2) {
				others++;
				continue;
			}
			/* To us, from the tap's address, about ours. */
			if (memcmp(p, guest_mac, 6) || memcmp(p + 28, tap_ip, 4) ||
			    memcmp(p + 32, guest_mac, 6) || memcmp(p + 38, guest_ip, 4))
				return 9;
			fake_driver_destroy(&d);
			return 0;
		}
	}
	fprintf(stderr, "no ARP reply in 20 s (%d other frames)\n", others);
	return 8;
}

static void test_tap_arp(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "skipped: a tap and a network namespace need root\n");
		skip();
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(tap_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		fprintf(stderr, "skipped: no network namespace or tap here\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tap_arp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
