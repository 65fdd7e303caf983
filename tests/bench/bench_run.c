/*
 * bench-run: run a command once and print "WALL_MS PEAK_RSS_KB STATUS" on stdout, the
 * command's own output going to /dev/null. Wall time is CLOCK_MONOTONIC from fork to
 * reap; peak RSS is the child's ru_maxrss from wait4(), the number /usr/bin/time reports.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
	struct timespec start, end;
	struct rusage usage;
	int status, null_fd;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-run COMMAND [ARGS...]\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	pid = fork();
	if (pid < 0) {
		perror("bench-run: fork");
		return 1;
	}
	if (pid == 0) {
		null_fd = open("/dev/null", O_RDWR);
		dup2(null_fd, 0);
		dup2(null_fd, 1);
		dup2(null_fd, 2);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &usage) < 0) {
		perror("bench-run: wait4");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	printf("%.3f %ld %d\n",
	       (double)(end.tv_sec - start.tv_sec) * 1e3 +
		       (double)(end.tv_nsec - start.tv_nsec) / 1e6,
	       usage.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}
