// The thread control block (TCB): everything the runtime knows about one
// green thread, the one function that changes its state, and the intrusive
// run queue that links TCBs together.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gt/thread.hpp"
#include "invariant.hpp"
#include "stack.hpp"

namespace gt::detail {

class scheduler;

/// The life of a thread:
///
///   READY --(picked by the scheduler)--> RUNNING --(returns)--> FINISHED
///     ^                                     |
///     +---------------(yields)--------------+
enum class thread_state : std::uint8_t {
    ready,     ///< in the run queue, waiting for the CPU
    running,   ///< executing; exactly one per scheduler
    finished,  ///< its function returned; waits to be joined
};

/// "READY", "RUNNING" or "FINISHED".
const char* to_string(thread_state state) noexcept;

/// Why a thread left RUNNING: the edges out of RUNNING above. The
/// scheduler's stop_running takes one; the diagnostics report it.
enum class stop_reason : std::uint8_t {
    yield,          ///< it called yield: to the back of its run queue
    finished,       ///< its function returned: FINISHED
};

/// Which intrusive list a thread's `next` link is on. A thread is on at most
/// one list at a time; each list asserts it when it links a thread in.
enum class on_list : std::uint8_t { none, run_queue };

/// "no list" or "a run queue".
const char* to_string(on_list list) noexcept;

/// Fields are grouped by who may touch them, as xv6 groups struct proc's.
struct control_block {
    // ---- Saved and restored by switch_to; meaningless while RUNNING. ----
    /// Saved stack pointer, pointing at the frame gt_switch_context left
    /// (layout in arch/context_x86_64.h).
    void* sp = nullptr;
    /// AddressSanitizer's fake-stack handle.
    void* asan_fake_stack = nullptr;
    /// The C++ runtime's exception state (exceptions being handled, count
    /// of exceptions in flight), which it keeps per OS thread. See switch_to.
    void* caught_exceptions = nullptr;
    unsigned int uncaught_exceptions = 0;

    // ---- Changed only by the scheduler. ----
    /// Changed only by change_state, which asserts the state it leaves.
    thread_state state = thread_state::ready;
    /// Which list `next` links it into; set and checked by the lists.
    on_list list = on_list::none;
    /// Next thread in the run queue; used only while READY. Intrusive, so
    /// enqueueing allocates nothing.
    control_block* next = nullptr;

    // ---- Set when the thread is made, then only read. ----
    /// Process-unique, never reused; see allocate_thread_id().
    std::uint64_t id = 0;
    /// The scheduler whose run queue this thread uses; join() checks it.
    scheduler* owner = nullptr;
    /// The callable and its arguments; owned, deleted on the thread itself
    /// once the callable has returned. Null for the adopted main thread.
    thread_start* entry = nullptr;
    /// The mapped stack; empty for the adopted main thread, which keeps the
    /// OS thread's stack.
    detail::stack stack;
    /// Bounds of the stack this thread runs on (the mapped one, or the OS
    /// thread's for main): told to AddressSanitizer at each switch.
    const void* stack_bottom = nullptr;
    std::size_t stack_size = 0;
};

/// Reports that `t` was about to go from `from` to `to` but is in another
/// state, and aborts (diagnostics.cpp).
[[noreturn]] void wrong_state(const control_block& t, thread_state from, thread_state to, const char* file,
                              int line, const char* function) noexcept;

/// The one place where a thread's state changes: checks that `t` is in
/// `from`, then moves it to `to`. A failed check names the thread, the
/// state it is in, the one it should have been in, and the caller, whose
/// file, line and function the default arguments take at the call site
/// (GCC's and Clang's __builtin_FILE/LINE/FUNCTION; std::source_location
/// does the same, but Clang 14 cannot compile it with libstdc++ 12).
inline void change_state(control_block& t, [[maybe_unused]] thread_state from, thread_state to,
                         [[maybe_unused]] const char* file = __builtin_FILE(),
                         [[maybe_unused]] int line = __builtin_LINE(),
                         [[maybe_unused]] const char* function = __builtin_FUNCTION()) noexcept {
#if !defined(NDEBUG)
    if (t.state != from) wrong_state(t, from, to, file, line, function);
#endif
    t.state = to;
}

/// FIFO of READY threads linked through control_block::next.
/// push_back and pop_front are O(1) and allocate nothing. The queue owns
/// the thread's membership mark (`list`) and asserts it.
class run_queue {
public:
    run_queue() noexcept = default;
    run_queue(const run_queue&) = delete;  // tail_ points into the object itself
    run_queue& operator=(const run_queue&) = delete;

    bool empty() const noexcept { return head_ == nullptr; }

    void push_back(control_block* t) noexcept {
        link_in(t);
        t->next = nullptr;
        *tail_ = t;
        tail_ = &t->next;
    }

    /// The front thread, removed from the queue; nullptr if empty.
    control_block* pop_front() noexcept {
        control_block* t = head_;
        if (t == nullptr) return nullptr;
        GT_INVARIANT_ON(t->list == on_list::run_queue && t->state == thread_state::ready, *t,
                        "a thread in a run queue is READY and marked as being there");
        head_ = t->next;
        if (head_ == nullptr) tail_ = &head_;
        t->next = nullptr;
        t->list = on_list::none;
        return t;
    }

private:
    static void link_in(control_block* t) noexcept {
        GT_INVARIANT_ON(t->state == thread_state::ready, *t, "only READY threads join a run queue");
        GT_INVARIANT_ON(t->list == on_list::none, *t, "a thread is on at most one list");
        t->list = on_list::run_queue;
    }

    control_block* head_ = nullptr;
    control_block** tail_ = &head_;  // where the next push_back links in
};

}  // namespace gt::detail
