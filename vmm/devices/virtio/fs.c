/*
 * virtio-fs (virtio 1.2 §5.11): device ID 26, a host directory shared with the guest,
 * served by the FUSE passthrough server in this process (fuse.h); no virtiofsd. One device
 * per share: `-device virtio-fs-device,id=ID,tag=TAG,source=DIR[,readonly=on]
 * [,cache=auto|none|always]`, mounted in the guest with `mount -t virtiofs TAG DIR`.
 *
 * Configuration (§5.11.4): tag[36] (not NUL-terminated when 36 bytes long) and
 * num_request_queues (1). Queues (§5.11.2): 0 is hiprio (FORGET), 1 the request queue;
 * both carry FUSE requests the same way (§5.11.6): the device-readable part is the FUSE
 * request (in header, arguments, WRITE data), the device-writable part takes the reply
 * (out header, data). The used length is the reply's size; a FORGET has none.
 *
 * Threads: each device serves its queues on its own I/O thread (an event loop watching the
 * queues' eventfds), so a slow host file system stalls only the guest's accesses to that
 * share, never the console, vsock or QMP on the main loop. One notification serves at most
 * a queue's worth of requests or FS_MAX_PER_ROUND bytes before coming back for the rest.
 * The unit tests build the device with virtio_fs_new() and no thread: the fake driver runs
 * the queue handler itself.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <endian.h>
#include <linux/capability.h>
#include <linux/virtio_fs.h>

#include "../../device.h"
#include "../../fuse.h"
#include "../../log.h"
#include "../../seccomp.h"
#include "../../vm.h"
#include "mmio.h"
#include "virtio.h"

#ifndef VIRTIO_ID_FS
#define VIRTIO_ID_FS 26
#endif
#define FS_QUEUE_SIZE	 1024 /* a 1 MiB READ/WRITE is 256 pages + headers, direct or not */
#define FS_NR_QUEUES	 2    /* hiprio + one request queue */
#define FS_MAX_PER_ROUND MIB(32)

struct virtio_fs {
	struct virtio_device dev;
	char name[VM_DEVICE_ID_MAX + 16];
	struct virtio_fs_config config;
	struct fuse_server *server;
	struct iovec iov[FS_QUEUE_SIZE];
	struct event_loop *loop; /* the I/O thread's, NULL without one */
	pthread_t thread;
	bool thread_running;
	struct vm *vm;		   /* NULL for virtio_fs_new() devices (no thread) */
	enum seccomp_mode seccomp; /* the I/O thread's filter (vm_config.seccomp) */
	bool reset_pending;	   /* the driver reset the device: forget all, on our thread */
};

static void fs_queue_notify(struct virtio_device *dev, unsigned int q)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);
	struct virtq *vq = &dev->queues[q];
	struct virtq_chain chain;
	unsigned int chains = 0;
	uint64_t bytes = 0;

	if (fs->reset_pending) {
		fuse_server_reset(fs->server); /* closes every node and handle */
		fs->reset_pending = false;
	}
	virtq_chain_init(&chain, fs->iov, ARRAY_SIZE(fs->iov));
	while (chains < vq->size && bytes < FS_MAX_PER_ROUND && virtq_pop_chain(vq, &chain) > 0) {
		uint32_t len =
			fuse_server_handle(fs->server, chain.out, chain.nr_out, chain.out_len,
					   chain.in, chain.nr_in, chain.in_len);

		virtq_push_used(vq, chain.head, len);
		bytes += chain.out_len + len;
		chains++;
	}
	virtio_device_notify_used(dev, q);
	if (!vq->broken && (chains >= vq->size || bytes >= FS_MAX_PER_ROUND))
		virtio_device_queue_kick(dev, q);
}

static void fs_config_read(struct virtio_device *dev, uint32_t offset, void *data, uint32_t len)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);

	memcpy(data, (const uint8_t *)&fs->config + offset, len);
}

static void fs_reset(struct virtio_device *dev)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);

	/*
	 * A new driver starts with INIT and no inodes. We are on a vCPU thread: closing up to
	 * ~150k descriptors is the I/O thread's job, before it serves the next request.
	 */
	fs->reset_pending = true;
}

static void fs_thread_stop(struct virtio_fs *fs)
{
	if (!fs->thread_running)
		return;
	event_loop_stop(fs->loop);
	pthread_join(fs->thread, NULL);
	fs->thread_running = false;
}

static void fs_destroy(struct virtio_device *dev)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);
	struct fuse_server_stats st = { 0 };

	fs_thread_stop(fs);
	if (fs->server) {
		fuse_server_get_stats(fs->server, &st);
		log_debug("%s: served %llu requests (%llu failed), %u inodes and %u handles open",
			  dev->name, (unsigned long long)st.requests, (unsigned long long)st.errors,
			  st.nodes, st.handles);
	}
	fuse_server_destroy(fs->server);
	event_loop_destroy(fs->loop);
	free(fs);
}

static const struct virtio_device_ops fs_ops = {
	.config_read = fs_config_read,
	.queue_notify = fs_queue_notify,
	.reset = fs_reset,
	.destroy = fs_destroy,
};

int virtio_fs_new(const struct vm_device_config *spec, struct virtio_device **out,
		  struct error *err)
{
	struct virtio_fs *fs = calloc(1, sizeof(*fs));
	struct fuse_server_config c = { .root = spec->path, .readonly = spec->readonly };
	size_t tag_len = strnlen(spec->fs_tag, sizeof(spec->fs_tag));
	unsigned int q;
	int r;

	if (!fs)
		return error_set(err, -ENOMEM, "virtio-fs: out of memory");
	snprintf(fs->name, sizeof(fs->name), "%s", spec->id[0] ? spec->id : "virtio-fs");
	fs->dev.name = fs->name;
	if (tag_len == 0 || tag_len > sizeof(fs->config.tag)) {
		r = error_set(err, -EINVAL, "%s: tag must be 1 to %zu bytes", fs->name,
			      sizeof(fs->config.tag));
		goto fail;
	}
	c.name = fs->name;
	c.cache = spec->fs_cache == VM_FS_CACHE_NONE	 ? FUSE_CACHE_NONE
		  : spec->fs_cache == VM_FS_CACHE_ALWAYS ? FUSE_CACHE_ALWAYS
							 : FUSE_CACHE_AUTO;
	r = fuse_server_new(&c, &fs->server, err);
	if (r < 0)
		goto fail;
	memcpy(fs->config.tag, spec->fs_tag, tag_len);
	fs->config.num_request_queues = htole32(FS_NR_QUEUES - 1);
	fs->dev.device_id = VIRTIO_ID_FS;
	fs->dev.config_size = sizeof(fs->config);
	fs->dev.nr_queues = FS_NR_QUEUES;
	for (q = 0; q < FS_NR_QUEUES; q++)
		fs->dev.queue_max_size[q] = FS_QUEUE_SIZE;
	fs->dev.ops = &fs_ops;
	*out = &fs->dev;
	return 0;
fail:
	fs_destroy(&fs->dev);
	return r;
}

/* The devices of one VM, so exit can stop their threads before the transports go. */
struct fs_vm {
	struct virtio_fs *devices[VM_MAX_DEVICES];
	unsigned int nr;
};

static const struct device_ops fs_device;

static int fs_create(struct vm *vm, const struct vm_device_config *spec, struct virtio_device **out,
		     struct error *err)
{
	struct virtio_fs *fs;
	int r;

	r = virtio_fs_new(spec, out, err);
	if (r < 0)
		return r;
	fs = container_of(*out, struct virtio_fs, dev);
	fs->vm = vm;
	fs->seccomp = vm->config.seccomp;
	r = event_loop_create(&fs->loop);
	if (r < 0) {
		fs_destroy(*out);
		return error_set_errno(err, r, "%s: I/O thread's event loop", fs->name);
	}
	fs->dev.loop = fs->loop; /* the transport watches the queues there */
	return 0;
}

/*
 * Capabilities are per thread: the main thread drops all of them once the VM is set up
 * (sandbox.c), this thread (started before that) keeps only what serving a share as its
 * owner needs: giving inodes to the guest's users (CHOWN), reaching every file of the share
 * (DAC_OVERRIDE, DAC_READ_SEARCH), chmod/utimes/xattrs of others' files (FOWNER), keeping
 * setgid bits (FSETID), device nodes and whiteouts (MKNOD). An unprivileged VMM has none
 * of them, and keeps none. no_new_privs as everywhere else.
 */
static void fs_thread_limit_caps(const struct virtio_fs *fs)
{
	const uint64_t keep = (1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) |
			      (1ULL << CAP_DAC_READ_SEARCH) | (1ULL << CAP_FOWNER) |
			      (1ULL << CAP_FSETID) | (1ULL << CAP_MKNOD);
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	unsigned int i;

	if (syscall(SYS_capget, &hdr, data) == 0) {
		for (i = 0; i < 2; i++) {
			uint32_t mask = (uint32_t)(keep >> (32 * i));

			data[i].effective &= mask;
			data[i].permitted &= mask;
			data[i].inheritable = 0;
		}
		if (syscall(SYS_capset, &hdr, data) < 0)
			log_warn("%s: cannot limit the I/O thread's capabilities: %s", fs->name,
				 strerror(errno));
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static void *fs_thread(void *opaque)
{
	struct virtio_fs *fs = opaque;
	struct error err = { 0 };
	char name[16];
	int r;

	snprintf(name, sizeof(name), "fs-%.12s", fs->name); /* 15 characters at most */
	pthread_setname_np(pthread_self(), name);
	fs_thread_limit_caps(fs);
	/* Before the first request: the thread's allow-list (seccomp.c, "virtio-fs"). */
	if (seccomp_install(SECCOMP_THREAD_IO, fs->seccomp, &err) < 0) {
		log_error("%s: %s", fs->name, err.msg);
		vm_request_exit(fs->vm, VM_EXIT_ERROR);
		return NULL;
	}
	seccomp_test_hook(SECCOMP_THREAD_IO);
	r = event_loop_run(fs->loop);
	if (r < 0)
		log_error("%s: I/O thread: %s", fs->name, strerror(-r));
	return NULL;
}

/* Attached (its queue eventfds are watched on fs->loop): start the I/O thread. */
static int fs_attached(struct vm *vm, struct virtio_device *dev, struct error *err)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);
	struct fs_vm *state = device_get_data(vm, &fs_device);
	sigset_t all, old;
	int r;

	/* The thread takes no signal: they are the main loop's (signalfd) and the vCPUs'. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&fs->thread, NULL, fs_thread, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return error_set_errno(err, -r, "%s: cannot start the I/O thread", fs->name);
	fs->thread_running = true;
	state->devices[state->nr++] = fs;
	return 0;
}

/* Two devices with one tag: the guest could mount only the first. */
static int fs_check_tags(struct vm *vm, struct error *err)
{
	unsigned int i, j;

	for (i = 0; i < vm->config.nr_devices; i++)
		for (j = 0; j < i; j++)
			if (vm->config.devices[i].type == VM_DEVICE_VIRTIO_FS &&
			    vm->config.devices[j].type == VM_DEVICE_VIRTIO_FS &&
			    !strcmp(vm->config.devices[i].fs_tag, vm->config.devices[j].fs_tag))
				return error_set(err, -EINVAL,
						 "-device: virtio-fs tag '%s' is used twice",
						 vm->config.devices[i].fs_tag);
	return 0;
}

/*
 * The guest keeps a lookup (one O_PATH fd here) on every inode in its cache: take as many
 * descriptors as the host allows, as virtiofsd does: fs.nr_open when we may raise the hard
 * limit (CAP_SYS_RESOURCE), else the hard limit.
 */
static void fs_raise_nofile(void)
{
	struct rlimit rl;
	unsigned long nr_open = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (nr_open > rl.rlim_max) {
		struct rlimit want = { .rlim_cur = nr_open, .rlim_max = nr_open };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_debug("virtio-fs: cannot raise RLIMIT_NOFILE: %s", strerror(errno));
	}
}

static int fs_init(struct vm *vm, struct error *err)
{
	struct fs_vm *state;
	unsigned int i, n = 0;
	int r;

	for (i = 0; i < vm->config.nr_devices; i++)
		n += vm->config.devices[i].type == VM_DEVICE_VIRTIO_FS;
	if (!n)
		return -ENODEV;
	r = fs_check_tags(vm, err);
	if (r < 0)
		return r;
	fs_raise_nofile();
	state = calloc(1, sizeof(*state));
	if (!state)
		return error_set(err, -ENOMEM, "virtio-fs: out of memory");
	r = device_set_data(vm, &fs_device, state);
	if (r < 0) {
		free(state);
		return error_set_errno(err, r, "virtio-fs: device data");
	}
	return virtio_mmio_vm_attach_all(vm, VM_DEVICE_VIRTIO_FS, fs_create, fs_attached, err);
}

/* Before the transports are destroyed (a later level's exit): no thread runs a queue. */
static void fs_exit(struct vm *vm)
{
	struct fs_vm *state = device_get_data(vm, &fs_device);
	unsigned int i;

	if (!state)
		return;
	for (i = 0; i < state->nr; i++)
		fs_thread_stop(state->devices[i]);
	free(state);
	device_set_data(vm, &fs_device, NULL);
}

static const struct device_ops fs_device = {
	.name = "virtio-fs",
	.level = DEVICE_LEVEL_VIRTIO,
	.init = fs_init,
	.exit = fs_exit,
};
DEVICE_REGISTER(fs_device);
