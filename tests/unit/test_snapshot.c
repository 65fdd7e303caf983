/*
 * Unit tests for the snapshot file format (vmm/snapshot_file.c): CRC32C, sections, a file
 * written and read back with guest memory mapped copy-on-write, or copied into shared
 * (memfd) guest memory as a VM with a virtio-fs share needs it, and every way a file is
 * refused (not a snapshot, another version, damaged header or state, truncated, malformed
 * sections, another machine), each with the message a user sees.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "snapshot.h"

#define MEM_SIZE (1u << 20)

struct fixture {
	char path[64];
	struct vm_mem mem;
	struct snapshot_machine machine;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "/tmp/test_snapshot.XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	vm_mem_init(&f->mem);
	assert_int_equal(vm_mem_alloc_region(&f->mem, 0, MEM_SIZE / 2, NULL), 0);
	assert_int_equal(vm_mem_alloc_region(&f->mem, 1ULL << 32, MEM_SIZE / 2, NULL), 0);
	f->machine = (struct snapshot_machine){
		.mem_size = MEM_SIZE,
		.nr_vcpus = 2,
		.nr_devices = 2,
		.device_types = { 0, 2 },
	};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	vm_mem_destroy(&f->mem);
	free(f);
	return 0;
}

/* A snapshot of f->mem (a pattern on a few pages, the rest zero) with two sections. */
static void write_snapshot(struct fixture *f)
{
	struct snapshot_writer w;
	struct error err = { 0 };
	uint32_t regs[4] = { 1, 2, 3, 4 };
	int fd;

	memset(f->mem.regions[0].hva + 4096, 0xab, 4096);
	memcpy(f->mem.regions[0].hva + 100, "low region", 10);
	memcpy(f->mem.regions[1].hva + MEM_SIZE / 2 - 10, "high end!", 10);
	snapshot_writer_init(&w);
	assert_int_equal(snapshot_put(&w, "vcpu0.regs", regs, sizeof(regs)), 0);
	assert_int_equal(snapshot_put(&w, "odd", "abc", 3), 0);
	fd = open(f->path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(snapshot_file_write(fd, &f->machine, "9.9.9", &w, &f->mem, &err), 0);
	close(fd);
	snapshot_writer_free(&w);
}

/* Open must fail with a message matching what. */
static void expect_refused(const char *path, const char *what)
{
	struct snapshot_file *file = NULL;
	struct error err = { 0 };

	assert_true(snapshot_file_open(path, &file, &err) < 0);
	assert_null(file);
	if (!strstr(err.msg, what))
		fail_msg("expected '%s' in '%s'", what, err.msg);
	assert_non_null(strstr(err.msg, path)); /* the message names the file */
}

static void patch(const char *path, off_t offset, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, offset), (ssize_t)len);
	close(fd);
}

static struct snapshot_header read_header(const char *path)
{
	struct snapshot_header h;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	return h;
}

/* Rewrite the header with a valid checksum (a well-formed file that says something else). */
static void rewrite_header(const char *path, struct snapshot_header *h)
{
	h->header_crc = 0;
	h->header_crc = snapshot_crc32c(0, h, sizeof(*h));
	patch(path, 0, h, sizeof(*h));
}

static void test_crc32c(void **state)
{
	(void)state;
	/* The standard check value of CRC-32C (Castagnoli). */
	assert_int_equal(snapshot_crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(snapshot_crc32c(0, "", 0), 0);
	/* Incremental equals one pass. */
	assert_int_equal(snapshot_crc32c(snapshot_crc32c(0, "1234", 4), "56789", 5), 0xe3069283);
}

static void test_writer_sections(void **state)
{
	struct snapshot_writer w;
	char long_name[SNAPSHOT_SECTION_NAME + 1];

	(void)state;
	snapshot_writer_init(&w);
	assert_int_equal(snapshot_put(&w, "a", "x", 1), 0);
	assert_int_equal(snapshot_put(&w, "b", NULL, 0), 0);
	assert_int_equal(w.len % 8, 0);
	/* A name used twice is a bug in a device's save hook: refused, and sticky. */
	assert_int_equal(snapshot_put(&w, "a", "y", 1), -EINVAL);
	assert_int_equal(snapshot_put(&w, "c", "z", 1), -EINVAL);
	snapshot_writer_free(&w);

	snapshot_writer_init(&w);
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(snapshot_put(&w, long_name, "x", 1), -EINVAL);
	snapshot_writer_free(&w);
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct snapshot_file *file = NULL;
	struct error err = { 0 };
	struct vm_mem mem;
	uint32_t regs[4];
	const void *data;
	struct stat st;
	size_t len;

	write_snapshot(f);
	assert_int_equal(snapshot_file_open(f->path, &file, &err), 0);
	assert_string_equal(file->header.vmm_version, "9.9.9");
	assert_int_equal(file->header.mem_offset % SNAPSHOT_PAGE, 0);
	assert_int_equal(snapshot_file_check_machine(file, &f->machine, &err), 0);
	assert_int_equal(snapshot_get_exact(file, "vcpu0.regs", regs, sizeof(regs), &err), 0);
	assert_int_equal(regs[3], 4);
	assert_int_equal(snapshot_get(file, "odd", &data, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "abc", 3);
	assert_int_equal(snapshot_get(file, "missing", &data, &len), -ENOENT);
	assert_true(snapshot_get_exact(file, "odd", regs, sizeof(regs), &err) < 0);
	assert_non_null(strstr(err.msg, "'odd' state is 3 bytes, expected 16"));

	/* Zero pages are holes: the file takes far less room than guest memory. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, file->header.mem_offset + MEM_SIZE);
	assert_true(st.st_blocks * 512 < MEM_SIZE / 4);

	/* Mapped over fresh memory at the same addresses, copy-on-write. */
	vm_mem_init(&mem);
	assert_int_equal(vm_mem_alloc_region(&mem, 0, MEM_SIZE / 2, NULL), 0);
	assert_int_equal(vm_mem_alloc_region(&mem, 1ULL << 32, MEM_SIZE / 2, NULL), 0);
	memset(err.msg, 0, sizeof(err.msg));
	assert_int_equal(snapshot_file_map_memory(file, &mem, &err), 0);
	assert_memory_equal(vm_mem_ptr(&mem, 100, 10), "low region", 10);
	assert_int_equal(*(uint8_t *)vm_mem_ptr(&mem, 4096 + 17, 1), 0xab);
	assert_int_equal(*(uint8_t *)vm_mem_ptr(&mem, 3 * 4096, 1), 0);
	assert_memory_equal(vm_mem_ptr(&mem, (1ULL << 32) + MEM_SIZE / 2 - 10, 10), "high end!",
			    10);
	/* A write stays in this VM's memory: the file, and other clones, do not see it. */
	memcpy(vm_mem_ptr(&mem, 100, 10), "CHANGED!!!", 10);
	snapshot_file_close(file);
	file = NULL;
	assert_int_equal(snapshot_file_open(f->path, &file, &err), 0);
	{
		struct vm_mem again;

		vm_mem_init(&again);
		assert_int_equal(vm_mem_alloc_region(&again, 0, MEM_SIZE / 2, NULL), 0);
		assert_int_equal(vm_mem_alloc_region(&again, 1ULL << 32, MEM_SIZE / 2, NULL), 0);
		assert_int_equal(snapshot_file_map_memory(file, &again, &err), 0);
		assert_memory_equal(vm_mem_ptr(&again, 100, 10), "low region", 10);
		vm_mem_destroy(&again);
	}
	snapshot_file_close(file);
	vm_mem_destroy(&mem);
}

static void test_refuse_not_snapshot(void **state)
{
	struct fixture *f = *state;
	char junk[8192];

	/* Empty, short, and a page of something else. */
	expect_refused(f->path, "not a stratus snapshot (too short)");
	patch(f->path, 0, "hello", 5);
	expect_refused(f->path, "not a stratus snapshot (too short)");
	memset(junk, 'x', sizeof(junk));
	patch(f->path, 0, junk, sizeof(junk));
	expect_refused(f->path, "not a stratus snapshot");
	expect_refused("/nonexistent/snap", "cannot open the snapshot");
}

static void test_refuse_version(void **state)
{
	struct fixture *f = *state;
	struct snapshot_header h;

	write_snapshot(f);
	h = read_header(f->path);
	/* Version 1 unless the machine has a virtio-fs device: older readers keep reading. */
	assert_int_equal(h.version, 1);
	h.version = SNAPSHOT_VERSION + 1;
	rewrite_header(f->path, &h);
	expect_refused(f->path, "snapshot format version 3, this VMM reads versions 1 to 2");
	h.version = 0;
	rewrite_header(f->path, &h);
	expect_refused(f->path, "snapshot format version 0, this VMM reads versions 1 to 2");
	/* No version-1 writer ever saved a virtio-fs device. */
	h.version = 1;
	h.machine.flags |= SNAPSHOT_F_VIRTIO_FS;
	rewrite_header(f->path, &h);
	expect_refused(f->path, "snapshot header is inconsistent");

	f->machine.flags |= SNAPSHOT_F_VIRTIO_FS;
	write_snapshot(f);
	assert_int_equal(read_header(f->path).version, 2);
	{
		struct snapshot_file *file = NULL;
		struct error err = { 0 };

		assert_int_equal(snapshot_file_open(f->path, &file, &err), 0);
		snapshot_file_close(file);
	}
}

#define SHARED_SIZE (8u << 20)

/* Page p of the source memory: data on some pages (a pattern naming the page), zero on others. */
static bool shared_page_has_data(unsigned int p)
{
	/* The high region is one hole but for its last page (a sparse tail to skip). */
	if (p >= SHARED_SIZE / 8192)
		return p == SHARED_SIZE / 4096 - 1;
	return p % 7 == 1 || p % 7 == 2 || (p >= 600 && p < 900);
}

static void fill_page(uint8_t *page, unsigned int p)
{
	unsigned int i;

	for (i = 0; i < 4096; i += 4)
		memcpy(page + i, &(uint32_t){ p * 4096 + i + 1 }, 4);
}

/* The regions of mem, page by page, hold exactly what shared_page_has_data/fill_page say. */
static void check_pages(const struct vm_mem *mem)
{
	static const uint8_t zero[4096];
	uint8_t want[4096];
	unsigned int p;

	for (p = 0; p < SHARED_SIZE / 4096; p++) {
		uint64_t gpa = p < SHARED_SIZE / 8192
				       ? (uint64_t)p * 4096
				       : (1ULL << 32) + (p - SHARED_SIZE / 8192) * 4096ULL;
		const uint8_t *got = vm_mem_ptr(mem, gpa, 4096);

		assert_non_null(got);
		if (shared_page_has_data(p)) {
			fill_page(want, p);
			if (memcmp(got, want, 4096))
				fail_msg("page %u: data differs after the copy", p);
		} else if (memcmp(got, zero, 4096)) {
			fail_msg("page %u: a hole is not zero after the copy", p);
		}
	}
}

/* Restore into MAP_SHARED memfd regions, as a VM with a virtio-fs share does. */
static void restore_shared(const char *path, bool use_memfd)
{
	struct snapshot_file *file = NULL;
	struct error err = { 0 };
	struct vm_mem mem;
	int saved_fd[2] = { -1, -1 };
	uint8_t page[4096];
	unsigned int i;
	struct stat st;

	vm_mem_init(&mem);
	mem.shared = true;
	assert_int_equal(vm_mem_alloc_region(&mem, 0, SHARED_SIZE / 2, &err), 0);
	assert_int_equal(vm_mem_alloc_region(&mem, 1ULL << 32, SHARED_SIZE / 2, &err), 0);
	for (i = 0; i < 2; i++)
		assert_true(mem.regions[i].fd >= 0);
	if (!use_memfd) /* the pread() path, taken where sendfile() is refused */
		for (i = 0; i < 2; i++) {
			saved_fd[i] = mem.regions[i].fd;
			mem.regions[i].fd = -1;
		}
	assert_int_equal(snapshot_file_open(path, &file, &err), 0);
	if (snapshot_file_map_memory(file, &mem, &err) < 0)
		fail_msg("%s", err.msg);
	snapshot_file_close(file);
	if (!use_memfd)
		for (i = 0; i < 2; i++)
			mem.regions[i].fd = saved_fd[i];
	/*
	 * Holes were skipped, not written: the high region, one page of data, takes at most
	 * that page's (transparent huge) page, not its 4 MiB (looked at before
	 * anything reads the holes through the mapping: shmem fills a hole read that way).
	 */
	assert_int_equal(fstat(mem.regions[1].fd, &st), 0);
	if ((uint64_t)st.st_blocks * 512 > (2u << 20))
		fail_msg("the high region takes %llu bytes",
			 (unsigned long long)st.st_blocks * 512);
	check_pages(&mem);
	/* Shared, not a private copy: the memfd (what another process maps) has the data. */
	assert_int_equal(pread(mem.regions[0].fd, page, 4096, 4096), 4096);
	assert_memory_equal(page, vm_mem_ptr(&mem, 4096, 4096), 4096);
	memcpy(vm_mem_ptr(&mem, 0, 5), "later", 5);
	assert_int_equal(pread(mem.regions[0].fd, page, 5, 0), 5);
	assert_memory_equal(page, "later", 5);
	vm_mem_destroy(&mem);
}

static void test_copy_into_shared(void **state)
{
	struct fixture *f = *state;
	struct snapshot_machine m = { .mem_size = SHARED_SIZE, .nr_vcpus = 1 };
	struct snapshot_writer w;
	struct error err = { 0 };
	struct vm_mem src;
	unsigned int p;
	struct stat st;
	int fd;

	vm_mem_init(&src);
	assert_int_equal(vm_mem_alloc_region(&src, 0, SHARED_SIZE / 2, NULL), 0);
	assert_int_equal(vm_mem_alloc_region(&src, 1ULL << 32, SHARED_SIZE / 2, NULL), 0);
	for (p = 0; p < SHARED_SIZE / 4096; p++)
		if (shared_page_has_data(p))
			fill_page(p < SHARED_SIZE / 8192
					  ? src.regions[0].hva + p * 4096ULL
					  : src.regions[1].hva + (p - SHARED_SIZE / 8192) * 4096ULL,
				  p);
	check_pages(&src);
	snapshot_writer_init(&w);
	fd = open(f->path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(snapshot_file_write(fd, &m, "9.9.9", &w, &src, &err), 0);
	close(fd);
	snapshot_writer_free(&w);
	vm_mem_destroy(&src);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 < SHARED_SIZE / 2); /* sparse */

	restore_shared(f->path, true);
	restore_shared(f->path, false);
	restore_shared(f->path, true); /* again from the one file: it is only read */
}

static void test_refuse_damaged_header(void **state)
{
	struct fixture *f = *state;
	struct snapshot_header h;

	write_snapshot(f);
	h = read_header(f->path);
	h.machine.nr_vcpus = 8; /* edited without fixing the checksum */
	patch(f->path, 0, &h, sizeof(h));
	expect_refused(f->path, "snapshot header is damaged (bad checksum)");

	/* Consistent checksum, inconsistent layout: refused too. */
	write_snapshot(f);
	h = read_header(f->path);
	h.mem_offset += SNAPSHOT_PAGE;
	rewrite_header(f->path, &h);
	expect_refused(f->path, "snapshot header is inconsistent");

	write_snapshot(f);
	h = read_header(f->path);
	h.state_size = SNAPSHOT_MAX_STATE + 1;
	rewrite_header(f->path, &h);
	expect_refused(f->path, "snapshot header is inconsistent");
}

static void test_refuse_damaged_state(void **state)
{
	struct fixture *f = *state;
	struct snapshot_header h;
	uint8_t byte;
	int fd;

	write_snapshot(f);
	h = read_header(f->path);
	fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, h.state_offset + 44), 1);
	byte ^= 0x10;
	assert_int_equal(pwrite(fd, &byte, 1, h.state_offset + 44), 1);
	close(fd);
	expect_refused(f->path, "snapshot state is damaged (bad checksum)");
}

/* Sections that do not add up, under a valid checksum: a crafted file, still refused. */
static void test_refuse_malformed_state(void **state)
{
	struct fixture *f = *state;
	struct snapshot_header h;
	uint8_t *buf;
	uint64_t huge = UINT64_MAX - 3;
	int fd;

	write_snapshot(f);
	h = read_header(f->path);
	buf = malloc(h.state_size);
	assert_non_null(buf);
	fd = open(f->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, h.state_size, h.state_offset), (ssize_t)h.state_size);
	memcpy(buf + SNAPSHOT_SECTION_NAME, &huge, sizeof(huge)); /* first section's size */
	assert_int_equal(pwrite(fd, buf, h.state_size, h.state_offset), (ssize_t)h.state_size);
	close(fd);
	h.state_crc = snapshot_crc32c(0, buf, h.state_size);
	rewrite_header(f->path, &h);
	expect_refused(f->path, "snapshot state is malformed");
	free(buf);
}

static void test_refuse_truncated(void **state)
{
	struct fixture *f = *state;
	struct snapshot_header h;

	write_snapshot(f);
	h = read_header(f->path);
	assert_int_equal(truncate(f->path, h.mem_offset + MEM_SIZE - 1), 0);
	expect_refused(f->path, "snapshot is truncated");
	assert_int_equal(truncate(f->path, h.state_offset + 10), 0);
	expect_refused(f->path, "snapshot is truncated");
	assert_int_equal(truncate(f->path, 4095), 0);
	expect_refused(f->path, "snapshot is truncated");
}

static void test_refuse_other_machine(void **state)
{
	struct fixture *f = *state;
	struct snapshot_file *file = NULL;
	struct error err = { 0 };
	struct snapshot_machine m;

	write_snapshot(f);
	assert_int_equal(snapshot_file_open(f->path, &file, &err), 0);

	m = f->machine;
	m.mem_size *= 2;
	assert_true(snapshot_file_check_machine(file, &m, &err) < 0);
	assert_non_null(strstr(err.msg, "-m: 2 MiB, but the snapshot"));
	assert_non_null(strstr(err.msg, "has 1 MiB"));

	memset(&err, 0, sizeof(err));
	m = f->machine;
	m.nr_vcpus = 1;
	assert_true(snapshot_file_check_machine(file, &m, &err) < 0);
	assert_non_null(strstr(err.msg, "-smp: 1 vCPUs, but the snapshot"));

	memset(&err, 0, sizeof(err));
	m = f->machine;
	m.flags |= SNAPSHOT_F_PIT;
	assert_true(snapshot_file_check_machine(file, &m, &err) < 0);
	assert_non_null(strstr(err.msg, "-machine: pit=on, but the snapshot"));

	memset(&err, 0, sizeof(err));
	m = f->machine;
	m.nr_devices = 1;
	assert_true(snapshot_file_check_machine(file, &m, &err) < 0);
	assert_non_null(strstr(err.msg, "-device: 1 devices, but the snapshot"));

	memset(&err, 0, sizeof(err));
	m = f->machine;
	m.device_types[1] = 1;
	assert_true(snapshot_file_check_machine(file, &m, &err) < 0);
	assert_non_null(strstr(err.msg, "-device 2: another device type"));
	snapshot_file_close(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_writer_sections),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_not_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_into_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_damaged_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_damaged_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_malformed_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_other_machine, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
