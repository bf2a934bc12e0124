// Preemption's machinery: one POSIX timer per OS thread that sends SIGALRM
// to that OS thread every period, the SIGALRM handler, and the rule for
// where a thread may be switched away from inside that handler.
#pragma once

#include <signal.h>
#include <time.h>

#include <cstdint>

namespace gt::detail::preempt {

/// Why a tick that ends a time slice may not switch threads now. The
/// scheduler answers the first three (scheduler::why_not_preemptible), the
/// safe-point rule the last three (ticker::why_not_safe). The stall report
/// names it.
enum class not_preemptible : unsigned char {
    no,                   ///< the tick may switch
    preemption_off,       ///< the time slice is 0; ticks only feed the stall detector
    critical_section,     ///< the scheduler is changing its own data
    disabled_by_thread,   ///< inside gt::this_thread::disable_preemption
    signal_mask,          ///< more signals blocked than the program's mask (the last one it set with
                          ///< pthread_sigmask or sigprocmask): in a handler of one of its signals
    in_system_call,       ///< waiting in the kernel (at the `syscall` instruction, outside the program's code)
    not_in_program_code,  ///< in a shared library (libc, libstdc++...), the vDSO or the dynamic linker
};

/// The stall report's words for `reason` ("it waits in a system call").
/// Async-signal-safe.
const char* to_string(not_preemptible reason) noexcept;

/// The timer of one OS thread's scheduler: timer_create(2) on
/// CLOCK_MONOTONIC with SIGEV_THREAD_ID, so SIGALRM goes to this OS thread
/// and no other. The first ticker of the process installs the SIGALRM
/// handler (sigaction(2), SA_SIGINFO | SA_RESTART), which calls
/// scheduler::on_tick on the running thread's own stack.
class ticker {
public:
    /// Records the calling OS thread's id and its signal mask (the mask its
    /// threads normally run with, until the program sets another with
    /// pthread_sigmask or sigprocmask); unblocks SIGALRM; starts nothing.
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

    /// Why the code the signal interrupted (`ucontext`, the handler's third
    /// argument) may not be switched away from (signal_mask, in_system_call,
    /// not_in_program_code), or not_preemptible::no if it may: it must run with no more signals blocked than its thread
    /// normally runs with (not in a handler of another signal), and in the
    /// main program's own machine code, not in a shared library (libc's
    /// malloc and stdio hold locks there that the next thread would wait for
    /// forever) or the vDSO. Async-signal-safe.
    not_preemptible why_not_safe(const void* ucontext) const noexcept;

private:
    timer_t timer_{};
    bool created_ = false;
    std::int64_t period_ns_ = 0;
    int tid_;  // the OS thread the ticks go to
};

/// Around the C library's pthread_sigmask/sigprocmask in their wrappers
/// (syscalls.cpp): from signal_mask_changing() to signal_mask_changed() a
/// tick does not switch (the mask and the record of it differ meanwhile);
/// then the mask that `how` and `set` made of `before` (nullptr: the call
/// failed, nothing changed) is the one the calling OS thread's threads
/// normally run with. Async-signal-safe.
void signal_mask_changing() noexcept;
void signal_mask_changed(int how, const sigset_t* set, const sigset_t* before) noexcept;

/// Unblocks or blocks SIGALRM for the calling OS thread. The handler runs
/// with it blocked; a thread switched to from inside the handler needs it
/// unblocked, unless it stopped inside the handler itself (then it stays
/// blocked until that handler returns). Async-signal-safe (the C library's
/// pthread_sigmask, not the wrapper: this is the runtime's change, not the
/// program's).
void unblock_timer_signal() noexcept;
void block_timer_signal() noexcept;

/// True if `mask` blocks a signal, SIGALRM aside, that the calling OS
/// thread's threads normally run with unblocked (the mask the program last
/// set with pthread_sigmask or sigprocmask): the mask of a handler of one
/// of the program's signals. The safe-point rule's test (why_not_safe), for
/// the interposed calls that park only when not in such a handler.
/// Async-signal-safe.
bool blocks_more_than_normal(const sigset_t& mask) noexcept;

/// Writes into `mask` the program's mask (as for blocks_more_than_normal)
/// with SIGALRM added: the mask the OS thread idles with in the poller, read
/// without a system call. Async-signal-safe.
void normal_mask_blocking_ticks(sigset_t& mask) noexcept;

/// True if the calling OS thread's ticker is ticking: then the runtime owns
/// SIGALRM, and the program's pthread_sigmask/sigprocmask leave it
/// unblocked (syscalls.cpp). Async-signal-safe.
bool this_os_thread_ticks() noexcept;

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
