// Timers and idle callbacks for green threads: gt::timer runs a callback
// once after a delay or at a deadline, or periodically; gt::on_idle
// registers a callback that runs when no green thread is READY. Both kinds
// of callback run on one green thread per scheduler, "gt-timers", created
// when the first timer or idle callback needs it and gone again when
// nothing needs it, so a callback may block, sleep or yield like any other
// green thread. Design and sources: the walkthrough, "Timers: the heap,
// gt::timer and idle callbacks".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace gt {

namespace detail {
struct timer_state;
struct idle_entry;
}  // namespace detail

/// A callback that runs once at a deadline, or periodically.
///
/// **Where it runs.** On the scheduler's callback thread, "gt-timers", a
/// green thread of gt::highest_priority that exists while some timer is
/// pending or some idle callback is registered. When a deadline passes the
/// scheduler hands the timer to that thread, at the next scheduling
/// decision (a switch, a yield, a tick), before it looks at the run queues,
/// so a timer fires on time even when threads are always READY. Callbacks
/// run one at a time, in the order their deadlines passed: a callback that
/// blocks (on a gt::mutex, a sleep, gt::io) lets every other green thread
/// run, but delays the callbacks of the other timers until it returns.
/// Keep callbacks short, or hand long work to a thread of its own.
///
/// **Periods.** The n-th firing of a periodic timer is scheduled at
/// first_deadline + n * period exactly: the next deadline counts from the
/// one that passed, not from when the callback ran (libuv's
/// uv_timer_again re-arms from the loop's time, and its period drifts by
/// the lateness of every firing). Periods that pass while the timer cannot
/// fire (the OS thread was busy, the callback thread was blocked) are
/// skipped, not bunched: at most one firing waits for the callback thread
/// at a time, and the next deadline is the first one still in the future.
/// missed() counts the skipped ones (as Go's time.Ticker drops ticks for a
/// slow receiver).
///
/// **Cancelling.** cancel() and the destructor stop every firing that has
/// not started. A callback that runs at that moment is not interrupted:
/// cancel() returns at once (it may be called from the callback itself);
/// the destructor, called by another green thread, blocks that thread
/// until the callback returns, so nothing the callback uses dies under it
/// (as Linux's del_timer_sync does; do not hold a lock there that the
/// callback waits for). A timer destroyed by its own callback (directly,
/// or with the object that owns it) returns at once; its callback object
/// lives until the callback returns, and the timer's state is freed then.
///
/// **Errors.** An empty callback or a negative period: std::invalid_argument.
/// start() on a timer without a callback (default-constructed, moved from):
/// std::system_error (std::errc::invalid_argument). A timer belongs to the
/// OS thread whose green thread first started it; start() or cancel() from
/// another OS thread: std::system_error (std::errc::operation_not_permitted),
/// and its destruction there, while pending or running, reports it and
/// calls std::terminate (a timer that is neither may be destroyed anywhere,
/// also after its OS thread has ended). std::bad_alloc when the timer heap or the callback
/// thread cannot be allocated. An exception that escapes a callback calls
/// std::terminate, as one that escapes a thread's function does; so does
/// gt::this_thread::exit() inside a callback.
///
/// Thread safety: use a timer from green threads of one OS thread. Not
/// async-signal-safe.
class timer {
public:
    /// The clock of delays, deadlines and periods (CLOCK_MONOTONIC).
    using clock = std::chrono::steady_clock;
    /// A callback that is told each firing's scheduled deadline.
    using callback_at = std::function<void(clock::time_point scheduled)>;

    /// A timer with no callback: never fires, cannot be started.
    timer() noexcept = default;

    /// Runs `callback` once `delay` from now (at once if it is zero or
    /// negative) and then every `period`, if it is not zero.
    /// @param delay     from now, on std::chrono::steady_clock.
    /// @param callback  what runs at each firing, on the callback thread.
    /// @param period    0 (once) or the interval between scheduled deadlines.
    /// @throws std::invalid_argument (empty callback, negative period),
    ///         std::bad_alloc.
    timer(clock::duration delay, std::function<void()> callback, clock::duration period = clock::duration::zero());
    /// The same, with the first deadline given as a time point.
    timer(clock::time_point deadline, std::function<void()> callback,
          clock::duration period = clock::duration::zero());
    /// The same, with a callback that is told the firing's scheduled
    /// deadline (first deadline + n * period for the n-th firing).
    timer(clock::duration delay, callback_at callback, clock::duration period = clock::duration::zero());
    /// The same, with the first deadline as a time point and a callback
    /// that is told each firing's scheduled deadline.
    timer(clock::time_point deadline, callback_at callback, clock::duration period = clock::duration::zero());

    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    /// Takes over `other`'s callback and schedule; `other` is left without
    /// a callback. A callback that runs meanwhile is not disturbed.
    timer(timer&& other) noexcept : state_(other.state_) { other.state_ = nullptr; }
    /// Destroys this timer as the destructor does, then takes over `other`.
    timer& operator=(timer&& other) noexcept;

    /// Cancels it, and waits for a callback that runs now unless called
    /// from that callback (see the class comment).
    ~timer();

    /// Schedules the callback at `deadline`, then every `period` if not
    /// zero, replacing whatever firing was pending (as libuv's
    /// uv_timer_start on an active timer). Callable from the callback.
    /// @throws std::invalid_argument (negative period), std::system_error
    ///         (no callback; another OS thread's timer), std::bad_alloc.
    void start(clock::time_point deadline, clock::duration period = clock::duration::zero());
    /// start(now + delay, period).
    void start(clock::duration delay, clock::duration period = clock::duration::zero());

    /// Stops the firings that have not started; a callback that runs now
    /// finishes. Returns true if a firing was pending (scheduled, or due
    /// and waiting for the callback thread).
    /// @throws std::system_error (operation_not_permitted): another OS
    ///         thread's timer.
    bool cancel();

    /// True while a firing is scheduled or waits for the callback thread.
    bool pending() const noexcept;
    /// True while its callback runs (perhaps blocked inside it).
    bool running() const noexcept;
    /// Callbacks run (started) so far.
    std::uint64_t fired() const noexcept;
    /// Periodic firings skipped because the timer could not fire in time
    /// (see the class comment).
    std::uint64_t missed() const noexcept;

private:
    timer(clock::time_point deadline, std::function<void()> plain, callback_at at, clock::duration period);
    void destroy() noexcept;

    detail::timer_state* state_ = nullptr;
};

/// The registration of an idle callback (gt::on_idle). Unregisters it when
/// destroyed or reset. Move-only.
class idle_handle {
public:
    idle_handle() noexcept = default;
    idle_handle(const idle_handle&) = delete;
    idle_handle& operator=(const idle_handle&) = delete;
    /// Takes `other`'s registration; `other` holds none after.
    idle_handle(idle_handle&& other) noexcept : entry_(other.entry_) { other.entry_ = nullptr; }
    /// Unregisters its own callback (reset()), then takes `other`'s.
    idle_handle& operator=(idle_handle&& other) noexcept;
    /// reset().
    ~idle_handle() { reset(); }

    /// Unregisters the callback: it is not called again. If it runs now
    /// on the callback thread, waits for it to return, unless called from
    /// the callback itself (then the callback object lives until it
    /// returns). Called on another OS thread than the registration's, it
    /// reports that and calls std::terminate.
    void reset() noexcept;

    /// True while it holds a registration.
    explicit operator bool() const noexcept { return entry_ != nullptr; }

    /// Times the callback has been called so far.
    std::uint64_t calls() const noexcept;

private:
    friend idle_handle on_idle(std::function<bool()> callback);
    explicit idle_handle(detail::idle_entry* entry) noexcept : entry_(entry) {}

    detail::idle_entry* entry_ = nullptr;
};

/// Registers `callback` to be called on the callback thread ("gt-timers")
/// when no green thread of the calling OS thread is READY, before the OS
/// thread sleeps in the poller. It returns whether it did work:
///
///   - true: the scheduler polls the descriptors without waiting, runs
///     whatever became READY, and calls the idle callbacks again as soon as
///     nothing is READY: the OS thread does not sleep while they keep
///     finding work (libuv's idle handles, src/unix/core.c, always poll
///     without waiting: a busy loop);
///   - false (from every callback of the round): the OS thread may sleep.
///     The callbacks are called at most once more per sleep of the OS
///     thread in the poller, so an idle process whose callbacks return
///     false uses no CPU.
///
/// Callbacks run one after another, in registration order, on the same
/// thread as gt::timer's callbacks (see gt::timer on blocking in one).
/// While an idle callback is registered and the callback thread waits for
/// work, the deadlock report does not fire: the OS thread sleeps until a
/// timer, a descriptor or a signal wakes it, and calls the callbacks again.
///
/// @throws std::invalid_argument (empty callback), std::bad_alloc.
/// Thread safety: registers on the calling OS thread's scheduler; not
/// async-signal-safe.
[[nodiscard]] idle_handle on_idle(std::function<bool()> callback);

}  // namespace gt
