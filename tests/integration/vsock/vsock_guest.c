/*
 * The guest side of the virtio-vsock integration test (tests/integration/test_virtio_vsock.sh),
 * built static and put in the test initramfs; also built for the host, where it hashes and
 * generates the same data. AF_VSOCK stream sockets (virtio 1.2 §5.10) from the guest kernel.
 *   serve PORT        echo server: one child per connection, which echoes until EOF and
 *                     prints "STRATUS-TEST echo bytes=N hash=H"; a connection whose first
 *                     bytes are "ABORT" is closed at once (the guest closing abruptly)
 *   send PORT BYTES   connect to the host (CID 2) on PORT, send BYTES of pattern, print
 *                     "STRATUS-TEST send port=P bytes=N hash=H status=ok|fail"
 *   gen BYTES         the pattern on stdout         hash    "bytes=N hash=H" of stdin
 * and, for tests/bench/guest_io.sh, timed in the guest (CLOCK_MONOTONIC), zeros not hashed:
 *   bench-send PORT MIB   send MIB MiB to the host on PORT
 *   bench-recv PORT       accept one host connection on PORT, read until EOF
 *   disk-seq read|write DEV MIB   1 MiB O_DIRECT requests from offset 0
 *   disk-rand DEV SECONDS         4 KiB O_DIRECT reads at random 4 KiB-aligned offsets
 * each printing "STRATUS-TEST bench NAME bytes=N ns=T".
 * The hash is 64-bit FNV-1a: enough to catch a byte lost, duplicated or reordered.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define FNV_INIT 0xcbf29ce484222325ULL

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static void pattern(unsigned char *p, size_t n, uint64_t *seed)
{
	for (size_t i = 0; i < n; i++) {
		*seed ^= *seed << 13;
		*seed ^= *seed >> 7;
		*seed ^= *seed << 17;
		p[i] = (unsigned char)*seed;
	}
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

static void echo(int fd)
{
	static unsigned char buf[65536];
	uint64_t h = FNV_INIT, total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (total == 0 && n >= 5 && memcmp(buf, "ABORT", 5) == 0) {
			struct linger l = { 1, 0 };

			setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			close(fd);
			printf("STRATUS-TEST echo aborted\n");
			return;
		}
		h = fnv(h, buf, n);
		total += n;
		if (write_all(fd, buf, n) < 0)
			break;
	}
	close(fd);
	printf("STRATUS-TEST echo bytes=%llu hash=%016llx\n", (unsigned long long)total,
	       (unsigned long long)h);
}

static int serve(unsigned int port)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
				    .svm_cid = VMADDR_CID_ANY,
				    .svm_port = port };
	int lfd = socket(AF_VSOCK, SOCK_STREAM, 0);

	signal(SIGCHLD, SIG_IGN);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(lfd, 128) < 0) {
		perror("vsock listen");
		return 1;
	}
	printf("STRATUS-TEST vsock-listening port=%u\n", port);
	fflush(stdout);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		if (fork() == 0) {
			close(lfd);
			echo(fd);
			fflush(stdout);
			_exit(0);
		}
		close(fd);
	}
}

static int send_to_host(unsigned int port, uint64_t bytes)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
				    .svm_cid = VMADDR_CID_HOST,
				    .svm_port = port };
	static unsigned char buf[65536];
	uint64_t h = FNV_INIT, seed = 1, done = 0;
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;

	while (ok && done < bytes) {
		size_t n = bytes - done < sizeof(buf) ? bytes - done : sizeof(buf);

		pattern(buf, n, &seed);
		h = fnv(h, buf, n);
		ok = write_all(fd, buf, n) == 0;
		done += n;
	}
	if (fd >= 0)
		close(fd);
	printf("STRATUS-TEST send port=%u bytes=%llu hash=%016llx status=%s\n", port,
	       (unsigned long long)done, (unsigned long long)h, ok ? "ok" : "fail");
	return ok ? 0 : 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void bench_report(const char *name, uint64_t bytes, uint64_t ns)
{
	printf("STRATUS-TEST bench %s bytes=%llu ns=%llu\n", name, (unsigned long long)bytes,
	       (unsigned long long)ns);
}

static int bench_send(unsigned int port, uint64_t mib)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
				    .svm_cid = VMADDR_CID_HOST,
				    .svm_port = port };
	static unsigned char buf[65536];
	uint64_t t0 = now_ns(), done = 0;
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return 1;
	for (; done < (mib << 20); done += sizeof(buf))
		if (write_all(fd, buf, sizeof(buf)) < 0)
			return 1;
	close(fd);
	bench_report("vsock-send", done, now_ns() - t0);
	return 0;
}

static int bench_recv(unsigned int port)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
				    .svm_cid = VMADDR_CID_ANY,
				    .svm_port = port };
	static unsigned char buf[65536];
	int lfd = socket(AF_VSOCK, SOCK_STREAM, 0), fd;
	uint64_t t0, total = 0;
	ssize_t n;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 1) < 0)
		return 1;
	printf("STRATUS-TEST vsock-listening port=%u\n", port);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return 1;
	t0 = now_ns();
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	bench_report("vsock-recv", total, now_ns() - t0);
	close(fd);
	return 0;
}

static int disk_seq(const char *how, const char *dev, uint64_t mib)
{
	int write = !strcmp(how, "write");
	int fd = open(dev, (write ? O_WRONLY : O_RDONLY) | O_DIRECT);
	void *buf;
	uint64_t t0, i;

	if (fd < 0 || posix_memalign(&buf, 4096, 1 << 20))
		return 1;
	memset(buf, 0x5a, 1 << 20);
	t0 = now_ns();
	for (i = 0; i < mib; i++) {
		ssize_t n = write ? pwrite(fd, buf, 1 << 20, i << 20)
				  : pread(fd, buf, 1 << 20, i << 20);

		if (n != 1 << 20)
			return 1;
	}
	if (write && fsync(fd) < 0)
		return 1;
	bench_report(write ? "disk-seq-write" : "disk-seq-read", mib << 20, now_ns() - t0);
	return 0;
}

static int disk_rand(const char *dev, unsigned int seconds)
{
	int fd = open(dev, O_RDONLY | O_DIRECT);
	uint64_t t0, end, blocks, ios = 0, seed = 88172645463325252ULL;
	void *buf;

	if (fd < 0 || posix_memalign(&buf, 4096, 4096))
		return 1;
	blocks = lseek(fd, 0, SEEK_END) / 4096;
	if (!blocks)
		return 1;
	t0 = now_ns();
	end = t0 + seconds * 1000000000ULL;
	do {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17; /* xorshift64 */
		if (pread(fd, buf, 4096, (off_t)(seed % blocks) * 4096) != 4096)
			return 1;
		ios++;
	} while ((ios & 15) || now_ns() < end);
	bench_report("disk-rand-read", ios * 4096, now_ns() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	static unsigned char buf[65536];
	uint64_t h = FNV_INIT, total = 0, seed = 1;
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(strtoul(argv[2], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "send"))
		return send_to_host(strtoul(argv[2], NULL, 0), strtoull(argv[3], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "gen")) {
		for (uint64_t left = strtoull(argv[2], NULL, 0); left;) {
			size_t k = left < sizeof(buf) ? left : sizeof(buf);

			pattern(buf, k, &seed);
			if (write_all(1, buf, k) < 0)
				return 1;
			left -= k;
		}
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "bench-send"))
		return bench_send(strtoul(argv[2], NULL, 0), strtoull(argv[3], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "bench-recv"))
		return bench_recv(strtoul(argv[2], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "disk-seq"))
		return disk_seq(argv[2], argv[3], strtoull(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "disk-rand"))
		return disk_rand(argv[2], strtoul(argv[3], NULL, 0));
	if (argc == 2 && !strcmp(argv[1], "hash")) {
		while ((n = read(0, buf, sizeof(buf))) > 0) {
			h = fnv(h, buf, n);
			total += n;
		}
		printf("bytes=%llu hash=%016llx\n", (unsigned long long)total,
		       (unsigned long long)h);
		return 0;
	}
	fprintf(stderr,
		"usage: %s serve PORT | send PORT BYTES | gen BYTES | hash | bench-send PORT MIB | "
		"bench-recv PORT | disk-seq read|write DEV MIB | disk-rand DEV SECONDS\n",
		argv[0]);
	return 2;
}
