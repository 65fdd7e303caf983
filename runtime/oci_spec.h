/*
 * config.json, the OCI runtime spec (1.0.x through 1.3.x), parsed into typed structs and
 * validated completely before anything starts: `stratus create` refuses a bundle here, with one
 * line naming the JSON path ("config.json: process.env[3]: must be a string \"KEY=VALUE\""),
 * rather than half-way through booting a VM. Unknown keys are ignored (forward compatibility);
 * duplicate keys are an error (two parsers must never see two different configs). Every count
 * is bounded, the file to OCI_SPEC_MAX_BYTES, its values to OCI_SPEC_MAX_VALUES and nesting to
 * OCI_SPEC_MAX_DEPTH, so a hostile
 * config cannot make us allocate without limit or recurse off the stack.
 *
 * All memory of a struct oci_spec lives in one arena released by oci_spec_free().
 */
#ifndef STRATUS_RUNTIME_OCI_SPEC_H
#define STRATUS_RUNTIME_OCI_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define OCI_SPEC_MAX_BYTES   (4u << 20)
#define OCI_SPEC_MAX_DEPTH   64
#define OCI_SPEC_MAX_ENTRIES 4096      /* per array or string map */
#define OCI_SPEC_MAX_VALUES  (1 << 18) /* JSON values in the whole file */

/* A NULL-terminated string list with its count. */
struct oci_strv {
	size_t n;
	char **v;
};

/* A string map (annotations, sysctl), in file order. */
struct oci_kv {
	char *key;
	char *value;
};

struct oci_map {
	size_t n;
	struct oci_kv *kv;
};

struct oci_mount {
	char *destination;
	char *type;   /* NULL when absent */
	char *source; /* NULL when absent */
	struct oci_strv options;
};

struct oci_user {
	uint32_t uid, gid;
	bool has_umask;
	uint32_t umask;
	size_t n_additional_gids;
	uint32_t *additional_gids;
};

/* Capability sets as bit masks of CAP_* numbers (0 .. OCI_CAP_LAST). */
#define OCI_CAP_LAST 40
struct oci_capabilities {
	uint64_t bounding, effective, inheritable, permitted, ambient;
};

struct oci_rlimit {
	int type; /* RLIMIT_* from <sys/resource.h> */
	uint64_t hard, soft;
};

struct oci_process {
	bool terminal;
	bool has_console_size;
	uint32_t console_height, console_width;
	struct oci_user user;
	struct oci_strv args;
	struct oci_strv env;
	char *cwd;
	struct oci_capabilities caps;
	size_t n_rlimits;
	struct oci_rlimit *rlimits;
	bool no_new_privileges;
	bool has_oom_score_adj;
	int oom_score_adj;
	char *apparmor_profile; /* stored, not applied: the VM is the boundary */
	char *selinux_label;
};

enum oci_hook_kind {
	OCI_HOOK_PRESTART,
	OCI_HOOK_CREATE_RUNTIME,
	OCI_HOOK_CREATE_CONTAINER,
	OCI_HOOK_START_CONTAINER,
	OCI_HOOK_POSTSTART,
	OCI_HOOK_POSTSTOP,
	OCI_HOOK_KINDS
};

struct oci_hook {
	char *path;
	struct oci_strv args;
	struct oci_strv env;
	unsigned int timeout; /* seconds, 0 when none */
};

struct oci_hook_list {
	size_t n;
	struct oci_hook *hooks;
};

enum oci_namespace_type {
	OCI_NS_PID,
	OCI_NS_NETWORK,
	OCI_NS_MOUNT,
	OCI_NS_IPC,
	OCI_NS_UTS,
	OCI_NS_USER,
	OCI_NS_CGROUP,
	OCI_NS_TIME,
	OCI_NS_TYPES
};

struct oci_namespace {
	enum oci_namespace_type type;
	char *path; /* NULL: a new namespace */
};

struct oci_id_mapping {
	uint32_t container_id, host_id, size;
};

/* Resource values keep the spec's "absent" distinct from 0; -1 means unlimited where allowed. */
struct oci_resources {
	bool has_memory_limit, has_memory_reservation, has_memory_swap;
	int64_t memory_limit, memory_reservation, memory_swap;
	bool has_cpu_shares, has_cpu_quota, has_cpu_period;
	uint64_t cpu_shares, cpu_period;
	int64_t cpu_quota;
	char *cpu_cpus, *cpu_mems;
	bool has_pids_limit;
	int64_t pids_limit;
};

enum oci_seccomp_action {
	OCI_SECCOMP_KILL,
	OCI_SECCOMP_KILL_PROCESS,
	OCI_SECCOMP_KILL_THREAD,
	OCI_SECCOMP_TRAP,
	OCI_SECCOMP_ERRNO,
	OCI_SECCOMP_TRACE,
	OCI_SECCOMP_ALLOW,
	OCI_SECCOMP_LOG,
	OCI_SECCOMP_NOTIFY,
};

enum oci_seccomp_op {
	OCI_SECCOMP_NE,
	OCI_SECCOMP_LT,
	OCI_SECCOMP_LE,
	OCI_SECCOMP_EQ,
	OCI_SECCOMP_GE,
	OCI_SECCOMP_GT,
	OCI_SECCOMP_MASKED_EQ,
};

struct oci_seccomp_arg {
	unsigned int index; /* 0 .. 5 */
	uint64_t value, value_two;
	enum oci_seccomp_op op;
};

struct oci_seccomp_rule {
	struct oci_strv names;
	enum oci_seccomp_action action;
	bool has_errno_ret;
	uint32_t errno_ret;
	size_t n_args;
	struct oci_seccomp_arg *args;
};

struct oci_seccomp {
	enum oci_seccomp_action default_action;
	bool has_default_errno_ret;
	uint32_t default_errno_ret;
	struct oci_strv architectures; /* SCMP_ARCH_* names, validated */
	struct oci_strv flags;	       /* SECCOMP_FILTER_FLAG_* names, validated */
	size_t n_rules;
	struct oci_seccomp_rule *rules;
};

struct oci_device {
	char type; /* 'c', 'b', 'u' or 'p' */
	char *path;
	int64_t major, minor;
	bool has_file_mode, has_uid, has_gid;
	uint32_t file_mode, uid, gid;
};

struct oci_linux {
	size_t n_namespaces;
	struct oci_namespace *namespaces;
	size_t n_uid_mappings, n_gid_mappings;
	struct oci_id_mapping *uid_mappings, *gid_mappings;
	struct oci_map sysctl;
	struct oci_resources resources;
	char *cgroups_path;
	struct oci_seccomp *seccomp; /* NULL when absent */
	struct oci_strv masked_paths, readonly_paths;
	size_t n_devices;
	struct oci_device *devices;
	char *mount_label;
	char *rootfs_propagation;
};

struct oci_spec {
	char *oci_version;
	unsigned int version_minor; /* 0 .. 3: the 1.x the config declares */
	char *root_path;	    /* absolute: resolved against the bundle */
	bool root_readonly;
	size_t n_mounts;
	struct oci_mount *mounts;
	struct oci_process process;
	char *hostname, *domainname;
	struct oci_map annotations;
	struct oci_hook_list hooks[OCI_HOOK_KINDS];
	bool has_linux;
	struct oci_linux linux_;
	struct oci_arena *arena; /* owns everything above */
};

/*
 * Read and validate <bundle_dir>/config.json: 0 and *out (release with oci_spec_free), or a
 * negative errno with the one-line reason in err.
 */
int oci_spec_load(const char *bundle_dir, struct oci_spec **out, struct error *err);

/*
 * The same from memory (json need not be NUL-terminated). bundle_dir resolves a relative
 * root.path and is where root.path must be a directory; NULL skips that check (fuzzing,
 * validating a config without its bundle).
 */
int oci_spec_parse(const char *json, size_t len, const char *bundle_dir, struct oci_spec **out,
		   struct error *err);

void oci_spec_free(struct oci_spec *spec);

/* The annotation's value, or NULL. */
const char *oci_spec_annotation(const struct oci_spec *spec, const char *key);

/* Names for messages and for the agent: "pid", "CAP_KILL", "prestart"... */
const char *oci_namespace_name(enum oci_namespace_type type);
const char *oci_capability_name(unsigned int cap);
const char *oci_hook_kind_name(enum oci_hook_kind kind);

/*
 * What `stratus spec` writes: runc's default config.json (`runc spec`, `--rootless`), as a
 * malloc'd NUL-terminated string in *out. 0 or a negative errno.
 */
int oci_spec_default_json(bool rootless, char **out);

#endif
