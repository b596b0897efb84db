/* Multiboot v1 entry for the test guest: QEMU's -kernel loads this 32-bit ELF
 * and jumps here in protected mode with paging off. We load our own GDT (the
 * loader's is not guaranteed valid) before enabling interrupts. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* page-align modules, provide memory info */

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    lgdt gdt_descriptor
    ljmp $0x08, $1f
1:  mov $0x10, %cx
    mov %cx, %ds
    mov %cx, %es
    mov %cx, %fs
    mov %cx, %gs
    mov %cx, %ss
    push %ebx              /* multiboot info */
    push %eax              /* multiboot magic */
    call guest_main
2:  cli
    hlt
    jmp 2b

/* One stub per vector we care about; all funnel into the C dispatcher. */
    .macro ISR n
    .globl isr\n
isr\n:
    pusha
    push $\n
    call interrupt_dispatch
    add $4, %esp
    popa
    iret
    .endm
    ISR 32
    ISR 33
    ISR 34
    ISR 35
    ISR 36
    ISR 37
    ISR 38
    ISR 39
    ISR 40
    ISR 41
    ISR 42
    ISR 43
    ISR 44
    ISR 45
    ISR 46
    ISR 47
    .globl isr_other
isr_other:
    iret

    .section .data
    .align 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF   /* code: base 0, limit 4G, ring 0 */
    .quad 0x00CF92000000FFFF   /* data */
gdt_descriptor:
    .word gdt_descriptor - gdt - 1
    .long gdt

    .section .bss
    .align 16
    .space 16384
stack_top:

    .section .note.GNU-stack,"",@progbits
