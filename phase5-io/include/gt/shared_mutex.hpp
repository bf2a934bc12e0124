// Reader-writer locks for green threads, with the interface of
// <shared_mutex>: gt::shared_mutex and gt::shared_timed_mutex.
// std::shared_lock, std::unique_lock and gt::condition_variable_any work
// over them unchanged.
//
// Semantics of Go's sync.RWMutex (src/sync/rwmutex.go): a writer that
// waits blocks every NEW reader, so a stream of readers cannot starve it;
// the readers that queued up meanwhile are all admitted together when that
// writer unlocks, and the next writer waits for them to finish. Writers
// are served one at a time, highest priority first, FIFO within a level.
//
// One atomic word holds the whole state, so that the uncontended paths are
// one compare-and-swap each, inline:
//
//   owner | WRITE_LOCKED | WRITERS_WAITING | READERS_WAITING   (write-locked)
//   readers << 3         | WRITERS_WAITING | READERS_WAITING   (otherwise)
//
// A waiter blocks on one of two wait queues (readers, writers); the thread
// that releases the lock admits the next holders itself (it writes them
// into the word before waking them), so a woken waiter never has to try
// again and cannot be overtaken.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <shared_mutex>  // std::shared_lock, which a user of gt::shared_mutex reaches for

#include "gt/detail/wait_queue.hpp"
#include "gt/mutex.hpp"

namespace gt {

namespace detail {

inline constexpr std::uint64_t rw_write_locked = 1;     ///< a writer owns it; the owner is in the bits above the flags
inline constexpr std::uint64_t rw_writers_waiting = 2;  ///< the writers' queue may be non-empty: new readers wait
inline constexpr std::uint64_t rw_readers_waiting = 4;  ///< the readers' queue may be non-empty
inline constexpr std::uint64_t rw_flags = 7;
inline constexpr std::uint64_t rw_one_reader = 8;  ///< the reader count's unit, while not write-locked

class rw_lock;

/// The slow paths (src/shared_mutex.cpp). The `_until` ones block until
/// the lock is the caller's or `deadline_ns` (CLOCK_MONOTONIC; INT64_MAX:
/// none) passes, and return false on timeout. Each starts with the
/// operation's synchronization point (gt/detail/sync_point.hpp).
bool rw_lock_contended(rw_lock& l, std::int64_t deadline_ns);
bool rw_lock_shared_contended(rw_lock& l, std::int64_t deadline_ns);
void rw_unlock_contended(rw_lock& l) noexcept;
void rw_unlock_shared_contended(rw_lock& l) noexcept;
/// try_lock and try_lock_shared when running_thread is nullptr: before
/// the OS thread's first gt call (its scheduler is created, adopting it),
/// or in the deterministic mode.
bool rw_try_lock_slow(rw_lock& l) noexcept;
bool rw_try_lock_shared_slow(rw_lock& l) noexcept;

/// The state word and the two wait queues of both reader-writer locks.
class rw_lock {
public:
    constexpr rw_lock() noexcept = default;
    rw_lock(const rw_lock&) = delete;
    rw_lock& operator=(const rw_lock&) = delete;
    ~rw_lock() {
        if (readers_.head != nullptr) [[unlikely]] destroyed_while_waited(this, "gt::shared_mutex", readers_);
        if (writers_.head != nullptr) [[unlikely]] destroyed_while_waited(this, "gt::shared_mutex", writers_);
    }

    // Every fast path first tests running_thread, as the mutex's do: it is
    // nullptr before the OS thread's first gt call and while the
    // deterministic mode is on, and then the slow path runs (a null owner
    // is never written into the word, where it would read as unowned).
    // The writer's fast paths test the owner they need anyway; the
    // readers' test costs them one thread-local load.

    bool try_lock() noexcept {
        const std::uint64_t self = calling_owner();
        if (self == 0) [[unlikely]] return rw_try_lock_slow(*this);
        std::uint64_t expected = 0;
        return word_.compare_exchange_strong(expected, self | rw_write_locked, std::memory_order_acquire,
                                             std::memory_order_relaxed);
    }
    bool lock_until_ns(std::int64_t deadline_ns) {
        const std::uint64_t self = calling_owner();
        std::uint64_t expected = 0;
        if (self != 0 && word_.compare_exchange_strong(expected, self | rw_write_locked, std::memory_order_acquire,
                                                       std::memory_order_relaxed)) {
            return true;
        }
        return rw_lock_contended(*this, deadline_ns);
    }
    void unlock() noexcept {
        std::uint64_t expected = calling_owner() | rw_write_locked;
        if (expected == rw_write_locked ||
            !word_.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed))
            [[unlikely]] {
            rw_unlock_contended(*this);  // waiters to admit, no owner to test, or not the owner (reported)
        }
    }

    /// A new reader gets in while no writer owns the lock or waits for it.
    bool try_lock_shared() noexcept {
        if (calling_owner() == 0) [[unlikely]] return rw_try_lock_shared_slow(*this);
        return try_add_reader();
    }
    bool lock_shared_until_ns(std::int64_t deadline_ns) {
        if (calling_owner() != 0 && try_add_reader()) return true;
        return rw_lock_shared_contended(*this, deadline_ns);
    }
    void unlock_shared() noexcept {
        if (calling_owner() != 0) [[likely]] {
            std::uint64_t w = word_.load(std::memory_order_relaxed);
            // The last reader before a waiting writer hands it over (slow path).
            while ((w & (rw_write_locked | rw_writers_waiting)) == 0 && w >= rw_one_reader) {
                if (word_.compare_exchange_weak(w, w - rw_one_reader, std::memory_order_release,
                                                std::memory_order_relaxed)) {
                    return;
                }
            }
        }
        rw_unlock_shared_contended(*this);
    }

    /// One more reader, if no writer owns the lock or waits for it.
    bool try_add_reader() noexcept {
        std::uint64_t w = word_.load(std::memory_order_relaxed);
        while ((w & (rw_write_locked | rw_writers_waiting)) == 0) {
            if (word_.compare_exchange_weak(w, w + rw_one_reader, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
                return true;
            }
        }
        return false;
    }

    /// For the slow paths and diagnostics.
    std::atomic<std::uint64_t>& word() noexcept { return word_; }
    wait_queue& readers() noexcept { return readers_; }
    wait_queue& writers() noexcept { return writers_; }

private:
    std::atomic<std::uint64_t> word_{0};
    wait_queue readers_{wait_reason::shared_mutex};
    wait_queue writers_{wait_reason::shared_mutex};
};

}  // namespace detail

/// A reader-writer lock for green threads, as std::shared_mutex
/// ([thread.sharedmutex.class]): lock()/unlock() for one writer,
/// lock_shared()/unlock_shared() for any number of readers. Writer
/// preference as Go's sync.RWMutex: a waiting writer blocks new readers
/// (try_lock_shared() fails meanwhile), its unlock admits every reader
/// that queued behind it, and the next writer waits for those. Waiters
/// BLOCK on a wait queue (wait_reason::shared_mutex); nothing spins.
///
/// Errors: lock() or lock_shared() by the thread that holds it exclusively
/// throws std::system_error (resource_deadlock_would_occur); unlock() by a
/// thread that does not hold it exclusively, unlock_shared() while no
/// reader holds it, and destroying it while threads wait report the thread
/// and the object on stderr and abort (std leaves all three undefined).
/// Locking shared twice in one thread can deadlock behind a waiting writer
/// (as with Go's RWMutex and most std implementations): not detected.
///
/// Priority inheritance does not apply (readers are anonymous).
///
/// Thread safety: any green thread of one OS thread's scheduler (phase 6:
/// any). Not async-signal-safe. Source: Go's src/sync/rwmutex.go.
class shared_mutex {
public:
    constexpr shared_mutex() noexcept = default;
    shared_mutex(const shared_mutex&) = delete;
    shared_mutex& operator=(const shared_mutex&) = delete;

    /// Blocks until the caller holds it exclusively.
    /// @throws std::system_error (resource_deadlock_would_occur) if it does already.
    void lock() { lock_.lock_until_ns(INT64_MAX); }
    /// Takes it exclusively if nobody holds it; never blocks.
    bool try_lock() noexcept { return lock_.try_lock(); }
    /// Releases exclusive ownership: every waiting reader is admitted, or
    /// else the first waiting writer gets it.
    void unlock() noexcept { lock_.unlock(); }

    /// Blocks until the caller holds it shared (while a writer holds it or
    /// waits for it). @throws std::system_error
    /// (resource_deadlock_would_occur) if the caller holds it exclusively.
    void lock_shared() { lock_.lock_shared_until_ns(INT64_MAX); }
    /// Takes it shared if no writer holds it or waits; never blocks.
    bool try_lock_shared() noexcept { return lock_.try_lock_shared(); }
    /// Releases one shared ownership; the last reader out hands the lock
    /// to a waiting writer.
    void unlock_shared() noexcept { lock_.unlock_shared(); }

    /// The state word and wait queues, for gt's own code.
    detail::rw_lock& native_handle() noexcept { return lock_; }

private:
    detail::rw_lock lock_;
};

/// gt::shared_mutex with timeouts, as std::shared_timed_mutex
/// ([thread.sharedtimedmutex.class]). A timed wait is on the wait queue
/// and on the scheduler's timer heap at once; it never polls. A writer
/// that gives up lets in the readers it was holding back.
class shared_timed_mutex {
public:
    constexpr shared_timed_mutex() noexcept = default;
    shared_timed_mutex(const shared_timed_mutex&) = delete;
    shared_timed_mutex& operator=(const shared_timed_mutex&) = delete;

    /// As gt::shared_mutex::lock.
    void lock() { lock_.lock_until_ns(INT64_MAX); }
    /// As gt::shared_mutex::try_lock.
    bool try_lock() noexcept { return lock_.try_lock(); }
    /// As gt::shared_mutex::unlock.
    void unlock() noexcept { lock_.unlock(); }
    /// Blocks until the caller holds it exclusively or `d` has passed;
    /// false on timeout. Errors as lock().
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
        return try_lock_until(std::chrono::steady_clock::now() + d);
    }
    /// Blocks until the caller holds it exclusively or `t` has come; false
    /// on timeout.
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
        return lock_.lock_until_ns(detail::steady_deadline_ns(t));
    }

    /// As gt::shared_mutex::lock_shared.
    void lock_shared() { lock_.lock_shared_until_ns(INT64_MAX); }
    /// As gt::shared_mutex::try_lock_shared.
    bool try_lock_shared() noexcept { return lock_.try_lock_shared(); }
    /// As gt::shared_mutex::unlock_shared.
    void unlock_shared() noexcept { lock_.unlock_shared(); }
    /// Blocks until the caller holds it shared or `d` has passed; false on
    /// timeout. Errors as lock_shared().
    template <class Rep, class Period>
    bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& d) {
        return try_lock_shared_until(std::chrono::steady_clock::now() + d);
    }
    /// Blocks until the caller holds it shared or `t` has come; false on
    /// timeout.
    template <class Clock, class Duration>
    bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& t) {
        return lock_.lock_shared_until_ns(detail::steady_deadline_ns(t));
    }

    /// The state word and wait queues, for gt's own code.
    detail::rw_lock& native_handle() noexcept { return lock_; }

private:
    detail::rw_lock lock_;
};

}  // namespace gt
