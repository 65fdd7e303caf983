/*
 * The native harness for the agent's tests (test_agent.c, test_agent_setup.c): a busybox
 * rootfs built once per test binary, and per test an agent core in a forked child that
 * unshares its mount namespace and makes / private first (nothing it mounts reaches the host),
 * serving two Unix sockets, with its run directory and cgroup root in temporary places. The
 * host side is the real client (runtime/agent_client.h).
 */
#ifndef STRATUS_TEST_AGENT_HARNESS_H
#define STRATUS_TEST_AGENT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent_client.h"

#define TIMEOUT_MS 20000

struct harness {
	char dir[64], control[128], stdio[128], run[128];
	pid_t agent;
	struct agent_client c;
};

/* The rootfs all containers use, and the test's cgroup root ("" without cgroup v2). */
extern char test_rootfs[64];
extern char test_cgroup_root[1100];
/* Set before harness_setup: the agent runs chrooted, where pivot_root fails as in an initramfs. */
extern bool harness_chroot;
/*
 * Set before harness_setup: the agent is set up as in a VM (agent_prepare), in a network
 * namespace of its own that has only lo, as the guest has.
 */
extern bool harness_vm;
/* Set before harness_setup: runs in each CREATE's child first (agent_set_setup_hook). */
extern void (*harness_setup_hook)(const char *container_id);
/* Set before harness_setup: MOUNT_SHARE mounts this instead of virtiofs (agent_set_share_fstype). */
extern const char *harness_share_fstype;

int rootfs_setup(void **state);
int rootfs_teardown(void **state);
int harness_setup(void **state);
int harness_teardown(void **state);

int unix_connect(const char *path);
void host_connect(struct harness *h);

/* The stdio port without the hybrid-vsock CONNECT line: attach, then a blocking raw fd. */
int stream_open(struct harness *h, const char *cid, const char *eid, enum agent_stream s);

#define NS_DEFAULT                                                                      \
	"[{\"type\": \"mount\"}, {\"type\": \"pid\"}, {\"type\": \"uts\"}, {\"type\": " \
	"\"ipc\"}]"
#define NS_NO_PID "[{\"type\": \"mount\"}]"

/* CREATE on the busybox rootfs with /proc mounted: 0 or the agent's -errno (h->c.err). */
int create_ns(struct harness *h, const char *cid, uint32_t stdio, const char *process,
	      const char *namespaces);
int create(struct harness *h, const char *cid, uint32_t stdio, const char *process);
/* CREATE with a whole config.json, rootfs kind DIR on test_rootfs, and mounts. */
int create_config(struct harness *h, const char *cid, uint32_t stdio, const char *config,
		  const struct agent_mount *mounts, uint32_t nmounts);
int exec(struct harness *h, const char *cid, const char *eid, uint32_t stdio, const char *process);
void run(struct harness *h, const char *cid, uint32_t stdio, const char *process);
/* Wait for the exit, acknowledge it, and return it as a shell would: 128+N for a signal. */
int wait_status(struct harness *h, const char *cid, const char *eid);
char *read_all(int fd, size_t *len);
/* Run config as container cid with stdout captured: its output, and its status in *status. */
char *run_config(struct harness *h, const char *cid, const char *config,
		 const struct agent_mount *mounts, uint32_t n, int *status);
/* Fail unless out contains line. */
void expect_line(const char *out, const char *line);

#define OUT AGENT_STDIO_BIT(AGENT_STREAM_STDOUT)
#define ERR AGENT_STDIO_BIT(AGENT_STREAM_STDERR)
#define IN  AGENT_STDIO_BIT(AGENT_STREAM_STDIN)
#define PTY AGENT_STDIO_BIT(AGENT_STREAM_PTY)
#define SH  "{\"args\": [\"sh\", \"-c\", \"%s\"], \"env\": [\"PATH=/usr/bin:/bin\"], \"cwd\": \"/\"}"

#endif
