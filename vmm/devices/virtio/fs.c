/*
 * virtio-fs (virtio 1.2 §5.11): device ID 26, a host directory shared with the guest,
 * served by our FUSE passthrough server (fuse.h); no virtiofsd. One device per share:
 * `-device virtio-fs-device,id=ID,tag=TAG,source=DIR[,readonly=on][,cache=auto|none|always]`,
 * mounted in the guest with `mount -t virtiofs TAG DIR`.
 *
 * Configuration (§5.11.4): tag[36] (not NUL-terminated when 36 bytes long) and
 * num_request_queues (1). Queues (§5.11.2): 0 is hiprio (FORGET), 1 the request queue;
 * both carry FUSE requests the same way (§5.11.6): the device-readable part is the FUSE
 * request (in header, arguments, WRITE data), the device-writable part takes the reply
 * (out header, data). The used length is the reply's size; a FORGET has none.
 *
 * In a VM each share is served by its own process (fs_process.c), forked here while the VM
 * is built: the VMM keeps the transport (registers, status, configuration space), hands the
 * queues over at DRIVER_OK, takes them back at a reset, and notices on its main loop when
 * the process dies (the device then needs a reset; the VM goes on). So the VMM's seccomp
 * lists carry no file-system syscalls and the VMM keeps no capability
 * (docs/virtio-fs.md, "Process"). The unit tests, the fuzz target and the benchmark build the
 * device with virtio_fs_new(): the server in this process, and the fake driver runs the queue
 * handler itself.
 *
 * A device without a directory (spec->path empty) is a slot: the guest sees the tag, nothing
 * is shared and no process is forked. The VMM's main loop answers whatever the guest queues
 * there with ENODEV (a FORGET with nothing), a queue's worth per notification, so a guest
 * that mounts a slot gets an error at once instead of a hang. Slots exist for VM templates:
 * a snapshot holds the device, a clone gives it a directory (docs/snapshots.md).
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <endian.h>
#include <linux/fuse.h>
#include <linux/virtio_fs.h>

#include "../../device.h"
#include "../../fuse.h"
#include "../../log.h"
#include "../../seccomp.h"
#include "../../snapshot.h"
#include "../../vm.h"
#include "fs_process.h"
#include "mmio.h"
#include "virtio.h"

#ifndef VIRTIO_ID_FS
#define VIRTIO_ID_FS 26
#endif
#define FS_QUEUE_SIZE	 1024 /* a 1 MiB READ/WRITE is 256 pages + headers, direct or not */
#define FS_NR_QUEUES	 2    /* hiprio + one request queue */
#define FS_MAX_PER_ROUND MIB(32)

_Static_assert(FS_NR_QUEUES <= FS_PROCESS_MAX_QUEUES, "fs_process.h carries every queue");

struct virtio_fs {
	struct virtio_device dev;
	char name[VM_DEVICE_ID_MAX + 16];
	struct virtio_fs_config config;
	bool slot;	       /* no share: requests answered ENODEV, no server, no process */
	unsigned int position; /* 1-based -device index in a VM (messages), 0 in-process */
	/* virtio_fs_new(): the server in this process, run by the caller's fake driver. */
	struct fuse_server *server;
	struct iovec iov[FS_QUEUE_SIZE];
	bool reset_pending; /* the driver reset the device: forget all before the next request */
	/* In a VM: the share's process and its descriptors on the main loop. */
	struct vm *vm;
	const struct vm_device_config *spec; /* in vm->config */
	struct fs_process proc;
	bool proc_started;
	bool sock_watched, pidfd_watched;
};

/* In-process (virtio_fs_new): the caller's thread runs the queues. */
static void fs_queue_notify(struct virtio_device *dev, unsigned int q)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);
	struct virtq *vq = &dev->queues[q];
	bool more;

	if (fs->reset_pending) {
		fuse_server_reset(fs->server); /* closes every node and handle */
		fs->reset_pending = false;
	}
	more = fs_serve_queue(fs->server, vq, fs->iov, ARRAY_SIZE(fs->iov), FS_MAX_PER_ROUND);
	virtio_device_notify_used(dev, q);
	if (more)
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

	/* A new driver starts with INIT and no inodes: closed before the next request. */
	fs->reset_pending = true;
}

static void fs_destroy(struct virtio_device *dev)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);
	struct fuse_server_stats st = { 0 };

	if (fs->server) {
		fuse_server_get_stats(fs->server, &st);
		log_debug("%s: served %llu requests (%llu failed), %u inodes and %u handles open",
			  dev->name, (unsigned long long)st.requests, (unsigned long long)st.errors,
			  st.nodes, st.handles);
	}
	fuse_server_destroy(fs->server);
	if (fs->proc_started)
		fs_process_destroy(&fs->proc);
	free(fs);
}

static const struct virtio_device_ops fs_ops = {
	.config_read = fs_config_read,
	.queue_notify = fs_queue_notify,
	.reset = fs_reset,
	.destroy = fs_destroy,
};

/* A slot's answer to one chain: the used length (a FUSE out header, or 0). */
static uint32_t fs_slot_reply(const struct virtq_chain *chain)
{
	struct fuse_in_header in;
	struct fuse_out_header out;

	if (virtq_chain_read(chain, 0, &in, sizeof(in)) != sizeof(in))
		return 0;
	if (in.opcode == FUSE_FORGET || in.opcode == FUSE_BATCH_FORGET)
		return 0; /* no reply, as ever */
	out = (struct fuse_out_header){ .len = sizeof(out), .error = -ENODEV, .unique = in.unique };
	return virtq_chain_write(chain, 0, &out, sizeof(out)) == sizeof(out) ? sizeof(out) : 0;
}

/* Main loop (or the fake driver), device lock held: at most a queue's worth, then a kick. */
static void fs_slot_queue_notify(struct virtio_device *dev, unsigned int q)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);
	struct virtq *vq = &dev->queues[q];
	struct virtq_chain chain;
	unsigned int chains = 0;

	virtq_chain_init(&chain, fs->iov, ARRAY_SIZE(fs->iov));
	while (chains < vq->size && virtq_pop_chain(vq, &chain) > 0) {
		virtq_push_used(vq, chain.head, fs_slot_reply(&chain));
		chains++;
	}
	virtio_device_notify_used(dev, q);
	if (chains >= vq->size && !vq->broken)
		virtio_device_queue_kick(dev, q);
}

static const struct virtio_device_ops fs_slot_ops = {
	.config_read = fs_config_read,
	.queue_notify = fs_slot_queue_notify,
	.destroy = fs_destroy,
};

/* In a VM (the share's process serves the queues; these run on vCPU threads, locked). */
static int fs_proc_activate(struct virtio_device *dev)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);

	return fs_process_send_queues(&fs->proc, dev->driver_features, dev->queues, dev->nr_queues);
}

static void fs_proc_reset(struct virtio_device *dev)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);

	/* Bounded: a process that does not let go of the rings in time is killed. */
	fs_process_reset(&fs->proc);
}

static void fs_proc_queue_notify(struct virtio_device *dev, unsigned int q)
{
	(void)dev; /* never called: dev->queues_elsewhere */
	(void)q;
}

static const struct virtio_device_ops fs_proc_ops = {
	.config_read = fs_config_read,
	.activate = fs_proc_activate,
	.queue_notify = fs_proc_queue_notify,
	.reset = fs_proc_reset,
	.destroy = fs_destroy,
};

static int fs_alloc(const struct vm_device_config *spec, struct virtio_fs **out, struct error *err)
{
	struct virtio_fs *fs = calloc(1, sizeof(*fs));
	size_t tag_len = strnlen(spec->fs_tag, sizeof(spec->fs_tag));
	unsigned int q;

	*out = NULL;
	if (!fs)
		return error_set(err, -ENOMEM, "virtio-fs: out of memory");
	snprintf(fs->name, sizeof(fs->name), "%s", spec->id[0] ? spec->id : "virtio-fs");
	fs->dev.name = fs->name;
	if (tag_len == 0 || tag_len > sizeof(fs->config.tag)) {
		error_set(err, -EINVAL, "%s: tag must be 1 to %zu bytes", fs->name,
			  sizeof(fs->config.tag));
		free(fs);
		return -EINVAL;
	}
	memcpy(fs->config.tag, spec->fs_tag, tag_len);
	fs->config.num_request_queues = htole32(FS_NR_QUEUES - 1);
	fs->dev.device_id = VIRTIO_ID_FS;
	fs->dev.config_size = sizeof(fs->config);
	fs->dev.nr_queues = FS_NR_QUEUES;
	for (q = 0; q < FS_NR_QUEUES; q++)
		fs->dev.queue_max_size[q] = FS_QUEUE_SIZE;
	fs->slot = !spec->path[0];
	fs->dev.ops = fs->slot ? &fs_slot_ops : &fs_ops;
	*out = fs;
	return 0;
}

static void fs_server_config(const struct vm_device_config *spec, const char *name,
			     struct fuse_server_config *c)
{
	*c = (struct fuse_server_config){ .name = name,
					  .root = spec->path,
					  .readonly = spec->readonly };
	c->cache = spec->fs_cache == VM_FS_CACHE_NONE	  ? FUSE_CACHE_NONE
		   : spec->fs_cache == VM_FS_CACHE_ALWAYS ? FUSE_CACHE_ALWAYS
							  : FUSE_CACHE_AUTO;
}

int virtio_fs_new(const struct vm_device_config *spec, struct virtio_device **out,
		  struct error *err)
{
	struct fuse_server_config c;
	struct virtio_fs *fs;
	int r;

	r = fs_alloc(spec, &fs, err);
	if (r < 0)
		return r;
	if (fs->slot) {
		*out = &fs->dev;
		return 0;
	}
	fs_server_config(spec, fs->name, &c);
	r = fuse_server_new(&c, &fs->server, err);
	if (r < 0) {
		fs_destroy(&fs->dev);
		return r;
	}
	*out = &fs->dev;
	return 0;
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

	r = fs_alloc(spec, &fs, err);
	if (r < 0)
		return r;
	fs->vm = vm;
	fs->spec = spec;
	fs->position = spec - vm->config.devices + 1;
	if (!fs->slot) {
		fs->dev.ops = &fs_proc_ops;
		fs->dev.queues_elsewhere = true;
	}
	*out = &fs->dev;
	return 0;
}

/* Main loop, device lock held: the process found a bad chain or ring. */
static void fs_on_broken(void *opaque, unsigned int q, const char *why)
{
	struct virtio_fs *fs = opaque;

	if (q < fs->dev.nr_queues)
		virtio_device_fail(&fs->dev, "queue %u: %s", q, why);
	else
		virtio_device_fail(&fs->dev, "the share's process reported a bad queue");
}

static void fs_on_sock(void *opaque, uint32_t events)
{
	struct virtio_fs *fs = opaque;

	(void)events;
	virtio_device_lock(&fs->dev);
	if (fs_process_read_events(&fs->proc, fs_on_broken, fs) && fs->sock_watched) {
		event_loop_remove(fs->vm->loop, fs->proc.sock);
		fs->sock_watched = false;
		virtio_device_fail(&fs->dev, "the share's process is gone");
	}
	virtio_device_unlock(&fs->dev);
}

static void fs_on_pidfd(void *opaque, uint32_t events)
{
	struct virtio_fs *fs = opaque;

	(void)events;
	event_loop_remove(fs->vm->loop, fs->proc.pidfd);
	fs->pidfd_watched = false;
	virtio_device_lock(&fs->dev);
	fs_process_reap(&fs->proc);
	virtio_device_fail(&fs->dev, "the share's process is gone");
	virtio_device_unlock(&fs->dev);
}

/*
 * Attached (the transport made the irq and queue eventfds): fork the share's process. The
 * VMM is still single-threaded here (no vCPU thread yet), privileged as it started, and
 * without filters.
 */
static int fs_attached(struct vm *vm, struct virtio_device *dev, struct error *err)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);
	struct fs_vm *state = device_get_data(vm, &fs_device);
	struct fs_process_config c = {
		.name = fs->name,
		.mem = &vm->mem,
		.irq_fd = virtio_mmio_irq_fd(dev->transport),
		.nr_queues = dev->nr_queues,
		.seccomp = vm_config_seccomp(&vm->config, SECCOMP_PROC_FS),
		.runas = vm->config.runas,
		.uid = vm->config.runas_uid,
		.gid = vm->config.runas_gid,
	};
	unsigned int q;
	int r;

	state->devices[state->nr++] = fs; /* in command-line order: the snapshot's too */
	if (fs->slot) {
		log_debug("%s: tag '%s' is a slot: no share, no process", fs->name,
			  fs->spec->fs_tag);
		return 0;
	}
	fs_server_config(fs->spec, fs->name, &c.server);
	for (q = 0; q < dev->nr_queues; q++) {
		c.queue_fds[q] = virtio_mmio_queue_fd(dev->transport, q);
		c.queue_max_size[q] = dev->queue_max_size[q];
	}
	fs->proc_started = true; /* fs_exit stops what was started */
	r = fs_process_start(&fs->proc, &c, err);
	if (r < 0)
		return r;
	virtio_mmio_share_isr(dev->transport, fs->proc.isr);
	r = event_loop_add(vm->loop, fs->proc.sock, EPOLLIN, fs_on_sock, fs);
	if (r < 0)
		return error_set_errno(err, r, "%s: watch the share's process", fs->name);
	fs->sock_watched = true;
	r = event_loop_add(vm->loop, fs->proc.pidfd, EPOLLIN, fs_on_pidfd, fs);
	if (r < 0)
		return error_set_errno(err, r, "%s: watch the share's process", fs->name);
	fs->pidfd_watched = true;
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

/* Before the transports are destroyed (a later level's exit): every process ends, reaped. */
static void fs_exit(struct vm *vm)
{
	struct fs_vm *state = device_get_data(vm, &fs_device);
	unsigned int i;

	if (!state)
		return;
	for (i = 0; i < state->nr; i++) {
		struct virtio_fs *fs = state->devices[i];

		if (!fs->proc_started)
			continue;
		if (fs->sock_watched)
			event_loop_remove(vm->loop, fs->proc.sock);
		if (fs->pidfd_watched)
			event_loop_remove(vm->loop, fs->proc.pidfd);
		fs->sock_watched = fs->pidfd_watched = false;
		fs_process_stop(&fs->proc);
	}
	free(state);
	device_set_data(vm, &fs_device, NULL);
}

/*
 * Snapshots. The FUSE session (INIT, node ids, open handles) lives in the share's process
 * and is not saved, so a snapshot may hold a share only while the guest has never queued a
 * request on it since the driver last reset the device: the rings in guest memory say so
 * (available and used indices 0; the Linux driver posts nothing before a mount). Read
 * under the device lock with the VM paused: no vCPU can add a request meanwhile.
 */
static bool fs_queues_used(struct virtio_fs *fs)
{
	unsigned int q;

	for (q = 0; q < fs->dev.nr_queues; q++) {
		const struct virtq *vq = &fs->dev.queues[q];
		uint16_t avail_idx, used_idx;

		if (!vq->ready)
			continue;
		if (vq->last_avail_idx || vq->used_idx)
			return true;
		if (vm_mem_read(vq->mem, vq->avail_gpa + 2, &avail_idx, sizeof(avail_idx)) < 0 ||
		    vm_mem_read(vq->mem, vq->used_gpa + 2, &used_idx, sizeof(used_idx)) < 0 ||
		    avail_idx || used_idx)
			return true;
	}
	return false;
}

static void fs_state_tag(const struct virtio_fs *fs, char tag[40])
{
	memset(tag, 0, 40);
	memcpy(tag, fs->config.tag, sizeof(fs->config.tag));
}

int virtio_fs_save(struct virtio_device *dev, struct virtio_fs_state *out, struct error *err)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);
	bool used, dead;

	memset(out, 0, sizeof(*out));
	fs_state_tag(fs, out->tag);
	virtio_device_lock(dev);
	used = fs_queues_used(fs);
	dead = fs->proc_started && fs->proc.dead;
	virtio_device_unlock(dev);
	if (fs->slot) {
		out->flags = VIRTIO_FS_STATE_SLOT | (used ? VIRTIO_FS_STATE_USED : 0);
		return 0;
	}
	if (used)
		return error_set(
			err, -EBUSY,
			"snapshot: virtio-fs device '%s' (tag '%.36s'): the guest has used "
			"the share (mounted it); only shares never mounted can be saved",
			fs->name, out->tag);
	if (dead)
		return error_set(err, -EIO,
				 "snapshot: virtio-fs device '%s' (tag '%.36s'): the share's "
				 "process is gone",
				 fs->name, out->tag);
	return 0;
}

int virtio_fs_check_restore(struct virtio_device *dev, const struct virtio_fs_state *in,
			    const char *path, struct error *err)
{
	struct virtio_fs *fs = container_of(dev, struct virtio_fs, dev);
	char tag[40];

	fs_state_tag(fs, tag);
	if (memcmp(tag, in->tag, sizeof(tag)))
		return error_set(
			err, -EINVAL,
			"-device %u (virtio-fs '%s'): tag '%.36s', but the snapshot %s has "
			"tag '%.36s' at this position",
			fs->position, fs->name, tag, path, in->tag);
	if (in->flags & ~(VIRTIO_FS_STATE_SLOT | VIRTIO_FS_STATE_USED) || in->reserved)
		return error_set(err, -EBADMSG, "%s: snapshot virtio-fs state is malformed", path);
	if ((in->flags & VIRTIO_FS_STATE_USED) && !fs->slot)
		return error_set(
			err, -EINVAL,
			"-device %u (virtio-fs '%s'): the guest in the snapshot %s already "
			"tried to mount slot '%.36s'; it can only stay a slot (no source=)",
			fs->position, fs->name, path, tag);
	log_debug("%s: tag '%.36s' restored as %s (%s in the snapshot)", fs->name, tag,
		  fs->slot ? "a slot" : "a share",
		  in->flags & VIRTIO_FS_STATE_SLOT ? "a slot" : "a share");
	return 0;
}

/* The snapshot layout (docs/snapshots.md). */
_Static_assert(sizeof(struct virtio_fs_state) == 48, "part of the snapshot format");

static int fs_save(struct vm *vm, struct snapshot_writer *w, struct error *err)
{
	struct fs_vm *state = device_get_data(vm, &fs_device);
	struct virtio_fs_state saved;
	char name[SNAPSHOT_SECTION_NAME];
	unsigned int i;
	int r;

	for (i = 0; state && i < state->nr; i++) {
		r = virtio_fs_save(&state->devices[i]->dev, &saved, err);
		if (r < 0)
			return r;
		snprintf(name, sizeof(name), "virtio-fs.%u", i);
		if (snapshot_put(w, name, &saved, sizeof(saved)) < 0)
			return error_set(err, w->error, "virtio-fs: cannot save");
	}
	return 0;
}

/* After the transports (platform level): a share's process has its queues already. */
static int fs_restore(struct vm *vm, const struct snapshot_file *f, struct error *err)
{
	struct fs_vm *state = device_get_data(vm, &fs_device);
	struct virtio_fs_state saved;
	char name[SNAPSHOT_SECTION_NAME];
	const void *extra;
	unsigned int i;
	size_t len;
	int r;

	for (i = 0; state && i < state->nr; i++) {
		snprintf(name, sizeof(name), "virtio-fs.%u", i);
		r = snapshot_get_exact(f, name, &saved, sizeof(saved), err);
		if (r == 0)
			r = virtio_fs_check_restore(&state->devices[i]->dev, &saved, f->path, err);
		if (r < 0)
			return r;
	}
	snprintf(name, sizeof(name), "virtio-fs.%u", i);
	if (snapshot_get(f, name, &extra, &len) == 0)
		return error_set(err, -EINVAL, "%s: the snapshot has more virtio-fs devices",
				 f->path);
	return 0;
}

static const struct device_ops fs_device = {
	.name = "virtio-fs",
	.level = DEVICE_LEVEL_VIRTIO,
	.init = fs_init,
	.exit = fs_exit,
	.save = fs_save,
	.restore = fs_restore,
};
DEVICE_REGISTER(fs_device);
