// Built with -fno-omit-frame-pointer (common/phase.mk: tests/*_fp.cpp): the
// code of a program that profiles with frame pointers. See frame_chain.hpp.
#include "frame_chain.hpp"

#include <gt/thread.hpp>

#include <cstdio>

#include "scheduler.hpp"

namespace gt_test {
namespace {

struct frame_record {
    const frame_record* saved_rbp;
    std::uintptr_t return_address;
};

// Each level has a frame of its own: the asm after the call keeps GCC from
// turning the call into a jump that reuses this frame.
__attribute__((noinline)) frame_chain nest(int depth) {
    frame_chain chain = depth == 0 ? walk_frame_chain() : nest(depth - 1);
    __asm__ volatile("" : : "r"(&chain) : "memory");
    return chain;
}

}  // namespace

// Not instrumented by AddressSanitizer: a broken chain may point anywhere
// on the stack, and reading it must not stop the test before it reports.
__attribute__((noinline, no_sanitize_address)) frame_chain walk_frame_chain() {
    const auto& stack = gt::detail::scheduler::current().running()->stack;
    const auto bottom = reinterpret_cast<std::uintptr_t>(stack.bottom());
    const auto top = reinterpret_cast<std::uintptr_t>(stack.top());
    frame_chain chain;
    auto at = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    while (chain.frames < max_frames) {
        if (at < bottom || at > top - sizeof(frame_record) || at % alignof(frame_record) != 0) {
            chain.off_stack = at;
            break;
        }
        const auto* record = reinterpret_cast<const frame_record*>(at);
        ++chain.frames;
        chain.last_return_address = record->return_address;
        const auto next = reinterpret_cast<std::uintptr_t>(record->saved_rbp);
        if (next == 0) {
            chain.ended_at_zero = true;
            break;
        }
        if (next <= at) {  // callers' frames lie above their callees'
            chain.off_stack = next;
            break;
        }
        at = next;
    }
    return chain;
}

void record_frame_chain(frame_chain* out) {
    *out = walk_frame_chain();
    __asm__ volatile("" : : "r"(out) : "memory");
}

frame_chain walk_from_code_built_with_frame_pointers(int depth) {
    frame_chain chain;
    gt::thread t([&chain, depth] { chain = nest(depth); });
    t.join();
    return chain;
}

std::string describe(const frame_chain& chain) {
    char line[256];
    std::snprintf(
        line, sizeof line,
        "%d frame records, ended at a saved rbp of 0: %s, off the stack: %#llx, last return address %#llx",
        chain.frames, chain.ended_at_zero ? "yes" : "no", static_cast<unsigned long long>(chain.off_stack),
        static_cast<unsigned long long>(chain.last_return_address));
    return line;
}

}  // namespace gt_test
