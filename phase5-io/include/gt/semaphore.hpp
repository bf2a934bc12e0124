// Semaphores for green threads, with the interface of <semaphore>:
// gt::counting_semaphore<LeastMaxValue> and gt::binary_semaphore.
//
// One atomic word holds the count and a WAITERS bit:
//
//   count << 1 | WAITERS
//
// Uncontended, acquire and release are one compare-and-swap each, inline.
// An acquire that finds the count zero blocks on the wait queue; a release
// that finds WAITERS set hands its units to the waiters directly, first
// waiter first (it is woken holding its unit), so a woken waiter never
// loses its unit to a thread that barges in. Go's runtime semaphores hand
// off the same way when asked to (semrelease's handoff, src/runtime/sema.go).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "gt/detail/wait_queue.hpp"
#include "gt/mutex.hpp"

namespace gt {

namespace detail {

inline constexpr std::uint64_t semaphore_waiters = 1;  ///< the wait queue may have waiters: release takes the slow path
inline constexpr std::uint64_t semaphore_unit = 2;     ///< one unit of the count
/// The largest count any gt semaphore can hold.
inline constexpr std::ptrdiff_t semaphore_max = PTRDIFF_MAX >> 1;

/// Throws std::system_error (invalid_argument): an initial count outside 0..max.
[[noreturn]] void semaphore_bad_initial_count(std::ptrdiff_t desired, std::ptrdiff_t max);

/// The count word and the wait queue of every gt semaphore.
class semaphore_word {
public:
    constexpr semaphore_word(std::ptrdiff_t desired, std::ptrdiff_t max)
        : word_(static_cast<std::uint64_t>(desired) * semaphore_unit) {
        if (desired < 0 || desired > max) semaphore_bad_initial_count(desired, max);
    }
    semaphore_word(const semaphore_word&) = delete;
    semaphore_word& operator=(const semaphore_word&) = delete;
    ~semaphore_word() {
        if (waiters_.head != nullptr) [[unlikely]] destroyed_while_waited(this, "gt::counting_semaphore", waiters_);
    }

    // Every fast path first tests running_thread, as the mutex's do: it is
    // nullptr before the OS thread's first gt call and while the
    // deterministic mode is on, and then the slow path runs, which starts
    // with the operation's synchronization point. One thread-local load.

    bool try_acquire() noexcept {
        if (running_thread == nullptr) [[unlikely]] return try_acquire_slow();
        return take_unit();
    }
    bool acquire_until_ns(std::int64_t deadline_ns) {
        return (running_thread != nullptr && take_unit()) || acquire_contended(deadline_ns);
    }
    void release(std::ptrdiff_t update, std::ptrdiff_t max) {
        if (running_thread != nullptr) [[likely]] {
            std::uint64_t w = word_.load(std::memory_order_relaxed);
            while ((w & semaphore_waiters) == 0 && update >= 0 &&
                   update <= max - static_cast<std::ptrdiff_t>(w / semaphore_unit)) {
                if (word_.compare_exchange_weak(w, w + static_cast<std::uint64_t>(update) * semaphore_unit,
                                                std::memory_order_release, std::memory_order_relaxed)) {
                    return;
                }
            }
        }
        release_contended(update, max);  // waiters to hand units to, no running_thread, or a misuse (reported)
    }

    /// For the slow paths (src/semaphore.cpp) and diagnostics.
    std::atomic<std::uint64_t>& word() noexcept { return word_; }
    wait_queue& waiters() noexcept { return waiters_; }

private:
    /// One unit off the count, if the count is above zero.
    bool take_unit() noexcept {
        std::uint64_t w = word_.load(std::memory_order_relaxed);
        while (w >= semaphore_unit) {
            if (word_.compare_exchange_weak(w, w - semaphore_unit, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
                return true;
            }
        }
        return false;
    }
    // The slow paths; each starts with its synchronization point.
    bool try_acquire_slow() noexcept;
    bool acquire_contended(std::int64_t deadline_ns);
    void release_contended(std::ptrdiff_t update, std::ptrdiff_t max) noexcept;

    std::atomic<std::uint64_t> word_;
    wait_queue waiters_{wait_reason::semaphore};
};

}  // namespace detail

/// A counting semaphore for green threads, as std::counting_semaphore
/// ([thread.sema.cnt]): a count of units that acquire() takes one at a
/// time, blocking while it is zero, and release(n) gives back. A blocked
/// acquirer is BLOCKED on a wait queue (wait_reason::semaphore), highest
/// priority first and FIFO within a level; a release hands units to
/// waiters directly, so none is overtaken.
///
/// Errors: an initial count outside 0..max() throws std::system_error
/// (std::errc::invalid_argument) from the constructor; release(n) with
/// n < 0 or past max() (std: undefined), and destroying a semaphore that
/// threads wait on, report the thread and the semaphore on stderr and
/// abort.
///
/// Thread safety: any green thread of one OS thread's scheduler (phase 6:
/// any). Not async-signal-safe (POSIX's sem_post is; this release is not).
template <std::ptrdiff_t LeastMaxValue = detail::semaphore_max>
class counting_semaphore {
    static_assert(LeastMaxValue >= 0 && LeastMaxValue <= detail::semaphore_max,
                  "gt::counting_semaphore: LeastMaxValue must be in 0..PTRDIFF_MAX/2");

public:
    /// The largest count: LeastMaxValue (a binary_semaphore's is 1).
    static constexpr std::ptrdiff_t max() noexcept { return LeastMaxValue; }

    /// A semaphore holding `desired` units (0..max()).
    /// @throws std::system_error (invalid_argument) if desired is outside 0..max().
    constexpr explicit counting_semaphore(std::ptrdiff_t desired) : word_(desired, max()) {}
    counting_semaphore(const counting_semaphore&) = delete;
    counting_semaphore& operator=(const counting_semaphore&) = delete;

    /// Gives back `update` units (0..max() minus the count): each goes to
    /// the first waiter, while there are waiters, else to the count. Never
    /// blocks.
    void release(std::ptrdiff_t update = 1) { word_.release(update, max()); }
    /// Blocks until it takes one unit.
    void acquire() { word_.acquire_until_ns(INT64_MAX); }
    /// Takes one unit if the count is above zero; never blocks.
    bool try_acquire() noexcept { return word_.try_acquire(); }
    /// Blocks until it takes one unit or `d` has passed; false on timeout.
    template <class Rep, class Period>
    bool try_acquire_for(const std::chrono::duration<Rep, Period>& d) {
        return try_acquire_until(std::chrono::steady_clock::now() + d);
    }
    /// Blocks until it takes one unit or `t` has come; false on timeout.
    template <class Clock, class Duration>
    bool try_acquire_until(const std::chrono::time_point<Clock, Duration>& t) {
        return word_.acquire_until_ns(detail::steady_deadline_ns(t));
    }

private:
    detail::semaphore_word word_;
};

/// A semaphore of at most one unit, as std::binary_semaphore: releasing
/// it while its unit is free reports the misuse and aborts.
using binary_semaphore = counting_semaphore<1>;

}  // namespace gt
