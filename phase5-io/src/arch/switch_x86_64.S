/*
 * The context switch and the entry trampoline for x86-64, System V ABI.
 *
 *   void gt_switch_context(void** save_sp, void* load_sp);
 *     rdi = save_sp: where to store the stack pointer of the thread leaving
 *     rsi = load_sp: the saved stack pointer of the thread to resume
 *
 * Called like any C function, so the caller has already saved every
 * caller-saved (scratch) register it still needs: we save only what the
 * ABI says a callee must preserve (rbx, rbp, r12-r15, rsp) plus the
 * floating-point control state (MXCSR control bits and the x87 control
 * word, "callee-saved" per System V AMD64 ABI section 3.2.1, table 3.4).
 *
 * The saved frame sits on the leaving thread's own stack, just below the
 * return address that the `call` pushed. Its layout (context_x86_64.h):
 *
 *       higher addresses
 *   56  | return address  |  <- pushed by `call gt_switch_context`
 *   48  | rbp             |
 *   40  | rbx             |
 *   32  | r12             |
 *   24  | r13             |
 *   16  | r14             |
 *    8  | r15             |
 *    4  | x87 control word|
 *    0  | MXCSR           |  <- *save_sp points here
 *       lower addresses
 *
 * Every thread that is not running has exactly such a frame at its saved
 * stack pointer, so resuming any of them is the same: load rsp, restore,
 * jump to the saved return address. A new thread gets a hand-made frame
 * (make_context in context.cpp) whose return address is gt_context_entry.
 *
 * Why `jmp` and not `ret`: the CPU predicts a `ret` from its return stack
 * buffer, which remembers the `call`s this stack of code made. After a
 * switch, the `ret` goes back to where *another* thread called us, so it
 * would be mispredicted on every switch (about 5 ns here, half the cost).
 * An indirect `jmp` is predicted from the branch target buffer instead,
 * which learns the pattern. Boost.Context ends its jump_fcontext the same way.
 */
#include "context_x86_64.h"

        .text
        .globl  gt_switch_context
        .type   gt_switch_context, @function
        .p2align 4
gt_switch_context:
        .cfi_startproc
        subq    $GT_FRAME_RIP, %rsp             /* room for the frame below the return address */
        .cfi_adjust_cfa_offset GT_FRAME_RIP      /* both stacks have this layout, so the CFA rule stays true after the swap */
        movq    %r15, GT_FRAME_R15(%rsp)         /* save the callee-saved registers ... */
        .cfi_rel_offset r15, GT_FRAME_R15        /* (and tell debuggers where each one now is) */
        movq    %r14, GT_FRAME_R14(%rsp)
        .cfi_rel_offset r14, GT_FRAME_R14
        movq    %r13, GT_FRAME_R13(%rsp)
        .cfi_rel_offset r13, GT_FRAME_R13
        movq    %r12, GT_FRAME_R12(%rsp)
        .cfi_rel_offset r12, GT_FRAME_R12
        movq    %rbx, GT_FRAME_RBX(%rsp)
        .cfi_rel_offset rbx, GT_FRAME_RBX
        movq    %rbp, GT_FRAME_RBP(%rsp)
        .cfi_rel_offset rbp, GT_FRAME_RBP
        stmxcsr GT_FRAME_MXCSR(%rsp)             /* ... and the SSE control/status register */
        fnstcw  GT_FRAME_X87CW(%rsp)             /* ... and the x87 control word */

        movq    %rsp, (%rdi)                     /* *save_sp = rsp: the old thread is now frozen */
        movq    %rsi, %rsp                       /* rsp = load_sp: we are on the new thread's stack */

        ldmxcsr GT_FRAME_MXCSR(%rsp)             /* restore the new thread's FP control state */
        fldcw   GT_FRAME_X87CW(%rsp)
        movq    GT_FRAME_RBP(%rsp), %rbp         /* restore its callee-saved registers */
        movq    GT_FRAME_RBX(%rsp), %rbx
        movq    GT_FRAME_R12(%rsp), %r12
        movq    GT_FRAME_R13(%rsp), %r13
        movq    GT_FRAME_R14(%rsp), %r14
        movq    GT_FRAME_R15(%rsp), %r15
        .cfi_same_value rbp                      /* (the registers hold the new thread's values again) */
        .cfi_same_value rbx
        .cfi_same_value r12
        .cfi_same_value r13
        .cfi_same_value r14
        .cfi_same_value r15
        movq    GT_FRAME_RIP(%rsp), %r8          /* its return address, in a scratch register */
        .cfi_register rip, r8
        addq    $GT_FRAME_SIZE, %rsp             /* pop the frame and the return address */
        .cfi_adjust_cfa_offset -GT_FRAME_SIZE
        jmp     *%r8                             /* resume it where it called gt_switch_context, or enter gt_context_entry */
        .cfi_endproc
        .size   gt_switch_context, .-gt_switch_context

/*
 * The first instruction a new thread executes: gt_switch_context "returns"
 * here (jumps to the frame's return address) because make_context stored
 * this address there. make_context also stored the entry function in r13 and its
 * argument in r12.
 *
 * Alignment: the ABI requires rsp % 16 == 0 at every `call` instruction
 * (so that rsp % 16 == 8 at the callee's first instruction). We arrive by
 * `jmp`, with rsp = initial saved sp + GT_FRAME_SIZE; make_context chose
 * the initial sp so that this sum is a multiple of 16, and we push nothing
 * before the call.
 *
 * `.cfi_undefined rip` tells every DWARF unwinder (gdb, backtrace(), the
 * C++ exception unwinder) that this frame has no caller: unwinding stops
 * here cleanly instead of reading garbage above the stack.
 */
        .globl  gt_context_entry
        .type   gt_context_entry, @function
        .p2align 4
gt_context_entry:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r12, %rdi                       /* first argument: what make_context stored in r12 */
        call    *%r13                            /* entry function; rsp % 16 == 0 here */
        ud2                                      /* the entry function never returns */
        .cfi_endproc
        .size   gt_context_entry, .-gt_context_entry

        .section .note.GNU-stack,"",@progbits   /* this code needs no executable stack */
