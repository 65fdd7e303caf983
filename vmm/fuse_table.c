/*
 * The FUSE server's two bounded tables. Nodes: one per inode (dev, ino) the guest has
 * looked up, holding an O_PATH fd and the guest's lookup count; the nodeid we hand out is
 * the slot (+ 1) in the low 32 bits and the slot's generation in the high ones, so a
 * stale or forged id never reaches a reused slot. A node is freed (its fd closed) as soon
 * as FORGET brings its count to zero; slot 0 is the root and lives as long as the server.
 * Handles: one per OPEN/OPENDIR/CREATE, an fd each, freed by RELEASE(DIR), with the same
 * id scheme. Both tables are fixed in size, so the guest can hold at most max_nodes +
 * max_handles of our descriptors: past that a LOOKUP answers ENFILE and an OPEN EMFILE.
 * On top of that, every server of the process draws on one budget of descriptors (what
 * RLIMIT_NOFILE leaves once the rest of the VMM has its reserve), so several busy shares
 * cannot together starve the VMM either.
 */
#include <stdio.h>
#include <string.h>
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

int fuse_table_init(struct fuse_server *s, int root_fd, const struct stat *root)
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

static void fuse_node_free(struct fuse_server *s, uint32_t slot)
{
	struct fuse_node *n = &s->nodes[slot];

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
	for (i = 0; s->handles && i < s->max_handles; i++)
		if (s->handles[i].id) {
			close(s->handles[i].fd);
			fuse_fd_give();
			s->handles[i].id = 0;
		}
	s->nr_handles = 0;
	s->handle_hint = 0;
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

	if (slot < 0 || s->nodes[slot].id != id)
		return NULL;
	return &s->nodes[slot];
}

int fuse_node_add(struct fuse_server *s, int fd, const struct stat *st, struct fuse_node **out)
{
	uint32_t *head = &s->hash[fuse_hash(st->st_dev, st->st_ino) & s->hash_mask];
	uint32_t i;

	for (i = *head; i; i = s->nodes[i - 1].hash_next) {
		struct fuse_node *n = &s->nodes[i - 1];

		if (n->dev == st->st_dev && n->ino == st->st_ino) {
			close(fd);
			n->nlookup++;
			*out = n;
			return 0;
		}
	}
	if (s->nr_nodes >= s->max_nodes || !fuse_fd_take()) {
		close(fd);
		return -ENFILE;
	}
	/* nr_nodes < max_nodes, so a free slot exists; the hint is at or before the first. */
	for (i = MAX(s->node_hint, 1u); s->nodes[i].id; i = i + 1 < s->max_nodes ? i + 1 : 1)
		;
	s->node_hint = i + 1 < s->max_nodes ? i + 1 : 1;
	s->nodes[i].gen++;
	if (!s->nodes[i].gen)
		s->nodes[i].gen = 1;
	s->nodes[i] = (struct fuse_node){ .id = fuse_make_id(i, s->nodes[i].gen),
					  .dev = st->st_dev,
					  .ino = st->st_ino,
					  .fd = fd,
					  .type = st->st_mode & S_IFMT,
					  .nlookup = 1,
					  .hash_next = *head,
					  .gen = s->nodes[i].gen };
	*head = i + 1;
	s->nr_nodes++;
	*out = &s->nodes[i];
	return 0;
}

void fuse_node_forget(struct fuse_server *s, uint64_t id, uint64_t nlookup)
{
	struct fuse_node *n = fuse_node_get(s, id);

	if (!n || n == &s->nodes[0])
		return; /* the root is never forgotten; unknown ids are ignored (no reply) */
	n->nlookup -= MIN(nlookup, n->nlookup);
	if (!n->nlookup)
		fuse_node_free(s, (uint32_t)(n - s->nodes));
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

	if (s->nr_handles >= s->max_handles || !fuse_fd_take()) {
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
	close(h->fd);
	fuse_fd_give();
	h->id = 0;
	h->fd = -1;
	s->nr_handles--;
	s->handle_hint = MIN(s->handle_hint, (uint32_t)(h - s->handles));
	return 0;
}
