/*
 * Kernel and initrd loading for x86_64 direct boot. Two image formats are accepted:
 *
 *  - an ELF vmlinux (ELF64, EM_X86_64, ET_EXEC): each PT_LOAD segment goes to its physical
 *    address; the 64-bit entry is e_entry (translated if it is a virtual address) and the PVH
 *    entry, if any, comes from the XEN_ELFNOTE_PHYS32_ENTRY note;
 *  - a bzImage (Linux boot protocol 2.06+, Documentation/arch/x86/boot.rst): the protected-mode
 *    part goes to 1 MiB, the 64-bit entry is 0x200 past it ("64-bit boot protocol"), and the
 *    setup header is kept for the zero page.
 *
 * The image is untrusted: every header is copied out before use (no unaligned reads), every
 * offset and size is checked with range_fits, and the whole image is validated before the
 * first byte is written to the guest, so a rejected image leaves guest memory untouched.
 */
#include <elf.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "boot.h"
#include "bootparam_defs.h"
#include "layout.h"

#define ELF_MAX_PHDRS	  64			/* a vmlinux has about 5 */
#define KERNEL_VIRT_BASE  0xffffffff80000000ULL /* __START_KERNEL_map */
#define BZ_HEADER_MIN_END 0x206			/* "HdrS" ends here */
#define BZ_SECTOR	  512
#define INITRD_ALIGN	  4096ULL

typedef unsigned long long ull;

/* "300 MiB" or "12 KiB", rounded up: sizes in messages a person reads. */
static const char *size_str(char buf[32], uint64_t n)
{
	if (n >= MIB(1))
		snprintf(buf, 32, "%llu MiB", (ull)((n + MIB(1) - 1) >> 20));
	else
		snprintf(buf, 32, "%llu KiB", (ull)((n + KIB(1) - 1) >> 10));
	return buf;
}

/* ---- ELF vmlinux ---------------------------------------------------------------------- */

static int elf_read_header(const uint8_t *image, size_t size, Elf64_Ehdr *eh, struct error *err)
{
	if (size < EI_NIDENT)
		return error_set(err, -ENOEXEC, "kernel: truncated ELF header (%zu bytes)", size);
	if (image[EI_CLASS] != ELFCLASS64 || image[EI_DATA] != ELFDATA2LSB)
		return error_set(err, -ENOEXEC, "kernel: ELF image is not x86_64 (%s)",
				 image[EI_CLASS] == ELFCLASS32 ? "32-bit"
							       : "not 64-bit little-endian");
	if (size < sizeof(*eh))
		return error_set(err, -ENOEXEC, "kernel: truncated ELF header (%zu bytes)", size);
	memcpy(eh, image, sizeof(*eh));
	if (eh->e_machine != EM_X86_64)
		return error_set(err, -ENOEXEC, "kernel: ELF image is not x86_64 (e_machine %u)",
				 eh->e_machine);
	if (eh->e_type != ET_EXEC)
		return error_set(err, -ENOEXEC,
				 "kernel: ELF image is not an executable (e_type %u)", eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return error_set(err, -ENOEXEC, "kernel: ELF program header size is %u, not %zu",
				 eh->e_phentsize, sizeof(Elf64_Phdr));
	if (eh->e_phnum == 0 || eh->e_phnum > ELF_MAX_PHDRS)
		return error_set(err, -ENOEXEC,
				 "kernel: ELF image has %u program headers (want 1 to %u)",
				 eh->e_phnum, ELF_MAX_PHDRS);
	if (!range_fits(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), size))
		return error_set(
			err, -ENOEXEC,
			"kernel: truncated ELF program header table (%u entries at 0x%llx, "
			"image is %zu bytes)",
			eh->e_phnum, (ull)eh->e_phoff, size);
	return 0;
}

static void elf_phdr(const uint8_t *image, const Elf64_Ehdr *eh, unsigned int i, Elf64_Phdr *ph)
{
	memcpy(ph, image + eh->e_phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

/* Any segment: its file bytes must lie inside the image. */
static int elf_check_file_range(const Elf64_Phdr *ph, unsigned int i, size_t size,
				struct error *err)
{
	if (!range_fits(ph->p_offset, ph->p_filesz, size))
		return error_set(
			err, -ENOEXEC,
			"kernel: truncated ELF: segment %u data 0x%llx+0x%llx lies past the "
			"end of the image (%zu bytes)",
			i, (ull)ph->p_offset, (ull)ph->p_filesz, size);
	return 0;
}

static int elf_check_load(const struct vm_mem *mem, const Elf64_Phdr *ph, unsigned int i,
			  size_t size, struct error *err)
{
	int r = elf_check_file_range(ph, i, size, err);

	if (r < 0)
		return r;
	if (ph->p_filesz > ph->p_memsz)
		return error_set(err, -ENOEXEC,
				 "kernel: segment %u: file size 0x%llx exceeds memory size 0x%llx",
				 i, (ull)ph->p_filesz, (ull)ph->p_memsz);
	if (ph->p_memsz == 0)
		return 0;
	if (ph->p_paddr < X86_KERNEL_MIN_GPA)
		return error_set(err, -ENOEXEC,
				 "kernel: segment %u at 0x%llx lies below 1 MiB (0x%llx)", i,
				 (ull)ph->p_paddr, (ull)X86_KERNEL_MIN_GPA);
	if (!vm_mem_ptr(mem, ph->p_paddr, ph->p_memsz))
		return error_set(err, -E2BIG,
				 "kernel: segment %u at 0x%llx+0x%llx does not fit in guest memory "
				 "(-m too small?)",
				 i, (ull)ph->p_paddr, (ull)ph->p_memsz);
	return 0;
}

/* XEN_ELFNOTE_PHYS32_ENTRY: a 32-bit physical address, stored in 4 or 8 bytes. */
static int elf_read_pvh_note(const uint8_t *desc, uint32_t descsz, uint64_t *pvh_entry,
			     struct error *err)
{
	uint64_t v = 0;

	if (descsz != 4 && descsz != 8)
		return error_set(err, -ENOEXEC,
				 "kernel: PVH entry note has a %u-byte value (want 4 or 8)",
				 descsz);
	memcpy(&v, desc, descsz);
	if (v == 0 || v > UINT32_MAX)
		return error_set(err, -ENOEXEC, "kernel: PVH entry 0x%llx is not a 32-bit address",
				 (ull)v);
	*pvh_entry = v;
	return 0;
}

/*
 * Walk the notes of one PT_NOTE segment with the given padding (ELF gABI "Note Section": a
 * 12-byte header, the name, the descriptor; offsets computed as binutils does). Every step
 * advances at least 12 bytes, so the loop is bounded by the segment size. *pvh_entry is set
 * only if the whole walk succeeds.
 */
static int elf_walk_notes(const uint8_t *notes, uint64_t len, uint64_t align, unsigned int i,
			  uint64_t *pvh_entry, struct error *err)
{
	uint64_t pos = 0, found = 0;

	while (range_fits(pos, sizeof(Elf64_Nhdr), len)) {
		uint64_t name_off = pos + sizeof(Elf64_Nhdr), desc_off;
		Elf64_Nhdr nh;
		int r;

		memcpy(&nh, notes + pos, sizeof(nh));
		desc_off = pos + ALIGN_UP(sizeof(nh) + (uint64_t)nh.n_namesz, align);
		if (!range_fits(name_off, nh.n_namesz, len) ||
		    !range_fits(desc_off, nh.n_descsz, len))
			return error_set(err, -ENOEXEC,
					 "kernel: malformed ELF note at 0x%llx in segment %u "
					 "(name %u bytes, value %u bytes, segment %llu bytes)",
					 (ull)pos, i, nh.n_namesz, nh.n_descsz, (ull)len);
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    memcmp(notes + name_off, "Xen", 4) == 0) {
			r = elf_read_pvh_note(notes + desc_off, nh.n_descsz, &found, err);
			if (r < 0)
				return r;
		}
		pos = ALIGN_UP(desc_off + nh.n_descsz, align);
	}
	if (found)
		*pvh_entry = found;
	return 0;
}

/*
 * Linux pads its own notes to 4 bytes even when an 8-byte-aligned .note.gnu.property makes
 * the segment's p_align 8, so 4-byte padding is tried first; 8 only when p_align asks for it
 * and 4 found no PVH note. The image is rejected only if no padding makes sense of it.
 */
static int elf_parse_notes(const uint8_t *image, const Elf64_Phdr *ph, unsigned int i,
			   uint64_t *pvh_entry, struct error *err)
{
	const uint8_t *notes = image + ph->p_offset;
	struct error first = { 0 }, second = { 0 };
	int r4, r8;

	r4 = elf_walk_notes(notes, ph->p_filesz, 4, i, pvh_entry, &first);
	if (ph->p_align != 8 || (r4 == 0 && *pvh_entry))
		return r4 < 0 ? error_set(err, r4, "%s", first.msg) : 0;
	r8 = elf_walk_notes(notes, ph->p_filesz, 8, i, pvh_entry, &second);
	if (r4 < 0 && r8 < 0)
		return error_set(err, r4, "%s", first.msg);
	return 0;
}

/*
 * The guest-physical address of addr, which is virtual (looked up by p_vaddr) or physical
 * (by p_paddr), if some loaded segment contains it; 0 otherwise.
 */
static uint64_t elf_to_paddr(const uint8_t *image, const Elf64_Ehdr *eh, uint64_t addr, bool virt)
{
	unsigned int i;

	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		uint64_t base;

		elf_phdr(image, eh, i, &ph);
		base = virt ? ph.p_vaddr : ph.p_paddr;
		if (ph.p_type == PT_LOAD && addr >= base && addr - base < ph.p_memsz)
			return ph.p_paddr + (addr - base);
	}
	return 0;
}

/* Pass 1: check every segment, find the load range and the PVH note. Writes nothing. */
static int elf_scan(const struct vm_mem *mem, const uint8_t *image, size_t size,
		    const Elf64_Ehdr *eh, struct x86_kernel *k, struct error *err)
{
	unsigned int i;
	int r = 0;

	k->load_start = UINT64_MAX;
	for (i = 0; i < eh->e_phnum && r == 0; i++) {
		Elf64_Phdr ph;

		elf_phdr(image, eh, i, &ph);
		if (ph.p_type == PT_LOAD) {
			r = elf_check_load(mem, &ph, i, size, err);
			if (r == 0 && ph.p_memsz) {
				k->load_start = MIN(k->load_start, ph.p_paddr);
				k->load_end = MAX(k->load_end, ph.p_paddr + ph.p_memsz);
			}
		} else if (ph.p_type == PT_NOTE) {
			r = elf_check_file_range(&ph, i, size, err);
			if (r == 0)
				r = elf_parse_notes(image, &ph, i, &k->pvh_entry, err);
		}
	}
	if (r == 0 && k->load_end == 0)
		r = error_set(err, -ENOEXEC, "kernel: ELF image has no loadable segment");
	return r;
}

static int elf_find_entries(const uint8_t *image, const Elf64_Ehdr *eh, struct x86_kernel *k,
			    struct error *err)
{
	bool virt = eh->e_entry >= KERNEL_VIRT_BASE;

	k->entry64 = elf_to_paddr(image, eh, eh->e_entry, virt);
	if (k->entry64 == 0)
		return error_set(err, -ENOEXEC,
				 "kernel: ELF entry point 0x%llx is outside the loaded segments",
				 (ull)eh->e_entry);
	if (k->pvh_entry && !elf_to_paddr(image, eh, k->pvh_entry, false))
		return error_set(err, -ENOEXEC,
				 "kernel: PVH entry point 0x%llx is outside the loaded segments",
				 (ull)k->pvh_entry);
	return 0;
}

/*
 * Allocate the pages a segment lands in with one madvise instead of a page fault per 4 KiB
 * page during the copy (a vmlinux is ~17 MiB: ~4,300 faults, a few ms of VM start-up, more
 * where the host is itself a VM). Best effort: without MADV_POPULATE_WRITE (Linux < 5.14)
 * the copy faults them in as before.
 */
static void prefault(void *p, size_t len)
{
	uintptr_t start = ALIGN_DOWN((uintptr_t)p, 4096);

	(void)madvise((void *)start, (uintptr_t)p + len - start, MADV_POPULATE_WRITE);
}

/* Pass 2: copy each PT_LOAD's file bytes and zero the rest (.bss). Checked by elf_scan. */
static void elf_copy(const struct vm_mem *mem, const uint8_t *image, const Elf64_Ehdr *eh)
{
	unsigned int i;

	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		uint8_t *dst;

		elf_phdr(image, eh, i, &ph);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		dst = vm_mem_ptr(mem, ph.p_paddr, ph.p_memsz);
		prefault(dst, ph.p_memsz);
		memcpy(dst, image + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
}

static int elf_load(const struct vm_mem *mem, const uint8_t *image, size_t size,
		    struct x86_kernel *k, struct error *err)
{
	Elf64_Ehdr eh;
	int r;

	r = elf_read_header(image, size, &eh, err);
	if (r == 0)
		r = elf_scan(mem, image, size, &eh, k, err);
	if (r == 0)
		r = elf_find_entries(image, &eh, k, err);
	if (r < 0)
		return r;
	elf_copy(mem, image, &eh);
	/*
	 * No setup header: the command line may be as long as our own limit, and
	 * initrd_addr_max stays 0 (unused: the initrd only has to fit in low RAM).
	 */
	k->cmdline_size = X86_CMDLINE_MAX - 1;
	return 0;
}

/* ---- bzImage ------------------------------------------------------------------------- */

/*
 * The setup header runs from 0x1f1 to 0x202 + the byte at 0x201 (the jump over it,
 * boot.rst "Details of header fields"); fields past its end read as zero.
 */
static int bzimage_read_header(const uint8_t *image, size_t size, struct x86_kernel *k,
			       struct setup_header *hdr, struct error *err)
{
	size_t end = 0x202 + image[0x201], len;

	if (end > size)
		return error_set(err, -ENOEXEC,
				 "kernel: truncated bzImage setup header (ends at 0x%zx, image is "
				 "%zu bytes)",
				 end, size);
	len = MIN(end - SETUP_HEADER_GPA_OFFSET, sizeof(k->setup_header));
	memcpy(k->setup_header, image + SETUP_HEADER_GPA_OFFSET, len);
	memset(hdr, 0, sizeof(*hdr));
	memcpy(hdr, k->setup_header, MIN(len, sizeof(*hdr)));
	if (hdr->boot_flag != BOOT_FLAG_MAGIC)
		return error_set(err, -ENOEXEC,
				 "kernel: bzImage boot sector magic is 0x%04x, not 0xaa55",
				 hdr->boot_flag);
	if (hdr->version < 0x206)
		return error_set(err, -ENOEXEC,
				 "kernel: bzImage boot protocol %u.%02u is too old (need 2.06)",
				 hdr->version >> 8, hdr->version & 0xff);
	if (!(hdr->loadflags & LOADFLAG_LOADED_HIGH))
		return error_set(err, -ENOEXEC, "kernel: not a bzImage (zImage loads low)");
	if (!(hdr->xloadflags & XLF_KERNEL_64))
		return error_set(err, -ENOEXEC,
				 "kernel: bzImage has no 64-bit entry point (XLF_KERNEL_64 unset)");
	return 0;
}

/*
 * A kernel decompresses into [runtime start, + init_size) (boot.rst, init_size), where the
 * start is pref_address for the kernels we boot (head_64.S aligns the load address up to
 * kernel_alignment, then takes at least LOAD_PHYSICAL_ADDR, which pref_address reports).
 */
static int bzimage_check_fit(const struct vm_mem *mem, const struct setup_header *hdr,
			     uint64_t payload, struct x86_kernel *k, struct error *err)
{
	uint64_t runtime = MAX(hdr->pref_address, X86_HIMEM_GPA);
	char a[32], b[32];

	if (!vm_mem_ptr(mem, X86_HIMEM_GPA, payload))
		return error_set(err, -E2BIG,
				 "kernel: bzImage (%s) does not fit in guest memory at 0x%llx "
				 "(-m too small?)",
				 size_str(a, payload), (ull)X86_HIMEM_GPA);
	k->load_end = X86_HIMEM_GPA + payload;
	if (hdr->init_size == 0)
		return 0;
	if (!vm_mem_ptr(mem, runtime, hdr->init_size))
		return error_set(
			err, -E2BIG,
			"kernel: bzImage needs %s at 0x%llx to decompress, guest memory has "
			"%s (-m too small?)",
			size_str(a, hdr->init_size), (ull)runtime, size_str(b, mem->ram_size));
	k->load_end = MAX(k->load_end, runtime + hdr->init_size);
	return 0;
}

static int bzimage_load(const struct vm_mem *mem, const uint8_t *image, size_t size,
			struct x86_kernel *k, struct error *err)
{
	struct setup_header hdr;
	uint64_t setup_sects, offset, payload;
	int r;

	r = bzimage_read_header(image, size, k, &hdr, err);
	if (r < 0)
		return r;
	setup_sects = hdr.setup_sects ? hdr.setup_sects : 4;
	offset = (setup_sects + 1) * BZ_SECTOR;
	if (offset >= size)
		return error_set(err, -ENOEXEC,
				 "kernel: truncated bzImage: %llu setup sectors put the kernel at "
				 "0x%llx, past the end (%zu bytes)",
				 (ull)setup_sects, (ull)offset, size);
	payload = size - offset;
	r = bzimage_check_fit(mem, &hdr, payload, k, err);
	if (r < 0)
		return r;
	r = vm_mem_write(mem, X86_HIMEM_GPA, image + offset, payload);
	if (r < 0)
		return error_set(err, r, "kernel: cannot write the bzImage to guest memory");
	k->bzimage = true;
	k->load_start = X86_HIMEM_GPA;
	k->entry64 = X86_HIMEM_GPA + 0x200; /* boot.rst, "64-bit Boot Protocol" */
	k->protocol = hdr.version;
	/*
	 * Both fields exist from 2.06 on, which we require, so the defaults boot.rst gives for
	 * older protocols (0x37ffffff, 255) never apply.
	 */
	k->initrd_addr_max = hdr.initrd_addr_max;
	k->cmdline_size = hdr.cmdline_size;
	return 0;
}

static bool is_bzimage(const uint8_t *image, size_t size)
{
	uint32_t magic;

	if (size < BZ_HEADER_MIN_END)
		return false;
	memcpy(&magic, image + 0x202, sizeof(magic));
	return magic == SETUP_HDRS_MAGIC;
}

int x86_kernel_load(struct vm_mem *mem, const void *image, size_t size, struct x86_kernel *out,
		    struct error *err)
{
	const uint8_t *p = image;
	struct x86_kernel k;
	int r;

	memset(&k, 0, sizeof(k));
	memset(out, 0, sizeof(*out));
	if (!image || size == 0)
		return error_set(err, -ENOEXEC, "kernel: image is empty");
	if (size >= SELFMAG && memcmp(p, ELFMAG, SELFMAG) == 0) {
		r = elf_load(mem, p, size, &k, err);
	} else if (is_bzimage(p, size)) {
		r = bzimage_load(mem, p, size, &k, err);
	} else {
		return error_set(err, -ENOEXEC, "kernel: not an ELF vmlinux or bzImage");
	}
	if (r < 0)
		return r;
	*out = k;
	return 0;
}

/* ---- initrd --------------------------------------------------------------------------- */

/* First byte above the RAM region at 0, capped at the MMIO hole; 0 if there is none. */
static uint64_t low_ram_end(const struct vm_mem *mem)
{
	const struct vm_mem_region *r = vm_mem_find(mem, 0);

	return r ? MIN(r->gpa + r->size, X86_MMIO_HOLE_GPA) : 0;
}

int x86_initrd_load(struct vm_mem *mem, const struct x86_kernel *kernel, const void *data,
		    size_t size, uint64_t *gpa, struct error *err)
{
	uint64_t limit = low_ram_end(mem), at;
	uint64_t floor = ALIGN_UP(MAX(kernel->load_end, X86_HIMEM_GPA), INITRD_ALIGN);
	char a[32], b[32];

	if (!data || size == 0)
		return error_set(err, -EINVAL, "initrd: file is empty");
	if (kernel->bzimage)
		limit = MIN(limit, (uint64_t)kernel->initrd_addr_max + 1);
	if (size > limit || ALIGN_DOWN(limit - size, INITRD_ALIGN) < floor)
		return error_set(err, -E2BIG,
				 "initrd: %s does not fit between the kernel (ends at 0x%llx) and "
				 "0x%llx with %s of guest memory",
				 size_str(a, size), (ull)kernel->load_end, (ull)limit,
				 size_str(b, mem->ram_size));
	at = ALIGN_DOWN(limit - size, INITRD_ALIGN);
	if (vm_mem_write(mem, at, data, size) < 0)
		return error_set(err, -EFAULT, "initrd: cannot write at 0x%llx", (ull)at);
	*gpa = at;
	return 0;
}
