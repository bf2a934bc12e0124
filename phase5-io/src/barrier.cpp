// gt::barrier's count, generation and wait queue (include/gt/barrier.hpp).
// Arrivals and the end of a phase change them inside the scheduler's
// critical section; the completion function runs outside it, between
// arrive() returning true and next_phase(), on the last arriving thread.
// Meanwhile the count is zero and the generation unchanged: every thread
// of the phase still waits, and another arrival is an overrun.
#include <system_error>

#include "gt/barrier.hpp"
#include "gt/detail/sync_point.hpp"
#include "scheduler.hpp"
#include "sync_report.hpp"
#include "wait_queue.hpp"

namespace gt::detail {

barrier_state::barrier_state(std::ptrdiff_t expected) : expected_(expected), left_(expected) {
    if (expected < 0) {
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "gt::barrier: expected count " + std::to_string(expected) + " is negative");
    }
}

bool barrier_state::arrive(std::ptrdiff_t update, bool drop, std::uint64_t& phase) {
    if (update < 1) {
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "gt::barrier::arrive: update " + std::to_string(update) + " is not positive");
    }
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::arrive);
    const scheduler::critical_section cs(s);
    if (update > left_) {
        misuse(describe(*s.running()) + " arrives " + std::to_string(update) + " time(s) at " +
               describe("gt::barrier", this) + " in phase " + std::to_string(generation_) + ", which waits for " +
               std::to_string(left_) + " more arrival(s) of its " + std::to_string(expected_) +
               ": more threads arrive than the barrier expects");
    }
    if (drop) --expected_;
    left_ -= update;
    phase = generation_;
    return left_ == 0;
}

void barrier_state::next_phase() noexcept {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    const scheduler::critical_section cs(s);
    left_ = expected_;
    ++generation_;
    while (control_block* t = front(waiters_)) s.wake(t, wake_reason::notified);
}

void barrier_state::wait(std::uint64_t phase) {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::wait);
    const scheduler::critical_section cs(s);
    // Only next_phase wakes a waiter, and only after moving the generation
    // on: one block per wait. The loop states the condition.
    while (generation_ == phase) s.block(waiters_);
}

}  // namespace gt::detail
