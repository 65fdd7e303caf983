/*
 * The config.json parser's plumbing: an arena (every parsed string and array of one struct
 * oci_spec, freed at once), the nesting pre-scan and duplicate-key check that run before any
 * field is read, and typed accessors that name the JSON path of whatever they refuse.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci_json.h"

struct oci_block {
	struct oci_block *next;
	max_align_t data[];
};

struct oci_arena {
	struct oci_block *blocks;
};

struct oci_arena *oci_arena_new(void)
{
	return calloc(1, sizeof(struct oci_arena));
}

void oci_arena_free(struct oci_arena *a)
{
	if (!a)
		return;
	while (a->blocks) {
		struct oci_block *b = a->blocks;

		a->blocks = b->next;
		free(b);
	}
	free(a);
}

void *oci_arena_alloc(struct oci_arena *a, size_t n, size_t size)
{
	struct oci_block *b;

	if (size && n > (SIZE_MAX - sizeof(*b)) / size)
		return NULL;
	b = calloc(1, sizeof(*b) + n * size);
	if (!b)
		return NULL;
	b->next = a->blocks;
	a->blocks = b;
	return b->data;
}

char *oci_arena_strdup(struct oci_arena *a, const char *s)
{
	size_t len = strlen(s);
	char *d = oci_arena_alloc(a, 1, len + 1);

	if (d)
		memcpy(d, s, len + 1);
	return d;
}

int oci_fail(struct oci_parser *p, const char *path, const char *fmt, ...)
{
	char msg[ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return error_set(p->err, -EINVAL, "config.json: %s: %s", path, msg);
}

int oci_nomem(struct oci_parser *p, const char *path)
{
	return error_set(p->err, -ENOMEM, "config.json: %s: out of memory", path);
}

const char *oci_path_key(char *buf, const char *parent, const char *key)
{
	/* A truncated path still names the place well enough. */
	if (snprintf(buf, OCI_PATH_MAX, "%s%s%s", parent, *parent ? "." : "", key) >= OCI_PATH_MAX)
		buf[OCI_PATH_MAX - 1] = '\0';
	return buf;
}

const char *oci_path_index(char *buf, const char *parent, size_t i)
{
	if (snprintf(buf, OCI_PATH_MAX, "%s[%zu]", parent, i) >= OCI_PATH_MAX)
		buf[OCI_PATH_MAX - 1] = '\0';
	return buf;
}

yajl_val oci_member(yajl_val obj, const char *key)
{
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (!strcmp(obj->u.object.keys[i], key))
			return obj->u.object.values[i];
	return NULL;
}

int oci_json_prescan(const char *json, size_t len, struct error *err)
{
	bool in_string = false, escaped = false;
	unsigned int depth = 0;
	size_t values = 1;

	for (size_t i = 0; i < len; i++) {
		char c = json[i];

		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > OCI_SPEC_MAX_DEPTH)
				return error_set(err, -EINVAL,
						 "config.json: nested deeper than %d levels",
						 OCI_SPEC_MAX_DEPTH);
			values++;
		} else if ((c == ']' || c == '}') && depth) {
			depth--;
		} else if (c == ',') {
			values++;
		}
		/* Every value after a container's first needs a comma: this bounds yajl's tree. */
		if (values > OCI_SPEC_MAX_VALUES)
			return error_set(err, -E2BIG, "config.json: more than %d JSON values",
					 OCI_SPEC_MAX_VALUES);
	}
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_object_keys(struct oci_parser *p, yajl_val v, const char *path)
{
	size_t n = v->u.object.len;
	_cleanup_free_ const char **keys = NULL;

	if (n < 2)
		return 0;
	keys = malloc(n * sizeof(*keys));
	if (!keys)
		return oci_nomem(p, *path ? path : "(top level)");
	memcpy(keys, v->u.object.keys, n * sizeof(*keys));
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(keys[i - 1], keys[i]))
			return oci_fail(p, *path ? path : "(top level)", "duplicate key \"%.64s\"",
					keys[i]);
	return 0;
}

int oci_json_check_duplicates(struct oci_parser *p, yajl_val v, const char *path,
			      unsigned int depth)
{
	char sub[OCI_PATH_MAX];
	int r;

	if (depth > OCI_SPEC_MAX_DEPTH)
		return oci_fail(p, path, "nested deeper than %d levels", OCI_SPEC_MAX_DEPTH);
	if (YAJL_IS_OBJECT(v)) {
		r = check_object_keys(p, v, path);
		for (size_t i = 0; !r && i < v->u.object.len; i++)
			r = oci_json_check_duplicates(p, v->u.object.values[i],
						      oci_path_key(sub, path, v->u.object.keys[i]),
						      depth + 1);
		return r;
	}
	if (YAJL_IS_ARRAY(v))
		for (size_t i = 0; i < v->u.array.len; i++) {
			r = oci_json_check_duplicates(p, v->u.array.values[i],
						      oci_path_index(sub, path, i), depth + 1);
			if (r)
				return r;
		}
	return 0;
}

/* The member, or NULL with *r set: -EINVAL when required and absent. */
static yajl_val member(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		       bool required, int *r)
{
	char path[OCI_PATH_MAX];
	yajl_val v = oci_member(obj, key);

	*r = 0;
	if (!v && required)
		*r = oci_fail(p, oci_path_key(path, parent, key), "is required");
	return v;
}

int oci_get_object(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		   bool required, yajl_val *out)
{
	char path[OCI_PATH_MAX];
	int r;
	yajl_val v = member(p, obj, parent, key, required, &r);

	if (!v)
		return r;
	if (!YAJL_IS_OBJECT(v))
		return oci_fail(p, oci_path_key(path, parent, key), "must be an object");
	*out = v;
	return 0;
}

int oci_get_array(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		  bool required, yajl_val *out)
{
	char path[OCI_PATH_MAX];
	int r;
	yajl_val v = member(p, obj, parent, key, required, &r);

	if (!v)
		return r;
	oci_path_key(path, parent, key);
	if (!YAJL_IS_ARRAY(v))
		return oci_fail(p, path, "must be an array");
	if (v->u.array.len > OCI_SPEC_MAX_ENTRIES)
		return oci_fail(p, path, "too many entries (more than %d)", OCI_SPEC_MAX_ENTRIES);
	*out = v;
	return 0;
}

int oci_get_string(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		   bool required, char **out)
{
	char path[OCI_PATH_MAX];
	int r;
	yajl_val v = member(p, obj, parent, key, required, &r);

	if (!v)
		return r;
	oci_path_key(path, parent, key);
	if (!YAJL_IS_STRING(v))
		return oci_fail(p, path, "must be a string");
	*out = oci_arena_strdup(p->arena, v->u.string);
	return *out ? 0 : oci_nomem(p, path);
}

int oci_get_bool(struct oci_parser *p, yajl_val obj, const char *parent, const char *key, bool *out)
{
	char path[OCI_PATH_MAX];
	yajl_val v = oci_member(obj, key);

	if (!v)
		return 0;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return oci_fail(p, oci_path_key(path, parent, key), "must be a boolean");
	*out = YAJL_IS_TRUE(v);
	return 0;
}

/* Parse an integer literal exactly (yajl's own conversion stops at LLONG_MAX). */
static bool parse_integer(yajl_val v, bool *negative, uint64_t *magnitude)
{
	const char *s, *digits;
	char *end;

	if (!YAJL_IS_NUMBER(v) || !v->u.number.r)
		return false;
	s = v->u.number.r;
	*negative = *s == '-';
	digits = s + *negative;
	if (*digits < '0' || *digits > '9' || strpbrk(digits, ".eE"))
		return false;
	errno = 0;
	*magnitude = strtoull(digits, &end, 10);
	return !errno && !*end;
}

int oci_value_u64(struct oci_parser *p, yajl_val v, const char *path, uint64_t max, uint64_t *out)
{
	bool negative;
	uint64_t m;

	if (!parse_integer(v, &negative, &m) || (negative && m) || m > max)
		return oci_fail(p, path, "must be an integer from 0 to %" PRIu64, max);
	*out = m;
	return 0;
}

int oci_get_u64(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		uint64_t max, bool required, uint64_t *out, bool *present)
{
	char path[OCI_PATH_MAX];
	int r;
	yajl_val v = member(p, obj, parent, key, required, &r);

	if (!v)
		return r;
	r = oci_value_u64(p, v, oci_path_key(path, parent, key), max, out);
	if (!r && present)
		*present = true;
	return r;
}

int oci_get_u32(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		bool required, uint32_t *out, bool *present)
{
	uint64_t v;
	bool got = false;
	int r = oci_get_u64(p, obj, parent, key, UINT32_MAX, required, &v, &got);

	if (!r && got) {
		*out = (uint32_t)v;
		if (present)
			*present = true;
	}
	return r;
}

int oci_get_i64(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		int64_t min, int64_t max, bool required, int64_t *out, bool *present)
{
	char path[OCI_PATH_MAX];
	bool negative;
	uint64_t m;
	int64_t value;
	int r;
	yajl_val v = member(p, obj, parent, key, required, &r);

	if (!v)
		return r;
	oci_path_key(path, parent, key);
	if (!parse_integer(v, &negative, &m) || m > (uint64_t)INT64_MAX + negative)
		goto range;
	value = negative ? (int64_t)(0 - m) : (int64_t)m;
	if (value < min || value > max)
		goto range;
	*out = value;
	if (present)
		*present = true;
	return 0;
range:
	return oci_fail(p, path, "must be an integer from %" PRId64 " to %" PRId64, min, max);
}

int oci_get_strv(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		 bool required, const char *(*check)(const char *s), struct oci_strv *out)
{
	char path[OCI_PATH_MAX], item[OCI_PATH_MAX];
	yajl_val a = NULL;
	int r = oci_get_array(p, obj, parent, key, required, &a);

	if (r || !a)
		return r;
	oci_path_key(path, parent, key);
	out->v = oci_arena_alloc(p->arena, a->u.array.len + 1, sizeof(char *));
	if (!out->v)
		return oci_nomem(p, path);
	for (size_t i = 0; i < a->u.array.len; i++) {
		yajl_val s = a->u.array.values[i];
		const char *bad = NULL;

		oci_path_index(item, path, i);
		if (!YAJL_IS_STRING(s))
			bad = check ? check(NULL) : "must be a string";
		else if (check)
			bad = check(s->u.string);
		if (bad && YAJL_IS_STRING(s) && !strncmp(bad, "unknown ", 8))
			return oci_fail(p, item, "%s \"%.64s\"", bad, s->u.string);
		if (bad)
			return oci_fail(p, item, "%s", bad);
		out->v[i] = oci_arena_strdup(p->arena, s->u.string);
		if (!out->v[i])
			return oci_nomem(p, item);
	}
	out->n = a->u.array.len;
	return 0;
}

int oci_get_map(struct oci_parser *p, yajl_val obj, const char *parent, const char *key,
		struct oci_map *out)
{
	char path[OCI_PATH_MAX], item[OCI_PATH_MAX];
	yajl_val m = NULL;
	int r = oci_get_object(p, obj, parent, key, false, &m);

	if (r || !m)
		return r;
	oci_path_key(path, parent, key);
	if (m->u.object.len > OCI_SPEC_MAX_ENTRIES)
		return oci_fail(p, path, "too many entries (more than %d)", OCI_SPEC_MAX_ENTRIES);
	out->kv = oci_arena_alloc(p->arena, m->u.object.len, sizeof(*out->kv));
	if (!out->kv && m->u.object.len)
		return oci_nomem(p, path);
	for (size_t i = 0; i < m->u.object.len; i++) {
		const char *k = m->u.object.keys[i];

		if (!YAJL_IS_STRING(m->u.object.values[i])) {
			/* Keys hold dots ("net.ipv4.ip_forward"): name them as map keys. */
			if (snprintf(item, sizeof(item), "%s[\"%.64s\"]", path, k) >= OCI_PATH_MAX)
				item[OCI_PATH_MAX - 1] = '\0';
			return oci_fail(p, item, "must be a string");
		}
		out->kv[i].key = oci_arena_strdup(p->arena, k);
		out->kv[i].value = oci_arena_strdup(p->arena, m->u.object.values[i]->u.string);
		if (!out->kv[i].key || !out->kv[i].value)
			return oci_nomem(p, path);
	}
	out->n = m->u.object.len;
	return 0;
}

int oci_lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && !strcmp(names[i], s))
			return (int)i;
	return -1;
}

const char *oci_check_env(const char *s)
{
	const char *eq = s ? strchr(s, '=') : NULL;

	return eq && eq != s ? NULL : "must be a string \"KEY=VALUE\"";
}

const char *oci_check_absolute(const char *s)
{
	return s && s[0] == '/' ? NULL : "must be an absolute path";
}

static void gen_object(yajl_gen g, yajl_val v, unsigned int depth)
{
	yajl_gen_map_open(g);
	for (size_t i = 0; i < v->u.object.len; i++) {
		yajl_gen_string(g, (const unsigned char *)v->u.object.keys[i],
				strlen(v->u.object.keys[i]));
		oci_json_gen(g, v->u.object.values[i], depth + 1);
	}
	yajl_gen_map_close(g);
}

void oci_json_gen(yajl_gen g, yajl_val v, unsigned int depth)
{
	if (depth > 64 || !v) {
		yajl_gen_null(g);
	} else if (YAJL_IS_STRING(v)) {
		yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
	} else if (YAJL_IS_NUMBER(v)) {
		const char *text = v->u.number.r;

		yajl_gen_number(g, text, strlen(text));
	} else if (YAJL_IS_OBJECT(v)) {
		gen_object(g, v, depth);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			oci_json_gen(g, v->u.array.values[i], depth + 1);
		yajl_gen_array_close(g);
	} else if (YAJL_IS_TRUE(v)) {
		yajl_gen_bool(g, 1);
	} else if (YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, 0);
	} else {
		yajl_gen_null(g);
	}
}

int oci_json_rewrite(const char *config, size_t len, int (*edit)(yajl_val root, void *ctx),
		     void *ctx, size_t max, const char *what, char **out, struct error *err)
{
	_cleanup_free_ char *text = strndup(config, len);
	const unsigned char *buf;
	char msg[256];
	yajl_val root;
	yajl_gen g;
	size_t n;
	int r;

	*out = NULL;
	if (!text)
		return error_set(err, -ENOMEM, "out of memory");
	r = oci_json_prescan(text, len, err);
	if (r < 0)
		return r;
	root = yajl_tree_parse(text, msg, sizeof(msg));
	if (!root || !YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		return error_set(err, -EINVAL, "config.json: must be a JSON object");
	}
	r = edit(root, ctx);
	g = r == 0 ? yajl_gen_alloc(NULL) : NULL;
	if (g) {
		oci_json_gen(g, root, 0);
		if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok)
			r = -EINVAL;
		else if (!(*out = strndup((const char *)buf, n)))
			r = -ENOMEM;
		yajl_gen_free(g);
	} else if (r == 0) {
		r = -ENOMEM;
	}
	yajl_tree_free(root);
	if (r == 0 && strlen(*out) > max) {
		free(*out);
		*out = NULL;
		return error_set(err, -E2BIG,
				 "config.json: larger than %zu KiB, the most the agent takes",
				 max >> 10);
	}
	return r < 0 ? error_set(err, r, "config.json: cannot rewrite %s", what) : 0;
}
