/*
 * Benchmark driver for virtio-vsock (tests/bench/virtio_vsock.sh): throughput through the
 * device's Unix-socket backend (vmm/devices/virtio/vsock.c) with the fake guest driver
 * (tests/unit/vsock_fake_guest.h) in this process, next to a plain Unix socket pair moving
 * the same bytes with the same 64 KiB reads and writes. The host end runs on its own thread
 * in both cases. Prints one line per case: "NAME MiB seconds MiB/s".
 * usage: bench-vsock MIB [CASE]  (CASE: socketpair, to-guest or to-host; default all three)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_tryjoin_np */
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vsock_fake_guest.h"

#define CHUNK	  KIB(64)
#define GUEST_BUF KIB(256)

struct host_end {
	int fd;
	uint64_t bytes;
	bool write;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *host_thread(void *arg)
{
	struct host_end *h = arg;
	static uint8_t wbuf[CHUNK], rbuf[CHUNK];
	uint64_t done = 0;

	memset(wbuf, 0x5a, sizeof(wbuf));
	while (done < h->bytes) {
		ssize_t n = h->write ? send(h->fd, wbuf, MIN(CHUNK, h->bytes - done), MSG_NOSIGNAL)
				     : recv(h->fd, rbuf, CHUNK, 0);

		if (n <= 0)
			break;
		done += n;
	}
	h->bytes = done;
	return NULL;
}

static void report(const char *name, uint64_t bytes, double secs)
{
	printf("%s %.0f %.3f %.1f\n", name, bytes / 1048576.0, secs, bytes / 1048576.0 / secs);
	fflush(stdout);
}

static void bench_socketpair(uint64_t bytes)
{
	static uint8_t buf[CHUNK];
	struct host_end h = { .bytes = bytes, .write = true };
	uint64_t done = 0;
	pthread_t t;
	int sv[2];
	double t0;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		exit(1);
	h.fd = sv[0];
	t0 = now();
	pthread_create(&t, NULL, host_thread, &h);
	while (done < bytes) {
		ssize_t n = recv(sv[1], buf, sizeof(buf), 0);

		if (n <= 0)
			exit(1);
		done += n;
	}
	pthread_join(t, NULL);
	report("socketpair", bytes, now() - t0);
	close(sv[0]);
	close(sv[1]);
}

/* A connection from a host client to guest port 1; returns the client fd. */
static int connect_guest(struct vsock_guest *g, const char *path, uint32_t *port)
{
	struct virtio_vsock_hdr h;
	char ok[32];
	int fd = vsock_host_connect(path);

	if (fd < 0 || send(fd, "CONNECT 1\n", 10, 0) != 10 ||
	    !vsock_guest_recv(g, &h, NULL, 0, 2000))
		exit(1);
	*port = h.src_port;
	h = vsock_guest_hdr(1, *port, VIRTIO_VSOCK_OP_RESPONSE, GUEST_BUF, 0);
	vsock_guest_send(g, &h, NULL);
	vsock_guest_poll(g, 0);
	if (recv(fd, ok, 3, 0) != 3)
		exit(1);
	while (recv(fd, ok, 1, 0) == 1 && ok[0] != '\n')
		;
	return fd;
}

static void bench_vsock(const char *path, uint64_t bytes, bool to_guest)
{
	struct vsock_guest g;
	struct host_end h = { .bytes = bytes, .write = to_guest };
	struct virtio_vsock_hdr hdr;
	uint64_t rx = 0, tx = 0, told = 0;
	uint32_t port, dev_fwd = 0;
	pthread_t t;
	double t0;

	if (vsock_guest_init(&g, path, VSOCK_HDR_LEN + CHUNK) < 0)
		exit(1);
	vsock_guest_start(&g);
	h.fd = connect_guest(&g, path, &port);
	g.batch_tx = true; /* as a driver does: one notification for a batch */
	t0 = now();
	pthread_create(&t, NULL, host_thread, &h);
	while (to_guest ? rx < bytes : tx < bytes) {
		bool moved = false;

		while (!to_guest && tx < bytes && (uint32_t)tx - dev_fwd < VSOCK_BUF_ALLOC) {
			uint32_t n = MIN(CHUNK, VSOCK_BUF_ALLOC - ((uint32_t)tx - dev_fwd));

			hdr = vsock_guest_hdr(1, port, VIRTIO_VSOCK_OP_RW, GUEST_BUF, rx);
			hdr.len = MIN(n, bytes - tx);
			/* The guest's own copy-in is not what we measure: the slot's bytes go. */
			if (!vsock_guest_send(&g, &hdr, NULL))
				break;
			tx += hdr.len;
			moved = true;
		}
		/* Data is consumed in place, as a guest reading with zero copy would. */
		while (vsock_guest_recv(&g, &hdr, NULL, 0, 0)) {
			dev_fwd = hdr.fwd_cnt;
			moved = true;
			if (hdr.op == VIRTIO_VSOCK_OP_RW)
				rx += hdr.len;
		}
		if (rx - told >= GUEST_BUF / 2) {
			hdr = vsock_guest_hdr(1, port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, GUEST_BUF,
					      rx);
			if (vsock_guest_send(&g, &hdr, NULL))
				told = rx;
		}
		/* Nothing moved: sleep until the device has work, as a driver awaits its interrupt. */
		vsock_guest_poll(&g, moved ? 0 : 1);
	}
	while (pthread_tryjoin_np(t, NULL) != 0)
		vsock_guest_poll(&g, 1);
	report(to_guest ? "vsock-host-to-guest" : "vsock-guest-to-host", bytes, now() - t0);
	close(h.fd);
	vsock_guest_destroy(&g);
}

int main(int argc, char **argv)
{
	uint64_t bytes = MIB(argc > 1 ? strtoull(argv[1], NULL, 10) : 1024);
	const char *only = argc > 2 ? argv[2] : "";
	char path[108];

	snprintf(path, sizeof(path), "/tmp/stratus-bench-vsock.%d", getpid());
	if (!*only || !strcmp(only, "socketpair"))
		bench_socketpair(bytes);
	if (!*only || !strcmp(only, "to-guest"))
		bench_vsock(path, bytes, true);
	if (!*only || !strcmp(only, "to-host"))
		bench_vsock(path, bytes, false);
	return 0;
}
