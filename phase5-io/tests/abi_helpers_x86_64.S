/*
 * Test helpers that C++ cannot express: they touch registers directly.
 *
 *   uint64_t gt_test_callee_saved_survive(void (*fn)(void), uint64_t seed);
 *     Loads rbx, rbp, r12-r15 with values derived from `seed`, calls fn()
 *     (which yields to other threads), then returns a bit mask of the
 *     registers whose value changed: bit 0 rbx, 1 rbp, 2 r12, 3 r13,
 *     4 r14, 5 r15. 0 means every callee-saved register survived.
 *
 *   uint64_t gt_test_rsp_at_call(void);
 *     Returns the caller's rsp at its `call` instruction (rsp + 8 here).
 *     The System V ABI requires it to be a multiple of 16.
 */
        .text
        .globl  gt_test_callee_saved_survive
        .type   gt_test_callee_saved_survive, @function
gt_test_callee_saved_survive:
        .cfi_startproc
        pushq   %rbp                    /* we must preserve them ourselves */
        .cfi_adjust_cfa_offset 8
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        pushq   %rsi                    /* keep the seed; also realigns rsp to 16 */
        .cfi_adjust_cfa_offset 8

        movq    %rsi, %rbx              /* rbx = seed + 1, rbp = seed + 2, ... */
        addq    $1, %rbx
        leaq    2(%rsi), %rbp
        leaq    3(%rsi), %r12
        leaq    4(%rsi), %r13
        leaq    5(%rsi), %r14
        leaq    6(%rsi), %r15
        call    *%rdi                   /* yields: other threads load their own values */

        popq    %rsi                    /* the seed again */
        .cfi_adjust_cfa_offset -8
        xorl    %eax, %eax              /* mask of registers that changed */
        leaq    1(%rsi), %rdx
        cmpq    %rdx, %rbx
        je      1f
        orq     $1, %rax
1:      leaq    2(%rsi), %rdx
        cmpq    %rdx, %rbp
        je      2f
        orq     $2, %rax
2:      leaq    3(%rsi), %rdx
        cmpq    %rdx, %r12
        je      3f
        orq     $4, %rax
3:      leaq    4(%rsi), %rdx
        cmpq    %rdx, %r13
        je      4f
        orq     $8, %rax
4:      leaq    5(%rsi), %rdx
        cmpq    %rdx, %r14
        je      5f
        orq     $16, %rax
5:      leaq    6(%rsi), %rdx
        cmpq    %rdx, %r15
        je      6f
        orq     $32, %rax
6:
        popq    %r15
        .cfi_adjust_cfa_offset -8
        popq    %r14
        .cfi_adjust_cfa_offset -8
        popq    %r13
        .cfi_adjust_cfa_offset -8
        popq    %r12
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        ret
        .cfi_endproc
        .size   gt_test_callee_saved_survive, .-gt_test_callee_saved_survive

        .globl  gt_test_rsp_at_call
        .type   gt_test_rsp_at_call, @function
gt_test_rsp_at_call:
        .cfi_startproc
        leaq    8(%rsp), %rax           /* undo the return address the call pushed */
        ret
        .cfi_endproc
        .size   gt_test_rsp_at_call, .-gt_test_rsp_at_call

        .section .note.GNU-stack,"",@progbits
