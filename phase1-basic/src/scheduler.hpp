// The scheduler: one per OS thread. It owns the run queue and knows which
// thread is RUNNING; every switch between green threads goes through it.
//
// Its code is split by concern:
//   scheduler.cpp    the policy, the run queue and every change of state
//   os_thread.cpp    adopting the OS thread, and the end of its life
//   diagnostics.cpp  names of states, broken invariants
#pragma once

#include <cstdint>

#include "control_block.hpp"

namespace gt::detail {

/// A new process-unique thread id (1, 2, 3, ...). Thread-safe.
std::uint64_t allocate_thread_id() noexcept;

class scheduler {
public:
    /// The calling OS thread's scheduler. The first call on an OS thread
    /// creates it and adopts the code already running there (e.g. main) as
    /// its first green thread, in state RUNNING.
    static scheduler& current() noexcept;

    /// The calling OS thread's scheduler if it has one, else nullptr.
    /// Async-signal-safe (reads one thread-local pointer).
    static scheduler* current_if_any() noexcept;

    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;
    ~scheduler();

    /// Called when the OS thread ends: destroys the scheduler, or abandons it
    /// (never destroyed) while it has threads that have not finished.
    void os_thread_exiting() noexcept;

    /// The thread in state RUNNING.
    control_block* running() const noexcept { return running_; }

    /// True if some thread other than the running one is READY.
    bool has_ready() const noexcept { return !run_queue_.empty(); }

    /// Makes a new thread READY at the back of the run queue. The caller
    /// keeps running.
    void make_ready(control_block* t) noexcept;

    /// Round robin: the running thread goes to the back of the run queue
    /// and the front thread runs. Returns at once if the run queue is empty.
    void yield() noexcept;

    /// Called by a new thread as its first act, right after its first switch.
    void thread_started() noexcept;

    /// Marks the running thread FINISHED and switches away from it for good.
    [[noreturn]] void finish_running() noexcept;

private:
    // pick_next, switch_to and stop_running are inlined into every caller
    // (always_inline): a yield is a few dozen instructions, and calls and
    // returns around the switch are a measurable share of it (see the
    // walkthrough's numbers).
    scheduler() noexcept;

    /// The scheduling policy: which READY thread runs next (nullptr: none).
    /// Round robin: the one that has waited longest.
    [[gnu::always_inline]] inline control_block* pick_next() noexcept;

    /// The one way out of RUNNING: the running thread stops for `why`,
    /// which says where it goes (the back of the run queue, FINISHED), and
    /// the next thread runs. Returns when the thread runs again (never for
    /// `finished`).
    [[gnu::always_inline]] inline void stop_running(stop_reason why) noexcept;

    /// Makes `next` RUNNING and switches to it from the running thread,
    /// which stop_running has already moved out of RUNNING. Returns when
    /// some later switch_to resumes the caller.
    [[gnu::always_inline]] inline void switch_to(control_block* next) noexcept;

    /// The running thread has left RUNNING and is on no run queue: run the
    /// next thread. There always is one: whoever will join a finishing
    /// thread waits by yielding, so it is READY.
    void switch_away() noexcept;

    // ---- The threads: changed only by the scheduler. ----
    run_queue run_queue_;
    control_block main_;         // the adopted OS-thread flow
    control_block* running_;     // exactly one RUNNING thread at any time

    // ---- Set up by the constructor for the OS thread's lifetime. ----
    void* eh_globals_;           // the C++ runtime's exception state for this OS thread
};

}  // namespace gt::detail
