/*
 * fs_process.c: a virtio-fs share served by a forked process, driven the way fs.c drives it
 * (no KVM: guest RAM is a MAP_SHARED buffer, the queue and irq eventfds plain eventfds).
 * The process answers a FUSE_INIT written into a ring, raises the interrupt and sets the
 * shared InterruptStatus; a reset is acknowledged; a bad ring is reported; a missing share
 * fails the start with the reason; a process that dies, is stopped or hangs is noticed,
 * killed and reaped (no zombie); and what a taken-over process sends back (short, long,
 * wrong version, unterminated or unprintable text) never gets further than a dropped message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/fuse.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include "devices/virtio/fs_process.h"
#include "memory.h"

#define RAM_GPA	 0x100000ULL
#define RAM_SIZE MIB(1)
#define QSIZE	 8
#define DESC	 (RAM_GPA + 0x0000)
#define AVAIL	 (RAM_GPA + 0x1000)
#define USED	 (RAM_GPA + 0x2000)
#define REQ	 (RAM_GPA + 0x3000)
#define REPLY	 (RAM_GPA + 0x4000)

struct fixture {
	uint8_t *ram;
	struct vm_mem mem;
	char share[64];
	int irq_fd, queue_fds[2];
	struct fs_process_config config;
	struct fs_process proc;
	struct virtq queues[2];
	uint16_t avail_idx;
};

static void *gpa(struct fixture *f, uint64_t addr)
{
	return f->ram + (addr - RAM_GPA);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct error err = { 0 };
	unsigned int q;

	assert_non_null(f);
	f->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(f->ram != MAP_FAILED);
	vm_mem_init(&f->mem);
	assert_int_equal(vm_mem_add_region(&f->mem, RAM_GPA, RAM_SIZE, f->ram, &err), 0);
	snprintf(f->share, sizeof(f->share), "/tmp/stratus-fsproc-XXXXXX");
	assert_non_null(mkdtemp(f->share));
	f->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (q = 0; q < 2; q++) {
		f->queue_fds[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(f->queue_fds[q] >= 0);
		/* What the transport keeps: the driver's ring addresses (queue 1 only). */
		f->queues[q].size = QSIZE;
		f->queues[q].desc_gpa = DESC;
		f->queues[q].avail_gpa = AVAIL;
		f->queues[q].used_gpa = USED;
		f->queues[q].ready = q == 1;
	}
	f->config = (struct fs_process_config){
		.name = "fsX",
		.server = { .name = "fsX", .root = f->share },
		.mem = &f->mem,
		.irq_fd = f->irq_fd,
		.queue_fds = { f->queue_fds[0], f->queue_fds[1] },
		.queue_max_size = { 1024, 1024 },
		.nr_queues = 2,
		.seccomp = SECCOMP_KILL,
	};
	*state = f;
	return 0;
}

static void assert_no_child(void)
{
	int status;

	assert_int_equal(waitpid(-1, &status, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fs_process_destroy(&f->proc);
	assert_no_child();
	close(f->irq_fd);
	close(f->queue_fds[0]);
	close(f->queue_fds[1]);
	rmdir(f->share);
	munmap(f->ram, RAM_SIZE);
	free(f);
	return 0;
}

static void start(struct fixture *f)
{
	struct error err = { 0 };

	assert_int_equal(fs_process_start(&f->proc, &f->config, &err), 0);
	assert_true(f->proc.pid > 0);
	assert_non_null(f->proc.isr);
}

/* A FUSE_INIT in one chain (request, then a writable reply buffer), made available. */
static void post_init(struct fixture *f, uint64_t reply_gpa)
{
	struct vring_desc *desc = gpa(f, DESC);
	struct vring_avail *avail = gpa(f, AVAIL);
	struct fuse_in_header *in = gpa(f, REQ);
	struct fuse_init_in *init = (struct fuse_init_in *)(in + 1);
	uint16_t head = (f->avail_idx * 2) % QSIZE;

	memset(in, 0, sizeof(*in) + sizeof(*init));
	in->len = sizeof(*in) + sizeof(*init);
	in->opcode = FUSE_INIT;
	in->unique = 1 + f->avail_idx;
	init->major = FUSE_KERNEL_VERSION;
	init->minor = 31;
	desc[head] = (struct vring_desc){ REQ, in->len, VRING_DESC_F_NEXT, head + 1 };
	desc[head + 1] = (struct vring_desc){ reply_gpa, 4096, VRING_DESC_F_WRITE, 0 };
	avail->ring[f->avail_idx % QSIZE] = head;
	__atomic_store_n(&avail->idx, ++f->avail_idx, __ATOMIC_RELEASE);
}

static void kick(struct fixture *f, unsigned int q)
{
	uint64_t one = 1;

	assert_int_equal(write(f->queue_fds[q], &one, sizeof(one)), sizeof(one));
}

/* Wait up to 10 s for fd to be readable. */
static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 10000) == 1;
}

static uint16_t used_idx(struct fixture *f)
{
	struct vring_used *used = gpa(f, USED);

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

static void test_serves_a_request(void **state)
{
	struct fixture *f = *state;
	struct vring_used *used = gpa(f, USED);
	struct fuse_out_header *out = gpa(f, REPLY);
	uint64_t count;

	start(f);
	post_init(f, REPLY); /* before DRIVER_OK: served once the queues are handed over */
	assert_int_equal(fs_process_send_queues(&f->proc, 1ULL << VIRTIO_F_VERSION_1, f->queues, 2),
			 0);
	assert_true(readable(f->irq_fd));
	assert_int_equal(read(f->irq_fd, &count, sizeof(count)), sizeof(count));
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(used->ring[0].id, 0);
	assert_true(used->ring[0].len >= sizeof(*out) + FUSE_COMPAT_22_INIT_OUT_SIZE);
	assert_int_equal(out->error, 0);
	assert_int_equal(out->unique, 1);
	assert_true(__atomic_load_n(f->proc.isr, __ATOMIC_SEQ_CST) & VIRTIO_MMIO_INT_VRING);

	/* A kick serves the next one. */
	post_init(f, REPLY + 0x1000);
	kick(f, 1);
	assert_true(readable(f->irq_fd));
	assert_int_equal(used_idx(f), 2);

	/* A reset is acknowledged; the rings are no longer looked at. */
	assert_int_equal(fs_process_reset(&f->proc), 0);
	post_init(f, REPLY);
	kick(f, 1);
	usleep(200 * 1000);
	assert_int_equal(used_idx(f), 2);
	fs_process_stop(&f->proc);
	assert_int_equal(f->proc.pid, 0); /* exited at the hang-up, reaped */
}

static unsigned int broken_calls, broken_queue;
static char broken_why[512];

static void on_broken(void *opaque, unsigned int q, const char *why)
{
	(void)opaque;
	broken_calls++;
	broken_queue = q;
	snprintf(broken_why, sizeof(broken_why), "%s", why);
}

static void test_bad_ring_is_reported(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *desc = gpa(f, DESC);
	struct vring_avail *avail = gpa(f, AVAIL);

	start(f);
	assert_int_equal(fs_process_send_queues(&f->proc, 1ULL << VIRTIO_F_VERSION_1, f->queues, 2),
			 0);
	desc[0] = (struct vring_desc){ RAM_GPA + RAM_SIZE, 64, 0, 0 }; /* outside RAM */
	avail->ring[0] = 0;
	__atomic_store_n(&avail->idx, 1, __ATOMIC_RELEASE);
	kick(f, 1);
	broken_calls = 0;
	assert_true(readable(f->proc.sock));
	assert_int_equal(fs_process_read_events(&f->proc, on_broken, NULL), 0);
	assert_int_equal(broken_calls, 1);
	assert_int_equal(broken_queue, 1);
	assert_true(strlen(broken_why) > 0);
	assert_false(f->proc.dead);
}

static void test_missing_share(void **state)
{
	struct fixture *f = *state;
	struct error err = { 0 };

	f->config.server.root = "/nonexistent/stratus-share";
	assert_true(fs_process_start(&f->proc, &f->config, &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/stratus-share"));
	assert_true(f->proc.dead);
	fs_process_stop(&f->proc); /* reaps it */
	assert_no_child();
}

static void test_death_is_noticed(void **state)
{
	struct fixture *f = *state;
	pid_t pid;

	start(f);
	pid = f->proc.pid;
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_true(readable(f->proc.sock));
	assert_int_equal(fs_process_read_events(&f->proc, on_broken, NULL), 1);
	assert_true(f->proc.dead);
	assert_true(readable(f->proc.pidfd));
	fs_process_reap(&f->proc);
	assert_int_equal(f->proc.pid, 0);
	assert_no_child();
	/* Nothing more is sent to it. */
	assert_int_equal(fs_process_send_queues(&f->proc, 0, f->queues, 2), -EIO);
	assert_int_equal(fs_process_reset(&f->proc), -EIO);
}

static void test_hung_process_is_killed(void **state)
{
	struct fixture *f = *state;
	int status;

	start(f);
	assert_int_equal(kill(f->proc.pid, SIGSTOP), 0);
	assert_int_equal(waitpid(f->proc.pid, &status, WUNTRACED), f->proc.pid);
	/* No answer within FS_PROCESS_RESET_TIMEOUT_MS: killed rather than waited for. */
	assert_int_equal(fs_process_reset(&f->proc), -EIO);
	assert_true(f->proc.dead);
	assert_true(readable(f->proc.pidfd));
	fs_process_reap(&f->proc);
	assert_int_equal(f->proc.pid, 0);
}

/* The VMM's side against a peer that sends anything at all (a taken-over process). */
static void test_hostile_messages(void **state)
{
	struct fixture *f = *state;
	struct fs_process_msg msg = { .version = FS_PROCESS_VERSION, .type = FS_MSG_BROKEN };
	char big[sizeof(msg) + 64];
	int sv[2];

	(void)f;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	memset(&f->proc, 0, sizeof(f->proc));
	f->proc.name = "fsX";
	f->proc.sock = sv[0];
	f->proc.pidfd = -1;
	broken_calls = 0;
	assert_int_equal(send(sv[1], &msg, 10, 0), 10); /* short */
	memset(big, 'x', sizeof(big));
	assert_int_equal(send(sv[1], big, sizeof(big), 0), (ssize_t)sizeof(big)); /* long */
	msg.version = 99;
	assert_int_equal(send(sv[1], &msg, sizeof(msg), 0), (ssize_t)sizeof(msg)); /* version */
	msg.version = FS_PROCESS_VERSION;
	msg.type = 0xdead;
	assert_int_equal(send(sv[1], &msg, sizeof(msg), 0), (ssize_t)sizeof(msg)); /* type */
	assert_int_equal(fs_process_read_events(&f->proc, on_broken, NULL), 0);
	assert_int_equal(broken_calls, 0);
	/* Unterminated, unprintable text: cut and cleaned; the queue index is passed as is. */
	msg.type = FS_MSG_BROKEN;
	msg.queue = 77;
	memset(msg.text, '\n', sizeof(msg.text));
	assert_int_equal(send(sv[1], &msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
	assert_int_equal(fs_process_read_events(&f->proc, on_broken, NULL), 0);
	assert_int_equal(broken_calls, 1);
	assert_int_equal(broken_queue, 77);
	assert_int_equal(strlen(broken_why), sizeof(msg.text) - 1);
	assert_null(strchr(broken_why, '\n'));
	/* A hang-up: dead. */
	close(sv[1]);
	assert_int_equal(fs_process_read_events(&f->proc, on_broken, NULL), 1);
	assert_true(f->proc.dead);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_serves_a_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ring_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_death_is_noticed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_process_is_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_messages, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
