/*
 * stratus-vmm's command line, StratoVirt style (-machine, -kernel, -m, -smp, ...).
 * Parsing is separate from main() so it is unit-tested.
 */
#ifndef STRATUS_VMM_CLI_H
#define STRATUS_VMM_CLI_H

#include "error.h"
#include "vm.h"

enum cli_serial {
	CLI_SERIAL_STDIO,
	CLI_SERIAL_FILE,
	CLI_SERIAL_SOCKET,
	CLI_SERIAL_NONE,
};

/* -drive id=NAME,file=PATH[,readonly=on|off][,direct=on|off][,if=none][,format=raw] */
struct cli_drive {
	char id[VM_DEVICE_ID_MAX];
	char file[VM_DEVICE_PATH_MAX];
	bool readonly;
	bool direct;
	bool used;
};

/* -netdev tap,id=NAME,ifname=TAP | -netdev tap,id=NAME,fd=N (docs/vmm.md "virtio-net") */
struct cli_netdev {
	char id[VM_DEVICE_ID_MAX];
	char ifname[16]; /* IFNAMSIZ */
	bool fd_set;
	int fd;
	bool used;
};

struct cli_options {
	struct vm_config vm;
	enum cli_serial serial;
	const char *serial_path;
	char socket_path[108]; /* -serial unix:PATH (sun_path's size) */
	const char *name;
	const char *log_path; /* -D FILE; NULL with log_stderr for plain -D */
	bool log_debug;	      /* -D given: debug-level log */
	const char *pidfile;
	bool daemonize;
	bool help;
	bool version;
	struct cli_drive drives[VM_MAX_DEVICES];
	unsigned int nr_drives;
	/* drive= (virtio-blk) or netdev= (virtio-net) of each -device */
	char device_drive[VM_MAX_DEVICES][VM_DEVICE_ID_MAX];
	struct cli_netdev netdevs[VM_MAX_DEVICES];
	unsigned int nr_netdevs;
	char qmp_path[108]; /* -qmp unix:PATH,server,nowait; "" if none */
	char uuid[37];	    /* -uuid; "" if none */
	bool disable_seccomp;
	bool seccomp_log;	      /* -seccomp-log: a forbidden syscall is logged, not fatal */
	bool print_seccomp;	      /* -print-seccomp */
	const char *sandbox_dir;      /* -sandbox DIR: the jail's mount point; NULL: none */
	const char *sandbox_binds[4]; /* -sandbox-bind DIR: also reachable in the jail */
	unsigned int nr_sandbox_binds;
	/* -object rng-random,id=NAME,filename=/dev/urandom: what rng= of a device names */
	char rng_objects[4][VM_DEVICE_ID_MAX];
	unsigned int nr_rng_objects;
	int blk_slots; /* -machine blk-slots=N: virtio-blk devices with slots; -1: default */
	bool runas;    /* -runas UID:GID */
	unsigned int runas_uid, runas_gid;
};

/* Fills opts; on a bad command line returns -EINVAL with the one-line reason in err. */
int cli_parse(int argc, char *const argv[], struct cli_options *opts, struct error *err);

/* Parse "128", "128M", "2G", "size=512m" as bytes (default unit MiB). */
int cli_parse_size(const char *text, uint64_t *bytes);

void cli_usage(FILE *out);

/* cli_device.c: -device and -drive (StratoVirt's syntax). */
int cli_parse_device(const char *text, struct cli_options *opts, struct error *err);
int cli_parse_drive(const char *text, struct cli_options *opts, struct error *err);
/* After all options: give each virtio-blk device its drive; every drive must be used once. */
int cli_resolve_drives(struct cli_options *opts, struct error *err);
/* -netdev (StratoVirt's syntax, tap only); resolved like drives, netdev= of virtio-net. */
int cli_parse_netdev(const char *text, struct cli_options *opts, struct error *err);
int cli_resolve_netdevs(struct cli_options *opts, struct error *err);

#endif
