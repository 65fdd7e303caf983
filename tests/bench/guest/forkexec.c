/*
 * forkexec: in a guest, time N rounds of fork + execv(PROGRAM) + waitpid (CLOCK_MONOTONIC),
 * one line of milliseconds per round: the bare cost of starting a process there, which
 * tests/bench/template_run.sh sets `stratus run /bin/true` from a template against. Static.
 * usage: forkexec N PROGRAM
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc == 3 ? atoi(argv[1]) : 0;

	if (n <= 0) {
		fprintf(stderr, "usage: forkexec N PROGRAM\n");
		return 2;
	}
	for (int i = 0; i < n; i++) {
		struct timespec a, b;
		int status;
		pid_t pid;

		clock_gettime(CLOCK_MONOTONIC, &a);
		pid = fork();
		if (pid == 0) {
			execv(argv[2], &argv[2]);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			fprintf(stderr, "forkexec: %s failed\n", argv[2]);
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("%.3f\n",
		       (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
	}
	return 0;
}
