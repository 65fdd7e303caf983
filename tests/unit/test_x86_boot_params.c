/*
 * Unit tests for vmm/arch/x86_64/boot_params.c: the command line, the zero page and the PVH
 * start info as the guest kernel reads them. Fields are read back at the offsets the
 * specifications give (boot.rst, zero-page.rst, Xen start_info.h), not through our own structs,
 * so a wrong offset in the private header fails here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "memory.h"
#include "arch/x86_64/boot.h"
#include "arch/x86_64/layout.h"

#define ZP X86_ZERO_PAGE_GPA

struct fixture {
	struct vm_mem mem;
	uint8_t *low, *high;
	struct x86_kernel k;
	struct x86_boot_args args;
	struct error err;
};

static struct fixture *fixture_new(uint64_t low_size, uint64_t high_size)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	vm_mem_init(&f->mem);
	/* The high region first: the e820 map must come out sorted anyway. */
	if (high_size) {
		f->high = calloc(1, high_size);
		assert_int_equal(
			vm_mem_add_region(&f->mem, X86_MMIO_HOLE_END, high_size, f->high, NULL), 0);
	}
	if (low_size) {
		f->low = malloc(low_size);
		memset(f->low, 0xcc,
		       MIN(low_size, MIB(1))); /* stale bytes the zero page must not keep */
		assert_int_equal(vm_mem_add_region(&f->mem, 0, low_size, f->low, NULL), 0);
	}
	f->args.cmdline = "console=ttyS0 reboot=k panic=1";
	return f;
}

static int setup(void **state)
{
	*state = fixture_new(MIB(128), 0);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vm_mem_destroy(&f->mem);
	free(f->low);
	free(f->high);
	free(f);
	return 0;
}

static uint64_t rd(struct fixture *f, uint64_t gpa, size_t len)
{
	uint64_t v = 0;

	assert_int_equal(vm_mem_read(&f->mem, gpa, &v, len), 0);
	return v;
}

struct e820 {
	uint64_t addr, size;
	uint32_t type;
};

/* zero-page.rst: e820_entries at 0x1e8, e820_table (20-byte entries) at 0x2d0. */
static unsigned int zero_page_e820(struct fixture *f, struct e820 *out)
{
	unsigned int n = rd(f, ZP + 0x1e8, 1), i;

	for (i = 0; i < n; i++) {
		out[i].addr = rd(f, ZP + 0x2d0 + i * 20, 8);
		out[i].size = rd(f, ZP + 0x2d0 + i * 20 + 8, 8);
		out[i].type = rd(f, ZP + 0x2d0 + i * 20 + 16, 4);
	}
	return n;
}

static void assert_e820(const struct e820 *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

/* The PC layout below 1 MiB that every map starts with. */
static void assert_low_map(const struct e820 *e, uint64_t low_size)
{
	assert_e820(&e[0], 0, 0x9fc00, 1);
	assert_e820(&e[1], 0x9fc00, 0x400, 2);
	assert_e820(&e[2], 0xf0000, 0x10000, 2);
	assert_e820(&e[3], 0x100000, low_size - 0x100000, 1);
}

static void test_cmdline_and_elf_header(void **state)
{
	struct fixture *f = *state;
	char buf[64];

	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), 0);
	assert_int_equal(vm_mem_read(&f->mem, X86_CMDLINE_GPA, buf, strlen(f->args.cmdline) + 1),
			 0);
	assert_string_equal(buf, f->args.cmdline);
	assert_int_equal(rd(f, ZP + 0x228, 4), X86_CMDLINE_GPA); /* cmd_line_ptr */
	assert_int_equal(rd(f, ZP + 0x0c8, 4), 0);		 /* ext_cmd_line_ptr */
	assert_int_equal(rd(f, ZP + 0x1fe, 2), 0xaa55);		 /* boot_flag */
	assert_int_equal(rd(f, ZP + 0x202, 4), 0x53726448);	 /* "HdrS" */
	assert_int_equal(rd(f, ZP + 0x206, 2), 0x020f);
	assert_int_equal(rd(f, ZP + 0x230, 4), 0x1000000); /* kernel_alignment */
	assert_int_equal(rd(f, ZP + 0x210, 1), 0xff);	   /* type_of_loader */
	assert_true(rd(f, ZP + 0x211, 1) & 0x01);	   /* LOADED_HIGH */
	assert_int_equal(rd(f, ZP + 0x218, 4), 0);	   /* no ramdisk */
	assert_int_equal(rd(f, ZP + 0x21c, 4), 0);
	/* Zeroed first: nothing of the 0xcc fill survives. */
	assert_int_equal(rd(f, ZP, 8), 0);
	assert_int_equal(rd(f, ZP + 0x1ef, 1), 0); /* sentinel */
	assert_int_equal(rd(f, ZP + 0xff8, 8), 0);
}

static void test_bzimage_header(void **state)
{
	struct fixture *f = *state;
	uint8_t *h = f->k.setup_header;

	f->k.bzimage = true;
	f->k.protocol = 0x020c;
	f->k.cmdline_size = 2047;
	f->k.initrd_addr_max = 0x7fffffff;
	h[0x1fe - 0x1f1] = 0x55;
	h[0x1ff - 0x1f1] = 0xaa;
	memcpy(h + 0x202 - 0x1f1, "HdrS", 4);
	h[0x206 - 0x1f1] = 0x0c;
	h[0x207 - 0x1f1] = 0x02;
	h[0x211 - 0x1f1] = 0x01;
	h[0x236 - 0x1f1] = 0x01; /* xloadflags */
	h[0x260 - 0x1f1] = 0x42; /* init_size */
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), 0);
	assert_int_equal(rd(f, ZP + 0x206, 2), 0x020c); /* the kernel's, not ours */
	assert_int_equal(rd(f, ZP + 0x236, 2), 1);
	assert_int_equal(rd(f, ZP + 0x260, 4), 0x42);
	assert_int_equal(rd(f, ZP + 0x230, 4), 0); /* not the ELF default */
	assert_int_equal(rd(f, ZP + 0x210, 1), 0xff);
	assert_int_equal(rd(f, ZP + 0x211, 1), 0x81); /* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(rd(f, ZP + 0x224, 2), 0xfe00);
	assert_int_equal(rd(f, ZP + 0x228, 4), X86_CMDLINE_GPA);
}

static void test_cmdline_limits(void **state)
{
	struct fixture *f = *state;
	char *line = malloc(70001);

	memset(line, 'a', 70000);
	line[70000] = '\0';
	f->args.cmdline = line;
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), -E2BIG);
	assert_non_null(strstr(f->err.msg, "70000 bytes"));
	assert_non_null(strstr(f->err.msg, "65535"));

	/* A bzImage's own limit: cmdline_size excludes the NUL. */
	f->k.bzimage = true;
	f->k.cmdline_size = 2047;
	f->k.initrd_addr_max = 0x7fffffff;
	line[3000] = '\0';
	error_clear(&f->err);
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), -E2BIG);
	assert_non_null(strstr(f->err.msg, "3000 bytes"));
	assert_non_null(strstr(f->err.msg, "2047"));
	line[2047] = '\0';
	error_clear(&f->err);
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), 0);
	assert_int_equal(rd(f, X86_CMDLINE_GPA + 2046, 2), 'a'); /* 'a', NUL */

	/* The longest line the VMM takes, for an ELF kernel. */
	f->k.bzimage = false;
	memset(line, 'b', 65535);
	line[65535] = '\0';
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), 0);
	f->args.cmdline = NULL; /* an empty line */
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), 0);
	assert_int_equal(rd(f, X86_CMDLINE_GPA, 1), 0);
	free(line);
}

static void test_e820_128m(void **state)
{
	struct fixture *f = *state;
	struct e820 e[128];

	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), 0);
	assert_int_equal(zero_page_e820(f, e), 4);
	assert_low_map(e, MIB(128));
}

static void test_e820_above_4g(void **state)
{
	struct fixture *f = fixture_new(MIB(4), MIB(2));
	struct e820 e[128];

	(void)state;
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), 0);
	assert_int_equal(zero_page_e820(f, e), 5);
	assert_low_map(e, MIB(4));
	assert_e820(&e[4], 0x100000000ULL, MIB(2), 1);
	teardown((void **)&f);
}

static void test_e820_needs_low_memory(void **state)
{
	struct fixture *f = fixture_new(0, MIB(2));

	(void)state;
	/* No RAM at 0: nowhere for the command line, let alone the zero page. */
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), -EFAULT);
	assert_non_null(strstr(f->err.msg, "kernel command line: no guest memory"));
	teardown((void **)&f);

	/* RAM at 0, but none above 1 MiB for the kernel. */
	f = fixture_new(KIB(512), MIB(2));
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), -EINVAL);
	assert_non_null(strstr(f->err.msg, "above 1 MiB"));
	error_clear(&f->err);
	assert_int_equal(x86_pvh_info_setup(&f->mem, &f->args, &f->err), -EINVAL);
	assert_non_null(strstr(f->err.msg, "above 1 MiB"));
	teardown((void **)&f);
}

static void test_initrd_fields(void **state)
{
	struct fixture *f = fixture_new(MIB(64), MIB(2));

	(void)state;
	f->args.initrd_gpa = 0x3000000;
	f->args.initrd_size = 0x12345;
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), 0);
	assert_int_equal(rd(f, ZP + 0x218, 4), 0x3000000); /* ramdisk_image */
	assert_int_equal(rd(f, ZP + 0x21c, 4), 0x12345);   /* ramdisk_size */
	assert_int_equal(rd(f, ZP + 0x0c0, 4), 0);	   /* ext_ramdisk_image */
	assert_int_equal(rd(f, ZP + 0x0c4, 4), 0);

	/* Above 4 GiB, the high half goes in the ext_ field. */
	f->args.initrd_gpa = 0x100001000ULL;
	f->args.initrd_size = 0x1000;
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), 0);
	assert_int_equal(rd(f, ZP + 0x218, 4), 0x1000);
	assert_int_equal(rd(f, ZP + 0x0c0, 4), 1);

	/* Not in guest memory, or above what a bzImage accepts. */
	f->args.initrd_gpa = MIB(63);
	f->args.initrd_size = MIB(2);
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), -EINVAL);
	assert_non_null(strstr(f->err.msg, "initrd"));
	f->k.bzimage = true;
	f->k.cmdline_size = 255;
	f->k.initrd_addr_max = MIB(32) - 1;
	f->args.initrd_gpa = MIB(32);
	f->args.initrd_size = 0x1000;
	error_clear(&f->err);
	assert_int_equal(x86_boot_params_setup(&f->mem, &f->k, &f->args, &f->err), -EINVAL);
	assert_non_null(strstr(f->err.msg, "initrd_addr_max"));
	teardown((void **)&f);
}

/* ---- PVH ------------------------------------------------------------------------------ */

/* start_info.h offsets: magic 0, version 4, flags 8, nr_modules 12, modlist_paddr 16,
 * cmdline_paddr 24, rsdp_paddr 32, memmap_paddr 40, memmap_entries 48. */
static void test_pvh_info(void **state)
{
	struct fixture *f = fixture_new(MIB(64), MIB(2));
	const uint64_t si = X86_PVH_INFO_GPA;
	uint64_t memmap, mod;
	char buf[64];

	(void)state;
	f->args.initrd_gpa = 0x3000000;
	f->args.initrd_size = 0x12345;
	assert_int_equal(x86_pvh_info_setup(&f->mem, &f->args, &f->err), 0);
	assert_int_equal(rd(f, si, 4), 0x336ec578);
	assert_int_equal(rd(f, si + 4, 4), 1);
	assert_int_equal(rd(f, si + 24, 8), X86_CMDLINE_GPA);
	assert_int_equal(vm_mem_read(&f->mem, X86_CMDLINE_GPA, buf, strlen(f->args.cmdline) + 1),
			 0);
	assert_string_equal(buf, f->args.cmdline);
	assert_int_equal(rd(f, si + 32, 8), 0);

	/* The same map as the zero page's, as 24-byte entries. */
	memmap = rd(f, si + 40, 8);
	assert_int_equal(rd(f, si + 48, 4), 5);
	assert_true(memmap >= si + 56 && memmap + 5 * 24 <= X86_ZERO_PAGE_GPA);
	assert_int_equal(rd(f, memmap, 8), 0);
	assert_int_equal(rd(f, memmap + 8, 8), 0x9fc00);
	assert_int_equal(rd(f, memmap + 16, 4), 1);
	assert_int_equal(rd(f, memmap + 24 + 16, 4), 2);
	assert_int_equal(rd(f, memmap + 3 * 24, 8), 0x100000);
	assert_int_equal(rd(f, memmap + 3 * 24 + 8, 8), MIB(63));
	assert_int_equal(rd(f, memmap + 4 * 24, 8), 0x100000000ULL);
	assert_int_equal(rd(f, memmap + 4 * 24 + 16, 4), 1);

	/* One module, the initrd: paddr, size, cmdline_paddr. */
	assert_int_equal(rd(f, si + 12, 4), 1);
	mod = rd(f, si + 16, 8);
	assert_true(mod >= memmap + 5 * 24 && mod + 32 <= X86_ZERO_PAGE_GPA);
	assert_int_equal(rd(f, mod, 8), 0x3000000);
	assert_int_equal(rd(f, mod + 8, 8), 0x12345);
	assert_int_equal(rd(f, mod + 16, 8), 0);

	/* Without an initrd, no modules. */
	f->args.initrd_size = 0;
	assert_int_equal(x86_pvh_info_setup(&f->mem, &f->args, &f->err), 0);
	assert_int_equal(rd(f, si + 12, 4), 0);
	assert_int_equal(rd(f, si + 16, 8), 0);
	teardown((void **)&f);
}

static void test_pvh_cmdline_too_long(void **state)
{
	struct fixture *f = *state;
	char *line = malloc(X86_CMDLINE_MAX + 1);

	memset(line, 'x', X86_CMDLINE_MAX);
	line[X86_CMDLINE_MAX] = '\0';
	f->args.cmdline = line;
	assert_int_equal(x86_pvh_info_setup(&f->mem, &f->args, &f->err), -E2BIG);
	assert_non_null(strstr(f->err.msg, "65536 bytes"));
	free(line);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cmdline_and_elf_header),
		T(test_bzimage_header),
		T(test_cmdline_limits),
		T(test_e820_128m),
		cmocka_unit_test(test_e820_above_4g),
		cmocka_unit_test(test_e820_needs_low_memory),
		cmocka_unit_test(test_initrd_fields),
		cmocka_unit_test(test_pvh_info),
		T(test_pvh_cmdline_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
