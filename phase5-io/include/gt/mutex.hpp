// Mutexes for green threads, with the interface and semantics of <mutex>:
// gt::mutex, gt::timed_mutex, gt::recursive_mutex, gt::recursive_timed_mutex.
// std::lock_guard, std::unique_lock, std::scoped_lock and std::lock work
// over them unchanged.
//
// A mutex is one atomic word, the lock word, and a wait queue. The word
// holds the owner (its thread control block's address) and two flag bits:
//
//   owner | WAITERS | HANDOFF        (control blocks are 8-aligned)
//
// Uncontended, lock is one compare-and-swap 0 -> owner and unlock one
// owner -> 0, inline, with no system call and no critical section. Any
// other word (a flag is set, or the mutex is owned) takes the slow path
// (src/mutex.cpp), which blocks the thread on the wait queue: a waiter is
// BLOCKED, off every run queue, and costs no CPU until an unlock wakes it.
// Linux's rtmutex keeps its owner and a "has waiters" bit in one word the
// same way (kernel/locking/rtmutex.c); the barging and the handoff after
// 1 ms of waiting are Go's sync.Mutex starvation mode
// (src/internal/sync/mutex.go).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "gt/detail/wait_queue.hpp"

namespace gt {

namespace detail {

inline constexpr std::uintptr_t lock_waiters = 1;  ///< the wait queue may have waiters: unlock takes the slow path
inline constexpr std::uintptr_t lock_handoff = 2;  ///< starvation mode: unlock hands the mutex to the first waiter
inline constexpr std::uintptr_t lock_flags = 3;

/// The running thread's control block as a lock-word owner; 0 on an OS
/// thread that has not called gt yet (the slow paths adopt it).
inline std::uintptr_t calling_owner() noexcept { return reinterpret_cast<std::uintptr_t>(running_thread); }

/// The slow paths (src/mutex.cpp). `lock_contended` blocks until the
/// mutex is the caller's or `deadline_ns` (CLOCK_MONOTONIC; INT64_MAX:
/// none) passes; returns false on timeout. Throws std::system_error
/// (resource_deadlock_would_occur) if the caller owns it already.
bool lock_contended(std::atomic<std::uintptr_t>& word, wait_queue& waiters, std::int64_t deadline_ns);
/// Unlocks when a flag is set, or reports misuse (not the owner) and aborts.
void unlock_contended(std::atomic<std::uintptr_t>& word, wait_queue& waiters) noexcept;
/// try_lock when running_thread is nullptr: before the OS thread's first
/// gt call (its scheduler is created), or in the deterministic mode.
bool try_lock_slow(std::atomic<std::uintptr_t>& word) noexcept;
/// Reports a mutex destroyed while threads wait on it, and aborts.
[[noreturn]] void destroyed_while_waited(const void* object, const char* kind, const wait_queue& waiters) noexcept;
/// A steady_clock deadline, in ns, for a time point of any clock; for a
/// clock other than steady_clock, the steady time as far from now.
template <class Clock, class Duration>
std::int64_t steady_deadline_ns(const std::chrono::time_point<Clock, Duration>& t) {
    using namespace std::chrono;
    if constexpr (std::is_same_v<Clock, steady_clock>) {
        if (t.time_since_epoch() >= duration_cast<Duration>(nanoseconds::max())) return INT64_MAX;
        return ceil<nanoseconds>(t.time_since_epoch()).count();
    } else {
        const auto now = Clock::now();
        if (t <= now) return 0;  // passed; and t - now would overflow for time_point::min()
        const auto left = t - now;
        if (left > duration_cast<std::remove_cv_t<decltype(left)>>(hours(24 * 365 * 100))) return INT64_MAX;
        return (steady_clock::now() + ceil<nanoseconds>(left)).time_since_epoch().count();
    }
}

/// A mutex's name and lock level (gt::mutex::attributes).
struct mutex_attributes {
    /// Names the mutex in every report: lock-order and deadlock reports,
    /// misuse messages, the dump and the trace. A string that outlives the
    /// mutex (a literal); nullptr: the mutex's address only.
    const char* name = nullptr;
    /// Its lock level; 0: none. A thread may lock a mutex that has a level
    /// only if that level is lower than the level of every mutex with a
    /// level it holds: take the highest level first, then go down. Locking
    /// one out of that order fails at once, even when nobody holds it
    /// (std::system_error, resource_deadlock_would_occur); try_lock is not
    /// checked (it cannot wait, so it cannot deadlock).
    unsigned level = 0;
};

/// True while the lock-order check is on (gt::debug::lock_order_check):
/// then lock and unlock keep the calling thread's list of held mutexes.
/// src/lock_order.cpp.
extern std::atomic<bool> lock_order_checking;

/// The lock word and wait queue every gt mutex is made of.
class lock_word {
public:
    constexpr explicit lock_word(wait_reason why = wait_reason::mutex, mutex_attributes attrs = {}) noexcept
        : waiters_(why, &word_), level_(attrs.level) {
        waiters_.name = attrs.name;
    }
    lock_word(const lock_word&) = delete;
    lock_word& operator=(const lock_word&) = delete;
    ~lock_word() {
        if (waiters_.head != nullptr) [[unlikely]] destroyed_while_waited(this, "gt::mutex", waiters_);
        if (lock_order_checking.load(std::memory_order_relaxed)) [[unlikely]] forget_lock_order();
    }

    // Each operation: the lock-order check and lock levels first, when
    // either applies (one load and branch when neither does), then the
    // uncontended path: one compare-and-swap.
    void lock() {
        if (checked()) [[unlikely]] {
            lock_checked(INT64_MAX);
            return;
        }
        acquire(INT64_MAX);
    }

    bool try_lock() noexcept {
        std::uintptr_t expected = 0;
        const std::uintptr_t self = calling_owner();
        if (self == 0) [[unlikely]] {
            if (!try_lock_slow(word_)) return false;  // the deterministic mode, or no scheduler yet
        } else if (!word_.compare_exchange_strong(expected, self, std::memory_order_acquire,
                                                  std::memory_order_relaxed)) {
            return false;
        }
        if (checked()) [[unlikely]] note_held();
        return true;
    }

    bool lock_until_ns(std::int64_t deadline_ns) {
        if (checked()) [[unlikely]] return lock_checked(deadline_ns);
        return acquire(deadline_ns);
    }

    void unlock() noexcept {
        if (checked()) [[unlikely]] note_released();
        std::uintptr_t expected = calling_owner();
        if (expected == 0 || !word_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                                            std::memory_order_relaxed)) [[unlikely]] {
            unlock_contended(word_, waiters_);
        }
    }

    /// True if its locks and unlocks are noted in the held list: the
    /// lock-order check is on, or it has a level.
    bool checked() const noexcept { return level_ != 0 || lock_order_checking.load(std::memory_order_relaxed); }
    /// Drops it from the calling thread's held list (a condition
    /// variable's wait releases it without unlock()). src/lock_order.cpp.
    void note_released() noexcept;

    /// True if the calling thread owns it.
    bool owned_by_caller() const noexcept {
        std::uintptr_t self = calling_owner();
        if (self == 0) [[unlikely]] self = adopt_calling_thread();
        return (word_.load(std::memory_order_relaxed) & ~lock_flags) == self;
    }

    /// For the slow paths, condition variables and diagnostics.
    std::atomic<std::uintptr_t>& word() noexcept { return word_; }
    wait_queue& waiters() noexcept { return waiters_; }
    const wait_queue& waiters() const noexcept { return waiters_; }
    unsigned level() const noexcept { return level_; }

    /// Names the mutex in every report (a string that outlives it).
    void set_name(const char* name) noexcept { waiters_.name = name; }

private:
    /// The calling OS thread's scheduler is created, adopting it.
    static std::uintptr_t adopt_calling_thread() noexcept;

    /// The uncontended compare-and-swap, else the slow path.
    bool acquire(std::int64_t deadline_ns) {
        const std::uintptr_t self = calling_owner();
        std::uintptr_t expected = 0;
        if (self != 0 &&
            word_.compare_exchange_strong(expected, self, std::memory_order_acquire, std::memory_order_relaxed))
            [[likely]] {
            return true;
        }
        return lock_contended(word_, waiters_, deadline_ns);
    }

    // src/lock_order.cpp: the level check and the lock-order graph, then
    // acquire() and note_held(); the held list; the graph's node.
    bool lock_checked(std::int64_t deadline_ns);
    void note_held() noexcept;
    void forget_lock_order() noexcept;

    std::atomic<std::uintptr_t> word_{0};
    wait_queue waiters_;
    unsigned level_ = 0;
};

}  // namespace detail

/// A mutual-exclusion lock for green threads, as std::mutex
/// ([thread.mutex.class]). lock() blocks the calling green thread (never
/// the OS thread, and never by spinning) while another thread owns it.
///
/// Errors: lock() throws std::system_error with
/// std::errc::resource_deadlock_would_occur (std::mutex leaves these
/// undefined) when the caller owns the mutex already, when waiting would
/// close a cycle of threads that wait for each other (through mutexes and
/// joins; the message names them; GT_DEADLOCK=abort aborts instead), and
/// when its lock level is out of order (attributes::level). unlock() by a
/// thread that does not own it, and destroying a mutex that threads wait
/// on, report the thread and the mutex on stderr and abort. try_lock() of
/// an owned mutex returns false.
///
/// Priority inheritance: while a thread of higher priority waits for it,
/// the owner runs at that priority (and so does the owner of a mutex the
/// owner waits for, and so on); it drops back at unlock (src/wait_for.cpp).
///
/// Thread safety: any green thread of the OS thread's scheduler may use
/// it; sharing one between OS threads is supported from phase 6 (this
/// phase reports it and aborts). Not async-signal-safe.
class mutex {
public:
    /// A name for reports and a lock level: `gt::mutex m({.name = "accounts", .level = 2});`
    using attributes = detail::mutex_attributes;

    constexpr mutex() noexcept = default;
    /// A mutex with a name (for every report) and a lock level (0: none;
    /// see gt::detail::mutex_attributes).
    constexpr explicit mutex(attributes attrs) noexcept : word_(detail::wait_reason::mutex, attrs) {}
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;

    /// Blocks until the calling thread owns the mutex.
    /// @throws std::system_error (resource_deadlock_would_occur) if it does already.
    void lock() { word_.lock(); }
    /// Takes the mutex if nobody owns it; never blocks and never yields.
    bool try_lock() noexcept { return word_.try_lock(); }
    /// Releases it; the first waiter (highest priority, then longest
    /// waiting) is woken to take it.
    void unlock() noexcept { word_.unlock(); }

    /// The lock word, for gt's own condition variables.
    detail::lock_word& native_handle() noexcept { return word_; }

private:
    detail::lock_word word_;
};

/// gt::mutex with timeouts, as std::timed_mutex. A timed lock waits on the
/// wait queue and on the scheduler's timer heap at once; it never polls.
class timed_mutex {
public:
    /// A name and a lock level, as gt::mutex::attributes.
    using attributes = detail::mutex_attributes;

    constexpr timed_mutex() noexcept = default;
    /// A timed mutex with a name and a lock level, as gt::mutex's.
    constexpr explicit timed_mutex(attributes attrs) noexcept : word_(detail::wait_reason::mutex, attrs) {}
    timed_mutex(const timed_mutex&) = delete;
    timed_mutex& operator=(const timed_mutex&) = delete;

    /// As gt::mutex::lock.
    void lock() { word_.lock(); }
    /// As gt::mutex::try_lock.
    bool try_lock() noexcept { return word_.try_lock(); }
    /// As gt::mutex::unlock.
    void unlock() noexcept { word_.unlock(); }

    /// Blocks until the mutex is the caller's or `d` has passed; false on timeout.
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
        return try_lock_until(std::chrono::steady_clock::now() + d);
    }
    /// Blocks until the mutex is the caller's or `t` has come; false on timeout.
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
        return word_.lock_until_ns(detail::steady_deadline_ns(t));
    }

    /// The lock word, for gt's own condition variables.
    detail::lock_word& native_handle() noexcept { return word_; }

private:
    detail::lock_word word_;
};

namespace detail {

/// A lock word plus the owner's lock count: the recursive mutexes.
class recursive_lock {
public:
    constexpr recursive_lock() noexcept = default;
    constexpr explicit recursive_lock(mutex_attributes attrs) noexcept : word_(wait_reason::mutex, attrs) {}

    void lock() {
        if (word_.owned_by_caller()) return count_up();
        word_.lock();
        depth_ = 1;
    }
    bool try_lock() noexcept {
        if (word_.owned_by_caller()) return depth_ < max_depth ? (++depth_, true) : false;
        if (!word_.try_lock()) return false;
        depth_ = 1;
        return true;
    }
    bool lock_until_ns(std::int64_t deadline_ns) {
        if (word_.owned_by_caller()) return count_up(), true;
        if (!word_.lock_until_ns(deadline_ns)) return false;
        depth_ = 1;
        return true;
    }
    void unlock() noexcept {
        if (word_.owned_by_caller() && --depth_ > 0) return;
        word_.unlock();  // not the owner: the slow path reports it
    }

private:
    static constexpr unsigned max_depth = 1u << 20;
    void count_up();  // throws std::system_error (resource_unavailable_try_again) past max_depth

    lock_word word_;
    unsigned depth_ = 0;  // the owner's lock count; touched only by the owner
};

}  // namespace detail

/// A mutex its owner may lock again, as std::recursive_mutex: each lock
/// needs an unlock. lock() throws std::system_error
/// (resource_unavailable_try_again) past 2^20 nested locks.
class recursive_mutex {
public:
    /// A name and a lock level, as gt::mutex::attributes.
    using attributes = detail::mutex_attributes;

    constexpr recursive_mutex() noexcept = default;
    /// A recursive mutex with a name and a lock level, as gt::mutex's.
    constexpr explicit recursive_mutex(attributes attrs) noexcept : lock_(attrs) {}
    recursive_mutex(const recursive_mutex&) = delete;
    recursive_mutex& operator=(const recursive_mutex&) = delete;

    /// Blocks until the caller owns it; the owner only counts one lock more.
    /// @throws std::system_error (resource_unavailable_try_again) past 2^20 locks.
    void lock() { lock_.lock(); }
    /// Takes it if nobody else owns it (the owner: one lock more); never blocks.
    bool try_lock() noexcept { return lock_.try_lock(); }
    /// Undoes one lock; the last one releases it, as gt::mutex::unlock.
    void unlock() noexcept { lock_.unlock(); }

private:
    detail::recursive_lock lock_;
};

/// gt::recursive_mutex with timeouts, as std::recursive_timed_mutex.
class recursive_timed_mutex {
public:
    /// A name and a lock level, as gt::mutex::attributes.
    using attributes = detail::mutex_attributes;

    constexpr recursive_timed_mutex() noexcept = default;
    /// A recursive mutex with a name and a lock level, as gt::mutex's.
    constexpr explicit recursive_timed_mutex(attributes attrs) noexcept : lock_(attrs) {}
    recursive_timed_mutex(const recursive_timed_mutex&) = delete;
    recursive_timed_mutex& operator=(const recursive_timed_mutex&) = delete;

    /// Blocks until the caller owns it; the owner only counts one lock more.
    /// @throws std::system_error (resource_unavailable_try_again) past 2^20 locks.
    void lock() { lock_.lock(); }
    /// Takes it if nobody else owns it (the owner: one lock more); never blocks.
    bool try_lock() noexcept { return lock_.try_lock(); }
    /// Undoes one lock; the last one releases it, as gt::mutex::unlock.
    void unlock() noexcept { lock_.unlock(); }

    /// Blocks until the caller owns it or `d` has passed; false on timeout.
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
        return try_lock_until(std::chrono::steady_clock::now() + d);
    }
    /// Blocks until the caller owns it or `t` has come; false on timeout.
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
        return lock_.lock_until_ns(detail::steady_deadline_ns(t));
    }

private:
    detail::recursive_lock lock_;
};

}  // namespace gt
#include "gt/call_once.hpp"  // gt::once_flag and gt::call_once, as <mutex> provides them
