/*
 * Layout of a saved context on x86-64 (System V ABI), shared by the
 * assembly in switch_x86_64.S and by the C++ that builds a new thread's
 * first frame (context.cpp). context.cpp static_asserts every offset
 * against its frame struct, so the two cannot drift apart.
 *
 * A saved context lives on the thread's own stack; the thread control block
 * keeps only the stack pointer that points at it (offset 0 below).
 *
 *   offset  size  contents                     restored by
 *   ------  ----  ---------------------------  ---------------------------
 *      0      4   MXCSR (SSE control/status)   ldmxcsr
 *      4      2   x87 FPU control word         fldcw
 *      6      2   padding
 *      8      8   r15                          movq
 *     16      8   r14                          movq
 *     24      8   r13  (new thread: entry fn)  movq
 *     32      8   r12  (new thread: its arg)   movq
 *     40      8   rbx                          movq
 *     48      8   rbp  (new thread: 0)         movq
 *     56      8   return address (rip)         movq + jmp
 *     64          = GT_FRAME_SIZE
 *
 * Only this file may be included from assembly: plain #defines, no C++.
 */
#ifndef GT_ARCH_CONTEXT_X86_64_H
#define GT_ARCH_CONTEXT_X86_64_H

#define GT_FRAME_MXCSR 0
#define GT_FRAME_X87CW 4
#define GT_FRAME_R15 8
#define GT_FRAME_R14 16
#define GT_FRAME_R13 24
#define GT_FRAME_R12 32
#define GT_FRAME_RBX 40
#define GT_FRAME_RBP 48
#define GT_FRAME_RIP 56
#define GT_FRAME_SIZE 64

#endif
