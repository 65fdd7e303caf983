/*
 * The x86_64 microVM's guest-physical memory map: where the VMM places boot structures, the
 * kernel, the MMIO hole and its devices. One table of constants so loaders, the e820 map, the
 * MP table and the device model agree.
 */
#ifndef STRATUS_VMM_X86_LAYOUT_H
#define STRATUS_VMM_X86_LAYOUT_H

#include "../../util.h"

#define X86_GDT_GPA	   0x500ULL
#define X86_IDT_GPA	   0x520ULL
#define X86_PVH_INFO_GPA   0x6000ULL /* hvm_start_info, then its memory map and module list */
#define X86_ZERO_PAGE_GPA  0x7000ULL /* struct boot_params */
#define X86_BOOT_STACK_GPA 0x8ff0ULL
#define X86_PML4_GPA	   0x9000ULL
#define X86_PDPT_GPA	   0xa000ULL
#define X86_PD_GPA	   0xb000ULL /* four page directories: 0-4 GiB in 2 MiB pages */
#define X86_CMDLINE_GPA	   0x20000ULL
#define X86_CMDLINE_MAX	   0x10000ULL /* including the NUL */
#define X86_EBDA_GPA	   0x9fc00ULL /* MP floating pointer and table live here */
#define X86_EBDA_END	   0xa0000ULL
#define X86_BIOS_GPA	   0xf0000ULL  /* reserved, as on a PC */
#define X86_HIMEM_GPA	   0x100000ULL /* 1 MiB: where bzImage protected-mode code goes */
#define X86_KERNEL_MIN_GPA 0x100000ULL /* no kernel segment may load below this */

/* RAM runs from 0 to the hole, then resumes at 4 GiB. */
#define X86_MMIO_HOLE_GPA 0xc0000000ULL
#define X86_MMIO_HOLE_END 0x100000000ULL

/* Devices in the hole. */
#define X86_BOOT_TIMER_GPA   0xd0000000ULL /* guest writes X86_BOOT_TIMER_MAGIC when init runs */
#define X86_BOOT_TIMER_MAGIC 123
#define X86_VIRTIO_MMIO_GPA  0xd0001000ULL /* virtio-mmio slots, 4 KiB each */
#define X86_VIRTIO_MMIO_SIZE 0x1000ULL
#define X86_IOAPIC_GPA	     0xfec00000ULL
#define X86_LAPIC_GPA	     0xfee00000ULL

/* I/O ports. */
#define X86_COM1_PORT	  0x3f8
#define X86_COM1_IRQ	  4
#define X86_I8042_PORT	  0x60 /* 0x60 data, 0x64 command/status */
#define X86_EXIT_PORT	  0xf4 /* our guest-kernel patch writes here on poweroff and panic */
#define X86_EXIT_POWEROFF 0
#define X86_EXIT_PANIC	  1

/* GSIs for virtio-mmio devices; 0-4 are the PIT, keyboard, cascade, COM2 and COM1. */
#define X86_VIRTIO_IRQ_BASE 5
#define X86_IRQ_MAX	    23

#define X86_MAX_VCPUS 64

#endif
