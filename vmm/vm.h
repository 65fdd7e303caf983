/*
 * A virtual machine: the top of libvmm. vm_create() builds everything (KVM VM, guest memory,
 * devices, loaded kernel, vCPUs in their boot state); vm_run() starts one thread per vCPU,
 * runs the event loop on the calling thread and returns when the VM is over, with the
 * reason. Nothing here knows about containers.
 */
#ifndef STRATUS_VMM_VM_H
#define STRATUS_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "bus.h"
#include "error.h"
#include "event_loop.h"
#include "memory.h"
#include "seccomp.h"

struct vcpu;
struct arch_vm;

/* Why a VM stopped; vm_exit_status() maps each to the process exit status (docs/vmm.md). */
enum vm_exit_reason {
	VM_EXIT_NONE,
	VM_EXIT_POWEROFF,     /* guest powered off (exit port, or KVM system event) */
	VM_EXIT_QUIT,	      /* the host asked: SIGTERM, SIGINT, QMP quit */
	VM_EXIT_RESET,	      /* guest reboot: i8042 reset or KVM reset event */
	VM_EXIT_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN */
	VM_EXIT_PANIC,	      /* guest kernel panicked (exit port, or KVM crash event) */
	VM_EXIT_ERROR,	      /* the VMM could not go on: emulation failure, KVM error */
};

enum vm_boot_entry {
	VM_BOOT_AUTO, /* PVH if the kernel has the note, else the 64-bit entry */
	VM_BOOT_PVH,
	VM_BOOT_LINUX64, /* 64-bit Linux boot protocol (zero page in rsi) */
};

/* Devices the user asked for (-device); each device file creates the ones of its type. */
enum vm_device_type {
	VM_DEVICE_VIRTIO_RNG,	/* virtio-rng-device */
	VM_DEVICE_VIRTIO_BLK,	/* virtio-blk-device with its -drive */
	VM_DEVICE_VIRTIO_VSOCK, /* vhost-vsock-device, served by our userspace device */
	VM_DEVICE_VIRTIO_FS,	/* virtio-fs-device: a host directory, FUSE served in the VMM */
	VM_DEVICE_VIRTIO_NET,	/* virtio-net-device with its -netdev tap (docs/vmm.md) */
};

#define VM_DEVICE_ID_MAX     32
#define VM_DEVICE_PATH_MAX   4096
#define VM_DEVICE_SERIAL_MAX 21 /* VIRTIO_BLK_ID_BYTES (20) + NUL */
#define VM_MAX_DEVICES	     16
#define VM_DEVICE_FS_TAG_MAX 37 /* virtio-fs: tag[36] (virtio 1.2 §5.11.4) + NUL */

/* virtio-fs cache=: how long the guest may trust what it caches (docs/virtio-fs.md). */
enum vm_fs_cache {
	VM_FS_CACHE_AUTO,   /* 1 s attribute/entry timeouts, page cache dropped on change */
	VM_FS_CACHE_NONE,   /* no timeouts, FOPEN_DIRECT_IO: every read goes to the host */
	VM_FS_CACHE_ALWAYS, /* long timeouts, FOPEN_KEEP_CACHE: only the guest changes it */
};

struct vm_device_config {
	enum vm_device_type type;
	char id[VM_DEVICE_ID_MAX]; /* id=NAME, "" if not given */
	/*
	 * virtio-blk: the image file (from the -drive); vsock: the Unix socket the host
	 * connects to ("hybrid vsock"; guest connections to host port P go to PATH_P).
	 */
	char path[VM_DEVICE_PATH_MAX];
	bool readonly;			   /* virtio-blk */
	bool direct;			   /* virtio-blk: open the image O_DIRECT */
	char serial[VM_DEVICE_SERIAL_MAX]; /* virtio-blk: GET_ID answer (default: drive id) */
	uint64_t guest_cid;		   /* vsock: the guest's CID (>= 3) */
	char fs_tag[VM_DEVICE_FS_TAG_MAX]; /* virtio-fs: the mount tag; path is the shared dir */
	enum vm_fs_cache fs_cache;	   /* virtio-fs: cache= (readonly= applies too) */
	uint64_t rng_bytes_per_sec;	   /* virtio-rng: bytes_per_sec= (0: the default, rng.h) */
	/*
	 * virtio-net: the backend carries raw Ethernet frames, one per read/write (a tap opened
	 * IFF_TAP|IFF_NO_PI, or any datagram socket). net_fd_set: net_fd is an open backend fd
	 * the caller keeps; the VMM dups it and owns the dup. Else path names a tap interface
	 * the VMM opens through /dev/net/tun (-netdev tap,ifname=).
	 */
	bool net_fd_set;
	int net_fd;
	bool mac_set;	/* virtio-net: mac= given; else a random locally administered MAC */
	uint8_t mac[6]; /* virtio-net: the guest NIC's MAC (config space) */
	uint32_t mtu;	/* virtio-net: VIRTIO_NET_F_MTU offered with this value; 0: not offered */
};

struct vm_config {
	uint64_t mem_size;
	unsigned int nr_vcpus;
	const char *kernel_path;
	const char *initrd_path;   /* NULL: none */
	const char *cmdline;	   /* user part; the VMM appends what its devices need */
	int serial_fd;		   /* console output, -1 to drop it */
	int serial_in_fd;	   /* console input, -1 for none */
	const char *serial_socket; /* or: serve the console on this Unix socket (one client) */
	enum vm_boot_entry boot_entry;
	bool pit; /* an in-kernel i8254 PIT (x86); KVM guests with kvm-clock do not need it */
	const char *incoming; /* restore from this snapshot file instead of booting (-incoming) */
	struct vm_device_config devices[VM_MAX_DEVICES]; /* in command-line order */
	unsigned int nr_devices;
	/* seccomp.h: each thread installs its filter before the guest runs (0: none) */
	enum seccomp_mode seccomp;
	/*
	 * Which of them do (SECCOMP_MAIN, SECCOMP_VCPU, SECCOMP_FSPROC bits); 0: all. A program
	 * that runs more than the VM on its main thread (the runtime's monitor) leaves
	 * SECCOMP_MAIN out and still filters the vCPU threads and the virtio-fs processes.
	 */
	unsigned int seccomp_threads;
	/*
	 * -runas UID:GID: the ids the VMM switches to after set-up; virtio-fs shares' processes
	 * (forked before) switch to them too (docs/virtio-fs.md, "Credentials").
	 */
	bool runas;
	uid_t runas_uid;
	gid_t runas_gid;
};

/* The filter mode thread type t installs: config.seccomp, or SECCOMP_OFF if left out. */
static inline enum seccomp_mode vm_config_seccomp(const struct vm_config *config,
						  enum seccomp_thread t)
{
	unsigned int only = config->seccomp_threads;

	return !only || (only & (1u << t)) ? config->seccomp : SECCOMP_OFF;
}

/* Set by vm_create from the host: what it needs to work around. */
struct host_quirks {
	bool pvm; /* KVM is kvm_pvm: instruction fix-ups and the guest syscall fix-up */
};

struct vm {
	struct vm_config config;
	struct host_quirks quirks;
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;
	struct vm_mem mem;
	struct bus pio_bus;
	struct bus mmio_bus;
	struct event_loop *loop;
	struct vcpu **vcpus;
	unsigned int nr_vcpus;
	struct arch_vm *arch;
	char *cmdline; /* the full command line handed to the guest */

	_Atomic enum vm_exit_reason exit_reason;
	atomic_bool paused;
	/* vm_pause(): vCPUs park on pause_cond under pause_lock (never a device lock) */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	atomic_bool pause_requested;
	unsigned int nr_parked;	  /* vCPU threads parked, under pause_lock */
	unsigned int nr_finished; /* vCPU threads out of their loop, under pause_lock */
	bool vcpus_released;	  /* the main thread's filter is in: vCPUs may run */
	void *devices;		  /* device instances, see device.h */
	/* Set by the device file that created config.devices[i]; vm_create refuses leftovers. */
	bool device_claimed[VM_MAX_DEVICES];
	/*
	 * vm_destroy() is under way, its vCPU threads gone: closing the VM fd releases every
	 * irqfd and ioeventfd at once, so devices skip deassigning theirs one by one (each is an
	 * SRCU grace period in KVM, 2-5 ms here: 15 virtio devices took 15-35 ms to tear down).
	 */
	bool destroying;
};

int vm_create(const struct vm_config *config, struct vm **out, struct error *err);

/* Run until the VM stops; returns why. */
enum vm_exit_reason vm_run(struct vm *vm);

/* Ask the VM to stop (first reason wins); safe from any thread and from signal context. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason);

/*
 * Pause every vCPU (kicked out of KVM_RUN, parked; kvm-clock told, where KVM can) and return
 * once all are parked; resume them. Main thread only; 0 or a negative errno.
 */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);

void vm_destroy(struct vm *vm);

/* Append " words" to the guest command line (devices call this while the VM is built). */
int vm_cmdline_append(struct vm *vm, const char *fmt, ...) _printf_(2, 3);

/* Raise or lower a GSI of the in-kernel interrupt controller. */
int vm_irq_line(struct vm *vm, unsigned int gsi, bool level);

const char *vm_exit_reason_name(enum vm_exit_reason reason);
int vm_exit_status(enum vm_exit_reason reason);

#endif
