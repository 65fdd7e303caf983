/*
 * Guest half of tests/bench/virtio_fs_guest.sh (built static, run inside the guest): the
 * same file-system work on a directory of each file system, timed in the guest with
 * CLOCK_MONOTONIC. Each result is one console line the host parses:
 *   STRATUS-TEST fsbench LABEL WHAT ms=N
 *
 *   fs_bench untar LABEL TARBALL DIR   tar -xf TARBALL -C DIR (busybox tar, a child
 *                                      process), then syncfs: "untar" and "untar+sync"
 *   fs_bench files LABEL DIR N         create N empty files (open O_CREAT|O_EXCL, close),
 *                                      stat each (lstat), remove each (unlink): "create",
 *                                      "stat", "unlink"; then syncfs: "sync"
 * On failure: "STRATUS-TEST fsbench LABEL WHAT FAIL-errno" and exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void report(const char *label, const char *what, double ms)
{
	printf("STRATUS-TEST fsbench %s %s ms=%.1f\n", label, what, ms);
	fflush(stdout);
}

static int fail(const char *label, const char *what)
{
	printf("STRATUS-TEST fsbench %s %s FAIL-%d\n", label, what, errno);
	fflush(stdout);
	return 1;
}

static int sync_dir(const char *label, const char *dir, double *ms)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	double t = now_ms();

	if (fd < 0 || syncfs(fd) < 0)
		return fail(label, "sync");
	*ms = now_ms() - t;
	close(fd);
	return 0;
}

static int untar(const char *label, const char *tarball, const char *dir)
{
	double t = now_ms(), untar_ms, sync_ms;
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return fail(label, "untar");
	if (pid == 0) {
		execl("/bin/tar", "tar", "-xf", tarball, "-C", dir, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return fail(label, "untar");
	untar_ms = now_ms() - t;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errno = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		return fail(label, "untar");
	}
	if (sync_dir(label, dir, &sync_ms))
		return 1;
	report(label, "untar", untar_ms);
	report(label, "untar+sync", untar_ms + sync_ms);
	return 0;
}

static int files(const char *label, const char *dir, unsigned int n)
{
	char path[4096];
	struct stat st;
	double t, sync_ms;
	unsigned int i;

	t = now_ms();
	for (i = 0; i < n; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/f%05u", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail(label, "create");
		close(fd);
	}
	report(label, "create", now_ms() - t);
	t = now_ms();
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%05u", dir, i);
		if (lstat(path, &st) < 0)
			return fail(label, "stat");
	}
	report(label, "stat", now_ms() - t);
	t = now_ms();
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%05u", dir, i);
		if (unlink(path) < 0)
			return fail(label, "unlink");
	}
	report(label, "unlink", now_ms() - t);
	if (sync_dir(label, dir, &sync_ms))
		return 1;
	report(label, "sync", sync_ms);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "untar"))
		return untar(argv[2], argv[3], argv[4]);
	if (argc == 5 && !strcmp(argv[1], "files") && atoi(argv[4]) > 0)
		return files(argv[2], argv[3], (unsigned int)atoi(argv[4]));
	fprintf(stderr, "usage: fs_bench untar LABEL TARBALL DIR | files LABEL DIR N\n");
	return 2;
}
