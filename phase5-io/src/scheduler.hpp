// The scheduler: one per OS thread. It owns the run queues and knows which
// thread is RUNNING; every switch between green threads goes through it.
//
// Its code is split by concern:
//   scheduler.cpp    the policy, the run queues and every change of state
//   os_thread.cpp    adopting the OS thread, and the end of its life
//   ticks.cpp        timer ticks: accounting, time slices, deferred ticks
//   mutex.cpp, condition_variable.cpp   the primitives' slow paths, on
//                    block and wake
//   diagnostics.cpp  the dump, the deadlock and stall reports, invariants
//   poller.cpp, io.cpp  the poller, and the calls that block on descriptors
//   deterministic.cpp  the deterministic scheduling mode
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>
#include <limits>
#include <iosfwd>
#include <mutex>
#include <optional>

#include "control_block.hpp"
#include "deterministic.hpp"
#include "poller.hpp"
#include "preempt.hpp"
#include "stack.hpp"
#include "timer_heap.hpp"

namespace gt::detail {

/// A new process-unique thread id (1, 2, 3, ...). Thread-safe.
std::uint64_t allocate_thread_id() noexcept;

/// Now on CLOCK_MONOTONIC (std::chrono::steady_clock), in nanoseconds.
std::int64_t monotonic_now_ns() noexcept;

/// The calling OS thread's CPU time (CLOCK_THREAD_CPUTIME_ID), in ns.
/// Async-signal-safe.
std::int64_t thread_cpu_now_ns() noexcept;

class scheduler;

/// What the idle hook (scheduler::set_idle_hook) did when no thread was READY.
enum class idle_step : std::uint8_t {
    none,     ///< no idle callback can run: idle, or report a deadlock, as without them
    readied,  ///< it made a thread READY (the callback thread, for a round of idle callbacks)
    sleep,    ///< this idle period's round has run: sleep, even with no deadline and no descriptor waiter
};
using idle_hook = idle_step (*)(scheduler&) noexcept;

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
    /// A timer tick that arrives inside one is deferred; the outermost
    /// section honours it when it ends.
    class critical_section {
    public:
        // The signal fences keep the compiler from moving the section's own
        // reads and writes before the increment or after the decrement,
        // where a tick could see them half done.
        explicit critical_section(scheduler& s) noexcept : s_(s) {
            s_.critical_depth_ = s_.critical_depth_ + 1;
            std::atomic_signal_fence(std::memory_order_seq_cst);
        }
        ~critical_section() {
            std::atomic_signal_fence(std::memory_order_seq_cst);
            s_.critical_depth_ = s_.critical_depth_ - 1;
            if ((s_.tick_pending_ | s_.outrank_pending_) != 0 && s_.critical_depth_ == 0) s_.honour_pending();
        }
        critical_section(const critical_section&) = delete;
        critical_section& operator=(const critical_section&) = delete;

    private:
        scheduler& s_;
    };

    /// True inside a critical section (a signal handler may ask).
    bool in_critical_section() const noexcept { return critical_depth_ != 0; }

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

    /// Aborts with a message if called inside a critical section: entry
    /// points from user code (the API, the primitives' slow paths) check
    /// it first.
    void check_not_reentered() const noexcept;

    /// A block with no deadline.
    static constexpr std::int64_t no_deadline = std::numeric_limits<std::int64_t>::max();

    /// Blocks the running thread on wait queue `q` until a wake() picks it
    /// (or, with a deadline, until `deadline_ns` on CLOCK_MONOTONIC passes,
    /// whichever comes first), and returns what woke it. Enqueued by
    /// priority, after the waiters of its own priority, or before them with
    /// `at_front_of_level`. A deadline already passed returns
    /// wake_reason::timeout without blocking.
    ///
    /// Called inside exactly one critical section, the caller's, in which
    /// the caller has decided to wait: no tick and no other thread of this
    /// scheduler runs between that decision and the switch, so no wakeup is
    /// lost. The section is carried across the switch; when block returns,
    /// the caller is inside it again.
    wake_reason block(wait_queue& q, std::int64_t deadline_ns = no_deadline, bool at_front_of_level = false) noexcept;

    /// Ends `t`'s block for `why`, if `t` still blocks with wake ticket
    /// `epoch` (control_block::wake_epoch): unlinks it from its wait queue
    /// and the timer heap and makes it READY. Returns false, doing
    /// nothing, if another wake got there first. Inside a critical section;
    /// never switches: a woken thread that outranks the running one runs
    /// when the outermost section ends. The one function that readies a
    /// blocked waiter (a thread of another OS thread's scheduler is refused
    /// with a message: supported from phase 6).
    bool wake(control_block* t, std::uint32_t epoch, wake_reason why) noexcept;
    /// wake() with the ticket `t` holds now: for a waker that found `t` on
    /// a wait queue inside the same critical section.
    bool wake(control_block* t, wake_reason why) noexcept {
        return wake(t, t->wake_epoch.load(std::memory_order_relaxed), why);
    }

    /// Changes a thread's base priority; its effective priority becomes
    /// the higher of that and what it inherits (update_priority). Switches
    /// if the running thread is outranked.
    void set_priority(control_block* t, int priority) noexcept;

    // ---- Priority inheritance (wait_for.cpp), inside a critical section. ----
    /// Raises `t`'s effective priority to at least `priority`, and so on
    /// along the chain of mutex owners `t` waits for (at most
    /// max_wait_chain hops). For a thread about to wait for a mutex `t` owns.
    void inherit_priority(control_block* t, int priority) noexcept;
    /// Sets `t`'s effective priority to the highest of its base priority
    /// and the first waiter of each mutex in its held_contended, and
    /// follows the chain of owners while that changes theirs. For an
    /// unlock, a waiter that gave up, and set_priority.
    void update_priority(control_block* t) noexcept;

    // ---- Deadlines and descriptors, inside a critical section. ----
    /// Puts `node` in the timer heap to expire at `deadline_ns`
    /// (CLOCK_MONOTONIC): a gt::timer's node, whose `expire` runs then.
    /// @throws std::bad_alloc when the heap's array cannot grow.
    void arm(timer_node* node, std::int64_t deadline_ns) { timers_.insert(node, deadline_ns); }
    /// Takes a queued gt::timer's node out of the timer heap.
    void disarm(timer_node* node) noexcept { timers_.remove(node); }
    /// The deadlines: sleepers, timed waiters, gt::timers.
    const timer_heap& timers() const noexcept { return timers_; }
    /// This scheduler's poller (poller.hpp).
    detail::poller& poller() noexcept { return poller_; }
    const detail::poller& poller() const noexcept { return poller_; }

    // ---- Idle callbacks (callback_thread.cpp), inside a critical section. ----
    /// Installs what switch_away calls when no thread is READY, before the
    /// OS thread sleeps (gt::on_idle's round on the callback thread).
    void set_idle_hook(idle_hook hook) noexcept { idle_hook_ = hook; }
    /// Times the OS thread has idled in the poller (idle()) so far.
    std::uint64_t idle_sleeps() const noexcept { return idle_sleeps_; }

    /// Renames a thread (for the dump and the trace).
    void set_name(control_block* t, std::string name);

    /// Called by a new thread as its first act, right after its first switch.
    void thread_started() noexcept;

    /// A timer tick: from the SIGALRM handler, on the running thread's
    /// stack, with SIGALRM blocked; `ucontext` is the interrupted context.
    /// Charges the tick to the running thread, reports a stall, and when
    /// the running thread has used its slice and a thread of the same or a
    /// higher priority is READY, ends its slice — now if it is at a safe
    /// point, else as soon as it is (the tick is deferred).
    void on_tick(void* ucontext) noexcept;

    /// Called when the running thread's last disable_preemption guard ends.
    void preemption_enabled_again() noexcept {
        if (tick_pending_ && critical_depth_ == 0) honour_pending_tick();
    }

    /// A deferred tick, honoured when the critical section or the
    /// disable_preemption guard that deferred it ends.
    void honour_pending_tick() noexcept;

    /// What the outermost critical section left to do when it ended: switch
    /// to a thread that a wake made READY and that outranks the running
    /// one, then honour a deferred tick.
    void honour_pending() noexcept;

    /// Time slice and stall threshold in ns (0: off); re-arms the timer.
    /// @throws std::system_error as preempt::ticker::set_period.
    void set_preemption(std::int64_t slice_ns, std::int64_t stall_threshold_ns);
    std::int64_t time_slice_ns() const noexcept { return slice_ns_; }
    /// When the last timer tick landed (ns, CLOCK_MONOTONIC; 0 before the
    /// first): a clock that costs no system call, for diagnostics.
    std::int64_t last_tick_ns() const noexcept { return last_tick_; }
    std::int64_t stall_threshold_ns() const noexcept { return stall_ns_; }

    /// In the child of a fork(2): make this OS thread's timer again.
    void restart_timer_after_fork() noexcept { ticker_.restart_after_fork(); }

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

    /// The deterministic mode (deterministic.cpp, gt/deterministic.hpp):
    /// on with `seed`, off with 0. On, preemption is off and running_thread
    /// is kept nullptr, so the mutexes' inline fast paths take their slow
    /// paths, which call sync_point.
    void set_schedule_seed(std::uint64_t seed);
    const deterministic_state& deterministic() const noexcept { return deterministic_; }
    /// sync_point's work while the mode is on: log the step, and give way
    /// to a READY thread as the seed decides.
    void deterministic_sync_point(debug::schedule_event what) noexcept;

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
    /// pick_next in the deterministic mode: a READY thread of the highest
    /// level chosen by the seed, other than the one that stops if it can.
    control_block* pick_deterministic() noexcept;

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
    /// next thread. When none is READY, let the idle hook run the idle
    /// callbacks, then sleep the OS thread until the earliest timer; when
    /// there is no timer, no descriptor waiter and no idle callback either,
    /// every thread is blocked for good: report a deadlock.
    void switch_away() noexcept;

    /// True if a READY thread has a higher priority than the running one.
    bool outranked() const noexcept { return !run_queues_.empty() && run_queues_.highest() > running_->priority; }

    /// If the running thread is outranked, it goes to the front of its run
    /// queue and the higher thread runs.
    void switch_if_outranked() noexcept;

    /// The running thread has used its time slice: to the back of its run
    /// queue, if a thread of the same or a higher priority is READY.
    /// `in_handler`: called from the SIGALRM handler, which must unblock
    /// SIGALRM before the switch. With `whole_slice` false (a tick within
    /// the slice found a due timer of a higher priority), it stops only if
    /// outranked once the due timers are woken, to the front of its queue.
    void end_slice(bool in_handler, bool whole_slice = true) noexcept;

    /// Moves sleepers whose wake_time has passed to the run queues, wakes
    /// timed waiters whose deadline has passed (wake_reason::timeout), and
    /// runs the expiry of gt::timers that are due.
    void wake_expired_timers(std::int64_t now) noexcept;

    /// What every scheduling decision looks at before the run queues:
    /// deadlines that have passed, and, while threads wait on descriptors,
    /// descriptors that became ready: when a tick has asked for it since
    /// the last poll (poll_due_), or at every poll_every-th decision (for
    /// threads that only yield, with no ticks). So timers fire and readers
    /// wake on time even when threads are always READY.
    void wake_due() noexcept;

    /// Puts the BLOCKED running thread, whose wake_time is set, in the
    /// timer heap.
    void arm_wake_time(control_block* t);

    /// Nothing is READY: sleeps the OS thread in the poller until the
    /// earliest deadline or a descriptor's readiness, and wakes what that
    /// made due.
    void idle() noexcept;

    /// BLOCKED -> READY at the back of its run queue.
    void ready(control_block* t) noexcept;

    /// Sets `t`'s effective priority and moves it to its place: in the run
    /// queues if READY, in its wait queue if BLOCKED on one (wait_for.cpp).
    void set_effective_priority(control_block* t, int priority) noexcept;


    /// Frees the detached thread that finished just before this switch.
    void reap_zombie() noexcept;

    /// The OS thread's SIGALRM mask as the thread switched to needs it:
    /// blocked if it stopped inside the handler, so that no second tick
    /// nests on its signal frame before that handler returns (set before
    /// the switch, since it stands on that frame at once); unblocked
    /// otherwise (set after landing, since the thread that switched may
    /// itself be inside the handler). One compare when the mask is right.
    void block_ticks_for(const control_block* next) noexcept;
    void unblock_ticks_after_landing(control_block* self) noexcept;

    // The tick's steps (ticks.cpp), in the order take_tick takes them.
    /// on_tick without the bookkeeping of the OS thread's mask.
    void take_tick(void* ucontext) noexcept;
    /// Charges the CPU time since the last tick to the running thread;
    /// notices that a new run began since. Returns now, in ns.
    std::int64_t charge_tick() noexcept;
    /// True at the run's ticks_per_slice-th tick: its slice is used.
    bool slice_used() noexcept;
    /// True if a sleeper or timed waiter whose deadline is at or before
    /// `now` outranks the running thread: the tick wakes it at once, not
    /// at the end of the slice. Outside a critical section only.
    bool due_timer_outranks(std::int64_t now) const noexcept;
    /// Whether, and if not why not, the interrupted thread can be switched
    /// away from at `ucontext`.
    preempt::not_preemptible why_not_preemptible(const void* ucontext) const noexcept;
    /// Leaves the tick pending for the end of the section or guard, and
    /// looks again soon when the thread was outside the program's code.
    void defer_tick(preempt::not_preemptible why) noexcept;
    /// Reports the running thread once per run if it has kept the CPU for
    /// the stall threshold while another thread waits.
    void check_stall(std::int64_t now, preempt::not_preemptible why) noexcept;

    /// Writes the stall report for the running thread (async-signal-safe).
    void report_stall(std::int64_t ran_ns, preempt::not_preemptible why) const noexcept;

    [[noreturn]] void report_deadlock() const noexcept;

    /// A wake of a thread that belongs to another OS thread's scheduler:
    /// says so, naming both threads, and aborts (phase 6 supports it).
    [[noreturn]] void report_foreign_wake(const control_block& t) const noexcept;

    // ---- The threads: changed only inside a critical section. ----
    priority_run_queues run_queues_;
    timer_heap timers_;                  // sleepers, timed waiters and gt::timers, by deadline
    detail::poller poller_;
    static constexpr int poll_every = 64;  // decisions between polls while nothing else asks (wake_due)
    int decisions_since_poll_ = 0;
    idle_hook idle_hook_ = nullptr;      // gt::on_idle's (callback_thread.cpp); nullptr until the first one
    std::uint64_t idle_sleeps_ = 0;      // calls of idle()
    control_block main_;                 // the adopted OS-thread flow
    control_block* running_;             // exactly one RUNNING thread at any time
    control_block* all_threads_;         // list through all_next, in creation order
    control_block* all_tail_;
    control_block* zombie_ = nullptr;    // detached, FINISHED, not yet freed
    std::size_t thread_count_ = 1;
    stack_pool stacks_;

    // ---- Read and written by the SIGALRM handler too: volatile sig_atomic_t,
    // so neither the compiler nor a torn write hides a change from it. ----
    volatile sig_atomic_t critical_depth_ = 0;
    volatile sig_atomic_t tick_pending_ = 0;  // a tick found the running thread where it cannot be switched away from
    volatile sig_atomic_t outrank_pending_ = 0;  // a wake readied a thread that outranks the running one
    volatile sig_atomic_t poll_due_ = 0;  // a tick came while threads wait on descriptors: poll at the next decision
    volatile sig_atomic_t sigalrm_blocked_ = 0;  // SIGALRM is blocked on the OS thread now: a handler runs, or
                                                 // was switched away from (see block_ticks_for)

    // ---- The tick's bookkeeping: written by on_tick (in the handler) and,
    // inside a critical section, by switch_to and end_slice. A tick never
    // runs inside a section's changes to them. ----
    std::uint64_t switches_ = 0;                // every switch_to
    std::uint64_t switches_at_last_tick_ = 0;   // equal at a tick: the same run as at the last tick
    static constexpr int ticks_per_slice = 2;   // the timer ticks twice per time slice
    int ticks_in_run_ = 0;                      // ticks since the running thread's run began
    std::int64_t run_seen_since_ = 0;           // first tick of the running thread's current run, ns
    std::int64_t last_tick_ = 0;                // ns
    std::int64_t last_tick_cpu_ = 0;            // this OS thread's CPU time at the last tick, ns
    bool stall_reported_ = false;               // once per run

    // ---- Settings: written by set_preemption inside a critical section,
    // read by the handler. ----
    std::int64_t slice_ns_ = 0;
    std::int64_t stall_ns_ = 0;
    preempt::ticker ticker_;

    // ---- Set up by the constructor for the OS thread's lifetime. ----
    void* eh_globals_;                   // the C++ runtime's exception state for this OS thread
    void* alt_stack_ = nullptr;          // for the stack-overflow report

    // ---- The deterministic mode: changed only inside a critical section. ----
    deterministic_state deterministic_;
};

/// Holds `m`, a std::mutex shared by OS threads (the trace writer, the
/// lock-order graph), with this OS thread's ticks deferred from before the
/// lock is taken until after it is released: a tick may switch threads,
/// and the next thread on this OS thread could ask for `m` again.
class locked_without_ticks {
public:
    explicit locked_without_ticks(std::mutex& m) : guard_(m) {}

private:
    struct no_ticks {
        std::optional<scheduler::critical_section> cs;
        no_ticks() {
            if (scheduler* s = scheduler::current_if_any()) cs.emplace(*s);
        }
    } no_ticks_;  // constructed before the lock is taken, destroyed after it is released
    std::lock_guard<std::mutex> guard_;
};

}  // namespace gt::detail
