/*
 * containerd.task.v2.Task over ttrpc. The method table comes from the protobuf-c service
 * descriptor generated from shim/proto/containerd/task/v2/shim.proto, so the registered names
 * are exactly the service's and each request is decoded with its own message descriptor
 * before anything looks at it.
 *
 * Connect answers the shim's pid and version (no task process exists yet: task_pid 0).
 * Shutdown behaves as containerd's runc shim: with no container left it answers and stops the
 * server, so the process exits; now=true changes nothing here since nothing runs. Every
 * other method answers Unimplemented with a message saying why, never a fake success.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "shim.h"
#include "task_service.h"

struct task_method {
	struct task_service *ts;
	const ProtobufCMethodDescriptor *desc;
};

struct task_service {
	struct ttrpc_server *srv;
	char *id;
	struct shim_publisher *publisher;
	unsigned int containers; /* tasks this shim serves; none until Create exists */
	bool shutdown;
	struct task_method methods[];
};

static void reply_message(struct ttrpc_call *call, const ProtobufCMessage *msg)
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

static void task_connect(struct task_service *ts, struct ttrpc_call *call,
			 const ProtobufCMessage *in)
{
	Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;

	(void)ts;
	(void)in;
	resp.shim_pid = (uint32_t)getpid();
	resp.task_pid = 0;
	resp.version = SHIM_VERSION;
	reply_message(call, &resp.base);
}

static void task_shutdown(struct task_service *ts, struct ttrpc_call *call,
			  const ProtobufCMessage *in)
{
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;

	(void)in;
	reply_message(call, &empty.base);
	/* Still serving containers: stay (containerd asks again after deleting them). */
	if (ts->containers)
		return;
	ts->shutdown = true;
	ttrpc_server_stop(ts->srv);
}

static void task_dispatch(struct ttrpc_call *call, const uint8_t *payload, size_t len, void *opaque)
{
	struct task_method *tm = opaque;
	struct task_service *ts = tm->ts;
	const char *name = tm->desc->name;
	ProtobufCMessage *in;

	in = protobuf_c_message_unpack(tm->desc->input, NULL, len, payload);
	if (!in) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "ttrpc: error unmarshalling payload: %s",
				tm->desc->input->name);
		return;
	}
	if (!strcmp(name, "Connect"))
		task_connect(ts, call, in);
	else if (!strcmp(name, "Shutdown"))
		task_shutdown(ts, call, in);
	else
		ttrpc_call_fail(
			call, TTRPC_UNIMPLEMENTED,
			"%s/%s: not implemented yet: the stratus shim cannot run containers "
			"until libstratus has its container API",
			TASK_SERVICE_NAME, name);
	protobuf_c_message_free_unpacked(in, NULL);
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
	ts->id = strdup(id ? id : "");
	if (!ts->id) {
		free(ts);
		return -ENOMEM;
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

void task_service_destroy(struct task_service *ts)
{
	if (!ts)
		return;
	free(ts->id);
	free(ts);
}

bool task_service_shutdown_requested(const struct task_service *ts)
{
	return ts->shutdown;
}
