// The condition variable's wait and notify: a waiter joins the wait
// queue, releases the mutex and blocks, all in one critical section, so a
// notify finds it either not yet a waiter (and the waiter has not yet
// released the mutex, so the notifier's change is not yet possible) or on
// the queue; never in between (no lost wakeup).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <system_error>

#include "gt/condition_variable.hpp"
#include "gt/detail/sync_point.hpp"
#include "scheduler.hpp"
#include "sync_report.hpp"
#include "wait_queue.hpp"

namespace gt::detail {

void release_locked(scheduler& s, std::atomic<std::uintptr_t>& word, wait_queue& waiters) noexcept;  // mutex.cpp

void check_owns(bool owns, const char* function) {
    if (!owns) {
        throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                                std::string(function) + ": the lock does not own its mutex");
    }
}

bool wait_on(wait_queue& cv, lock_word& lock, std::int64_t deadline_ns) {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    control_block* self = s.running();
    if ((lock.word().load(std::memory_order_relaxed) & ~lock_flags) != reinterpret_cast<std::uintptr_t>(self)) {
        lock.unlock();  // not ours: the unlock's slow path names the owner and aborts
    }
    sync_point(debug::schedule_event::wait);
    if (lock.checked()) lock.note_released();  // lock.lock() below notes it again
    wake_reason why;
    {
        const scheduler::critical_section cs(s);
        release_locked(s, lock.word(), lock.waiters());  // may ready a mutex waiter; never switches
        why = s.block(cv, deadline_ns);
    }
    // The wait must return holding the mutex ([thread.condition.condvar]:
    // if it cannot, std::terminate). A relock that the deadlock check
    // refuses is reported rather than thrown to a caller whose unique_lock
    // would then unlock a mutex it does not hold.
    try {
        lock.lock();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gt: %s: a condition variable's wait could not lock its mutex again: %s\n",
                     describe(*self).c_str(), e.what());
        std::abort();
    }
    return why == wake_reason::timeout;
}

void notify_one(wait_queue& cv) noexcept {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::notify);
    const scheduler::critical_section cs(s);
    while (control_block* t = front(cv)) {
        if (s.wake(t, wake_reason::notified)) return;  // a waiter whose ticket is gone is not counted
    }
}

void notify_all(wait_queue& cv) noexcept {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::notify);
    const scheduler::critical_section cs(s);
    while (control_block* t = front(cv)) s.wake(t, wake_reason::notified);
}

}  // namespace gt::detail
