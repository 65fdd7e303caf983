/*
 * Unit tests for vmm/memory.c: the checked guest-memory accessors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "memory.h"

static uint8_t low[8192], high[4096];

static void setup_two_regions(struct vm_mem *mem)
{
	vm_mem_init(mem);
	assert_int_equal(vm_mem_add_region(mem, 0, sizeof(low), low, NULL), 0);
	assert_int_equal(vm_mem_add_region(mem, 0x10000, sizeof(high), high, NULL), 0);
}

static void test_ptr_bounds(void **state)
{
	struct vm_mem mem;

	(void)state;
	setup_two_regions(&mem);
	assert_ptr_equal(vm_mem_ptr(&mem, 0, sizeof(low)), low);
	assert_ptr_equal(vm_mem_ptr(&mem, 100, 10), low + 100);
	assert_null(vm_mem_ptr(&mem, 8000, 200)); /* runs off the end */
	assert_null(vm_mem_ptr(&mem, 8192, 1));	  /* in the gap */
	assert_null(vm_mem_ptr(&mem, 0x10000, 4097));
	assert_null(vm_mem_ptr(&mem, 0x10001, UINT64_MAX)); /* overflow */
	assert_null(vm_mem_ptr(&mem, UINT64_MAX, 2));
	assert_ptr_equal(vm_mem_ptr(&mem, 0x10fff, 1), high + 4095);
	vm_mem_destroy(&mem);
}

static void test_read_write(void **state)
{
	struct vm_mem mem;
	uint8_t buf[16];

	(void)state;
	setup_two_regions(&mem);
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(vm_mem_write(&mem, 8190, buf, 2), 0);
	assert_int_equal(low[8191], 0xab);
	/* Partly outside: fails and writes nothing. */
	low[8191] = 0;
	assert_int_equal(vm_mem_write(&mem, 8190, buf, 3), -EFAULT);
	assert_int_equal(low[8191], 0);
	assert_int_equal(vm_mem_read(&mem, 0x10ff0, buf, 16), 0);
	assert_int_equal(vm_mem_read(&mem, 0x10ff0, buf, 17), -EFAULT);
	vm_mem_destroy(&mem);
}

static void test_overlap_refused(void **state)
{
	struct vm_mem mem;
	struct error err = { 0 };

	(void)state;
	setup_two_regions(&mem);
	assert_int_equal(vm_mem_add_region(&mem, 4096, 4096, high, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "overlaps"));
	vm_mem_destroy(&mem);
}

static void test_alloc_anonymous(void **state)
{
	struct vm_mem mem;
	uint32_t v = 0xdeadbeef, back = 0;

	(void)state;
	vm_mem_init(&mem);
	assert_int_equal(vm_mem_alloc_region(&mem, 0, MIB(64), NULL), 0);
	assert_int_equal(mem.ram_size, MIB(64));
	assert_int_equal(vm_mem_write(&mem, MIB(64) - 4, &v, 4), 0);
	assert_int_equal(vm_mem_read(&mem, MIB(64) - 4, &back, 4), 0);
	assert_int_equal(back, v);
	assert_int_equal(vm_mem_alloc_region(&mem, 1, 4096, NULL), -EINVAL);
	vm_mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ptr_bounds),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_overlap_refused),
		cmocka_unit_test(test_alloc_anonymous),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
