/*
 * libFuzzer target for the agent protocol (proto/agent_proto.c, agent_frame.c): the input is
 * a byte stream from a hostile peer, fed to the frame reader in chunks whose sizes come from
 * the input's first byte (1 byte at a time up to whole), each complete frame decoded. ASan
 * and UBSan check the memory; on top of that: the reader never consumes more than it is
 * given, and a frame that decodes re-encodes to a frame that decodes to the same bytes (the
 * host and the agent read each other's output). Seeds: tests/fuzz/corpus/agent_proto.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"

static void check_reencode(const struct agent_msg *m)
{
	struct agent_buf a = { 0 }, b = { 0 };
	struct agent_reader r;
	struct agent_msg again;

	if (agent_msg_encode(m, &a) < 0)
		abort(); /* whatever decodes is within every cap */
	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	if (agent_reader_feed(&r, a.data, a.len) != (ssize_t)a.len || !r.ready)
		abort();
	if (agent_reader_take(&r, &again) < 0 || agent_msg_encode(&again, &b) < 0)
		abort();
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	agent_msg_clear(&again);
	agent_reader_destroy(&r);
	agent_buf_free(&a);
	agent_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_reader r;
	size_t chunk, off = 1;

	if (size < 1)
		return 0;
	chunk = data[0] ? data[0] : size; /* 1..255 bytes per feed, or all at once */
	agent_reader_init(&r, AGENT_MAX_PAYLOAD);
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		ssize_t used = agent_reader_feed(&r, data + off, n);
		struct agent_msg m;

		if (used < 0)
			break;
		if ((size_t)used > n)
			abort();
		off += used;
		if (!r.ready)
			continue;
		if (agent_reader_take(&r, &m) == 0) {
			check_reencode(&m);
			agent_msg_clear(&m);
		}
	}
	agent_reader_destroy(&r);
	return 0;
}
