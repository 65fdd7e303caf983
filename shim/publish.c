/*
 * The event publisher (publish.h): a bounded FIFO drained by one thread. Order matters to
 * containerd (a TaskExit must not overtake the TaskStart before it), so a failing event is
 * retried at the head of the queue, waiting n * retry_base_ms before attempt n + 1, and
 * dropped with a log line after max_attempts; events queued meanwhile wait behind it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "publish.h"
#include "ttrpc.h"

#define EVENTS_SERVICE "containerd.services.events.ttrpc.v1.Events"

struct event_item {
	char *topic;
	char *type_url;
	uint8_t *value;
	size_t value_len;
	struct timespec when;
	struct event_item *next;
};

struct shim_publisher {
	char *namespace, *address, *binary, *ttrpc_address;
	unsigned int queue_max, max_attempts, retry_base_ms, timeout_ms;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct event_item *head, *tail;
	unsigned int queued;
	bool busy; /* the thread holds an event outside the queue */
	bool stop, closing;
	unsigned long sent, dropped;
	pthread_t thread;

	struct ttrpc_client *client; /* thread-only */
};

static void item_free(struct event_item *it)
{
	if (!it)
		return;
	free(it->topic);
	free(it->type_url);
	free(it->value);
	free(it);
}

int shim_event_pack_any(const ProtobufCMessage *event, uint8_t **out, size_t *out_len)
{
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	_cleanup_free_ uint8_t *value = NULL;
	size_t len = protobuf_c_message_get_packed_size(event), any_len;
	uint8_t *buf;

	value = malloc(len ? len : 1);
	if (!value)
		return -ENOMEM;
	protobuf_c_message_pack(event, value);
	any.type_url = (char *)event->descriptor->name;
	any.value.data = value;
	any.value.len = len;
	any_len = google__protobuf__any__get_packed_size(&any);
	buf = malloc(any_len ? any_len : 1);
	if (!buf)
		return -ENOMEM;
	google__protobuf__any__pack(&any, buf);
	*out = buf;
	*out_len = any_len;
	return 0;
}

/* exec transport: BIN --address ADDR publish --topic T --namespace NS < Any */
static int send_exec(struct shim_publisher *p, const struct event_item *it)
{
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	char *argv[] = { p->binary,	"--address",  p->address ? p->address : "",
			 "publish",	"--topic",    it->topic,
			 "--namespace", p->namespace, NULL };
	posix_spawn_file_actions_t fa;
	_cleanup_free_ uint8_t *data = NULL;
	int pipefd[2], status, r;
	size_t len, off = 0;
	struct timespec start, now;
	pid_t pid;

	any.type_url = it->type_url;
	any.value.data = it->value;
	any.value.len = it->value_len;
	len = google__protobuf__any__get_packed_size(&any);
	data = malloc(len ? len : 1);
	if (!data)
		return -ENOMEM;
	google__protobuf__any__pack(&any, data);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[0], STDIN_FILENO);
	r = -posix_spawnp(&pid, p->binary, &fa, NULL, argv, __environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[0]);
	if (r < 0) {
		close(pipefd[1]);
		return r;
	}
	/* The event is small; a child that does not read it gets EPIPE'd, never blocks us. */
	fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
	clock_gettime(CLOCK_MONOTONIC, &start);
	r = 0;
	for (;;) {
		pid_t w;
		long elapsed;

		if (off < len && pipefd[1] >= 0) {
			ssize_t n = write(pipefd[1], data + off, len - off);

			if (n > 0)
				off += n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				off = len; /* the child closed stdin: its exit status decides */
		}
		if (off >= len && pipefd[1] >= 0) {
			close(pipefd[1]);
			pipefd[1] = -1;
		}
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed = (now.tv_sec - start.tv_sec) * 1000 +
			  (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed > (long)p->timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			r = -ETIMEDOUT;
			break;
		}
		usleep(2000);
	}
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (r < 0)
		return r;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EIO;
	return 0;
}

/* ttrpc transport: Events/Forward on containerd's ttrpc socket, reconnecting as needed. */
static int send_ttrpc(struct shim_publisher *p, const struct event_item *it, char *why,
		      size_t why_len)
{
	Containerd__Services__Events__Ttrpc__V1__ForwardRequest req =
		CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
	Containerd__Services__Events__Ttrpc__V1__Envelope env =
		CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	_cleanup_free_ uint8_t *buf = NULL;
	uint8_t *resp = NULL;
	size_t len, resp_len;
	struct ttrpc_status st;
	struct error err = { 0 };
	int r;

	if (!p->client) {
		r = ttrpc_client_connect(p->ttrpc_address, &p->client, &err);
		if (r < 0) {
			snprintf(why, why_len, "%s", err.msg);
			return r;
		}
	}
	ts.seconds = it->when.tv_sec;
	ts.nanos = (int32_t)it->when.tv_nsec;
	any.type_url = it->type_url;
	any.value.data = it->value;
	any.value.len = it->value_len;
	env.timestamp = &ts;
	env.namespace_ = p->namespace;
	env.topic = it->topic;
	env.event = &any;
	req.envelope = &env;
	len = protobuf_c_message_get_packed_size(&req.base);
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&req.base, buf);
	r = ttrpc_client_call(p->client, EVENTS_SERVICE, "Forward", buf, len, (int)p->timeout_ms,
			      &st, &resp, &resp_len);
	free(resp);
	if (r < 0) {
		snprintf(why, why_len, "%s: %s", p->ttrpc_address, strerror(-r));
		ttrpc_client_destroy(ptr_steal(&p->client));
		return r;
	}
	if (st.code != TTRPC_OK) {
		snprintf(why, why_len, "Forward: %s: %s", ttrpc_code_name(st.code), st.message);
		return -EIO;
	}
	return 0;
}

static int send_one(struct shim_publisher *p, const struct event_item *it, char *why,
		    size_t why_len)
{
	int r;

	if (p->ttrpc_address)
		return send_ttrpc(p, it, why, why_len);
	r = send_exec(p, it);
	if (r < 0)
		snprintf(why, why_len, "%s publish: %s", p->binary,
			 r == -EIO ? "exited with an error" : strerror(-r));
	return r;
}

/* Sleep ms unless stop is requested; returns false if stopping. Called with the lock held. */
static bool wait_retry(struct shim_publisher *p, unsigned int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (!p->stop)
		if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT)
			break;
	return !p->stop;
}

static void *publisher_thread(void *arg)
{
	struct shim_publisher *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct event_item *it;
		unsigned int attempt;
		bool ok = false;
		char why[1024] = "";

		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		it = p->head;
		p->head = it->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		p->busy = true;
		for (attempt = 1; attempt <= p->max_attempts; attempt++) {
			pthread_mutex_unlock(&p->lock);
			ok = send_one(p, it, why, sizeof(why)) == 0;
			pthread_mutex_lock(&p->lock);
			if (ok || attempt == p->max_attempts ||
			    !wait_retry(p, attempt * p->retry_base_ms))
				break;
		}
		if (ok) {
			p->sent++;
		} else {
			p->dropped++;
			fprintf(stderr, "%s: dropping event %s after %u attempt(s): %s\n",
				"containerd-shim-stratus-v2", it->topic,
				MIN(attempt, p->max_attempts), why);
		}
		p->busy = false;
		item_free(it);
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

int shim_publisher_new(const struct shim_publisher_config *config, struct shim_publisher **out)
{
	struct shim_publisher *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	int r;

	if (!p)
		return -ENOMEM;
	p->namespace = strdup(config->namespace ? config->namespace : "");
	p->address = dup_or_null(config->address);
	p->binary = strdup(config->publish_binary ? config->publish_binary : "containerd");
	p->ttrpc_address = dup_or_null(config->ttrpc_address);
	p->queue_max = config->queue_max ? config->queue_max : 256;
	p->max_attempts = config->max_attempts ? config->max_attempts : 5;
	p->retry_base_ms = config->retry_base_ms ? config->retry_base_ms : 1000;
	p->timeout_ms = config->timeout_ms ? config->timeout_ms : 5000;
	if (!p->namespace || !p->binary) {
		r = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	r = -pthread_create(&p->thread, NULL, publisher_thread, p);
	if (r < 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		goto fail;
	}
	*out = p;
	return 0;
fail:
	free(p->namespace);
	free(p->address);
	free(p->binary);
	free(p->ttrpc_address);
	free(p);
	return r;
}

int shim_publisher_publish(struct shim_publisher *p, const char *topic,
			   const ProtobufCMessage *event)
{
	struct event_item *it = calloc(1, sizeof(*it));
	size_t len = protobuf_c_message_get_packed_size(event);
	int r = 0;

	if (!it)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &it->when);
	it->topic = strdup(topic);
	it->type_url = strdup(event->descriptor->name);
	it->value = malloc(len ? len : 1);
	if (!it->topic || !it->type_url || !it->value) {
		item_free(it);
		return -ENOMEM;
	}
	protobuf_c_message_pack(event, it->value);
	it->value_len = len;

	pthread_mutex_lock(&p->lock);
	if (p->closing) {
		r = -ESHUTDOWN;
	} else if (p->queued >= p->queue_max) {
		p->dropped++;
		r = -ENOSPC;
	} else {
		if (p->tail)
			p->tail->next = it;
		else
			p->head = it;
		p->tail = it;
		p->queued++;
		it = NULL;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	if (r == -ENOSPC)
		fprintf(stderr, "%s: event queue full (%u), dropping %s\n",
			"containerd-shim-stratus-v2", p->queue_max, topic);
	item_free(it);
	return r;
}

void shim_publisher_counts(struct shim_publisher *p, unsigned long *sent, unsigned long *dropped)
{
	pthread_mutex_lock(&p->lock);
	*sent = p->sent;
	*dropped = p->dropped;
	pthread_mutex_unlock(&p->lock);
}

void shim_publisher_destroy(struct shim_publisher *p, int drain_ms)
{
	struct timespec until;

	if (!p)
		return;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += drain_ms / 1000;
	until.tv_nsec += (long)(drain_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->lock);
	p->closing = true;
	while ((p->head || p->busy) && drain_ms > 0)
		if (pthread_cond_timedwait(&p->cond, &p->lock, &until) == ETIMEDOUT)
			break;
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	while (p->head) {
		struct event_item *it = p->head;

		p->head = it->next;
		item_free(it);
	}
	ttrpc_client_destroy(p->client);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->namespace);
	free(p->address);
	free(p->binary);
	free(p->ttrpc_address);
	free(p);
}
