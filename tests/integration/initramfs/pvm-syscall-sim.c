// SPDX-License-Identifier: GPL-2.0
/*
 * pvm-syscall-sim: test the guest kernel's stratus.pvm_syscall fix-up
 * (guest-kernel-config/patches/0001-*) on any x86-64 machine, QEMU TCG
 * included, by producing the fault it repairs.
 *
 * On a PVM host in native mode a user SYSCALL loads RCX and R11 and jumps to
 * entry_SYSCALL_64 but stays at CPL3, so the fetch faults with error code
 * P|U|I and CR2 == RIP == entry_SYSCALL_64. A user-mode jump to that kernel
 * address, with RCX and R11 loaded as SYSCALL would, is the same fault. Each
 * "fake" system call below is that jump, through a 2-byte `jmp *%rbx`, so a
 * syscall restart (RIP = RCX - 2) lands on it just as on a SYSCALL.
 *
 * Prints "STRATUS-TEST pvm-sim-<check>=ok|FAIL" lines and a summary
 * "STRATUS-TEST pvm-sim=ok|FAIL|inactive" (inactive: the kernel runs without
 * the fix-up, so the jump is a SIGSEGV as on a stock kernel). Exits 0 unless
 * a check failed. Freestanding, static, no libc: the initramfs has none.
 */

#define NR_read		0
#define NR_write	1
#define NR_open		2
#define NR_close	3
#define NR_rt_sigaction 13
#define NR_rt_sigreturn 15
#define NR_nanosleep	35
#define NR_setitimer	38
#define NR_getpid	39
#define NR_fork		57
#define NR_wait4	61
#define NR_kill		62
#define NR_exit_group	231

#define SIGUSR1	    10
#define SIGSEGV	    11
#define SIGALRM	    14
#define SIGCONT	    18
#define SIGSTOP	    19
#define SA_RESTORER 0x04000000UL
#define SA_RESTART  0x10000000UL
#define ITIMER_REAL 0
#define EFLAGS_IF   0x200UL
#define EFLAGS_IOPL 0x3000UL

struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

struct timespec64 {
	long sec;
	long nsec;
};

struct timeval64 {
	long sec;
	long usec;
};

struct itimerval64 {
	struct timeval64 interval;
	struct timeval64 value;
};

/* Address of entry_SYSCALL_64, read from /proc/kallsyms; used by the asm. */
unsigned long pvm_entry;

static long real_syscall(long nr, long a, long b, long c, long d)
{
	register long r10 __asm__("r10") = d;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
}

/* SYSCALL as PVM native mode leaves it: RCX = return address, R11 = RFLAGS. */
static long fake_syscall(long nr, long a, long b, long c, long d)
{
	register long r10 __asm__("r10") = d;
	long ret;

	__asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
			 "pushfq\n\t"
			 "pop %%r11\n\t"
			 "jmp *%%rbx\n" /* ff e3: 2 bytes, like SYSCALL */
			 "1:"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "b"(pvm_entry)
			 : "rcx", "r11", "memory");
	return ret;
}

/* As fake_syscall(NR_getpid), with R11 (the user RFLAGS) given. */
static long fake_getpid_flags(unsigned long flags, unsigned long *flags_after)
{
	register unsigned long r11 __asm__("r11") = flags;
	long ret;

	__asm__ volatile("lea 1f(%%rip), %%rcx\n\t"
			 "jmp *%%rbx\n"
			 "1:\n\t"
			 "pushfq\n\t"
			 "pop %%rdx"
			 : "=a"(ret), "=d"(*flags_after), "+r"(r11)
			 : "a"((long)NR_getpid), "b"(pvm_entry)
			 : "rcx", "memory");
	return ret;
}

/* As fake_syscall(NR_getpid), returning to a kernel address. */
static void fake_getpid_kernel_return(void)
{
	__asm__ volatile("mov %%rbx, %%rcx\n\t"
			 "pushfq\n\t"
			 "pop %%r11\n\t"
			 "jmp *%%rbx"
			 :
			 : "a"((long)NR_getpid), "b"(pvm_entry)
			 : "rcx", "r11", "memory");
}

/* Signal return through the fix-up too. */
void pvm_restorer(void);
__asm__(".text\n"
	"pvm_restorer:\n\t"
	"mov $15, %eax\n\t" /* NR_rt_sigreturn */
	"mov pvm_entry(%rip), %rbx\n\t"
	"lea 1f(%rip), %rcx\n\t"
	"pushfq\n\t"
	"pop %r11\n\t"
	"jmp *%rbx\n"
	"1:\tud2\n");

void *memset(void *s, int c, unsigned long n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

static unsigned long str_len(const char *s)
{
	unsigned long n = 0;

	while (s[n])
		n++;
	return n;
}

static void print(const char *s)
{
	real_syscall(NR_write, 1, (long)s, (long)str_len(s), 0);
}

static void __attribute__((noreturn)) exit_now(int code, int fake)
{
	if (fake)
		fake_syscall(NR_exit_group, code, 0, 0, 0);
	real_syscall(NR_exit_group, code, 0, 0, 0);
	__builtin_unreachable();
}

static int ends_with(const char *s, long len, const char *suffix, long n)
{
	long i;

	if (len < n)
		return 0;
	for (i = 0; i < n; i++)
		if (s[len - n + i] != suffix[i])
			return 0;
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Find "<hex> T entry_SYSCALL_64\n" in /proc/kallsyms. */
static unsigned long find_entry(void)
{
	static const char name[] = " entry_SYSCALL_64\n";
	static char buf[4096 + 128];
	long fd, n, keep = 0, i;
	unsigned long addr = 0;

	fd = real_syscall(NR_open, (long)"/proc/kallsyms", 0, 0, 0);
	if (fd < 0)
		return 0;
	while ((n = real_syscall(NR_read, fd, (long)buf + keep, 4096, 0)) > 0) {
		long len = keep + n, start = 0;

		for (i = 0; i < len; i++) {
			if (buf[i] != '\n')
				continue;
			/* the line is buf[start..i] */
			if (ends_with(buf + start, i + 1 - start, name, sizeof(name) - 1)) {
				long j;

				for (j = start; hexval(buf[j]) >= 0; j++)
					addr = addr << 4 | (unsigned long)hexval(buf[j]);
				goto out;
			}
			start = i + 1;
		}
		keep = len - start;
		for (i = 0; i < keep; i++)
			buf[i] = buf[start + i];
		if (keep > 128)
			keep = 0; /* no line is that long */
	}
out:
	real_syscall(NR_close, fd, 0, 0, 0);
	return addr;
}

static volatile int got_usr1, got_alrm;

static void on_usr1(int sig)
{
	got_usr1 = sig;
}

static void on_alrm(int sig)
{
	got_alrm = sig;
}

static long fake_sigaction(int sig, void (*handler)(int), unsigned long flags)
{
	struct kernel_sigaction sa = {
		.handler = handler,
		.flags = flags | SA_RESTORER,
		.restorer = pvm_restorer,
	};

	return fake_syscall(NR_rt_sigaction, sig, (long)&sa, 0, 8);
}

static void sleep_ms(long ms, int fake)
{
	struct timespec64 ts = { ms / 1000, (ms % 1000) * 1000000 };

	if (fake)
		fake_syscall(NR_nanosleep, (long)&ts, 0, 0, 0);
	else
		real_syscall(NR_nanosleep, (long)&ts, 0, 0, 0);
}

/* Run fn in a child (real fork), return its wait status. */
static int in_child(void (*fn)(void))
{
	int status = -1;
	long pid = real_syscall(NR_fork, 0, 0, 0, 0);

	if (pid == 0) {
		fn();
		exit_now(0, 0);
	}
	if (pid < 0 || real_syscall(NR_wait4, pid, (long)&status, 0, 0) != pid)
		return -1;
	return status;
}

static void child_fake_getpid(void)
{
	fake_syscall(NR_getpid, 0, 0, 0, 0);
}

static int check_getpid(void)
{
	return fake_syscall(NR_getpid, 0, 0, 0, 0) == real_syscall(NR_getpid, 0, 0, 0, 0);
}

static int check_write(void)
{
	static const char msg[] = "STRATUS-TEST pvm-sim-write-says=hello\n";

	return fake_syscall(NR_write, 1, (long)msg, sizeof(msg) - 1, 0) == (long)sizeof(msg) - 1;
}

static int check_fork(void)
{
	int status = -1;
	long pid = fake_syscall(NR_fork, 0, 0, 0, 0);

	if (pid == 0)
		exit_now(42, 1);
	return pid > 0 && fake_syscall(NR_wait4, pid, (long)&status, 0, 0) == pid &&
	       status == 42 << 8;
}

static int check_handler(void)
{
	got_usr1 = 0;
	if (fake_sigaction(SIGUSR1, on_usr1, 0))
		return 0;
	if (fake_syscall(NR_kill, real_syscall(NR_getpid, 0, 0, 0, 0), SIGUSR1, 0, 0))
		return 0;
	return got_usr1 == SIGUSR1;
}

/* wait4 interrupted by a SA_RESTART handler: -ERESTARTSYS, restarted. */
static int check_restart(void)
{
	struct itimerval64 timer = { { 0, 0 }, { 0, 100000 } }; /* 100 ms */
	int status = -1;
	long pid;

	got_alrm = 0;
	if (fake_sigaction(SIGALRM, on_alrm, SA_RESTART))
		return 0;
	pid = fake_syscall(NR_fork, 0, 0, 0, 0);
	if (pid == 0) {
		sleep_ms(400, 1);
		exit_now(7, 1);
	}
	if (pid < 0 || fake_syscall(NR_setitimer, ITIMER_REAL, (long)&timer, 0, 0))
		return 0;
	return fake_syscall(NR_wait4, pid, (long)&status, 0, 0) == pid && status == 7 << 8 &&
	       got_alrm == SIGALRM;
}

/* nanosleep stopped and continued: -ERESTART_RESTARTBLOCK, restart_syscall. */
static int check_restart_block(void)
{
	struct timespec64 ts = { 0, 400000000 };
	int status = -1;
	long pid = fake_syscall(NR_fork, 0, 0, 0, 0);

	if (pid == 0)
		exit_now(fake_syscall(NR_nanosleep, (long)&ts, 0, 0, 0) == 0 ? 0 : 1, 1);
	if (pid < 0)
		return 0;
	sleep_ms(100, 0);
	real_syscall(NR_kill, pid, SIGSTOP, 0, 0);
	sleep_ms(50, 0);
	real_syscall(NR_kill, pid, SIGCONT, 0, 0);
	return real_syscall(NR_wait4, pid, (long)&status, 0, 0) == pid && status == 0;
}

/* R11 is user data here: IOPL 3 / IF 0 in it must not reach RFLAGS. */
static int check_flags(void)
{
	unsigned long after = 0;

	if (fake_getpid_flags(EFLAGS_IOPL | 0x2, &after) != real_syscall(NR_getpid, 0, 0, 0, 0))
		return 0;
	return (after & EFLAGS_IOPL) == 0 && (after & EFLAGS_IF);
}

/* A kernel return address is not a system call: SIGSEGV as on stock. */
static int check_kernel_return(void)
{
	int status = in_child(fake_getpid_kernel_return);

	return (status & 0x7f) == SIGSEGV;
}

static int failed;

static void check(const char *name, int (*fn)(void))
{
	int ok = fn();

	print("STRATUS-TEST pvm-sim-");
	print(name);
	print(ok ? "=ok\n" : "=FAIL\n");
	if (!ok)
		failed = 1;
}

static int run(void)
{
	int status;

	pvm_entry = find_entry();
	if (!pvm_entry) {
		print("STRATUS-TEST pvm-sim=FAIL (entry_SYSCALL_64 not in /proc/kallsyms)\n");
		return 1;
	}
	status = in_child(child_fake_getpid);
	if ((status & 0x7f) == SIGSEGV) {
		print("STRATUS-TEST pvm-sim=inactive\n");
		return 0;
	}
	if (status != 0) {
		print("STRATUS-TEST pvm-sim=FAIL (probe)\n");
		return 1;
	}
	check("getpid", check_getpid);
	check("write", check_write);
	check("fork", check_fork);
	check("handler", check_handler);
	check("restart", check_restart);
	check("restart-block", check_restart_block);
	check("flags", check_flags);
	check("kernel-return", check_kernel_return);
	print(failed ? "STRATUS-TEST pvm-sim=FAIL\n" : "STRATUS-TEST pvm-sim=ok\n");
	return failed;
}

void __attribute__((noreturn, used)) pvm_sim_start(void)
{
	exit_now(run(), 0);
}

__asm__(".text\n"
	".global _start\n"
	"_start:\n\t"
	"xor %ebp, %ebp\n\t"
	"and $-16, %rsp\n\t"
	"call pvm_sim_start\n\t"
	"ud2\n");
