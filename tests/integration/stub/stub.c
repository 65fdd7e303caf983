/*
 * The 64-bit half of the freestanding test guest: checks the instructions a PVM host's KVM
 * cannot emulate (the VMM finishes them) and reports each result on COM1 as
 * "stub: NAME=VALUE", then returns to entry.S, which powers off.
 */
#include <stdint.h>

#define COM1 0x3f8

struct idt_gate {
	uint16_t offset_low, selector;
	uint8_t ist, type_attr;
	uint16_t offset_mid;
	uint32_t offset_high, reserved;
} __attribute__((packed));

static struct idt_gate idt[4] __attribute__((aligned(16)));
static volatile int breakpoints;

static void outb(uint16_t port, uint8_t value)
{
	__asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static void puts_serial(const char *s)
{
	while (*s)
		outb(COM1, (uint8_t)*s++);
}

static void put_u64(uint64_t v)
{
	char buf[21];
	int i = 20;

	buf[i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_serial(&buf[i]);
}

static void report(const char *name, uint64_t value)
{
	puts_serial("stub: ");
	puts_serial(name);
	puts_serial("=");
	put_u64(value);
	puts_serial("\n");
}

__attribute__((interrupt)) static void breakpoint_handler(void *frame)
{
	(void)frame;
	breakpoints++;
}

static void install_idt(void)
{
	uint64_t handler = (uint64_t)(uintptr_t)breakpoint_handler;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	idt[3] = (struct idt_gate){
		.offset_low = (uint16_t)handler,
		.selector = cs,
		.type_attr = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
		.offset_mid = (uint16_t)(handler >> 16),
		.offset_high = (uint32_t)(handler >> 32),
	};
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

static uint64_t rflags(void)
{
	uint64_t f;

	__asm__ volatile("pushfq; popq %0" : "=r"(f));
	return f;
}

static uint8_t inb(uint16_t port)
{
	uint8_t value;

	__asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

/* The last byte of the command line (boot_params.hdr.cmd_line_ptr, at 0x228). */
static char cmdline_action(const uint8_t *zero_page)
{
	const char *cmdline = (const char *)(uintptr_t) * (const uint32_t *)(zero_page + 0x228);
	char last = 0;

	while (cmdline && *cmdline)
		last = *cmdline++;
	return last;
}

/* Workload state in memory as well as in registers: a snapshot must keep both. */
static volatile uint64_t counted, sum, squares;

/*
 * Action 'c', the snapshot workload: count, printing each step, until a byte arrives on
 * the console; then check the sums against the count (they only agree if every step's
 * state, in memory and registers, survived) and power off. (No SSE: on PVM hosts guest
 * kernel-mode code, which this is, goes through KVM's emulator, which lacks it.) The test
 * snapshots the VM mid-count, restores it, and only then sends the byte.
 */
static void count_workload(void)
{
	uint64_t n, spin;

	puts_serial("stub: counting\n");
	while (!(inb(COM1 + 5) & 1)) {
		n = counted + 1;
		sum += n;
		squares += n * n;
		counted = n;
		report("count", n);
		for (spin = 0; spin < 20000; spin++)
			__asm__ volatile("" ::: "memory");
	}
	n = counted;
	report("total", n);
	report("sums_ok", sum == n * (n + 1) / 2 && squares == n * (n + 1) * (2 * n + 1) / 6);
}

void stub_main(void *zero_page)
{
	uint64_t in = 0xf0f0f0f0f0f0ULL, out;
	uint32_t in32 = 0x100, out32;

	puts_serial("stub: hello from 64-bit\n");
	if (cmdline_action(zero_page) == 'c') {
		count_workload();
		return;
	}
	install_idt();

	__asm__ volatile("popcnt %1, %0" : "=r"(out) : "r"(in) : "cc");
	report("popcnt", out);
	__asm__ volatile("tzcnt %1, %0" : "=r"(out32) : "r"(in32) : "cc");
	report("tzcnt", out32);
	__asm__ volatile("lzcnt %1, %0" : "=r"(out32) : "r"(in32) : "cc");
	report("lzcnt", out32);
	__asm__ volatile("popcnt %1, %0" : "=r"(out) : "m"(in) : "cc");
	report("popcnt_mem", out);
	__asm__ volatile("stac" ::: "cc");
	report("ac_after_stac", (rflags() >> 18) & 1);
	__asm__ volatile("clac" ::: "cc");
	report("ac_after_clac", (rflags() >> 18) & 1);
	__asm__ volatile("fwait");
	report("fwait", 1);
	__asm__ volatile("int3");
	__asm__ volatile("int3");
	report("breakpoints", breakpoints);
	puts_serial("stub: done\n");
}
