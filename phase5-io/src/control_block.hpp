// The thread control block (TCB): everything the runtime knows about one
// green thread, the one function that changes its state, and the intrusive
// lists that link TCBs together (run queues; the timer heap is in
// timer_heap.hpp, wait queues in wait_queue.hpp).
#pragma once

#include <array>
#include <bit>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gt/detail/wait_queue.hpp"
#include "gt/thread.hpp"
#include "gt/thread_specific_ptr.hpp"
#include "invariant.hpp"
#include "stack.hpp"
#include "timer_heap.hpp"

namespace gt::detail {

class scheduler;
class lock_word;

/// The life of a thread:
///
///   READY --(picked by the scheduler)--> RUNNING --(returns, exit())--> FINISHED
///     ^  ^                                 |  |
///     |  +--(yields, outranked, slice)-----+  |
///     +--(woken)-- BLOCKED <--(joins, sleeps, waits)-+
///
/// (A sleeper whose time comes while the OS thread idles on its own stack
/// goes BLOCKED -> READY -> RUNNING without a switch.)
enum class thread_state : std::uint8_t {
    ready,     ///< in a run queue, waiting for the CPU
    running,   ///< executing; exactly one per scheduler
    finished,  ///< its function returned; waits to be joined or reaped
    blocked,   ///< waiting for an event (see wait_reason); on no run queue
};

/// "READY", "RUNNING", "FINISHED" or "BLOCKED".
const char* to_string(thread_state state) noexcept;

/// Why a thread left RUNNING: the edges out of RUNNING above. The
/// scheduler's stop_running takes one; the diagnostics report it.
enum class stop_reason : std::uint8_t {
    yield,          ///< it called yield: to the back of its run queue
    outranked,      ///< a thread of higher priority became READY: to the front
    slice_expired,  ///< the timer ended its time slice: to the back
    join,           ///< it waits for another thread to finish: BLOCKED
    sleep,          ///< it waits for its wake_time: BLOCKED
    wait,           ///< it waits on a wait queue (waiting_on), perhaps until a deadline: BLOCKED
    finished,       ///< its function returned: FINISHED
};
inline constexpr std::size_t stop_reasons = 7;

/// "yield", "outranked", "time slice", "join", "sleep", "wait" or "finished".
const char* to_string(stop_reason why) noexcept;

/// "-", "join", "sleep", "mutex", "condition variable", ...
const char* to_string(wait_reason reason) noexcept;

/// "-", "notified", "handoff" or "timeout".
const char* to_string(wake_reason reason) noexcept;

/// Where the scheduler keeps a thread that is not RUNNING: in a run queue
/// (linked through `next`) or in the timer heap (through `timer`). A thread
/// is in at most one at a time; each asserts it when it takes a thread in.
enum class on_list : std::uint8_t { none, run_queue, timer_list };

/// "no list", "a run queue" or "the timer heap".
const char* to_string(on_list list) noexcept;

/// One thread-specific value of a thread: which thread_specific_ptr (key)
/// it belongs to and how to destroy it.
struct tls_slot {
    std::uint64_t key;
    void* value;
    std::shared_ptr<tls_cleanup> cleanup;  // shared: outlives the thread_specific_ptr if needed
};

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

    // ---- Changed only by the scheduler, inside its critical section. ----
    /// Changed only by change_state, which asserts the state it leaves.
    thread_state state = thread_state::ready;
    /// Why its last run ended (set by stop_running); read once it has run.
    stop_reason stopped_for = stop_reason::yield;
    /// Why the thread is BLOCKED; wait_reason::none otherwise.
    wait_reason waiting_for = wait_reason::none;
    /// Which list `next` links it into; set and checked by the lists.
    on_list list = on_list::none;
    /// It stopped inside the SIGALRM handler (end_slice from on_tick): it
    /// resumes there, and SIGALRM stays blocked until that handler returns.
    bool stopped_in_handler = false;
    /// lowest_priority..highest_priority; selects its run queue. The
    /// effective priority: base_priority, raised by priority inheritance
    /// while a thread of higher priority waits for a mutex it owns.
    int priority = default_priority;
    /// The priority the program gave it (attributes, set_priority).
    int base_priority = default_priority;
    /// The mutexes it owns that threads wait on, linked through
    /// wait_queue::held_next: it inherits their first waiters' priorities
    /// (wait_for.cpp).
    wait_queue* held_contended = nullptr;
    /// Next thread in its run queue (READY). Intrusive, so enqueueing
    /// allocates nothing.
    control_block* next = nullptr;
    /// Neighbours in the scheduler's list of all its threads (for the dump).
    control_block* all_prev = nullptr;
    control_block* all_next = nullptr;
    /// The thread blocked in join() on this one, woken when this finishes.
    control_block* joiner = nullptr;
    /// The thread this one is joining, while BLOCKED in join().
    control_block* joining = nullptr;
    /// Detached: reaped by the scheduler as soon as it has finished.
    bool detached = false;
    /// While sleeping, or waiting with a deadline: when to wake, in ns on
    /// CLOCK_MONOTONIC; scheduler::no_deadline for a wait without one.
    std::int64_t wake_time = 0;
    /// Its place in the scheduler's timer heap while wake_time is armed.
    timer_node timer{timer_node::not_queued, this, nullptr};
    /// The descriptor it waits on while BLOCKED on one (wait_reason::
    /// readable, writable), for the dump and the trace; -1 otherwise.
    int waiting_fd = -1;
    /// The wait queue it is on while BLOCKED on one, and its neighbours
    /// there. Separate from `next` and `timer`: a timed waiter is on a wait
    /// queue and in the timer heap at once, and the first of the two to wake it
    /// unlinks it from the other.
    wait_queue* waiting_on = nullptr;
    control_block* wait_prev = nullptr;
    control_block* wait_next = nullptr;
    /// The wake ticket: a block ends with exactly one wakeup, the one that
    /// moves it from the epoch the thread blocked with to the next
    /// (scheduler::wake). A notify that races with a timeout loses
    /// instead of waking twice. Atomic: a waker on another OS thread will
    /// race for it too.
    std::atomic<std::uint32_t> wake_epoch{0};
    /// What ended its last block (set by the winning wake).
    wake_reason woke_by = wake_reason::none;
    /// When it began waiting for a mutex or a join, in ns (the dump says
    /// how long it has waited).
    std::int64_t blocked_since = 0;
    /// Empty: the default "thread-<id>" (built only when asked for). A
    /// signal handler may read it (report::thread), so it changes only
    /// inside a critical section.
    std::string name;

    // ---- Written by the thread itself; read by the SIGALRM handler. ----
    /// Nesting depth of gt::this_thread::disable_preemption guards: while
    /// above zero, ticks that would switch away from it are deferred.
    volatile sig_atomic_t preemption_disabled = 0;

    // ---- Owned by the thread itself: only it reads or writes them. ----
    /// Cleanup handlers, run last-pushed first when the thread finishes.
    std::vector<std::function<void()>> cleanup_handlers;
    /// Values of thread_specific_ptr objects set by this thread.
    std::vector<tls_slot> tls;
    /// The mutexes it holds, in the order it took them, while the
    /// lock-order check is on or the mutex has a level (lock_order.cpp).
    std::vector<const lock_word*> locks_held;

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

    // ---- Diagnostics only (dump, trace, gt::debug): nothing decides on them. ----
    /// When the thread last started running, in ns (for the trace); -1
    /// once that run has been recorded.
    std::int64_t run_start = 0;
    /// Times switched to; runs ended, by reason (stopped_for); timer ticks
    /// that interrupted it, and CPU time in ns, sampled: each tick charges
    /// the OS thread's CPU time since the last tick to the thread it
    /// interrupts. Written by switch_to, stop_running and the tick.
    std::uint64_t switches = 0;
    std::array<std::uint64_t, stop_reasons> stops{};
    std::uint64_t ticks = 0;
    std::int64_t cpu_time_ns = 0;
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

/// Destroys every thread-specific value of `t` (tls.cpp); run on `t`
/// itself when it finishes, after its cleanup handlers.
void run_tls_destructors(control_block& t) noexcept;

/// FIFO of READY threads linked through control_block::next.
/// push_back, push_front and pop_front are O(1) and allocate nothing. The
/// queue owns the thread's membership mark (`list`) and asserts it.
class run_queue {
public:
    run_queue() noexcept = default;
    run_queue(const run_queue&) = delete;  // tail_ points into the object itself
    run_queue& operator=(const run_queue&) = delete;

    bool empty() const noexcept { return head_ == nullptr; }

    /// The first thread (the rest follow through `next`); nullptr if empty.
    control_block* front() const noexcept { return head_; }

    void push_back(control_block* t) noexcept {
        link_in(t);
        t->next = nullptr;
        *tail_ = t;
        tail_ = &t->next;
    }

    void push_front(control_block* t) noexcept {
        link_in(t);
        t->next = head_;
        head_ = t;
        if (t->next == nullptr) tail_ = &t->next;
    }

    /// Unlinks `t`, which must be in this queue. O(length): used only when a
    /// READY thread changes priority.
    void remove(control_block* t) noexcept {
        GT_INVARIANT_ON(t->list == on_list::run_queue, *t, "only a thread in a run queue is removed from one");
        control_block** link = &head_;
        while (*link != t) link = &(*link)->next;
        *link = t->next;
        if (*link == nullptr) tail_ = link;
        t->next = nullptr;
        t->list = on_list::none;
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

/// One run queue per priority level, and a bitmap with bit p set when the
/// queue of priority p is not empty, so the highest non-empty level is found
/// in O(1) with one count-leading-zeros instruction (as Linux's O(1)
/// scheduler did with its priority arrays, and as its real-time class does).
class priority_run_queues {
public:
    static constexpr int levels = highest_priority - lowest_priority + 1;
    static_assert(levels <= 32, "the bitmap is one 32-bit word");
    static_assert(lowest_priority == 0, "a priority is its queue's index and its bit's number");

    bool empty() const noexcept { return bitmap_ == 0; }

    /// Highest priority with a READY thread; only if !empty().
    int highest() const noexcept { return 31 - std::countl_zero(bitmap_); }

    /// The first thread of level `priority`; nullptr if it has none.
    control_block* front(int priority) const noexcept { return queues_[priority].front(); }

    void push_back(control_block* t) noexcept {
        queues_[t->priority].push_back(t);
        bitmap_ |= 1u << t->priority;
    }

    /// For an outranked thread: it resumes before the others of its level.
    void push_front(control_block* t) noexcept {
        queues_[t->priority].push_front(t);
        bitmap_ |= 1u << t->priority;
    }

    /// First thread of the highest non-empty level; nullptr if none.
    control_block* pop_highest() noexcept {
        if (bitmap_ == 0) return nullptr;
        const int p = highest();
        control_block* t = queues_[p].pop_front();
        if (queues_[p].empty()) bitmap_ &= ~(1u << p);
        return t;
    }

    void remove(control_block* t) noexcept {
        queues_[t->priority].remove(t);
        if (queues_[t->priority].empty()) bitmap_ &= ~(1u << t->priority);
    }

private:
    std::array<run_queue, levels> queues_;
    std::uint32_t bitmap_ = 0;
};

}  // namespace gt::detail
