// The slow paths of gt's semaphores (include/gt/semaphore.hpp): an acquire
// that found the count zero, a release that found waiters (or was asked
// for something std leaves undefined), and every operation while
// running_thread is nullptr (the deterministic mode: each starts with its
// sync_point). Inside the scheduler's critical section; a release hands
// each unit to the first waiter, which wakes holding it
// (wake_reason::handoff).
#include <system_error>

#include "gt/detail/sync_point.hpp"
#include "gt/semaphore.hpp"
#include "invariant.hpp"
#include "scheduler.hpp"
#include "sync_report.hpp"
#include "wait_queue.hpp"

namespace gt::detail {

void semaphore_bad_initial_count(std::ptrdiff_t desired, std::ptrdiff_t max) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "gt::counting_semaphore: initial count " + std::to_string(desired) + " is outside 0.." +
                                std::to_string(max));
}

bool semaphore_word::try_acquire_slow() noexcept {
    sync_point(debug::schedule_event::try_acquire);
    return take_unit();
}

bool semaphore_word::acquire_contended(std::int64_t deadline_ns) {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::acquire);
    const scheduler::critical_section cs(s);
    for (;;) {
        std::uint64_t w = word_.load(std::memory_order_relaxed);
        if (w >= semaphore_unit) {
            if (word_.compare_exchange_weak(w, w - semaphore_unit, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
                return true;
            }
            continue;
        }
        if (w != semaphore_waiters && !word_.compare_exchange_weak(w, semaphore_waiters, std::memory_order_relaxed)) {
            continue;
        }
        const wake_reason why = s.block(waiters_, deadline_ns);
        if (why == wake_reason::handoff) return true;  // the releaser gave us its unit
        GT_INVARIANT(why == wake_reason::timeout, "a semaphore's waiter is woken only by a handoff or its deadline");
        if (empty(waiters_)) word_.fetch_and(~semaphore_waiters, std::memory_order_relaxed);
        return false;
    }
}

void semaphore_word::release_contended(std::ptrdiff_t update, std::ptrdiff_t max) noexcept {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::release);
    const scheduler::critical_section cs(s);
    std::uint64_t w = word_.load(std::memory_order_relaxed);
    const auto count = static_cast<std::ptrdiff_t>(w / semaphore_unit);
    if (update < 0 || update > max - count) {
        misuse(describe(*s.running()) + " releases " + std::to_string(update) + " unit(s) of " +
               describe("gt::counting_semaphore", this, waiters_.name) + ", whose count is " + std::to_string(count) +
               " of at most " + std::to_string(max) +
               (update < 0 ? ": a release must be of 0 or more units" : ": that is past its maximum"));
    }
    // A waiter blocks only while the count is zero: units go to waiters
    // first, the rest to the count.
    while (update > 0 && !empty(waiters_)) {
        s.wake(front(waiters_), wake_reason::handoff);
        --update;
    }
    for (;;) {
        const std::uint64_t want = (w & ~semaphore_waiters) + static_cast<std::uint64_t>(update) * semaphore_unit +
                                   (empty(waiters_) ? 0 : semaphore_waiters);
        if (word_.compare_exchange_weak(w, want, std::memory_order_release, std::memory_order_relaxed)) return;
    }
}

}  // namespace gt::detail
