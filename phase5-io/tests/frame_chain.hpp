// A walk of the frame-pointer (rbp) chain from inside a green thread, the
// way perf --call-graph=fp, profilers and hand-written unwinders walk it.
// The walker is in frame_chain_fp.cpp, which the build compiles with
// -fno-omit-frame-pointer (common/phase.mk: tests/*_fp.cpp) at every -O
// level, so that its own frame is a frame record whatever the caller is.
#pragma once

#include <cstdint>
#include <string>

namespace gt_test {

/// What one walk found, from the walker's own frame outwards. A frame
/// record is two words at the address in rbp: the caller's rbp, then the
/// return address.
struct frame_chain {
    int frames = 0;                // records read, each inside the thread's stack
    bool ended_at_zero = false;    // the last record read held a saved rbp of 0
    std::uintptr_t off_stack = 0;  // a saved rbp outside the stack, or not above its frame (0: none)
    std::uintptr_t last_return_address = 0;  // the return address of the last record read
};

/// Most records a walk reads before it gives up: far more than the frames
/// between a thread's function and its stack top.
inline constexpr int max_frames = 64;

/// Walks the chain from the walker's own frame outwards. Reads only
/// addresses inside the running green thread's stack (so a broken chain
/// ends the walk instead of faulting) and at most max_frames records.
/// Call it on a green thread.
frame_chain walk_frame_chain();

/// For gt::thread(record_frame_chain, &out): walks from a thread whose
/// function is the walker's direct caller, whatever that was compiled with.
void record_frame_chain(frame_chain* out);

/// Starts a green thread whose function (built, like this file, with frame
/// pointers) nests `depth` calls of its own and then walks; joins it.
frame_chain walk_from_code_built_with_frame_pointers(int depth);

/// One line for a failure message: what the walk found.
std::string describe(const frame_chain& chain);

}  // namespace gt_test
