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
 * The hash is 64-bit FNV-1a: enough to catch a byte lost, duplicated or reordered.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
	if (argc == 2 && !strcmp(argv[1], "hash")) {
		while ((n = read(0, buf, sizeof(buf))) > 0) {
			h = fnv(h, buf, n);
			total += n;
		}
		printf("bytes=%llu hash=%016llx\n", (unsigned long long)total,
		       (unsigned long long)h);
		return 0;
	}
	fprintf(stderr, "usage: %s serve PORT | send PORT BYTES | gen BYTES | hash\n", argv[0]);
	return 2;
}
