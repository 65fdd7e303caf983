/*
 * The monitor process (see monitor.h). Threads: the main thread builds the VM and runs
 * vm_run() (libvmm's event loop, QMP, devices); the supervisor thread does everything that
 * involves the agent with the blocking agent client and a poll loop of its own, so libvmm's
 * loop never waits on the guest. The two meet in three places only: vm_request_exit() (any
 * thread may call it), an eventfd the main thread signals when the VM is over, and the exit
 * status the supervisor records before the main thread reads it after pthread_join().
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cap-ng.h>

#include "agent_client.h"
#include "console.h"
#include "log.h"
#include "monitor.h"
#include "phase.h"
#include "qmp.h"
#include "relay.h"
#include "template.h"
#include "unix_path.h"
#include "vm.h"

#define MONITOR_CONNECT_RETRY_MS 100
/*
 * A restored guest resets the vsock connections it had when it handles the device's
 * TRANSPORT_RESET event, which may come just after our first CONNECT: that one is reset, the
 * next one (milliseconds later) holds.
 */
#define MONITOR_RESTORE_RETRY_MS 5
#define MONITOR_DRAIN_MS	 5000  /* output after the exit event, at most */
#define MONITOR_POWEROFF_MS	 10000 /* SHUTDOWN to power-off, at most */

struct monitor {
	const struct monitor_config *cfg;
	struct vm *vm;
	char vsock_path[4096];
	int ended_fd;  /* eventfd: the VM is over */
	int notify_fd; /* to `create`, until it has been told */
	int winch_fd;  /* signalfd for SIGWINCH (terminal with a console socket) */
	int streams[AGENT_STREAM_NR];
	int pty_slave;
	int net_fds[AGENT_MAX_NET_IFACES]; /* cfg->network's taps, moved to fds 4.. */
	struct agent_client agent;
	bool exited;
	int status;    /* the init's, once exited */
	bool restored; /* from cfg->template_snapshot */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void monitor_notify(struct monitor *m, const char *line)
{
	size_t len = strlen(line);

	if (m->notify_fd < 0)
		return;
	if (write(m->notify_fd, line, len) != (ssize_t)len)
		log_warn("cannot report to stratus create: %s", strerror(errno));
	close(m->notify_fd);
	m->notify_fd = -1;
}

/* The last non-empty line of the guest console, to say why a boot failed. */
static void console_last_line(const struct monitor_config *cfg, char *out, size_t len)
{
	char path[4200], buf[2048];
	_cleanup_close_ int fd = -1;
	off_t size;
	ssize_t n;
	char *line;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, MONITOR_CONSOLE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (size = lseek(fd, 0, SEEK_END)) <= 0)
		return;
	n = pread(fd, buf, sizeof(buf) - 1,
		  size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
	snprintf(out, len, "%.*s", (int)len - 1, line);
}

static void monitor_fail(struct monitor *m, const char *what)
{
	char line[1024 + 512], console[256];

	console_last_line(m->cfg, console, sizeof(console));
	if (console[0])
		snprintf(line, sizeof(line), "%s (guest console: %s)\n", what, console);
	else
		snprintf(line, sizeof(line), "%s\n", what);
	log_error("%s", what);
	monitor_notify(m, line);
}

/* Wait up to ms for the VM to end: true if it did. */
static bool monitor_wait_ended(struct monitor *m, int ms)
{
	struct pollfd pfd = { .fd = m->ended_fd, .events = POLLIN };

	return poll(&pfd, 1, ms) > 0;
}

/*
 * A restored agent is already listening: the first attempt normally connects (the vsock
 * device reset the old connections). If it does not within MONITOR_RESTORE_AGENT_MS the
 * template is reported bad, with MONITOR_TEMPLATE_FAILED, and `create` cold-boots instead.
 */
static int monitor_connect_agent(struct monitor *m)
{
	int timeout_ms = m->cfg->agent_timeout_ms;
	const char *prefix = m->restored ? MONITOR_TEMPLATE_FAILED : "";
	uint64_t deadline;
	char msg[1100];
	int r;

	if (m->restored && timeout_ms > MONITOR_RESTORE_AGENT_MS)
		timeout_ms = MONITOR_RESTORE_AGENT_MS;
	deadline = now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		agent_client_init(&m->agent, m->cfg->agent_timeout_ms);
		r = agent_client_connect(&m->agent, m->vsock_path);
		if (r == 0)
			return 0;
		snprintf(msg, sizeof(msg), "%s%s", prefix, m->agent.err);
		log_debug("agent: not yet: %s", m->agent.err);
		agent_client_destroy(&m->agent);
		/* A version mismatch will not go away by waiting. */
		if (r == -EPROTONOSUPPORT) {
			monitor_fail(m, msg);
			return r;
		}
		if (monitor_wait_ended(m, m->restored ? MONITOR_RESTORE_RETRY_MS
						      : MONITOR_CONNECT_RETRY_MS)) {
			snprintf(msg, sizeof(msg), "%sthe VM stopped before the agent answered",
				 prefix);
			monitor_fail(m, msg);
			return -ECONNREFUSED;
		}
		if (now_ms() >= deadline) {
			snprintf(msg, sizeof(msg),
				 "%sthe agent did not answer within %d s (STRATUS_AGENT_TIMEOUT)",
				 prefix, timeout_ms / 1000);
			monitor_fail(m, msg);
			return -ETIMEDOUT;
		}
	}
}

/* The init's stdio streams (stdio: AGENT_STDIO_BIT()s), opened together (agent_client.h). */
static int monitor_open_streams(struct monitor *m, uint32_t stdio)
{
	char err[512], msg[600];
	int r = agent_streams_open(m->vsock_path, m->cfg->id, "", stdio, m->cfg->agent_timeout_ms,
				   m->streams, err, sizeof(err));

	if (r < 0) {
		snprintf(msg, sizeof(msg), "agent: stdio stream %s", err);
		monitor_fail(m, msg);
	}
	return r;
}

/* The host end of the terminal: a pty whose master goes to --console-socket. */
static int monitor_open_console(struct monitor *m)
{
	const struct monitor_config *cfg = m->cfg;
	struct error err = { 0 };
	_cleanup_close_ int master = -1;
	sigset_t set;

	if (!cfg->console_socket)
		return 0; /* `stratus run` in the foreground: fds 0/1 are the terminal */
	if (console_open_pty(cfg->console_rows, cfg->console_cols, true, &master, &m->pty_slave,
			     &err) < 0 ||
	    console_send_fd(cfg->console_socket, master, &err) < 0) {
		monitor_fail(m, err.msg);
		return err.code;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	m->winch_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return 0;
}

/* NETWORK: the guest's NICs named and addressed as the namespace's interfaces. */
static int monitor_network(struct monitor *m)
{
	char msg[AGENT_CLIENT_ERR_MAX + 32];
	struct agent_network net;
	int r;

	if (!m->cfg->network)
		return 0;
	netns_plan_network(m->cfg->network, &net);
	r = agent_client_network(&m->agent, &net);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "agent: network: %s", m->agent.err);
		monitor_fail(m, msg);
		return r;
	}
	log_info("network: %u interface(s), %u address(es), %u route(s) configured in the guest",
		 net.ifaces.n, net.addrs.n, net.routes.n);
	return 0;
}

static int monitor_create_container(struct monitor *m)
{
	const struct monitor_config *cfg = m->cfg;
	struct agent_create req = {
		.container_id = (char *)cfg->id,
		.rootfs_kind = cfg->rootfs->kind,
		.rootfs_source = (char *)cfg->rootfs->source,
		.rootfs_fstype = (char *)cfg->rootfs->fstype,
		.rootfs_options = (char *)cfg->rootfs->options,
		.oci_config = (char *)cfg->oci_config,
	};
	char msg[AGENT_CLIENT_ERR_MAX + 32];
	uint32_t pid;
	int r;

	req.mounts.v = cfg->mounts;
	req.mounts.n = cfg->n_mounts;
	if (cfg->terminal) {
		req.stdio = AGENT_STDIO_BIT(AGENT_STREAM_PTY);
		r = monitor_open_console(m);
		r = r ?: monitor_open_streams(m, req.stdio);
	} else {
		req.stdio = AGENT_STDIO_BIT(AGENT_STREAM_STDIN) |
			    AGENT_STDIO_BIT(AGENT_STREAM_STDOUT) |
			    AGENT_STDIO_BIT(AGENT_STREAM_STDERR);
		r = monitor_open_streams(m, req.stdio);
	}
	if (r < 0)
		return r;
	r = agent_client_create(&m->agent, &req, &pid);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "agent: create: %s", m->agent.err);
		monitor_fail(m, msg);
		return r;
	}
	log_info("container %s created, init is pid %u in the guest", cfg->id, pid);
	return 0;
}

static void monitor_setup_relay(struct monitor *m, struct relay *relay, int *outputs)
{
	relay_init(relay);
	outputs[0] = outputs[1] = -1;
	if (!m->cfg->terminal) {
		relay_add(relay, 0, m->streams[AGENT_STREAM_STDIN], true);
		outputs[0] = relay_add(relay, m->streams[AGENT_STREAM_STDOUT], 1, false);
		outputs[1] = relay_add(relay, m->streams[AGENT_STREAM_STDERR], 2, false);
	} else if (m->pty_slave >= 0) {
		relay_add(relay, m->pty_slave, m->streams[AGENT_STREAM_PTY], false);
		outputs[0] = relay_add(relay, m->streams[AGENT_STREAM_PTY], m->pty_slave, false);
	} else {
		relay_add(relay, 0, m->streams[AGENT_STREAM_PTY], false);
		outputs[0] = relay_add(relay, m->streams[AGENT_STREAM_PTY], 1, false);
	}
}

static int exit_status(const struct agent_exit *e)
{
	return e->flags & AGENT_EXIT_SIGNALED ? 128 + (int)e->status : (int)e->status;
}

/* The client's event queue overflowed: the init's exit may be among the lost ones. */
static void monitor_catch_up(struct monitor *m)
{
	struct agent_msg req = { .type = AGENT_LIST_EXITS }, reply;

	m->agent.events_lost = false;
	if (agent_client_call(&m->agent, &req, &reply, m->agent.timeout_ms) < 0) {
		log_warn("list exits: %s", m->agent.err);
		return;
	}
	for (uint32_t i = 0; i < reply.u.exits.exits.n; i++) {
		const struct agent_exit *e = &reply.u.exits.exits.v[i];

		if (!strcmp(e->container_id, m->cfg->id) && !e->exec_id[0] && !m->exited) {
			m->exited = true;
			m->status = exit_status(e);
		}
	}
	agent_msg_clear(&reply);
}

/* Take the events the agent sent; false once the connection is unusable. */
static bool monitor_take_events(struct monitor *m)
{
	struct agent_msg ev;
	int r;

	while ((r = agent_client_next_event(&m->agent, &ev, 0)) == 0) {
		if (ev.type == AGENT_EVENT_EXIT && !strcmp(ev.u.exit.container_id, m->cfg->id) &&
		    !ev.u.exit.exec_id[0] && !m->exited) {
			m->exited = true;
			m->status = exit_status(&ev.u.exit);
			log_info("container init exited: status %d", m->status);
			phase_mark("exited", "guest");
		}
		agent_msg_clear(&ev);
	}
	if (r == -ETIMEDOUT && m->agent.events_lost)
		monitor_catch_up(m);
	if (r != -ETIMEDOUT) {
		log_warn("agent connection lost: %s", m->agent.err);
		return false;
	}
	return true;
}

static void monitor_forward_winch(struct monitor *m)
{
	struct signalfd_siginfo info;
	uint32_t rows, cols;

	while (read(m->winch_fd, &info, sizeof(info)) == sizeof(info))
		;
	if (console_get_size(m->pty_slave, &rows, &cols) == 0 &&
	    agent_client_resize(&m->agent, m->cfg->id, "", rows, cols) < 0)
		log_warn("resize: %s", m->agent.err);
}

/* Relay until the init has exited and its output is drained, or the VM or agent is gone. */
static void monitor_relay(struct monitor *m)
{
	struct pollfd extra[3] = {
		{ .fd = agent_client_fd(&m->agent), .events = POLLIN },
		{ .fd = m->ended_fd, .events = POLLIN },
		{ .fd = m->winch_fd, .events = POLLIN },
	};
	uint64_t drain_deadline = 0;
	struct relay relay;
	int outputs[2];

	monitor_setup_relay(m, &relay, outputs);
	if (!monitor_take_events(m))
		return;
	for (;;) {
		if (m->exited) {
			if (!drain_deadline)
				drain_deadline = now_ms() + MONITOR_DRAIN_MS;
			if (relay_pipe_done(&relay, outputs[0]) &&
			    relay_pipe_done(&relay, outputs[1]))
				return;
			if (now_ms() >= drain_deadline) {
				log_warn("output still open %d ms after the exit: dropping it",
					 MONITOR_DRAIN_MS);
				return;
			}
		}
		if (relay_step(&relay, extra, m->winch_fd >= 0 ? 3 : 2, m->exited ? 100 : -1) < 0)
			return;
		if (extra[1].revents)
			return;
		if (extra[0].revents && !monitor_take_events(m))
			return;
		/* a RESIZE reply may have brought events along: take them now */
		if (m->winch_fd >= 0 && extra[2].revents) {
			monitor_forward_winch(m);
			if (!monitor_take_events(m))
				return;
		}
	}
}

/*
 * The VM goes away with the container: no ACK_EXIT first (it would only make the guest free
 * the container's records), and SHUTDOWN's reply means every process is dead and the guest's
 * filesystems are synced (docs/agent-protocol.md), so the VM can end then instead of after
 * the guest kernel's power-off (~0.2-0.5 s of interpreted guest code here). Except with a
 * writable virtio-blk rootfs, which keeps the orderly power-off.
 */
static void monitor_shutdown_guest(struct monitor *m)
{
	const struct rootfs *rootfs = m->cfg->rootfs;
	bool synced = agent_client_shutdown(&m->agent) == 0;

	if (!synced)
		log_warn("shutdown: %s", m->agent.err);
	if (synced && !(rootfs->block && !rootfs->block_readonly)) {
		log_debug("guest synced: stopping the VM");
		vm_request_exit(m->vm, VM_EXIT_QUIT);
		return;
	}
	if (!monitor_wait_ended(m, MONITOR_POWEROFF_MS)) {
		log_warn("the guest did not power off within %d ms: stopping the VM",
			 MONITOR_POWEROFF_MS);
		vm_request_exit(m->vm, VM_EXIT_QUIT);
	}
}

static void *monitor_supervise(void *opaque)
{
	struct monitor *m = opaque;

	if (monitor_connect_agent(m) < 0) {
		vm_request_exit(m->vm, VM_EXIT_QUIT);
		return NULL;
	}
	phase_mark("agent-ready", "guest");
	if (monitor_network(m) < 0 || monitor_create_container(m) < 0) {
		agent_client_destroy(&m->agent);
		vm_request_exit(m->vm, VM_EXIT_QUIT);
		return NULL;
	}
	phase_mark("created", "guest");
	monitor_notify(m, MONITOR_READY);
	monitor_relay(m);
	/* a VM that is already over answers nothing: do not wait for its agent */
	if (!m->agent.broken && !monitor_wait_ended(m, 0))
		monitor_shutdown_guest(m);
	else
		vm_request_exit(m->vm, VM_EXIT_QUIT);
	agent_client_destroy(&m->agent);
	return NULL;
}

static int open_in_dir(const char *dir, const char *name, int flags)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, flags | O_CLOEXEC, 0600);
}

_Static_assert(ROOTFS_MAX_SHARES + 1 <= VM_MAX_DEVICES, "the shares and the vsock");
_Static_assert(MONITOR_GUEST_CID == 3, "template_layout()'s vsock CID");

/*
 * Once the VM is built the monitor needs no privilege: /dev/kvm, the kernel, the images and
 * its sockets are open, each share is served by its own process (forked by vm_create with
 * the file capabilities it needs), and what it does from now on (its state directory, the
 * agent's socket, the console, the stdio it was handed) is its own uid's. So every
 * capability goes, the bounding set too where we may, and no_new_privs. A failure is logged,
 * not fatal (an unprivileged monitor has nothing to drop).
 */
void monitor_drop_privileges(void)
{
	capng_clear(CAPNG_SELECT_ALL);
	if (capng_apply(CAPNG_SELECT_ALL) < 0) {
		capng_clear(CAPNG_SELECT_CAPS);
		if (capng_apply(CAPNG_SELECT_CAPS) < 0)
			log_warn("cannot drop the monitor's capabilities");
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		log_warn("cannot set no_new_privs: %s", strerror(errno));
}

void monitor_vm_config(struct vm_config *vc, const struct guest_assets *assets, unsigned int vcpus,
		       uint64_t mem_mib, int serial_fd)
{
	memset(vc, 0, sizeof(*vc));
	vc->mem_size = mem_mib << 20;
	vc->nr_vcpus = vcpus;
	vc->kernel_path = assets->kernel;
	vc->initrd_path = assets->initramfs;
	vc->cmdline = MONITOR_CMDLINE;
	vc->serial_fd = serial_fd;
	vc->serial_in_fd = -1;
	/*
	 * libvmm's filters on the vCPU threads and the virtio-fs shares' processes; the main
	 * thread runs the monitor's own work (agent client, relays, QMP) besides the VM's event
	 * loop, so it keeps no list of its own yet (docs/runtime.md, "Privileges").
	 */
	vc->seccomp = SECCOMP_KILL;
	vc->seccomp_threads = SECCOMP_VCPU | SECCOMP_FSPROC;
	vc->boot_entry = VM_BOOT_AUTO;
}

/* The container's shares in the template's slots, restored from its snapshot. */
static int monitor_restore_vm(struct monitor *m, struct vm_config *vc, struct error *err)
{
	const struct monitor_config *cfg = m->cfg;

	if (template_layout(vc, m->vsock_path, cfg->rootfs) < 0)
		return error_set(err, -E2BIG, "the container's shares do not fit the template");
	if (rootfs_stage_files(cfg->rootfs, err) < 0)
		return err->code;
	vc->incoming = cfg->template_snapshot;
	return vm_create(vc, &m->vm, err);
}

/* One virtio-net device per tap of cfg->network (the VMM dups the fd). */
static int monitor_add_nics(struct monitor *m, struct vm_config *vc, struct error *err)
{
	const struct netns_plan *net = m->cfg->network;

	if (!net)
		return 0;
	if (vc->nr_devices + net->n_ifaces > VM_MAX_DEVICES)
		return error_set(err, -E2BIG,
				 "%zu network interfaces and %u other devices: a VM has at most %d",
				 net->n_ifaces, vc->nr_devices, VM_MAX_DEVICES);
	log_info("network: %zu interface(s): a cold boot (a template has no NIC)", net->n_ifaces);
	if (net->n_skipped_ipv6)
		log_info("network: %zu IPv6 address(es) and route(s) not carried: the guest kernel "
			 "has no IPv6",
			 net->n_skipped_ipv6);
	if (net->n_skipped_links)
		log_info("network: %zu interface(s) neither Ethernet nor loopback not carried",
			 net->n_skipped_links);
	for (size_t i = 0; i < net->n_ifaces; i++) {
		struct vm_device_config *nic = &vc->devices[vc->nr_devices++];

		nic->type = VM_DEVICE_VIRTIO_NET;
		snprintf(nic->id, sizeof(nic->id), "net%zu", i);
		snprintf(nic->path, sizeof(nic->path), "%s", net->ifaces[i].tap_name);
		nic->net_fd_set = true;
		nic->net_fd = m->net_fds[i];
		nic->mac_set = true;
		memcpy(nic->mac, net->ifaces[i].mac, sizeof(nic->mac));
		nic->mtu = net->ifaces[i].mtu;
		log_debug("network: %s (%02x:%02x:%02x:%02x:%02x:%02x, MTU %u) through tap %s",
			  net->ifaces[i].name, nic->mac[0], nic->mac[1], nic->mac[2], nic->mac[3],
			  nic->mac[4], nic->mac[5], nic->mtu, net->ifaces[i].tap_name);
	}
	return 0;
}

static int monitor_build_vm(struct monitor *m, struct vm_config *vc, struct error *err)
{
	const struct monitor_config *cfg = m->cfg;
	const struct rootfs *rootfs = cfg->rootfs;
	struct vm_device_config *vsock = &vc->devices[0];

	monitor_vm_config(vc, cfg->assets, cfg->vcpus, cfg->mem_mib,
			  open_in_dir(cfg->state_dir, MONITOR_CONSOLE,
				      O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW));
	if (m->restored)
		return monitor_restore_vm(m, vc, err);
	vsock->type = VM_DEVICE_VIRTIO_VSOCK;
	snprintf(vsock->id, sizeof(vsock->id), "vsock0");
	snprintf(vsock->path, sizeof(vsock->path), "%s", m->vsock_path);
	vsock->guest_cid = MONITOR_GUEST_CID;
	vc->nr_devices = 1;
	if (rootfs->block) {
		struct vm_device_config *blk = &vc->devices[vc->nr_devices++];

		blk->type = VM_DEVICE_VIRTIO_BLK;
		snprintf(blk->id, sizeof(blk->id), "rootfs");
		snprintf(blk->path, sizeof(blk->path), "%s", rootfs->block);
		blk->readonly = rootfs->block_readonly;
	}
	if (rootfs_stage_files(rootfs, err) < 0)
		return err->code;
	/* cache=auto for all: the host may change a share under the guest (docs/runtime.md) */
	for (uint32_t i = 0; i < rootfs->n_shares; i++) {
		struct vm_device_config *fs = &vc->devices[vc->nr_devices++];

		fs->type = VM_DEVICE_VIRTIO_FS;
		snprintf(fs->id, sizeof(fs->id), "fs-%s", rootfs->shares[i].tag);
		snprintf(fs->fs_tag, sizeof(fs->fs_tag), "%s", rootfs->shares[i].tag);
		snprintf(fs->path, sizeof(fs->path), "%s", rootfs->shares[i].path);
		fs->readonly = rootfs->shares[i].readonly;
		fs->fs_cache = VM_FS_CACHE_AUTO;
	}
	return monitor_add_nics(m, vc, err) ?: vm_create(vc, &m->vm, err);
}

/*
 * Only fds 0-2, notify_fd and the network's taps survive into the monitor: whatever else
 * `create`'s caller left open must not be held for the container's life. notify_fd becomes
 * fd 3, the taps 4 and up (net_fds), each first moved above all of them so none is clobbered.
 */
static int monitor_close_fds(int notify_fd, const struct netns_plan *net, int *net_fds)
{
	size_t n = net ? net->n_ifaces : 0;
	int high[AGENT_MAX_NET_IFACES + 1];
	int first = 4 + (int)n;

	for (size_t i = 0; i <= n; i++) {
		high[i] = fcntl(i < n ? net->ifaces[i].tap_fd : notify_fd, F_DUPFD_CLOEXEC, 1024);
		if (high[i] < 0)
			return -1;
	}
	if (dup2(high[n], 3) < 0)
		return -1;
	fcntl(3, F_SETFD, FD_CLOEXEC);
	for (size_t i = 0; i < n; i++) {
		net_fds[i] = 4 + (int)i;
		if (dup2(high[i], net_fds[i]) < 0)
			return -1;
		fcntl(net_fds[i], F_SETFD, FD_CLOEXEC);
	}
	if (close_range(first, ~0u, 0) < 0) {
		for (int fd = first; fd < 65536; fd++)
			close(fd);
	}
	return 3;
}

/*
 * With a terminal the container's stdio is the pty handed to --console-socket: the caller's
 * fds 0-2 (go-runc reads create's output from a pipe until it closes) must not be held for
 * the container's life, as runc does not hold them either.
 */
static void monitor_null_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		dup2(fd, i);
	if (fd > 2)
		close(fd);
}

/* DIR/NAME, or its /proc/self/fd form when too long for sun_path (unix_path.h). */
static int monitor_socket_path(const char *dir, const char *name, char *buf, size_t len)
{
	char full[4200];
	int dirfd;

	if (snprintf(full, sizeof(full), "%s/%s", dir, name) >= (int)sizeof(full))
		return -ENAMETOOLONG;
	return unix_path_short(full, buf, len, &dirfd);
}

_Noreturn void monitor_main(const struct monitor_config *cfg)
{
	struct monitor m = { .cfg = cfg, .winch_fd = -1, .pty_slave = -1 };
	char qmp_path[4200];
	struct error err = { 0 };
	struct qmp_server *qmp = NULL;
	enum vm_exit_reason reason;
	struct vm_config vc;
	pthread_t thread;
	int log_file;
	sigset_t set;

	setsid();
	prctl(PR_SET_NAME, "stratus-monitor"); /* comm: 15 bytes, what ps and top show */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	m.notify_fd = monitor_close_fds(cfg->notify_fd, cfg->network, m.net_fds);
	for (int i = 0; i < AGENT_STREAM_NR; i++)
		m.streams[i] = -1;
	log_file = open_in_dir(cfg->state_dir, MONITOR_LOG,
			       O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW);
	log_init(log_file >= 0 ? log_file : open("/dev/null", O_WRONLY | O_CLOEXEC),
		 cfg->debug ? LOG_DEBUG : LOG_INFO);
	if (cfg->console_socket)
		monitor_null_stdio();
	/* Kept open for the monitor's life when a socket path needs the short form. */
	if (monitor_socket_path(cfg->state_dir, MONITOR_VSOCK, m.vsock_path, sizeof(m.vsock_path)) <
		    0 ||
	    monitor_socket_path(cfg->state_dir, MONITOR_QMP, qmp_path, sizeof(qmp_path)) < 0) {
		monitor_fail(&m, "the state directory's path is too long for its sockets");
		_exit(1);
	}
	/* Signals reach vm_run's signalfd or ours, never a thread at random. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	m.ended_fd = eventfd(0, EFD_CLOEXEC);
	m.restored = cfg->template_snapshot != NULL;
	if (m.ended_fd < 0 || monitor_build_vm(&m, &vc, &err) < 0 ||
	    qmp_server_create(m.vm, qmp_path, STRATUS_VERSION, &qmp, &err) < 0) {
		char msg[sizeof(err.msg) + 64];

		snprintf(msg, sizeof(msg), "%s%s",
			 m.restored && m.vm == NULL ? MONITOR_TEMPLATE_FAILED : "",
			 err.msg[0] ? err.msg : "eventfd failed");
		monitor_fail(&m, msg);
		vm_destroy(m.vm);
		_exit(1);
	}
	log_info("container %s: VM with %u vCPU(s), %llu MiB%s%s", cfg->id, vc.nr_vcpus,
		 (unsigned long long)cfg->mem_mib, m.restored ? ", restored from " : "",
		 m.restored ? cfg->template_snapshot : "");
	/* The VMM holds its own dups of the taps: they vanish when the VM does. */
	for (size_t i = 0; cfg->network && i < cfg->network->n_ifaces; i++)
		close(m.net_fds[i]);
	phase_mark(m.restored ? "vm-restored" : "vm-built", "host");
	monitor_drop_privileges();
	if (pthread_create(&thread, NULL, monitor_supervise, &m) != 0) {
		monitor_fail(&m, "cannot start the supervisor thread");
		_exit(1);
	}
	reason = vm_run(m.vm);
	phase_mark("vm-stopped", "guest");
	log_info("VM stopped: %s", vm_exit_reason_name(reason));
	eventfd_write(m.ended_fd, 1);
	pthread_join(thread, NULL);
	if (m.notify_fd >= 0)
		monitor_fail(&m, "the VM stopped before the container was created");
	qmp_server_vm_ended(qmp, reason);
	qmp_server_destroy(qmp);
	phase_mark("monitor-joined", "host");
	vm_destroy(m.vm);
	phase_mark("vm-destroyed", "host");
	if (!m.exited)
		log_error("the container's exit was never reported: exit status %d",
			  MONITOR_EXIT_VM_LOST);
	_exit(m.exited ? m.status : MONITOR_EXIT_VM_LOST);
}
