// The callback thread's state and the calls that gt::timer (timer.cpp) and
// gt::on_idle (idle.cpp) make on it; the thread itself, a timer's expiry
// and the idle hook are in callback_thread.cpp.
//
// Everything here is changed inside the scheduler's critical section,
// except a timer's callbacks, which are set before its first start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "gt/timer.hpp"
#include "scheduler.hpp"
#include "wait_queue.hpp"

namespace gt {
namespace detail {

struct callback_thread;

/// A gt::timer's state. A timer_node first, so that the heap's node is the
/// timer (expire_timer casts back). Changed inside the critical section,
/// except the callbacks, which are set before the first start.
struct timer_state : timer_node {
    std::function<void()> plain;
    timer::callback_at at;
    scheduler* sched = nullptr;  // set by the first start(): the timer belongs to it
    callback_thread* ct = nullptr;
    std::int64_t period_ns = 0;
    /// The scheduled deadline of the firing that waits for the callback thread.
    std::int64_t firing_ns = 0;
    /// Links in the callback thread's FIFO of due timers, while `due`.
    timer_state* due_prev = nullptr;
    timer_state* due_next = nullptr;
    bool due = false;       // a firing waits for the callback thread
    bool running = false;   // its callback runs now
    bool orphaned = false;  // destroyed by its own callback: freed when that returns
    std::uint64_t fired = 0;
    std::uint64_t missed = 0;

    /// A firing will come: its deadline is in the heap, or it is due.
    bool pending() const noexcept { return queued() || due; }
};

/// An idle callback's registration (gt::idle_handle).
struct idle_entry {
    std::function<bool()> fn;
    scheduler* sched = nullptr;
    callback_thread* ct = nullptr;
    idle_entry* prev = nullptr;  // registration order
    idle_entry* next = nullptr;
    bool running = false;
    bool orphaned = false;  // unregistered by its own call: freed when it returns
    std::uint64_t calls = 0;
};

/// One per scheduler (per OS thread): the callback thread and its work.
/// Changed inside the scheduler's critical section.
struct callback_thread {
    scheduler* sched = nullptr;
    control_block* thread = nullptr;  // the callback thread; nullptr: none, or it is ending
    bool starting = false;            // a start() or on_idle() is creating it
    wait_queue work{wait_reason::timer};      // it waits here for work
    wait_queue returned{wait_reason::timer};  // destructors wait here for a running callback
    timer_state* due_head = nullptr;  // FIFO of due timers, in the order their deadlines passed
    timer_state* due_tail = nullptr;
    std::size_t pending_timers = 0;   // timers with pending() true
    std::size_t pins = 0;             // start()s and on_idle()s between making the thread and arming
    idle_entry* idle_head = nullptr;
    idle_entry* idle_tail = nullptr;
    std::size_t idle_count = 0;
    idle_entry* idle_cursor = nullptr;  // the next callback of the round that runs
    bool idle_round_due = false;        // the hook asked for a round
    bool last_round_did_work = false;   // some callback of the last round returned true
    std::uint64_t sleeps_at_last_round = ~std::uint64_t{0};  // scheduler::idle_sleeps() then

    bool needed() const noexcept {
        return pending_timers != 0 || idle_count != 0 || pins != 0 || due_head != nullptr || idle_round_due;
    }
};

/// The calling OS thread's callback thread, bound to its scheduler `s`.
callback_thread& callbacks_of(scheduler& s) noexcept;

/// A timer or idle handle destroyed on another OS thread: reports it and
/// calls std::terminate.
[[noreturn]] void foreign_destruction(const char* what) noexcept;

// ---- Inside the critical section. ----

/// Nothing needs the callback thread any more: wake it so that it ends (it
/// outranks every other thread, so it does before the section's owner goes on).
void let_go_if_unneeded(callback_thread& ct) noexcept;

/// Takes `t`'s pending firing back, if it has one.
bool cancel_locked(timer_state& t) noexcept;

/// The timer heap's expiry of a gt::timer (timer_node::expire).
void expire_timer(timer_node& node, std::int64_t deadline) noexcept;

/// The scheduler's idle hook (scheduler::set_idle_hook): a round of idle
/// callbacks on the callback thread.
idle_step run_idle_callbacks(scheduler& s) noexcept;

// ---- Outside it. ----

/// Makes the callback thread unless it exists or is being made. The caller
/// holds a pin, so that the thread does not end before the caller's work is
/// in place.
void ensure_callback_thread(callback_thread& ct);

/// Holds a pin on the callback thread for a scope: it does not end while
/// the pin is held, and may when it is released.
class pin {
public:
    explicit pin(callback_thread& ct) : ct_(ct) {
        scheduler::critical_section cs(*ct_.sched);
        ++ct_.pins;
    }
    ~pin() {
        scheduler::critical_section cs(*ct_.sched);
        --ct_.pins;
        let_go_if_unneeded(ct_);
    }
    pin(const pin&) = delete;
    pin& operator=(const pin&) = delete;

private:
    callback_thread& ct_;
};

}  // namespace detail
}  // namespace gt
