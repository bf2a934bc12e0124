// gt::latch's count-down and wait (include/gt/latch.hpp). The count and
// the wakeup change in one critical section: a waiter cannot see zero, and
// destroy the latch, while the thread that counted it down still wakes
// the others.
#include <system_error>

#include "gt/detail/sync_point.hpp"
#include "gt/latch.hpp"
#include "scheduler.hpp"
#include "sync_report.hpp"
#include "wait_queue.hpp"

namespace gt {
namespace detail {

void latch_negative_count(std::ptrdiff_t expected) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "gt::latch: expected count " + std::to_string(expected) + " is negative");
}

}  // namespace detail

void latch::count_down(std::ptrdiff_t update) {
    if (update < 0) {
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "gt::latch::count_down: update " + std::to_string(update) + " is negative");
    }
    detail::scheduler& s = detail::scheduler::current();
    s.check_not_reentered();
    detail::sync_point(debug::schedule_event::arrive);
    const detail::scheduler::critical_section cs(s);
    const std::ptrdiff_t left = count_.load(std::memory_order_relaxed);
    if (update > left) {
        detail::misuse(detail::describe(*s.running()) + " counts down " + detail::describe("gt::latch", this) +
                       " by " + std::to_string(update) + ", but its count is " + std::to_string(left) +
                       ": it would go below zero");
    }
    count_.store(left - update, std::memory_order_release);
    if (left == update) {
        while (detail::control_block* t = detail::front(waiters_)) s.wake(t, detail::wake_reason::notified);
    }
}

bool latch::try_wait_slow() const noexcept {
    detail::sync_point(debug::schedule_event::wait);
    return count_.load(std::memory_order_acquire) == 0;
}

void latch::wait_contended() const {
    detail::scheduler& s = detail::scheduler::current();
    s.check_not_reentered();
    detail::sync_point(debug::schedule_event::wait);
    const detail::scheduler::critical_section cs(s);
    while (count_.load(std::memory_order_relaxed) != 0) s.block(waiters_);
}

}  // namespace gt
