/*
 * libFuzzer target for the ttrpc server (shim/ttrpc_server.c) and the shim's Task service
 * (shim/task_service.c): the input is the byte stream of a hostile client on a socketpair,
 * written in chunks whose size comes from the input's first byte, with the server's loop run
 * between chunks, then the client hangs up. ASan and UBSan check the memory; on top of that,
 * everything the server sends back must be well-formed Response frames (<= 4 MiB, a
 * ttrpc.Response that decodes, an odd-or-echoed stream id from the input), and the
 * connection must be gone after the hang-up (no leak, no hang). A fresh server per input, so
 * a fuzzed Shutdown cannot leak into the next run. Seeds: tests/fuzz/corpus/ttrpc.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "task_service.h"
#include "ttrpc.h"
#include "ttrpc/ttrpc.pb-c.h"

static void echo(struct ttrpc_call *call, const uint8_t *payload, size_t len, void *opaque)
{
	(void)opaque;
	ttrpc_call_reply(call, payload, len);
}

struct reader {
	uint8_t buf[1 << 16];
	size_t len;
};

/* Check every complete frame the server sent; keep a partial one for later. */
static void drain(int fd, struct reader *r)
{
	for (;;) {
		ssize_t n = recv(fd, r->buf + r->len, sizeof(r->buf) - r->len, MSG_DONTWAIT);
		size_t off = 0;

		if (n <= 0)
			return;
		r->len += n;
		while (r->len - off >= TTRPC_HEADER_LEN) {
			struct ttrpc_header h;
			Ttrpc__Response *resp;

			ttrpc_header_decode(r->buf + off, &h);
			if (h.type != TTRPC_TYPE_RESPONSE || h.length > TTRPC_MESSAGE_MAX)
				abort();
			if (h.length > sizeof(r->buf) - TTRPC_HEADER_LEN)
				abort(); /* nothing we send can earn a reply this big */
			if (r->len - off - TTRPC_HEADER_LEN < h.length)
				break;
			resp = ttrpc__response__unpack(NULL, h.length,
						       r->buf + off + TTRPC_HEADER_LEN);
			if (!resp)
				abort();
			ttrpc__response__free_unpacked(resp, NULL);
			off += TTRPC_HEADER_LEN + h.length;
		}
		memmove(r->buf, r->buf + off, r->len - off);
		r->len -= off;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct reader r;
	struct ttrpc_server *srv;
	struct task_service *ts;
	size_t chunk, off = 0;
	int sv[2];

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] * 8 + 1;
	data++;
	size--;
	r.len = 0;
	if (ttrpc_server_new(NULL, &srv) < 0)
		abort();
	if (task_service_register(srv, "fuzz", NULL, &ts) < 0 ||
	    ttrpc_server_register(srv, "fuzz.Echo", "Echo", echo, NULL) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (ttrpc_server_add_conn(srv, sv[1]) < 0)
		abort();
	while (off < size && !ttrpc_server_stopping(srv)) {
		size_t n = chunk < size - off ? chunk : size - off;
		ssize_t w = send(sv[0], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0 && errno != EAGAIN)
			break; /* the server hung up on us (a Shutdown) */
		if (w > 0)
			off += w;
		if (ttrpc_server_poll(srv, 0) < 0)
			abort();
		drain(sv[0], &r);
	}
	shutdown(sv[0], SHUT_WR);
	/* (A fuzzed Shutdown stops the server: its loop would return, reading no more.) */
	for (int i = 0; ttrpc_server_connections(srv) > 0 && !ttrpc_server_stopping(srv); i++) {
		if (i > 100000)
			abort(); /* the connection must go away after the hang-up */
		if (ttrpc_server_poll(srv, 10) < 0)
			abort();
		drain(sv[0], &r);
	}
	close(sv[0]);
	ttrpc_server_destroy(srv);
	task_service_destroy(ts);
	return 0;
}
