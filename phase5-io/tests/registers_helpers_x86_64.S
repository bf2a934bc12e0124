/*
 * Test helper for registers_test.cpp: fills every register it can with
 * known values, spins for a while (so that timer ticks preempt it with
 * those values live), then writes every register out for the test to check.
 *
 *   void gt_test_hold_registers(const uint64_t* in, uint64_t iterations,
 *                               int use_avx, uint64_t* out);
 *
 * `in` and `out` share one layout of 112 64-bit words (896 bytes; no
 * alignment needed). Offsets in bytes:
 *
 *     0  rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13,
 *        r14, r15 (words 0-14)
 *          The spin loop counts with two of them: r15 counts `iterations`
 *          down to 0 (in[14] is ignored; out[14] must be 0) and r14 counts
 *          up from in[13] (out[13] must be in[13] + iterations). A counter
 *          corrupted in the middle of the loop therefore shows in r14.
 *   120  out: rflags right after the loop (the loop runs with DF set)
 *   128  out: rsp just before the loop
 *   136  out: rsp just after the loop (must equal the word before)
 *   144  out: the x87 status word after the 8 values are popped again
 *          (TOP must be 0; IE and SF, set by a stack overflow or
 *          underflow, must be clear: fnclex runs before the pushes)
 *   152  unused (words 19-31)
 *   256  ymm0 ... ymm15, 32 bytes each (words 32-95); ymmN's bytes 0-15 are
 *          xmmN. Without use_avx only the xmm halves are loaded and
 *          stored (legacy SSE instructions), the rest of `out` is untouched.
 *   768  x87 stack: 8 slots of 16 bytes (words 96-111), each an 80-bit
 *          extended-precision value in its first 10 bytes (fldt/fstpt
 *          format; the other 6 bytes are not touched). Pushed with fldt in
 *          order (slot 0 first, so it ends in st(7) and slot 7 in st(0))
 *          and popped with fstpt into the same slots, so `out` must equal
 *          `in` bit for bit. (fldt/fstpt copy all 80 bits without
 *          rounding; values that are not normal numbers — unnormals,
 *          signalling NaNs — may be changed or raise exceptions: keep to
 *          normal numbers.)
 *
 * `iterations` may be 0. The loop calls nothing, so a tick that interrupts
 * it finds all of the above live, in this function: the program's own code,
 * where gt preempts. The callee-saved registers are restored and the x87
 * stack is empty again on return (System V x86-64 psABI 3.2.1, Figure 3.4);
 * after AVX, vzeroupper avoids SSE/AVX transition penalties in the caller.
 */
        .set    OFF_GPR,     0
        .set    OFF_RFLAGS,  120
        .set    OFF_RSP_BEFORE, 128
        .set    OFF_RSP_AFTER,  136
        .set    OFF_X87_SW,  144
        .set    OFF_VEC,     256
        .set    OFF_X87,     768

        .text
        .globl  gt_test_hold_registers
        .type   gt_test_hold_registers, @function
gt_test_hold_registers:
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbp, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbx, 0
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r12, 0
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r13, 0
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r14, 0
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r15, 0
        pushq   %rcx                    /* 24(%rsp): out */
        .cfi_adjust_cfa_offset 8
        pushq   %rdi                    /* 16(%rsp): in */
        .cfi_adjust_cfa_offset 8
        pushq   %rsi                    /* 8(%rsp): iterations */
        .cfi_adjust_cfa_offset 8
        pushq   %rdx                    /* 0(%rsp): use_avx */
        .cfi_adjust_cfa_offset 8

        /* Vector registers: all 16, whole ymm with AVX, else the xmm halves. */
        testl   %edx, %edx
        jz      1f
        vmovdqu OFF_VEC+0*32(%rdi), %ymm0
        vmovdqu OFF_VEC+1*32(%rdi), %ymm1
        vmovdqu OFF_VEC+2*32(%rdi), %ymm2
        vmovdqu OFF_VEC+3*32(%rdi), %ymm3
        vmovdqu OFF_VEC+4*32(%rdi), %ymm4
        vmovdqu OFF_VEC+5*32(%rdi), %ymm5
        vmovdqu OFF_VEC+6*32(%rdi), %ymm6
        vmovdqu OFF_VEC+7*32(%rdi), %ymm7
        vmovdqu OFF_VEC+8*32(%rdi), %ymm8
        vmovdqu OFF_VEC+9*32(%rdi), %ymm9
        vmovdqu OFF_VEC+10*32(%rdi), %ymm10
        vmovdqu OFF_VEC+11*32(%rdi), %ymm11
        vmovdqu OFF_VEC+12*32(%rdi), %ymm12
        vmovdqu OFF_VEC+13*32(%rdi), %ymm13
        vmovdqu OFF_VEC+14*32(%rdi), %ymm14
        vmovdqu OFF_VEC+15*32(%rdi), %ymm15
        jmp     2f
1:      movdqu  OFF_VEC+0*32(%rdi), %xmm0
        movdqu  OFF_VEC+1*32(%rdi), %xmm1
        movdqu  OFF_VEC+2*32(%rdi), %xmm2
        movdqu  OFF_VEC+3*32(%rdi), %xmm3
        movdqu  OFF_VEC+4*32(%rdi), %xmm4
        movdqu  OFF_VEC+5*32(%rdi), %xmm5
        movdqu  OFF_VEC+6*32(%rdi), %xmm6
        movdqu  OFF_VEC+7*32(%rdi), %xmm7
        movdqu  OFF_VEC+8*32(%rdi), %xmm8
        movdqu  OFF_VEC+9*32(%rdi), %xmm9
        movdqu  OFF_VEC+10*32(%rdi), %xmm10
        movdqu  OFF_VEC+11*32(%rdi), %xmm11
        movdqu  OFF_VEC+12*32(%rdi), %xmm12
        movdqu  OFF_VEC+13*32(%rdi), %xmm13
        movdqu  OFF_VEC+14*32(%rdi), %xmm14
        movdqu  OFF_VEC+15*32(%rdi), %xmm15
2:
        /* x87: clear stale exception flags, then fill all 8 registers. */
        fnclex
        fldt    OFF_X87+0*16(%rdi)
        fldt    OFF_X87+1*16(%rdi)
        fldt    OFF_X87+2*16(%rdi)
        fldt    OFF_X87+3*16(%rdi)
        fldt    OFF_X87+4*16(%rdi)
        fldt    OFF_X87+5*16(%rdi)
        fldt    OFF_X87+6*16(%rdi)
        fldt    OFF_X87+7*16(%rdi)

        movq    %rsp, OFF_RSP_BEFORE(%rcx)

        /* General-purpose registers; rdi, the base, last. */
        movq    8(%rsp), %r15           /* the down-counter: iterations */
        movq    OFF_GPR+0*8(%rdi), %rax
        movq    OFF_GPR+1*8(%rdi), %rbx
        movq    OFF_GPR+2*8(%rdi), %rcx
        movq    OFF_GPR+3*8(%rdi), %rdx
        movq    OFF_GPR+4*8(%rdi), %rsi
        movq    OFF_GPR+6*8(%rdi), %rbp
        movq    OFF_GPR+7*8(%rdi), %r8
        movq    OFF_GPR+8*8(%rdi), %r9
        movq    OFF_GPR+9*8(%rdi), %r10
        movq    OFF_GPR+10*8(%rdi), %r11
        movq    OFF_GPR+11*8(%rdi), %r12
        movq    OFF_GPR+12*8(%rdi), %r13
        movq    OFF_GPR+13*8(%rdi), %r14   /* the up-counter */
        movq    OFF_GPR+5*8(%rdi), %rdi

        /* The spin: every register above is live and nothing is called.
         * DF is set for its duration (the ABI wants it clear at calls and
         * returns only); the kernel clears it for the signal handler and
         * sigreturn must give it back. */
        std
        testq   %r15, %r15
        jz      4f
3:      incq    %r14
        decq    %r15
        jnz     3b
4:
        pushfq                          /* 8(%rsp) after the next push: rflags */
        .cfi_adjust_cfa_offset 8
        cld
        pushq   %rax                    /* 0(%rsp): rax; out is now at 40(%rsp) */
        .cfi_adjust_cfa_offset 8
        movq    40(%rsp), %rax
        movq    %rbx, OFF_GPR+1*8(%rax)
        movq    %rcx, OFF_GPR+2*8(%rax)
        movq    %rdx, OFF_GPR+3*8(%rax)
        movq    %rsi, OFF_GPR+4*8(%rax)
        movq    %rdi, OFF_GPR+5*8(%rax)
        movq    %rbp, OFF_GPR+6*8(%rax)
        movq    %r8,  OFF_GPR+7*8(%rax)
        movq    %r9,  OFF_GPR+8*8(%rax)
        movq    %r10, OFF_GPR+9*8(%rax)
        movq    %r11, OFF_GPR+10*8(%rax)
        movq    %r12, OFF_GPR+11*8(%rax)
        movq    %r13, OFF_GPR+12*8(%rax)
        movq    %r14, OFF_GPR+13*8(%rax)
        movq    %r15, OFF_GPR+14*8(%rax)
        popq    %rcx                    /* rax */
        .cfi_adjust_cfa_offset -8
        movq    %rcx, OFF_GPR+0*8(%rax)
        popq    %rcx                    /* rflags */
        .cfi_adjust_cfa_offset -8
        movq    %rcx, OFF_RFLAGS(%rax)
        movq    %rsp, OFF_RSP_AFTER(%rax)

        /* x87: pop st(0) (pushed last) into the last slot, and so on. */
        fstpt   OFF_X87+7*16(%rax)
        fstpt   OFF_X87+6*16(%rax)
        fstpt   OFF_X87+5*16(%rax)
        fstpt   OFF_X87+4*16(%rax)
        fstpt   OFF_X87+3*16(%rax)
        fstpt   OFF_X87+2*16(%rax)
        fstpt   OFF_X87+1*16(%rax)
        fstpt   OFF_X87+0*16(%rax)
        movq    $0, OFF_X87_SW(%rax)
        fnstsw  OFF_X87_SW(%rax)

        /* Vector registers. */
        cmpl    $0, 0(%rsp)             /* use_avx */
        je      5f
        vmovdqu %ymm0,  OFF_VEC+0*32(%rax)
        vmovdqu %ymm1,  OFF_VEC+1*32(%rax)
        vmovdqu %ymm2,  OFF_VEC+2*32(%rax)
        vmovdqu %ymm3,  OFF_VEC+3*32(%rax)
        vmovdqu %ymm4,  OFF_VEC+4*32(%rax)
        vmovdqu %ymm5,  OFF_VEC+5*32(%rax)
        vmovdqu %ymm6,  OFF_VEC+6*32(%rax)
        vmovdqu %ymm7,  OFF_VEC+7*32(%rax)
        vmovdqu %ymm8,  OFF_VEC+8*32(%rax)
        vmovdqu %ymm9,  OFF_VEC+9*32(%rax)
        vmovdqu %ymm10, OFF_VEC+10*32(%rax)
        vmovdqu %ymm11, OFF_VEC+11*32(%rax)
        vmovdqu %ymm12, OFF_VEC+12*32(%rax)
        vmovdqu %ymm13, OFF_VEC+13*32(%rax)
        vmovdqu %ymm14, OFF_VEC+14*32(%rax)
        vmovdqu %ymm15, OFF_VEC+15*32(%rax)
        vzeroupper
        jmp     6f
5:      movdqu  %xmm0,  OFF_VEC+0*32(%rax)
        movdqu  %xmm1,  OFF_VEC+1*32(%rax)
        movdqu  %xmm2,  OFF_VEC+2*32(%rax)
        movdqu  %xmm3,  OFF_VEC+3*32(%rax)
        movdqu  %xmm4,  OFF_VEC+4*32(%rax)
        movdqu  %xmm5,  OFF_VEC+5*32(%rax)
        movdqu  %xmm6,  OFF_VEC+6*32(%rax)
        movdqu  %xmm7,  OFF_VEC+7*32(%rax)
        movdqu  %xmm8,  OFF_VEC+8*32(%rax)
        movdqu  %xmm9,  OFF_VEC+9*32(%rax)
        movdqu  %xmm10, OFF_VEC+10*32(%rax)
        movdqu  %xmm11, OFF_VEC+11*32(%rax)
        movdqu  %xmm12, OFF_VEC+12*32(%rax)
        movdqu  %xmm13, OFF_VEC+13*32(%rax)
        movdqu  %xmm14, OFF_VEC+14*32(%rax)
        movdqu  %xmm15, OFF_VEC+15*32(%rax)
6:
        addq    $32, %rsp               /* use_avx, iterations, in, out */
        .cfi_adjust_cfa_offset -32
        popq    %r15
        .cfi_adjust_cfa_offset -8
        .cfi_restore r15
        popq    %r14
        .cfi_adjust_cfa_offset -8
        .cfi_restore r14
        popq    %r13
        .cfi_adjust_cfa_offset -8
        .cfi_restore r13
        popq    %r12
        .cfi_adjust_cfa_offset -8
        .cfi_restore r12
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        .cfi_restore rbx
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore rbp
        ret
        .cfi_endproc
        .size   gt_test_hold_registers, .-gt_test_hold_registers

        .section .note.GNU-stack,"",@progbits
