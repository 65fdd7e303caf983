/*
 * Agent protocol framing (docs/agent-protocol.md, "Framing"): the 16-byte header codec and the
 * incremental reader both sides use on their non-blocking vsock streams. The reader buffers
 * the header, validates magic and length, and only then allocates the payload, so a peer
 * that announces a huge frame is refused before it costs anything; it reads exactly the bytes
 * of one frame and no more, so a stream that turns into raw stdio after STREAM_ATTACH loses
 * nothing to it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_proto.h"

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void agent_header_encode(const struct agent_header *h, uint8_t out[AGENT_HDR_LEN])
{
	put_le32(out, h->magic);
	out[4] = h->type;
	out[5] = h->type >> 8;
	out[6] = h->flags;
	out[7] = h->flags >> 8;
	put_le32(out + 8, h->id);
	put_le32(out + 12, h->len);
}

int agent_header_decode(const uint8_t in[AGENT_HDR_LEN], uint32_t max_payload,
			struct agent_header *h)
{
	h->magic = get_le32(in);
	h->type = in[4] | in[5] << 8;
	h->flags = in[6] | in[7] << 8;
	h->id = get_le32(in + 8);
	h->len = get_le32(in + 12);
	if (h->magic != AGENT_MAGIC)
		return -EPROTO;
	if (h->len > max_payload || h->len > AGENT_MAX_PAYLOAD)
		return -EMSGSIZE;
	return 0;
}

void agent_reader_init(struct agent_reader *r, uint32_t max_payload)
{
	memset(r, 0, sizeof(*r));
	r->max_payload = max_payload < AGENT_MAX_PAYLOAD ? max_payload : AGENT_MAX_PAYLOAD;
}

void agent_reader_destroy(struct agent_reader *r)
{
	free(r->payload);
	r->payload = NULL;
}

static void reader_next(struct agent_reader *r)
{
	free(r->payload);
	r->payload = NULL;
	r->hdr_have = r->payload_have = 0;
	r->ready = false;
}

/* The header is complete: validate it and make room for the payload. */
static int reader_header_done(struct agent_reader *r)
{
	int e = agent_header_decode(r->hdr_buf, r->max_payload, &r->hdr);

	if (e < 0)
		return e;
	if (r->hdr.len == 0) {
		r->ready = true;
		return 0;
	}
	r->payload = malloc(r->hdr.len);
	return r->payload ? 0 : -ENOMEM;
}

/* How many bytes the current frame still needs, and where they go. */
static size_t reader_want(struct agent_reader *r, uint8_t **dst)
{
	if (r->hdr_have < AGENT_HDR_LEN) {
		*dst = r->hdr_buf + r->hdr_have;
		return AGENT_HDR_LEN - r->hdr_have;
	}
	*dst = r->payload + r->payload_have;
	return r->hdr.len - r->payload_have;
}

/* Account for n bytes just stored at reader_want()'s destination. */
static int reader_advance(struct agent_reader *r, size_t n)
{
	if (r->hdr_have < AGENT_HDR_LEN) {
		r->hdr_have += n;
		return r->hdr_have == AGENT_HDR_LEN ? reader_header_done(r) : 0;
	}
	r->payload_have += n;
	if (r->payload_have == r->hdr.len)
		r->ready = true;
	return 0;
}

ssize_t agent_reader_feed(struct agent_reader *r, const void *data, size_t len)
{
	const uint8_t *src = data;
	size_t used = 0;

	if (r->error)
		return r->error;
	while (!r->ready && used < len) {
		uint8_t *dst;
		size_t n = reader_want(r, &dst);
		int e;

		if (n > len - used)
			n = len - used;
		memcpy(dst, src + used, n);
		used += n;
		e = reader_advance(r, n);
		if (e < 0)
			return r->error = e;
	}
	return used;
}

int agent_reader_read(struct agent_reader *r, int fd)
{
	if (r->error)
		return r->error;
	while (!r->ready) {
		uint8_t *dst;
		size_t want = reader_want(r, &dst);
		ssize_t n = read(fd, dst, want);
		int e;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0) {
			if (r->hdr_have == 0)
				return 0;
			return r->error = -ECONNRESET;
		}
		e = reader_advance(r, n);
		if (e < 0)
			return r->error = e;
	}
	return 1;
}

int agent_reader_take(struct agent_reader *r, struct agent_msg *out)
{
	int e;

	if (!r->ready) {
		memset(out, 0, sizeof(*out));
		return r->error ? r->error : -EAGAIN;
	}
	e = agent_msg_decode(&r->hdr, r->payload, out);
	reader_next(r);
	return e;
}
