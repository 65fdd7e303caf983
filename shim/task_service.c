/*
 * containerd.task.v2.Task over ttrpc. The method table comes from the protobuf-c service
 * descriptor generated from shim/proto/containerd/task/v2/shim.proto, so the registered names
 * are exactly the service's and each request is decoded with its own message descriptor
 * before anything looks at it.
 *
 * Connect answers the shim's pid and the asked task's pid (its monitor's, or a pod member's
 * relay's; 0 when the shim has no such task). Shutdown behaves as containerd's runc shim:
 * with no container left it answers and stops the server, so the process exits; while a pod
 * still has containers here it only answers. The container methods are task_container.c's
 * and task_inspect.c's (a table of tasks: task_table.c), the exec ones task_exec.c's;
 * Checkpoint answers Unimplemented with a message saying why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "shim.h"
#include "task_internal.h"
#include "task_service.h"

void task_reply_message(struct ttrpc_call *call, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);

	if (!buf) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	protobuf_c_message_pack(msg, buf);
	ttrpc_call_reply(call, buf, len);
}

uint64_t task_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void task_connect(struct task_service *ts, struct ttrpc_call *call,
			 const ProtobufCMessage *in)
{
	Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
	const struct shim_task *t =
		task_table_find(ts, ((const Containerd__Task__V2__ConnectRequest *)in)->id);

	resp.shim_pid = (uint32_t)getpid();
	resp.task_pid = t ? (uint32_t)t->pid : 0;
	resp.version = SHIM_VERSION;
	task_reply_message(call, &resp.base);
}

static void task_shutdown(struct task_service *ts, struct ttrpc_call *call,
			  const ProtobufCMessage *in)
{
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;

	(void)in;
	task_reply_message(call, &empty.base);
	/* Still serving containers (a pod's others): stay; containerd asks again after each
	 * Delete, and the last one's Shutdown ends the shim. */
	if (ts->n_tasks)
		return;
	ts->shutdown = true;
	ttrpc_server_stop(ts->srv);
}

void task_dispatch_owned(struct task_service *ts, unsigned int method, struct ttrpc_call *call,
			 ProtobufCMessage *in)
{
	const char *name = ts->methods[method].desc->name;
	uint64_t start = task_now_ns(), lib_before = ts->lib_ns;
	ProtobufCMessage *saved = ts->request;
	unsigned int saved_method = ts->request_method;

	/* (nested when a call finished inline hands back what its task held back) */
	ts->request = in;
	ts->request_method = method;
	if (!strcmp(name, "Connect"))
		task_connect(ts, call, in);
	else if (!strcmp(name, "Shutdown"))
		task_shutdown(ts, call, in);
	else if (!strcmp(name, "Checkpoint"))
		ttrpc_call_fail(call, TTRPC_UNIMPLEMENTED,
				"%s/%s: not implemented yet: checkpointing a VM's container needs "
				"container snapshots",
				TASK_SERVICE_NAME, name);
	else if (!task_container_dispatch(ts, name, call, in))
		ttrpc_call_fail(call, TTRPC_UNIMPLEMENTED, "%s/%s: not implemented",
				TASK_SERVICE_NAME, name);
	/* a handler that handed the call to a worker took the request */
	if (ts->request)
		protobuf_c_message_free_unpacked(ts->request, NULL);
	ts->request = saved;
	ts->request_method = saved_method;
	ts->busy_ns += task_now_ns() - start - (ts->lib_ns - lib_before);
	if (method < TASK_METHODS_MAX)
		ts->own_ns[method] += task_now_ns() - start - (ts->lib_ns - lib_before);
}

static void task_dispatch(struct ttrpc_call *call, const uint8_t *payload, size_t len, void *opaque)
{
	struct task_method *tm = opaque;
	struct task_service *ts = tm->ts;
	ProtobufCMessage *in;

	in = protobuf_c_message_unpack(tm->desc->input, NULL, len, payload);
	if (!in) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "ttrpc: error unmarshalling payload: %s",
				tm->desc->input->name);
		return;
	}
	task_dispatch_owned(ts, (unsigned int)(tm - ts->methods), call, in);
}

int task_service_register(struct ttrpc_server *srv, const char *id,
			  struct shim_publisher *publisher, struct task_service **out)
{
	const ProtobufCServiceDescriptor *sd = &containerd__task__v2__task__descriptor;
	struct task_service *ts;
	int r;

	ts = calloc(1, sizeof(*ts) + sd->n_methods * sizeof(ts->methods[0]));
	if (!ts)
		return -ENOMEM;
	ts->srv = srv;
	ts->publisher = publisher;
	ts->lib = &task_lib_stratus;
	ts->id = strdup(id ? id : "");
	if (!ts->id) {
		free(ts);
		return -ENOMEM;
	}
	r = task_pool_init(ts);
	if (r < 0) {
		task_service_destroy(ts);
		return r;
	}
	for (unsigned int i = 0; i < sd->n_methods; i++) {
		ts->methods[i].ts = ts;
		ts->methods[i].desc = &sd->methods[i];
		r = ttrpc_server_register(srv, sd->name, sd->methods[i].name, task_dispatch,
					  &ts->methods[i]);
		if (r < 0) {
			task_service_destroy(ts);
			return r;
		}
	}
	*out = ts;
	return 0;
}

/* The shim's own time per method, for the benchmark's breakdown (one line). */
static void task_service_log_methods(const struct task_service *ts)
{
	const ProtobufCServiceDescriptor *sd = &containerd__task__v2__task__descriptor;
	char line[1024];
	size_t n = 0;

	for (unsigned int i = 0; i < sd->n_methods && i < TASK_METHODS_MAX; i++) {
		if (!ts->own_ns[i] || n >= sizeof(line))
			continue;
		n += (size_t)snprintf(line + n, sizeof(line) - n, " %s %.3f", sd->methods[i].name,
				      ts->own_ns[i] / 1e6);
	}
	line[n < sizeof(line) ? n : sizeof(line) - 1] = '\0';
	fprintf(stderr, "%s: timing: shim %s: own ms per method:%s\n", SHIM_NAME, ts->id,
		n ? line : " none");
}

void task_service_destroy(struct task_service *ts)
{
	if (!ts)
		return;
	task_pool_drain(ts); /* (nothing is out unless the caller skipped stop_tasks) */
	task_container_cleanup(ts);
	task_pool_destroy(ts);
	if (getenv("STRATUS_SHIM_TIMING"))
		fprintf(stderr,
			"%s: timing: shim %s: Task handlers %.3f ms, of which libstratus "
			"create/start/delete %.3f ms: the shim's own %.3f ms, for %u containers\n",
			SHIM_NAME, ts->id, ts->busy_ns / 1e6, ts->lib_ns / 1e6,
			(ts->busy_ns - ts->lib_ns) / 1e6, ts->n_created);
	if (getenv("STRATUS_SHIM_TIMING"))
		task_service_log_methods(ts);
	free(ts->root);
	free(ts->id);
	free(ts);
}

bool task_service_shutdown_requested(const struct task_service *ts)
{
	return ts->shutdown;
}

int task_service_set_root(struct task_service *ts, const char *root)
{
	char *copy = strdup(root);

	if (!copy)
		return -ENOMEM;
	free(ts->root);
	ts->root = copy;
	return 0;
}

void task_service_stop_tasks(struct task_service *ts)
{
	/* the calls still in workers finish first (their answers queued for their clients) */
	task_pool_drain(ts);
	task_container_cleanup(ts);
}
