/*
 * Building, running and tearing down a VM (see vm.h). The order in vm_create is the order
 * the pieces depend on each other: KVM, memory and interrupt controllers (arch), devices
 * (they add to the command line), the kernel and boot tables (need the final command
 * line), then vCPUs in their boot state.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <linux/kvm.h>

#include "arch.h"
#include "device.h"
#include "log.h"
#include "snapshot.h"
#include "vcpu.h"
#include "vm.h"

#define KVM_DEVICE "/dev/kvm"

struct kvm_required_cap {
	int cap;
	const char *name;
};

static const struct kvm_required_cap kvm_required_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
};

static int kvm_open(struct vm *vm, struct error *err)
{
	unsigned int i;
	int version;

	vm->kvm_fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int r = -errno;

		if (r == -ENOENT)
			return error_set(err, r,
					 "%s does not exist: this host offers no KVM "
					 "(load kvm_intel, kvm_amd or kvm_pvm)",
					 KVM_DEVICE);
		return error_set_errno(err, r, "cannot open %s", KVM_DEVICE);
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		return error_set(err, -ENOTSUP, "%s: KVM API version %d, need %d", KVM_DEVICE,
				 version, KVM_API_VERSION);
	for (i = 0; i < ARRAY_SIZE(kvm_required_caps); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, kvm_required_caps[i].cap) <= 0)
			return error_set(err, -ENOTSUP, "%s: KVM lacks %s", KVM_DEVICE,
					 kvm_required_caps[i].name);
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size < (int)sizeof(struct kvm_run))
		return error_set(err, -ENOTSUP, "%s: bad vCPU mmap size %d", KVM_DEVICE,
				 vm->vcpu_mmap_size);
	return 0;
}

static int vm_create_kvm_vm(struct vm *vm, struct error *err)
{
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return error_set_errno(err, -errno, "KVM_CREATE_VM");
	/* Emulation failures come back to us with the instruction bytes (arch_vcpu_exit). */
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_EXIT_ON_EMULATION_FAILURE) > 0) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE,
					      .args = { 1 } };

		if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
			return error_set_errno(err, -errno, "KVM_CAP_EXIT_ON_EMULATION_FAILURE");
	} else if (vm->quirks.pvm) {
		return error_set(err, -ENOTSUP,
				 "KVM lacks KVM_CAP_EXIT_ON_EMULATION_FAILURE, "
				 "which a PVM host needs");
	}
	return 0;
}

static int vm_register_memory(struct vm *vm, struct error *err)
{
	unsigned int i;

	for (i = 0; i < vm->mem.nr_regions; i++) {
		const struct vm_mem_region *region = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = region->gpa,
			.memory_size = region->size,
			.userspace_addr = (uintptr_t)region->hva,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return error_set_errno(err, -errno, "KVM_SET_USER_MEMORY_REGION");
	}
	return 0;
}

int vm_cmdline_append(struct vm *vm, const char *fmt, ...)
{
	_cleanup_free_ char *words = NULL;
	char *joined;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&words, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	if (asprintf(&joined, "%s%s%s", vm->cmdline ? vm->cmdline : "",
		     vm->cmdline && *vm->cmdline ? " " : "", words) < 0)
		return -ENOMEM;
	free(vm->cmdline);
	vm->cmdline = joined;
	return 0;
}

static int vm_create_vcpus(struct vm *vm, struct error *err)
{
	unsigned int i;
	int r;

	vm->vcpus = calloc(vm->config.nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (i = 0; i < vm->config.nr_vcpus; i++) {
		r = vcpu_create(vm, i, &vm->vcpus[i], err);
		if (r < 0)
			return r;
		vm->nr_vcpus++;
	}
	return 0;
}

/* A requested device no device file created would be silently missing: refuse instead. */
static int vm_check_devices_claimed(struct vm *vm, struct error *err)
{
	unsigned int i;

	for (i = 0; i < vm->config.nr_devices; i++)
		if (!vm->device_claimed[i])
			return error_set(
				err, -ENOTSUP,
				"-device %u (id '%s'): this device type is not available in "
				"this build",
				i + 1, vm->config.devices[i].id);
	return 0;
}

/* A virtio-fs device with a directory; a slot (no path) has no process to share RAM with. */
static bool vm_has_fs_share(const struct vm_config *config)
{
	unsigned int i;

	for (i = 0; i < config->nr_devices; i++)
		if (config->devices[i].type == VM_DEVICE_VIRTIO_FS && config->devices[i].path[0])
			return true;
	return false;
}

int vm_create(const struct vm_config *config, struct vm **out, struct error *err)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct snapshot_file *snapshot = NULL;
	struct snapshot_load *load = NULL;
	int r;

	if (!vm)
		return error_set(err, -ENOMEM, "out of memory");
	vm->config = *config;
	vm->kvm_fd = vm->vm_fd = -1;
	vm_mem_init(&vm->mem);
	vm->mem.shared = vm_has_fs_share(config); /* served by another process: fs_process.c */
	bus_init(&vm->pio_bus, "pio");
	bus_init(&vm->mmio_bus, "mmio");
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	atomic_init(&vm->exit_reason, VM_EXIT_NONE);
	arch_detect_quirks(vm);

	/* A snapshot is checked whole before anything is built: refused, never half-restored. */
	if (config->incoming) {
		r = snapshot_file_open(config->incoming, &snapshot, err);
		if (r == 0)
			r = vm_snapshot_check(vm, snapshot, err);
		if (r < 0)
			goto fail;
	}
	r = event_loop_create(&vm->loop);
	if (r < 0) {
		error_set_errno(err, r, "event loop");
		goto fail;
	}
	r = kvm_open(vm, err);
	if (r < 0)
		goto fail;
	r = vm_create_kvm_vm(vm, err);
	if (r < 0)
		goto fail;
	r = arch_vm_init(vm, err); /* guest memory, interrupt controllers, timers */
	if (r < 0)
		goto fail;
	/* a copy into shared memory runs on while KVM's slots, devices and vCPUs are made */
	if (snapshot) {
		r = snapshot_file_load_memory(snapshot, &vm->mem, &load, err);
		if (r < 0)
			goto fail;
	}
	r = vm_register_memory(vm, err);
	if (r < 0)
		goto fail;
	r = device_init_all(vm, err);
	if (r < 0)
		goto fail;
	r = vm_check_devices_claimed(vm, err);
	if (r < 0)
		goto fail;
	/* The user's words go last: they override ours, and "-- init args" stay at the end. */
	if (config->cmdline && *config->cmdline) {
		r = vm_cmdline_append(vm, "%s", config->cmdline);
		if (r < 0)
			goto fail;
	}
	r = snapshot ? 0 : arch_vm_load(vm, err);
	if (r < 0)
		goto fail;
	r = vm_create_vcpus(vm, err);
	if (r < 0)
		goto fail;
	if (snapshot) {
		r = snapshot_load_wait(load, err);
		load = NULL;
		if (r < 0)
			goto fail;
		r = vm_snapshot_restore(vm, snapshot, err);
		if (r < 0)
			goto fail;
		snapshot_file_close(snapshot);
	}
	*out = vm;
	return 0;
fail:
	snapshot_load_wait(load, NULL);
	snapshot_file_close(snapshot);
	vm_destroy(vm);
	return r;
}

const char *vm_exit_reason_name(enum vm_exit_reason reason)
{
	static const char *const names[] = {
		[VM_EXIT_NONE] = "running",
		[VM_EXIT_POWEROFF] = "poweroff",
		[VM_EXIT_QUIT] = "quit",
		[VM_EXIT_RESET] = "reset",
		[VM_EXIT_TRIPLE_FAULT] = "triple-fault",
		[VM_EXIT_PANIC] = "panic",
		[VM_EXIT_ERROR] = "error",
	};

	return (unsigned int)reason < ARRAY_SIZE(names) ? names[reason] : "?";
}

/* The process exit status for each reason (documented in docs/vmm.md). */
int vm_exit_status(enum vm_exit_reason reason)
{
	switch (reason) {
	case VM_EXIT_POWEROFF:
	case VM_EXIT_QUIT:
		return 0;
	case VM_EXIT_RESET:
		return 3;
	case VM_EXIT_TRIPLE_FAULT:
		return 4;
	case VM_EXIT_PANIC:
		return 5;
	default:
		return 1;
	}
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason)
{
	enum vm_exit_reason none = VM_EXIT_NONE;
	unsigned int i;

	if (!atomic_compare_exchange_strong(&vm->exit_reason, &none, reason))
		return;
	event_loop_stop(vm->loop);
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(vm->vcpus[i]);
}

/*
 * Called on the main thread with no device lock held: a vCPU in the middle of an exit
 * finishes it (taking whatever device lock it needs) before it parks at the top of its loop.
 */
int vm_pause(struct vm *vm)
{
	unsigned int i;

	if (atomic_load(&vm->paused))
		return 0;
	atomic_store(&vm->pause_requested, true);
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(vm->vcpus[i]);
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->nr_parked + vm->nr_finished < vm->nr_vcpus &&
	       atomic_load(&vm->exit_reason) == VM_EXIT_NONE)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	pthread_mutex_unlock(&vm->pause_lock);
	atomic_store(&vm->paused, true);
	log_info("VM paused");
	return 0;
}

int vm_resume(struct vm *vm)
{
	if (!atomic_load(&vm->paused))
		return 0;
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_requested, false);
	atomic_store(&vm->paused, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	log_info("VM resumed");
	return 0;
}

int vm_irq_line(struct vm *vm, unsigned int gsi, bool level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

struct vm_signal_watch {
	struct vm *vm;
	int fd;
};

static void vm_on_signal(void *opaque, uint32_t events)
{
	struct vm_signal_watch *watch = opaque;
	struct signalfd_siginfo info;

	(void)events;
	if (read(watch->fd, &info, sizeof(info)) != sizeof(info))
		return;
	log_info("signal %u: shutting the VM down", info.ssi_signo);
	vm_request_exit(watch->vm, VM_EXIT_QUIT);
}

/*
 * The vCPU threads exist and have their filters; the main thread installs its own, then
 * lets them run: no guest instruction runs before every filter is in (seccomp.h).
 */
static void vm_release_vcpus(struct vm *vm)
{
	struct error err = { 0 };

	if (seccomp_install(SECCOMP_THREAD_MAIN,
			    vm_config_seccomp(&vm->config, SECCOMP_THREAD_MAIN), &err) < 0) {
		log_error("%s", err.msg);
		vm_request_exit(vm, VM_EXIT_ERROR);
	}
	seccomp_test_hook(SECCOMP_THREAD_MAIN);
	pthread_mutex_lock(&vm->pause_lock);
	vm->vcpus_released = true;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

enum vm_exit_reason vm_run(struct vm *vm)
{
	_cleanup_close_ int signal_fd = -1;
	struct vm_signal_watch watch = { .vm = vm };
	struct error err = { 0 };
	unsigned int i;
	sigset_t set;
	int r;

	/* SIGTERM and SIGINT reach us through the loop, never in a vCPU thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	vcpu_signals_init();
	signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	watch.fd = signal_fd;
	if (signal_fd < 0 ||
	    event_loop_add(vm->loop, signal_fd, EPOLLIN, vm_on_signal, &watch) < 0) {
		log_error("cannot watch signals: %s", strerror(errno));
		return VM_EXIT_ERROR;
	}
	for (i = 0; i < vm->nr_vcpus; i++) {
		if (vcpu_start(vm->vcpus[i], &err) < 0) {
			log_error("%s", err.msg);
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
	}
	vm_release_vcpus(vm);
	r = event_loop_run(vm->loop);
	if (r < 0) {
		log_error("event loop: %s", strerror(-r));
		vm_request_exit(vm, VM_EXIT_ERROR);
	}
	/* Parked vCPUs wait for a resume; the exit reason is set, so wake them to leave. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(vm->vcpus[i]);
	event_loop_remove(vm->loop, signal_fd);
	return atomic_load(&vm->exit_reason);
}

void vm_destroy(struct vm *vm)
{
	unsigned int i;

	if (!vm)
		return;
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(vm->vcpus[i]);
	free(vm->vcpus);
	vm->destroying = true;
	device_exit_all(vm);
	arch_vm_destroy(vm);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm_mem_destroy(&vm->mem);
	bus_destroy(&vm->pio_bus);
	bus_destroy(&vm->mmio_bus);
	event_loop_destroy(vm->loop);
	free(vm->cmdline);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
	free(vm);
}
