/*
 * `stratus create` (container_create, see container.h): validate everything first (the ID,
 * the bundle, config.json, the VM's size, the terminal flags, the guest kernel and
 * initramfs), then make <root>/<id>/, plan the rootfs and bind-mount shares (rootfs.h), fork
 * the monitor and wait for its verdict on a pipe; then state.json, the create hooks and the
 * pid file. Any failure kills the monitor and removes the directory: nothing is left behind.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "container.h"
#include "container_internal.h"
#include "monitor.h"
#include "netns.h"
#include "oci_spec.h"
#include "phase.h"
#include "pod.h"
#include "rootfs.h"
#include "template.h"
#include "vm_sizing.h"

static int write_file_atomic(const char *path, const char *content, const char *flag,
			     struct error *err)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	size_t len = strlen(content);

	if (asprintf(&tmp, "%s.stratus-tmp", path) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return error_set_errno(err, -errno, "%s: cannot create %s", flag, tmp);
	if (write(fd, content, len) != (ssize_t)len || fsync(fd) < 0 || rename(tmp, path) < 0) {
		int r = -errno;

		unlink(tmp);
		return error_set_errno(err, r, "%s: cannot write %s", flag, path);
	}
	return 0;
}

int container_read_config(const char *bundle, char **out, struct error *err)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	_cleanup_close_ int fd = -1;
	size_t have = 0;
	ssize_t n;

	if (asprintf(&path, "%s/config.json", bundle) < 0 || !(buf = malloc(AGENT_MAX_OCI + 1)))
		return error_set(err, -ENOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_set_errno(err, -errno, "cannot open %s", path);
	while ((n = read(fd, buf + have, AGENT_MAX_OCI + 1 - have)) > 0)
		have += (size_t)n;
	if (n < 0)
		return error_set_errno(err, -errno, "cannot read %s", path);
	if (have > AGENT_MAX_OCI)
		return error_set(err, -E2BIG,
				 "config.json: larger than %u KiB, the most the agent "
				 "takes",
				 AGENT_MAX_OCI >> 10);
	buf[have] = '\0';
	*out = ptr_steal(&buf);
	return 0;
}

/* mkdir -p: --root may name a directory whose parents do not exist yet (as runc allows). */
static int mkdir_parents(const char *path, mode_t mode)
{
	_cleanup_free_ char *copy = strdup(path);

	if (!copy)
		return -ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(copy, mode) < 0 && errno != EEXIST ? -errno : 0;
}

/* Wait for the monitor's verdict: 0 when it said ready. */
static int wait_monitor(int fd, pid_t pid, int timeout_ms, struct error *err)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[2048];
	size_t have = 0;
	int status;

	for (;;) {
		ssize_t n;
		int p = poll(&pfd, 1, timeout_ms);

		if (p < 0 && errno == EINTR)
			continue;
		if (p == 0)
			return error_set(err, -ETIMEDOUT, "the monitor did not report within %d s",
					 timeout_ms / 1000);
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || have + n >= sizeof(buf) - 1) {
			have += n > 0 ? (size_t)n : 0;
			break;
		}
		have += (size_t)n;
	}
	buf[have] = '\0';
	if (!strcmp(buf, MONITOR_READY))
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	if (buf[0])
		return error_set(err, -EIO, "%s", buf);
	if (waitpid(pid, &status, WNOHANG) == pid && WIFSIGNALED(status))
		return error_set(err, -EIO, "the monitor was killed by signal %d",
				 WTERMSIG(status));
	return error_set(err, -EIO, "the monitor exited before the container was created");
}

static void kill_monitor(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* A network namespace path names one (a member's joins its sandbox's instead). */
static int create_check_network(const struct oci_spec *spec, enum pod_role role, struct error *err)
{
	size_t index;
	const char *path = role == POD_MEMBER ? NULL : netns_spec_path(spec, &index);

	return path ? netns_check(path, index, err) : 0;
}

/* Everything create checks before it makes anything. */
static int create_check(struct container_create_opts *o, struct oci_spec *spec, unsigned int *vcpus,
			uint64_t *mem_mib, struct error *err)
{
	if (spec->process.terminal && !o->console_socket && !o->foreground)
		return error_set(err, -EINVAL,
				 "--console-socket: required when process.terminal is true");
	if (!spec->process.terminal && o->console_socket)
		return error_set(err, -EINVAL,
				 "--console-socket: only for process.terminal true (config.json "
				 "has false)");
	if (!spec->process.args.n)
		return error_set(err, -EINVAL, "config.json: process.args: must not be empty");
	return oci_spec_vm_size(spec, vcpus, mem_mib, err);
}

static int fork_monitor(struct container_create_opts *o, struct monitor_config *mc, int *rfd,
			struct error *err)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return error_set_errno(err, -errno, "pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return error_set_errno(err, -errno, "cannot fork the monitor");
	}
	if (pid == 0) {
		close(fds[0]);
		/* before the monitor makes threads or share processes: they follow it */
		if (o->host_cgroup) {
			const char *failed = "";
			int r = host_cgroup_enter(o->host_cgroup, 0, &failed);

			if (r < 0) {
				dprintf(fds[1],
					"linux.cgroupsPath: cannot move the monitor into %s: %s",
					failed, strerror(-r));
				_exit(1);
			}
		}
		mc->notify_fd = fds[1];
		monitor_main(mc);
	}
	close(fds[1]);
	*rfd = fds[0];
	o->monitor_pid = pid;
	return 0;
}

static int fill_state(struct container_state *st, const struct container_create_opts *o,
		      const struct oci_spec *spec, const char *bundle, unsigned int vcpus,
		      uint64_t mem_mib)
{
	char created[64];

	memset(st, 0, sizeof(*st));
	state_timestamp(created, sizeof(created));
	st->oci_version = strdup(spec->oci_version);
	st->id = strdup(o->id);
	st->status = CONTAINER_CREATED;
	st->pid = o->monitor_pid;
	process_start_time(o->monitor_pid, &st->pid_start_time);
	st->vm_vcpus = vcpus;
	st->vm_mem_mib = mem_mib;
	st->bundle = strdup(bundle);
	st->rootfs = strdup(spec->root_path);
	st->created = strdup(created);
	st->owner = strdup("");
	st->annotations = calloc(spec->annotations.n + 1, sizeof(*st->annotations));
	if (!st->oci_version || !st->id || !st->bundle || !st->rootfs || !st->created ||
	    !st->owner || !st->annotations)
		return -ENOMEM;
	if (o->host_cgroup && host_cgroup_copy(&st->host_cgroup, o->host_cgroup) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < spec->annotations.n; i++) {
		st->annotations[i].key = strdup(spec->annotations.kv[i].key);
		st->annotations[i].value = strdup(spec->annotations.kv[i].value);
		st->n_annotations++;
		if (!st->annotations[i].key || !st->annotations[i].value)
			return -ENOMEM;
	}
	return 0;
}

/*
 * The part of create after the container exists in the guest (the monitor said ready, or a
 * pod member's CREATE succeeded): state, hooks, pid file.
 */
int container_create_finish(struct container_create_opts *o, const struct oci_spec *spec,
			    const char *bundle, const char *dir, unsigned int vcpus,
			    uint64_t mem_mib, const char *sandbox, const char *pod_share,
			    struct error *err)
{
	struct container_state st;
	char pid[32];
	int r;

	r = fill_state(&st, o, spec, bundle, vcpus, mem_mib);
	if (r == 0 && sandbox && !(st.sandbox = strdup(sandbox)))
		r = -ENOMEM;
	if (r == 0 && pod_share && !(st.pod_share = strdup(pod_share)))
		r = -ENOMEM;
	if (r < 0) {
		state_clear(&st);
		return error_set(err, r, "out of memory");
	}
	r = state_write(dir, &st, err);
	r = r ?: container_run_hooks(spec, OCI_HOOK_PRESTART, &st, CONTAINER_CREATING, err);
	r = r ?: container_run_hooks(spec, OCI_HOOK_CREATE_RUNTIME, &st, CONTAINER_CREATING, err);
	r = r ?: container_run_hooks(spec, OCI_HOOK_CREATE_CONTAINER, &st, CONTAINER_CREATING, err);
	state_clear(&st);
	if (r == 0 && o->pid_file) {
		snprintf(pid, sizeof(pid), "%d", (int)o->monitor_pid);
		r = write_file_atomic(o->pid_file, pid, "--pid-file", err);
	}
	return r;
}

/*
 * The template snapshot this container restores from, building the template on first use
 * (template.h); NULL (a cold boot) when it is not wanted, does not fit, or cannot be had,
 * which is never the create's failure: a warning says why.
 */
static char *create_template(const struct oci_spec *spec, const struct rootfs *rootfs,
			     const struct monitor_config *mc)
{
	struct error err = { 0 };
	char *snapshot = NULL;
	int r;

	if (!template_wanted(spec) || !template_fits(rootfs))
		return NULL;
	r = template_get(mc->assets, mc->vcpus, mc->mem_mib, false, &snapshot, NULL, &err);
	if (r < 0) {
		container_warn("%s; booting the VM without a template", err.msg);
		return NULL;
	}
	if (r > 0)
		phase_mark("template-built", "guest");
	return snapshot;
}

/* Fork the monitor and wait for its verdict; a template that fails costs one cold retry. */
static int create_start_monitor(struct container_create_opts *o, struct monitor_config *mc,
				int *rfd, struct error *err)
{
	int r;

	r = fork_monitor(o, mc, rfd, err);
	if (r < 0)
		return r;
	phase_mark("fork", "host");
	r = wait_monitor(*rfd, o->monitor_pid, mc->agent_timeout_ms + 120000, err);
	if (r == 0 || !mc->template_snapshot ||
	    strncmp(err->msg, MONITOR_TEMPLATE_FAILED, strlen(MONITOR_TEMPLATE_FAILED)))
		return r;
	kill_monitor(o->monitor_pid);
	o->monitor_pid = 0;
	close(*rfd);
	*rfd = -1;
	container_warn("template %s: %s; removed it, booting the VM without a template",
		       mc->template_snapshot, err->msg + strlen(MONITOR_TEMPLATE_FAILED));
	template_discard(mc->template_snapshot);
	mc->template_snapshot = NULL;
	memset(err, 0, sizeof(*err));
	r = fork_monitor(o, mc, rfd, err);
	if (r < 0)
		return r;
	phase_mark("fork", "host");
	return wait_monitor(*rfd, o->monitor_pid, mc->agent_timeout_ms + 120000, err);
}

/*
 * A pod's sandbox (docs/pods.md): one more writable share, the first free m<N>, of
 * <dir>/pod made a shared bind mount of itself before the monitor (and its share processes)
 * exists, so that members' mounts made below it later reach the guest.
 */
static int create_pod_share(const char *dir, struct rootfs *rootfs, const char **tag,
			    struct error *err)
{
	_cleanup_free_ char *path = NULL;
	struct rootfs_share *s;
	int r;

	if (rootfs->n_shares + (rootfs->block ? 1 : 0) >= ROOTFS_MAX_SHARES)
		return error_set(err, -E2BIG,
				 "annotation %s: the sandbox's mounts use all %d shares of its VM: "
				 "none is left for the pod share",
				 POD_TYPE_ANNOTATION, ROOTFS_MAX_SHARES);
	r = pod_share_create(dir, &path, err);
	if (r < 0)
		return r;
	s = &rootfs->shares[rootfs->n_shares];
	snprintf(s->tag, sizeof(s->tag), "m%u", rootfs->n_shares - (rootfs->block ? 0 : 1));
	s->path = ptr_steal(&path);
	s->readonly = false;
	rootfs->n_shares++;
	*tag = s->tag;
	return 0;
}

/*
 * A network namespace path (docs/networking.md): its interfaces carried into the VM, each a
 * tap in that namespace joined to it by tc redirects, recorded for delete; *config becomes
 * what the agent gets (without the host path). A namespace with only lo makes nothing.
 */
static int create_network(const struct oci_spec *spec, const char *dir, char **config,
			  struct netns_plan *net, struct error *err)
{
	_cleanup_free_ char *record = NULL, *agent_config = NULL;
	struct error inner = { 0 };
	const char *path;
	size_t index;
	int r;

	path = netns_spec_path(spec, &index);
	if (!path)
		return 0;
	r = netns_plan(path, net, &inner);
	if (r < 0)
		return error_set(err, r, "linux.namespaces[%zu].path: %s", index, inner.msg);
	r = netns_agent_config(*config, strlen(*config), net->n_ifaces > 0, &agent_config, err);
	if (r == 0 && net->n_ifaces) {
		if (asprintf(&record, "%s/%s", dir, NETNS_RECORD) < 0)
			r = error_set(err, -ENOMEM, "out of memory");
		else
			r = netns_record_write(record, path, net, err);
	}
	if (r < 0) {
		netns_teardown(path, net->ifaces, net->n_ifaces, &inner);
		netns_plan_destroy(net);
		return r;
	}
	free(*config);
	*config = ptr_steal(&agent_config);
	return 0;
}

/* The part of create inside the new state directory; base has the VM's size and assets. */
static int create_in_dir(struct container_create_opts *o, struct oci_spec *spec, const char *bundle,
			 const char *dir, const struct monitor_config *base, bool sandbox,
			 struct error *err)
{
	struct monitor_config mc = *base;
	_cleanup_free_ char *config_text = NULL, *snapshot = NULL;
	_cleanup_close_ int rfd = -1;
	struct rootfs rootfs = { 0 };
	struct netns_plan net = { 0 };
	const char *pod_tag = NULL;
	int r;

	mc.state_dir = dir;
	r = container_read_config(bundle, &config_text, err);
	r = r ?: rootfs_prepare(spec, bundle, o->id, dir, &rootfs, err);
	if (r == 0 && sandbox)
		r = create_pod_share(dir, &rootfs, &pod_tag, err);
	r = r ?: create_network(spec, dir, &config_text, &net, err);
	if (r < 0)
		goto out;
	mc.network = net.n_ifaces ? &net : NULL;
	if (net.n_ifaces)
		phase_mark("network", "host");
	mc.rootfs = &rootfs;
	mc.oci_config = config_text;
	mc.mounts = rootfs.mounts;
	mc.n_mounts = rootfs.n_mounts;
	mc.terminal = spec->process.terminal;
	mc.console_socket = o->console_socket;
	mc.console_rows = spec->process.console_height;
	mc.console_cols = spec->process.console_width;
	mc.agent_timeout_ms = container_agent_timeout_ms();
	/* The template's VM has no NIC: a container with interfaces boots cold (monitor.log). */
	snapshot = net.n_ifaces ? NULL : create_template(spec, &rootfs, &mc);
	o->monitor_pid = 0;
	mc.template_snapshot = snapshot;
	r = create_start_monitor(o, &mc, &rfd, err);
	if (r < 0 && o->monitor_pid <= 0)
		goto out;
	r = r
		    ?: container_create_finish(o, spec, bundle, dir, mc.vcpus, mc.mem_mib, NULL,
					       pod_tag, err);
	if (r < 0)
		kill_monitor(o->monitor_pid);
	else
		phase_mark("create-done", "host");
out:
	if (r < 0 && pod_tag)
		pod_share_remove(dir);
	if (r < 0 && net.n_ifaces) {
		struct error ignored = { 0 };
		size_t index;

		netns_teardown(netns_spec_path(spec, &index), net.ifaces, net.n_ifaces, &ignored);
	}
	netns_plan_destroy(&net); /* our tap fds: the monitor holds its own */
	rootfs_destroy(&rootfs);
	return r;
}

static void host_cgroup_warn(const char *msg)
{
	container_warn("%s", msg);
}

/*
 * linux.cgroupsPath resolved in every hierarchy mounted (hc->n == 0: nowhere, the monitor
 * stays in the caller's cgroup). Nothing is made yet.
 */
static int create_host_cgroup_plan(const struct container_create_opts *o,
				   const struct oci_spec *spec, struct host_cgroup *hc,
				   struct error *err)
{
	struct host_cgroup_layout layout;
	int r;

	memset(hc, 0, sizeof(*hc));
	if (!spec->linux_.cgroups_path || !*spec->linux_.cgroups_path ||
	    o->cgroup_manager == HOST_CGROUP_DISABLED)
		return 0;
	r = host_cgroup_layout_load(HOST_CGROUP_MOUNTINFO, HOST_CGROUP_SELF, &layout, err);
	if (r < 0)
		return r;
	r = host_cgroup_plan(&layout, spec->linux_.cgroups_path, o->cgroup_manager, hc,
			     host_cgroup_warn, err);
	host_cgroup_layout_free(&layout);
	return r;
}

/* The directories of hc made, hc noted in o for the monitor (or relay) to join. */
static int create_host_cgroup(struct container_create_opts *o, struct host_cgroup *hc,
			      struct error *err)
{
	int r = hc->n ? host_cgroup_create(hc, host_cgroup_warn, err) : 0;

	if (r == 0 && hc->n)
		o->host_cgroup = hc;
	return r;
}

/*
 * Everything is checked (config.json, VM size, guest kernel) before anything is made. The
 * container's lock is held from the moment its directory exists until create returns, so a
 * rival create of the same ID fails at once ("already exists") and other verbs wait for us.
 */
int container_create(struct container_create_opts *o, struct error *err)
{
	struct monitor_config mc = { .id = o->id, .debug = o->debug };
	_cleanup_free_ char *bundle = NULL, *dir = NULL;
	struct host_cgroup cgroup = { 0 };
	struct guest_assets assets = { 0 };
	struct oci_spec *spec = NULL;
	const char *sandbox = NULL;
	enum pod_role role;
	int r, lock = -1;

	r = state_id_check(o->id, err);
	if (r < 0)
		return r;
	bundle = realpath(o->bundle, NULL);
	if (!bundle)
		return error_set_errno(err, -errno, "--bundle: %s", o->bundle);
	r = oci_spec_load(bundle, &spec, err);
	if (r < 0)
		return r;
	r = create_check(o, spec, &mc.vcpus, &mc.mem_mib, err);
	r = r ?: pod_role(spec, o->id, &role, &sandbox, err);
	r = r ?: pod_check_namespaces(spec, role, err);
	r = r ?: create_check_network(spec, role, err);
	r = r ?: create_host_cgroup_plan(o, spec, &cgroup, err);
	if (r == 0 && role == POD_MEMBER) {
		o->terminal = spec->process.terminal;
		r = r ?: create_host_cgroup(o, &cgroup, err);
		r = r ?: member_create(o, spec, bundle, sandbox, err);
		goto out;
	}
	r = r ?: guest_assets_find(NULL, &assets, err);
	if (r < 0)
		goto out;
	mc.assets = &assets;
	o->terminal = spec->process.terminal;
	phase_mark("config", "host");
	r = mkdir_parents(o->root, 0711);
	if (r < 0) {
		error_set_errno(err, r, "--root: cannot create %s", o->root);
		goto out;
	}
	if (state_dir_path(o->root, o->id, &dir) < 0) {
		r = error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	r = state_lock_create(o->root, o->id, &lock, err);
	if (r < 0)
		goto out;
	r = create_host_cgroup(o, &cgroup, err);
	r = r ?: create_in_dir(o, spec, bundle, dir, &mc, role == POD_SANDBOX, err);
	if (r < 0) {
		struct error ignored = { 0 };

		state_remove_dir(o->root, o->id, container_remove_tree, &ignored);
	}
	state_unlock(lock);
out:
	/* the monitor or relay is gone: the directories made for it go too */
	if (r < 0)
		host_cgroup_remove(&cgroup, NULL, HOST_CGROUP_REMOVE_WAIT_MS, host_cgroup_warn);
	host_cgroup_clear(&cgroup);
	o->host_cgroup = NULL;
	guest_assets_destroy(&assets);
	oci_spec_free(spec);
	return r;
}
