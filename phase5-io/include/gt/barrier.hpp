// A reusable barrier for green threads, with the interface of <barrier>:
// gt::barrier<CompletionFunction>.
//
// A barrier counts arrivals in phases. When the count of the current phase
// reaches zero, the thread that arrived last runs the completion function,
// the count is reset to the expected count (lowered by arrive_and_drop),
// the phase number (the generation) moves on, and every waiter is woken.
// A waiter waits while the generation is the one it arrived in, so a
// thread that races ahead into the next phase is not released by the
// previous phase's wakeup, and no wakeup is needed twice (Boost.Fiber's
// barrier keeps the same cycle number, src/barrier.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>

#include "gt/detail/wait_queue.hpp"
#include "gt/mutex.hpp"

namespace gt {

namespace detail {

/// The completion function of a gt::barrier<> without one.
struct no_completion {
    void operator()() const noexcept {}
};

/// The count, the generation and the wait queue of a barrier
/// (src/barrier.cpp); the completion function is the template's.
class barrier_state {
public:
    /// @throws std::system_error (invalid_argument) if expected < 0.
    explicit barrier_state(std::ptrdiff_t expected);
    barrier_state(const barrier_state&) = delete;
    barrier_state& operator=(const barrier_state&) = delete;
    ~barrier_state() {
        if (waiters_.head != nullptr) [[unlikely]] destroyed_while_waited(this, "gt::barrier", waiters_);
    }

    /// Counts `update` arrivals in the current phase (and, with `drop`,
    /// lowers the expected count of later phases by one); sets `phase` to
    /// the current generation. Returns true if the count reached zero: the
    /// caller runs the completion and then calls next_phase(). Aborts with
    /// a message if update exceeds the count left.
    bool arrive(std::ptrdiff_t update, bool drop, std::uint64_t& phase);
    /// Resets the count, moves the generation on and wakes every waiter.
    void next_phase() noexcept;
    /// Blocks while the generation is `phase`.
    void wait(std::uint64_t phase);

private:
    std::ptrdiff_t expected_;  // the count each new phase starts with
    std::ptrdiff_t left_;      // arrivals the current phase still waits for
    std::uint64_t generation_ = 0;
    wait_queue waiters_{wait_reason::barrier};
};

}  // namespace detail

/// A reusable thread barrier for green threads, as std::barrier
/// ([thread.barrier.class]). `CompletionFunction` is called (once per
/// phase, with no arguments, on the thread whose arrival ended the phase,
/// before any waiter of the phase is released) and must not throw.
///
/// Errors: a negative expected count throws std::system_error
/// (std::errc::invalid_argument) from the constructor, and an update < 1
/// throws the same from arrive(); arriving more often than the phase's
/// count left (std: undefined) and destroying a barrier that threads wait
/// on report the thread and the barrier on stderr and abort. wait() with a
/// token of an earlier phase returns at once.
///
/// Thread safety: any green thread of one OS thread's scheduler (phase 6:
/// any). Not async-signal-safe. Waiters BLOCK (wait_reason::barrier).
template <class CompletionFunction = detail::no_completion>
class barrier {
    static_assert(std::is_nothrow_invocable_v<CompletionFunction&>,
                  "gt::barrier: the completion function must be callable with no arguments and noexcept");

public:
    /// The phase an arrival belongs to; pass it to wait().
    class arrival_token {
    public:
        /// Tokens move (wait() takes one by rvalue), as std::barrier's do.
        arrival_token(arrival_token&&) noexcept = default;
        /// Tokens move.
        arrival_token& operator=(arrival_token&&) noexcept = default;

    private:
        friend class barrier;
        explicit arrival_token(std::uint64_t phase) noexcept : phase_(phase) {}
        std::uint64_t phase_;
    };

    /// The largest expected count.
    static constexpr std::ptrdiff_t max() noexcept { return std::numeric_limits<std::ptrdiff_t>::max(); }

    /// A barrier for `expected` threads per phase (0..max()).
    /// @throws std::system_error (invalid_argument) if expected < 0;
    ///         whatever copying/moving `f` throws.
    explicit barrier(std::ptrdiff_t expected, CompletionFunction f = CompletionFunction())
        : state_(expected), completion_(std::move(f)) {}
    barrier(const barrier&) = delete;
    barrier& operator=(const barrier&) = delete;

    /// Counts `update` (>= 1) arrivals in the current phase without
    /// waiting; the last one runs the completion and ends the phase.
    [[nodiscard]] arrival_token arrive(std::ptrdiff_t update = 1) {
        std::uint64_t phase;
        if (state_.arrive(update, false, phase)) complete();
        return arrival_token(phase);
    }
    /// Blocks until the phase of `token` has ended.
    void wait(arrival_token&& token) const { state_.wait(token.phase_); }
    /// arrive() then wait(): blocks until every thread of the phase arrived.
    void arrive_and_wait() { wait(arrive()); }
    /// Arrives in the current phase and leaves the barrier: later phases
    /// expect one thread fewer. Does not wait.
    void arrive_and_drop() {
        std::uint64_t phase;
        if (state_.arrive(1, true, phase)) complete();
    }

private:
    void complete() {
        completion_();
        state_.next_phase();
    }

    mutable detail::barrier_state state_;
    CompletionFunction completion_;
};

}  // namespace gt
