/*
 * The container lifecycle after create (see container.h; create is container_create.c): the
 * verbs read state.json, check the monitor is the one that wrote it, and reach the guest
 * through the agent's control port on <dir>/vsock.sock (start, kill, ps, stats) or QMP on
 * <dir>/qmp.sock (pause, resume). Hooks run here, on the host, at the points of the OCI
 * lifecycle (docs/runtime.md "Hooks").
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "container.h"
#include "container_internal.h"
#include "hooks.h"
#include "monitor.h"
#include "netns.h"
#include "oci_spec.h"
#include "phase.h"
#include "pod.h"
#include "qmp_client.h"

#define CONTAINER_KILL_WAIT_MS 10000

static void (*warn_fn)(const char *msg);

void container_set_warn(void (*warn)(const char *msg))
{
	warn_fn = warn;
}

void container_warn(const char *fmt, ...)
{
	char msg[ERROR_MSG_MAX];
	va_list ap;

	if (!warn_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	warn_fn(msg);
}

int container_agent_timeout_ms(void)
{
	const char *v = getenv(CONTAINER_AGENT_TIMEOUT_ENV);
	char *end;
	long s;

	if (!v || !*v)
		return CONTAINER_AGENT_TIMEOUT_S * 1000;
	s = strtol(v, &end, 10);
	if (*end || s <= 0 || s > 24 * 3600)
		return CONTAINER_AGENT_TIMEOUT_S * 1000;
	return (int)s * 1000;
}

int container_remove_tree(const char *path)
{
	return pod_remove_tree(path);
}

int container_load(const char *root, const char *id, struct container_state *st, struct error *err)
{
	_cleanup_free_ char *dir = NULL;
	struct error inner = { 0 };
	int r;

	r = state_id_check(id, err);
	if (r < 0)
		return r;
	if (state_dir_path(root, id, &dir) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	r = state_read(dir, st, &inner);
	if (r == -ENOENT)
		return error_set(err, r, "container \"%s\" does not exist", id);
	if (r < 0)
		return error_set(err, r, "%s", inner.msg);
	st->status = state_live_status(st);
	return 0;
}

static int container_save(const char *root, const struct container_state *st, struct error *err)
{
	_cleanup_free_ char *dir = NULL;

	if (state_dir_path(root, st->id, &dir) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	return state_write(dir, st, err);
}

int container_load_shown(const char *root, const char *id, struct container_state *st,
			 struct error *err)
{
	struct container_state sst;
	struct error ignored = { 0 };
	int r = container_load(root, id, st, err);

	/* a running member of a paused sandbox: its VM's vCPUs are stopped, so is it */
	if (r < 0 || !st->sandbox || st->status != CONTAINER_RUNNING)
		return r;
	if (container_load(root, st->sandbox, &sst, &ignored) == 0) {
		if (sst.status == CONTAINER_PAUSED)
			st->status = CONTAINER_PAUSED;
		state_clear(&sst);
	}
	return 0;
}

int container_state_json(const char *root, const char *id, struct error *err, char **json)
{
	struct container_state st;
	int r = container_load_shown(root, id, &st, err);

	if (r < 0)
		return r;
	r = state_to_json(&st, true, json);
	state_clear(&st);
	return r < 0 ? error_set(err, r, "state: cannot encode") : 0;
}

/* A member's sandbox must be there, with its VM running, for the member's agent requests. */
static int sandbox_usable(const char *root, const struct container_state *st, struct error *err)
{
	struct container_state sst;
	struct error inner = { 0 };
	int r = container_load(root, st->sandbox, &sst, &inner);

	if (r == -ENOENT)
		return error_set(err, -ESRCH, "container \"%s\": its pod sandbox \"%s\" is gone",
				 st->id, st->sandbox);
	if (r < 0)
		return error_set(err, r, "%s", inner.msg);
	if (sst.status == CONTAINER_STOPPED || sst.status == CONTAINER_PAUSED)
		r = error_set(err, sst.status == CONTAINER_PAUSED ? -EBUSY : -ESRCH,
			      "container \"%s\": its pod sandbox \"%s\" is %s%s", st->id,
			      st->sandbox, container_status_name(sst.status),
			      sst.status == CONTAINER_PAUSED
				      ? " (its VM's vCPUs are stopped): resume the sandbox first"
				      : "");
	state_clear(&sst);
	return r;
}

int container_vsock_path(const char *root, const char *id, char *buf, size_t len, struct error *err)
{
	struct container_state st;
	int r = container_load(root, id, &st, err);

	if (r < 0)
		return r;
	/* a pod's member lives in its sandbox's VM (docs/pods.md) */
	if (st.sandbox)
		r = sandbox_usable(root, &st, err);
	if (r == 0 && (size_t)snprintf(buf, len, "%s/%s/%s", root, st.sandbox ? st.sandbox : id,
				       MONITOR_VSOCK) >= len)
		r = error_set(err, -ENAMETOOLONG, "--root: %s: path too long", root);
	state_clear(&st);
	return r;
}

int container_agent_connect_path(const char *vsock, const char *id, struct agent_client *c,
				 struct error *err)
{
	int r;

	agent_client_init(c, container_agent_timeout_ms());
	/* the monitor's connection set the VM's clock and entropy: a handshake is enough */
	r = agent_client_connect_plain(c, vsock);
	if (r < 0) {
		error_set(err, r, "container \"%s\": cannot reach the agent: %s", id, c->err);
		agent_client_destroy(c);
	}
	return r;
}

int container_agent_connect(const char *root, const char *id, struct agent_client *c,
			    struct error *err)
{
	char path[4200];
	int r = container_vsock_path(root, id, path, sizeof(path), err);

	return r ?: container_agent_connect_path(path, id, c, err);
}

/*
 * What a verb that changes a container starts with: its lock (held until state_unlock(*lock),
 * so racing verbs take turns, state_lock.c), then its state. On failure nothing is held.
 */
static int lock_and_load(const char *root, const char *id, int *lock, struct container_state *st,
			 struct error *err)
{
	int r = state_id_check(id, err);

	*lock = -1;
	memset(st, 0, sizeof(*st));
	r = r ?: state_lock(root, id, lock, err);
	r = r ?: container_load(root, id, st, err);
	if (r < 0) {
		state_unlock(*lock);
		*lock = -1;
	}
	return r;
}

/* lock_and_load a container that must be alive (created, running or paused) for verb. */
static int load_alive(const char *root, const char *id, const char *verb, int *lock,
		      struct container_state *st, struct error *err)
{
	int r = lock_and_load(root, id, lock, st, err);

	if (r < 0)
		return r;
	if (st->status == CONTAINER_STOPPED) {
		state_clear(st);
		state_unlock(*lock);
		*lock = -1;
		return error_set(err, -ESRCH, "%s: container \"%s\" is stopped", verb, id);
	}
	return 0;
}

/* Hooks of kind with the state (status as given) on stdin; bundle's config.json. */
int container_run_hooks(const struct oci_spec *spec, enum oci_hook_kind kind,
			const struct container_state *st, enum container_status status,
			struct error *err)
{
	struct container_state shown = *st;
	_cleanup_free_ char *json = NULL;

	if (!spec->hooks[kind].n)
		return 0;
	shown.status = status;
	if (state_to_json(&shown, false, &json) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	return hooks_run(spec, kind, json, err);
}

/* config.json of the container's bundle, for its hooks (NULL with a warning if unreadable). */
static struct oci_spec *load_spec_for_hooks(const struct container_state *st)
{
	struct oci_spec *spec = NULL;
	struct error err = { 0 };

	if (oci_spec_load(st->bundle, &spec, &err) < 0) {
		container_warn("hooks not run: %s", err.msg);
		return NULL;
	}
	return spec;
}

int container_start(const char *root, const char *id, struct error *err)
{
	struct container_state st;
	struct agent_client c;
	struct oci_spec *spec;
	struct error hook_err = { 0 };
	int r, lock;

	r = lock_and_load(root, id, &lock, &st, err);
	if (r < 0)
		return r;
	if (st.status != CONTAINER_CREATED) {
		r = error_set(err, -EINVAL, "start: container \"%s\" is %s, not created", id,
			      container_status_name(st.status));
		goto out;
	}
	spec = load_spec_for_hooks(&st);
	if (spec)
		r = container_run_hooks(spec, OCI_HOOK_START_CONTAINER, &st, CONTAINER_CREATED,
					err);
	r = r ?: container_agent_connect(root, id, &c, err);
	if (r == 0) {
		r = agent_client_start(&c, id);
		if (r < 0)
			error_set(err, r, "start: agent: %s", c.err);
		agent_client_destroy(&c);
	}
	if (r == 0) {
		st.status = CONTAINER_RUNNING;
		r = container_save(root, &st, err);
	}
	if (r == 0)
		phase_mark("started", "guest");
	if (r == 0 && spec &&
	    container_run_hooks(spec, OCI_HOOK_POSTSTART, &st, CONTAINER_RUNNING, &hook_err) < 0)
		container_warn("%s", hook_err.msg);
	oci_spec_free(spec);
out:
	state_clear(&st);
	state_unlock(lock);
	return r;
}

/*
 * A paused container's guest cannot take a signal: like a frozen cgroup's tasks, its
 * processes get it when resumed. Signals sent meanwhile wait in <dir>/pending-signals, one
 * "SIGNAL ALL" line each, at most once per pair (a pending signal is a bit, as in the
 * kernel); resume delivers them. SIGKILL does not wait: as for a task frozen by cgroup v2,
 * it kills at once, here the whole VM (the monitor; the exit status is 128 + 9).
 */
#define PENDING_SIGNALS	    "pending-signals"
#define PENDING_SIGNALS_MAX 64

static int pending_path(const char *root, const char *id, char **path)
{
	_cleanup_free_ char *dir = NULL;

	if (state_dir_path(root, id, &dir) < 0 || asprintf(path, "%s/%s", dir, PENDING_SIGNALS) < 0)
		return -ENOMEM;
	return 0;
}

/* The pending signals into sig[]/all[] (at most PENDING_SIGNALS_MAX); their count. */
static int pending_read(const char *path, int *sig, int *all)
{
	FILE *f = fopen(path, "re");
	int n = 0;

	if (!f)
		return 0;
	while (n < PENDING_SIGNALS_MAX && fscanf(f, "%d %d", &sig[n], &all[n]) == 2)
		n++;
	fclose(f);
	return n;
}

static int kill_paused(const char *root, const struct container_state *st, int signal, bool all,
		       struct error *err)
{
	int sig[PENDING_SIGNALS_MAX], alls[PENDING_SIGNALS_MAX], n;
	_cleanup_free_ char *path = NULL;
	FILE *f;

	if (signal == SIGKILL) {
		if (state_monitor_alive(st) && kill(st->pid, SIGKILL) < 0 && errno != ESRCH)
			return error_set_errno(err, -errno,
					       "kill: cannot kill the monitor (pid %d)",
					       (int)st->pid);
		return 0;
	}
	if (pending_path(root, st->id, &path) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	n = pending_read(path, sig, alls);
	for (int i = 0; i < n; i++)
		if (sig[i] == signal && alls[i] == (int)all)
			return 0;
	if (n >= PENDING_SIGNALS_MAX)
		return error_set(err, -EAGAIN,
				 "kill: container \"%s\" is paused with %d signals pending already",
				 st->id, n);
	f = fopen(path, "ae");
	if (!f || fprintf(f, "%d %d\n", signal, (int)all) < 0 || fclose(f) != 0)
		return error_set_errno(err, -errno, "kill: cannot write %s", path);
	return 0;
}

/* After resume: the signals sent while paused, in their order (file removed first). */
static int deliver_pending(const char *root, const char *id, struct error *err)
{
	int sig[PENDING_SIGNALS_MAX], all[PENDING_SIGNALS_MAX], n, r = 0;
	_cleanup_free_ char *path = NULL;
	struct agent_client c;

	if (pending_path(root, id, &path) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	n = pending_read(path, sig, all);
	unlink(path);
	if (n == 0)
		return 0;
	r = container_agent_connect(root, id, &c, err);
	if (r < 0)
		return r;
	for (int i = 0; r == 0 && i < n; i++) {
		r = agent_client_signal(&c, id, "", sig[i], all[i] ? AGENT_SIGNAL_ALL : 0);
		if (r < 0)
			error_set(err, r, "resume: signal %d sent while paused: agent: %s", sig[i],
				  c.err);
	}
	agent_client_destroy(&c);
	return r;
}

int container_kill(const char *root, const char *id, int signal, bool all, struct error *err)
{
	struct container_state st;
	struct agent_client c;
	int r, lock;

	r = load_alive(root, id, "kill", &lock, &st, err);
	if (r < 0)
		return r;
	/* a paused member is a frozen cgroup in a running VM: the guest's kernel holds the
	 * signals until thawed (SIGKILL kills at once), as runc's */
	if (st.status == CONTAINER_PAUSED && !st.sandbox) {
		r = kill_paused(root, &st, signal, all, err);
		goto out;
	}
	r = container_agent_connect(root, id, &c, err);
	if (r == 0) {
		r = agent_client_signal(&c, id, "", signal, all ? AGENT_SIGNAL_ALL : 0);
		if (r < 0)
			error_set(err, r, "kill: agent: %s", c.err);
		agent_client_destroy(&c);
	}
out:
	state_clear(&st);
	state_unlock(lock);
	return r;
}

/* SIGKILL the monitor and wait until it is gone (it is not our child). */
static int stop_monitor(const struct container_state *st, struct error *err)
{
	uint64_t start;

	if (!state_monitor_alive(st))
		return 0;
	if (kill(st->pid, SIGKILL) < 0 && errno != ESRCH)
		return error_set_errno(err, -errno, "delete: cannot kill the monitor (pid %d)",
				       (int)st->pid);
	for (int waited = 0; waited < CONTAINER_KILL_WAIT_MS; waited += 10) {
		/* Our own child (run): reap it, or it stays a zombie. */
		waitpid(st->pid, NULL, WNOHANG);
		if (process_start_time(st->pid, &start) < 0 || start != st->pid_start_time)
			return 0;
		usleep(10000);
	}
	return error_set(err, -ETIMEDOUT, "delete: the monitor (pid %d) did not die", (int)st->pid);
}

/*
 * Holding the lock with no state.json: a create that died before writing it (a live create
 * holds the lock until it has). --force removes what it left.
 */
/* The monitor is gone and its taps with it: the tc redirects create added go (netns.h). */
static void delete_network(const char *root, const char *id)
{
	_cleanup_free_ char *dir = NULL, *file = NULL;
	struct error err = { 0 };

	if (state_dir_path(root, id, &dir) < 0 || asprintf(&file, "%s/%s", dir, NETNS_RECORD) < 0)
		return;
	if (netns_record_teardown(file, &err) < 0)
		container_warn("delete: %s", err.msg);
}

static int delete_unfinished(const char *root, const char *id, bool force, struct error *err)
{
	if (!force)
		return -ENOENT;
	error_clear(err);
	delete_network(root, id);
	return state_remove_dir(root, id, container_remove_tree, err);
}

static void delete_host_cgroup_warn(const char *msg)
{
	container_warn("delete: %s", msg);
}

/*
 * After the monitor (a member: its relay): what create made, only below a cgroup mount of
 * this host (state.json names it); a cgroup still in use stays, with a warning.
 */
static void delete_host_cgroup(const struct container_state *st)
{
	struct host_cgroup_layout layout;
	struct error err = { 0 };

	if (host_cgroup_layout_load(HOST_CGROUP_MOUNTINFO, HOST_CGROUP_SELF, &layout, &err) < 0) {
		container_warn("delete: host cgroup left: %s", err.msg);
		return;
	}
	host_cgroup_remove(&st->host_cgroup, &layout, HOST_CGROUP_REMOVE_WAIT_MS,
			   delete_host_cgroup_warn);
	host_cgroup_layout_free(&layout);
}

int container_delete(const char *root, const char *id, bool force, struct error *err)
{
	_cleanup_free_ char *dir = NULL;
	struct error hook_err = { 0 };
	struct container_state st;
	struct oci_spec *spec;
	int r, lock;

	r = state_id_check(id, err);
	r = r ?: state_lock(root, id, &lock, err);
	if (r == -ENOENT && force) {
		error_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	r = container_load(root, id, &st, err);
	if (r == -ENOENT) {
		r = delete_unfinished(root, id, force, err);
		state_unlock(lock);
		return r;
	}
	/*
	 * A state.json that cannot be read (empty or cut short: it is renamed into place without
	 * fsync, so a host crash with --root on a disk can leave that): --force removes what is
	 * there, as for a create that never wrote one.
	 */
	if (r < 0 && r != -ENOMEM && force) {
		container_warn("delete: %s: removing what is left", err->msg);
		r = delete_unfinished(root, id, force, err);
		state_unlock(lock);
		return r;
	}
	if (r < 0) {
		state_unlock(lock);
		return r;
	}
	if ((st.status == CONTAINER_RUNNING || st.status == CONTAINER_PAUSED) && !force) {
		r = error_set(err, -EBUSY,
			      "delete: container \"%s\" is %s: stop it first or use --force", id,
			      container_status_name(st.status));
		goto out;
	}
	if (st.sandbox)
		r = member_delete(root, &st, force, err);
	else
		r = stop_monitor(&st, err);
	if (r < 0)
		goto out;
	if (!st.sandbox)
		delete_network(root, id);
	st.status = CONTAINER_STOPPED;
	spec = load_spec_for_hooks(&st);
	if (spec &&
	    container_run_hooks(spec, OCI_HOOK_POSTSTOP, &st, CONTAINER_STOPPED, &hook_err) < 0)
		container_warn("%s", hook_err.msg);
	oci_spec_free(spec);
	/* a pod's sandbox: its share goes first (members' mounts below it with it) */
	if (st.pod_share && state_dir_path(root, id, &dir) == 0 && pod_share_remove(dir) < 0)
		container_warn("delete: cannot remove the pod share of \"%s\"", id);
	/* the monitor is gone: the host cgroup directories create made (docs/runtime.md) */
	if (st.host_cgroup.n)
		delete_host_cgroup(&st);
	r = state_remove_dir(root, id, container_remove_tree, err);
out:
	state_clear(&st);
	state_unlock(lock);
	return r;
}

static int pause_or_resume(const char *root, const char *id, bool pause, struct error *err)
{
	_cleanup_free_ char *dir = NULL, *qmp = NULL;
	const char *verb = pause ? "pause" : "resume";
	struct container_state st;
	int r, lock;

	r = load_alive(root, id, verb, &lock, &st, err);
	if (r < 0)
		return r;
	if (st.status != (pause ? CONTAINER_RUNNING : CONTAINER_PAUSED)) {
		r = error_set(err, -EINVAL, "%s: container \"%s\" is %s, not %s", verb, id,
			      container_status_name(st.status), pause ? "running" : "paused");
		goto out;
	}
	if (st.sandbox) {
		r = member_pause(root, &st, pause, err);
		if (r == 0) {
			st.status = pause ? CONTAINER_PAUSED : CONTAINER_RUNNING;
			r = container_save(root, &st, err);
		}
		goto out;
	}
	if (state_dir_path(root, id, &dir) < 0 || asprintf(&qmp, "%s/%s", dir, MONITOR_QMP) < 0) {
		r = error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	r = qmp_client_command(qmp, pause ? "stop" : "cont", container_agent_timeout_ms(), err);
	if (r == 0) {
		st.status = pause ? CONTAINER_PAUSED : CONTAINER_RUNNING;
		r = state_write(dir, &st, err);
	}
	if (r == 0 && !pause)
		r = deliver_pending(root, id, err);
out:
	state_clear(&st);
	state_unlock(lock);
	return r;
}

int container_pause(const char *root, const char *id, struct error *err)
{
	return pause_or_resume(root, id, true, err);
}

int container_resume(const char *root, const char *id, struct error *err)
{
	return pause_or_resume(root, id, false, err);
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int container_list(const char *root, char ***ids, size_t *n, struct error *err)
{
	DIR *d = opendir(root);
	struct dirent *e;
	char **v = NULL;
	size_t count = 0, cap = 0;

	*ids = NULL;
	*n = 0;
	if (!d) {
		if (errno == ENOENT) {
			*ids = calloc(1, sizeof(char *));
			return *ids ? 0 : -ENOMEM;
		}
		return error_set_errno(err, -errno, "--root: cannot read %s", root);
	}
	while ((e = readdir(d))) {
		char path[4096];

		if (e->d_name[0] == '.' || state_id_check(e->d_name, NULL) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", root, e->d_name, STATE_FILE);
		if (access(path, F_OK) < 0)
			continue; /* being created, or not ours */
		if (count + 2 > cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		if (!(v[count] = strdup(e->d_name)))
			break;
		count++;
	}
	closedir(d);
	if (!v && !(v = calloc(1, sizeof(*v))))
		return error_set(err, -ENOMEM, "out of memory");
	v[count] = NULL;
	qsort(v, count, sizeof(*v), compare_ids);
	*ids = v;
	*n = count;
	return 0;
}

void container_list_free(char **ids)
{
	for (size_t i = 0; ids && ids[i]; i++)
		free(ids[i]);
	free(ids);
}

/* Read-only queries take no lock: they may run while another verb holds it. */
static int agent_query(const char *root, const char *id, const char *verb, bool ps, void *out,
		       struct error *err)
{
	struct container_state st;
	struct agent_client c;
	int r;

	r = container_load(root, id, &st, err);
	if (r < 0)
		return r;
	if (st.status == CONTAINER_STOPPED) {
		state_clear(&st);
		return error_set(err, -ESRCH, "%s: container \"%s\" is stopped", verb, id);
	}
	state_clear(&st);
	r = container_agent_connect(root, id, &c, err);
	if (r < 0)
		return r;
	if (ps) {
		struct agent_msg req = { .type = AGENT_PS }, reply;

		req.u.container.container_id = (char *)id;
		r = agent_client_call(&c, &req, &reply, c.timeout_ms);
		if (r == 0) {
			*(struct agent_ps *)out = reply.u.ps;
			memset(&reply.u.ps, 0, sizeof(reply.u.ps));
			agent_msg_clear(&reply);
		}
	} else {
		r = agent_client_stats(&c, id, out);
	}
	if (r < 0)
		error_set(err, r, "%s: agent: %s", verb, c.err);
	agent_client_destroy(&c);
	return r;
}

int container_ps(const char *root, const char *id, struct agent_ps *out, struct error *err)
{
	return agent_query(root, id, "ps", true, out, err);
}

void container_ps_free(struct agent_ps *ps)
{
	struct agent_msg m = { .type = AGENT_PS, .flags = AGENT_FLAG_REPLY, .id = 1 };

	m.u.ps = *ps;
	agent_msg_clear(&m);
	memset(ps, 0, sizeof(*ps));
}

int container_stats(const char *root, const char *id, struct agent_stats *out, struct error *err)
{
	return agent_query(root, id, "events", false, out, err);
}
