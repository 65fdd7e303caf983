/*
 * Locks between stratus commands racing on one container (state.h, docs/runtime.md
 * "Locking"): flock(2) on <root>/<id>/lock, taken by every verb that changes a container,
 * and a short flock on the --root directory itself around the two moments a container's
 * directory appears (create: mkdir and its lock file) and disappears (delete, a failed
 * create), so a verb never opens the lock file of a half-made or half-removed directory.
 * A lock belongs to its open file description: the kernel drops it when the holder dies,
 * and O_CLOEXEC keeps it out of hooks and the monitor.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "state.h"

int state_lock_timeout_ms(void)
{
	const char *v = getenv(STATE_LOCK_TIMEOUT_ENV);
	char *end;
	long s;

	if (!v || !*v)
		return STATE_LOCK_TIMEOUT_S * 1000;
	s = strtol(v, &end, 10);
	if (*end || s < 0 || s > 24 * 3600)
		return STATE_LOCK_TIMEOUT_S * 1000;
	return (int)s * 1000;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* flock(fd, op) waiting at most timeout_ms: 0, -ETIMEDOUT, or another -errno. */
static int flock_timed(int fd, int op, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	useconds_t pause_us = 1000;

	for (;;) {
		if (flock(fd, op | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(pause_us);
		if (pause_us < 50000)
			pause_us *= 2;
	}
}

static int busy(struct error *err, const char *what, int timeout_ms)
{
	return error_set(err, -ETIMEDOUT,
			 "%s is locked by another stratus command (waited %d s; "
			 "STRATUS_LOCK_TIMEOUT)",
			 what, timeout_ms / 1000);
}

int state_lock_root(const char *root, int op, int *fd, struct error *err)
{
	int timeout_ms = state_lock_timeout_ms();
	int r;

	*fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return error_set_errno(err, -errno, "--root: cannot open %s", root);
	r = flock_timed(*fd, op, timeout_ms);
	if (r == 0)
		return 0;
	close(*fd);
	*fd = -1;
	if (r == -ETIMEDOUT) {
		char what[4200];

		snprintf(what, sizeof(what), "--root %s", root);
		return busy(err, what, timeout_ms);
	}
	return error_set_errno(err, r, "--root: cannot lock %s", root);
}

int state_lock_create(const char *root, const char *id, int *fd, struct error *err)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;
	_cleanup_close_ int root_fd = -1;
	int r;

	*fd = -1;
	if (state_dir_path(root, id, &dir) < 0 ||
	    asprintf(&path, "%s/%s", dir, STATE_LOCK_FILE) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	r = state_lock_root(root, LOCK_EX, &root_fd, err);
	if (r < 0)
		return r;
	if (mkdir(dir, 0700) < 0)
		return errno == EEXIST
			       ? error_set(err, -EEXIST, "container \"%s\" already exists", id)
			       : error_set_errno(err, -errno, "cannot create %s", dir);
	*fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0 || flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		r = error_set_errno(err, -errno, "cannot lock %s", path);
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		unlink(path);
		rmdir(dir);
		return r;
	}
	return 0;
}

int state_lock(const char *root, const char *id, int *fd, struct error *err)
{
	_cleanup_free_ char *path = NULL, *what = NULL;
	int timeout_ms = state_lock_timeout_ms();
	struct stat sb;
	int root_fd, r;

	*fd = -1;
	if (asprintf(&path, "%s/%s/%s", root, id, STATE_LOCK_FILE) < 0 ||
	    asprintf(&what, "container \"%s\"", id) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	/* No --root yet: no container at all. */
	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0 && errno == ENOENT)
		return error_set(err, -ENOENT, "container \"%s\" does not exist", id);
	if (root_fd >= 0)
		close(root_fd);
	/* Shared: create and delete hold it exclusively while the directory comes and goes. */
	r = state_lock_root(root, LOCK_SH, &root_fd, err);
	if (r < 0)
		return r;
	/* O_CREAT: a directory made by an older stratus has no lock file yet. */
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	r = *fd < 0 ? -errno : 0;
	close(root_fd);
	if (r == -ENOENT || r == -ENOTDIR)
		return error_set(err, -ENOENT, "container \"%s\" does not exist", id);
	if (r < 0)
		return error_set_errno(err, r, "cannot open %s", path);
	r = flock_timed(*fd, LOCK_EX, timeout_ms);
	/* Deleted while we waited: the lock file we hold is no longer linked. */
	if (r == 0 && fstat(*fd, &sb) == 0 && sb.st_nlink == 0)
		r = error_set(err, -ENOENT, "container \"%s\" does not exist", id);
	else if (r == -ETIMEDOUT)
		busy(err, what, timeout_ms);
	else if (r < 0)
		error_set_errno(err, r, "cannot lock %s", path);
	if (r < 0) {
		close(*fd);
		*fd = -1;
	}
	return r;
}

int state_remove_dir(const char *root, const char *id, int (*remove_tree)(const char *path),
		     struct error *err)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int root_fd = -1;
	int r;

	if (state_dir_path(root, id, &dir) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	r = state_lock_root(root, LOCK_EX, &root_fd, err);
	if (r < 0)
		return r;
	r = remove_tree(dir);
	if (r < 0)
		return error_set_errno(err, r, "cannot remove %s", dir);
	return 0;
}

void state_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
