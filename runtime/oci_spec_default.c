/*
 * oci_spec_default_json(): the config.json `stratus spec` writes, the same as `runc spec`
 * (runc 1.2: ociVersion 1.2.0, `sh` on a terminal, the three default capabilities, NOFILE 1024,
 * proc/dev/devpts/shm/mqueue/sysfs/cgroup mounts, masked and read-only /proc paths) and, with
 * rootless, runc's ToRootless() changes: a user namespace mapping the caller to root, no network
 * namespace, /sys bind-mounted, no uid=/gid= mount options, no resources. Written with yajl_gen.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "oci_spec.h"

static const char *const default_caps[] = { "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE",
					    NULL };
static const char *const default_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", NULL
};
static const char *const masked_paths[] = {
	"/proc/acpi",	       "/proc/asound",
	"/proc/kcore",	       "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats",   "/proc/sched_debug",
	"/sys/firmware",       "/sys/devices/virtual/powercap",
	"/proc/scsi",	       NULL,
};
static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static const struct {
	const char *destination, *type, *source;
	const char *options[8];
} default_mounts[] = {
	{ "/proc", "proc", "proc", { NULL } },
	{ "/dev", "tmpfs", "tmpfs", { "nosuid", "strictatime", "mode=755", "size=65536k" } },
	{ "/dev/pts",
	  "devpts",
	  "devpts",
	  { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" } },
	{ "/dev/shm", "tmpfs", "shm", { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" } },
	{ "/dev/mqueue", "mqueue", "mqueue", { "nosuid", "noexec", "nodev" } },
	{ "/sys", "sysfs", "sysfs", { "nosuid", "noexec", "nodev", "ro" } },
	{ "/sys/fs/cgroup", "cgroup", "cgroup", { "nosuid", "noexec", "nodev", "relatime", "ro" } },
};

static void gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_key_str(yajl_gen g, const char *key, const char *value)
{
	gen_str(g, key);
	gen_str(g, value);
}

static void gen_key_int(yajl_gen g, const char *key, long long value)
{
	gen_str(g, key);
	yajl_gen_integer(g, value);
}

/* key: [strings of list, NULL-terminated], skipping uid=/gid= options when rootless. */
static void gen_strv(yajl_gen g, const char *key, const char *const *list, bool drop_ids)
{
	gen_str(g, key);
	yajl_gen_array_open(g);
	for (; *list; list++)
		if (!drop_ids || (strncmp(*list, "uid=", 4) && strncmp(*list, "gid=", 4)))
			gen_str(g, *list);
	yajl_gen_array_close(g);
}

static void gen_process(yajl_gen g)
{
	static const char *const args[] = { "sh", NULL };

	gen_str(g, "process");
	yajl_gen_map_open(g);
	gen_str(g, "terminal");
	yajl_gen_bool(g, 1);
	gen_str(g, "user");
	yajl_gen_map_open(g);
	gen_key_int(g, "uid", 0);
	gen_key_int(g, "gid", 0);
	yajl_gen_map_close(g);
	gen_strv(g, "args", args, false);
	gen_strv(g, "env", default_env, false);
	gen_key_str(g, "cwd", "/");
	gen_str(g, "capabilities");
	yajl_gen_map_open(g);
	gen_strv(g, "bounding", default_caps, false);
	gen_strv(g, "effective", default_caps, false);
	gen_strv(g, "permitted", default_caps, false);
	yajl_gen_map_close(g);
	gen_str(g, "rlimits");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	gen_key_str(g, "type", "RLIMIT_NOFILE");
	gen_key_int(g, "hard", 1024);
	gen_key_int(g, "soft", 1024);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	gen_str(g, "noNewPrivileges");
	yajl_gen_bool(g, 1);
	yajl_gen_map_close(g);
}

static void gen_mounts(yajl_gen g, bool rootless)
{
	static const char *const sys_bind[] = { "rbind", "nosuid", "noexec", "nodev", "ro", NULL };

	gen_str(g, "mounts");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < ARRAY_SIZE(default_mounts); i++) {
		bool sys = rootless && !strcmp(default_mounts[i].destination, "/sys");

		yajl_gen_map_open(g);
		gen_key_str(g, "destination", default_mounts[i].destination);
		gen_key_str(g, "type", sys ? "none" : default_mounts[i].type);
		gen_key_str(g, "source", sys ? "/sys" : default_mounts[i].source);
		if (sys)
			gen_strv(g, "options", sys_bind, false);
		else if (default_mounts[i].options[0])
			gen_strv(g, "options", default_mounts[i].options, rootless);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

static void gen_mapping(yajl_gen g, const char *key, unsigned int host_id)
{
	gen_str(g, key);
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	gen_key_int(g, "containerID", 0);
	gen_key_int(g, "hostID", host_id);
	gen_key_int(g, "size", 1);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
}

static void gen_linux(yajl_gen g, bool rootless)
{
	static const char *const ns[] = { "pid", "network", "ipc", "uts", "mount", "cgroup" };

	gen_str(g, "linux");
	yajl_gen_map_open(g);
	if (rootless) {
		gen_mapping(g, "uidMappings", geteuid());
		gen_mapping(g, "gidMappings", getegid());
	} else {
		gen_str(g, "resources");
		yajl_gen_map_open(g);
		gen_str(g, "devices");
		yajl_gen_array_open(g);
		yajl_gen_map_open(g);
		gen_str(g, "allow");
		yajl_gen_bool(g, 0);
		gen_key_str(g, "access", "rwm");
		yajl_gen_map_close(g);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	gen_str(g, "namespaces");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		if (rootless && !strcmp(ns[i], "network"))
			continue;
		yajl_gen_map_open(g);
		gen_key_str(g, "type", ns[i]);
		yajl_gen_map_close(g);
	}
	if (rootless) {
		yajl_gen_map_open(g);
		gen_key_str(g, "type", "user");
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	gen_strv(g, "maskedPaths", masked_paths, false);
	gen_strv(g, "readonlyPaths", readonly_paths, false);
	yajl_gen_map_close(g);
}

int oci_spec_default_json(bool rootless, char **out)
{
	const unsigned char *buf;
	size_t len;
	yajl_gen g = yajl_gen_alloc(NULL);
	int r = -ENOMEM;

	*out = NULL;
	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "\t");
	yajl_gen_map_open(g);
	gen_key_str(g, "ociVersion", "1.2.0");
	gen_process(g);
	gen_str(g, "root");
	yajl_gen_map_open(g);
	gen_key_str(g, "path", "rootfs");
	gen_str(g, "readonly");
	yajl_gen_bool(g, 1);
	yajl_gen_map_close(g);
	gen_key_str(g, "hostname", "stratus");
	gen_mounts(g, rootless);
	gen_linux(g, rootless);
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
		*out = strndup((const char *)buf, len);
		r = *out ? 0 : -ENOMEM;
	} else {
		r = -EIO;
	}
	yajl_gen_free(g);
	return r;
}
