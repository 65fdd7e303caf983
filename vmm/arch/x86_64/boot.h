/*
 * Loading a Linux kernel for direct boot on x86_64 and building what it reads at entry: the
 * zero page (boot_params with e820 map and command line) for the 64-bit boot protocol, the
 * hvm_start_info for PVH, and the MP table that describes the vCPUs without ACPI.
 *
 * Kernel images and initrds are untrusted input: every offset and length in them is checked
 * before use, and nothing is written outside guest RAM (all writes go through vm_mem_*).
 */
#ifndef STRATUS_VMM_X86_BOOT_H
#define STRATUS_VMM_X86_BOOT_H

#include <stdint.h>
#include <stddef.h>

#include "../../memory.h"

struct x86_kernel {
	uint64_t entry64;    /* 64-bit entry (ELF e_entry, or bzImage startup_64); 0 if none */
	uint64_t pvh_entry;  /* 32-bit PVH entry (XEN_ELFNOTE_PHYS32_ENTRY); 0 if none */
	uint64_t load_start; /* lowest guest-physical byte the image occupies */
	uint64_t load_end;   /* first guest-physical byte above the image */
	bool bzimage;
	/*
	 * bzImage only: the kernel's setup header (boot_params offset 0x1f1 onwards, as found
	 * in the image), copied into the zero page by x86_boot_params_setup.
	 */
	uint8_t setup_header[0x290 - 0x1f1];
	uint16_t protocol;	  /* boot protocol version, 0 for ELF */
	uint32_t initrd_addr_max; /* highest byte an initrd may end at */
	uint32_t cmdline_size;	  /* longest command line the kernel accepts, without NUL */
};

/*
 * Load an ELF vmlinux (64-bit, EM_X86_64, PT_LOAD segments at their physical addresses;
 * PVH note read if present) or a bzImage (setup header "HdrS", protocol >= 2.06, 64-bit
 * entry) into guest memory.
 */
int x86_kernel_load(struct vm_mem *mem, const void *image, size_t size, struct x86_kernel *out,
		    struct error *err);

/*
 * Place an initrd page-aligned as high as allowed in the low RAM region (below the MMIO
 * hole and the kernel's initrd_addr_max), above the kernel.
 */
int x86_initrd_load(struct vm_mem *mem, const struct x86_kernel *kernel, const void *data,
		    size_t size, uint64_t *gpa, struct error *err);

struct x86_boot_args {
	const char *cmdline;
	uint64_t initrd_gpa; /* 0 if none */
	uint64_t initrd_size;
};

/*
 * Write the command line at X86_CMDLINE_GPA and the zero page at X86_ZERO_PAGE_GPA: the
 * kernel's setup header (bzImage) or a minimal one (ELF), type_of_loader, loadflags,
 * cmd_line_ptr, ramdisk, and an e820 map from the memory regions with the EBDA and BIOS
 * area reserved.
 */
int x86_boot_params_setup(struct vm_mem *mem, const struct x86_kernel *kernel,
			  const struct x86_boot_args *args, struct error *err);

/* Write hvm_start_info (version 1) at X86_PVH_INFO_GPA with its memory map and initrd module. */
int x86_pvh_info_setup(struct vm_mem *mem, const struct x86_boot_args *args, struct error *err);

/* Write an MP floating pointer and configuration table at X86_EBDA_GPA for nr_vcpus CPUs. */
int x86_mptable_setup(struct vm_mem *mem, unsigned int nr_vcpus, struct error *err);

#endif
