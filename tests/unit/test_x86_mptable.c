/*
 * Unit tests for vmm/arch/x86_64/mptable.c: the MP table is found the way Linux finds it (the
 * floating pointer in the EBDA), both checksums hold, and it describes the vCPUs and the
 * I/O APIC routing. Offsets are those of the Intel MP spec 1.4, chapter 4.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "memory.h"
#include "arch/x86_64/boot.h"
#include "arch/x86_64/layout.h"

#define GUEST_SIZE MIB(2)

struct mp_summary {
	uint64_t table_gpa;
	unsigned int cpus, bsp_count, bsp_id, buses, ioapics, ioapic_id, intsrc, lintsrc;
	uint32_t lapic;
};

static uint8_t byte_sum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return sum;
}

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void mp_walk_entries(const uint8_t *e, unsigned int count, const uint8_t *end,
			    struct mp_summary *s)
{
	unsigned int i;

	for (i = 0; i < count; i++) {
		size_t len = e[0] == 0 ? 20 : 8;

		assert_true(e + len <= end);
		switch (e[0]) {
		case 0: /* §4.3.1 processor: id, version, flags (EN, BP) */
			assert_int_equal(e[1], s->cpus);
			assert_int_equal(e[2], 0x14);
			assert_true(e[3] & 1);
			if (e[3] & 2) {
				s->bsp_count++;
				s->bsp_id = e[1];
			}
			s->cpus++;
			break;
		case 1:
			assert_memory_equal(e + 2, "ISA   ", 6);
			s->buses++;
			break;
		case 2: /* §4.3.3 I/O APIC: id, version, flags, address */
			s->ioapic_id = e[1];
			assert_true(e[3] & 1);
			assert_int_equal(le32(e + 4), X86_IOAPIC_GPA);
			s->ioapics++;
			break;
		case 3: /* §4.3.4: ISA IRQ n to I/O APIC pin n */
			assert_int_equal(e[1], 0);
			assert_int_equal(e[5], e[7]);
			assert_int_equal(e[6], s->ioapic_id);
			s->intsrc++;
			break;
		case 4:
			assert_int_equal(e[6], 0xff);
			s->lintsrc++;
			break;
		default:
			fail_msg("unknown MP entry type %u", e[0]);
		}
		e += len;
	}
	assert_ptr_equal(e, end);
}

/* What Linux's smp_scan_config and check_mpc do, reduced to asserts. */
static void mp_parse(const uint8_t *ram, struct mp_summary *s)
{
	const uint8_t *fp = ram + X86_EBDA_GPA, *t;
	uint16_t len, count;

	memset(s, 0, sizeof(*s));
	assert_memory_equal(fp, "_MP_", 4);
	assert_int_equal(fp[8], 1); /* length in paragraphs */
	assert_int_equal(fp[9], 4); /* spec 1.4 */
	assert_int_equal(byte_sum(fp, 16), 0);
	assert_int_equal(fp[11], 0); /* a table follows, no default config */
	s->table_gpa = le32(fp + 4);
	assert_true(s->table_gpa + 44 <= GUEST_SIZE);
	t = ram + s->table_gpa;
	assert_memory_equal(t, "PCMP", 4);
	memcpy(&len, t + 4, 2);
	memcpy(&count, t + 34, 2);
	assert_int_equal(t[6], 4);
	assert_memory_equal(t + 8, "STRATUS ", 8);
	assert_true(s->table_gpa + len <= GUEST_SIZE);
	assert_int_equal(byte_sum(t, len), 0);
	s->lapic = le32(t + 36);
	mp_walk_entries(t + 44, count, t + len, s);
}

static void check_vcpus(unsigned int n)
{
	uint8_t *ram = malloc(GUEST_SIZE);
	struct mp_summary s;
	struct vm_mem mem;

	memset(ram, 0xcc, GUEST_SIZE);
	vm_mem_init(&mem);
	assert_int_equal(vm_mem_add_region(&mem, 0, GUEST_SIZE, ram, NULL), 0);
	assert_int_equal(x86_mptable_setup(&mem, n, NULL), 0);
	mp_parse(ram, &s);
	assert_int_equal(s.cpus, n);
	assert_int_equal(s.bsp_count, 1);
	assert_int_equal(s.bsp_id, 0);
	assert_int_equal(s.buses, 1);
	assert_int_equal(s.ioapics, 1);
	assert_int_equal(s.ioapic_id, n);
	assert_int_equal(s.intsrc, X86_IRQ_MAX + 1);
	assert_int_equal(s.lintsrc, 2);
	assert_int_equal(s.lapic, X86_LAPIC_GPA);
	/* In the EBDA while it fits, else in the (reserved) BIOS area. */
	if (s.table_gpa != X86_EBDA_GPA + 16)
		assert_int_equal(s.table_gpa, X86_BIOS_GPA);
	vm_mem_destroy(&mem);
	free(ram);
}

static void test_one_vcpu(void **state)
{
	(void)state;
	check_vcpus(1);
}

static void test_two_vcpus(void **state)
{
	(void)state;
	check_vcpus(2);
}

static void test_every_count(void **state)
{
	unsigned int n;

	(void)state;
	for (n = 1; n <= X86_MAX_VCPUS; n++)
		check_vcpus(n);
}

static void test_64_vcpus_in_bios_area(void **state)
{
	uint8_t *ram = calloc(1, GUEST_SIZE);
	struct mp_summary s;
	struct vm_mem mem;

	(void)state;
	vm_mem_init(&mem);
	assert_int_equal(vm_mem_add_region(&mem, 0, GUEST_SIZE, ram, NULL), 0);
	assert_int_equal(x86_mptable_setup(&mem, 64, NULL), 0);
	mp_parse(ram, &s);
	assert_int_equal(s.cpus, 64);
	assert_int_equal(s.table_gpa, X86_BIOS_GPA);
	assert_int_equal(x86_mptable_setup(&mem, 1, NULL), 0);
	mp_parse(ram, &s);
	assert_int_equal(s.table_gpa, X86_EBDA_GPA + 16);
	vm_mem_destroy(&mem);
	free(ram);
}

static void test_rejects_bad_counts(void **state)
{
	uint8_t *ram = calloc(1, GUEST_SIZE);
	struct error err = { 0 };
	struct vm_mem mem;

	(void)state;
	vm_mem_init(&mem);
	assert_int_equal(vm_mem_add_region(&mem, 0, GUEST_SIZE, ram, NULL), 0);
	assert_int_equal(x86_mptable_setup(&mem, 0, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "0 vCPUs"));
	error_clear(&err);
	assert_int_equal(x86_mptable_setup(&mem, X86_MAX_VCPUS + 1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "65 vCPUs (must be 1 to 64)"));
	assert_int_equal(ram[X86_EBDA_GPA], 0); /* nothing written */
	vm_mem_destroy(&mem);
	free(ram);
}

static void test_no_memory(void **state)
{
	uint8_t ram[4096];
	struct error err = { 0 };
	struct vm_mem mem;

	(void)state;
	vm_mem_init(&mem);
	assert_int_equal(vm_mem_add_region(&mem, 0, sizeof(ram), ram, NULL), 0);
	assert_int_equal(x86_mptable_setup(&mem, 1, &err), -EFAULT);
	assert_non_null(strstr(err.msg, "mptable"));
	vm_mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_vcpu),
		cmocka_unit_test(test_two_vcpus),
		cmocka_unit_test(test_every_count),
		cmocka_unit_test(test_64_vcpus_in_bios_area),
		cmocka_unit_test(test_rejects_bad_counts),
		cmocka_unit_test(test_no_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
