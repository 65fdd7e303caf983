/*
 * MOUNT_SHARE (protocol 1.3, docs/agent-protocol.md, docs/pods.md): a pod's share. The
 * sandbox's VM has one more virtio-fs device whose host directory receives every member's
 * rootfs and bind-mount sources after the VM has booted. The agent mounts that tag once, in
 * its own mount namespace (not a container's: every member's CREATE binds from it), on
 * RUN_DIR-shares/<tag> (/run/stratus-shares/<tag> in the VM; beside the run directory, so the
 * native tests that move it with agent_configure() move this too), with the flags of a
 * virtio-fs rootfs, and answers the path. The same tag again answers the same path without a
 * second mount. At most AGENT_MAX_SHARES tags; a failed mount leaves no directory behind.
 *
 * The tag names a directory: it is 1 to AGENT_MAX_TAG bytes of [A-Za-z0-9_.-], not "." or
 * "..", so it can never walk out of the shares directory.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_internal.h"

static bool share_tag_valid(const char *tag)
{
	size_t len = strlen(tag);

	if (len == 0 || len > AGENT_MAX_TAG || !strcmp(tag, ".") || !strcmp(tag, ".."))
		return false;
	for (const char *p = tag; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
			return false;
	return true;
}

static void share_reply(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m,
			char *path)
{
	struct agent_msg r = { .type = AGENT_MOUNT_SHARE, .flags = AGENT_FLAG_REPLY, .id = m->id };

	r.u.share_path.path = path;
	ctl_send(a, conn, &r);
}

/* mkdir the shares directory and dir in it, mount the tag there: 0 or -errno with err. */
static int share_mount(const char *parent, const char *dir, const char *tag, const char *fstype,
		       char *err, size_t err_len)
{
	int r;

	if (mkdir(parent, 0711) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, err_len, "MOUNT_SHARE %s: mkdir %.600s: %s", tag, parent,
			 strerror(-r));
		return r;
	}
	if (mkdir(dir, 0711) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, err_len, "MOUNT_SHARE %s: mkdir %.600s: %s", tag, dir, strerror(-r));
		goto fail;
	}
	/* As a virtio-fs rootfs (agent_mount.c): the containers' bind mounts add their flags. */
	if (mount(tag, dir, fstype, 0, NULL) < 0) {
		r = -errno;
		snprintf(err, err_len, "MOUNT_SHARE %s: mount %s on %.600s: %s", tag, fstype, dir,
			 strerror(-r));
		rmdir(dir);
		goto fail;
	}
	return 0;
fail:
	rmdir(parent); /* only if empty: the other shares stay */
	return r;
}

void share_do_mount(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m)
{
	const char *tag = m->u.mount_share.tag;
	char parent[AGENT_MAX_PATH], dir[AGENT_MAX_PATH + AGENT_MAX_TAG + 2];
	char err[AGENT_MAX_ERROR_MSG];
	struct share *s;
	int r;

	if (!share_tag_valid(tag))
		return ctl_send_error(a, conn, m, EINVAL,
				      "MOUNT_SHARE: tag \"%.64s\": use 1 to %d of letters, digits, "
				      "'_', '.', '-'",
				      tag, AGENT_MAX_TAG);
	for (unsigned int i = 0; i < a->nshares; i++)
		if (!strcmp(a->shares[i].tag, tag))
			return share_reply(a, conn, m, a->shares[i].path);
	if (a->nshares == AGENT_MAX_SHARES)
		return ctl_send_error(a, conn, m, ENOSPC, "MOUNT_SHARE %s: %d shares are mounted",
				      tag, AGENT_MAX_SHARES);
	if (a->dry_run)
		return ctl_send_error(a, conn, m, EPERM,
				      "MOUNT_SHARE %s: dry run: nothing is mounted", tag);
	if (snprintf(parent, sizeof(parent), "%s-shares", a->run_dir) >= (int)sizeof(parent) ||
	    snprintf(dir, sizeof(dir), "%s/%s", parent, tag) > AGENT_MAX_PATH)
		return ctl_send_error(a, conn, m, ENAMETOOLONG,
				      "MOUNT_SHARE %s: %s-shares: too long", tag, a->run_dir);
	r = share_mount(parent, dir, tag, a->share_fstype, err, sizeof(err));
	if (r < 0)
		return ctl_send_error(a, conn, m, -r, "%s", err);
	s = &a->shares[a->nshares];
	s->path = strdup(dir);
	if (!s->path) {
		umount2(dir, MNT_DETACH);
		rmdir(dir);
		return ctl_send_error(a, conn, m, ENOMEM, "MOUNT_SHARE %s: out of memory", tag);
	}
	snprintf(s->tag, sizeof(s->tag), "%s", tag);
	a->nshares++;
	share_reply(a, conn, m, s->path);
}

/* The agent stops (SHUTDOWN, or the native tests' end): detach what it mounted. */
void share_unmount_all(struct agent *a)
{
	char parent[AGENT_MAX_PATH];

	for (unsigned int i = 0; i < a->nshares; i++) {
		umount2(a->shares[i].path, MNT_DETACH);
		rmdir(a->shares[i].path);
		free(a->shares[i].path);
		a->shares[i].path = NULL;
	}
	if (a->nshares &&
	    snprintf(parent, sizeof(parent), "%s-shares", a->run_dir) < (int)sizeof(parent))
		rmdir(parent);
	a->nshares = 0;
}
