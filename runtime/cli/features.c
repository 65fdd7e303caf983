/*
 * stratus features: what this runtime supports, as JSON per the runtime-spec's features
 * document (features.md): the OCI versions config.json may declare, hooks, mount options,
 * and under "linux" what the agent applies inside the VM. Annotations name the stratus
 * ones (VM sizing).
 */
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "stratus_cli.h"
#include "oci_spec.h"
#include "vm_sizing.h"

#define S(g, s) yajl_gen_string(g, (const unsigned char *)(s), strlen(s))

static void strings(yajl_gen g, const char *key, const char *const *v)
{
	S(g, key);
	yajl_gen_array_open(g);
	for (; *v; v++)
		S(g, *v);
	yajl_gen_array_close(g);
}

static void flag(yajl_gen g, const char *key, bool value)
{
	S(g, key);
	yajl_gen_bool(g, value);
}

static void gen_linux(yajl_gen g)
{
	static const char *const actions[] = {
		"SCMP_ACT_ALLOW",	 "SCMP_ACT_ERRNO",	 "SCMP_ACT_KILL",
		"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
		"SCMP_ACT_TRAP",	 "SCMP_ACT_TRACE",	 NULL
	};
	static const char *const ops[] = { "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
					   "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
					   "SCMP_CMP_NE", NULL };
	static const char *const archs[] = { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
					     NULL };

	S(g, "linux");
	yajl_gen_map_open(g);
	S(g, "namespaces");
	yajl_gen_array_open(g);
	for (int ns = 0; ns < OCI_NS_TYPES; ns++)
		S(g, oci_namespace_name(ns));
	yajl_gen_array_close(g);
	S(g, "capabilities");
	yajl_gen_array_open(g);
	for (unsigned int cap = 0; cap <= OCI_CAP_LAST; cap++)
		S(g, oci_capability_name(cap));
	yajl_gen_array_close(g);
	S(g, "cgroup");
	yajl_gen_map_open(g);
	flag(g, "v1", false);
	flag(g, "v2", true);
	flag(g, "systemd", false);
	flag(g, "systemdUser", false);
	yajl_gen_map_close(g);
	S(g, "seccomp");
	yajl_gen_map_open(g);
	flag(g, "enabled", true);
	strings(g, "actions", actions);
	strings(g, "operators", ops);
	strings(g, "archs", archs);
	yajl_gen_map_close(g);
	S(g, "apparmor");
	yajl_gen_map_open(g);
	flag(g, "enabled", false);
	yajl_gen_map_close(g);
	S(g, "selinux");
	yajl_gen_map_open(g);
	flag(g, "enabled", false);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

int cli_features(struct cli_global *g)
{
	static const char *const hooks[] = { "prestart",
					     "createRuntime",
					     "createContainer",
					     "startContainer",
					     "poststart",
					     "poststop",
					     NULL };
	static const char *const mount_options[] = { "ro",	    "rw",
						     "nosuid",	    "suid",
						     "nodev",	    "dev",
						     "noexec",	    "exec",
						     "sync",	    "async",
						     "remount",	    "mand",
						     "nomand",	    "dirsync",
						     "atime",	    "noatime",
						     "diratime",    "nodiratime",
						     "relatime",    "norelatime",
						     "strictatime", "nostrictatime",
						     "private",	    "rprivate",
						     "shared",	    "rshared",
						     "slave",	    "rslave",
						     "unbindable",  "runbindable",
						     NULL };
	struct error err = { 0 };
	const unsigned char *buf;
	yajl_gen gen;
	size_t len;

	if (cli_need_args("features", g->argc - 1, 0, 0, &err) < 0)
		return cli_fail(g, &err);
	gen = yajl_gen_alloc(NULL);
	if (!gen) {
		error_set(&err, -ENOMEM, "out of memory");
		return cli_fail(g, &err);
	}
	yajl_gen_config(gen, yajl_gen_beautify, 1);
	yajl_gen_config(gen, yajl_gen_indent_string, "    ");
	yajl_gen_map_open(gen);
	S(gen, "ociVersionMin");
	S(gen, "1.0.0");
	S(gen, "ociVersionMax");
	S(gen, "1.3.0");
	strings(gen, "hooks", hooks);
	strings(gen, "mountOptions", mount_options);
	gen_linux(gen);
	S(gen, "annotations");
	yajl_gen_map_open(gen);
	S(gen, "io.stratus.runtime");
	S(gen, "stratus " STRATUS_VERSION ": one KVM microVM per container");
	S(gen, VM_SIZE_ANNOTATION_VCPUS);
	S(gen, "vCPUs of the container's VM");
	S(gen, VM_SIZE_ANNOTATION_MEMORY);
	S(gen, "memory of the container's VM, MiB");
	yajl_gen_map_close(gen);
	yajl_gen_map_close(gen);
	yajl_gen_get_buf(gen, &buf, &len);
	printf("%.*s\n", (int)len, (const char *)buf);
	yajl_gen_free(gen);
	return 0;
}
