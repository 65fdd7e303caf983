/*
 * A virtio-fs share served by its own process (fs_process.c, docs/virtio-fs.md "Process"):
 * the VMM keeps the virtio-mmio transport (registers, status, configuration space); a process
 * forked while the VM is built runs the share's FUSE server over the queues, with its own
 * seccomp list and only the file capabilities it uses, so the VMM's own lists carry no
 * file-system syscalls and the VMM holds no capability.
 *
 * Shared between the two: guest RAM (MAP_SHARED, memory.h), the queues' notification eventfds
 * (KVM signals them), the irq eventfd (the process interrupts the guest itself), one page
 * holding InterruptStatus (the process ORs in VIRTIO_MMIO_INT_VRING before it writes the
 * irq eventfd, the vCPU reading the register sees it), and a SOCK_SEQPACKET socket pair for
 * the control messages below. The process serves a hostile guest and may be taken over:
 * the VMM checks every message it gets back and never waits for one without a deadline.
 */
#ifndef STRATUS_VMM_FS_PROCESS_H
#define STRATUS_VMM_FS_PROCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "../../error.h"
#include "../../fuse.h"
#include "../../seccomp.h"
#include "virtq.h"

#define FS_PROCESS_VERSION    1
#define FS_PROCESS_MAX_QUEUES 2

/* Every message has this one fixed size; anything else is refused. Little-endian host. */
enum fs_process_msg_type {
	FS_MSG_READY = 1, /* process -> VMM: serving (seccomp installed) */
	FS_MSG_ERROR,	  /* process -> VMM: could not start, text says why; then it exits */
	FS_MSG_QUEUES,	  /* VMM -> process: DRIVER_OK, the ready queues and the features */
	FS_MSG_RESET,	  /* VMM -> process: the driver reset the device; answer FS_MSG_ACK */
	FS_MSG_ACK,	  /* process -> VMM: seq of the FS_MSG_RESET done: no ring is in use */
	FS_MSG_BROKEN,	  /* process -> VMM: queue's chain or ring was bad, text says why */
};

struct fs_process_queue {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size;
	uint8_t ready, pad[5];
};

struct fs_process_msg {
	uint32_t version, type, seq, queue;
	uint64_t features;
	struct fs_process_queue queues[FS_PROCESS_MAX_QUEUES];
	char text[256]; /* NUL-terminated, printable (checked on receipt) */
};

/* What the process needs; everything is inherited across fork. */
struct fs_process_config {
	const char *name; /* the device id: "fs-<id>" as the process's name */
	struct fuse_server_config server;
	const struct vm_mem *mem;
	int irq_fd;
	int queue_fds[FS_PROCESS_MAX_QUEUES];
	uint16_t queue_max_size[FS_PROCESS_MAX_QUEUES];
	unsigned int nr_queues;
	enum seccomp_mode seccomp;
	bool runas; /* switch to these ids (the VMM's -runas) before serving */
	uid_t uid;
	gid_t gid;
};

/* The VMM's side of one process. */
struct fs_process {
	const char *name;
	pid_t pid;
	int pidfd; /* readable once the process has exited */
	int sock;
	uint32_t *isr; /* the shared page holding InterruptStatus */
	uint32_t seq;
	bool dead; /* exited, killed, or not answering: nothing more is sent */
};

/*
 * Fork the process and wait (bounded) until it serves, or report why it cannot (e.g. the
 * share's directory). Call while the VMM is single-threaded and before its filters.
 */
int fs_process_start(struct fs_process *p, const struct fs_process_config *config,
		     struct error *err);

/* DRIVER_OK: hand the ready queues over (no wait). -EIO if the process is gone. */
int fs_process_send_queues(struct fs_process *p, uint64_t features, const struct virtq *queues,
			   unsigned int nr);

/*
 * The driver reset the device (a vCPU thread, device lock held): wait at most
 * FS_PROCESS_RESET_TIMEOUT_MS for the process to let go of the rings; one that does not
 * answer is killed. 0, or -EIO if the process is (now) gone.
 */
#define FS_PROCESS_RESET_TIMEOUT_MS 5000
int fs_process_reset(struct fs_process *p);

/*
 * The socket became readable (main loop, device lock held): read what the process sent. A
 * broken queue is passed to broken(); 1 if the process hung up (it is killed and marked
 * dead), else 0.
 */
int fs_process_read_events(struct fs_process *p,
			   void (*broken)(void *opaque, unsigned int q, const char *why),
			   void *opaque);

/* The pidfd became readable: reap the process, log how it ended. */
void fs_process_reap(struct fs_process *p);

/*
 * The VM is going away: close the socket, let the process exit (or kill it), reap it. The
 * InterruptStatus page stays until fs_process_destroy() (the transport still points at it).
 */
void fs_process_stop(struct fs_process *p);
void fs_process_destroy(struct fs_process *p);

/*
 * Serve up to a queue's worth of chains or max_bytes from vq with server (the VMM's
 * in-process device and the process share this). Returns true if there may be more.
 */
bool fs_serve_queue(struct fuse_server *server, struct virtq *vq, struct iovec *iov,
		    unsigned int cap, uint64_t max_bytes);

#endif
