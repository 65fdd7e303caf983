/*
 * What a Linux kernel reads at entry when there is no firmware: the command line, the memory
 * map, and either the zero page (struct boot_params, for the 64-bit boot protocol) or
 * hvm_start_info (for the PVH entry). Both carry the same e820 map, computed once here from
 * the guest's RAM regions, and point at the same command line.
 *
 * References: Documentation/arch/x86/boot.rst ("64-bit Boot Protocol", "Details of header
 * fields"), Documentation/arch/x86/zero-page.rst, Xen public/arch-x86/hvm/start_info.h.
 */
#include <string.h>

#include "boot.h"
#include "bootparam_defs.h"
#include "layout.h"

typedef unsigned long long ull;

#define ELF_BOOT_PROTOCOL 0x020f
#define ELF_KERNEL_ALIGN  0x1000000 /* CONFIG_PHYSICAL_ALIGN of the kernels we build */
#define HEAP_END_PTR	  0xfe00

struct e820_map {
	struct boot_e820_entry entries[E820_MAX_ENTRIES_ZEROPAGE];
	unsigned int nr;
};

static int e820_add(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type,
		    struct error *err)
{
	if (map->nr >= ARRAY_SIZE(map->entries))
		return error_set(err, -E2BIG, "e820: more than %zu entries",
				 ARRAY_SIZE(map->entries));
	map->entries[map->nr].addr = addr;
	map->entries[map->nr].size = size;
	map->entries[map->nr].type = type;
	map->nr++;
	return 0;
}

/* The region with the lowest gpa above `above`, or NULL. Regions are few (VM_MEM_MAX_REGIONS). */
static const struct vm_mem_region *next_region(const struct vm_mem *mem, uint64_t above)
{
	const struct vm_mem_region *best = NULL;
	unsigned int i;

	for (i = 0; i < mem->nr_regions; i++) {
		const struct vm_mem_region *r = &mem->regions[i];

		if (r->gpa > above && (!best || r->gpa < best->gpa))
			best = r;
	}
	return best;
}

static int e820_check_region(const struct vm_mem_region *r, struct error *err)
{
	if (r->gpa < X86_MMIO_HOLE_END && r->gpa + r->size > X86_MMIO_HOLE_GPA)
		return error_set(
			err, -EINVAL,
			"e820: guest memory 0x%llx+0x%llx overlaps the MMIO hole at 0x%llx",
			(ull)r->gpa, (ull)r->size, (ull)X86_MMIO_HOLE_GPA);
	return 0;
}

/*
 * The PC-style map: low RAM up to the EBDA, the EBDA and the BIOS area reserved (the MP table
 * lives there), the VGA hole left out, RAM from 1 MiB to the end of the region at 0, then every
 * other region (above 4 GiB) as RAM, in ascending order.
 */
static int e820_build(const struct vm_mem *mem, struct e820_map *map, struct error *err)
{
	const struct vm_mem_region *low = vm_mem_find(mem, 0), *r;
	int ret;

	map->nr = 0;
	if (!low || low->size <= X86_HIMEM_GPA)
		return error_set(err, -EINVAL,
				 "e820: guest memory must start at 0 and extend "
				 "above 1 MiB");
	ret = e820_check_region(low, err);
	if (ret == 0)
		ret = e820_add(map, 0, X86_EBDA_GPA, E820_RAM, err);
	if (ret == 0)
		ret = e820_add(map, X86_EBDA_GPA, X86_EBDA_END - X86_EBDA_GPA, E820_RESERVED, err);
	if (ret == 0)
		ret = e820_add(map, X86_BIOS_GPA, X86_HIMEM_GPA - X86_BIOS_GPA, E820_RESERVED, err);
	if (ret == 0)
		ret = e820_add(map, X86_HIMEM_GPA, low->size - X86_HIMEM_GPA, E820_RAM, err);
	for (r = next_region(mem, 0); r && ret == 0; r = next_region(mem, r->gpa)) {
		ret = e820_check_region(r, err);
		if (ret == 0)
			ret = e820_add(map, r->gpa, r->size, E820_RAM, err);
	}
	return ret;
}

/* The command line and its NUL at X86_CMDLINE_GPA; max_len excludes the NUL. */
static int cmdline_write(struct vm_mem *mem, const char *cmdline, uint64_t max_len,
			 struct error *err)
{
	size_t len;

	if (!cmdline)
		cmdline = "";
	len = strlen(cmdline);
	if (len >= X86_CMDLINE_MAX)
		return error_set(
			err, -E2BIG,
			"kernel command line: %zu bytes, more than the %llu the VMM allows", len,
			(ull)X86_CMDLINE_MAX - 1);
	if (len > max_len)
		return error_set(err, -E2BIG,
				 "kernel command line: %zu bytes, more than the %llu this kernel "
				 "accepts (cmdline_size)",
				 len, (ull)max_len);
	if (vm_mem_write(mem, X86_CMDLINE_GPA, cmdline, len + 1) < 0)
		return error_set(err, -EFAULT, "kernel command line: no guest memory at 0x%llx",
				 (ull)X86_CMDLINE_GPA);
	return 0;
}

static int initrd_check(const struct vm_mem *mem, const struct x86_kernel *kernel,
			const struct x86_boot_args *args, struct error *err)
{
	uint64_t gpa = args->initrd_gpa, size = args->initrd_size;

	if (size == 0)
		return 0;
	if (!vm_mem_ptr(mem, gpa, size))
		return error_set(err, -EINVAL, "initrd: 0x%llx+0x%llx is not in guest memory",
				 (ull)gpa, (ull)size);
	if (kernel && kernel->bzimage && gpa + size - 1 > kernel->initrd_addr_max)
		return error_set(err, -EINVAL,
				 "initrd: ends at 0x%llx, above this kernel's initrd_addr_max 0x%x",
				 (ull)(gpa + size - 1), kernel->initrd_addr_max);
	return 0;
}

/*
 * bzImage: the kernel's own setup header, as boot.rst asks ("copy the setup header into the
 * zero page"). ELF: the few fields the kernel looks at when there is no real-mode setup.
 */
static void zero_page_header(struct boot_params *bp, const struct x86_kernel *kernel)
{
	if (kernel->bzimage) {
		memcpy((uint8_t *)bp + SETUP_HEADER_GPA_OFFSET, kernel->setup_header,
		       sizeof(kernel->setup_header));
		bp->hdr.loadflags |= LOADFLAG_CAN_USE_HEAP;
		bp->hdr.heap_end_ptr = HEAP_END_PTR;
	} else {
		bp->hdr.boot_flag = BOOT_FLAG_MAGIC;
		bp->hdr.header = SETUP_HDRS_MAGIC;
		bp->hdr.version = ELF_BOOT_PROTOCOL;
		bp->hdr.kernel_alignment = ELF_KERNEL_ALIGN;
		bp->hdr.cmdline_size = X86_CMDLINE_MAX - 1;
	}
	bp->hdr.type_of_loader = TYPE_OF_LOADER_UNDEF;
	bp->hdr.loadflags |= LOADFLAG_LOADED_HIGH;
}

int x86_boot_params_setup(struct vm_mem *mem, const struct x86_kernel *kernel,
			  const struct x86_boot_args *args, struct error *err)
{
	uint64_t max_len = kernel->bzimage ? kernel->cmdline_size : X86_CMDLINE_MAX - 1;
	struct boot_params bp;
	struct e820_map map;
	int r;

	r = cmdline_write(mem, args->cmdline, max_len, err);
	if (r == 0)
		r = initrd_check(mem, kernel, args, err);
	if (r == 0)
		r = e820_build(mem, &map, err);
	if (r < 0)
		return r;
	memset(&bp, 0, sizeof(bp));
	zero_page_header(&bp, kernel);
	bp.hdr.cmd_line_ptr = (uint32_t)X86_CMDLINE_GPA;
	bp.ext_cmd_line_ptr = (uint32_t)(X86_CMDLINE_GPA >> 32);
	if (args->initrd_size) {
		bp.hdr.ramdisk_image = (uint32_t)args->initrd_gpa;
		bp.ext_ramdisk_image = (uint32_t)(args->initrd_gpa >> 32);
		bp.hdr.ramdisk_size = (uint32_t)args->initrd_size;
		bp.ext_ramdisk_size = (uint32_t)(args->initrd_size >> 32);
	}
	memcpy(bp.e820_table, map.entries, map.nr * sizeof(map.entries[0]));
	bp.e820_entries = map.nr;
	if (vm_mem_write(mem, X86_ZERO_PAGE_GPA, &bp, sizeof(bp)) < 0)
		return error_set(err, -EFAULT, "zero page: no guest memory at 0x%llx",
				 (ull)X86_ZERO_PAGE_GPA);
	return 0;
}

/*
 * start_info.h: hvm_start_info, then the memory map, then the module list, all in the page
 * below the zero page; the blob is built on the host and written once.
 */
int x86_pvh_info_setup(struct vm_mem *mem, const struct x86_boot_args *args, struct error *err)
{
	uint8_t blob[X86_ZERO_PAGE_GPA - X86_PVH_INFO_GPA] = { 0 };
	struct hvm_start_info info = { .magic = HVM_START_MAGIC_VALUE, .version = 1 };
	struct hvm_modlist_entry mod = { .paddr = args->initrd_gpa, .size = args->initrd_size };
	size_t memmap_off = sizeof(info), mod_off, end;
	struct e820_map map;
	unsigned int i;
	int r;

	r = cmdline_write(mem, args->cmdline, X86_CMDLINE_MAX - 1, err);
	if (r == 0)
		r = initrd_check(mem, NULL, args, err);
	if (r == 0)
		r = e820_build(mem, &map, err);
	if (r < 0)
		return r;
	mod_off = memmap_off + map.nr * sizeof(struct hvm_memmap_table_entry);
	end = mod_off + (args->initrd_size ? sizeof(mod) : 0);
	if (end > sizeof(blob))
		return error_set(err, -E2BIG, "PVH start info: %zu bytes, more than the %zu free",
				 end, sizeof(blob));
	for (i = 0; i < map.nr; i++) {
		struct hvm_memmap_table_entry e = {
			.addr = map.entries[i].addr,
			.size = map.entries[i].size,
			.type = map.entries[i].type == E820_RAM ? HVM_MEMMAP_TYPE_RAM
								: HVM_MEMMAP_TYPE_RESERVED,
		};

		memcpy(blob + memmap_off + i * sizeof(e), &e, sizeof(e));
	}
	info.cmdline_paddr = X86_CMDLINE_GPA;
	info.memmap_paddr = X86_PVH_INFO_GPA + memmap_off;
	info.memmap_entries = map.nr;
	if (args->initrd_size) {
		memcpy(blob + mod_off, &mod, sizeof(mod));
		info.nr_modules = 1;
		info.modlist_paddr = X86_PVH_INFO_GPA + mod_off;
	}
	memcpy(blob, &info, sizeof(info));
	if (vm_mem_write(mem, X86_PVH_INFO_GPA, blob, sizeof(blob)) < 0)
		return error_set(err, -EFAULT, "PVH start info: no guest memory at 0x%llx",
				 (ull)X86_PVH_INFO_GPA);
	return 0;
}
