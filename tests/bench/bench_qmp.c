/*
 * bench-qmp SOCKET [N]: QMP round-trip latency of query-status. Connects, reads the
 * greeting, negotiates, then sends N (default 1000) query-status commands one at a time
 * and times each from write to the reply's last byte. The client paces itself at 80
 * commands a second, under the server's rate limit (docs/vmm.md, QMP: 100 per second after
 * a burst of 64), so the figures are the VMM's latency, not the limiter's. Prints
 * "median_us p99_us max_us N".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Read up to and including the next "\r\n"; 0 on success. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, 1);

		if (n <= 0)
			return -1;
		len++;
		if (len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n') {
			buf[len] = '\0';
			return 0;
		}
	}
	return -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const char query[] = "{\"execute\":\"query-status\"}\n";
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timespec pace = { 0, 12500000 };
	int n = argc > 2 ? atoi(argv[2]) : 1000, fd, i;
	char line[4096];
	double *t;

	if (argc < 2 || n <= 0 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: bench-qmp SOCKET [N]\n");
		return 2;
	}
	t = calloc(n, sizeof(*t));
	strcpy(addr.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (!t || fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("bench-qmp: connect");
		return 1;
	}
	if (read_line(fd, line, sizeof(line)) < 0 ||
	    write(fd, "{\"execute\":\"qmp_capabilities\"}\n", 31) != 31 ||
	    read_line(fd, line, sizeof(line)) < 0) {
		fprintf(stderr, "bench-qmp: no QMP handshake\n");
		return 1;
	}
	for (i = 0; i < n; i++) {
		double start = now_us();

		if (write(fd, query, sizeof(query) - 1) != (ssize_t)sizeof(query) - 1)
			return 1;
		do {
			if (read_line(fd, line, sizeof(line)) < 0) {
				fprintf(stderr, "bench-qmp: connection lost after %d\n", i);
				return 1;
			}
		} while (strncmp(line, "{\"return\"", 9)); /* events in between */
		t[i] = now_us() - start;
		nanosleep(&pace, NULL);
	}
	qsort(t, n, sizeof(*t), cmp_double);
	printf("%.1f %.1f %.1f %d\n", t[n / 2], t[(int)(n * 0.99)], t[n - 1], n);
	close(fd);
	free(t);
	return 0;
}
