/*
 * Internal to the config.json parser (oci_spec*.c): the arena every parsed value lives in, and
 * typed, path-naming accessors over a yajl_tree. Each accessor either stores a checked value or
 * fills the error with "config.json: <path>: <what was expected>" and returns -EINVAL. Paths are
 * built on the caller's stack, truncated at OCI_PATH_MAX (the schema is shallow).
 */
#ifndef STRATUS_RUNTIME_OCI_JSON_H
#define STRATUS_RUNTIME_OCI_JSON_H

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "oci_spec.h"

#define OCI_PATH_MAX 256

struct oci_arena;

/* Zeroed memory owned by the arena; NULL on overflow or exhaustion. */
void *oci_arena_alloc(struct oci_arena *a, size_t n, size_t size);
char *oci_arena_strdup(struct oci_arena *a, const char *s);
struct oci_arena *oci_arena_new(void);
void oci_arena_free(struct oci_arena *a);

struct oci_parser {
	struct oci_arena *arena;
	struct error *err;
};

/* "config.json: <path>: <message>"; returns -EINVAL (or -ENOMEM for "out of memory"). */
int oci_fail(struct oci_parser *p, const char *path, const char *fmt, ...) _printf_(3, 4);
int oci_nomem(struct oci_parser *p, const char *path);

/* parent.key and parent[i] into buf (OCI_PATH_MAX bytes); returns buf. */
const char *oci_path_key(char *buf, const char *parent, const char *key);
const char *oci_path_index(char *buf, const char *parent, size_t i);

/* The member named key, or NULL (obj must be an object; duplicates were refused earlier). */
yajl_val oci_member(yajl_val obj, const char *key);

/*
 * Pre-scan of the raw text, before yajl builds a tree: nesting above OCI_SPEC_MAX_DEPTH
 * (yajl_tree_free recurses: 512 Ki levels of "[" overflow an 8 MiB stack) and more than
 * OCI_SPEC_MAX_VALUES values (each costs yajl an allocation) are refused.
 */
int oci_json_prescan(const char *json, size_t len, struct error *err);
/*
 * Write a parsed value to g as it was (depth is bounded by the caller: a tree that passed
 * oci_json_prescan; deeper than 64 levels becomes null).
 */
void oci_json_gen(yajl_gen g, yajl_val v, unsigned int depth);
/*
 * Parse config (len bytes; pre-scanned), let edit change the tree (0 or -errno), write it back
 * to *out (malloc'd). Longer than max bytes: -E2BIG ("the most the agent takes"); an edit or
 * generation failure names what ("config.json: cannot rewrite WHAT").
 */
int oci_json_rewrite(const char *config, size_t len, int (*edit)(yajl_val root, void *ctx),
		     void *ctx, size_t max, const char *what, char **out, struct error *err);
/* Refuse a duplicate key in any object of the tree (path of the object named). */
int oci_json_check_duplicates(struct oci_parser *p, yajl_val v, const char *path,
			      unsigned int depth);

/*
 * Member accessors: absent and not required leaves *out untouched and returns 0 (present, when
 * given, says which). The path in messages is parent.key.
 */
int oci_get_object(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		   bool required, yajl_val *out);
int oci_get_array(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		  bool required, yajl_val *out);
int oci_get_string(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		   bool required, char **out);
int oci_get_bool(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		 bool *out);
int oci_get_u64(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		uint64_t max, bool required, uint64_t *out, bool *present);
int oci_get_i64(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		int64_t min, int64_t max, bool required, int64_t *out, bool *present);
int oci_get_u32(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		bool required, uint32_t *out, bool *present);

/* A value (not a member) as an integer in range, for array elements. */
int oci_value_u64(struct oci_parser *p, yajl_val v, const char *path, uint64_t max, uint64_t *out);

/*
 * An array of strings (at most OCI_SPEC_MAX_ENTRIES); check, when given, returns NULL for a
 * good element or the message for a bad one ("must be a string \"KEY=VALUE\""); a message
 * starting "unknown " gets the offending string appended.
 */
int oci_get_strv(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		 bool required, const char *(*check)(const char *s), struct oci_strv *out);
/* An object of string values (annotations, sysctl). */
int oci_get_map(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		struct oci_map *out);

/* The index of s in names[0..n), or -1. */
int oci_lookup(const char *const *names, size_t n, const char *s);

/* Section parsers (oci_spec_process.c, oci_spec_linux.c). */
int oci_parse_process(struct oci_parser *p, yajl_val root, struct oci_process *out);
int oci_parse_linux(struct oci_parser *p, yajl_val root, struct oci_linux *out);
const char *oci_check_env(const char *s);
const char *oci_check_absolute(const char *s);

#endif
