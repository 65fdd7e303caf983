/*
 * config.json parsing and validation (runtime/oci_spec.h) as a user of `stratus create` sees it:
 * a full valid config read back field by field, runc's default (`stratus spec`) round-tripped,
 * VM sizing, and a corpus of broken configs under data/oci/broken/, each NAME.json with the
 * exact one-line error in NAME.err (@BUNDLE@ stands for the bundle directory). Run with
 * OCI_SPEC_REGEN=1 to rewrite the .err files from what the parser says (then review the diff).
 * The two inputs too big to ship (1 MiB of nesting, a 5 MiB file) are generated here.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "oci_spec.h"
#include "vm_sizing.h"

struct bundle {
	char dir[64];
	char config[96];
	char rootfs[96];
};

static void bundle_make(struct bundle *b, const char *json, size_t len)
{
	FILE *f;

	strcpy(b->dir, "/tmp/stratus-oci-XXXXXX");
	assert_non_null(mkdtemp(b->dir));
	snprintf(b->config, sizeof(b->config), "%s/config.json", b->dir);
	snprintf(b->rootfs, sizeof(b->rootfs), "%s/rootfs", b->dir);
	assert_int_equal(mkdir(b->rootfs, 0755), 0);
	f = fopen(b->config, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(json, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void bundle_remove(struct bundle *b)
{
	unlink(b->config);
	rmdir(b->rootfs);
	rmdir(b->dir);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

/* Load json as a bundle's config.json; the error message (empty on success) into msg. */
static int load_json(const char *json, size_t len, struct oci_spec **spec, char *msg,
		     char *bundle_dir)
{
	struct error err = { 0 };
	struct bundle b;
	int r;

	bundle_make(&b, json, len);
	r = oci_spec_load(b.dir, spec, &err);
	snprintf(msg, ERROR_MSG_MAX, "%s", err.msg);
	if (bundle_dir)
		strcpy(bundle_dir, b.dir);
	bundle_remove(&b);
	return r;
}

/* msg with the bundle directory replaced by @BUNDLE@. */
static void generalize(char *msg, const char *dir)
{
	char *at = strstr(msg, dir);
	char tmp[ERROR_MSG_MAX];

	if (!at)
		return;
	snprintf(tmp, sizeof(tmp), "%.*s@BUNDLE@%s", (int)(at - msg), msg, at + strlen(dir));
	strcpy(msg, tmp);
}

static bool check_broken(const char *dir, const char *name, bool regen)
{
	char path[512], msg[ERROR_MSG_MAX], bundle[64];
	struct oci_spec *spec = NULL;
	_cleanup_free_ char *json = NULL, *want = NULL;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	json = slurp(path, &len);
	assert_non_null(json);
	r = load_json(json, len, &spec, msg, bundle);
	generalize(msg, bundle);
	strcpy(path + strlen(path) - strlen(".json"), ".err");
	if (regen) {
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fprintf(f, "%s\n", msg);
		fclose(f);
	}
	want = slurp(path, NULL);
	if (want && *want && want[strlen(want) - 1] == '\n')
		want[strlen(want) - 1] = '\0';
	if (r < 0 && !spec && want && !strcmp(want, msg) && !strchr(msg, '\n'))
		return true;
	print_error("%s: r=%d\n  want: %s\n  got:  %s\n", name, r, want ? want : "(no .err)", msg);
	oci_spec_free(spec);
	return false;
}

static void test_broken_corpus(void **state)
{
	const char *dir = OCI_DATA_DIR "/broken";
	bool regen = getenv("OCI_SPEC_REGEN") != NULL;
	unsigned int files = 0, failed = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		files++;
		failed += !check_broken(dir, de->d_name, regen);
	}
	closedir(d);
	assert_true(files >= 30);
	assert_int_equal(failed, 0);
}

static void expect_error(const char *json, size_t len, const char *want)
{
	struct oci_spec *spec = NULL;
	char msg[ERROR_MSG_MAX];

	assert_true(load_json(json, len, &spec, msg, NULL) < 0);
	assert_null(spec);
	assert_string_equal(msg, want);
}

static void test_megabyte_of_nesting(void **state)
{
	const char *head = "{\"ociVersion\": \"1.0.0\", \"x\": ";
	size_t depth = 1 << 20, n = strlen(head);
	_cleanup_free_ char *json = malloc(n + 2 * depth + 2);

	(void)state;
	assert_non_null(json);
	memcpy(json, head, n);
	memset(json + n, '[', depth);
	memset(json + n + depth, ']', depth);
	strcpy(json + n + 2 * depth, "}");
	expect_error(json, strlen(json), "config.json: nested deeper than 64 levels");
}

static void test_five_megabyte_file(void **state)
{
	size_t size = 5u << 20;
	_cleanup_free_ char *json = malloc(size);
	const char *body = "{\"ociVersion\": \"1.0.0\"}";

	(void)state;
	assert_non_null(json);
	memset(json, ' ', size);
	memcpy(json + size - strlen(body), body, strlen(body));
	expect_error(json, size, "config.json: larger than 4194304 bytes");
}

static void test_too_many_values(void **state)
{
	const char *head = "{\"ociVersion\": \"1.0.0\", \"x\": [";
	size_t n = strlen(head), count = (1 << 18) + 1;
	_cleanup_free_ char *json = malloc(n + 2 * count + 2);

	(void)state;
	assert_non_null(json);
	memcpy(json, head, n);
	for (size_t i = 0; i < count; i++)
		memcpy(json + n + 2 * i, "0,", 2);
	strcpy(json + n + 2 * count - 1, "]}");
	expect_error(json, strlen(json), "config.json: more than 262144 JSON values");
}

static void test_missing_bundle(void **state)
{
	struct oci_spec *spec = NULL;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(oci_spec_load("/nonexistent/bundle", &spec, &err), -ENOENT);
	assert_string_equal(err.msg, "bundle /nonexistent/bundle: No such file or directory");
}

static struct oci_spec *load_file(const char *path, char *bundle_dir)
{
	struct oci_spec *spec = NULL;
	char msg[ERROR_MSG_MAX];
	size_t len;
	_cleanup_free_ char *json = slurp(path, &len);

	assert_non_null(json);
	if (load_json(json, len, &spec, msg, bundle_dir) < 0)
		fail_msg("%s: %s", path, msg);
	return spec;
}

static void check_valid_process(const struct oci_process *p)
{
	assert_true(p->terminal);
	assert_true(p->has_console_size);
	assert_int_equal(p->console_height, 25);
	assert_int_equal(p->console_width, 80);
	assert_int_equal(p->user.uid, 1000);
	assert_int_equal(p->user.gid, 1000);
	assert_true(p->user.has_umask);
	assert_int_equal(p->user.umask, 022);
	assert_int_equal(p->user.n_additional_gids, 3);
	assert_int_equal(p->user.additional_gids[2], 4294967295u);
	assert_int_equal(p->args.n, 3);
	assert_string_equal(p->args.v[2], "echo hi");
	assert_null(p->args.v[3]);
	assert_int_equal(p->env.n, 3);
	assert_string_equal(p->env.v[2], "EMPTY=");
	assert_string_equal(p->cwd, "/home/user");
	assert_int_equal(p->caps.bounding,
			 (1ull << 29) | (1ull << 5) | (1ull << 10) | (1ull << 40));
	assert_int_equal(p->caps.effective, 1ull << 5);
	assert_int_equal(p->caps.inheritable, 0);
	assert_int_equal(p->caps.permitted, (1ull << 5) | 1);
	assert_int_equal(p->caps.ambient, 1ull << 5);
	assert_int_equal(p->n_rlimits, 2);
	assert_int_equal(p->rlimits[0].type, RLIMIT_NOFILE);
	assert_int_equal(p->rlimits[0].hard, 1024);
	assert_int_equal(p->rlimits[0].soft, 512);
	assert_int_equal(p->rlimits[1].type, RLIMIT_CORE);
	assert_true(p->rlimits[1].hard == UINT64_MAX);
	assert_true(p->no_new_privileges);
	assert_true(p->has_oom_score_adj);
	assert_int_equal(p->oom_score_adj, -1000);
	assert_string_equal(p->apparmor_profile, "acme_secure_profile");
	assert_non_null(p->selinux_label);
}

static void check_valid_hooks(const struct oci_spec *s)
{
	for (int k = 0; k < OCI_HOOK_KINDS; k++)
		assert_true(s->hooks[k].n >= 1);
	assert_string_equal(s->hooks[OCI_HOOK_PRESTART].hooks[0].path, "/usr/bin/fix-mounts");
	assert_int_equal(s->hooks[OCI_HOOK_PRESTART].hooks[0].args.n, 2);
	assert_string_equal(s->hooks[OCI_HOOK_PRESTART].hooks[0].env.v[0], "key1=value1");
	assert_int_equal(s->hooks[OCI_HOOK_CREATE_CONTAINER].hooks[0].timeout, 5);
	assert_int_equal(s->hooks[OCI_HOOK_CREATE_RUNTIME].hooks[0].timeout, 0);
	assert_int_equal(s->hooks[OCI_HOOK_POSTSTOP].n, 2);
	assert_string_equal(oci_hook_kind_name(OCI_HOOK_START_CONTAINER), "startContainer");
}

static void check_valid_linux(const struct oci_linux *l)
{
	const struct oci_resources *res = &l->resources;
	const struct oci_seccomp *sc = l->seccomp;

	assert_int_equal(l->n_namespaces, 8);
	assert_int_equal(l->namespaces[1].type, OCI_NS_NETWORK);
	assert_string_equal(l->namespaces[1].path, "/var/run/netns/x");
	assert_null(l->namespaces[0].path);
	assert_int_equal(l->namespaces[7].type, OCI_NS_TIME);
	assert_int_equal(l->n_uid_mappings, 1);
	assert_int_equal(l->uid_mappings[0].host_id, 1000);
	assert_int_equal(l->gid_mappings[0].size, 32000);
	assert_int_equal(l->sysctl.n, 2);
	assert_string_equal(l->sysctl.kv[1].key, "net.core.somaxconn");
	assert_true(res->has_memory_limit && res->memory_limit == 536870912);
	assert_true(res->has_memory_swap && res->memory_swap == -1);
	assert_true(res->has_cpu_quota && res->cpu_quota == 150000);
	assert_true(res->has_cpu_period && res->cpu_period == 100000);
	assert_int_equal(res->cpu_shares, 1024);
	assert_string_equal(res->cpu_cpus, "0-1");
	assert_true(res->has_pids_limit && res->pids_limit == 32771);
	assert_string_equal(l->cgroups_path, "/myRuntime/myContainer");
	assert_non_null(sc);
	assert_int_equal(sc->default_action, OCI_SECCOMP_ERRNO);
	assert_int_equal(sc->default_errno_ret, 1);
	assert_int_equal(sc->architectures.n, 2);
	assert_int_equal(sc->n_rules, 3);
	assert_int_equal(sc->rules[1].n_args, 2);
	assert_int_equal(sc->rules[1].args[1].index, 5);
	assert_true(sc->rules[1].args[1].value == UINT64_MAX);
	assert_int_equal(sc->rules[1].args[1].op, OCI_SECCOMP_MASKED_EQ);
	assert_true(sc->rules[2].has_errno_ret && sc->rules[2].errno_ret == 38);
	assert_string_equal(l->masked_paths.v[0], "/proc/kcore");
	assert_string_equal(l->readonly_paths.v[0], "/proc/sys");
	assert_int_equal(l->n_devices, 1);
	assert_int_equal(l->devices[0].type, 'c');
	assert_int_equal(l->devices[0].minor, 229);
	assert_int_equal(l->devices[0].file_mode, 0666);
	assert_string_equal(l->rootfs_propagation, "rslave");
}

static void test_valid_full(void **state)
{
	char bundle[64], rootfs[128];
	struct oci_spec *s = load_file(OCI_DATA_DIR "/valid.json", bundle);

	(void)state;
	assert_string_equal(s->oci_version, "1.1.0");
	assert_int_equal(s->version_minor, 1);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
	assert_string_equal(s->root_path, rootfs);
	assert_true(s->root_readonly);
	assert_int_equal(s->n_mounts, 2);
	assert_string_equal(s->mounts[1].destination, "/data");
	assert_string_equal(s->mounts[1].options.v[1], "ro");
	assert_null(s->mounts[0].options.v);
	assert_string_equal(s->hostname, "slartibartfast");
	assert_string_equal(s->domainname, "example.org");
	assert_string_equal(oci_spec_annotation(s, "com.example.key1"), "value1");
	assert_null(oci_spec_annotation(s, "absent"));
	check_valid_process(&s->process);
	check_valid_hooks(s);
	assert_true(s->has_linux);
	check_valid_linux(&s->linux_);
	oci_spec_free(s);
}

static void check_default(const struct oci_spec *s, bool rootless)
{
	assert_string_equal(s->oci_version, "1.2.0");
	assert_true(s->process.terminal);
	assert_int_equal(s->process.args.n, 1);
	assert_string_equal(s->process.args.v[0], "sh");
	assert_string_equal(s->process.cwd, "/");
	assert_int_equal(s->process.caps.bounding, (1ull << 29) | (1ull << 5) | (1ull << 10));
	assert_int_equal(s->process.n_rlimits, 1);
	assert_int_equal(s->process.rlimits[0].type, RLIMIT_NOFILE);
	assert_int_equal(s->process.rlimits[0].soft, 1024);
	assert_true(s->process.no_new_privileges);
	assert_true(s->root_readonly);
	assert_int_equal(s->n_mounts, 7);
	assert_string_equal(s->mounts[5].destination, "/sys");
	assert_string_equal(s->mounts[5].type, rootless ? "none" : "sysfs");
	assert_int_equal(s->mounts[2].options.n, rootless ? 5 : 6);
	assert_int_equal(s->linux_.n_namespaces, 6);
	assert_int_equal(s->linux_.namespaces[5].type, rootless ? OCI_NS_USER : OCI_NS_CGROUP);
	assert_int_equal(s->linux_.n_uid_mappings, rootless ? 1 : 0);
	assert_int_equal(s->linux_.masked_paths.n, 11);
	assert_int_equal(s->linux_.readonly_paths.n, 5);
}

static void test_default_round_trip(void **state)
{
	(void)state;
	for (int rootless = 0; rootless < 2; rootless++) {
		_cleanup_free_ char *json = NULL;
		struct oci_spec *spec = NULL;
		char msg[ERROR_MSG_MAX];

		assert_int_equal(oci_spec_default_json(rootless, &json), 0);
		if (load_json(json, strlen(json), &spec, msg, NULL) < 0)
			fail_msg("default (rootless %d): %s", rootless, msg);
		check_default(spec, rootless);
		oci_spec_free(spec);
	}
}

static void test_parse_without_bundle(void **state)
{
	const char *json = "{\"ociVersion\": \"1.3.0-rc.1\", \"root\": {\"path\": \"/nowhere\"},"
			   " \"process\": {\"user\": {\"uid\": 0, \"gid\": 0}, \"args\": [\"x\"],"
			   " \"cwd\": \"/\"}}";
	struct oci_spec *spec = NULL;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(oci_spec_parse(json, strlen(json), NULL, &spec, &err), 0);
	assert_int_equal(spec->version_minor, 3);
	assert_string_equal(spec->root_path, "/nowhere");
	assert_false(spec->has_linux);
	oci_spec_free(spec);
}

/* Sizing of a minimal config with the given linux.resources / annotations JSON fragments. */
static int size_of(const char *resources, const char *annotations, unsigned int *vcpus,
		   uint64_t *mem, char *msg)
{
	char json[1024];
	struct oci_spec *spec = NULL;
	struct error err = { 0 };
	int r;

	snprintf(json, sizeof(json),
		 "{\"ociVersion\": \"1.0.0\", \"root\": {\"path\": \"/\"}, \"process\": {\"user\":"
		 " {\"uid\": 0, \"gid\": 0}, \"args\": [\"x\"], \"cwd\": \"/\"}, \"linux\":"
		 " {\"resources\": {%s}}, \"annotations\": {%s}}",
		 resources, annotations);
	assert_int_equal(oci_spec_parse(json, strlen(json), NULL, &spec, &err), 0);
	r = oci_spec_vm_size(spec, vcpus, mem, &err);
	strcpy(msg, err.msg);
	oci_spec_free(spec);
	return r;
}

static void test_vm_sizing(void **state)
{
	char msg[ERROR_MSG_MAX];
	unsigned int vcpus;
	uint64_t mem;

	(void)state;
	assert_int_equal(size_of("", "", &vcpus, &mem, msg), 0);
	assert_int_equal(vcpus, 1);
	assert_int_equal(mem, 128);
	assert_int_equal(size_of("\"cpu\": {\"quota\": 150000, \"period\": 100000},"
				 " \"memory\": {\"limit\": 536870913}",
				 "", &vcpus, &mem, msg),
			 0);
	assert_int_equal(vcpus, 2);
	assert_int_equal(mem, 128 + 513);
	assert_int_equal(size_of("\"cpu\": {\"quota\": -1, \"period\": 100000},"
				 " \"memory\": {\"limit\": -1}",
				 "", &vcpus, &mem, msg),
			 0);
	assert_int_equal(vcpus, 1);
	assert_int_equal(mem, 128);
	assert_int_equal(
		size_of("\"cpu\": {\"quota\": 100000000, \"period\": 1000}", "", &vcpus, &mem, msg),
		0);
	assert_int_equal(vcpus, 64);
	/* The annotations win over what resources would give. */
	assert_int_equal(
		size_of("\"cpu\": {\"quota\": 150000, \"period\": 100000},"
			" \"memory\": {\"limit\": 536870912}",
			"\"io.stratus.vm.vcpus\": \"4\", \"io.stratus.vm.memory_mb\": \"2048\"",
			&vcpus, &mem, msg),
		0);
	assert_int_equal(vcpus, 4);
	assert_int_equal(mem, 2048);
	assert_int_equal(size_of("", "\"io.stratus.vm.vcpus\": \"0\"", &vcpus, &mem, msg), -EINVAL);
	assert_string_equal(msg, "config.json: annotations[\"io.stratus.vm.vcpus\"]: must be an "
				 "integer from 1 to 64");
	assert_int_equal(size_of("", "\"io.stratus.vm.memory_mb\": \"12k\"", &vcpus, &mem, msg),
			 -EINVAL);
	assert_string_equal(msg, "config.json: annotations[\"io.stratus.vm.memory_mb\"]: must be "
				 "an integer from 64 to 262144");
	assert_int_equal(
		size_of("\"memory\": {\"limit\": 9223372036854775807}", "", &vcpus, &mem, msg),
		-EINVAL);
	assert_string_equal(msg, "config.json: linux.resources.memory.limit: more than the 262016 "
				 "MiB a microVM can have");
	/* A CRI sandbox is sized for its pod: containerd's pod totals stand in for resources. */
#define SANDBOX "\"io.kubernetes.cri.container-type\": \"sandbox\", "
	assert_int_equal(size_of("\"cpu\": {\"quota\": 50000, \"period\": 100000}",
				 SANDBOX "\"io.kubernetes.cri.sandbox-cpu-quota\": \"250000\","
					 " \"io.kubernetes.cri.sandbox-cpu-period\": \"100000\","
					 " \"io.kubernetes.cri.sandbox-memory\": \"268435456\"",
				 &vcpus, &mem, msg),
			 0);
	assert_int_equal(vcpus, 3);
	assert_int_equal(mem, 128 + 256);
	/* unset (0, -1, as containerd writes for a pod without limits): resources as before */
	assert_int_equal(size_of("\"memory\": {\"limit\": 1048576}",
				 SANDBOX "\"io.kubernetes.cri.sandbox-cpu-quota\": \"-1\","
					 " \"io.kubernetes.cri.sandbox-cpu-period\": \"100000\","
					 " \"io.kubernetes.cri.sandbox-memory\": \"0\"",
				 &vcpus, &mem, msg),
			 0);
	assert_int_equal(vcpus, 1);
	assert_int_equal(mem, 129);
	/* a pod member, or no CRI type at all: the annotations are not the container's */
	assert_int_equal(size_of("",
				 "\"io.kubernetes.cri.container-type\": \"container\","
				 " \"io.kubernetes.cri.sandbox-memory\": \"268435456\"",
				 &vcpus, &mem, msg),
			 0);
	assert_int_equal(mem, 128);
	/* the stratus annotations still win */
	assert_int_equal(size_of("",
				 SANDBOX "\"io.kubernetes.cri.sandbox-memory\": \"268435456\","
					 " \"io.stratus.vm.memory_mb\": \"1024\"",
				 &vcpus, &mem, msg),
			 0);
	assert_int_equal(mem, 1024);
	assert_int_equal(size_of("", SANDBOX "\"io.kubernetes.cri.sandbox-memory\": \"lots\"",
				 &vcpus, &mem, msg),
			 -EINVAL);
	assert_string_equal(msg, "config.json: annotations[\"io.kubernetes.cri.sandbox-memory\"]: "
				 "must be an integer");
	assert_int_equal(size_of("",
				 SANDBOX "\"io.kubernetes.cri.sandbox-memory\":"
					 " \"9223372036854775807\"",
				 &vcpus, &mem, msg),
			 -EINVAL);
	assert_string_equal(msg, "config.json: annotations[\"io.kubernetes.cri.sandbox-memory\"]: "
				 "more than the 262016 MiB a microVM can have");
#undef SANDBOX
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_full),
		cmocka_unit_test(test_default_round_trip),
		cmocka_unit_test(test_parse_without_bundle),
		cmocka_unit_test(test_broken_corpus),
		cmocka_unit_test(test_megabyte_of_nesting),
		cmocka_unit_test(test_five_megabyte_file),
		cmocka_unit_test(test_too_many_values),
		cmocka_unit_test(test_missing_bundle),
		cmocka_unit_test(test_vm_sizing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
