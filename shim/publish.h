/*
 * The shim's event publisher: task events (containerd.events.TaskExit, ...) go to containerd
 * from a bounded queue drained by one thread, in order, each retried a few times before it is
 * dropped with a log line. Two transports, the ones containerd 1.6's shims use:
 *  - ttrpc: when containerd set TTRPC_ADDRESS, call
 *    containerd.services.events.ttrpc.v1.Events/Forward with an Envelope {timestamp,
 *    namespace, topic, Any event} (what containerd 1.6's shim library does);
 *  - exec: otherwise run `PUBLISH_BINARY --address ADDRESS publish --topic TOPIC --namespace NS`
 *    with the event's google.protobuf.Any, serialized, on stdin (the runtime v2 README's
 *    contract; `containerd publish` forwards it the same way).
 */
#ifndef STRATUS_SHIM_PUBLISH_H
#define STRATUS_SHIM_PUBLISH_H

#include <protobuf-c/protobuf-c.h>

struct shim_publisher;

struct shim_publisher_config {
	const char *namespace;
	const char *address;	    /* containerd's main socket, for the publish binary */
	const char *publish_binary; /* exec transport */
	const char *ttrpc_address;  /* NULL or "": use the exec transport */
	unsigned int queue_max;	    /* 0: 256 events */
	unsigned int max_attempts;  /* 0: 5 */
	unsigned int retry_base_ms; /* 0: 1000; attempt n waits n * base */
	unsigned int timeout_ms;    /* 0: 5000, per attempt */
};

int shim_publisher_new(const struct shim_publisher_config *config, struct shim_publisher **out);

/*
 * Queue event for topic ("/tasks/exit"); its Any type_url is the message's full name. Returns
 * -ENOSPC (and drops the event) when the queue is full, -ESHUTDOWN after destroy began.
 */
int shim_publisher_publish(struct shim_publisher *p, const char *topic,
			   const ProtobufCMessage *event);

/* Events delivered and dropped so far (for tests and the log). */
void shim_publisher_counts(struct shim_publisher *p, unsigned long *sent, unsigned long *dropped);

/* Give the queue up to drain_ms to empty, then stop the thread and free everything. */
void shim_publisher_destroy(struct shim_publisher *p, int drain_ms);

/* The serialized google.protobuf.Any of event (malloc'd), as both transports send it. */
int shim_event_pack_any(const ProtobufCMessage *event, uint8_t **out, size_t *out_len);

#endif
