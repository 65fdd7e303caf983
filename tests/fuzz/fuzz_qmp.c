/*
 * libFuzzer target for the QMP protocol layer (vmm/qmp.c): the input is what a client
 * sends, fed in chunks whose sizes come from the input itself (so messages land split and
 * concatenated), with a fake VM and a clock that moves by an input-chosen step. An fd
 * arrives (as with SCM_RIGHTS) before some chunks, so getfd/closefd run with and without
 * one. Checked: every output line is a JSON object that yajl parses and ends in "\r\n",
 * the session never holds more than QMP_LINE_MAX bytes, no fd leaks (ASan/LSan and the
 * fd count), no crash. The hotplug commands run hotplug.c against a fake device with four
 * slots, images "opened" as /dev/null whatever the path.
 * Input: [0] chunk-size seed, [1] clock step (ms), then the client's bytes.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "hotplug.h"
#include "qmp.h"

struct fuzz_vm {
	char line[QMP_LINE_MAX * 2];
	size_t len;
	bool running;
	uint64_t now, step;
	struct hotplug *hotplug;
	char slot_id[4][64], slot_node[4][64]; /* the fake device's slots: "" when empty */
};

static void check_line(const char *line, size_t len)
{
	char *copy = malloc(len + 1);
	yajl_val v;

	if (!copy)
		abort();
	memcpy(copy, line, len);
	copy[len] = '\0';
	v = yajl_tree_parse(copy, NULL, 0);
	if (!v || !YAJL_IS_OBJECT(v)) {
		fprintf(stderr, "fuzz_qmp: output line is not a JSON object: %s\n", copy);
		abort();
	}
	yajl_tree_free(v);
	free(copy);
}

/* Split the output into lines as a client would; each must end in "\r\n". */
static void fuzz_write(void *opaque, const char *data, size_t len)
{
	struct fuzz_vm *f = opaque;
	size_t i;

	for (i = 0; i < len; i++) {
		if (f->len >= sizeof(f->line))
			abort(); /* a reply longer than two input lines */
		f->line[f->len++] = data[i];
		if (f->len >= 2 && f->line[f->len - 2] == '\r' && f->line[f->len - 1] == '\n') {
			check_line(f->line, f->len - 2);
			f->len = 0;
		}
	}
}

static bool fuzz_running(void *opaque)
{
	return ((struct fuzz_vm *)opaque)->running;
}

static int fuzz_stop(void *opaque)
{
	((struct fuzz_vm *)opaque)->running = false;
	return 0;
}

static int fuzz_cont(void *opaque)
{
	((struct fuzz_vm *)opaque)->running = true;
	return 0;
}

static void fuzz_nothing(void *opaque)
{
	(void)opaque;
}

static unsigned int fuzz_nr_cpus(void *opaque)
{
	(void)opaque;
	return 3;
}

static int fuzz_tid(void *opaque, unsigned int index)
{
	(void)opaque;
	return 4242 + (int)index;
}

static uint64_t fuzz_now(void *opaque)
{
	struct fuzz_vm *f = opaque;

	f->now += f->step;
	return f->now;
}

static int fuzz_attach(void *opaque, const struct blk_hotplug_request *req, struct error *err)
{
	struct fuzz_vm *f = opaque;
	int i;

	for (i = 0; i < 4; i++)
		if (!strcmp(f->slot_id[i], req->id))
			return error_set(err, -EEXIST, "Duplicate device ID '%s'", req->id);
	if (req->slot >= 4)
		return error_set(err, -ENODEV, "addr %d: no such slot", req->slot);
	for (i = req->slot < 0 ? 0 : req->slot; i < 4 && f->slot_id[i][0]; i++)
		if (req->slot >= 0)
			return error_set(err, -EBUSY, "addr %d: the slot is in use", req->slot);
	if (i == 4)
		return error_set(err, -ENOSPC, "no free virtio-blk slot");
	if (req->fd < 0 || strlen(req->id) >= 64 || strlen(req->node) >= 64)
		abort(); /* hotplug.c checked these */
	snprintf(f->slot_id[i], sizeof(f->slot_id[i]), "%s", req->id);
	snprintf(f->slot_node[i], sizeof(f->slot_node[i]), "%s", req->node);
	return i;
}

static int fuzz_detach(void *opaque, const char *id, char *node, size_t size, struct error *err)
{
	struct fuzz_vm *f = opaque;
	int i;

	for (i = 0; i < 4; i++) {
		if (f->slot_id[i][0] && !strcmp(f->slot_id[i], id)) {
			snprintf(node, size, "%s", f->slot_node[i]);
			f->slot_id[i][0] = f->slot_node[i][0] = '\0';
			return 0;
		}
	}
	return error_set(err, -ENODEV, "Device '%.64s' not found", id);
}

static bool fuzz_node_in_use(void *opaque, const char *node)
{
	struct fuzz_vm *f = opaque;
	int i;

	for (i = 0; i < 4; i++)
		if (f->slot_node[i][0] && !strcmp(f->slot_node[i], node))
			return true;
	return false;
}

static int fuzz_open_image(void *opaque, const char *path, int flags)
{
	(void)opaque;
	(void)path;
	return open("/dev/null", (flags & O_ACCMODE) | O_CLOEXEC);
}

static int fuzz_hotplug(void *opaque, const char *command, struct yajl_val_s *args,
			struct error *err)
{
	return hotplug_execute(((struct fuzz_vm *)opaque)->hotplug, command, args, err);
}

static const struct qmp_ops fuzz_ops = {
	.write = fuzz_write,
	.running = fuzz_running,
	.stop = fuzz_stop,
	.cont = fuzz_cont,
	.quit = fuzz_nothing,
	.powerdown = fuzz_nothing,
	.reset = fuzz_nothing,
	.nr_cpus = fuzz_nr_cpus,
	.cpu_thread_id = fuzz_tid,
	.now_ns = fuzz_now,
	.hotplug = fuzz_hotplug,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_vm f;
	const struct hotplug_backend backend = { .opaque = &f,
						 .attach = fuzz_attach,
						 .detach = fuzz_detach,
						 .node_in_use = fuzz_node_in_use,
						 .open_image = fuzz_open_image };
	struct qmp_session *s;
	unsigned int seed, round = 0;

	if (size < 2)
		return 0;
	memset(&f, 0, sizeof(f));
	f.running = true;
	seed = data[0];
	f.step = (uint64_t)data[1] * 1000000ULL;
	data += 2;
	size -= 2;
	if (hotplug_create(&backend, &f.hotplug) < 0 ||
	    qmp_session_create(&fuzz_ops, &f, "fuzz", &s) < 0)
		abort();
	qmp_session_greet(s);
	while (size) {
		size_t chunk = 1 + (seed * 31 + round * 17) % 97, n;

		if (round++ % 5 == seed % 5) {
			int fd = dup(2);

			if (fd >= 0)
				qmp_session_push_fd(s, fd);
		}
		chunk = chunk < size ? chunk : size;
		n = qmp_session_feed(s, (const char *)data, chunk);
		if (qmp_session_room(s) > QMP_LINE_MAX)
			abort();
		data += n;
		size -= n;
		/* A stalled clock (step 0) would never refill: the caller waits, here we jump. */
		if (qmp_session_process(s) > 0 || n == 0) {
			f.now += 1000000000ULL;
			qmp_session_process(s);
		}
	}
	qmp_session_event(s, "SHUTDOWN", "{\"guest\":true,\"reason\":\"guest-shutdown\"}");
	if (f.len)
		abort(); /* a line without its "\r\n" */
	qmp_session_destroy(s);
	hotplug_destroy(f.hotplug); /* closes the nodes' /dev/null fds */
	return 0;
}
