/*
 * virtio-blk throughput against plain preadv on the same file, in one process (run by
 * tests/bench/virtio_blk.sh). The virtio side is the whole device path: a fake driver
 * (tests/unit/virtio_fake_driver.h) writes descriptor chains and the available ring, one
 * notification per batch, the transport and blk.c pop, check and serve the requests
 * (virtio 1.2 §5.2.6) with preadv into "guest RAM", and the driver collects the used ring.
 * The direct side is preadv with the same iovecs at the same offsets. Both read a file the
 * page cache holds, so the device's own cost is all that differs.
 *
 * Two workloads: 1 MiB sequential reads (16 segments of 64 KiB, 8 requests per batch) and
 * 4 KiB random reads (32 requests per batch). Each runs for a fixed time, alternating
 * direct and virtio rounds; medians of the rounds are reported (the build hosts are shared
 * VMs), with CPU time (user + system, getrusage) per request.
 * usage: bench-blk IMAGE SECONDS_PER_ROUND ROUNDS
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>

#include "log.h"
#include "vm.h"
#include "virtio_fake_driver.h"

#define RAM_SIZE MIB(64)
#define QSIZE	 256

struct workload {
	const char *name;
	uint32_t req_bytes, seg_bytes, batch;
	bool random;
};

struct result {
	double seconds, cpu;
	uint64_t requests, bytes;
};

struct bench {
	struct fake_driver d;
	int fd;		   /* the image, for the direct side */
	uint64_t sectors;  /* image size */
	uint64_t data_gpa; /* batch * req_bytes of buffers */
	uint64_t hdr_gpa, status_gpa;
	uint64_t seq_next;
	unsigned int rng;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* The next request's first sector: sequential, or random and aligned to its size. */
static uint64_t next_sector(struct bench *b, const struct workload *w)
{
	uint64_t span = w->req_bytes / 512, slots = b->sectors / span;
	uint64_t sector;

	if (w->random) {
		b->rng = b->rng * 1103515245 + 12345;
		return ((b->rng >> 4) % slots) * span;
	}
	sector = b->seq_next;
	b->seq_next = (b->seq_next + span) % (slots * span);
	return sector;
}

static void data_iov(struct bench *b, const struct workload *w, unsigned int slot,
		     struct iovec *iov)
{
	unsigned int i, nr = w->req_bytes / w->seg_bytes;

	for (i = 0; i < nr; i++) {
		iov[i].iov_base = fake_ptr(&b->d, b->data_gpa + (uint64_t)slot * w->req_bytes +
							  i * w->seg_bytes);
		iov[i].iov_len = w->seg_bytes;
	}
}

static void direct_batch(struct bench *b, const struct workload *w)
{
	struct iovec iov[QSIZE];
	unsigned int slot, nr = w->req_bytes / w->seg_bytes;

	for (slot = 0; slot < w->batch; slot++) {
		data_iov(b, w, slot, iov);
		if (preadv(b->fd, iov, nr, next_sector(b, w) * 512) != (ssize_t)w->req_bytes)
			abort();
	}
}

static void virtio_batch(struct bench *b, const struct workload *w)
{
	unsigned int slot, i, nr = w->req_bytes / w->seg_bytes, per = nr + 2;
	struct fake_buf bufs[QSIZE];
	uint32_t id, len;

	for (slot = 0; slot < w->batch; slot++) {
		struct virtio_blk_outhdr *h = fake_ptr(&b->d, b->hdr_gpa + slot * 16ULL);

		h->type = VIRTIO_BLK_T_IN;
		h->sector = next_sector(b, w);
		bufs[0] = (struct fake_buf){ b->hdr_gpa + slot * 16ULL, 16, false };
		for (i = 0; i < nr; i++)
			bufs[1 + i] =
				(struct fake_buf){ b->data_gpa + (uint64_t)slot * w->req_bytes +
							   i * w->seg_bytes,
						   w->seg_bytes, true };
		bufs[1 + nr] = (struct fake_buf){ b->status_gpa + slot, 1, true };
		fake_add_chain(&b->d, 0, slot * per, bufs, per);
	}
	fake_kick(&b->d, 0);
	for (slot = 0; slot < w->batch; slot++)
		if (!fake_pop_used(&b->d, 0, &id, &len) || len != w->req_bytes + 1 ||
		    *(uint8_t *)fake_ptr(&b->d, b->status_gpa + id / per) != VIRTIO_BLK_S_OK)
			abort();
}

static void run(struct bench *b, const struct workload *w, bool virtio, double seconds,
		struct result *r)
{
	double t0 = now(), c0 = cpu_seconds(), t;

	do {
		if (virtio)
			virtio_batch(b, w);
		else
			direct_batch(b, w);
		r->requests += w->batch;
		r->bytes += (uint64_t)w->batch * w->req_bytes;
		t = now();
	} while (t - t0 < seconds);
	r->seconds += t - t0;
	r->cpu += cpu_seconds() - c0;
}

static void bench_init(struct bench *b, const char *image)
{
	struct vm_device_config spec = { .type = VM_DEVICE_VIRTIO_BLK,
					 .readonly = true,
					 .id = "bench" };
	struct virtio_device *dev;
	struct error err = { 0 };
	uint64_t features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX) |
			    (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	struct stat st;

	memset(b, 0, sizeof(*b));
	snprintf(spec.path, sizeof(spec.path), "%s", image);
	b->fd = open(image, O_RDONLY | O_CLOEXEC);
	if (b->fd < 0 || fstat(b->fd, &st) < 0 || virtio_blk_new(&spec, &dev, &err) < 0 ||
	    fake_driver_init(&b->d, dev, RAM_SIZE) < 0) {
		fprintf(stderr, "bench-blk: %s: %s\n", image, err.msg[0] ? err.msg : "cannot open");
		exit(1);
	}
	b->sectors = st.st_size / 512;
	b->rng = 1;
	fake_negotiate(&b->d, features);
	fake_setup_queue(&b->d, 0, QSIZE);
	fake_driver_ok(&b->d);
	b->hdr_gpa = fake_alloc(&b->d, 16 * QSIZE, 16);
	b->status_gpa = fake_alloc(&b->d, QSIZE, 1);
	b->data_gpa = fake_alloc(&b->d, MIB(32), 4096);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_ROUNDS 64

/* Alternating rounds of one workload; prints the medians of the rounds. */
static void bench_workload(struct bench *b, const struct workload *w, double seconds,
			   unsigned int rounds)
{
	double iops[2][MAX_ROUNDS], cpu[2][MAX_ROUNDS], ratio[MAX_ROUNDS];
	unsigned int round, v;

	for (round = 0; round < rounds; round++) {
		for (v = 0; v < 2; v++) {
			struct result r = { 0 };

			run(b, w, v, seconds, &r);
			iops[v][round] = r.requests / r.seconds;
			cpu[v][round] = r.cpu / r.requests * 1e6;
		}
		ratio[round] = iops[1][round] / iops[0][round];
	}
	for (v = 0; v < 2; v++) {
		double m = median(iops[v], rounds);

		printf("%-22s %-10s %12.1f %12.0f %14.2f\n", w->name, v ? "virtio-blk" : "preadv",
		       m * w->req_bytes / MIB(1), m, median(cpu[v], rounds));
	}
	printf("%-22s %-10s %11.1f%% (median of the rounds' ratios)\n", w->name, "ratio",
	       100 * median(ratio, rounds));
}

int main(int argc, char **argv)
{
	static const struct workload loads[] = {
		{ "1 MiB sequential read", MIB(1), KIB(64), 8, false },
		{ "4 KiB random read", KIB(4), KIB(4), 32, true },
	};
	struct bench b;
	unsigned int i, rounds;
	double seconds;

	if (argc != 4 || atoi(argv[3]) < 1 || atoi(argv[3]) > MAX_ROUNDS) {
		fprintf(stderr, "usage: %s IMAGE SECONDS_PER_ROUND ROUNDS (1-%d)\n", argv[0],
			MAX_ROUNDS);
		return 2;
	}
	seconds = atof(argv[2]);
	rounds = atoi(argv[3]);
	log_init(2, LOG_WARN);
	bench_init(&b, argv[1]);
	printf("%-22s %-10s %12s %12s %14s\n", "workload", "path", "MiB/s", "IOPS", "CPU us/req");
	for (i = 0; i < ARRAY_SIZE(loads); i++)
		bench_workload(&b, &loads[i], seconds, rounds);
	fake_driver_destroy(&b.d);
	close(b.fd);
	return 0;
}
