// A single-use countdown for green threads, with the interface of <latch>:
// gt::latch. Threads count it down; wait() blocks until it reaches zero,
// and from then on every wait() returns at once. The count and the wakeup
// of its waiters change in one critical section, so a thread that sees
// zero may destroy the latch at once: nobody touches it afterwards.
#pragma once

#include <atomic>
#include <cstddef>
#include <limits>

#include "gt/detail/wait_queue.hpp"
#include "gt/mutex.hpp"

namespace gt {

namespace detail {
/// Throws std::system_error (invalid_argument): a latch made with a negative count.
[[noreturn]] void latch_negative_count(std::ptrdiff_t expected);
}  // namespace detail

/// A single-use barrier for green threads, as std::latch
/// ([thread.latch.class]).
///
/// Errors: a negative expected count throws std::system_error
/// (std::errc::invalid_argument) from the constructor, as does a negative
/// update from count_down() and arrive_and_wait(); counting down more than
/// is left (std: undefined) and destroying a latch that threads wait on
/// report the thread and the latch on stderr and abort.
///
/// Thread safety: any green thread of one OS thread's scheduler (phase 6:
/// any). try_wait() is one atomic load (and a thread-local one, which
/// sends it to the deterministic mode's synchronization point while that
/// is on). Not async-signal-safe. Waiters BLOCK (wait_reason::barrier).
class latch {
public:
    /// The largest count.
    static constexpr std::ptrdiff_t max() noexcept { return std::numeric_limits<std::ptrdiff_t>::max(); }

    /// A latch that opens after `expected` (0..max()) count-downs.
    /// @throws std::system_error (invalid_argument) if expected < 0.
    constexpr explicit latch(std::ptrdiff_t expected) : count_(expected) {
        if (expected < 0) detail::latch_negative_count(expected);
    }
    latch(const latch&) = delete;
    latch& operator=(const latch&) = delete;
    ~latch() {
        if (waiters_.head != nullptr) [[unlikely]] detail::destroyed_while_waited(this, "gt::latch", waiters_);
    }

    /// Lowers the count by `update` (0..the count left); at zero, wakes
    /// every waiter. Never blocks.
    void count_down(std::ptrdiff_t update = 1);
    /// True once the count is zero. Never blocks.
    bool try_wait() const noexcept {
        if (detail::running_thread == nullptr) [[unlikely]] return try_wait_slow();
        return count_.load(std::memory_order_acquire) == 0;
    }
    /// Blocks until the count is zero.
    void wait() const {
        if (detail::running_thread == nullptr || count_.load(std::memory_order_acquire) != 0) wait_contended();
    }
    /// count_down(update), then wait().
    void arrive_and_wait(std::ptrdiff_t update = 1) {
        count_down(update);
        wait();
    }

private:
    // The slow paths, for a closed latch or a null running_thread (no
    // scheduler yet, or the deterministic mode); each starts with its
    // synchronization point (gt/detail/sync_point.hpp).
    bool try_wait_slow() const noexcept;
    void wait_contended() const;

    std::atomic<std::ptrdiff_t> count_;
    mutable detail::wait_queue waiters_{detail::wait_reason::barrier};
};

}  // namespace gt
