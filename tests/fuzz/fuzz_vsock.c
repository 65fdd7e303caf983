/*
 * libFuzzer target for virtio-vsock (vmm/devices/virtio/vsock.c, vsock_conn.c): a fresh
 * device per input behind the fake guest driver (tests/unit/vsock_fake_guest.h), a host
 * listener on "<path>_5000", and the input as a script of guest packets and host actions.
 * Ports and CIDs are folded into small sets on request so that packets hit live
 * connections and reach the deep states (established, half-closed, credit-starved); ASan
 * and UBSan do the checking, plus: the device never needs a reset for packet contents.
 * Input: records of
 *   [0]      action: 0-3 guest packet, 4 host CONNECT, 5 host data, 6 host close, 7 poll
 *   [1]      flags: bit 0 fold ports, bit 1 fix CIDs, bit 2 fix type, bit 3 chain = len
 *   [2..45]  a virtio_vsock_hdr      [46..47] payload bytes that follow (le16, <= 1024)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../unit/vsock_fake_guest.h"
#include "log.h"

#define REC_LEN	    48
#define MAX_PAYLOAD 1024
#define MAX_CLIENTS 8

static const uint32_t guest_ports[] = { 100, 101, 102, 103 };
static const uint32_t host_ports[] = { VSOCK_FIRST_HOST_PORT + 1, VSOCK_FIRST_HOST_PORT + 2, 5000,
				       5001 };

struct fuzz {
	struct vsock_guest g;
	char path[108];
	int listener, clients[MAX_CLIENTS];
	unsigned int nr_clients;
};

static void fuzz_guest_packet(struct fuzz *f, uint8_t flags, struct virtio_vsock_hdr *h,
			      const uint8_t *payload, uint16_t len)
{
	uint32_t chain = (flags & 8) ? VSOCK_HDR_LEN + len : VSOCK_HDR_LEN + MIN(len, h->len);

	if (flags & 1) {
		h->src_port = guest_ports[h->src_port & 3];
		h->dst_port = host_ports[h->dst_port & 3];
	}
	if (flags & 2) {
		h->src_cid = GUEST_CID;
		h->dst_cid = VSOCK_HOST_CID;
	}
	if (flags & 4) {
		h->type = VIRTIO_VSOCK_TYPE_STREAM;
		h->op %= 8;
	}
	vsock_guest_send_raw(&f->g, h, payload, len, chain);
}

static void fuzz_host(struct fuzz *f, uint8_t action, const struct virtio_vsock_hdr *h,
		      const uint8_t *payload, uint16_t len)
{
	char line[40];
	int fd;

	if (action == 4 && f->nr_clients < MAX_CLIENTS) {
		fd = vsock_host_connect(f->path);
		if (fd < 0)
			return;
		snprintf(line, sizeof(line), "CONNECT %u\n", guest_ports[h->dst_port & 3]);
		if (h->flags & 1) /* or garbage */
			send(fd, payload, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
		f->clients[f->nr_clients++] = fd;
	} else if (action == 5 && f->nr_clients) {
		send(f->clients[h->src_port % f->nr_clients], payload, len,
		     MSG_DONTWAIT | MSG_NOSIGNAL);
	} else if (action == 6 && f->nr_clients) {
		unsigned int i = h->src_port % f->nr_clients;

		if (h->flags & 1)
			shutdown(f->clients[i], SHUT_WR);
		else {
			close(f->clients[i]);
			f->clients[i] = f->clients[--f->nr_clients];
		}
	}
}

/* Take what the device sent, and accept host connections it made. */
static void fuzz_drain(struct fuzz *f)
{
	struct virtio_vsock_hdr h;
	static uint8_t buf[KIB(8)];
	int fd;

	vsock_guest_poll(&f->g, 0);
	while (vsock_guest_recv(&f->g, &h, buf, sizeof(buf), 0))
		;
	while ((fd = accept4(f->listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		if (f->nr_clients < MAX_CLIENTS)
			f->clients[f->nr_clients++] = fd;
		else
			close(fd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz f;
	static int count;
	char name[128];
	unsigned int i;

	log_init(-1, LOG_ERROR);
	memset(&f, 0, sizeof(f));
	snprintf(f.path, sizeof(f.path), "/tmp/stratus-fuzz-vsock.%d.%d", getpid(), count++ & 1);
	if (vsock_guest_init(&f.g, f.path, 4096 + VSOCK_HDR_LEN) < 0)
		abort();
	f.listener = vsock_host_listen(f.path, 5000);
	fcntl(f.listener, F_SETFL, O_NONBLOCK);
	vsock_guest_start(&f.g);
	for (; size >= REC_LEN; data += REC_LEN, size -= REC_LEN) {
		struct virtio_vsock_hdr h;
		uint16_t len;

		memcpy(&h, data + 2, sizeof(h));
		memcpy(&len, data + 46, 2);
		len = MIN(MIN(len, MAX_PAYLOAD), size - REC_LEN);
		if ((data[0] & 7) < 4)
			fuzz_guest_packet(&f, data[1], &h, data + REC_LEN, len);
		else if ((data[0] & 7) < 7)
			fuzz_host(&f, data[0] & 7, &h, data + REC_LEN, len);
		fuzz_drain(&f);
		data += len;
		size -= len;
	}
	if (fake_read(&f.g.d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET)
		abort(); /* packet contents must never break the device */
	for (i = 0; i < f.nr_clients; i++)
		close(f.clients[i]);
	vsock_guest_destroy(&f.g);
	close(f.listener);
	snprintf(name, sizeof(name), "%s_5000", f.path);
	unlink(name);
	return 0;
}
