/*
 * The FUSE server's two bounded tables. Nodes: one per inode and mount (dev, ino, mnt) the
 * guest has looked up, holding an O_PATH fd on that mount and the guest's lookup count (two
 * bind mounts of one directory under the share, one read-only, are two nodes: the descriptor
 * of each carries its mount's flags, so ro holds for the ro name); the nodeid we hand out is
 * the slot (+ 1) in the low 32 bits and the slot's generation in the high ones, so a
 * stale or forged id never reaches a reused slot. When FORGET brings a node's count to zero
 * the node is cached, not closed: its id goes stale for the guest (the generation moves on
 * if it comes back), but a later LOOKUP of the same inode through the same mount finds its
 * descriptor by (dev, ino, mnt) without opening anything. The hash is of (dev, ino) only, so
 * the nodes of one inode under several mounts share a chain (fuse_node_unlinked walks it). Cached nodes sit on an LRU list and are closed, oldest first,
 * when a slot or a descriptor is needed, or after FUSE_NODE_CACHE_TTL seconds. A node whose
 * last name the guest removes through us (UNLINK, RMDIR, a RENAME over it) is never cached:
 * closed at once, or when forgotten, so a deleted file's blocks are not kept allocated by
 * us (a name removed on the host directly: within the TTL). Slot 0 is the root and lives
 * as long as the server.
 * Handles: one per OPEN/OPENDIR/CREATE, an fd each, freed by RELEASE(DIR), with the same
 * id scheme. Both tables are fixed in size, so the guest can hold at most max_nodes +
 * max_handles of our descriptors: past that a LOOKUP answers ENFILE and an OPEN EMFILE.
 * On top of that, every server of the process draws on one budget of descriptors (what
 * RLIMIT_NOFILE leaves once the rest of the VMM has its reserve), so several busy shares
 * cannot together starve the VMM either.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdatomic.h>

#include "fuse_internal.h"

static atomic_uint fuse_fds_used;
static atomic_uint fuse_fds_max = 1024;

void fuse_fd_budget_set(unsigned int max)
{
	atomic_store(&fuse_fds_max, max);
}

/* One descriptor more for a table, if the process-wide budget allows. */
static bool fuse_fd_take(void)
{
	if (atomic_fetch_add(&fuse_fds_used, 1) < atomic_load(&fuse_fds_max))
		return true;
	atomic_fetch_sub(&fuse_fds_used, 1);
	return false;
}

static void fuse_fd_give(void)
{
	atomic_fetch_sub(&fuse_fds_used, 1);
}

/* Caching a node keeps its descriptor: only while a quarter of the budget is still free. */
static bool fuse_fd_plenty(void)
{
	unsigned int max = atomic_load(&fuse_fds_max);

	return atomic_load(&fuse_fds_used) < max - max / 4;
}

static uint32_t fuse_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* the vDSO: no system call */
	return (uint32_t)ts.tv_sec;
}

static uint32_t fuse_hash(dev_t dev, ino_t ino)
{
	uint64_t h =
		((uint64_t)dev * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)ino * 0xc2b2ae3d27d4eb4fULL);

	return (uint32_t)(h ^ (h >> 29));
}

static uint64_t fuse_make_id(uint32_t slot, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (slot + 1);
}

/* The slot an id names, or -1: the generation must match what is there now. */
static int64_t fuse_id_slot(uint64_t id, uint32_t max)
{
	uint32_t low = (uint32_t)id;

	if (low == 0 || low > max)
		return -1;
	return low - 1;
}

int fuse_table_init(struct fuse_server *s, int root_fd, const struct stat *root, uint64_t mnt)
{
	uint32_t size = 1;

	while (size < s->max_nodes * 2)
		size <<= 1;
	s->nodes = calloc(s->max_nodes, sizeof(*s->nodes));
	s->hash = calloc(size, sizeof(*s->hash));
	s->handles = calloc(s->max_handles, sizeof(*s->handles));
	if (!s->nodes || !s->hash || !s->handles)
		return -ENOMEM;
	s->hash_mask = size - 1;
	/* The root: FUSE_ROOT_ID (1) is slot 0, generation 0. */
	s->nodes[0] = (struct fuse_node){ .id = FUSE_ROOT_ID,
					  .dev = root->st_dev,
					  .ino = root->st_ino,
					  .mnt = mnt,
					  .fd = root_fd,
					  .type = root->st_mode & S_IFMT,
					  .nlookup = 1 };
	s->hash[fuse_hash(root->st_dev, root->st_ino) & s->hash_mask] = 1;
	s->nr_nodes = 1;
	return 0;
}

static void fuse_node_unhash(struct fuse_server *s, uint32_t slot)
{
	struct fuse_node *n = &s->nodes[slot];
	uint32_t *p = &s->hash[fuse_hash(n->dev, n->ino) & s->hash_mask];

	while (*p && *p != slot + 1)
		p = &s->nodes[*p - 1].hash_next;
	if (*p)
		*p = n->hash_next;
	n->hash_next = 0;
}

static void fuse_lru_unlink(struct fuse_server *s, struct fuse_node *n)
{
	if (n->lru_prev)
		s->nodes[n->lru_prev - 1].lru_next = n->lru_next;
	else
		s->lru_head = n->lru_next;
	if (n->lru_next)
		s->nodes[n->lru_next - 1].lru_prev = n->lru_prev;
	else
		s->lru_tail = n->lru_prev;
	n->lru_prev = n->lru_next = 0;
	s->nr_cached--;
}

static void fuse_lru_push(struct fuse_server *s, uint32_t slot)
{
	struct fuse_node *n = &s->nodes[slot];

	n->lru_prev = 0;
	n->lru_next = s->lru_head;
	if (s->lru_head)
		s->nodes[s->lru_head - 1].lru_prev = slot + 1;
	else
		s->lru_tail = slot + 1;
	s->lru_head = slot + 1;
	n->cached_at = fuse_now();
	s->nr_cached++;
}

static void fuse_node_free(struct fuse_server *s, uint32_t slot)
{
	struct fuse_node *n = &s->nodes[slot];

	if (!n->nlookup)
		fuse_lru_unlink(s, n);
	fuse_node_unhash(s, slot);
	close(n->fd);
	fuse_fd_give();
	n->fd = -1;
	n->id = 0;
	n->nlookup = 0;
	s->nr_nodes--;
	s->node_hint = MIN(s->node_hint, slot);
}

void fuse_table_clear(struct fuse_server *s)
{
	uint32_t i;

	for (i = 1; s->nodes && i < s->max_nodes; i++)
		if (s->nodes[i].id)
			fuse_node_free(s, i);
	s->lru_head = s->lru_tail = s->nr_cached = 0;
	for (i = 0; s->handles && i < s->max_handles; i++)
		if (s->handles[i].id) {
			close(s->handles[i].fd);
			fuse_fd_give();
			s->handles[i].id = 0;
		}
	s->nr_handles = 0;
	s->handle_hint = 0;
	s->dents_fh = 0;
	if (s->nodes)
		s->nodes[0].nlookup = 1;
}

void fuse_table_destroy(struct fuse_server *s)
{
	fuse_table_clear(s);
	if (s->nodes && s->nodes[0].id && s->nodes[0].fd >= 0)
		close(s->nodes[0].fd);
	free(s->nodes);
	free(s->hash);
	free(s->handles);
	s->nodes = NULL;
	s->hash = NULL;
	s->handles = NULL;
}

struct fuse_node *fuse_node_get(struct fuse_server *s, uint64_t id)
{
	int64_t slot = fuse_id_slot(id, s->max_nodes);

	if (slot < 0 || s->nodes[slot].id != id || !s->nodes[slot].nlookup)
		return NULL;
	return &s->nodes[slot];
}

struct fuse_node *fuse_node_find(struct fuse_server *s, dev_t dev, ino_t ino, uint64_t mnt)
{
	uint32_t i;

	for (i = s->hash[fuse_hash(dev, ino) & s->hash_mask]; i; i = s->nodes[i - 1].hash_next) {
		struct fuse_node *n = &s->nodes[i - 1];

		if (n->ino == ino && n->dev == dev && n->mnt == mnt)
			return n;
	}
	return NULL;
}

static void fuse_node_new_id(struct fuse_server *s, uint32_t slot)
{
	struct fuse_node *n = &s->nodes[slot];

	n->gen++;
	if (!n->gen)
		n->gen = 1;
	n->id = fuse_make_id(slot, n->gen);
}

void fuse_node_ref(struct fuse_server *s, struct fuse_node *n)
{
	if (!n->nlookup) {
		/* Back from the cache: the id the guest forgot stays stale. */
		fuse_lru_unlink(s, n);
		fuse_node_new_id(s, (uint32_t)(n - s->nodes));
	}
	n->nlookup++;
}

unsigned int fuse_node_cache_shrink(struct fuse_server *s, unsigned int n)
{
	unsigned int done = 0;

	while (done < n && s->lru_tail) {
		fuse_node_free(s, s->lru_tail - 1);
		done++;
	}
	return done;
}

void fuse_node_cache_expire(struct fuse_server *s)
{
	uint32_t now;

	if (!s->lru_tail)
		return;
	now = fuse_now();
	while (s->lru_tail && now - s->nodes[s->lru_tail - 1].cached_at > FUSE_NODE_CACHE_TTL)
		fuse_node_free(s, s->lru_tail - 1);
}

/* A free slot and a descriptor from the budget, evicting cached nodes if need be. */
static bool fuse_node_make_room(struct fuse_server *s)
{
	for (;;) {
		if (s->nr_nodes < s->max_nodes && fuse_fd_take())
			return true;
		if (!fuse_node_cache_shrink(s, 1))
			return false;
	}
}

int fuse_node_add(struct fuse_server *s, int fd, const struct stat *st, uint64_t mnt,
		  struct fuse_node **out)
{
	uint32_t *head, i;
	struct fuse_node *n = fuse_node_find(s, st->st_dev, st->st_ino, mnt);

	if (n) {
		close(fd);
		fuse_node_ref(s, n);
		*out = n;
		return 0;
	}
	if (!fuse_node_make_room(s)) {
		close(fd);
		return -ENFILE;
	}
	/* nr_nodes < max_nodes, so a free slot exists; the hint is at or before the first. */
	for (i = MAX(s->node_hint, 1u); s->nodes[i].id; i = i + 1 < s->max_nodes ? i + 1 : 1)
		;
	s->node_hint = i + 1 < s->max_nodes ? i + 1 : 1;
	head = &s->hash[fuse_hash(st->st_dev, st->st_ino) & s->hash_mask];
	s->nodes[i] = (struct fuse_node){ .dev = st->st_dev,
					  .ino = st->st_ino,
					  .mnt = mnt,
					  .fd = fd,
					  .type = st->st_mode & S_IFMT,
					  .nlookup = 1,
					  .hash_next = *head,
					  .gen = s->nodes[i].gen };
	fuse_node_new_id(s, i);
	*head = i + 1;
	s->nr_nodes++;
	*out = &s->nodes[i];
	return 0;
}

void fuse_node_forget(struct fuse_server *s, uint64_t id, uint64_t nlookup)
{
	struct fuse_node *n = fuse_node_get(s, id);
	uint32_t slot;

	if (!n || n == &s->nodes[0])
		return; /* the root is never forgotten; unknown ids are ignored (no reply) */
	n->nlookup -= MIN(nlookup, n->nlookup);
	if (n->nlookup)
		return;
	slot = (uint32_t)(n - s->nodes);
	/* Cached with count 0 (the LRU list), unless it must be closed now. */
	fuse_lru_push(s, slot);
	if (n->gone || !fuse_fd_plenty())
		fuse_node_free(s, slot);
}

void fuse_node_unlinked(struct fuse_server *s, const struct stat *st)
{
	uint32_t i, next;

	if (st->st_nlink > 1 && !S_ISDIR(st->st_mode))
		return;
	/* Every node of the inode, whichever mount it came through: none may keep it alive. */
	for (i = s->hash[fuse_hash(st->st_dev, st->st_ino) & s->hash_mask]; i; i = next) {
		struct fuse_node *n = &s->nodes[i - 1];

		next = n->hash_next; /* before fuse_node_free unhashes n */
		if (n->ino != st->st_ino || n->dev != st->st_dev || n == &s->nodes[0])
			continue;
		if (n->nlookup)
			n->gone = true;
		else
			fuse_node_free(s, i - 1);
	}
}

struct fuse_handle *fuse_handle_get(struct fuse_server *s, uint64_t fh, bool dir)
{
	int64_t slot = fuse_id_slot(fh, s->max_handles);

	if (slot < 0 || s->handles[slot].id != fh || s->handles[slot].dir != dir)
		return NULL;
	return &s->handles[slot];
}

int fuse_handle_add(struct fuse_server *s, int fd, bool dir, uint64_t *fh)
{
	uint32_t i;

	/* A cached node gives its descriptor back to the budget for an open file. */
	while (s->nr_handles < s->max_handles && !fuse_fd_take())
		if (!fuse_node_cache_shrink(s, 1)) {
			close(fd);
			return -EMFILE;
		}
	if (s->nr_handles >= s->max_handles) {
		close(fd);
		return -EMFILE;
	}
	for (i = s->handle_hint; s->handles[i].id; i = i + 1 < s->max_handles ? i + 1 : 0)
		;
	s->handle_hint = i + 1 < s->max_handles ? i + 1 : 0;
	s->handles[i].gen++;
	if (!s->handles[i].gen)
		s->handles[i].gen = 1;
	s->handles[i].id = fuse_make_id(i, s->handles[i].gen);
	s->handles[i].fd = fd;
	s->handles[i].dir = dir;
	s->nr_handles++;
	*fh = s->handles[i].id;
	return 0;
}

int fuse_handle_release(struct fuse_server *s, uint64_t fh, bool dir)
{
	struct fuse_handle *h = fuse_handle_get(s, fh, dir);

	if (!h)
		return -EBADF;
	if (s->dents_fh == h->id)
		s->dents_fh = 0; /* what fuse_do_readdir kept of this directory */
	close(h->fd);
	fuse_fd_give();
	h->id = 0;
	h->fd = -1;
	s->nr_handles--;
	s->handle_hint = MIN(s->handle_hint, (uint32_t)(h - s->handles));
	return 0;
}
