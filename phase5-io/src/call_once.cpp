// gt::call_once's slow paths (include/gt/call_once.hpp): taking the flag
// to run the function, blocking while another thread runs it, and the end
// of a run. Inside the scheduler's critical section.
#include <system_error>

#include "gt/call_once.hpp"
#include "gt/detail/sync_point.hpp"
#include "gt/mutex.hpp"
#include "scheduler.hpp"
#include "sync_report.hpp"
#include "wait_queue.hpp"

namespace gt {

void once_flag::destroyed_while_waited() const noexcept {
    detail::destroyed_while_waited(this, "gt::once_flag", waiters_);
}

namespace detail {

bool once_begin(once_flag& flag) {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::call_once);
    control_block* self = s.running();
    const auto me = reinterpret_cast<std::uintptr_t>(self);
    const scheduler::critical_section cs(s);
    bool woken_before = false;
    for (;;) {
        std::uintptr_t state = flag.state_.load(std::memory_order_acquire);
        if (state == once_done) return false;
        if (state == me) {
            throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                                    "gt::call_once: " + describe(*self) + " calls call_once on " +
                                        describe("gt::once_flag", &flag) +
                                        " from inside the function it is running for that flag");
        }
        if (state == 0) {
            if (flag.state_.compare_exchange_weak(state, me, std::memory_order_relaxed)) return true;
            continue;
        }
        // Another thread runs it. A waiter woken by a failed run that found
        // the flag taken again keeps its place at the front.
        s.block(flag.waiters_, scheduler::no_deadline, woken_before);
        woken_before = true;
    }
}

void once_succeeded(once_flag& flag) noexcept {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::call_once);  // the mode may let others find the function running
    const scheduler::critical_section cs(s);
    flag.state_.store(once_done, std::memory_order_release);
    while (control_block* t = front(flag.waiters_)) s.wake(t, wake_reason::notified);
}

void once_failed(once_flag& flag) noexcept {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::call_once);
    const scheduler::critical_section cs(s);
    flag.state_.store(0, std::memory_order_relaxed);
    if (control_block* t = front(flag.waiters_)) s.wake(t, wake_reason::notified);
}

}  // namespace detail
}  // namespace gt
