// The scheduler: one per OS thread. It owns the run queues and knows which
// thread is RUNNING; every switch between green threads goes through it.
//
// Its code is split by concern:
//   scheduler.cpp    the policy, the run queues and every change of state
//   os_thread.cpp    adopting the OS thread, and the end of its life
//   diagnostics.cpp  the dump, the deadlock report, invariants
#pragma once

#include <cstdint>
#include <iosfwd>

#include "control_block.hpp"
#include "stack.hpp"

namespace gt::detail {

/// A new process-unique thread id (1, 2, 3, ...). Thread-safe.
std::uint64_t allocate_thread_id() noexcept;

/// Now on CLOCK_MONOTONIC (std::chrono::steady_clock), in nanoseconds.
std::int64_t monotonic_now_ns() noexcept;

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

    /// Every change to the scheduler's data happens inside a critical
    /// section: this guard. A switch happens inside one and the thread
    /// switched to leaves it, so the count is per scheduler, not per thread.
    /// Today it only lets the scheduler assert that rule; once a timer
    /// signal can preempt threads, entering it is what defers preemption.
    class critical_section {
    public:
        explicit critical_section(scheduler& s) noexcept : s_(s) { ++s_.critical_depth_; }
        ~critical_section() { --s_.critical_depth_; }
        critical_section(const critical_section&) = delete;
        critical_section& operator=(const critical_section&) = delete;

    private:
        scheduler& s_;
    };

    /// The thread in state RUNNING.
    control_block* running() const noexcept { return running_; }

    /// True if some thread other than the running one is READY.
    bool has_ready() const noexcept { return !run_queues_.empty(); }

    /// Makes a new thread READY at the back of its priority's run queue and
    /// adds it to the list of all threads. If its priority is higher than
    /// the running thread's, the running thread is outranked: the new
    /// thread runs before this returns.
    void make_ready(control_block* t) noexcept;

    /// Round robin within a priority: the running thread goes to the back
    /// of its run queue and the first thread of the highest non-empty level
    /// runs. Returns at once if no thread of the same or a higher priority
    /// is READY. Sleepers whose time has come are made READY first.
    void yield() noexcept;

    /// Blocks the running thread in join() until `target` finishes.
    /// Precondition: target is not FINISHED and has no joiner.
    void join_wait(control_block* target) noexcept;

    /// Blocks the running thread until `deadline_ns` (CLOCK_MONOTONIC).
    void sleep_until(std::int64_t deadline_ns) noexcept;

    /// Changes a thread's priority, moving it between run queues if READY,
    /// and switches if the running thread is outranked.
    void set_priority(control_block* t, int priority) noexcept;

    /// Renames a thread (for the dump and the trace).
    void set_name(control_block* t, std::string name);

    /// Called by a new thread as its first act, right after its first switch.
    void thread_started() noexcept;

    /// Marks the running thread FINISHED, wakes its joiner, and switches
    /// away from it for good. A detached thread is reaped by whichever
    /// thread runs next (a thread cannot unmap the stack it runs on).
    [[noreturn]] void finish_running() noexcept;

    /// Returns a FINISHED thread's stack to the stack pool and frees its
    /// control block.
    void release(control_block* t) noexcept;

    /// Writes one line per thread: id, name, state, priority, stack size
    /// and stack high-water mark.
    void dump(std::ostream& out) const;

    /// Number of threads (all states, the adopted main thread included).
    std::size_t thread_count() const noexcept { return thread_count_; }

    /// Idle stacks ready for reuse.
    const stack_pool& stacks() const noexcept { return stacks_; }
    stack_pool& stacks() noexcept { return stacks_; }

    /// The thread's name as shown: its own, or "thread-<id>".
    static std::string name_of(const control_block& t);

private:
    // pick_next, switch_to and stop_running are inlined into every caller
    // (always_inline): a yield is a few dozen instructions, and calls and
    // returns around the switch are a measurable share of it (see the
    // walkthrough's numbers).
    scheduler() noexcept;

    /// The scheduling policy: which READY thread runs next (nullptr: none).
    /// Strict priority, round robin within a level: the first thread of
    /// the highest non-empty run queue.
    [[gnu::always_inline]] inline control_block* pick_next() noexcept;

    /// The one way out of RUNNING: the running thread stops for `why`,
    /// which says where it goes (the back or the front of its run queue,
    /// BLOCKED, FINISHED), and the next thread runs. Returns when the
    /// thread runs again (never for `finished`).
    [[gnu::always_inline]] inline void stop_running(stop_reason why) noexcept;

    /// Makes `next` RUNNING and switches to it from the running thread,
    /// which stop_running has already moved out of RUNNING. Returns when
    /// some later switch_to resumes the caller.
    [[gnu::always_inline]] inline void switch_to(control_block* next) noexcept;

    /// The running thread has left RUNNING and is on no run queue: run the
    /// next thread. When none is READY, sleep the OS thread until the
    /// earliest timer; when there is no timer either, every thread is
    /// blocked for good: report a deadlock.
    void switch_away() noexcept;

    /// True if a READY thread has a higher priority than the running one.
    bool outranked() const noexcept { return !run_queues_.empty() && run_queues_.highest() > running_->priority; }

    /// If the running thread is outranked, it goes to the front of its run
    /// queue and the higher thread runs.
    void switch_if_outranked() noexcept;

    /// Moves sleepers whose wake_time has passed to the run queues.
    void wake_expired_timers(std::int64_t now) noexcept;

    /// BLOCKED -> READY at the back of its run queue.
    void ready(control_block* t) noexcept;

    /// Aborts with a message if called inside a critical section: entry
    /// points from user code check it first.
    void check_not_reentered() const noexcept;

    /// Frees the detached thread that finished just before this switch.
    void reap_zombie() noexcept;

    [[noreturn]] void report_deadlock() const noexcept;

    // ---- The threads: changed only inside a critical section. ----
    priority_run_queues run_queues_;
    timer_list timers_;                  // sleepers, by wake_time
    control_block main_;                 // the adopted OS-thread flow
    control_block* running_;             // exactly one RUNNING thread at any time
    control_block* all_threads_;         // list through all_next, in creation order
    control_block* all_tail_;
    control_block* zombie_ = nullptr;    // detached, FINISHED, not yet freed
    std::size_t thread_count_ = 1;
    stack_pool stacks_;

    // ---- The critical section's depth: see critical_section. ----
    int critical_depth_ = 0;

    // ---- Set up by the constructor for the OS thread's lifetime. ----
    void* eh_globals_;                   // the C++ runtime's exception state for this OS thread
    void* alt_stack_ = nullptr;          // for the stack-overflow report
};

}  // namespace gt::detail
