/*
 * The Intel MultiProcessor table (MP spec 1.4, chapter 4) that tells a guest without ACPI how
 * many vCPUs it has and how ISA IRQs reach the I/O APIC. Linux finds the floating pointer by
 * scanning the first KiB of the EBDA (at 639 KiB) and the BIOS area, so the pointer goes at
 * X86_EBDA_GPA; the configuration table follows it when it fits in the EBDA, and otherwise
 * (more than ~37 vCPUs) goes at X86_BIOS_GPA, which the e820 map also reserves.
 *
 * The whole table is built in a host buffer and written to the guest once.
 */
#include <string.h>

#include "boot.h"
#include "bootparam_defs.h"
#include "layout.h"

#define MP_OEM_ID      "STRATUS "
#define MP_PRODUCT_ID  "MICROVM     "
#define LAPIC_VERSION  0x14
#define IOAPIC_VERSION 0x11
#define CPU_SIGNATURE  0x600 /* family 6, as Firecracker and kvmtool report */
#define CPU_FEATURES   0x201 /* CPUID.1:EDX FPU | APIC */
#define MP_NR_IRQS     (X86_IRQ_MAX + 1)
#define MP_NR_LINTSRC  2
#define MP_MAX_TABLE                                                         \
	(sizeof(struct mpc_table) + X86_MAX_VCPUS * sizeof(struct mpc_cpu) + \
	 sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +                \
	 (MP_NR_IRQS + MP_NR_LINTSRC) * sizeof(struct mpc_intsrc))

_Static_assert(MP_MAX_TABLE <= X86_HIMEM_GPA - X86_BIOS_GPA, "MP table fits the BIOS area");

/* Sum of bytes is 0 mod 256 once this is stored in the checksum field (§4.1, §4.2). */
static uint8_t mp_checksum(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

/* A cursor over the table being built; every entry is a fixed size, so no bounds to check. */
struct mp_builder {
	uint8_t *buf;
	size_t len;
	uint16_t entries;
};

static void mp_append(struct mp_builder *b, const void *entry, size_t len)
{
	memcpy(b->buf + b->len, entry, len);
	b->len += len;
	b->entries++;
}

static void mp_add_cpus(struct mp_builder *b, unsigned int nr_vcpus)
{
	unsigned int i;

	for (i = 0; i < nr_vcpus; i++) {
		struct mpc_cpu cpu = {
			.type = MP_PROCESSOR,
			.apicid = i,
			.apicver = LAPIC_VERSION,
			.cpuflag = CPU_FLAG_ENABLED | (i == 0 ? CPU_FLAG_BOOTPROC : 0),
			.cpufeature = CPU_SIGNATURE,
			.featureflag = CPU_FEATURES,
		};

		mp_append(b, &cpu, sizeof(cpu));
	}
}

static void mp_add_bus_and_ioapic(struct mp_builder *b, uint8_t ioapic_id)
{
	struct mpc_bus bus = { .type = MP_BUS, .busid = 0 };
	struct mpc_ioapic ioapic = {
		.type = MP_IOAPIC,
		.apicid = ioapic_id,
		.apicver = IOAPIC_VERSION,
		.flags = MPC_APIC_USABLE,
		.apicaddr = (uint32_t)X86_IOAPIC_GPA,
	};

	memcpy(bus.bustype, "ISA   ", sizeof(bus.bustype));
	mp_append(b, &bus, sizeof(bus));
	mp_append(b, &ioapic, sizeof(ioapic));
}

/*
 * ISA IRQ i on I/O APIC pin i, polarity and trigger as the bus defines them (§4.3.4); the
 * 8259 behind LINT0 as ExtINT and NMI on LINT1 of every local APIC (§4.3.5, §5.1).
 */
static void mp_add_interrupts(struct mp_builder *b, uint8_t ioapic_id)
{
	struct mpc_intsrc lint[MP_NR_LINTSRC] = {
		{ .type = MP_LINTSRC, .irqtype = MP_EXTINT, .dstapic = 0xff, .dstirq = 0 },
		{ .type = MP_LINTSRC, .irqtype = MP_NMI, .dstapic = 0xff, .dstirq = 1 },
	};
	unsigned int i;

	for (i = 0; i < MP_NR_IRQS; i++) {
		struct mpc_intsrc irq = {
			.type = MP_INTSRC,
			.irqtype = MP_INT,
			.srcbus = 0,
			.srcbusirq = i,
			.dstapic = ioapic_id,
			.dstirq = i,
		};

		mp_append(b, &irq, sizeof(irq));
	}
	for (i = 0; i < MP_NR_LINTSRC; i++)
		mp_append(b, &lint[i], sizeof(lint[i]));
}

/* Fill the configuration table (header at buf, entries after it); returns its length. */
static size_t mp_build_table(uint8_t *buf, unsigned int nr_vcpus)
{
	struct mp_builder b = { .buf = buf, .len = sizeof(struct mpc_table) };
	struct mpc_table hdr = { .spec = MP_SPEC_REV_1_4, .lapic = (uint32_t)X86_LAPIC_GPA };

	mp_add_cpus(&b, nr_vcpus);
	mp_add_bus_and_ioapic(&b, nr_vcpus);
	mp_add_interrupts(&b, nr_vcpus);
	memcpy(hdr.signature, MPC_SIGNATURE, sizeof(hdr.signature));
	memcpy(hdr.oem, MP_OEM_ID, sizeof(hdr.oem));
	memcpy(hdr.productid, MP_PRODUCT_ID, sizeof(hdr.productid));
	hdr.length = b.len;
	hdr.entry_count = b.entries;
	memcpy(buf, &hdr, sizeof(hdr));
	buf[offsetof(struct mpc_table, checksum)] = mp_checksum(buf, b.len);
	return b.len;
}

static void mp_build_pointer(struct mpf_intel *mpf, uint64_t table_gpa)
{
	memset(mpf, 0, sizeof(*mpf));
	memcpy(mpf->signature, MPF_SIGNATURE, sizeof(mpf->signature));
	mpf->physptr = (uint32_t)table_gpa;
	mpf->length = sizeof(*mpf) / 16;
	mpf->specification = MP_SPEC_REV_1_4;
	mpf->checksum = mp_checksum(mpf, sizeof(*mpf));
}

int x86_mptable_setup(struct vm_mem *mem, unsigned int nr_vcpus, struct error *err)
{
	uint8_t ebda[X86_EBDA_END - X86_EBDA_GPA] = { 0 };
	uint8_t table[MP_MAX_TABLE];
	uint64_t table_gpa = X86_EBDA_GPA + sizeof(struct mpf_intel);
	struct mpf_intel mpf;
	size_t len;

	if (nr_vcpus == 0 || nr_vcpus > X86_MAX_VCPUS)
		return error_set(err, -EINVAL, "mptable: %u vCPUs (must be 1 to %u)", nr_vcpus,
				 X86_MAX_VCPUS);
	len = mp_build_table(table, nr_vcpus);
	if (len > sizeof(ebda) - sizeof(mpf))
		table_gpa = X86_BIOS_GPA;
	else
		memcpy(ebda + sizeof(mpf), table, len);
	mp_build_pointer(&mpf, table_gpa);
	memcpy(ebda, &mpf, sizeof(mpf));
	if (vm_mem_write(mem, X86_EBDA_GPA, ebda, sizeof(ebda)) < 0 ||
	    (table_gpa == X86_BIOS_GPA && vm_mem_write(mem, table_gpa, table, len) < 0))
		return error_set(err, -EFAULT, "mptable: no guest memory at 0x%llx",
				 (unsigned long long)X86_EBDA_GPA);
	return 0;
}
