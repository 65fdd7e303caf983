/*
 * ttrpc wire helpers shared by the server and the client: the 10-byte frame header, whole
 * frames, the ttrpc.Request / ttrpc.Response envelopes (protobuf-c, shim/proto/ttrpc), status
 * code names, and Unix socket addresses in the forms containerd writes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ttrpc.h"
#include "ttrpc/ttrpc.pb-c.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void ttrpc_header_encode(const struct ttrpc_header *h, uint8_t out[TTRPC_HEADER_LEN])
{
	put_be32(out, h->length);
	put_be32(out + 4, h->stream_id);
	out[8] = h->type;
	out[9] = h->flags;
}

void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_LEN], struct ttrpc_header *h)
{
	h->length = get_be32(in);
	h->stream_id = get_be32(in + 4);
	h->type = in[8];
	h->flags = in[9];
}

const char *ttrpc_code_name(int code)
{
	static const char *const names[] = {
		"OK",
		"Canceled",
		"Unknown",
		"InvalidArgument",
		"DeadlineExceeded",
		"NotFound",
		"AlreadyExists",
		"PermissionDenied",
		"ResourceExhausted",
		"FailedPrecondition",
		"Aborted",
		"OutOfRange",
		"Unimplemented",
		"Internal",
		"Unavailable",
		"DataLoss",
		"Unauthenticated",
	};

	if (code >= 0 && (size_t)code < ARRAY_SIZE(names))
		return names[code];
	return "Code(?)";
}

int ttrpc_frame_build(uint32_t stream_id, uint8_t type, uint8_t flags, const void *payload,
		      size_t payload_len, uint8_t **out, size_t *out_len)
{
	struct ttrpc_header h = {
		.length = (uint32_t)payload_len,
		.stream_id = stream_id,
		.type = type,
		.flags = flags,
	};
	uint8_t *buf;

	if (payload_len > TTRPC_MESSAGE_MAX)
		return -EMSGSIZE;
	buf = malloc(TTRPC_HEADER_LEN + payload_len);
	if (!buf)
		return -ENOMEM;
	ttrpc_header_encode(&h, buf);
	if (payload_len)
		memcpy(buf + TTRPC_HEADER_LEN, payload, payload_len);
	*out = buf;
	*out_len = TTRPC_HEADER_LEN + payload_len;
	return 0;
}

static int pack_message(const ProtobufCMessage *msg, uint8_t **out, size_t *out_len)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	/* malloc(0) may return NULL: always allocate at least one byte. */
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	*out = buf;
	*out_len = len;
	return 0;
}

int ttrpc_request_pack(const char *service, const char *method, const void *payload,
		       size_t payload_len, int64_t timeout_nano, uint8_t **out, size_t *out_len)
{
	Ttrpc__Request req = TTRPC__REQUEST__INIT;

	req.service = (char *)service;
	req.method = (char *)method;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = payload_len;
	req.timeout_nano = timeout_nano;
	return pack_message(&req.base, out, out_len);
}

int ttrpc_response_pack(int code, const char *message, const void *payload, size_t payload_len,
			uint8_t **out, size_t *out_len)
{
	Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
	Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;

	status.code = code;
	status.message = (char *)(message ? message : "");
	resp.status = &status;
	resp.payload.data = (uint8_t *)payload;
	resp.payload.len = payload_len;
	return pack_message(&resp.base, out, out_len);
}

int ttrpc_sockaddr(const char *address, struct sockaddr_un *addr, unsigned int *addr_len)
{
	const char *path = address;
	size_t len;

	if (!strncmp(path, "unix://", 7))
		path += 7;
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	len = strlen(path);
	if (len == 0)
		return -EINVAL;
	if (path[0] == '@') {
		/* Abstract: sun_path[0] is NUL and the name is not NUL-terminated. */
		if (len > sizeof(addr->sun_path))
			return -ENAMETOOLONG;
		memcpy(addr->sun_path + 1, path + 1, len - 1);
		*addr_len = offsetof(struct sockaddr_un, sun_path) + len;
		return 0;
	}
	if (len >= sizeof(addr->sun_path))
		return -ENAMETOOLONG;
	memcpy(addr->sun_path, path, len);
	*addr_len = offsetof(struct sockaddr_un, sun_path) + len + 1;
	return 0;
}

int ttrpc_listen(const char *address, int *fd_out, struct error *err)
{
	struct sockaddr_un addr;
	unsigned int addr_len;
	_cleanup_close_ int fd = -1;
	int r;

	r = ttrpc_sockaddr(address, &addr, &addr_len);
	if (r < 0)
		return error_set(err, r, "%s: not a usable unix socket address", address);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set_errno(err, -errno, "socket");
	if (bind(fd, (struct sockaddr *)&addr, addr_len) < 0)
		return error_set_errno(err, -errno, "%s: bind", address);
	if (addr.sun_path[0] && chmod(addr.sun_path, 0600) < 0)
		return error_set_errno(err, -errno, "%s: chmod", address);
	if (listen(fd, 128) < 0)
		return error_set_errno(err, -errno, "%s: listen", address);
	*fd_out = fd_steal(&fd);
	return 0;
}
