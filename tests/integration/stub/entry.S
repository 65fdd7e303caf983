/*
 * Entry points of the freestanding test guest. PVH (32-bit protected mode, ebx = start
 * info) acts on the last byte of the command line (the VMM puts the user's words last): 'p' power off through the exit port,
 * 'r' reset through the i8042, 't' triple fault, 'i' idle forever (interrupts off), 'e'
 * echo console input back until a 'q' arrives, then power off, 'h' hello then power off, 'b' busy: print '.' forever with a spin between. The 64-bit entry
 * (Linux boot protocol, rsi = zero page) runs the C checks in stub.c, or with 'c' last on
 * the command line the counting workload the snapshot test interrupts.
 */
#define COM1 0x3f8
#define EXIT_PORT 0xf4

	.section .note.Xen, "a", @note
	.balign 4
	.long 4			/* namesz */
	.long 4			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long stub_entry32

	.section .text.entry, "ax"
	.code32
	.globl stub_entry32
stub_entry32:
	mov	$stack_top, %esp
	mov	$hello32, %esi
	call	puts32
	movb	$123, 0xd0000000	/* boot timer */
	mov	24(%ebx), %esi		/* hvm_start_info.cmdline_paddr */
	xor	%eax, %eax
4:	cmpb	$0, (%esi)
	je	5f
	movb	(%esi), %al		/* remember the last byte before the NUL */
	inc	%esi
	jmp	4b
5:
	cmp	$'p', %al
	je	poweroff32
	cmp	$'r', %al
	je	reset32
	cmp	$'t', %al
	je	triple32
	cmp	$'h', %al
	je	poweroff32
	cmp	$'i', %al
	je	idle32
	cmp	$'e', %al
	je	echo32
	cmp	$'b', %al
	je	busy32
	mov	$unknown32, %esi
	call	puts32
poweroff32:
	mov	$EXIT_PORT, %dx
	xor	%al, %al
	outb	%al, %dx
	jmp	hang32
reset32:
	mov	$0x64, %dx
	mov	$0xfe, %al
	outb	%al, %dx
	jmp	hang32
triple32:
	lidt	null_idt
	ud2			/* #UD with no IDT: triple fault (not INT3, which QEMU cannot finish here) */
echo32:
	mov	$echo_msg, %esi
	call	puts32
6:	mov	$COM1 + 5, %dx		/* LSR: wait for data ready */
	inb	%dx, %al
	test	$1, %al
	jz	6b
	mov	$COM1, %dx
	inb	%dx, %al
	cmp	$'q', %al
	je	poweroff32
	outb	%al, %dx
	jmp	6b
busy32:
	mov	$COM1, %dx
7:	mov	$'.', %al
	outb	%al, %dx
	mov	$0x80000, %ecx
8:	dec	%ecx
	jnz	8b
	jmp	7b
idle32:
	mov	$idle_msg, %esi
	call	puts32
hang32:
	cli
	hlt
	jmp	hang32

/* Print the NUL-terminated string at esi on COM1. */
puts32:
	mov	$COM1, %dx
1:	lodsb
	test	%al, %al
	jz	2f
	outb	%al, %dx
	jmp	1b
2:	ret

	.code64
	.globl stub_entry64
stub_entry64:
	mov	$stack_top, %rsp
	mov	%rsi, %rdi
	call	stub_main
	mov	$EXIT_PORT, %dx
	xor	%al, %al
	outb	%al, %dx
3:	hlt
	jmp	3b

	.section .rodata
hello32:
	.asciz "stub: hello from PVH\n"
unknown32:
	.asciz "stub: unknown action\n"
idle_msg:
	.asciz "stub: idle\n"
echo_msg:
	.asciz "stub: echo\n"
	.balign 8
null_idt:
	.word 0
	.long 0

	.section .bss
	.balign 16
	.space 8192
stack_top:

	.section .note.GNU-stack, "", @progbits
