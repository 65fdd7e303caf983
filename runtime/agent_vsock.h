/*
 * The host side of hybrid vsock (the VMM's Unix socket, "CONNECT <port>\n" / "OK <port>\n")
 * and the deadline helpers the agent client is built on (agent_client.c). Internal to
 * libstratus: agent_client.h has the public agent_vsock_connect().
 */
#ifndef STRATUS_AGENT_VSOCK_H
#define STRATUS_AGENT_VSOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t agent_vsock_now_ms(void);
/* timeout_ms < 0: no deadline (-1) */
int64_t agent_vsock_deadline(int timeout_ms);
/* Wait for events on fd until the deadline (-1: none): 0, -ETIMEDOUT or -errno. */
int agent_vsock_wait(int fd, short events, int64_t deadline);
/* All of data on a non-blocking fd before the deadline: 0 or -errno. */
int agent_vsock_send_all(int fd, const uint8_t *data, size_t len, int64_t deadline);
/* The device's "OK <port>\n", read byte by byte: 0, -ECONNREFUSED, -EPROTO or -errno. */
int agent_vsock_read_ok(int fd, int64_t deadline);
/* A non-blocking stream connected to the hybrid-vsock socket at path, or a negative errno. */
int agent_vsock_dial(const char *path, char *err, size_t err_len);
/* "CONNECT <port>\n" and the stream's first bytes (may be none) in one write. */
int agent_vsock_send_connect(int fd, uint32_t port, const uint8_t *first, size_t len,
			     int64_t deadline);
/* What a failed CONNECT (r < 0) means, for a person. */
void agent_vsock_connect_error(int r, const char *path, uint32_t port, char *err, size_t err_len);

#endif
