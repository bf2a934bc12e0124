// Machine contexts: the assembly context switch and the code that builds a
// new thread's first frame. Everything architecture-specific stops here.
#pragma once

#include <cstddef>

extern "C" {
/// Saves the callee-saved registers and FP control state of the running
/// code on its stack, stores that stack pointer in *save_sp, then loads
/// load_sp and resumes whatever context was saved there.
/// Defined in src/arch/switch_x86_64.S. Not signal-safe; not thread-safe
/// (both contexts must belong to the calling OS thread).
void gt_switch_context(void** save_sp, void* load_sp);

/// The entry trampoline a new context starts in (see switch_x86_64.S). Its
/// address is stored in the first frame by make_context; never call it.
void gt_context_entry();
}

namespace gt::detail {

/// Signature of the function a new context starts in. It must never return.
using context_entry = void (*)(void* arg);

/// Bytes below the top of a stack that make_context uses for the first
/// frame and its padding: the frame itself plus 16 bytes of zeroes above it.
inline constexpr std::size_t first_frame_bytes = 64 + 16;

/// Builds the first frame of a new context on the stack [.., stack_top) so
/// that the first gt_switch_context to the returned stack pointer calls
/// entry(arg) on that stack, with the stack aligned as the System V ABI
/// requires at a call. The new context inherits the caller's MXCSR and x87
/// control word, as a new POSIX thread inherits its creator's
/// floating-point environment.
/// @param stack_top one past the highest usable byte of the stack.
/// @return the stack pointer to pass to gt_switch_context as load_sp.
void* make_context(void* stack_top, context_entry entry, void* arg) noexcept;

}  // namespace gt::detail
