/*
 * Unit tests for vmm/arch/x86_64/loader.c: loading ELF vmlinux and bzImage kernels built in
 * memory, rejecting hostile images with a message (and without touching guest memory), and
 * placing the initrd. Run under ASan/UBSan too: every malformed image must fail cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <elf.h>
#include <glob.h>
#include <cmocka.h>

#include "memory.h"
#include "arch/x86_64/boot.h"
#include "arch/x86_64/layout.h"

#define GUEST_SIZE MIB(64)

struct fixture {
	struct vm_mem mem;
	uint8_t *ram;
	struct x86_kernel k;
	struct error err;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ram = malloc(GUEST_SIZE);
	assert_non_null(f->ram);
	memset(f->ram, 0xcc, GUEST_SIZE);
	vm_mem_init(&f->mem);
	assert_int_equal(vm_mem_add_region(&f->mem, 0, GUEST_SIZE, f->ram, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vm_mem_destroy(&f->mem);
	free(f->ram);
	free(f);
	return 0;
}

/* ---- a synthetic vmlinux -------------------------------------------------------------- */

/*
 * ELF header, then phdrs: two PT_LOADs (text at 16 MiB with a .bss tail, data at 18 MiB) and a
 * PT_NOTE holding a GNU note and then the Xen PVH note.
 */
#define ELF_SIZE      0x3100
#define ELF_TEXT_GPA  0x1000000ULL
#define ELF_DATA_GPA  0x1200000ULL
#define ELF_VIRT_OFF  0xffffffff80000000ULL
#define ELF_PVH_ENTRY 0x1000040ULL
#define ELF_NOTE_OFF  0x3000

static void put_phdr(uint8_t *img, unsigned int i, uint32_t type, uint64_t off, uint64_t paddr,
		     uint64_t filesz, uint64_t memsz)
{
	Elf64_Phdr ph = {
		.p_type = type,
		.p_flags = PF_R,
		.p_offset = off,
		.p_vaddr = paddr ? paddr + ELF_VIRT_OFF : 0,
		.p_paddr = paddr,
		.p_filesz = filesz,
		.p_memsz = memsz,
		.p_align = type == PT_NOTE ? 4 : 0x200000,
	};

	memcpy(img + sizeof(Elf64_Ehdr) + i * sizeof(ph), &ph, sizeof(ph));
}

/* A note padded as binutils pads it for the given alignment (4, or 8 for ELF64 "v2" notes). */
static size_t put_note_aligned(uint8_t *at, const char *name, uint32_t type, const void *desc,
			       uint32_t descsz, size_t align)
{
	Elf64_Nhdr nh = { .n_namesz = strlen(name) + 1, .n_descsz = descsz, .n_type = type };
	size_t desc_off = (sizeof(nh) + nh.n_namesz + align - 1) & ~(align - 1);

	memcpy(at, &nh, sizeof(nh));
	memcpy(at + sizeof(nh), name, nh.n_namesz);
	memcpy(at + desc_off, desc, descsz);
	return (desc_off + descsz + align - 1) & ~(align - 1);
}

static size_t put_note(uint8_t *at, const char *name, uint32_t type, const void *desc,
		       uint32_t descsz)
{
	return put_note_aligned(at, name, type, desc, descsz, 4);
}

static uint8_t *make_elf(size_t *size)
{
	uint8_t *img = calloc(1, ELF_SIZE), gnu_id[20] = { 1, 2, 3 };
	uint64_t pvh = ELF_PVH_ENTRY;
	Elf64_Ehdr eh = {
		.e_type = ET_EXEC,
		.e_machine = EM_X86_64,
		.e_version = EV_CURRENT,
		.e_entry = ELF_TEXT_GPA,
		.e_phoff = sizeof(Elf64_Ehdr),
		.e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = 3,
	};
	size_t notes;

	assert_non_null(img);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(img, &eh, sizeof(eh));
	put_phdr(img, 0, PT_LOAD, 0x1000, ELF_TEXT_GPA, 0x100, 0x2000);
	put_phdr(img, 1, PT_LOAD, 0x2000, ELF_DATA_GPA, 0x80, 0x80);
	memset(img + 0x1000, 0x90, 0x100);
	memset(img + 0x2000, 0xda, 0x80);
	notes = put_note(img + ELF_NOTE_OFF, "GNU", NT_GNU_BUILD_ID, gnu_id, sizeof(gnu_id));
	notes += put_note(img + ELF_NOTE_OFF + notes, "Xen", 18, &pvh, sizeof(pvh));
	put_phdr(img, 2, PT_NOTE, ELF_NOTE_OFF, 0, notes, notes);
	*size = ELF_SIZE;
	return img;
}

static Elf64_Ehdr *ehdr(uint8_t *img)
{
	return (Elf64_Ehdr *)img; /* calloc'd, so aligned */
}

static Elf64_Phdr *phdr(uint8_t *img, unsigned int i)
{
	return (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

static void test_elf_loads(void **state)
{
	struct fixture *f = *state;
	size_t size;
	uint8_t *img = make_elf(&size);
	unsigned int i;

	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_false(f->k.bzimage);
	assert_int_equal(f->k.entry64, ELF_TEXT_GPA);
	assert_int_equal(f->k.pvh_entry, ELF_PVH_ENTRY);
	assert_int_equal(f->k.load_start, ELF_TEXT_GPA);
	assert_int_equal(f->k.load_end, ELF_DATA_GPA + 0x80);
	for (i = 0; i < 0x100; i++)
		assert_int_equal(f->ram[ELF_TEXT_GPA + i], 0x90);
	for (; i < 0x2000; i++) /* .bss zeroed over the 0xcc fill */
		assert_int_equal(f->ram[ELF_TEXT_GPA + i], 0);
	assert_int_equal(f->ram[ELF_TEXT_GPA + 0x2000], 0xcc);
	assert_int_equal(f->ram[ELF_DATA_GPA + 0x7f], 0xda);
	assert_int_equal(f->ram[ELF_DATA_GPA + 0x80], 0xcc);
	free(img);
}

static void test_elf_virtual_entry(void **state)
{
	struct fixture *f = *state;
	size_t size;
	uint8_t *img = make_elf(&size);

	ehdr(img)->e_entry = ELF_VIRT_OFF + ELF_DATA_GPA + 0x10;
	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_int_equal(f->k.entry64, ELF_DATA_GPA + 0x10);
	free(img);
}

static void test_elf_without_pvh_note(void **state)
{
	struct fixture *f = *state;
	size_t size;
	uint8_t *img = make_elf(&size);

	phdr(img, 2)->p_type = PT_NULL;
	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_int_equal(f->k.pvh_entry, 0);
	assert_int_equal(f->k.entry64, ELF_TEXT_GPA);
	free(img);
}

/* The descriptor may also be a 4-byte value. */
static void test_elf_pvh_note_4_bytes(void **state)
{
	struct fixture *f = *state;
	size_t size, n;
	uint8_t *img = make_elf(&size);
	uint32_t pvh = ELF_PVH_ENTRY + 4;

	n = put_note(img + ELF_NOTE_OFF, "Xen", 18, &pvh, sizeof(pvh));
	phdr(img, 2)->p_filesz = n;
	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_int_equal(f->k.pvh_entry, ELF_PVH_ENTRY + 4);
	free(img);
}

/*
 * An IBT kernel links an 8-byte-aligned .note.gnu.property into .notes, so PT_NOTE has
 * p_align 8, yet Linux's own notes (Xen ones with 4-byte values) are padded to 4.
 */
static void test_elf_notes_mixed_alignment(void **state)
{
	struct fixture *f = *state;
	uint8_t property[16] = { 2, 0, 0, 0xc0, 4 }, *img, *at;
	uint32_t xen_entry = 0xffffffff;
	uint64_t pvh = ELF_PVH_ENTRY;
	size_t size, n;

	img = make_elf(&size);
	at = img + ELF_NOTE_OFF;
	n = put_note_aligned(at, "GNU", NT_GNU_PROPERTY_TYPE_0, property, sizeof(property), 8);
	n += put_note(at + n, "Xen", 1 /* XEN_ELFNOTE_ENTRY */, &xen_entry, 4);
	n += put_note(at + n, "Xen", 18, &pvh, sizeof(pvh));
	phdr(img, 2)->p_filesz = n;
	phdr(img, 2)->p_align = 8;
	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_int_equal(f->k.pvh_entry, ELF_PVH_ENTRY);

	/* And a segment padded to 8 throughout, as the gABI has it for ELF64. */
	memset(at, 0, 0x100);
	n = put_note_aligned(at, "GNU", 99, &xen_entry, 4, 8);
	n += put_note_aligned(at + n, "Xen", 18, &pvh, sizeof(pvh), 8);
	phdr(img, 2)->p_filesz = n;
	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_int_equal(f->k.pvh_entry, ELF_PVH_ENTRY);
	free(img);
}

/* ---- a synthetic bzImage -------------------------------------------------------------- */

#define BZ_SETUP_SECTS 4
#define BZ_PAYLOAD_OFF ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD     0x3000
#define BZ_SIZE	       (BZ_PAYLOAD_OFF + BZ_PAYLOAD)

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

/* Offsets from boot.rst, "The real-mode kernel header". */
static uint8_t *make_bzimage(size_t *size)
{
	uint8_t *img = calloc(1, BZ_SIZE);
	size_t i;

	assert_non_null(img);
	img[0x1f1] = BZ_SETUP_SECTS;
	put16(img, 0x1fe, 0xaa55);
	img[0x200] = 0xeb;
	img[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	put16(img, 0x206, 0x020f);
	img[0x211] = 0x01; /* LOADED_HIGH */
	put32(img, 0x22c, 0x7fffffff);
	put32(img, 0x230, 0x200000);
	img[0x234] = 1;
	put16(img, 0x236, 0x3); /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	put32(img, 0x238, 2047);
	put64(img, 0x258, 0x1000000);
	put32(img, 0x260, 0x400000);
	put32(img, 0x26c, 0xdeadbeef); /* past the header: not copied */
	for (i = 0; i < BZ_PAYLOAD; i++)
		img[BZ_PAYLOAD_OFF + i] = (uint8_t)(i * 7);
	*size = BZ_SIZE;
	return img;
}

static void test_bzimage_loads(void **state)
{
	struct fixture *f = *state;
	size_t size;
	uint8_t *img = make_bzimage(&size);

	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_true(f->k.bzimage);
	assert_int_equal(f->k.entry64, 0x100200);
	assert_int_equal(f->k.pvh_entry, 0);
	assert_int_equal(f->k.protocol, 0x020f);
	assert_int_equal(f->k.initrd_addr_max, 0x7fffffff);
	assert_int_equal(f->k.cmdline_size, 2047);
	assert_int_equal(f->k.load_start, 0x100000);
	assert_int_equal(f->k.load_end, 0x1000000 + 0x400000); /* pref_address + init_size */
	assert_memory_equal(f->ram + 0x100000, img + BZ_PAYLOAD_OFF, BZ_PAYLOAD);
	assert_int_equal(f->ram[0x100000 + BZ_PAYLOAD], 0xcc);
	/* The header as found in the image, 0x1f1 up to its end and no further. */
	assert_memory_equal(f->k.setup_header, img + 0x1f1, 0x26c - 0x1f1);
	assert_int_equal(f->k.setup_header[0x26c - 0x1f1], 0);
	free(img);
}

/* ---- hostile images: each one rejected with a message, guest memory untouched -------- */

static void expect_reject(struct fixture *f, const void *img, size_t size, int code,
			  const char *msg_part)
{
	error_clear(&f->err);
	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), code);
	assert_int_equal(f->err.code, code);
	if (!strstr(f->err.msg, msg_part))
		fail_msg("message \"%s\" does not contain \"%s\"", f->err.msg, msg_part);
	assert_int_equal(f->ram[ELF_TEXT_GPA], 0xcc);
	assert_int_equal(f->ram[0x100000], 0xcc);
}

static void test_reject_empty_and_short(void **state)
{
	struct fixture *f = *state;
	uint8_t ten[10] = "0123456789";

	expect_reject(f, NULL, 0, -ENOEXEC, "kernel: image is empty");
	expect_reject(f, ten, 0, -ENOEXEC, "kernel: image is empty");
	expect_reject(f, ten, sizeof(ten), -ENOEXEC, "not an ELF vmlinux or bzImage");
	memcpy(ten, ELFMAG, SELFMAG);
	expect_reject(f, ten, sizeof(ten), -ENOEXEC, "truncated ELF header");
}

static void test_reject_elf_headers(void **state)
{
	struct fixture *f = *state;
	size_t size;
	uint8_t *img = make_elf(&size);

	expect_reject(f, img, 64 + 56 + 10, -ENOEXEC, "truncated ELF program header table");
	expect_reject(f, img, 40, -ENOEXEC, "truncated ELF header");
	ehdr(img)->e_phoff = 0x100000;
	expect_reject(f, img, size, -ENOEXEC, "truncated ELF program header table");
	ehdr(img)->e_phoff = UINT64_MAX - 8;
	expect_reject(f, img, size, -ENOEXEC, "truncated ELF program header table");
	ehdr(img)->e_phoff = sizeof(Elf64_Ehdr);
	ehdr(img)->e_phnum = 65535;
	expect_reject(f, img, size, -ENOEXEC, "65535 program headers");
	ehdr(img)->e_phnum = 0;
	expect_reject(f, img, size, -ENOEXEC, "0 program headers");
	ehdr(img)->e_phnum = 3;
	ehdr(img)->e_phentsize = 32;
	expect_reject(f, img, size, -ENOEXEC, "program header size");
	ehdr(img)->e_phentsize = sizeof(Elf64_Phdr);
	ehdr(img)->e_type = ET_DYN;
	expect_reject(f, img, size, -ENOEXEC, "not an executable");
	ehdr(img)->e_type = ET_EXEC;
	ehdr(img)->e_machine = EM_AARCH64;
	expect_reject(f, img, size, -ENOEXEC, "ELF image is not x86_64");
	ehdr(img)->e_machine = EM_X86_64;
	img[EI_CLASS] = ELFCLASS32;
	expect_reject(f, img, size, -ENOEXEC, "ELF image is not x86_64");
	img[EI_CLASS] = ELFCLASS64;
	img[EI_DATA] = ELFDATA2MSB;
	expect_reject(f, img, size, -ENOEXEC, "ELF image is not x86_64");
	free(img);
}

static void test_reject_elf_segments(void **state)
{
	struct fixture *f = *state;
	size_t size;
	uint8_t *img = make_elf(&size);
	Elf64_Phdr *data = phdr(img, 1), saved = *data;

	data->p_offset = UINT64_MAX - 0x10;
	expect_reject(f, img, size, -ENOEXEC, "segment 1 data");
	data->p_offset = size - 0x10;
	expect_reject(f, img, size, -ENOEXEC, "lies past the end of the image");
	*data = saved;
	data->p_filesz = data->p_memsz + 1;
	expect_reject(f, img, size, -ENOEXEC, "exceeds memory size");
	*data = saved;
	data->p_paddr = GUEST_SIZE - MIB(1);
	data->p_memsz = MIB(2);
	expect_reject(f, img, size, -E2BIG,
		      "kernel: segment 1 at 0x3f00000+0x200000 does not fit in guest memory "
		      "(-m too small?)");
	data->p_paddr = UINT64_MAX - 0x10;
	expect_reject(f, img, size, -E2BIG, "does not fit in guest memory");
	data->p_paddr = X86_MMIO_HOLE_GPA;
	expect_reject(f, img, size, -E2BIG, "does not fit in guest memory");
	*data = saved;
	data->p_paddr = 0x1000;
	expect_reject(f, img, size, -ENOEXEC, "below 1 MiB");
	*data = saved;
	ehdr(img)->e_entry = 0x4000000;
	expect_reject(f, img, size, -ENOEXEC, "entry point 0x4000000 is outside");
	ehdr(img)->e_entry = ELF_VIRT_OFF + 0x4000000;
	expect_reject(f, img, size, -ENOEXEC, "is outside the loaded segments");
	free(img);
}

static void test_reject_elf_notes(void **state)
{
	struct fixture *f = *state;
	size_t size;
	uint8_t *img = make_elf(&size);
	Elf64_Nhdr *nh = (Elf64_Nhdr *)(img + ELF_NOTE_OFF);
	Elf64_Phdr *note = phdr(img, 2);
	uint64_t huge = 0x100000000ULL;
	uint16_t two = 2;

	nh->n_namesz = 0xffffffff;
	expect_reject(f, img, size, -ENOEXEC, "malformed ELF note");
	nh->n_namesz = 4;
	nh->n_descsz = 0xfffffffc;
	expect_reject(f, img, size, -ENOEXEC, "malformed ELF note");
	nh->n_descsz = 20;
	note->p_offset = size - 4;
	expect_reject(f, img, size, -ENOEXEC, "lies past the end of the image");
	note->p_offset = ELF_NOTE_OFF;
	put_note(img + ELF_NOTE_OFF, "Xen", 18, &two, sizeof(two));
	note->p_filesz = 0x100;
	expect_reject(f, img, size, -ENOEXEC, "PVH entry note has a 2-byte value");
	put_note(img + ELF_NOTE_OFF, "Xen", 18, &huge, sizeof(huge));
	expect_reject(f, img, size, -ENOEXEC, "not a 32-bit address");
	free(img);
}

static void test_reject_bzimage(void **state)
{
	struct fixture *f = *state;
	size_t size;
	uint8_t *img = make_bzimage(&size);

	put16(img, 0x1fe, 0x1234);
	expect_reject(f, img, size, -ENOEXEC, "boot sector magic is 0x1234");
	put16(img, 0x1fe, 0xaa55);
	img[0x1f1] = 255;
	expect_reject(f, img, size, -ENOEXEC, "past the end");
	img[0x1f1] = BZ_SETUP_SECTS;
	put16(img, 0x206, 0x0205);
	expect_reject(f, img, size, -ENOEXEC, "boot protocol 2.05 is too old");
	put16(img, 0x206, 0x020f);
	put16(img, 0x236, 0);
	expect_reject(f, img, size, -ENOEXEC, "XLF_KERNEL_64");
	put16(img, 0x236, 1);
	img[0x211] = 0;
	expect_reject(f, img, size, -ENOEXEC, "zImage");
	img[0x211] = 1;
	expect_reject(f, img, 0x230, -ENOEXEC, "truncated bzImage setup header");
	put32(img, 0x260, 0x8000000); /* init_size 128 MiB in a 64 MiB guest */
	expect_reject(f, img, size, -E2BIG, "to decompress");
	put32(img, 0x260, 0x400000);
	put64(img, 0x258, UINT64_MAX - 0x1000);
	expect_reject(f, img, size, -E2BIG, "to decompress");
	free(img);
}

/*
 * Every byte of the headers set to a few nasty values, one at a time: the loader may accept
 * or reject each image but must never crash or write out of bounds (ASan build).
 */
static void test_mutated_headers(void **state)
{
	static const uint8_t values[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	struct fixture *f = *state;
	size_t sizes[2], off, v, i;
	uint8_t *imgs[2] = { make_elf(&sizes[0]), make_bzimage(&sizes[1]) };

	for (i = 0; i < 2; i++) {
		size_t limit = i == 0 ? ELF_NOTE_OFF + 0x40 : 0x280;

		for (off = 0; off < limit; off++) {
			uint8_t orig = imgs[i][off];

			if (i == 0 && off >= 0x100 && off < ELF_NOTE_OFF)
				continue; /* segment bytes, not headers */
			for (v = 0; v < ARRAY_SIZE(values); v++) {
				imgs[i][off] = values[v];
				error_clear(&f->err);
				if (x86_kernel_load(&f->mem, imgs[i], sizes[i], &f->k, &f->err) < 0)
					assert_true(f->err.msg[0] != '\0');
			}
			imgs[i][off] = orig;
		}
		free(imgs[i]);
	}
}

/* A kernel built by guest-kernel-config/, if this machine has one cached. */
static void test_real_vmlinux(void **state)
{
	struct fixture *f = *state;
	char pattern[512];
	struct vm_mem mem;
	glob_t g;
	FILE *fp;
	uint8_t *img;
	long size;

	snprintf(pattern, sizeof(pattern), "%s/.cache/stratus/vmlinux-*",
		 getenv("HOME") ? getenv("HOME") : "/root");
	if (glob(pattern, 0, NULL, &g) != 0) {
		skip();
		return;
	}
	fp = fopen(g.gl_pathv[0], "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	rewind(fp);
	img = malloc(size);
	assert_non_null(img);
	assert_int_equal(fread(img, 1, size, fp), (size_t)size);
	fclose(fp);
	vm_mem_init(&mem);
	assert_int_equal(vm_mem_alloc_region(&mem, 0, MIB(512), NULL), 0);
	if (x86_kernel_load(&mem, img, size, &f->k, &f->err) < 0)
		fail_msg("%s: %s", g.gl_pathv[0], f->err.msg);
	assert_true(f->k.entry64 >= X86_KERNEL_MIN_GPA);
	assert_true(f->k.load_end > f->k.load_start);
	vm_mem_destroy(&mem);
	free(img);
	globfree(&g);
}

/* ---- initrd --------------------------------------------------------------------------- */

static void test_initrd_placed_high(void **state)
{
	struct fixture *f = *state;
	size_t size, rd_size = MIB(1) + 5;
	uint8_t *img = make_elf(&size), *rd = malloc(rd_size);
	uint64_t gpa = 0;

	memset(rd, 0x5a, rd_size);
	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_int_equal(x86_initrd_load(&f->mem, &f->k, rd, rd_size, &gpa, &f->err), 0);
	assert_int_equal(gpa % 4096, 0);
	assert_true(gpa >= f->k.load_end);
	assert_true(gpa + rd_size <= GUEST_SIZE);
	assert_true(gpa + rd_size + 4096 > GUEST_SIZE); /* as high as it goes */
	assert_memory_equal(f->ram + gpa, rd, rd_size);
	free(rd);
	free(img);
}

static void test_initrd_below_addr_max(void **state)
{
	struct fixture *f = *state;
	size_t size, rd_size = 0x3000;
	uint8_t *img = make_bzimage(&size), rd[0x3000] = { 1 };
	uint64_t gpa = 0;

	put32(img, 0x22c, 0x1ffffff); /* initrd_addr_max: 32 MiB - 1 */
	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_int_equal(x86_initrd_load(&f->mem, &f->k, rd, rd_size, &gpa, &f->err), 0);
	assert_int_equal(gpa, MIB(32) - rd_size);
	free(img);
}

static void test_initrd_too_big(void **state)
{
	struct fixture *f = *state;
	size_t size, rd_size = MIB(63);
	uint8_t *img = make_elf(&size), *rd = malloc(rd_size), rd1 = 0;
	uint64_t gpa = 0;

	assert_int_equal(x86_kernel_load(&f->mem, img, size, &f->k, &f->err), 0);
	assert_int_equal(x86_initrd_load(&f->mem, &f->k, rd, rd_size, &gpa, &f->err), -E2BIG);
	assert_non_null(strstr(f->err.msg, "initrd: 63 MiB does not fit"));
	assert_non_null(strstr(f->err.msg, "with 64 MiB of guest memory"));
	error_clear(&f->err);
	assert_int_equal(x86_initrd_load(&f->mem, &f->k, &rd1, 0, &gpa, &f->err), -EINVAL);
	assert_non_null(strstr(f->err.msg, "initrd: file is empty"));
	/* Kernel's initrd_addr_max below the kernel itself. */
	error_clear(&f->err);
	f->k.bzimage = true;
	f->k.initrd_addr_max = 0xfffff;
	assert_int_equal(x86_initrd_load(&f->mem, &f->k, &rd1, 1, &gpa, &f->err), -E2BIG);
	free(rd);
	free(img);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_elf_loads),
		T(test_elf_virtual_entry),
		T(test_elf_without_pvh_note),
		T(test_elf_pvh_note_4_bytes),
		T(test_elf_notes_mixed_alignment),
		T(test_bzimage_loads),
		T(test_reject_empty_and_short),
		T(test_reject_elf_headers),
		T(test_reject_elf_segments),
		T(test_reject_elf_notes),
		T(test_reject_bzimage),
		T(test_mutated_headers),
		T(test_real_vmlinux),
		T(test_initrd_placed_high),
		T(test_initrd_below_addr_max),
		T(test_initrd_too_big),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
