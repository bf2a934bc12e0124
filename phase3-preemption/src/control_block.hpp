// The thread control block (TCB): everything the runtime knows about one
// green thread, and the intrusive run queue that links TCBs together.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gt/thread.hpp"
#include "gt/thread_specific_ptr.hpp"
#include "stack.hpp"

namespace gt::detail {

class scheduler;

/// The life of a thread:
///
///   READY --(picked by the scheduler)--> RUNNING --(returns, exit())--> FINISHED
///     ^  ^                                 |  |
///     |  +------(yields, preempted)--------+  |
///     +--(woken)-- BLOCKED <--(joins, sleeps)-+
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

/// What a BLOCKED thread waits for.
enum class wait_reason : std::uint8_t {
    none,   ///< not blocked
    join,   ///< another thread to finish (control_block::joining)
    sleep,  ///< its wake_time (on the scheduler's timer list)
};

/// "-", "join" or "sleep".
const char* to_string(wait_reason reason) noexcept;

/// Which intrusive list a thread's `next` link is on. A thread is on at most
/// one list at a time; the scheduler asserts it.
enum class on_list : std::uint8_t { none, run_queue, timer_list };

/// One thread-specific value of a thread: which thread_specific_ptr (key)
/// it belongs to and how to destroy it.
struct tls_slot {
    std::uint64_t key;
    void* value;
    std::shared_ptr<tls_cleanup> cleanup;  // shared: outlives the thread_specific_ptr if needed
};

struct control_block {
    /// Saved stack pointer, pointing at the frame gt_switch_context left
    /// (layout in arch/context_x86_64.h). Written by gt_switch_context when
    /// the thread stops running, read when it resumes; meaningless while
    /// RUNNING.
    void* sp = nullptr;
    /// Set when the thread is created, then changed only by the scheduler,
    /// inside its critical section.
    thread_state state = thread_state::ready;
    /// Why the thread is BLOCKED; wait_reason::none otherwise.
    wait_reason waiting_for = wait_reason::none;
    /// Which list `next` links it into; checked on every insertion.
    on_list list = on_list::none;
    /// lowest_priority..highest_priority; selects its run queue.
    int priority = default_priority;
    /// Process-unique, never reused; see allocate_thread_id().
    std::uint64_t id = 0;
    /// Next thread in a run queue (READY) or on the timer list (sleeping).
    /// Intrusive, so enqueueing allocates nothing.
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
    /// While sleeping: when to wake, in ns on CLOCK_MONOTONIC.
    std::int64_t wake_time = 0;
    /// Empty: the default "thread-<id>" (built only when asked for).
    std::string name;
    /// Cleanup handlers, run last-pushed first when the thread finishes.
    std::vector<std::function<void()>> cleanup_handlers;
    /// Values of thread_specific_ptr objects set by this thread.
    std::vector<tls_slot> tls;
    /// When the thread last started running, in ns (for the trace).
    std::int64_t run_start = 0;
    /// It left RUNNING because a thread of higher priority became READY
    /// (for the trace); cleared when it runs again.
    bool preempted = false;
    /// It left RUNNING because the timer ended its time slice (for the
    /// trace); cleared when it runs again.
    bool sliced = false;
    /// Nesting depth of gt::this_thread::disable_preemption guards: while
    /// above zero, ticks that would preempt it are deferred.
    int preemption_disabled = 0;
    /// Accounting: times switched to, times the timer switched it away,
    /// and CPU time in ns, sampled: each tick charges its period to the
    /// thread it interrupts.
    std::uint64_t switches = 0;
    std::uint64_t preemptions = 0;
    std::uint64_t ticks = 0;  // that interrupted it
    std::int64_t cpu_time_ns = 0;
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

/// Destroys every thread-specific value of `t` (tls.cpp); run on `t`
/// itself when it finishes, after its cleanup handlers.
void run_tls_destructors(control_block& t) noexcept;

/// FIFO of threads linked through control_block::next.
/// push_back, push_front and pop_front are O(1) and allocate nothing.
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

    void push_front(control_block* t) noexcept {
        t->next = head_;
        head_ = t;
        if (t->next == nullptr) tail_ = &t->next;
    }

    /// Unlinks `t`, which must be in this queue. O(length): used only when a
    /// READY thread changes priority.
    void remove(control_block* t) noexcept {
        control_block** link = &head_;
        while (*link != t) link = &(*link)->next;
        *link = t->next;
        if (*link == nullptr) tail_ = link;
        t->next = nullptr;
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

    void push_back(control_block* t) noexcept {
        queues_[t->priority].push_back(t);
        bitmap_ |= 1u << t->priority;
    }

    /// For a preempted thread: it resumes before the others of its level.
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
