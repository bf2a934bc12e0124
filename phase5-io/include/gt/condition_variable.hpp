// Condition variables for green threads, with the interface and semantics
// of <condition_variable>: gt::condition_variable (over
// std::unique_lock<gt::mutex>) and gt::condition_variable_any (over any
// lockable, e.g. std::shared_lock<gt::shared_mutex>).
//
// A waiter joins the condition variable's wait queue and releases the
// mutex inside one critical section, then blocks: no notify can slip in
// between "I am a waiter" and "I am off the CPU", so none is lost. Each
// waiter is woken exactly once (a notify or its deadline, never both:
// the wake ticket in src/scheduler.cpp). Spurious wakeups are allowed by
// the standard and the predicate overloads loop, but this runtime creates
// none: a wait returns only after a notify or at its deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "gt/detail/wait_queue.hpp"
#include "gt/mutex.hpp"

namespace gt {

using std::cv_status;

namespace detail {

/// Joins `cv`, releases `lock` (the caller owns it) and blocks until a
/// notify or `deadline_ns` (CLOCK_MONOTONIC; INT64_MAX: none), then locks
/// `lock` again. Returns true if the deadline, not a notify, woke it.
/// src/condition_variable.cpp.
bool wait_on(wait_queue& cv, lock_word& lock, std::int64_t deadline_ns);
/// Wakes the first waiter of `cv` (highest priority, then longest waiting).
void notify_one(wait_queue& cv) noexcept;
/// Wakes every waiter of `cv`.
void notify_all(wait_queue& cv) noexcept;
/// Throws std::system_error (operation_not_permitted) unless `lock` owns a mutex.
void check_owns(bool owns, const char* function);

}  // namespace detail

/// A condition variable for green threads, as std::condition_variable
/// ([thread.condition.condvar]), over std::unique_lock<gt::mutex>.
///
/// Errors: wait on a unique_lock that does not own its mutex throws
/// std::system_error (operation_not_permitted); destroying it while
/// threads wait on it reports them on stderr and aborts.
///
/// Thread safety: any green thread of one OS thread's scheduler (phase 6:
/// any); notify need not hold the mutex. Not async-signal-safe.
class condition_variable {
public:
    constexpr condition_variable() noexcept = default;
    condition_variable(const condition_variable&) = delete;
    condition_variable& operator=(const condition_variable&) = delete;
    ~condition_variable() {
        if (waiters_.head != nullptr) [[unlikely]] detail::destroyed_while_waited(this, "gt::condition_variable", waiters_);
    }

    /// Wakes one waiting thread, if any: the highest priority, then the
    /// longest waiting.
    void notify_one() noexcept { detail::notify_one(waiters_); }
    /// Wakes every waiting thread.
    void notify_all() noexcept { detail::notify_all(waiters_); }

    /// Releases `lock`'s mutex, blocks until notified, and locks it again.
    void wait(std::unique_lock<mutex>& lock) { wait_ns(lock, INT64_MAX); }

    /// Waits until `stop()` is true: `while (!stop()) wait(lock);`.
    template <class Predicate>
    void wait(std::unique_lock<mutex>& lock, Predicate stop) {
        while (!stop()) wait(lock);
    }

    /// Waits until notified or until `t`; cv_status::timeout only if the
    /// deadline, not a notify, ended the wait.
    template <class Clock, class Duration>
    cv_status wait_until(std::unique_lock<mutex>& lock, const std::chrono::time_point<Clock, Duration>& t) {
        const bool timed_out = wait_ns(lock, detail::steady_deadline_ns(t));
        // A clock other than steady_clock may have been set back meanwhile.
        return timed_out && Clock::now() >= t ? cv_status::timeout : cv_status::no_timeout;
    }

    /// Waits until `stop()` is true or `t` has come; returns `stop()`.
    template <class Clock, class Duration, class Predicate>
    bool wait_until(std::unique_lock<mutex>& lock, const std::chrono::time_point<Clock, Duration>& t, Predicate stop) {
        while (!stop()) {
            if (wait_until(lock, t) == cv_status::timeout) return stop();
        }
        return true;
    }

    /// Waits until notified or for `d` (on steady_clock).
    template <class Rep, class Period>
    cv_status wait_for(std::unique_lock<mutex>& lock, const std::chrono::duration<Rep, Period>& d) {
        return wait_until(lock, std::chrono::steady_clock::now() + d);
    }

    /// Waits until `stop()` is true or for `d`; returns `stop()`.
    template <class Rep, class Period, class Predicate>
    bool wait_for(std::unique_lock<mutex>& lock, const std::chrono::duration<Rep, Period>& d, Predicate stop) {
        return wait_until(lock, std::chrono::steady_clock::now() + d, std::move(stop));
    }

private:
    bool wait_ns(std::unique_lock<mutex>& lock, std::int64_t deadline_ns) {
        detail::check_owns(lock.owns_lock(), "gt::condition_variable::wait");
        return detail::wait_on(waiters_, lock.mutex()->native_handle(), deadline_ns);
    }

    detail::wait_queue waiters_{detail::wait_reason::condition_variable};
};

/// A condition variable over any lockable, as std::condition_variable_any
/// ([thread.condition.condvarany]): e.g. std::shared_lock<gt::shared_mutex>
/// or std::unique_lock<gt::timed_mutex>. It keeps an internal gt::mutex
/// that a notify takes too, so that a notify cannot fall between the
/// waiter's unlock of the user's lock and its joining the wait queue.
class condition_variable_any {
public:
    condition_variable_any() : internal_(std::make_shared<mutex>()) {}
    condition_variable_any(const condition_variable_any&) = delete;
    condition_variable_any& operator=(const condition_variable_any&) = delete;

    /// Wakes one waiting thread, if any.
    void notify_one() noexcept {
        std::lock_guard<mutex> hold(*internal_);
        cv_.notify_one();
    }
    /// Wakes every waiting thread.
    void notify_all() noexcept {
        std::lock_guard<mutex> hold(*internal_);
        cv_.notify_all();
    }

    /// Unlocks `lock`, blocks until notified, and locks it again (also
    /// when the wait ends by an exception).
    template <class Lock>
    void wait(Lock& lock) {
        wait_until(lock, std::chrono::steady_clock::time_point::max());
    }

    /// Waits until `stop()` is true: `while (!stop()) wait(lock);`.
    template <class Lock, class Predicate>
    void wait(Lock& lock, Predicate stop) {
        while (!stop()) wait(lock);
    }

    /// Waits until notified or until `t`; cv_status::timeout only if the
    /// deadline ended the wait.
    template <class Lock, class Clock, class Duration>
    cv_status wait_until(Lock& lock, const std::chrono::time_point<Clock, Duration>& t) {
        // Kept alive by this waiter: the condition variable may be destroyed
        // by the notifier while this waiter still relocks the mutex.
        const std::shared_ptr<mutex> internal = internal_;
        std::unique_lock<mutex> hold(*internal);
        lock.unlock();
        struct relock {  // the user's lock is held again however this ends
            Lock& lock;
            std::unique_lock<mutex>& hold;
            ~relock() {
                hold.unlock();
                lock.lock();
            }
        } relock_after{lock, hold};
        return cv_.wait_until(hold, t);
    }

    /// Waits until `stop()` is true or `t` has come; returns `stop()`.
    template <class Lock, class Clock, class Duration, class Predicate>
    bool wait_until(Lock& lock, const std::chrono::time_point<Clock, Duration>& t, Predicate stop) {
        while (!stop()) {
            if (wait_until(lock, t) == cv_status::timeout) return stop();
        }
        return true;
    }

    /// Waits until notified or for `d` (on steady_clock).
    template <class Lock, class Rep, class Period>
    cv_status wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& d) {
        return wait_until(lock, std::chrono::steady_clock::now() + d);
    }

    /// Waits until `stop()` is true or for `d`; returns `stop()`.
    template <class Lock, class Rep, class Period, class Predicate>
    bool wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& d, Predicate stop) {
        return wait_until(lock, std::chrono::steady_clock::now() + d, std::move(stop));
    }

private:
    std::shared_ptr<mutex> internal_;
    condition_variable cv_;
};

}  // namespace gt
