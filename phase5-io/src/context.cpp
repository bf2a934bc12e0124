#include "context.hpp"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include "arch/context_x86_64.h"
#else
#error "gt supports x86-64 only: add src/arch/switch_<arch>.S and a frame for it"
#endif

namespace gt::detail {
namespace {

// The frame gt_switch_context saves and restores; must match the offsets in
// arch/context_x86_64.h, which the assembly uses.
struct switch_frame {
    std::uint32_t mxcsr;
    std::uint16_t x87_control_word;
    std::uint16_t padding;
    std::uint64_t r15;
    std::uint64_t r14;
    std::uint64_t r13;  // new context: the entry function
    std::uint64_t r12;  // new context: the entry function's argument
    std::uint64_t rbx;
    std::uint64_t rbp;  // new context: 0, the end of the frame-pointer chain
    std::uint64_t rip;  // new context: gt_context_entry
};

static_assert(offsetof(switch_frame, mxcsr) == GT_FRAME_MXCSR);
static_assert(offsetof(switch_frame, x87_control_word) == GT_FRAME_X87CW);
static_assert(offsetof(switch_frame, r15) == GT_FRAME_R15);
static_assert(offsetof(switch_frame, r14) == GT_FRAME_R14);
static_assert(offsetof(switch_frame, r13) == GT_FRAME_R13);
static_assert(offsetof(switch_frame, r12) == GT_FRAME_R12);
static_assert(offsetof(switch_frame, rbx) == GT_FRAME_RBX);
static_assert(offsetof(switch_frame, rbp) == GT_FRAME_RBP);
static_assert(offsetof(switch_frame, rip) == GT_FRAME_RIP);
static_assert(sizeof(switch_frame) == GT_FRAME_SIZE);
static_assert(first_frame_bytes == GT_FRAME_SIZE + 16);

}  // namespace

void* make_context(void* stack_top, context_entry entry, void* arg) noexcept {
    // Align the top down to 16 and keep 16 bytes of zeroes above the frame,
    // so nothing ever reads past the end of the mapping.
    auto top = reinterpret_cast<std::uintptr_t>(stack_top) & ~std::uintptr_t{15};
    top -= 16;
    std::memset(reinterpret_cast<void*>(top), 0, 16);

    // gt_context_entry starts with rsp = frame + GT_FRAME_SIZE = top, and top
    // is a multiple of 16: exactly what the ABI requires at its `call`.
    auto* frame = reinterpret_cast<switch_frame*>(top - sizeof(switch_frame));
    std::memset(frame, 0, sizeof *frame);
    __asm__ volatile("stmxcsr %0" : "=m"(frame->mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(frame->x87_control_word));
    frame->r13 = reinterpret_cast<std::uint64_t>(entry);
    frame->r12 = reinterpret_cast<std::uint64_t>(arg);
    frame->rbp = 0;
    frame->rip = reinterpret_cast<std::uint64_t>(&gt_context_entry);
    return frame;
}

}  // namespace gt::detail
