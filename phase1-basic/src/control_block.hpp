// The thread control block (TCB): everything the runtime knows about one
// green thread, and the intrusive run queue that links TCBs together.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gt/thread.hpp"
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

struct control_block {
    /// Saved stack pointer, pointing at the frame gt_switch_context left
    /// (layout in arch/context_x86_64.h). Written by gt_switch_context when
    /// the thread stops running, read when it resumes; meaningless while
    /// RUNNING.
    void* sp = nullptr;
    /// Set when the thread is created, then changed only by the scheduler
    /// (switch_to, yield, finish_running).
    thread_state state = thread_state::ready;
    /// Process-unique, never reused; see allocate_thread_id().
    std::uint64_t id = 0;
    /// Next thread in the run queue; used only while READY. Intrusive, so
    /// enqueueing allocates nothing.
    control_block* next = nullptr;
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
    /// AddressSanitizer's fake-stack handle, kept while switched out.
    void* asan_fake_stack = nullptr;
    /// The C++ runtime's exception state (exceptions being handled, count
    /// of exceptions in flight), which it keeps per OS thread: saved here
    /// while the thread is switched out. See switch_to.
    void* caught_exceptions = nullptr;
    unsigned int uncaught_exceptions = 0;
};

/// FIFO of READY threads linked through control_block::next.
/// push_back and pop_front are O(1) and allocate nothing.
class run_queue {
public:
    run_queue() noexcept = default;
    run_queue(const run_queue&) = delete;  // tail_ points into the object itself
    run_queue& operator=(const run_queue&) = delete;

    bool empty() const noexcept { return head_ == nullptr; }

    void push_back(control_block* t) noexcept {
        t->next = nullptr;
        *tail_ = t;
        tail_ = &t->next;
    }

    /// The front thread, removed from the queue; nullptr if empty.
    control_block* pop_front() noexcept {
        control_block* t = head_;
        if (t == nullptr) return nullptr;
        head_ = t->next;
        if (head_ == nullptr) tail_ = &head_;
        t->next = nullptr;
        return t;
    }

private:
    control_block* head_ = nullptr;
    control_block** tail_ = &head_;  // where the next push_back links in
};

}  // namespace gt::detail
