/*
 * The containerd.task.v2.Task ttrpc service of the shim. Every method of the service is
 * registered and decodes its request (a malformed one is refused as ttrpc refuses it);
 * Connect and Shutdown are real, the container methods answer Unimplemented until
 * libstratus's container API exists (docs/shim.md, "What the Task handlers need").
 */
#ifndef STRATUS_SHIM_TASK_SERVICE_H
#define STRATUS_SHIM_TASK_SERVICE_H

#include "publish.h"
#include "ttrpc.h"

#define TASK_SERVICE_NAME "containerd.task.v2.Task"

struct task_service;

/* Register every Task method on srv. publisher may be NULL (no events are sent yet). */
int task_service_register(struct ttrpc_server *srv, const char *id,
			  struct shim_publisher *publisher, struct task_service **out);
void task_service_destroy(struct task_service *ts);
/* True once Shutdown asked the shim to exit. */
bool task_service_shutdown_requested(const struct task_service *ts);

#endif
