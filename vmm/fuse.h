/*
 * The FUSE passthrough server behind virtio-fs (devices/virtio/fs.c): it answers the FUSE
 * requests a Linux guest sends (include/uapi/linux/fuse.h, protocol 7.31 and later) from
 * one host directory, the share's root. Transport-free: a request is the device-readable
 * buffers of a descriptor chain, the reply goes into its device-writable buffers, so the
 * unit tests and the fuzzer drive it the way the device does. Every byte of a request is
 * hostile; nothing the guest names can reach outside the root (docs/virtio-fs.md).
 *
 * Not thread-safe: one thread (the device's I/O thread) serves a server at a time.
 */
#ifndef STRATUS_VMM_FUSE_H
#define STRATUS_VMM_FUSE_H

#include <stdint.h>
#include <sys/uio.h>

#include "error.h"

enum fuse_cache {
	FUSE_CACHE_AUTO,   /* 1 s timeouts, the guest drops cached data when mtime changes */
	FUSE_CACHE_NONE,   /* no timeouts, FOPEN_DIRECT_IO: every access asks the host */
	FUSE_CACHE_ALWAYS, /* 1 day timeouts, FOPEN_KEEP_CACHE: the guest owns the share */
};

#define FUSE_SERVER_MAX_WRITE	    MIB(1) /* max_write and the largest READ we serve */
#define FUSE_SERVER_IOV_MAX	    1024   /* buffers per request (the queue size) */
#define FUSE_SERVER_DEFAULT_NODES   16384
#define FUSE_SERVER_DEFAULT_HANDLES 4096

struct fuse_server_config {
	const char *name; /* for log lines: the device id */
	const char *root; /* the shared directory */
	bool readonly;
	enum fuse_cache cache;
	/*
	 * 0: the defaults. Both are clamped to RLIMIT_NOFILE less a reserve for the VMM, a
	 * budget every share of the process draws on together (ENFILE/EMFILE past it).
	 */
	unsigned int max_nodes;	  /* inodes the guest knows (an O_PATH fd each) */
	unsigned int max_handles; /* open files and directories (an fd each) */
};

struct fuse_server_stats {
	uint64_t requests, errors;
	unsigned int nodes, handles; /* in use now */
	unsigned int max_nodes, max_handles;
};

struct fuse_server;

/* Open the root (a directory; -ENOTDIR otherwise) and size the tables; err says what failed. */
int fuse_server_new(const struct fuse_server_config *config, struct fuse_server **out,
		    struct error *err);
void fuse_server_destroy(struct fuse_server *s);

/*
 * Serve one request: req[0 .. nr_req) holds req_len bytes from the guest (header, arguments,
 * WRITE data), reply[0 .. nr_reply) has room for reply_len bytes. Returns the number of
 * bytes written into reply: 0 for requests that take no answer (FORGET) or a reply area too
 * small for even a header. Never fails otherwise: a bad request gets a FUSE error reply.
 */
uint32_t fuse_server_handle(struct fuse_server *s, const struct iovec *req, unsigned int nr_req,
			    uint64_t req_len, const struct iovec *reply, unsigned int nr_reply,
			    uint64_t reply_len);

/* The driver reset the device: forget every inode and handle, expect a new INIT. */
void fuse_server_reset(struct fuse_server *s);

void fuse_server_get_stats(const struct fuse_server *s, struct fuse_server_stats *out);

#endif
