/*
 * Private to the x86_64 loader: the layouts a direct-boot VMM writes or reads, defined here from
 * their specifications (not from kernel headers) and pinned with static asserts so a typo in a
 * field shows up at compile time rather than as a guest that silently ignores it.
 *
 *  - struct setup_header, struct boot_params, struct boot_e820_entry: Linux x86 boot protocol,
 *    Documentation/arch/x86/boot.rst ("The real-mode kernel header") and zero-page.rst.
 *  - struct hvm_start_info and friends: Xen public/arch-x86/hvm/start_info.h (version 1).
 *  - struct mpf_intel, struct mpc_*: Intel MultiProcessor Specification 1.4, chapter 4.
 *
 * All multi-byte fields are little-endian, as is the host (x86_64 only).
 */
#ifndef STRATUS_VMM_X86_BOOTPARAM_DEFS_H
#define STRATUS_VMM_X86_BOOTPARAM_DEFS_H

#include <stddef.h>
#include <stdint.h>

#define OFFSET_IS(type, field, off) _Static_assert(offsetof(type, field) == (off), #field)

/* boot.rst, "The real-mode kernel header": boot_params offsets 0x1f1 to 0x26b. */
#define SETUP_HEADER_GPA_OFFSET 0x1f1
#define BOOT_FLAG_MAGIC		0xaa55
#define SETUP_HDRS_MAGIC	0x53726448 /* "HdrS" */

#define LOADFLAG_LOADED_HIGH  (1 << 0)
#define LOADFLAG_CAN_USE_HEAP (1 << 7)
#define XLF_KERNEL_64	      (1 << 0)
#define TYPE_OF_LOADER_UNDEF  0xff

struct setup_header {
	uint8_t setup_sects;
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;
	uint16_t jump;
	uint32_t header;
	uint16_t version;
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;
	uint8_t loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max; /* 2.03+ */
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;   /* 2.12+ */
	uint32_t cmdline_size; /* 2.06+ */
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address; /* 2.10+ */
	uint32_t init_size;    /* 2.10+ */
	uint32_t handover_offset;
	uint32_t kernel_info_offset; /* 2.15+ */
} __attribute__((packed));

/* Offsets in the table of boot.rst are boot_params offsets; ours are relative to 0x1f1. */
#define HDR_OFFSET_IS(field, off) OFFSET_IS(struct setup_header, field, (off)-0x1f1)
HDR_OFFSET_IS(boot_flag, 0x1fe);
HDR_OFFSET_IS(header, 0x202);
HDR_OFFSET_IS(version, 0x206);
HDR_OFFSET_IS(type_of_loader, 0x210);
HDR_OFFSET_IS(loadflags, 0x211);
HDR_OFFSET_IS(ramdisk_image, 0x218);
HDR_OFFSET_IS(heap_end_ptr, 0x224);
HDR_OFFSET_IS(cmd_line_ptr, 0x228);
HDR_OFFSET_IS(initrd_addr_max, 0x22c);
HDR_OFFSET_IS(kernel_alignment, 0x230);
HDR_OFFSET_IS(xloadflags, 0x236);
HDR_OFFSET_IS(cmdline_size, 0x238);
HDR_OFFSET_IS(pref_address, 0x258);
HDR_OFFSET_IS(init_size, 0x260);
HDR_OFFSET_IS(kernel_info_offset, 0x268);
_Static_assert(sizeof(struct setup_header) == 0x26c - 0x1f1, "setup_header size");

/* zero-page.rst: E820 entry types as the BIOS reports them (ACPI 6.x §15, "E820 types"). */
#define E820_RAM		  1
#define E820_RESERVED		  2
#define E820_MAX_ENTRIES_ZEROPAGE 128

struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry size");

/* zero-page.rst: the 4 KiB "zero page" handed to the kernel in %rsi. */
struct boot_params {
	uint8_t screen_info[0x40];
	uint8_t apm_bios_info[0x14];
	uint8_t _pad2[4];
	uint64_t tboot_addr;
	uint8_t ist_info[0x10];
	uint64_t acpi_rsdp_addr;
	uint8_t _pad3[8];
	uint8_t hd0_info[0x10];
	uint8_t hd1_info[0x10];
	uint8_t sys_desc_table[0x10];
	uint8_t olpc_ofw_header[0x10];
	uint32_t ext_ramdisk_image;
	uint32_t ext_ramdisk_size;
	uint32_t ext_cmd_line_ptr;
	uint8_t _pad4[112];
	uint32_t cc_blob_address;
	uint8_t edid_info[0x80];
	uint8_t efi_info[0x20];
	uint32_t alt_mem_k;
	uint32_t scratch;
	uint8_t e820_entries;
	uint8_t eddbuf_entries;
	uint8_t edd_mbr_sig_buf_entries;
	uint8_t kbd_status;
	uint8_t secure_boot;
	uint8_t _pad5[2];
	uint8_t sentinel;
	uint8_t _pad6[1];
	struct setup_header hdr;
	uint8_t _pad7[0x290 - 0x1f1 - sizeof(struct setup_header)];
	uint32_t edd_mbr_sig_buffer[16];
	struct boot_e820_entry e820_table[E820_MAX_ENTRIES_ZEROPAGE];
	uint8_t _pad8[48];
	uint8_t eddbuf[6 * 82];
	uint8_t _pad9[276];
} __attribute__((packed));

OFFSET_IS(struct boot_params, acpi_rsdp_addr, 0x070);
OFFSET_IS(struct boot_params, ext_ramdisk_image, 0x0c0);
OFFSET_IS(struct boot_params, ext_ramdisk_size, 0x0c4);
OFFSET_IS(struct boot_params, ext_cmd_line_ptr, 0x0c8);
OFFSET_IS(struct boot_params, cc_blob_address, 0x13c);
OFFSET_IS(struct boot_params, alt_mem_k, 0x1e0);
OFFSET_IS(struct boot_params, e820_entries, 0x1e8);
OFFSET_IS(struct boot_params, sentinel, 0x1ef);
OFFSET_IS(struct boot_params, hdr, SETUP_HEADER_GPA_OFFSET);
OFFSET_IS(struct boot_params, edd_mbr_sig_buffer, 0x290);
OFFSET_IS(struct boot_params, e820_table, 0x2d0);
OFFSET_IS(struct boot_params, eddbuf, 0xd00);
_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is one page");

/* Xen public/arch-x86/hvm/start_info.h: what a PVH entry point finds in %ebx. */
#define HVM_START_MAGIC_VALUE	 0x336ec578
#define HVM_MEMMAP_TYPE_RAM	 1
#define HVM_MEMMAP_TYPE_RESERVED 2
#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version 1+ */
	uint32_t memmap_entries;
	uint32_t reserved;
};
OFFSET_IS(struct hvm_start_info, modlist_paddr, 16);
OFFSET_IS(struct hvm_start_info, cmdline_paddr, 24);
OFFSET_IS(struct hvm_start_info, memmap_paddr, 40);
OFFSET_IS(struct hvm_start_info, memmap_entries, 48);
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info size");

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry size");

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry size");

/* Intel MP spec 1.4 §4.1: MP floating pointer structure. */
#define MPF_SIGNATURE	"_MP_"
#define MPC_SIGNATURE	"PCMP"
#define MP_SPEC_REV_1_4 4

struct mpf_intel {
	char signature[4];
	uint32_t physptr; /* the configuration table */
	uint8_t length;	  /* in 16-byte paragraphs: 1 */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature1; /* 0: a configuration table is present */
	uint8_t feature2; /* bit 7 IMCRP: 0, virtual wire mode */
	uint8_t feature3[3];
} __attribute__((packed));
_Static_assert(sizeof(struct mpf_intel) == 16, "mpf_intel size");

/* §4.2: configuration table header, followed by entry_count entries (§4.3). */
struct mpc_table {
	char signature[4];
	uint16_t length; /* base table, header included */
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t entry_count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_table) == 44, "mpc_table size");

enum mpc_entry_type {
	MP_PROCESSOR = 0,
	MP_BUS = 1,
	MP_IOAPIC = 2,
	MP_INTSRC = 3,
	MP_LINTSRC = 4,
};

#define CPU_FLAG_ENABLED  (1 << 0)
#define CPU_FLAG_BOOTPROC (1 << 1)
#define MPC_APIC_USABLE	  (1 << 0)

/* §4.3.1 */
struct mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;  /* CPUID family/model/stepping */
	uint32_t featureflag; /* CPUID.1:EDX */
	uint32_t reserved[2];
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_cpu) == 20, "mpc_cpu size");

/* §4.3.2 */
struct mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_bus) == 8, "mpc_bus size");

/* §4.3.3 */
struct mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_ioapic) == 8, "mpc_ioapic size");

/* §4.3.4 and §4.3.5: I/O and local interrupt assignment entries share one layout. */
enum mp_irq_type {
	MP_INT = 0,
	MP_NMI = 1,
	MP_SMI = 2,
	MP_EXTINT = 3,
};

struct mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag; /* 0: polarity and trigger conform to the bus */
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic; /* I/O APIC id, or local APIC id (0xff: all) */
	uint8_t dstirq;	 /* I/O APIC INTIN#, or LINTIN# */
} __attribute__((packed));
_Static_assert(sizeof(struct mpc_intsrc) == 8, "mpc_intsrc size");

#endif
