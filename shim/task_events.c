/*
 * The shim's own control connection to a VM's agent (docs/shim.md "Events"): the agent sends
 * its events on every control connection (docs/agent-protocol.md), so the shim learns OOM
 * kills (EVENT_OOM, naming the container) without going through the monitor, and publishes
 * them as TaskOOM. One connection per VM, held by the task that has the VM: a pod's members
 * (docs/pods.md) run in their sandbox's VM, so their events arrive on the sandbox's
 * connection. Exits are not taken from here: the monitor's or a member relay's exit is the
 * init's, an exec relay's the exec's, and they acknowledge the records. The connection sits
 * on the ttrpc loop; a wake-up takes at most TASK_EVENTS_BATCH events (a guest flooding events
 * cannot hold the loop), and a broken or closed connection leaves the loop. The guest is
 * hostile: an event naming a container that is not this VM's task or one of its members is
 * ignored, and nothing here blocks the loop (the handshake runs in a thread, the fd is only
 * read when readable).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "container.h"
#include "monitor.h"
#include "containerd/events/task.pb-c.h"
#include "shim.h"
#include "task_internal.h"
#include "task_service.h"

#define TASK_EVENTS_BATCH 64

/* id's task if it runs in vm's VM: vm itself or a member of its pod. */
static struct shim_task *events_task(struct shim_task *vm, const char *id)
{
	struct shim_task *t = id ? task_table_find(vm->ts, id) : NULL;

	if (t && (t == vm || (t->sandbox && !strcmp(t->sandbox, vm->id))))
		return t;
	return NULL;
}

static void events_take(struct shim_task *vm, unsigned int max)
{
	struct agent_client *c = vm->events;
	struct agent_msg ev;

	for (unsigned int i = 0; i < max && agent_client_next_event(c, &ev, 0) == 0; i++) {
		struct shim_task *t;

		if (ev.type == AGENT_EVENT_OOM && (t = events_task(vm, ev.u.oom.container_id))) {
			Containerd__Events__TaskOOM oom = CONTAINERD__EVENTS__TASK_OOM__INIT;

			oom.container_id = t->id;
			task_publish(vm->ts, "/tasks/oom", &oom.base);
		}
		agent_msg_clear(&ev);
	}
	/* exits are the monitor's and the relays' business: nothing to catch up on */
	c->events_lost = false;
}

static void on_events(int fd, uint32_t events, void *opaque)
{
	struct shim_task *vm = opaque;

	(void)fd;
	(void)events;
	events_take(vm, TASK_EVENTS_BATCH);
	if (vm->events->broken)
		task_events_close(vm);
}

/*
 * The handshake runs in a thread: the guest must accept the connection and answer HELLO, which
 * costs the interpreted guest kernel ~100 ms here, and the loop must not wait for it (an exit
 * right after Start would be reported that much later). The thread touches only its own
 * struct events_connect; a byte on the pipe tells the loop it is done.
 */
struct events_connect {
	pthread_t thread;
	char *path;
	struct agent_client c;
	int done[2]; /* pipe: [0] on the loop, [1] written by the thread when it ends */
};

static void *events_connect_thread(void *arg)
{
	struct events_connect *ec = arg;
	int fd = agent_vsock_connect(ec->path, AGENT_PORT_CONTROL, ec->c.timeout_ms, ec->c.err,
				     sizeof(ec->c.err));

	if (fd >= 0)
		agent_client_attach(&ec->c, fd); /* HELLO: the monitor set the clock already */
	else
		ec->c.broken = true;
	while (write(ec->done[1], "x", 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/* Join the thread; the connection into t->events if it came up. */
static void events_connect_finish(struct shim_task *t)
{
	struct task_service *ts = t->ts;
	struct events_connect *ec = t->events_connect;
	struct agent_client *c;

	t->events_connect = NULL;
	ttrpc_server_remove_fd(ts->srv, ec->done[0]);
	pthread_join(ec->thread, NULL);
	close(ec->done[0]);
	close(ec->done[1]);
	free(ec->path);
	c = malloc(sizeof(*c));
	if (!c || ec->c.broken || agent_client_fd(&ec->c) < 0) {
		fprintf(stderr, "%s: task %s: no agent connection for events (no TaskOOM): %s\n",
			SHIM_NAME, t->id, c ? ec->c.err : "out of memory");
		agent_client_destroy(&ec->c);
		free(ec);
		free(c);
		return;
	}
	*c = ec->c; /* the client holds no pointer into itself: a plain move */
	free(ec);
	if (ttrpc_server_add_fd(ts->srv, agent_client_fd(c), EPOLLIN, on_events, t) < 0) {
		fprintf(stderr, "%s: task %s: cannot watch the agent's events\n", SHIM_NAME, t->id);
		agent_client_destroy(c);
		free(c);
		return;
	}
	t->events = c;
	events_take(t, TASK_EVENTS_BATCH); /* queued during the handshake */
}

static void on_connected(int fd, uint32_t events, void *opaque)
{
	(void)fd;
	(void)events;
	events_connect_finish(opaque);
}

void task_events_open(struct shim_task *t)
{
	struct task_service *ts = t->ts;
	struct events_connect *ec = calloc(1, sizeof(*ec));
	_cleanup_free_ char *dir = NULL;
	int r;

	if (!ec || state_dir_path(ts->root, t->id, &dir) < 0 ||
	    asprintf(&ec->path, "%s/%s", dir, MONITOR_VSOCK) < 0) {
		fprintf(stderr, "%s: task %s: no agent connection for events: out of memory\n",
			SHIM_NAME, t->id);
		free(ec);
		return;
	}
	agent_client_init(&ec->c, container_agent_timeout_ms());
	if (pipe2(ec->done, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	r = ttrpc_server_add_fd(ts->srv, ec->done[0], EPOLLIN, on_connected, t);
	if (r < 0)
		goto fail_pipe;
	r = -pthread_create(&ec->thread, NULL, events_connect_thread, ec);
	if (r < 0) {
		ttrpc_server_remove_fd(ts->srv, ec->done[0]);
		goto fail_pipe;
	}
	t->events_connect = ec;
	return;
fail_pipe:
	close(ec->done[0]);
	close(ec->done[1]);
fail:
	fprintf(stderr, "%s: task %s: no agent connection for events: %s\n", SHIM_NAME, t->id,
		strerror(-r));
	free(ec->path);
	free(ec);
}

void task_events_drain(struct shim_task *vm)
{
	if (vm->events && !vm->events->broken)
		events_take(vm, AGENT_CLIENT_MAX_EVENTS);
}

void task_events_close(struct shim_task *t)
{
	struct agent_client *c;

	if (t->events_connect)
		events_connect_finish(t); /* waits for the handshake (bounded by its timeout) */
	c = t->events;
	if (!c)
		return;
	/* what the agent sent before it went away is still in the socket: take it first */
	task_events_drain(t);
	ttrpc_server_remove_fd(t->ts->srv, agent_client_fd(c));
	agent_client_destroy(c);
	free(c);
	t->events = NULL;
}
