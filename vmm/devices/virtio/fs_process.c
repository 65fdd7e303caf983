/*
 * The process that serves one virtio-fs share (see fs_process.h and docs/virtio-fs.md,
 * "Process"): how the VMM forks it, talks to it and reaps it, and the process's own life:
 * give up what it does not need (descriptors, capabilities, syscalls), then serve the queues
 * from its event loop until the VMM hangs up.
 *
 * Order in the process, before it serves anything: PR_SET_PDEATHSIG(SIGKILL) and a check
 * that the VMM is still there, its name ("fs-<id>"), every descriptor closed but the socket,
 * the eventfds and the log (stdin and stdout onto /dev/null), RLIMIT_CORE 0, the FUSE server
 * (it opens the share and this process's /proc/self/fd), a jail of its own where it may (an
 * empty root but /proc), the VMM's -runas ids if any, every capability dropped but the file
 * ones the server uses,
 * no_new_privs, then its seccomp list (SECCOMP_PROC_FS). Only then does it answer
 * FS_MSG_READY.
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cap-ng.h>
#include <linux/virtio_mmio.h>

#include "../../event_loop.h"
#include "../../log.h"
#include "fs_process.h"

#define FS_PROCESS_START_TIMEOUT_MS 30000 /* fork, open the share: no guest involved */
#define FS_PROCESS_STOP_TIMEOUT_MS  2000  /* after the hang-up, before SIGKILL */
#define FS_PROCESS_KILL_TIMEOUT_MS  5000  /* after SIGKILL (a syscall stuck in the kernel) */
#define FS_PROCESS_MAX_PER_ROUND    MIB(32)

_Static_assert(sizeof(struct fs_process_msg) == 16 + 8 + FS_PROCESS_MAX_QUEUES * 32 + 256,
	       "struct fs_process_msg has no hidden padding");

bool fs_serve_queue(struct fuse_server *server, struct virtq *vq, struct iovec *iov,
		    unsigned int cap, uint64_t max_bytes)
{
	struct virtq_chain chain;
	unsigned int chains = 0;
	uint64_t bytes = 0;

	virtq_chain_init(&chain, iov, cap);
	while (chains < vq->size && bytes < max_bytes && virtq_pop_chain(vq, &chain) > 0) {
		uint32_t len = fuse_server_handle(server, chain.out, chain.nr_out, chain.out_len,
						  chain.in, chain.nr_in, chain.in_len);

		virtq_push_used(vq, chain.head, len);
		bytes += chain.out_len + len;
		chains++;
	}
	return !vq->broken && (chains >= vq->size || bytes >= max_bytes);
}

static int fs_msg_send(int sock, uint32_t type, uint32_t seq, uint32_t queue, const char *text)
{
	struct fs_process_msg msg = {
		.version = FS_PROCESS_VERSION, .type = type, .seq = seq, .queue = queue
	};

	if (text)
		snprintf(msg.text, sizeof(msg.text), "%s", text);
	return send(sock, &msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT) == sizeof(msg) ? 0 : -EIO;
}

/*
 * One message, without blocking: 1 with *msg filled, 0 if none is waiting, -EPIPE if the
 * peer hung up, -EBADMSG for anything not exactly one message of our version (dropped).
 */
static int fs_msg_recv(int sock, struct fs_process_msg *msg)
{
	union {
		struct fs_process_msg msg;
		char raw[sizeof(struct fs_process_msg) + 1]; /* a longer one shows as such */
	} in;
	ssize_t n = read(sock, &in, sizeof(in));

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -EPIPE;
	if (n == 0)
		return -EPIPE;
	if ((size_t)n != sizeof(in.msg) || in.msg.version != FS_PROCESS_VERSION)
		return -EBADMSG;
	*msg = in.msg;
	/* Text from the other side goes into our log: bounded, printable. */
	msg->text[sizeof(msg->text) - 1] = '\0';
	for (char *c = msg->text; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	return 1;
}

/* The process's side. */

struct fs_child;

struct fs_child_queue {
	struct fs_child *child;
	unsigned int index;
};

struct fs_child {
	const struct fs_process_config *config;
	struct fs_child_queue notifiers[FS_PROCESS_MAX_QUEUES];
	struct fuse_server *server;
	struct event_loop *loop;
	int sock;
	uint32_t *isr;
	bool active; /* between FS_MSG_QUEUES and FS_MSG_RESET */
	struct virtq queues[FS_PROCESS_MAX_QUEUES];
	struct iovec iov[FUSE_SERVER_IOV_MAX];
};

static void fs_child_interrupt(struct fs_child *c)
{
	uint64_t one = 1;

	__atomic_fetch_or(c->isr, VIRTIO_MMIO_INT_VRING, __ATOMIC_SEQ_CST);
	if (write(c->config->irq_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_once(LOG_WARN, "%s: cannot raise an interrupt: %s", c->config->name,
			 strerror(errno));
}

static void fs_child_serve(struct fs_child *c, unsigned int q)
{
	struct virtq *vq = &c->queues[q];
	uint64_t one = 1;
	bool more;

	if (!c->active || !vq->ready || vq->broken)
		return;
	more = fs_serve_queue(c->server, vq, c->iov, ARRAY_SIZE(c->iov), FS_PROCESS_MAX_PER_ROUND);
	if (virtq_should_notify(vq))
		fs_child_interrupt(c);
	if (vq->broken)
		fs_msg_send(c->sock, FS_MSG_BROKEN, 0, q, vq->error);
	else if (more && write(c->config->queue_fds[q], &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_once(LOG_WARN, "%s: cannot kick a queue: %s", c->config->name, strerror(errno));
}

static void fs_child_on_queue(void *arg, uint32_t events)
{
	struct fs_child_queue *n = arg;
	struct fs_child *c = n->child;
	uint64_t count;

	(void)events;
	if (read(c->config->queue_fds[n->index], &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_once(LOG_WARN, "%s: queue notification: %s", c->config->name, strerror(errno));
	fs_child_serve(c, n->index);
}

static void fs_child_take_queues(struct fs_child *c, const struct fs_process_msg *msg)
{
	unsigned int q;

	c->active = true;
	for (q = 0; q < c->config->nr_queues; q++) {
		const struct fs_process_queue *in = &msg->queues[q];
		struct virtq *vq = &c->queues[q];

		virtq_reset(vq);
		if (!in->ready)
			continue;
		vq->size = in->size <= vq->max_size ? in->size : 0;
		vq->desc_gpa = in->desc_gpa;
		vq->avail_gpa = in->avail_gpa;
		vq->used_gpa = in->used_gpa;
		/* The VMM checked them too; the rings are checked again against our mapping. */
		if (virtq_enable(vq, msg->features) < 0)
			fs_msg_send(c->sock, FS_MSG_BROKEN, 0, q, vq->error);
	}
	/* Buffers made available before DRIVER_OK, or before this message: look now. */
	for (q = 0; q < c->config->nr_queues; q++)
		fs_child_serve(c, q);
}

static void fs_child_on_sock(void *arg, uint32_t events)
{
	struct fs_child *c = arg;
	struct fs_process_msg msg;
	unsigned int q;
	int r;

	(void)events;
	while ((r = fs_msg_recv(c->sock, &msg)) != 0) {
		if (r == -EPIPE) {
			event_loop_stop(c->loop); /* the VMM is going away */
			return;
		}
		if (r < 0)
			continue;
		if (msg.type == FS_MSG_QUEUES) {
			fs_child_take_queues(c, &msg);
		} else if (msg.type == FS_MSG_RESET) {
			c->active = false;
			for (q = 0; q < c->config->nr_queues; q++)
				virtq_reset(&c->queues[q]);
			fs_msg_send(c->sock, FS_MSG_ACK, msg.seq, 0, NULL);
			/* A new driver starts with INIT and no inodes: close them all. */
			fuse_server_reset(c->server);
		}
	}
}

static int fs_fd_compare(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Close every descriptor but the kept ones; stdin and stdout become /dev/null. */
static void fs_child_close_fds(struct fs_child *c)
{
	const struct fs_process_config *cfg = c->config;
	int keep[FS_PROCESS_MAX_QUEUES + 6], null_fd;
	unsigned int n = 0, i, q;
	int next = 3;

	keep[n++] = c->sock;
	keep[n++] = cfg->irq_fd;
	for (q = 0; q < cfg->nr_queues; q++)
		keep[n++] = cfg->queue_fds[q];
	if (log_fd() > 2)
		keep[n++] = log_fd();
	qsort(keep, n, sizeof(keep[0]), fs_fd_compare);
	for (i = 0; i < n; i++) {
		if (keep[i] > next)
			close_range(next, keep[i] - 1, 0);
		if (keep[i] + 1 > next)
			next = keep[i] + 1;
	}
	close_range(next, ~0U, 0);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		dup2(null_fd, 0);
		dup2(null_fd, 1);
		if (null_fd > 2)
			close(null_fd);
	}
}

/*
 * What serving a share as its owner needs, when we have it: giving inodes to the guest's
 * users (CHOWN), reaching every file of the share (DAC_OVERRIDE, DAC_READ_SEARCH),
 * chmod/utimes/xattrs of others' files (FOWNER), keeping setgid bits (FSETID), device nodes
 * and whiteouts (MKNOD). Everything else goes, the bounding set too where we may.
 */
static void fs_child_limit_caps(const struct fs_child *c)
{
	static const unsigned int keep[] = { CAP_CHOWN,	 CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
					     CAP_FOWNER, CAP_FSETID,	   CAP_MKNOD };
	bool have[ARRAY_SIZE(keep)];
	unsigned int i;

	capng_get_caps_process();
	for (i = 0; i < ARRAY_SIZE(keep); i++)
		have[i] = capng_have_capability(CAPNG_PERMITTED, keep[i]);
	capng_clear(CAPNG_SELECT_ALL);
	for (i = 0; i < ARRAY_SIZE(keep); i++)
		if (have[i])
			capng_update(CAPNG_ADD,
				     CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
				     keep[i]);
	if (capng_apply(CAPNG_SELECT_ALL) < 0 && capng_apply(CAPNG_SELECT_CAPS) < 0)
		log_warn("%s: cannot limit the process's capabilities", c->config->name);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

/*
 * A root of its own, where the process may make one (CAP_SYS_ADMIN: a VMM started as root):
 * new mount, network, IPC and UTS namespaces; an empty tmpfs mounted over the share's path
 * (in this namespace only: the server holds the share open already) becomes the root, with
 * only /proc bound in (the server names O_PATH fds /proc/self/fd/N for the xattr calls); the
 * old root is detached. So a process taken over by the guest finds no host files by path.
 * Without the privilege, or if a step fails, it serves unjailed (logged): the filter and the
 * capability set still hold.
 */
static void fs_child_jail(const struct fs_child *c)
{
	const char *dir = c->config->server.root;
	const char *step;

	capng_get_caps_process();
	if (!capng_have_capability(CAPNG_EFFECTIVE, CAP_SYS_ADMIN))
		return;
	step = "unshare";
	if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		goto fail;
	step = "make / private";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		goto fail;
	step = "tmpfs";
	if (mount("stratus-fs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=16k,mode=0755") < 0)
		goto fail;
	step = "bind /proc";
	if (chdir(dir) < 0 || mkdir("proc", 0555) < 0 ||
	    mount("/proc", "proc", NULL, MS_BIND | MS_REC, NULL) < 0)
		goto fail;
	step = "pivot_root";
	if (syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		goto fail;
	mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
	      NULL);
	return;
fail:
	log_warn("%s: the share's process has no jail of its own: %s: %s", c->config->name, step,
		 strerror(errno));
}

static int fs_child_setup(struct fs_child *c, pid_t vmm, struct error *err)
{
	const struct fs_process_config *cfg = c->config;
	struct rlimit none = { 0, 0 };
	char name[16];
	unsigned int q;
	int r;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != vmm)
		return error_set(err, -ESRCH, "%s: the VMM is gone", cfg->name);
	snprintf(name, sizeof(name), "fs-%.12s", cfg->name); /* 15 characters at most */
	prctl(PR_SET_NAME, name, 0, 0, 0);
	fs_child_close_fds(c);
	if (setrlimit(RLIMIT_CORE, &none) < 0) /* a core would hold guest memory */
		return error_set_errno(err, -errno, "%s: setrlimit(RLIMIT_CORE)", cfg->name);
	r = fuse_server_new(&cfg->server, &c->server, err);
	if (r < 0)
		return r;
	r = event_loop_create(&c->loop);
	if (r < 0)
		return error_set_errno(err, r, "%s: event loop", cfg->name);
	r = event_loop_add(c->loop, c->sock, EPOLLIN, fs_child_on_sock, c);
	for (q = 0; r == 0 && q < cfg->nr_queues; q++) {
		virtq_init(&c->queues[q], cfg->mem, cfg->queue_max_size[q]);
		c->notifiers[q] = (struct fs_child_queue){ .child = c, .index = q };
		r = event_loop_add(c->loop, cfg->queue_fds[q], EPOLLIN, fs_child_on_queue,
				   &c->notifiers[q]);
	}
	if (r < 0)
		return error_set_errno(err, r, "%s: event loop", cfg->name);
	fs_child_jail(c);
	/* -runas: the VMM's ids (every capability goes with uid 0), as the VMM will. */
	if (cfg->runas && (setgroups(0, NULL) < 0 || setresgid(cfg->gid, cfg->gid, cfg->gid) < 0 ||
			   setresuid(cfg->uid, cfg->uid, cfg->uid) < 0))
		return error_set_errno(err, -errno, "%s: -runas %u:%u", cfg->name,
				       (unsigned int)cfg->uid, (unsigned int)cfg->gid);
	fs_child_limit_caps(c);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return error_set_errno(err, -errno, "%s: prctl(PR_SET_NO_NEW_PRIVS)", cfg->name);
	/* Before the first request: the process's allow-list (seccomp.c, "virtio-fs"). */
	return seccomp_install(SECCOMP_PROC_FS, cfg->seccomp, err);
}

static _Noreturn void fs_child_main(const struct fs_process_config *config, int sock, uint32_t *isr,
				    pid_t vmm)
{
	static struct fs_child c; /* the iovecs are too big for the stack */
	struct error err = { 0 };
	int r;

	c.config = config;
	c.sock = sock;
	c.isr = isr;
	if (fs_child_setup(&c, vmm, &err) < 0) {
		fs_msg_send(sock, FS_MSG_ERROR, 0, 0, err.msg);
		_exit(1);
	}
	fs_msg_send(sock, FS_MSG_READY, 0, 0, NULL);
	seccomp_test_hook(SECCOMP_PROC_FS);
	r = event_loop_run(c.loop);
	if (r < 0)
		log_error("%s: event loop: %s", config->name, strerror(-r));
	_exit(r < 0);
}

/* The VMM's side. */

static int64_t fs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is readable or the deadline passes: 1, or 0 at the deadline. */
static int fs_wait_readable(int fd, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t left;
	int r;

	while ((left = deadline - fs_now_ms()) > 0) {
		r = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1; /* let the read say what is wrong */
	}
	return 0;
}

/* SIGKILL, through tgkill: the process is single-threaded, its pid is its only tid. */
static void fs_process_kill(struct fs_process *p)
{
	p->dead = true;
	if (p->pid > 0)
		syscall(SYS_tgkill, p->pid, p->pid, SIGKILL);
}

static int fs_process_wait_ready(struct fs_process *p, struct error *err)
{
	int64_t deadline = fs_now_ms() + FS_PROCESS_START_TIMEOUT_MS;
	struct fs_process_msg msg;
	int r;

	for (;;) {
		if (!fs_wait_readable(p->sock, deadline))
			return error_set(err, -ETIMEDOUT, "%s: the share's process did not start",
					 p->name);
		r = fs_msg_recv(p->sock, &msg);
		if (r == -EPIPE)
			return error_set(err, -EIO, "%s: the share's process exited at start",
					 p->name);
		if (r == 1 && msg.type == FS_MSG_ERROR)
			return error_set(err, -EIO, "%s", msg.text);
		if (r == 1 && msg.type == FS_MSG_READY)
			return 0;
	}
}

int fs_process_start(struct fs_process *p, const struct fs_process_config *config,
		     struct error *err)
{
	pid_t vmm = getpid();
	int sv[2], r;

	memset(p, 0, sizeof(*p));
	p->name = config->name;
	p->pidfd = p->sock = -1;
	p->isr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p->isr == MAP_FAILED) {
		p->isr = NULL;
		return error_set_errno(err, -errno, "%s: interrupt status page", p->name);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return error_set_errno(err, -errno, "%s: socketpair", p->name);
	p->sock = sv[0];
	p->pid = fork();
	if (p->pid < 0) {
		p->pid = 0;
		close(sv[1]);
		return error_set_errno(err, -errno, "%s: cannot fork the share's process", p->name);
	}
	if (p->pid == 0)
		fs_child_main(config, sv[1], p->isr, vmm);
	close(sv[1]);
	p->pidfd = syscall(SYS_pidfd_open, p->pid, 0);
	if (p->pidfd < 0) {
		r = error_set_errno(err, -errno, "%s: pidfd_open", p->name);
		fs_process_kill(p);
		return r;
	}
	r = fs_process_wait_ready(p, err);
	if (r < 0) {
		fs_process_kill(p);
		return r;
	}
	log_debug("%s: served by process %d", p->name, (int)p->pid);
	return 0;
}

int fs_process_send_queues(struct fs_process *p, uint64_t features, const struct virtq *queues,
			   unsigned int nr)
{
	struct fs_process_msg msg = { .version = FS_PROCESS_VERSION,
				      .type = FS_MSG_QUEUES,
				      .features = features };
	unsigned int q;

	if (p->dead)
		return -EIO;
	for (q = 0; q < nr && q < FS_PROCESS_MAX_QUEUES; q++) {
		msg.queues[q] = (struct fs_process_queue){
			.desc_gpa = queues[q].desc_gpa,
			.avail_gpa = queues[q].avail_gpa,
			.used_gpa = queues[q].used_gpa,
			.size = queues[q].size,
			.ready = queues[q].ready,
		};
	}
	if (send(p->sock, &msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof(msg)) {
		log_warn("%s: cannot reach the share's process: %s", p->name, strerror(errno));
		fs_process_kill(p);
		return -EIO;
	}
	return 0;
}

int fs_process_reset(struct fs_process *p)
{
	int64_t deadline = fs_now_ms() + FS_PROCESS_RESET_TIMEOUT_MS;
	struct fs_process_msg msg;
	int r;

	if (p->dead)
		return -EIO;
	if (fs_msg_send(p->sock, FS_MSG_RESET, ++p->seq, 0, NULL) < 0) {
		fs_process_kill(p);
		return -EIO;
	}
	while (fs_wait_readable(p->sock, deadline)) {
		r = fs_msg_recv(p->sock, &msg);
		if (r == -EPIPE)
			break;
		/* Reports on the rings being reset no longer matter. */
		if (r == 1 && msg.type == FS_MSG_ACK && msg.seq == p->seq)
			return 0;
	}
	log_warn("%s: the share's process did not let go of the queues: killed", p->name);
	fs_process_kill(p);
	return -EIO;
}

int fs_process_read_events(struct fs_process *p,
			   void (*broken)(void *opaque, unsigned int q, const char *why),
			   void *opaque)
{
	struct fs_process_msg msg;
	int r;

	while (!p->dead && (r = fs_msg_recv(p->sock, &msg)) != 0) {
		if (r == -EPIPE)
			fs_process_kill(p);
		else if (r == 1 && msg.type == FS_MSG_BROKEN)
			broken(opaque, msg.queue, msg.text);
		else
			log_once(LOG_WARN, "%s: unexpected message from the share's process",
				 p->name);
	}
	return p->dead;
}

void fs_process_reap(struct fs_process *p)
{
	siginfo_t info;

	if (p->pid <= 0)
		return;
	memset(&info, 0, sizeof(info));
	if (waitid(P_PID, p->pid, &info, WEXITED | WNOHANG) < 0 || info.si_pid != p->pid)
		return;
	if (info.si_code == CLD_EXITED)
		log_warn("%s: the share's process %d exited with status %d", p->name, (int)p->pid,
			 info.si_status);
	else
		log_warn("%s: the share's process %d was killed by signal %d (%s)", p->name,
			 (int)p->pid, info.si_status, strsignal(info.si_status));
	p->pid = 0;
	p->dead = true;
}

void fs_process_stop(struct fs_process *p)
{
	siginfo_t info;

	if (p->sock >= 0)
		close(p->sock); /* the process sees the hang-up and exits */
	p->sock = -1;
	if (p->pid > 0 && p->pidfd >= 0) {
		if (!fs_wait_readable(p->pidfd, fs_now_ms() + FS_PROCESS_STOP_TIMEOUT_MS)) {
			fs_process_kill(p);
			fs_wait_readable(p->pidfd, fs_now_ms() + FS_PROCESS_KILL_TIMEOUT_MS);
		}
		memset(&info, 0, sizeof(info));
		if (waitid(P_PID, p->pid, &info, WEXITED | WNOHANG) == 0 && info.si_pid == p->pid)
			p->pid = 0;
		else
			log_warn("%s: the share's process %d does not exit", p->name, (int)p->pid);
	}
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}

void fs_process_destroy(struct fs_process *p)
{
	fs_process_stop(p);
	if (p->isr)
		munmap(p->isr, 4096);
	p->isr = NULL;
}
