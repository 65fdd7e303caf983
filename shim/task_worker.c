/*
 * The Task calls that wait for libstratus (a VM's boot, agent round trips) run off the ttrpc
 * loop, in a small pool of worker threads (docs/shim.md "Threading"). A handler checks the
 * call on the loop, hands a job to the pool and returns; the worker runs only the job's
 * libstratus part, on what the job holds, and queues it back; an eventfd on the loop wakes
 * it, and the job's done() finishes the call there. So only the loop thread ever touches the
 * table of tasks, publishes an event or writes to a socket, and a client that left while its
 * call was in a worker has its answer dropped by ttrpc (calls name their connection by id).
 *
 * Per task: a Create holds every later call of its task back until it is done, a Delete
 * waits until no call of its task is in a worker (and holds later ones back until the task
 * is gone), other calls run side by side (a Kill during a Start). What is held back is
 * re-dispatched in arrival order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "shim.h"
#include "task_internal.h"
#include "task_service.h"

struct task_deferred {
	struct task_deferred *next;
	unsigned int method;
	struct ttrpc_call *call;
	ProtobufCMessage *in;
};

static int lib_update(const char *root, const char *id, const char *json, struct error *err)
{
	struct agent_client c;
	int r = container_agent_connect(root, id, &c, err);

	if (r < 0)
		return r;
	r = agent_client_update(&c, id, json);
	if (r < 0)
		error_set(err, r, "update: %s", c.err);
	agent_client_destroy(&c);
	return r;
}

const struct task_lib task_lib_stratus = {
	.create = container_create,
	.start = container_start,
	.kill = container_kill,
	.delete = container_delete,
	.pause = container_pause,
	.resume = container_resume,
	.ps = container_ps,
	.stats = container_stats,
	.update = lib_update,
	.exec_start = container_exec_start,
	.exec_kill = container_exec_kill,
	.exec_resize = container_exec_resize,
};

void task_service_set_lib(struct task_service *ts, const struct task_lib *lib)
{
	ts->lib = lib ? lib : &task_lib_stratus;
}

ProtobufCMessage *task_request_take(struct task_service *ts)
{
	ProtobufCMessage *in = ts->request;

	ts->request = NULL;
	return in;
}

struct task_job *task_job_new(struct task_service *ts, struct ttrpc_call *call, struct shim_task *t,
			      size_t size, void (*run)(struct task_job *),
			      void (*done)(struct task_job *))
{
	struct task_job *job = calloc(1, size);

	if (!job) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	job->ts = ts;
	job->call = call;
	job->t = t;
	job->in = task_request_take(ts);
	job->method = ts->request_method;
	job->run = run;
	job->done = done;
	return job;
}

void task_job_done_empty(struct task_job *job)
{
	struct shim_task *t = job->t;

	if (job->r < 0)
		task_fail_err(job->call, &job->err, job->r);
	else
		task_reply_empty(job->call);
	task_job_free(job);
	task_release(t);
}

void task_job_free(struct task_job *job)
{
	if (job->in)
		protobuf_c_message_free_unpacked(job->in, NULL);
	free(job);
}

/* On the loop (or the draining owner): the worker's part is over. */
static void job_finish(struct task_job *job)
{
	struct task_service *ts = job->ts;
	uint64_t start = task_now_ns();
	unsigned int method = job->method;
	uint64_t lib = job->lib_ns;

	ts->pool.out--;
	if (job->t)
		job->t->busy--;
	job->done(job); /* frees the job */
	ts->lib_ns += lib;
	ts->busy_ns += lib + (task_now_ns() - start);
	if (method < TASK_METHODS_MAX)
		ts->own_ns[method] += task_now_ns() - start;
}

static void job_run(struct task_job *job)
{
	uint64_t start = task_now_ns();

	job->run(job);
	job->lib_ns = task_now_ns() - start;
}

static void *worker_main(void *opaque)
{
	struct task_pool *p = opaque;
	uint64_t one = 1;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct task_job *job;

		while (!p->queue && !p->stopping)
			pthread_cond_wait(&p->work, &p->lock);
		job = p->queue;
		if (!job)
			break;
		p->queue = job->next;
		if (!p->queue)
			p->queue_tail = &p->queue;
		pthread_mutex_unlock(&p->lock);
		job_run(job);
		pthread_mutex_lock(&p->lock);
		job->next = NULL;
		*p->done_tail = job;
		p->done_tail = &job->next;
		p->in_workers--;
		pthread_cond_broadcast(&p->idle);
		if (write(p->event_fd, &one, sizeof(one)) < 0) {
			/* saturated: a wake-up is pending anyway */
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Take what the workers finished (under the lock) and finish it here. */
static unsigned int pool_collect(struct task_service *ts)
{
	struct task_pool *p = &ts->pool;
	struct task_job *list;
	unsigned int n = 0;

	pthread_mutex_lock(&p->lock);
	list = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	pthread_mutex_unlock(&p->lock);
	while (list) {
		struct task_job *job = list;

		list = job->next;
		job_finish(job);
		n++;
	}
	return n;
}

static void on_jobs_done(int fd, uint32_t events, void *opaque)
{
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another pass took the wake-up */
	}
	pool_collect(opaque);
}

void task_job_submit(struct task_job *job)
{
	struct task_pool *p = &job->ts->pool;

	if (job->t)
		job->t->busy++;
	p->out++;
	pthread_mutex_lock(&p->lock);
	/* Threads start as calls need them, up to TASK_WORKERS; then calls queue. */
	if (p->event_fd >= 0 && p->n_threads < TASK_WORKERS && p->in_workers >= p->n_threads &&
	    pthread_create(&p->threads[p->n_threads], NULL, worker_main, p) == 0)
		p->n_threads++;
	if (!p->n_threads || p->stopping) {
		/* no worker could be started: the call runs here, as before there were workers */
		pthread_mutex_unlock(&p->lock);
		job_run(job);
		job_finish(job);
		return;
	}
	job->next = NULL;
	*p->queue_tail = job;
	p->queue_tail = &job->next;
	p->in_workers++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

int task_pool_init(struct task_service *ts)
{
	struct task_pool *p = &ts->pool;
	int r;

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->queue_tail = &p->queue;
	p->done_tail = &p->done;
	p->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->event_fd < 0)
		return -errno;
	r = ttrpc_server_add_fd(ts->srv, p->event_fd, EPOLLIN, on_jobs_done, ts);
	if (r < 0) {
		close(p->event_fd);
		p->event_fd = -1;
	}
	return r;
}

void task_pool_drain(struct task_service *ts)
{
	struct task_pool *p = &ts->pool;

	if (!p->queue_tail)
		return; /* never initialized */
	for (;;) {
		unsigned int left;

		pthread_mutex_lock(&p->lock);
		while (p->in_workers && !p->done)
			pthread_cond_wait(&p->idle, &p->lock);
		left = p->in_workers;
		pthread_mutex_unlock(&p->lock);
		/* (done() may hand out more: a Delete that waited for the task) */
		if (!pool_collect(ts) && !left)
			break;
	}
}

void task_pool_destroy(struct task_service *ts)
{
	struct task_pool *p = &ts->pool;

	if (!p->queue_tail)
		return; /* never initialized */
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned int i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	p->n_threads = 0;
	if (p->event_fd >= 0)
		close(p->event_fd); /* (its watch went with the server) */
	p->event_fd = -1;
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
}

/* Every Task request but Connect and Shutdown names its task in a string field "id". */
static const char *request_id(const ProtobufCMessage *in)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(in->descriptor, "id");

	if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return *(const char *const *)((const char *)in + f->offset);
}

bool task_defer_maybe(struct task_service *ts, const char *name, struct ttrpc_call *call,
		      const ProtobufCMessage *in)
{
	const char *id = request_id(in);
	struct shim_task *t = id ? task_table_find(ts, id) : NULL;
	struct task_deferred *d, **tail;

	if (!t)
		return false;
	if (!t->creating && !t->deleting && !(t->busy && !strcmp(name, "Delete")))
		return false;
	d = calloc(1, sizeof(*d));
	if (!d) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return true;
	}
	d->method = ts->request_method;
	d->call = call;
	d->in = task_request_take(ts);
	for (tail = &t->deferred; *tail; tail = &(*tail)->next)
		;
	*tail = d;
	t->n_deferred++;
	return true;
}

struct task_deferred *task_deferred_take(struct shim_task *t)
{
	struct task_deferred *list = t->deferred;

	t->deferred = NULL;
	t->n_deferred = 0;
	return list;
}

void task_deferred_dispatch(struct task_service *ts, struct task_deferred *list)
{
	while (list) {
		struct task_deferred *d = list;

		list = d->next;
		task_dispatch_owned(ts, d->method, d->call, d->in);
		free(d);
	}
}

void task_release(struct shim_task *t)
{
	if (t->creating || t->deleting || !t->deferred)
		return;
	task_deferred_dispatch(t->ts, task_deferred_take(t));
}

void task_deferred_fail(struct shim_task *t, const char *why)
{
	struct task_deferred *list = task_deferred_take(t);

	while (list) {
		struct task_deferred *d = list;

		list = d->next;
		ttrpc_call_fail(d->call, TTRPC_UNAVAILABLE, "container %s: %s", t->id, why);
		protobuf_c_message_free_unpacked(d->in, NULL);
		free(d);
	}
}
