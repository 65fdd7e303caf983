/*
 * virtio-vsock connections and their host sockets (see vsock.h): the hybrid-vsock listener
 * and its "CONNECT <port>\n" / "OK <port>\n" handshake, guest connections to "<path>_<port>",
 * and the stream itself under the credit rules of virtio 1.2 §5.10.6.3: we never send the
 * guest more than its buf_alloc minus what it has not yet consumed, and we advertise a
 * VSOCK_BUF_ALLOC buffer per connection that a guest must not overrun (one that does gets
 * an RST). Shutdown and reset follow §5.10.6.5 and §5.10.6.6.
 *
 * Host sockets are non-blocking and edge-triggered in the device's epoll set: readable and
 * writable are remembered until a read or write says EAGAIN. Host data is read straight
 * into the guest's rx buffer when the guest has both credit and a buffer, so nothing is
 * buffered on that side; guest data that the host socket does not take at once waits in a
 * per-connection ring, allocated only while it holds bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../log.h"
#include "vsock.h"

#define VSOCK_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

static void vsock_conn_flush(struct vsock_conn *conn);

static unsigned int vsock_hash(uint32_t local_port, uint32_t peer_port)
{
	return (local_port * 2654435761u ^ peer_port) % VSOCK_HASH_SIZE;
}

struct vsock_conn *vsock_conn_lookup(struct virtio_vsock *vs, uint32_t local_port,
				     uint32_t peer_port)
{
	struct vsock_conn *c = vs->hash[vsock_hash(local_port, peer_port)];

	while (c && (c->local_port != local_port || c->peer_port != peer_port))
		c = c->hash_next;
	return c;
}

static void vsock_conn_hash_add(struct vsock_conn *conn)
{
	unsigned int h = vsock_hash(conn->local_port, conn->peer_port);

	conn->hash_next = conn->vs->hash[h];
	conn->vs->hash[h] = conn;
	conn->in_hash = true;
}

static void vsock_conn_unlink(struct vsock_conn *conn)
{
	struct virtio_vsock *vs = conn->vs;
	struct vsock_conn **p;

	if (conn->in_hash) {
		p = &vs->hash[vsock_hash(conn->local_port, conn->peer_port)];
		while (*p != conn)
			p = &(*p)->hash_next;
		*p = conn->hash_next;
	}
	if (conn->on_rx_list) {
		struct vsock_conn *prev = NULL;

		for (p = &vs->rx_head; *p != conn; p = &(*p)->rx_next)
			prev = *p;
		*p = conn->rx_next;
		if (vs->rx_tail == conn)
			vs->rx_tail = prev;
	}
	if (conn->all_prev)
		conn->all_prev->all_next = conn->all_next;
	else
		vs->all = conn->all_next;
	if (conn->all_next)
		conn->all_next->all_prev = conn->all_prev;
}

static void vsock_conn_close_fd(struct vsock_conn *conn)
{
	if (conn->fd < 0)
		return;
	epoll_ctl(conn->vs->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
	close(conn->fd);
	conn->fd = -1;
	conn->readable = conn->writable = false;
}

/* The host socket closed and the memory freed, once unlinked from everything. */
static void vsock_conn_release(struct vsock_conn *conn)
{
	vsock_conn_close_fd(conn);
	free(conn->buf);
	free(conn);
}

void vsock_conn_free(struct vsock_conn *conn)
{
	vsock_conn_unlink(conn);
	conn->vs->nr_conns--;
	vsock_conn_release(conn);
}

/* A connection for host socket fd (non-blocking), watched from now on; NULL if full. */
static struct vsock_conn *vsock_conn_new(struct virtio_vsock *vs, int fd,
					 enum vsock_conn_state state)
{
	struct epoll_event ev = { .events = VSOCK_EVENTS };
	struct vsock_conn *conn;

	if (vs->nr_conns >= VSOCK_MAX_CONNS)
		return NULL;
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return NULL;
	conn->vs = vs;
	conn->fd = fd;
	conn->state = state;
	ev.data.ptr = conn;
	if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(conn);
		return NULL;
	}
	conn->all_next = vs->all;
	if (vs->all)
		vs->all->all_prev = conn;
	vs->all = conn;
	vs->nr_conns++;
	return conn;
}

static uint32_t vsock_conn_peer_credit(const struct vsock_conn *conn)
{
	uint32_t in_flight = conn->tx_cnt - conn->peer_fwd_cnt;

	/* A guest whose fwd_cnt runs ahead of what we sent gets no credit out of it. */
	return in_flight > conn->peer_buf_alloc ? 0 : conn->peer_buf_alloc - in_flight;
}

static bool vsock_conn_can_send_data(const struct vsock_conn *conn)
{
	return conn->state == VSOCK_CONN_ESTABLISHED && conn->fd >= 0 && conn->readable &&
	       !conn->host_eof && !(conn->peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_RCV) &&
	       vsock_conn_peer_credit(conn) > 0;
}

bool vsock_conn_has_rx_work(const struct vsock_conn *conn)
{
	if (conn->state == VSOCK_CONN_REQUESTING && !(conn->owe & VSOCK_OWE_RST))
		return conn->owe & VSOCK_OWE_REQUEST;
	return conn->owe || vsock_conn_can_send_data(conn);
}

/* Put the connection on the rx pump's list if it has something for the guest. */
static void vsock_conn_wake(struct vsock_conn *conn)
{
	struct virtio_vsock *vs = conn->vs;

	if (conn->on_rx_list || !vsock_conn_has_rx_work(conn))
		return;
	conn->rx_next = NULL;
	if (vs->rx_tail)
		vs->rx_tail->rx_next = conn;
	else
		vs->rx_head = conn;
	vs->rx_tail = conn;
	conn->on_rx_list = true;
}

void vsock_conn_owe(struct vsock_conn *conn, uint32_t what)
{
	conn->owe |= what;
	vsock_conn_wake(conn);
}

/* Abortive close (§5.10.6.6): the host socket goes now, the guest gets an RST. */
void vsock_conn_reset(struct vsock_conn *conn)
{
	vsock_conn_close_fd(conn);
	conn->state = VSOCK_CONN_CLOSING;
	conn->owe = 0;
	vsock_conn_owe(conn, VSOCK_OWE_RST);
}

/* Host connections: the listener and the CONNECT line. */

int vsock_listen(struct virtio_vsock *vs, struct error *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct stat st;

	if (strlen(vs->path) >= sizeof(addr.sun_path))
		return error_set(err, -ENAMETOOLONG, "%s: uds-path %s: too long for a socket",
				 vs->name, vs->path);
	memcpy(addr.sun_path, vs->path, strlen(vs->path) + 1);
	if (lstat(vs->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(vs->path); /* stale, from an earlier run */
	vs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (vs->listen_fd < 0)
		return error_set_errno(err, -errno, "%s: socket", vs->name);
	if (bind(vs->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(vs->listen_fd, 128) < 0)
		return error_set_errno(err, -errno, "%s: uds-path %s", vs->name, vs->path);
	if (epoll_ctl(vs->epfd, EPOLL_CTL_ADD, vs->listen_fd, &ev) < 0)
		return error_set_errno(err, -errno, "%s: epoll", vs->name);
	return 0;
}

/*
 * Let the host socket hold as much as the guest may have in flight (our buf_alloc), so
 * guest -> host data goes straight to the socket rather than through the connection's ring
 * (one copy fewer). The kernel caps the size at net.core.wmem_max; best effort.
 */
static void vsock_socket_tune(int fd)
{
	int size = VSOCK_BUF_ALLOC;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

void vsock_on_listener(struct virtio_vsock *vs)
{
	unsigned int i;

	for (i = 0; i < 64; i++) {
		int fd = accept4(vs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_once(LOG_WARN, "%s: accept: %s", vs->name, strerror(errno));
			if (errno == EAGAIN)
				return;
			continue;
		}
		vsock_socket_tune(fd);
		if (!vsock_conn_new(vs, fd, VSOCK_CONN_HOST_LINE)) {
			log_once(LOG_WARN, "%s: too many connections, refusing a host client",
				 vs->name);
			close(fd);
		}
	}
	/* More may be waiting: the listener is level-triggered, we come back. */
}

/* "CONNECT <port>": a decimal port, nothing else. */
static bool vsock_parse_connect(const char *line, uint32_t *port)
{
	unsigned long long v = 0;
	const char *p;

	if (strncmp(line, "CONNECT ", 8) != 0)
		return false;
	for (p = line + 8; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > UINT32_MAX)
			return false;
	}
	if (p == line + 8 || (*p != '\0' && !(p[0] == '\r' && p[1] == '\0')))
		return false;
	*port = (uint32_t)v;
	return true;
}

static uint32_t vsock_alloc_port(struct virtio_vsock *vs, uint32_t peer_port)
{
	do {
		vs->next_port = vs->next_port < VSOCK_FIRST_HOST_PORT || vs->next_port == UINT32_MAX
					? VSOCK_FIRST_HOST_PORT
					: vs->next_port + 1;
	} while (vsock_conn_lookup(vs, vs->next_port, peer_port));
	return vs->next_port;
}

/* Read the CONNECT line, and not one byte past it: what follows is stream data. */
static void vsock_conn_read_line(struct vsock_conn *conn)
{
	char line[VSOCK_CONNECT_LINE_MAX + 1];
	ssize_t n = recv(conn->fd, line, VSOCK_CONNECT_LINE_MAX, MSG_PEEK);
	char *nl;
	uint32_t port;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		goto drop;
	line[n] = '\0';
	nl = memchr(line, '\n', n);
	if (!nl) {
		if (n < VSOCK_CONNECT_LINE_MAX && !memchr(line, '\0', n))
			return; /* wait for the rest */
		goto drop;
	}
	*nl = '\0';
	if (!vsock_parse_connect(line, &port) || recv(conn->fd, line, nl - line + 1, 0) < 0)
		goto drop;
	conn->peer_port = port;
	conn->local_port = vsock_alloc_port(conn->vs, port);
	conn->state = VSOCK_CONN_REQUESTING;
	conn->peer_buf_alloc = 0;
	vsock_conn_hash_add(conn);
	vsock_conn_owe(conn, VSOCK_OWE_REQUEST);
	return;
drop:
	vsock_conn_free(conn);
}

void vsock_conn_on_event(struct vsock_conn *conn, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn->readable = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		conn->writable = true;
	if (events & (EPOLLHUP | EPOLLERR))
		conn->host_hup = true;
	switch (conn->state) {
	case VSOCK_CONN_HOST_LINE:
		vsock_conn_read_line(conn);
		return;
	case VSOCK_CONN_REQUESTING:
		/* The client gave up before the guest answered. */
		if (conn->host_hup) {
			if (conn->requested)
				vsock_conn_reset(conn);
			else
				vsock_conn_free(conn);
		}
		return;
	case VSOCK_CONN_ESTABLISHED:
		break;
	case VSOCK_CONN_CLOSING:
		return;
	}
	if (conn->writable && conn->buf_len)
		vsock_conn_flush(conn);
	/* Hung up while the guest takes no data: no EOF would ever be read. */
	if (conn->state == VSOCK_CONN_ESTABLISHED && conn->host_hup &&
	    (conn->peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_RCV))
		vsock_conn_reset(conn);
	if (conn->state == VSOCK_CONN_ESTABLISHED)
		vsock_conn_wake(conn);
}

/* Guest connections: REQUEST to host port P connects to "<path>_P". */

static int vsock_connect_host(struct virtio_vsock *vs, uint32_t port)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, n;

	n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", vs->path, port);
	if (n < 0 || (size_t)n >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	vsock_socket_tune(fd);
	/* A Unix connect completes at once, or fails (EAGAIN: the backlog is full). */
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	return fd;
}

void vsock_conn_guest_connect(struct virtio_vsock *vs, const struct virtio_vsock_hdr *h)
{
	struct vsock_conn *conn;
	int fd;

	if (vs->nr_conns >= VSOCK_MAX_CONNS) {
		vsock_owe_rst(vs, h->dst_port, h->src_port);
		return;
	}
	fd = vsock_connect_host(vs, h->dst_port);
	if (fd < 0) {
		if (fd == -EMFILE || fd == -ENFILE)
			log_once(LOG_WARN, "%s: out of file descriptors", vs->name);
		vsock_owe_rst(vs, h->dst_port, h->src_port);
		return;
	}
	conn = vsock_conn_new(vs, fd, VSOCK_CONN_ESTABLISHED);
	if (!conn) {
		close(fd);
		vsock_owe_rst(vs, h->dst_port, h->src_port);
		return;
	}
	conn->local_port = h->dst_port;
	conn->peer_port = h->src_port;
	conn->peer_buf_alloc = h->buf_alloc;
	conn->peer_fwd_cnt = h->fwd_cnt;
	conn->writable = true;
	vsock_conn_hash_add(conn);
	vsock_conn_owe(conn, VSOCK_OWE_RESPONSE);
}

/* Guest → host data. */

static void vsock_conn_after_flush(struct vsock_conn *conn)
{
	uint32_t told_free = VSOCK_BUF_ALLOC - (conn->rx_cnt - conn->fwd_cnt_told);

	/* The guest thinks we are half full and we have freed space: tell it (§5.10.6.3). */
	if (told_free < VSOCK_BUF_ALLOC / 2 && conn->fwd_cnt != conn->fwd_cnt_told)
		vsock_conn_owe(conn, VSOCK_OWE_CREDIT);
	if (conn->buf_len)
		return;
	free(conn->buf);
	conn->buf = NULL;
	conn->buf_head = 0;
	if (conn->rst_after_flush) {
		vsock_conn_reset(conn);
	} else if (conn->shut_wr_pending && conn->fd >= 0) {
		shutdown(conn->fd, SHUT_WR);
		conn->shut_wr_pending = false;
	}
}

/* Send iov to the host socket: bytes taken, or -1 after resetting the connection. */
static ssize_t vsock_conn_send(struct vsock_conn *conn, struct iovec *iov, unsigned int nr)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = nr };
	ssize_t n;

	if (!conn->writable || conn->fd < 0)
		return 0;
	do
		n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN) {
		conn->writable = false;
		return 0;
	}
	vsock_conn_reset(conn); /* EPIPE, ECONNRESET: nobody reads on the host */
	return -1;
}

static void vsock_conn_flush(struct vsock_conn *conn)
{
	uint32_t first = MIN(conn->buf_len, VSOCK_BUF_ALLOC - conn->buf_head);
	struct iovec iov[2] = {
		{ conn->buf + conn->buf_head, first },
		{ conn->buf, conn->buf_len - first },
	};
	ssize_t n;

	while (conn->buf_len) {
		n = vsock_conn_send(conn, iov, iov[1].iov_len ? 2 : 1);
		if (n <= 0)
			return;
		conn->buf_head = (conn->buf_head + n) % VSOCK_BUF_ALLOC;
		conn->buf_len -= n;
		conn->fwd_cnt += n;
		first = MIN(conn->buf_len, VSOCK_BUF_ALLOC - conn->buf_head);
		iov[0] = (struct iovec){ conn->buf + conn->buf_head, first };
		iov[1] = (struct iovec){ conn->buf, conn->buf_len - first };
	}
	vsock_conn_after_flush(conn);
}

/* Keep what the host socket did not take; the caller checked it fits our buf_alloc. */
static int vsock_conn_buffer(struct vsock_conn *conn, const struct virtq_chain *chain,
			     uint64_t offset, uint32_t len)
{
	uint32_t tail, first;

	if (!conn->buf) {
		conn->buf = malloc(VSOCK_BUF_ALLOC);
		if (!conn->buf)
			return -ENOMEM;
		conn->buf_head = 0;
	}
	tail = (conn->buf_head + conn->buf_len) % VSOCK_BUF_ALLOC;
	first = MIN(len, VSOCK_BUF_ALLOC - tail);
	virtq_chain_read(chain, offset, conn->buf + tail, first);
	virtq_chain_read(chain, offset + first, conn->buf, len - first);
	conn->buf_len += len;
	return 0;
}

static void vsock_conn_rw(struct vsock_conn *conn, const struct virtio_vsock_hdr *h,
			  const struct virtq_chain *chain)
{
	struct virtio_vsock *vs = conn->vs;
	ssize_t sent = 0;

	/* Beyond the credit we gave (what it saw of fwd_cnt), or after its SHUTDOWN(SEND). */
	if ((uint64_t)(conn->rx_cnt - conn->fwd_cnt_told) + h->len > VSOCK_BUF_ALLOC ||
	    (conn->peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND)) {
		vsock_conn_reset(conn);
		return;
	}
	conn->rx_cnt += h->len;
	if (h->len == 0)
		return;
	if (!conn->buf_len) {
		unsigned int nr = vsock_iov_slice(vs->slice, ARRAY_SIZE(vs->slice), chain->out,
						  chain->nr_out, VSOCK_HDR_LEN, h->len);

		sent = vsock_conn_send(conn, vs->slice, nr);
		if (sent < 0)
			return;
		conn->fwd_cnt += sent;
	}
	if (sent < h->len &&
	    vsock_conn_buffer(conn, chain, VSOCK_HDR_LEN + sent, h->len - sent) < 0) {
		vsock_conn_reset(conn);
		return;
	}
	vsock_conn_after_flush(conn);
}

static void vsock_conn_shutdown(struct vsock_conn *conn, uint32_t flags)
{
	conn->peer_shutdown |= flags & (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	if (conn->peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND)
		conn->shut_wr_pending = true;
	/* Both ways: the guest waits for our RST (§5.10.6.6), once its data is out. */
	if (conn->peer_shutdown == (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND))
		conn->rst_after_flush = true;
	if (!conn->buf_len)
		vsock_conn_after_flush(conn);
}

/* A packet from the guest for this connection; the header was checked by vsock.c. */
void vsock_conn_rx_packet(struct vsock_conn *conn, const struct virtio_vsock_hdr *h,
			  const struct virtq_chain *chain)
{
	bool established = conn->state == VSOCK_CONN_ESTABLISHED;
	char ok[32];
	int n;

	if (h->op == VIRTIO_VSOCK_OP_RST) {
		vsock_conn_free(conn);
		return;
	}
	conn->peer_buf_alloc = h->buf_alloc;
	conn->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (conn->state != VSOCK_CONN_REQUESTING || !conn->requested)
			break;
		n = snprintf(ok, sizeof(ok), "OK %u\n", conn->local_port);
		if (send(conn->fd, ok, n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
			break;
		conn->state = VSOCK_CONN_ESTABLISHED;
		conn->writable = true;
		vsock_conn_wake(conn);
		return;
	case VIRTIO_VSOCK_OP_RW:
		if (!established)
			break;
		vsock_conn_rw(conn, h, chain);
		return;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (!established)
			break;
		vsock_conn_shutdown(conn, h->flags);
		return;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		if (!established)
			break;
		vsock_conn_owe(conn, VSOCK_OWE_CREDIT);
		return;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		if (!established)
			break;
		vsock_conn_wake(conn); /* it may have credit again */
		return;
	}
	/* A duplicate REQUEST, an unknown op, or one out of place: §5.10.6.6 */
	if (conn->state != VSOCK_CONN_CLOSING)
		vsock_conn_reset(conn);
}

/* Host → guest: one packet for the guest, data or what we owe. */

/* Bytes of stream data the guest may be sent now: 0 while a control packet goes first. */
size_t vsock_conn_rx_credit(const struct vsock_conn *conn)
{
	if (conn->owe & (VSOCK_OWE_RST | VSOCK_OWE_REQUEST | VSOCK_OWE_RESPONSE) ||
	    !vsock_conn_can_send_data(conn))
		return 0;
	return vsock_conn_peer_credit(conn);
}

ssize_t vsock_conn_read(struct vsock_conn *conn, const struct iovec *iov, unsigned int nr)
{
	/* recvmsg rather than readv: the same on a socket, and one syscall less to allow. */
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = nr };
	ssize_t n;

	do
		n = recvmsg(conn->fd, &msg, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN) {
		conn->readable = false;
		return 0;
	}
	if (n <= 0) {
		/* EOF: the host will send no more; with a hangup it will not read either. */
		conn->host_eof = true;
		conn->shutdown_flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
		if (conn->host_hup || n < 0)
			conn->shutdown_flags |= VIRTIO_VSOCK_SHUTDOWN_RCV;
		conn->owe |= VSOCK_OWE_SHUTDOWN;
		return 0;
	}
	conn->tx_cnt += n;
	return n;
}

/* Every header carries our credit (§5.10.6.3). */
static void vsock_conn_stamp_credit(struct vsock_conn *conn, struct virtio_vsock_hdr *h)
{
	h->fwd_cnt = conn->fwd_cnt;
	conn->fwd_cnt_told = conn->fwd_cnt;
	conn->owe &= ~VSOCK_OWE_CREDIT;
}

void vsock_conn_data_hdr(struct vsock_conn *conn, struct virtio_vsock_hdr *h, uint32_t len)
{
	vsock_fill_hdr(conn->vs, h, conn->local_port, conn->peer_port, VIRTIO_VSOCK_OP_RW);
	h->len = len;
	vsock_conn_stamp_credit(conn, h);
}

static uint16_t vsock_conn_next_op(struct vsock_conn *conn)
{
	static const struct {
		uint32_t owe;
		uint16_t op;
	} order[] = {
		{ VSOCK_OWE_RST, VIRTIO_VSOCK_OP_RST },
		{ VSOCK_OWE_REQUEST, VIRTIO_VSOCK_OP_REQUEST },
		{ VSOCK_OWE_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(order); i++) {
		if (conn->owe & order[i].owe) {
			conn->owe &= ~order[i].owe;
			return order[i].op;
		}
	}
	return VIRTIO_VSOCK_OP_INVALID;
}

uint32_t vsock_conn_fill_rx(struct vsock_conn *conn, const struct virtq_chain *chain,
			    bool *free_after)
{
	struct virtio_vsock_hdr h;
	uint16_t op = vsock_conn_next_op(conn);

	if (op == VIRTIO_VSOCK_OP_INVALID) {
		if (conn->owe & VSOCK_OWE_SHUTDOWN) {
			op = VIRTIO_VSOCK_OP_SHUTDOWN;
			conn->owe &= ~(VSOCK_OWE_SHUTDOWN | VSOCK_OWE_CREDIT);
		} else if (conn->owe & VSOCK_OWE_CREDIT) {
			op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
		} else {
			return 0;
		}
	}
	vsock_fill_hdr(conn->vs, &h, conn->local_port, conn->peer_port, op);
	if (op == VIRTIO_VSOCK_OP_SHUTDOWN)
		h.flags = conn->shutdown_flags;
	if (op == VIRTIO_VSOCK_OP_REQUEST)
		conn->requested = true;
	if (op == VIRTIO_VSOCK_OP_SHUTDOWN && (conn->shutdown_flags & VIRTIO_VSOCK_SHUTDOWN_RCV)) {
		/* The host is gone both ways: the socket is of no more use; await the RST. */
		vsock_conn_close_fd(conn);
		conn->state = VSOCK_CONN_CLOSING;
	}
	vsock_conn_stamp_credit(conn, &h);
	virtq_chain_write(chain, 0, &h, VSOCK_HDR_LEN);
	*free_after = op == VIRTIO_VSOCK_OP_RST;
	return VSOCK_HDR_LEN;
}

/* The driver reset the device: connections the guest knew of are gone. */
void vsock_conn_driver_reset(struct virtio_vsock *vs)
{
	struct vsock_conn *conn = vs->all, *next;

	for (; conn; conn = next) {
		next = conn->all_next;
		if (conn->state == VSOCK_CONN_HOST_LINE)
			continue;
		if (conn->state == VSOCK_CONN_REQUESTING && conn->fd >= 0) {
			/* A host client waiting to connect: ask the new driver instead. */
			conn->requested = false;
			conn->owe = VSOCK_OWE_REQUEST;
			continue;
		}
		/* no syscall here (a vCPU thread): vsock_conn_reap() closes and frees it */
		vsock_conn_unlink(conn);
		vs->nr_conns--;
		conn->dead_next = vs->dead;
		vs->dead = conn;
	}
	if (vs->dead && vs->wake_fd >= 0)
		eventfd_write(vs->wake_fd, 1);
}

void vsock_conn_reap(struct virtio_vsock *vs)
{
	while (vs->dead) {
		struct vsock_conn *conn = vs->dead;

		vs->dead = conn->dead_next;
		vsock_conn_release(conn);
	}
}
