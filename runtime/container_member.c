/*
 * A pod's members (docs/pods.md "A member's life"): containers created inside their
 * sandbox's VM instead of a VM of their own. create checks the sandbox, bind-mounts the
 * member's rootfs and bind sources below the sandbox's pod share (pod_mount.c), asks the
 * sandbox's agent to mount the share (MOUNT_SHARE) and to CREATE the container from there, and
 * forks the relay: the member's pid, which attaches the init's stdio to the caller's fds and
 * exits with the init's status, as a monitor does (the exec relay of container_exec.c). The
 * other verbs reach the agent through the sandbox's vsock socket (container_vsock_path); here
 * are the ones that differ: delete (agent DELETE, then the host mounts) and pause/resume (the
 * agent's FREEZE of the member's cgroup: the VM and the other containers keep running).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "container.h"
#include "container_internal.h"
#include "monitor.h"
#include "phase.h"
#include "pod.h"

#define MEMBER_KILL_WAIT_MS  10000
#define MEMBER_RELAY_EXIT_MS 6000 /* the exec relay's drain (5 s) and some */

/* The sandbox named by the member's annotation: it must be able to take a member now. */
static int member_check_sandbox(const char *root, const char *sandbox, struct container_state *sst,
				struct error *err)
{
	struct error inner = { 0 };
	int r = container_load(root, sandbox, sst, &inner);

	if (r == -ENOENT)
		return error_set(err, r, "annotation %s: container \"%s\" does not exist",
				 POD_SANDBOX_ANNOTATION, sandbox);
	if (r < 0)
		return error_set(err, r, "annotation %s: %s", POD_SANDBOX_ANNOTATION, inner.msg);
	if (!sst->pod_share || sst->sandbox)
		r = error_set(err, -EINVAL,
			      "annotation %s: container \"%s\" is not a pod sandbox (it has no "
			      "%s: %s annotation)",
			      POD_SANDBOX_ANNOTATION, sandbox, POD_TYPE_ANNOTATION,
			      POD_TYPE_SANDBOX);
	else if (sst->status != CONTAINER_CREATED && sst->status != CONTAINER_RUNNING)
		r = error_set(err, -EINVAL, "annotation %s: container \"%s\" is %s",
			      POD_SANDBOX_ANNOTATION, sandbox, container_status_name(sst->status));
	if (r < 0)
		state_clear(sst);
	return r;
}

/*
 * Wait until the relay of st is gone (up to ms; it is not our child, except for `run`'s),
 * then SIGKILL it if it is still there, and wait for that.
 */
static void member_end_relay(const struct container_state *st, int ms)
{
	for (int waited = 0; waited < ms + MEMBER_KILL_WAIT_MS; waited += 10) {
		waitpid(st->pid, NULL, WNOHANG);
		if (!state_monitor_alive(st))
			return;
		if (waited == ms)
			kill(st->pid, SIGKILL);
		usleep(10000);
	}
}

/* The agent exchange of create: MOUNT_SHARE, the stdio streams, CREATE. */
static int member_agent_create(struct exec_session *s, const struct oci_spec *spec,
			       const char *bundle, struct pod_member_plan *plan,
			       const char *sandbox, const char *pod_tag, struct error *err)
{
	_cleanup_free_ char *guest_dir = NULL, *config = NULL, *rewritten = NULL;
	struct agent_create req = { 0 };
	uint32_t pid;
	int r;

	r = container_agent_connect_path(s->vsock, sandbox, &s->agent, err);
	if (r < 0)
		return r;
	r = agent_client_mount_share(&s->agent, pod_tag, &guest_dir);
	if (r < 0)
		return error_set(err, r, "agent: mount the pod share %s: %s", pod_tag,
				 s->agent.err);
	r = pod_member_plan_guest(spec, s->id, guest_dir, plan, err);
	r = r ?: container_read_config(bundle, &config, err);
	r = r ?: pod_member_config(config, strlen(config), sandbox, &rewritten, err);
	r = r ?: exec_open_stdio(s, &req.stdio, err);
	if (r < 0)
		return r;
	req.container_id = (char *)s->id;
	req.rootfs_kind = AGENT_ROOTFS_DIR;
	req.rootfs_source = plan->rootfs_source;
	req.rootfs_fstype = "";
	req.rootfs_options = "";
	req.oci_config = rewritten;
	req.mounts.v = plan->mounts;
	req.mounts.n = plan->n_mounts;
	r = agent_client_create(&s->agent, &req, &pid);
	if (r < 0)
		return error_set(err, r, "agent: create: %s", s->agent.err);
	return 0;
}

/*
 * DELETE (FORCE: a created member's init waits for START, a running one's was refused by
 * container_delete without --force) ends the member's processes; the agent keeps the
 * container until its init's exit is acknowledged. Its relay does that when it is alive, and
 * so do we: WAIT, ACK_EXIT (a second acknowledgement is harmless, ENOENT).
 */
static int member_agent_delete(struct agent_client *c, const char *id, struct error *err)
{
	struct agent_msg exit;
	int r = agent_client_delete(c, id, AGENT_DELETE_FORCE);

	if (r == -ENOENT)
		return 0; /* nothing of it in the guest (any more) */
	if (r < 0)
		return error_set(err, r, "delete: agent: %s", c->err);
	r = agent_client_wait(c, id, "", c->timeout_ms, &exit);
	if (r == 0) {
		agent_msg_clear(&exit);
		r = agent_client_ack_exit(c, id, "");
	}
	if (r < 0 && r != -ENOENT)
		return error_set(err, r, "delete: agent: %s", c->err);
	return 0;
}

/* Undo a CREATE that went through (a later step failed). */
static void member_agent_undo(const char *vsock, const char *id)
{
	struct agent_client c;
	struct error ignored = { 0 };

	if (container_agent_connect_path(vsock, id, &c, &ignored) < 0)
		return;
	member_agent_delete(&c, id, &ignored);
	agent_client_destroy(&c);
}

/* create's part once the member's directory and lock exist; the relay's pid in o. */
static int member_create_in_dir(struct container_create_opts *o, const struct oci_spec *spec,
				const char *bundle, const char *dir,
				const struct container_state *sst, struct error *err)
{
	_cleanup_free_ char *sandbox_dir = NULL, *pod = NULL;
	struct pod_member_plan plan;
	struct exec_session s;
	bool created = false;
	int r;

	exec_session_init(&s, o->root, o->id);
	s.member = true;
	s.lost_status = 128 + SIGKILL; /* the VM went: as a killed monitor */
	s.terminal = spec->process.terminal;
	s.cli_tty = o->foreground || o->console_socket;
	r = pod_member_plan(spec, bundle, &plan, err);
	if (r < 0) {
		exec_session_close(&s);
		return r;
	}
	if (state_dir_path(o->root, sst->id, &sandbox_dir) < 0 ||
	    asprintf(&pod, "%s/%s", sandbox_dir, POD_SHARE_DIR) < 0) {
		r = error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	r = container_vsock_path(o->root, sst->id, s.vsock, sizeof(s.vsock), err);
	r = r ?: pod_member_mount(pod, o->id, spec->root_path, &plan, err);
	if (r < 0)
		goto out;
	if (s.terminal && o->console_socket) {
		r = exec_console_socket(&s, o->console_socket, spec->process.console_height,
					spec->process.console_width, err);
		if (r < 0)
			goto out;
		s.stdio[2] = s.pty_slave; /* the relay keeps none of the caller's fds 0-2 */
	}
	r = member_agent_create(&s, spec, bundle, &plan, sst->id, sst->pod_share, err);
	created = r == 0;
	r = r ?: exec_fork_relay(&s, &o->monitor_pid, err);
	/* the relay is the member's process on the host: it goes where linux.cgroupsPath says */
	if (r == 0 && o->host_cgroup) {
		const char *failed = "";

		r = host_cgroup_enter(o->host_cgroup, o->monitor_pid, &failed);
		if (r < 0)
			error_set_errno(err, r, "linux.cgroupsPath: cannot move the relay into %s",
					failed);
	}
	exec_session_close(&s);
	if (r == 0) {
		phase_mark("created", "guest");
		r = container_create_finish(o, spec, bundle, dir, sst->vm_vcpus, sst->vm_mem_mib,
					    sst->id, NULL, err);
	}
out:
	exec_session_close(&s);
	if (r < 0) {
		if (o->monitor_pid > 0) {
			kill(o->monitor_pid, SIGKILL);
			while (waitpid(o->monitor_pid, NULL, 0) < 0 && errno == EINTR)
				;
			o->monitor_pid = 0;
		}
		if (created)
			member_agent_undo(s.vsock, o->id);
		pod_member_unmount(pod, o->id);
	} else {
		phase_mark("create-done", "host");
	}
	pod_member_plan_destroy(&plan);
	return r;
}

int member_create(struct container_create_opts *o, const struct oci_spec *spec, const char *bundle,
		  const char *sandbox, struct error *err)
{
	_cleanup_free_ char *dir = NULL;
	struct container_state sst;
	int r, lock = -1;

	o->monitor_pid = 0;
	r = member_check_sandbox(o->root, sandbox, &sst, err);
	if (r < 0)
		return r;
	phase_mark("config", "host");
	if (state_dir_path(o->root, o->id, &dir) < 0) {
		state_clear(&sst);
		return error_set(err, -ENOMEM, "out of memory");
	}
	r = state_lock_create(o->root, o->id, &lock, err);
	if (r == 0) {
		r = member_create_in_dir(o, spec, bundle, dir, &sst, err);
		if (r < 0) {
			struct error ignored = { 0 };

			state_remove_dir(o->root, o->id, container_remove_tree, &ignored);
		}
		state_unlock(lock);
	}
	state_clear(&sst);
	return r;
}

/*
 * The sandbox's VM may be gone (deleted, or its init exited): then only the host's part is
 * left. Otherwise DELETE in the guest first (FORCE kills a running init), so that the guest
 * lets go of the member's files before they are unmounted here.
 */
int member_delete(const char *root, const struct container_state *st, bool force, struct error *err)
{
	_cleanup_free_ char *sandbox_dir = NULL, *pod = NULL;
	struct container_state sst = { 0 };
	struct error ignored = { 0 };
	struct agent_client c;
	int r;

	if (container_load(root, st->sandbox, &sst, &ignored) == 0 &&
	    sst.status == CONTAINER_PAUSED && !force) {
		state_clear(&sst);
		return error_set(err, -EBUSY,
				 "delete: container \"%s\": its pod sandbox \"%s\" is paused: "
				 "resume the sandbox first or use --force",
				 st->id, st->sandbox);
	}
	if (sst.id && sst.status != CONTAINER_STOPPED && sst.status != CONTAINER_PAUSED) {
		r = container_agent_connect(root, st->id, &c, err);
		if (r == 0) {
			r = member_agent_delete(&c, st->id, err);
			agent_client_destroy(&c);
		}
		/*
		 * --force when the sandbox's agent cannot be reached (its VM going down as
		 * containerd deletes a dead shim's tasks all at once): the host's part still goes.
		 */
		if (r < 0 && force) {
			container_warn("delete --force %s: %s: removing the host side only", st->id,
				       err->msg);
			*err = (struct error){ 0 };
			r = 0;
		}
		if (r < 0) {
			state_clear(&sst);
			return r;
		}
	}
	/* the relay saw the exit and ends after draining the output; a VM gone ends it too */
	member_end_relay(st, MEMBER_RELAY_EXIT_MS);
	state_clear(&sst);
	if (state_dir_path(root, st->sandbox, &sandbox_dir) < 0 ||
	    asprintf(&pod, "%s/%s", sandbox_dir, POD_SHARE_DIR) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	r = pod_member_unmount(pod, st->id);
	if (r < 0)
		return error_set_errno(err, r, "delete: cannot remove %s/%s", pod, st->id);
	return 0;
}

/* FREEZE of the member's cgroup by the agent (a paused sandbox is refused on the way). */
int member_pause(const char *root, struct container_state *st, bool pause, struct error *err)
{
	const char *verb = pause ? "pause" : "resume";
	struct agent_client c;
	int r;

	r = container_agent_connect(root, st->id, &c, err);
	if (r < 0)
		return r;
	r = agent_client_freeze(&c, st->id, pause);
	if (r < 0)
		error_set(err, r, "%s: agent: %s", verb, c.err);
	agent_client_destroy(&c);
	return r;
}
