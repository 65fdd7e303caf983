/*
 * stratus-vmm command-line parsing (see cli.h). Options take one dash, as in QEMU and
 * StratoVirt; "--opt" is accepted too. Every problem is reported as one line naming the
 * option; nothing is ignored silently.
 */
#include <stdio.h>
#include <string.h>
#include <ctype.h>
#include <strings.h>

#include "cli.h"

#define CLI_DEFAULT_MEM (128ULL << 20)
#define CLI_MAX_MEM	(1ULL << 40)

int cli_parse_size(const char *text, uint64_t *bytes)
{
	unsigned long long value;
	unsigned int shift = 20;
	char *end;

	if (!strncmp(text, "size=", 5))
		text += 5;
	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if ((*end == 'b' || *end == 'B') && end[1] == '\0')
		end++;
	if (*end || value == 0 || value > (CLI_MAX_MEM >> shift))
		return -EINVAL;
	*bytes = (uint64_t)value << shift;
	return 0;
}

static int cli_parse_on_off(const char *item, const char *value, bool *out, struct error *err)
{
	if (!strcmp(value, "on"))
		*out = true;
	else if (!strcmp(value, "off"))
		*out = false;
	else
		return error_set(err, -EINVAL, "-machine: '%s' must be on or off", item);
	return 0;
}

/* blk-slots=N: how many virtio-blk devices QMP hotplug can use (docs/vmm.md). */
static int cli_parse_blk_slots(const char *item, struct cli_options *opts, struct error *err)
{
	const char *value = item + 10;
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(value, &end, 10);
	if (errno || end == value || *end || value[0] == '-' || n > VM_MAX_DEVICES)
		return error_set(err, -EINVAL, "-machine: '%s': blk-slots must be 0 to %d", item,
				 VM_MAX_DEVICES);
	opts->blk_slots = (int)n;
	return 0;
}

/*
 * "microvm" or "type=microvm,dump-guest-core=off,mem-share=on" (Kata passes these), and
 * pit=on|off as in QEMU's microvm.
 */
static int cli_parse_machine(const char *text, struct cli_options *opts, struct error *err)
{
	struct vm_config *vm = &opts->vm;
	_cleanup_free_ char *copy = strdup(text);
	char *save = NULL, *item;

	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		const char *type = !strncmp(item, "type=", 5) ? item + 5 : NULL;

		if (!strchr(item, '='))
			type = item;
		if (type && strcmp(type, "microvm"))
			return error_set(err, -EINVAL,
					 "-machine: unsupported machine type '%s' (only microvm)",
					 type);
		if (!strncmp(item, "pit=", 4)) {
			if (cli_parse_on_off(item, item + 4, &vm->pit, err) < 0)
				return -EINVAL;
		} else if (!strncmp(item, "blk-slots=", 10)) {
			if (cli_parse_blk_slots(item, opts, err) < 0)
				return -EINVAL;
		} else if (!type && strncmp(item, "dump-guest-core=", 16) &&
			   strncmp(item, "mem-share=", 10)) {
			return error_set(err, -EINVAL, "-machine: unknown property '%s'", item);
		}
	}
	return 0;
}

/* "4", "cpus=4", "cpus=4,maxcpus=4,sockets=1,cores=4,threads=1". */
static int cli_parse_smp(const char *text, unsigned int *nr, struct error *err)
{
	const char *p = !strncmp(text, "cpus=", 5) ? text + 5 : text;
	unsigned long value;
	char *end;

	errno = 0;
	value = strtoul(p, &end, 10);
	if (errno || end == p || (*end && *end != ',') || value == 0 || value > 255)
		return error_set(err, -EINVAL, "-smp: '%s' is not a vCPU count from 1 to 255",
				 text);
	*nr = (unsigned int)value;
	return 0;
}

static int cli_parse_serial(const char *text, struct cli_options *opts, struct error *err)
{
	if (!strcmp(text, "stdio")) {
		opts->serial = CLI_SERIAL_STDIO;
	} else if (!strcmp(text, "none") || !strcmp(text, "null")) {
		opts->serial = CLI_SERIAL_NONE;
	} else if (!strncmp(text, "unix:", 5)) {
		/* QEMU's "unix:PATH,server,nowait": we always serve and never wait. */
		size_t len = strcspn(text + 5, ",");
		const char *rest = text + 5 + len;

		if (len == 0 || len >= sizeof(opts->socket_path))
			return error_set(err, -EINVAL, "-serial: '%s': bad socket path", text);
		if (*rest && strcmp(rest, ",server,nowait") &&
		    strcmp(rest, ",server=on,wait=off") && strcmp(rest, ",server"))
			return error_set(err, -EINVAL,
					 "-serial: '%s': only server sockets are "
					 "supported",
					 text);
		memcpy(opts->socket_path, text + 5, len);
		opts->socket_path[len] = '\0';
		opts->serial = CLI_SERIAL_SOCKET;
		opts->vm.serial_socket = opts->socket_path;
	} else if (!strncmp(text, "file:", 5) && text[5]) {
		opts->serial = CLI_SERIAL_FILE;
		opts->serial_path = text + 5;
	} else {
		return error_set(err, -EINVAL,
				 "-serial: '%s' must be stdio, file:PATH, unix:PATH or none", text);
	}
	return 0;
}

/*
 * -qmp unix:PATH,server,nowait (or server=on,wait=off): QEMU's and Kata's spelling. We always
 * serve and never wait for a client before the guest starts.
 */
static int cli_parse_qmp(const char *text, struct cli_options *opts, struct error *err)
{
	_cleanup_free_ char *copy = NULL;
	char *save = NULL, *item;
	size_t len;

	if (strncmp(text, "unix:", 5))
		return error_set(err, -EINVAL, "-qmp: '%s' must be unix:PATH,server,nowait", text);
	len = strcspn(text + 5, ",");
	if (len == 0 || len >= sizeof(opts->qmp_path))
		return error_set(err, -EINVAL, "-qmp: '%s': bad socket path", text);
	copy = strdup(text + 5 + len);
	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save))
		if (strcmp(item, "server") && strcmp(item, "server=on") && strcmp(item, "nowait") &&
		    strcmp(item, "wait=off"))
			return error_set(err, -EINVAL,
					 "-qmp: '%s': only server,nowait sockets are supported",
					 text);
	memcpy(opts->qmp_path, text + 5, len);
	opts->qmp_path[len] = '\0';
	return 0;
}

/* -uuid: the canonical 8-4-4-4-12 hexadecimal form. */
static int cli_parse_uuid(const char *text, struct cli_options *opts, struct error *err)
{
	size_t i;

	for (i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? text[i] != '-' : !isxdigit((unsigned char)text[i]))
			break;
	}
	if (i != 36 || text[36])
		return error_set(err, -EINVAL,
				 "-uuid: '%s' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
				 text);
	memcpy(opts->uuid, text, 37);
	return 0;
}

static int cli_parse_boot_entry(const char *text, enum vm_boot_entry *entry, struct error *err)
{
	if (!strcmp(text, "auto"))
		*entry = VM_BOOT_AUTO;
	else if (!strcmp(text, "pvh"))
		*entry = VM_BOOT_PVH;
	else if (!strcmp(text, "linux64"))
		*entry = VM_BOOT_LINUX64;
	else
		return error_set(err, -EINVAL, "-boot-entry: '%s' must be auto, pvh or linux64",
				 text);
	return 0;
}

/* -runas UID:GID, numeric (no user database lookups in the VMM). */
static int cli_parse_runas(const char *text, struct cli_options *opts, struct error *err)
{
	const char *orig = text;
	unsigned long uid, gid;
	char *end;

	errno = 0;
	uid = strtoul(text, &end, 10);
	if (errno || end == text || *end != ':' || uid >= 0xffffffffUL || text[0] == '-')
		goto bad;
	text = end + 1;
	gid = strtoul(text, &end, 10);
	if (errno || end == text || *end || gid >= 0xffffffffUL || text[0] == '-')
		goto bad;
	opts->runas = true;
	opts->runas_uid = (unsigned int)uid;
	opts->runas_gid = (unsigned int)gid;
	return 0;
bad:
	return error_set(err, -EINVAL, "-runas: '%s' must be UID:GID (numbers)", orig);
}

/* -incoming file:PATH: restore the VM from a snapshot (QEMU's and StratoVirt's syntax). */
static int cli_parse_incoming(const char *text, const char **path, struct error *err)
{
	if (strncmp(text, "file:", 5) || !text[5])
		return error_set(err, -EINVAL, "-incoming: '%s' must be file:PATH", text);
	*path = text + 5;
	return 0;
}

/*
 * -object rng-random,id=NAME,filename=/dev/urandom (Kata passes it for virtio-rng's rng=).
 * Our virtio-rng reads getrandom(), the kernel's source behind /dev/urandom and /dev/random,
 * so only those two are accepted and the file is not opened.
 */
static int cli_parse_object(const char *text, struct cli_options *opts, struct error *err)
{
	_cleanup_free_ char *copy = strdup(text);
	char *save = NULL, *item, id[VM_DEVICE_ID_MAX] = "";
	bool file = false;

	if (!copy)
		return -ENOMEM;
	item = strtok_r(copy, ",", &save);
	if (!item || strcmp(item, "rng-random"))
		return error_set(err, -EINVAL, "-object: '%s': only rng-random is supported", text);
	while ((item = strtok_r(NULL, ",", &save))) {
		if (!strncmp(item, "id=", 3) && item[3] && strlen(item + 3) < sizeof(id) &&
		    strspn(item + 3, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789_.-") == strlen(item + 3))
			snprintf(id, sizeof(id), "%s", item + 3);
		else if (!strcmp(item, "filename=/dev/urandom") ||
			 !strcmp(item, "filename=/dev/random"))
			file = true;
		else
			return error_set(err, -EINVAL,
					 "-object: rng-random: '%s': expected id=NAME and "
					 "filename=/dev/urandom or /dev/random",
					 item);
	}
	if (!id[0] || !file)
		return error_set(err, -EINVAL, "-object: '%s' needs id=NAME and filename=", text);
	if (opts->nr_rng_objects >= ARRAY_SIZE(opts->rng_objects))
		return error_set(err, -EINVAL, "-object: at most %zu rng-random objects",
				 ARRAY_SIZE(opts->rng_objects));
	memcpy(opts->rng_objects[opts->nr_rng_objects++], id, sizeof(id));
	return 0;
}

/*
 * Hotplug slots: with -qmp (the only way to hot-add), the machine has blk-slots virtio-blk
 * devices (default 4, Kata's StratoVirt driver's count), the -drive disks first and empty
 * slots after them, as StratoVirt's microvm does; -machine blk-slots=0 makes none.
 */
#define CLI_DEFAULT_BLK_SLOTS 4

static int cli_add_blk_slots(struct cli_options *opts, struct error *err)
{
	struct vm_config *vm = &opts->vm;
	unsigned int i, disks = 0;
	int want = opts->blk_slots < 0 ? (opts->qmp_path[0] ? CLI_DEFAULT_BLK_SLOTS : 0)
				       : opts->blk_slots;

	for (i = 0; i < vm->nr_devices; i++)
		disks += vm->devices[i].type == VM_DEVICE_VIRTIO_BLK;
	while ((int)disks < want) {
		struct vm_device_config *spec;

		if (vm->nr_devices >= VM_MAX_DEVICES)
			return error_set(err, -EINVAL, "-machine: blk-slots: at most %d devices",
					 VM_MAX_DEVICES);
		spec = &vm->devices[vm->nr_devices++];
		memset(spec, 0, sizeof(*spec));
		spec->type = VM_DEVICE_VIRTIO_BLK;
		snprintf(spec->id, sizeof(spec->id), "blk-slot%u", disks);
		disks++;
	}
	return 0;
}

/* Options that take a value; -D's value is optional (see below). */
static const char *const cli_valued[] = {
	"machine", "M",	       "kernel",     "initrd",	     "append", "m",   "smp",  "serial",
	"name",	   "pidfile",  "boot-entry", "device",	     "drive",  "qmp", "uuid", "sandbox",
	"runas",   "incoming", "object",     "sandbox-bind", "netdev",
};

static bool cli_takes_value(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cli_valued); i++)
		if (!strcmp(name, cli_valued[i]))
			return true;
	return false;
}

static int cli_apply(const char *name, const char *value, struct cli_options *opts,
		     struct error *err)
{
	struct vm_config *vm = &opts->vm;

	if (!strcmp(name, "machine") || !strcmp(name, "M"))
		return cli_parse_machine(value, opts, err);
	if (!strcmp(name, "kernel"))
		vm->kernel_path = value;
	else if (!strcmp(name, "initrd"))
		vm->initrd_path = value;
	else if (!strcmp(name, "append"))
		vm->cmdline = value;
	else if (!strcmp(name, "m")) {
		if (cli_parse_size(value, &vm->mem_size) < 0 || vm->mem_size < (16ULL << 20))
			return error_set(err, -EINVAL,
					 "-m: '%s' is not a memory size of at least "
					 "16 MiB (e.g. 128, 512M, 2G)",
					 value);
	} else if (!strcmp(name, "smp"))
		return cli_parse_smp(value, &vm->nr_vcpus, err);
	else if (!strcmp(name, "serial"))
		return cli_parse_serial(value, opts, err);
	else if (!strcmp(name, "name"))
		opts->name = value;
	else if (!strcmp(name, "pidfile"))
		opts->pidfile = value;
	else if (!strcmp(name, "boot-entry"))
		return cli_parse_boot_entry(value, &vm->boot_entry, err);
	else if (!strcmp(name, "device"))
		return cli_parse_device(value, opts, err);
	else if (!strcmp(name, "drive"))
		return cli_parse_drive(value, opts, err);
	else if (!strcmp(name, "netdev"))
		return cli_parse_netdev(value, opts, err);
	else if (!strcmp(name, "qmp"))
		return cli_parse_qmp(value, opts, err);
	else if (!strcmp(name, "uuid"))
		return cli_parse_uuid(value, opts, err);
	else if (!strcmp(name, "sandbox")) {
		if (value[0] != '/' || !strcmp(value, "/"))
			return error_set(
				err, -EINVAL,
				"-sandbox: '%s' must be an absolute directory other than /", value);
		opts->sandbox_dir = value;
	} else if (!strcmp(name, "runas"))
		return cli_parse_runas(value, opts, err);
	else if (!strcmp(name, "object"))
		return cli_parse_object(value, opts, err);
	else if (!strcmp(name, "sandbox-bind")) {
		if (value[0] != '/' || !strcmp(value, "/"))
			return error_set(err, -EINVAL,
					 "-sandbox-bind: '%s' must be an absolute directory other "
					 "than /",
					 value);
		if (opts->nr_sandbox_binds >= ARRAY_SIZE(opts->sandbox_binds))
			return error_set(err, -EINVAL, "-sandbox-bind: at most %zu directories",
					 ARRAY_SIZE(opts->sandbox_binds));
		opts->sandbox_binds[opts->nr_sandbox_binds++] = value;
	} else if (!strcmp(name, "incoming"))
		return cli_parse_incoming(value, &vm->incoming, err);
	return 0;
}

static int cli_flag(const char *name, struct cli_options *opts)
{
	if (!strcmp(name, "daemonize"))
		opts->daemonize = true;
	else if (!strcmp(name, "h") || !strcmp(name, "help"))
		opts->help = true;
	else if (!strcmp(name, "version") || !strcmp(name, "V"))
		opts->version = true;
	else if (!strcmp(name, "disable-seccomp"))
		opts->disable_seccomp = true;
	else if (!strcmp(name, "seccomp-log"))
		opts->seccomp_log = true;
	else if (!strcmp(name, "print-seccomp"))
		opts->print_seccomp = true;
	else
		return -ENOENT;
	return 0;
}

int cli_parse(int argc, char *const argv[], struct cli_options *opts, struct error *err)
{
	int i;

	memset(opts, 0, sizeof(*opts));
	opts->vm.mem_size = CLI_DEFAULT_MEM;
	opts->vm.nr_vcpus = 1;
	opts->vm.serial_fd = opts->vm.serial_in_fd = -1;
	opts->blk_slots = -1;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *name;
		int r;

		if (arg[0] != '-' || !arg[1])
			return error_set(err, -EINVAL, "unexpected argument '%s'", arg);
		name = arg + (arg[1] == '-' ? 2 : 1);
		if (!strcmp(name, "D")) {
			/* -D [FILE]: the log file is optional, as in StratoVirt. */
			opts->log_debug = true;
			if (i + 1 < argc && argv[i + 1][0] != '-')
				opts->log_path = argv[++i];
			continue;
		}
		if (cli_flag(name, opts) == 0)
			continue;
		if (!cli_takes_value(name))
			return error_set(err, -EINVAL, "unknown option '%s'", arg);
		if (i + 1 >= argc)
			return error_set(err, -EINVAL, "%s: missing value", arg);
		r = cli_apply(name, argv[++i], opts, err);
		if (r < 0)
			return r;
	}
	if (!opts->help && !opts->version && !opts->print_seccomp && !opts->vm.kernel_path &&
	    !opts->vm.incoming)
		return error_set(err, -EINVAL, "-kernel: a kernel image is required");
	if (cli_resolve_drives(opts, err) < 0 || cli_resolve_netdevs(opts, err) < 0)
		return -EINVAL;
	return cli_add_blk_slots(opts, err);
}

void cli_usage(FILE *out)
{
	fputs("usage: stratus-vmm -kernel VMLINUX [options]\n"
	      "  -machine microvm[,pit=on|off][,blk-slots=N]  the machine (the only one; Kata's\n"
	      "                          properties accepted); pit: an i8254 PIT (default off);\n"
	      "                          blk-slots: virtio-blk devices incl. empty hotplug slots\n"
	      "                          (default 4 with -qmp, else 0)\n"
	      "  -kernel PATH            ELF vmlinux (PVH or 64-bit entry) or bzImage\n"
	      "  -initrd PATH            initramfs\n"
	      "  -append CMDLINE         kernel command line\n"
	      "  -m SIZE                 guest memory, MiB or with K/M/G suffix (default 128)\n"
	      "  -smp N                  vCPUs (default 1)\n"
	      "  -serial stdio|file:PATH|unix:PATH[,server,nowait]|none\n"
	      "                          console (default stdio; unix: one client at a time)\n"
	      "  -boot-entry auto|pvh|linux64   kernel entry (default auto: PVH if present)\n"
	      "  -device virtio-rng-device[,id=NAME][,rng=OBJECT]\n"
	      "                          a virtio-rng entropy device (the guest's /dev/hwrng)\n"
	      "  -object rng-random,id=OBJECT,filename=/dev/urandom   accepted for Kata (rng=)\n"
	      "  -device virtio-blk-device,id=NAME   an empty slot for QMP hotplug\n"
	      "  -netdev tap,id=NAME,ifname=TAP|fd=N   a tap (raw frames, no vnet header)\n"
	      "  -device virtio-net-device,netdev=NAME[,id=NAME][,mac=MAC][,mtu=N]\n"
	      "                          a NIC on that tap (default: a random local MAC)\n"
	      "  -qmp unix:PATH,server,nowait   QMP control socket (one client at a time)\n"
	      "  -uuid UUID              the VM's UUID (logged)\n"
	      "  -incoming file:PATH     restore the snapshot PATH instead of booting (same\n"
	      "                          -m, -smp, -machine and -device list; -kernel unused)\n"
	      "  -disable-seccomp        run without the seccomp filters (logged as a warning)\n"
	      "  -seccomp-log            a syscall off the lists is logged by the kernel, not "
	      "fatal\n"
	      "  -print-seccomp          print the seccomp allow-lists and exit\n"
	      "  -sandbox DIR            jail: new namespaces, an empty root mounted on DIR\n"
	      "  -sandbox-bind DIR       a directory also reachable in the jail (images to\n"
	      "                          hot-add); repeatable\n"
	      "  -runas UID:GID          drop to this uid and gid once set up\n"
	      "  -name NAME              VM name, for logs\n"
	      "  -D [FILE]               debug log, to FILE or stderr\n"
	      "  -pidfile PATH           write the VMM's pid there\n"
	      "  -daemonize              detach once the VM runs\n"
	      "  -version, -help\n"
	      "Exit status: 0 poweroff or quit, 1 VMM error, 2 bad command line, 3 guest reset,\n"
	      "4 triple fault, 5 guest panic.\n",
	      out);
}
