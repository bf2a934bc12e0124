// Preemption's machinery: one POSIX timer per OS thread that sends SIGALRM
// to that OS thread every period, the SIGALRM handler, and the rule for
// where a thread may be switched away from inside that handler.
#pragma once

#include <signal.h>
#include <time.h>

#include <cstdint>

namespace gt::detail::preempt {

/// The timer of one OS thread's scheduler: timer_create(2) on
/// CLOCK_MONOTONIC with SIGEV_THREAD_ID, so SIGALRM goes to this OS thread
/// and no other. The first ticker of the process installs the SIGALRM
/// handler (sigaction(2), SA_SIGINFO | SA_RESTART), which calls
/// scheduler::on_tick on the running thread's own stack.
class ticker {
public:
    /// Records the calling OS thread's id and its signal mask (the mask its
    /// threads normally run with); starts nothing.
    ticker() noexcept;
    /// Deletes the timer.
    ~ticker();
    ticker(const ticker&) = delete;
    ticker& operator=(const ticker&) = delete;

    /// Ticks every `ns` nanoseconds from now; 0 stops the ticks.
    /// @throws std::system_error with the errno of timer_create(2) or
    ///         timer_settime(2).
    void set_period(std::int64_t ns);

    /// Deletes the timer: no more ticks, not even one already due.
    void stop() noexcept;

    /// The period in ns; 0 when not ticking. Async-signal-safe.
    std::int64_t period_ns() const noexcept { return period_ns_; }

    /// The next tick comes `ns` from now, then every period again: for a
    /// tick that found the thread where it cannot be preempted, retrying
    /// soon instead of a whole period later. Async-signal-safe.
    void retry_in(std::int64_t ns) noexcept;

    /// In a child after fork(2): POSIX timers are not inherited, so make
    /// this OS thread's timer again with the same period.
    void restart_after_fork() noexcept;

    /// True if the code the signal interrupted (`ucontext`, the handler's
    /// third argument) may be switched away from: it runs in the main
    /// program's own machine code, not in a shared library (libc's malloc
    /// and stdio hold locks there that the next thread would wait for
    /// forever), and with the signal mask its thread normally runs with (not
    /// in another signal's handler). Async-signal-safe.
    bool at_safe_point(const void* ucontext) const noexcept;

private:
    timer_t timer_{};
    bool created_ = false;
    std::int64_t period_ns_ = 0;
    int tid_;                    // the OS thread the ticks go to
    unsigned long normal_mask_;  // its signal mask (signals 1-64) when the ticker was made
};

/// True if the interrupted code (`ucontext`) waits in a system call: the
/// kernel, restarting it after the handler (SA_RESTART), points the
/// instruction pointer back at the `syscall` instruction (0f 05).
/// Async-signal-safe.
bool in_system_call(const void* ucontext) noexcept;

/// Unblocks SIGALRM for the calling OS thread: the handler runs with it
/// blocked, and a thread it switches to must not inherit that.
/// Async-signal-safe (pthread_sigmask).
void unblock_timer_signal() noexcept;

/// While an object lives, SIGALRM is blocked on the calling OS thread, so a
/// tick cannot interrupt a system call that SA_RESTART does not restart
/// (nanosleep, poll, ...; see signal(7)) and make it fail with EINTR. A tick
/// due meanwhile is delivered when it ends. Does nothing on an OS thread
/// whose ticker is not ticking.
class hold_ticks {
public:
    hold_ticks() noexcept;
    ~hold_ticks();
    hold_ticks(const hold_ticks&) = delete;
    hold_ticks& operator=(const hold_ticks&) = delete;

    /// Adds SIGALRM to `mask` if this object blocked it: for the calls that
    /// replace the signal mask while they wait (ppoll, pselect, ...).
    void add_to(sigset_t& mask) const noexcept;

private:
    bool held_ = false;
};

/// The time slice from the environment variable GT_TIME_SLICE_US
/// (microseconds, 0 = off), else gt::default_time_slice; in ns. An invalid
/// value is reported on stderr and the default used.
std::int64_t slice_from_environment() noexcept;

/// The stall threshold from GT_STALL_REPORT_MS (milliseconds, 0 = off),
/// else gt::default_stall_threshold; in ns. Invalid values as above.
std::int64_t stall_threshold_from_environment() noexcept;

}  // namespace gt::detail::preempt
