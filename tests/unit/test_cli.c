/*
 * Unit tests for vmm/cli.c: stratus-vmm's command line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"

#define ARGV(...)	      ((char *const[]){ "stratus-vmm", __VA_ARGS__, NULL })
#define ARGC(...)	      ((int)(sizeof((char *[]){ "stratus-vmm", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(opts, err, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), opts, err)

static void test_defaults(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-kernel", "vmlinux"), 0);
	assert_string_equal(o.vm.kernel_path, "vmlinux");
	assert_int_equal(o.vm.mem_size, 128ULL << 20);
	assert_int_equal(o.vm.nr_vcpus, 1);
	assert_int_equal(o.serial, CLI_SERIAL_STDIO);
	assert_int_equal(o.vm.boot_entry, VM_BOOT_AUTO);
	assert_null(o.vm.initrd_path);
	assert_false(o.daemonize);
}

static void test_full_kata_style(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-name", "sandbox-1", "-machine",
			       "type=microvm,dump-guest-core=off,mem-share=on", "-smp", "cpus=2",
			       "-m", "2G", "-kernel", "k", "-initrd", "i", "-append",
			       "console=ttyS0 quiet", "-serial", "file:/tmp/c", "-D", "/tmp/log",
			       "-pidfile", "/tmp/pid", "-daemonize", "-boot-entry", "pvh"),
			 0);
	assert_string_equal(o.name, "sandbox-1");
	assert_int_equal(o.vm.nr_vcpus, 2);
	assert_int_equal(o.vm.mem_size, 2ULL << 30);
	assert_string_equal(o.vm.initrd_path, "i");
	assert_string_equal(o.vm.cmdline, "console=ttyS0 quiet");
	assert_int_equal(o.serial, CLI_SERIAL_FILE);
	assert_string_equal(o.serial_path, "/tmp/c");
	assert_string_equal(o.log_path, "/tmp/log");
	assert_true(o.log_debug);
	assert_string_equal(o.pidfile, "/tmp/pid");
	assert_true(o.daemonize);
	assert_int_equal(o.vm.boot_entry, VM_BOOT_PVH);
	assert_false(o.vm.pit);
	assert_int_equal(PARSE(&o, &err, "-machine", "microvm,pit=on", "-kernel", "k"), 0);
	assert_true(o.vm.pit);
}

static void test_serial_socket(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(
		PARSE(&o, &err, "-kernel", "k", "-serial", "unix:/run/c.sock,server,nowait"), 0);
	assert_int_equal(o.serial, CLI_SERIAL_SOCKET);
	assert_string_equal(o.vm.serial_socket, "/run/c.sock");
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-serial", "unix:/run/d.sock"), 0);
	assert_string_equal(o.vm.serial_socket, "/run/d.sock");
}

static void test_drives_and_disks(void **state)
{
	struct cli_options o;
	struct error err = { 0 };
	const struct vm_device_config *d;

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-device",
			       "virtio-blk-device,drive=root,id=blk0", "-drive",
			       "id=root,file=/img/root.raw,readonly=on,if=none,format=raw",
			       "-drive", "id=data,file=/img/data.raw,direct=on", "-device",
			       "virtio-blk-device,drive=data,serial=SN123"),
			 0);
	assert_int_equal(o.vm.nr_devices, 2);
	d = &o.vm.devices[0];
	assert_int_equal(d->type, VM_DEVICE_VIRTIO_BLK);
	assert_string_equal(d->id, "blk0");
	assert_string_equal(d->path, "/img/root.raw");
	assert_true(d->readonly);
	assert_false(d->direct);
	assert_string_equal(d->serial, "root"); /* defaults to the drive id */
	d = &o.vm.devices[1];
	assert_string_equal(d->path, "/img/data.raw");
	assert_false(d->readonly);
	assert_true(d->direct);
	assert_string_equal(d->serial, "SN123");
}

static void test_vsock(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-device",
			       "vhost-vsock-device,id=vsock0,guest-cid=3,uds-path=/run/v.sock"),
			 0);
	assert_int_equal(o.vm.devices[0].type, VM_DEVICE_VIRTIO_VSOCK);
	assert_int_equal(o.vm.devices[0].guest_cid, 3);
	assert_string_equal(o.vm.devices[0].path, "/run/v.sock");
}

static void test_log_without_file(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-D", "-kernel", "k"), 0);
	assert_true(o.log_debug);
	assert_null(o.log_path);
	assert_string_equal(o.vm.kernel_path, "k");
}

static void expect_error(int argc, char *const argv[], const char *message)
{
	struct cli_options o;
	struct error err = { 0 };

	assert_int_equal(cli_parse(argc, argv, &o, &err), -EINVAL);
	if (!strstr(err.msg, message))
		fail_msg("error '%s' does not contain '%s'", err.msg, message);
	assert_null(strchr(err.msg, '\n'));
}

#define EXPECT_ERROR(message, ...) expect_error(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), message)

/* virtio-fs-device: tag=, source=, readonly=, cache= (docs/virtio-fs.md). */
static void test_virtio_fs(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-device",
			       "virtio-fs-device,id=fs0,tag=rootfs,source=/srv/a", "-device",
			       "virtio-fs-device,tag=data,source=/srv/b,readonly=on,cache=always"),
			 0);
	assert_int_equal(o.vm.nr_devices, 2);
	assert_int_equal(o.vm.devices[0].type, VM_DEVICE_VIRTIO_FS);
	assert_string_equal(o.vm.devices[0].fs_tag, "rootfs");
	assert_string_equal(o.vm.devices[0].path, "/srv/a");
	assert_false(o.vm.devices[0].readonly);
	assert_int_equal(o.vm.devices[0].fs_cache, VM_FS_CACHE_AUTO);
	assert_true(o.vm.devices[1].readonly);
	assert_int_equal(o.vm.devices[1].fs_cache, VM_FS_CACHE_ALWAYS);
	EXPECT_ERROR("virtio-fs-device needs tag=TAG", "-kernel", "k", "-device",
		     "virtio-fs-device,source=/srv");
	/* No source=: a slot (a tag, no share yet: VM templates, docs/snapshots.md). */
	assert_int_equal(
		PARSE(&o, &err, "-kernel", "k", "-device", "virtio-fs-device,id=m0,tag=m0"), 0);
	assert_int_equal(o.vm.nr_devices, 1);
	assert_string_equal(o.vm.devices[0].fs_tag, "m0");
	assert_string_equal(o.vm.devices[0].path, "");
	EXPECT_ERROR("virtio-fs-device: readonly= needs source=DIR (a slot shares nothing)",
		     "-kernel", "k", "-device", "virtio-fs-device,tag=t,readonly=on");
	EXPECT_ERROR("'tag=0123456789012345678901234567890123456': the value must be 1 to 36",
		     "-kernel", "k", "-device",
		     "virtio-fs-device,source=/s,tag=0123456789012345678901234567890123456");
	EXPECT_ERROR("'cache=sometimes': cache must be auto, none or always", "-kernel", "k",
		     "-device", "virtio-fs-device,tag=t,source=/s,cache=sometimes");
	EXPECT_ERROR("virtio-fs-device: unknown property 'drive=d0'", "-kernel", "k", "-device",
		     "virtio-fs-device,tag=t,source=/s,drive=d0");
}

static void test_qmp_uuid_seccomp(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-kernel", "k"), 0);
	assert_string_equal(o.qmp_path, "");
	assert_string_equal(o.uuid, "");
	assert_false(o.disable_seccomp);
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-qmp", "unix:/run/q.sock,server,nowait",
			       "-uuid", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "-disable-seccomp"),
			 0);
	assert_string_equal(o.qmp_path, "/run/q.sock");
	assert_string_equal(o.uuid, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
	assert_true(o.disable_seccomp);
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-qmp", "unix:/q,server=on,wait=off"), 0);
	assert_string_equal(o.qmp_path, "/q");
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-qmp", "unix:rel.sock"), 0);
	assert_string_equal(o.qmp_path, "rel.sock");
	EXPECT_ERROR("-qmp: 'tcp:1:2' must be unix:PATH", "-kernel", "k", "-qmp", "tcp:1:2");
	EXPECT_ERROR("-qmp: 'unix:,server': bad socket path", "-kernel", "k", "-qmp",
		     "unix:,server");
	EXPECT_ERROR("only server,nowait", "-kernel", "k", "-qmp", "unix:/q,server,wait=on");
	EXPECT_ERROR("-qmp: missing value", "-kernel", "k", "-qmp");
	EXPECT_ERROR("-uuid: 'abc' is not a UUID", "-kernel", "k", "-uuid", "abc");
	EXPECT_ERROR("-uuid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0a'", "-kernel", "k", "-uuid",
		     "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0a");
	EXPECT_ERROR("-uuid: '0f1e2d3c_4b5a-6978-8796-a5b4c3d2e1f0'", "-kernel", "k", "-uuid",
		     "0f1e2d3c_4b5a-6978-8796-a5b4c3d2e1f0");
	EXPECT_ERROR("-uuid: 'gf1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'", "-kernel", "k", "-uuid",
		     "gf1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
}

static void test_errors(void **state)
{
	(void)state;
	EXPECT_ERROR("unknown option '-bogus'", "-kernel", "k", "-bogus");
	EXPECT_ERROR("unexpected argument 'stray'", "-kernel", "k", "stray");
	EXPECT_ERROR("-kernel: a kernel image is required", "-m", "128");
	EXPECT_ERROR("-m: missing value", "-kernel", "k", "-m");
	EXPECT_ERROR("-m: '0'", "-kernel", "k", "-m", "0");
	EXPECT_ERROR("-m: '8'", "-kernel", "k", "-m", "8"); /* below 16 MiB */
	EXPECT_ERROR("-m: '-5'", "-kernel", "k", "-m", "-5");
	EXPECT_ERROR("-m: '99999999999999999999'", "-kernel", "k", "-m", "99999999999999999999");
	EXPECT_ERROR("-m: '1T'", "-kernel", "k", "-m", "1T");
	EXPECT_ERROR("-smp: '0'", "-kernel", "k", "-smp", "0");
	EXPECT_ERROR("-smp: 'two'", "-kernel", "k", "-smp", "two");
	EXPECT_ERROR("-smp: '300'", "-kernel", "k", "-smp", "300");
	EXPECT_ERROR("unsupported machine type 'pc'", "-machine", "pc", "-kernel", "k");
	EXPECT_ERROR("unknown property 'accel=kvm'", "-machine", "microvm,accel=kvm", "-kernel",
		     "k");
	EXPECT_ERROR("-serial: 'file:'", "-kernel", "k", "-serial", "file:");
	EXPECT_ERROR("'pit=maybe' must be on or off", "-machine", "microvm,pit=maybe", "-kernel",
		     "k");
	EXPECT_ERROR("-boot-entry: 'efi'", "-kernel", "k", "-boot-entry", "efi");
	EXPECT_ERROR("bad socket path", "-kernel", "k", "-serial", "unix:,server");
	EXPECT_ERROR("drive 'nope' is not defined", "-kernel", "k", "-device",
		     "virtio-blk-device,drive=nope");
	EXPECT_ERROR("-drive: 'd' is not used", "-kernel", "k", "-drive", "id=d,file=/x");
	EXPECT_ERROR("drive 'd' is used twice", "-kernel", "k", "-drive", "id=d,file=/x", "-device",
		     "virtio-blk-device,drive=d", "-device", "virtio-blk-device,drive=d");
	EXPECT_ERROR("needs id=NAME and file=PATH", "-kernel", "k", "-drive", "id=d");
	EXPECT_ERROR("-drive: id 'd' is used twice", "-kernel", "k", "-drive", "id=d,file=/x",
		     "-drive", "id=d,file=/y");
	EXPECT_ERROR("'readonly=yes' must be on or off", "-kernel", "k", "-drive",
		     "id=d,file=/x,readonly=yes");
	EXPECT_ERROR("unsupported property 'format=qcow2'", "-kernel", "k", "-drive",
		     "id=d,file=/x,format=qcow2");
	EXPECT_ERROR("unknown property 'iothread=t0'", "-kernel", "k", "-drive", "id=d,file=/x",
		     "-device", "virtio-blk-device,drive=d,iothread=t0");
	EXPECT_ERROR("needs guest-cid=N", "-kernel", "k", "-device",
		     "vhost-vsock-device,uds-path=/v");
	EXPECT_ERROR("guest-cid must be from 3", "-kernel", "k", "-device",
		     "vhost-vsock-device,guest-cid=2,uds-path=/v");
	EXPECT_ERROR("needs uds-path=PATH", "-kernel", "k", "-device",
		     "vhost-vsock-device,guest-cid=3");
	EXPECT_ERROR("'x' is not key=value", "-kernel", "k", "-device", "virtio-rng-device,x");
	EXPECT_ERROR("only server sockets", "-kernel", "k", "-serial", "unix:/x,reconnect=1");
}

static void test_sizes(void **state)
{
	uint64_t b;

	(void)state;
	assert_int_equal(cli_parse_size("128", &b), 0);
	assert_int_equal(b, 128ULL << 20);
	assert_int_equal(cli_parse_size("512M", &b), 0);
	assert_int_equal(b, 512ULL << 20);
	assert_int_equal(cli_parse_size("size=1g", &b), 0);
	assert_int_equal(b, 1ULL << 30);
	assert_int_equal(cli_parse_size("65536K", &b), 0);
	assert_int_equal(b, 64ULL << 20);
	assert_int_equal(cli_parse_size("256MB", &b), 0);
	assert_int_equal(b, 256ULL << 20);
	assert_int_equal(cli_parse_size("", &b), -EINVAL);
	assert_int_equal(cli_parse_size("M", &b), -EINVAL);
	assert_int_equal(cli_parse_size("12MM", &b), -EINVAL);
	assert_int_equal(cli_parse_size("2048G", &b), -EINVAL); /* above 1 TiB */
}

static void test_devices(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-kernel", "k"), 0);
	assert_int_equal(o.vm.nr_devices, 0);
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-device", "virtio-rng-device"), 0);
	assert_int_equal(o.vm.nr_devices, 1);
	assert_int_equal(o.vm.devices[0].type, VM_DEVICE_VIRTIO_RNG);
	assert_string_equal(o.vm.devices[0].id, "");
	assert_int_equal(PARSE(&o, &err, "-device", "virtio-rng-device,id=rng0", "-kernel", "k",
			       "--device", "virtio-rng-device,id=rng-1.b"),
			 0);
	assert_int_equal(o.vm.nr_devices, 2);
	assert_string_equal(o.vm.devices[0].id, "rng0");
	assert_string_equal(o.vm.devices[1].id, "rng-1.b");
	assert_int_equal(o.vm.devices[0].rng_bytes_per_sec, 0);
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-device",
			       "virtio-rng-device,bytes_per_sec=65536,id=r"),
			 0);
	assert_int_equal(o.vm.devices[0].rng_bytes_per_sec, 65536);
}

static void test_device_errors(void **state)
{
	char *argv[3 + 2 * (VM_MAX_DEVICES + 1) + 1] = { "stratus-vmm", "-kernel", "k" };
	struct cli_options o;
	struct error err = { 0 };
	int i, argc = 3;

	(void)state;
	EXPECT_ERROR("-device: unknown device type 'virtio-gpu-device' (supported: "
		     "virtio-rng-device, virtio-blk-device, vhost-vsock-device, virtio-fs-device, "
		     "virtio-net-device)",
		     "-kernel", "k", "-device", "virtio-gpu-device");
	EXPECT_ERROR("-device: unknown device type ''", "-kernel", "k", "-device", "");
	EXPECT_ERROR("-device: 'rng=objrng0': no -object rng-random,id=objrng0 before it",
		     "-kernel", "k", "-device", "virtio-rng-device,rng=objrng0");
	EXPECT_ERROR("-device: 'bytes_per_sec=63': bytes_per_sec must be from 64 to 1099511627776",
		     "-kernel", "k", "-device", "virtio-rng-device,bytes_per_sec=63");
	EXPECT_ERROR("-device: 'bytes_per_sec=1k': bytes_per_sec must be", "-kernel", "k",
		     "-device", "virtio-rng-device,bytes_per_sec=1k");
	EXPECT_ERROR("-device: 'bytes_per_sec=-1': bytes_per_sec must be", "-kernel", "k",
		     "-device", "virtio-rng-device,bytes_per_sec=-1");
	EXPECT_ERROR("-device: virtio-blk-device: unknown property 'bytes_per_sec=4096'", "-kernel",
		     "k", "-device", "virtio-blk-device,id=b,bytes_per_sec=4096");
	EXPECT_ERROR("-device: 'id=': an id is", "-kernel", "k", "-device",
		     "virtio-rng-device,id=");
	EXPECT_ERROR("-device: 'id=a/b': an id is", "-kernel", "k", "-device",
		     "virtio-rng-device,id=a/b");
	EXPECT_ERROR("an id is 1 to 31", "-kernel", "k", "-device",
		     "virtio-rng-device,id=0123456789012345678901234567890123");
	EXPECT_ERROR("-device: id 'r' is used twice", "-kernel", "k", "-device",
		     "virtio-rng-device,id=r", "-device", "virtio-rng-device,id=r");
	EXPECT_ERROR("-device: missing value", "-kernel", "k", "-device");
	for (i = 0; i <= VM_MAX_DEVICES; i++) {
		argv[argc++] = "-device";
		argv[argc++] = "virtio-rng-device";
	}
	assert_int_equal(cli_parse(argc, argv, &o, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "-device: at most 16 devices"));
}

static void test_help_and_version(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-help"), 0);
	assert_true(o.help);
	assert_int_equal(PARSE(&o, &err, "--version"), 0);
	assert_true(o.version);
}

/* Empty virtio-blk slots for hotplug, and the hardening options. */
static void test_slots_and_sandbox(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-drive", "id=d,file=/x", "-device",
			       "virtio-blk-device,drive=d", "-device",
			       "virtio-blk-device,id=slot1"),
			 0);
	assert_int_equal(o.vm.nr_devices, 2);
	assert_string_equal(o.vm.devices[0].path, "/x");
	assert_string_equal(o.vm.devices[1].id, "slot1");
	assert_string_equal(o.vm.devices[1].path, ""); /* empty until device_add */
	assert_false(o.disable_seccomp);
	assert_false(o.seccomp_log);
	assert_null(o.sandbox_dir);
	assert_false(o.runas);

	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-seccomp-log", "-sandbox", "/var/jail",
			       "-runas", "1000:100"),
			 0);
	assert_true(o.seccomp_log);
	assert_string_equal(o.sandbox_dir, "/var/jail");
	assert_true(o.runas);
	assert_int_equal(o.runas_uid, 1000);
	assert_int_equal(o.runas_gid, 100);
	/* -print-seccomp needs no kernel */
	assert_int_equal(PARSE(&o, &err, "--print-seccomp"), 0);
	assert_true(o.print_seccomp);

	/* Kata's rng: an -object the device names. */
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-object",
			       "rng-random,id=objrng0,filename=/dev/urandom", "-device",
			       "virtio-rng-device,rng=objrng0,id=virtio-rng0"),
			 0);
	assert_int_equal(o.vm.nr_devices, 1);
	EXPECT_ERROR("-object: 'memory-backend-file,id=m': only rng-random", "-kernel", "k",
		     "-object", "memory-backend-file,id=m");
	EXPECT_ERROR("-object: rng-random: 'filename=/tmp/x': expected", "-kernel", "k", "-object",
		     "rng-random,id=r,filename=/tmp/x");
	EXPECT_ERROR("-object: 'rng-random,id=r' needs id=NAME and filename=", "-kernel", "k",
		     "-object", "rng-random,id=r");
	/* With -qmp: 4 virtio-blk devices by default, the -drive disk first. */
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-qmp", "unix:/q,server,nowait", "-drive",
			       "id=d,file=/x", "-device", "virtio-blk-device,drive=d"),
			 0);
	assert_int_equal(o.vm.nr_devices, 4);
	assert_string_equal(o.vm.devices[0].path, "/x");
	assert_string_equal(o.vm.devices[1].id, "blk-slot1");
	assert_string_equal(o.vm.devices[3].id, "blk-slot3");
	assert_string_equal(o.vm.devices[3].path, "");
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-qmp", "unix:/q,server,nowait",
			       "-machine", "microvm,blk-slots=0"),
			 0);
	assert_int_equal(o.vm.nr_devices, 0);
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-machine", "microvm,blk-slots=2"), 0);
	assert_int_equal(o.vm.nr_devices, 2);
	assert_int_equal(PARSE(&o, &err, "-kernel", "k"), 0);
	assert_int_equal(o.vm.nr_devices, 0); /* no -qmp: no slots */
	EXPECT_ERROR("-machine: 'blk-slots=17': blk-slots must be 0 to 16", "-kernel", "k",
		     "-machine", "microvm,blk-slots=17");
	EXPECT_ERROR("-runas: '1000' must be UID:GID", "-kernel", "k", "-runas", "1000");
	EXPECT_ERROR("-runas: 'a:b' must be UID:GID", "-kernel", "k", "-runas", "a:b");
	EXPECT_ERROR("-runas: '1:-1' must be UID:GID", "-kernel", "k", "-runas", "1:-1");
	EXPECT_ERROR("-runas: '1:2x' must be UID:GID", "-kernel", "k", "-runas", "1:2x");
	EXPECT_ERROR("-sandbox: 'jail' must be an absolute", "-kernel", "k", "-sandbox", "jail");
	EXPECT_ERROR("-sandbox: '/' must be an absolute", "-kernel", "k", "-sandbox", "/");
	EXPECT_ERROR("-sandbox: missing value", "-kernel", "k", "-sandbox");
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-sandbox", "/j", "-sandbox-bind", "/a",
			       "-sandbox-bind", "/b"),
			 0);
	assert_int_equal(o.nr_sandbox_binds, 2);
	assert_string_equal(o.sandbox_binds[1], "/b");
	EXPECT_ERROR("-sandbox-bind: 'img' must be an absolute", "-kernel", "k", "-sandbox-bind",
		     "img");
	EXPECT_ERROR("-sandbox-bind: at most 4", "-kernel", "k", "-sandbox-bind", "/a",
		     "-sandbox-bind", "/b", "-sandbox-bind", "/c", "-sandbox-bind", "/d",
		     "-sandbox-bind", "/e");
}

/* -incoming file:PATH restores a snapshot; -kernel is then not needed (docs/snapshots.md). */
static void test_incoming(void **state)
{
	struct cli_options o;
	struct error err = { 0 };

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-incoming", "file:/tmp/a.snap", "-m", "256"), 0);
	assert_string_equal(o.vm.incoming, "/tmp/a.snap");
	assert_null(o.vm.kernel_path);
	assert_int_equal(PARSE(&o, &err, "-kernel", "k"), 0);
	assert_null(o.vm.incoming);
	EXPECT_ERROR("-incoming: 'tcp:0:4444' must be file:PATH", "-incoming", "tcp:0:4444");
	EXPECT_ERROR("-incoming: 'file:' must be file:PATH", "-incoming", "file:");
	EXPECT_ERROR("-incoming: missing value", "-kernel", "k", "-incoming");
}

/* -netdev tap + virtio-net-device (docs/vmm.md "virtio-net"). */
static void test_virtio_net(void **state)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0xab };
	struct cli_options o;
	struct error err = { 0 };
	struct vm_device_config *d;

	(void)state;
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-netdev", "tap,id=n0,ifname=tap0",
			       "-device",
			       "virtio-net-device,netdev=n0,id=net0,mac=52:54:00:12:34:AB,mtu=9000",
			       "-netdev", "tap,id=n1,fd=7,vhost=off,queues=1", "-device",
			       "virtio-net-device,netdev=n1,host_mtu=1500"),
			 0);
	assert_int_equal(o.vm.nr_devices, 2);
	d = &o.vm.devices[0];
	assert_int_equal(d->type, VM_DEVICE_VIRTIO_NET);
	assert_string_equal(d->id, "net0");
	assert_string_equal(d->path, "tap0");
	assert_false(d->net_fd_set);
	assert_true(d->mac_set);
	assert_memory_equal(d->mac, mac, 6);
	assert_int_equal(d->mtu, 9000);
	d = &o.vm.devices[1];
	assert_true(d->net_fd_set);
	assert_int_equal(d->net_fd, 7);
	assert_string_equal(d->path, "");
	assert_false(d->mac_set);
	assert_int_equal(d->mtu, 1500);
	/* No mtu: VIRTIO_NET_F_MTU is not offered. */
	assert_int_equal(PARSE(&o, &err, "-kernel", "k", "-netdev", "tap,id=n0,fds=9", "-device",
			       "virtio-net-device,netdev=n0"),
			 0);
	assert_int_equal(o.vm.devices[0].mtu, 0);
	assert_int_equal(o.vm.devices[0].net_fd, 9);

	EXPECT_ERROR("-netdev: type 'user' is not supported (tap only)", "-kernel", "k", "-netdev",
		     "user,id=n0");
	EXPECT_ERROR("needs id=NAME", "-kernel", "k", "-netdev", "tap,ifname=tap0");
	EXPECT_ERROR("needs one of ifname=TAP and fd=N", "-kernel", "k", "-netdev", "tap,id=n0");
	EXPECT_ERROR("needs one of ifname=TAP and fd=N", "-kernel", "k", "-netdev",
		     "tap,id=n0,ifname=t,fd=4");
	EXPECT_ERROR("-netdev: 'fd=2': a descriptor number from 3", "-kernel", "k", "-netdev",
		     "tap,id=n0,fd=2");
	EXPECT_ERROR("-netdev: 'fds=3:4'", "-kernel", "k", "-netdev", "tap,id=n0,fds=3:4");
	EXPECT_ERROR("-netdev: 'queues=2': only one queue pair", "-kernel", "k", "-netdev",
		     "tap,id=n0,ifname=t,queues=2");
	EXPECT_ERROR("-netdev: 'vhost=on': vhost-net is not supported", "-kernel", "k", "-netdev",
		     "tap,id=n0,ifname=t,vhost=on");
	EXPECT_ERROR("-netdev: 'ifname=a-name-far-too-long': an interface name is 1 to 15",
		     "-kernel", "k", "-netdev", "tap,id=n0,ifname=a-name-far-too-long");
	EXPECT_ERROR("-netdev: tap: unknown property 'script=no'", "-kernel", "k", "-netdev",
		     "tap,id=n0,ifname=t,script=no");
	EXPECT_ERROR("-netdev: id 'n0' is used twice", "-kernel", "k", "-netdev",
		     "tap,id=n0,ifname=a", "-netdev", "tap,id=n0,ifname=b");
	EXPECT_ERROR("-netdev: fd 5 is used twice", "-kernel", "k", "-netdev", "tap,id=a,fd=5",
		     "-netdev", "tap,id=b,fd=5");
	EXPECT_ERROR("-device: virtio-net-device needs netdev=NAME", "-kernel", "k", "-device",
		     "virtio-net-device,id=x");
	EXPECT_ERROR("-device: netdev 'n9' is not defined by a -netdev", "-kernel", "k", "-device",
		     "virtio-net-device,netdev=n9");
	EXPECT_ERROR("-netdev: 'n0' is not used by any -device", "-kernel", "k", "-netdev",
		     "tap,id=n0,ifname=t");
	EXPECT_ERROR("-device: netdev 'n0' is used twice", "-kernel", "k", "-netdev",
		     "tap,id=n0,ifname=t", "-device", "virtio-net-device,netdev=n0", "-device",
		     "virtio-net-device,netdev=n0");
	EXPECT_ERROR("-device: 'mac=52:54:00:12:34': a MAC address is six hex bytes", "-kernel",
		     "k", "-netdev", "tap,id=n0,ifname=t", "-device",
		     "virtio-net-device,netdev=n0,mac=52:54:00:12:34");
	EXPECT_ERROR("-device: 'mac=52:54:00:12:34:567'", "-kernel", "k", "-netdev",
		     "tap,id=n0,ifname=t", "-device",
		     "virtio-net-device,netdev=n0,mac=52:54:00:12:34:567");
	EXPECT_ERROR("-device: 'mac=01:00:5e:00:00:01': not a unicast address", "-kernel", "k",
		     "-netdev", "tap,id=n0,ifname=t", "-device",
		     "virtio-net-device,netdev=n0,mac=01:00:5e:00:00:01");
	EXPECT_ERROR("-device: 'mac=00:00:00:00:00:00': not a unicast address", "-kernel", "k",
		     "-netdev", "tap,id=n0,ifname=t", "-device",
		     "virtio-net-device,netdev=n0,mac=00:00:00:00:00:00");
	EXPECT_ERROR("-device: 'mtu=67': mtu must be from 68 to 65535", "-kernel", "k", "-netdev",
		     "tap,id=n0,ifname=t", "-device", "virtio-net-device,netdev=n0,mtu=67");
	EXPECT_ERROR("-device: 'host_mtu=65536': host_mtu must be from 68 to 65535", "-kernel", "k",
		     "-netdev", "tap,id=n0,ifname=t", "-device",
		     "virtio-net-device,netdev=n0,host_mtu=65536");
	EXPECT_ERROR("-device: 'mtu=-1500'", "-kernel", "k", "-netdev", "tap,id=n0,ifname=t",
		     "-device", "virtio-net-device,netdev=n0,mtu=-1500");
	EXPECT_ERROR("-device: virtio-net-device: unknown property 'mq=on'", "-kernel", "k",
		     "-netdev", "tap,id=n0,ifname=t", "-device",
		     "virtio-net-device,netdev=n0,mq=on");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_kata_style),
		cmocka_unit_test(test_log_without_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_serial_socket),
		cmocka_unit_test(test_drives_and_disks),
		cmocka_unit_test(test_vsock),
		cmocka_unit_test(test_virtio_fs),
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_device_errors),
		cmocka_unit_test(test_qmp_uuid_seccomp),
		cmocka_unit_test(test_slots_and_sandbox),
		cmocka_unit_test(test_incoming),
		cmocka_unit_test(test_virtio_net),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
