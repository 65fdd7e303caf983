/*
 * The containerd.task.v2.Task ttrpc service of the shim. Every method of the service is
 * registered and decodes its request (a malformed one is refused as ttrpc refuses it); the
 * container methods run one container per VM through libstratus (docs/shim.md "Tasks").
 */
#ifndef STRATUS_SHIM_TASK_SERVICE_H
#define STRATUS_SHIM_TASK_SERVICE_H

#include "publish.h"
#include "ttrpc.h"

#define TASK_SERVICE_NAME "containerd.task.v2.Task"

struct task_service;

/* Register every Task method on srv. publisher may be NULL (events are then not sent). */
int task_service_register(struct ttrpc_server *srv, const char *id,
			  struct shim_publisher *publisher, struct task_service **out);
void task_service_destroy(struct task_service *ts);
/*
 * The libstratus state root of the shim's containers (the server: /run/stratus/containerd/<ns>);
 * until it is set, the container methods answer FailedPrecondition.
 */
int task_service_set_root(struct task_service *ts, const char *root);
/* Kill what still runs, answer kept Waits, unmount: before the server is destroyed. */
void task_service_stop_tasks(struct task_service *ts);
/* True once Shutdown asked the shim to exit. */
bool task_service_shutdown_requested(const struct task_service *ts);

#endif
