/// @file
/// Preemption: a timer interrupts the running green thread twice per time
/// slice; once the thread has had its slice (between half a slice and a
/// whole one, depending on where between two ticks it started), if a thread
/// of the same or a higher priority is READY, the runtime switches to it.
///
/// Each OS thread that runs green threads has its own timer, made with
/// timer_create(2) on CLOCK_MONOTONIC and delivering SIGALRM to that OS
/// thread only (SIGEV_THREAD_ID). The runtime owns SIGALRM: do not install
/// your own handler for it, and do not use alarm(2), setitimer(2) or
/// ITIMER_REAL in a program that uses gt. While an OS thread ticks,
/// pthread_sigmask(3) and sigprocmask(2) leave SIGALRM unblocked there
/// (a program that blocks every signal still gets preempted); blocking it
/// by other means (a raw rt_sigprocmask system call) stops the ticks.
///
/// A thread is preempted only where that is safe: outside the runtime's
/// critical sections, outside gt::this_thread::disable_preemption regions,
/// with no more signals blocked than the program's mask (the one its OS
/// thread started with, or last set with pthread_sigmask or sigprocmask:
/// not inside a signal handler), and while it executes the
/// program's own code — not inside a shared library such as libc, whose
/// locks (malloc's, stdio's) the next thread would wait for forever. A tick
/// that finds the thread elsewhere is deferred, not lost.
#pragma once

#include <chrono>

namespace gt {

/// The time slice an OS thread's scheduler starts with when the environment
/// variable GT_TIME_SLICE_US does not say otherwise: 10 ms, as Go's
/// scheduler (forcePreemptNS in runtime/proc.go).
inline constexpr std::chrono::microseconds default_time_slice{10'000};

/// The shortest time slice accepted (other than 0, which turns preemption
/// off): 100 µs. The timer ticks twice per slice, and a tick costs 2–20 µs
/// of signal delivery (20 on a virtual machine): shorter slices would spend
/// much of the CPU in the handler.
inline constexpr std::chrono::microseconds min_time_slice{100};

/// How long a thread may keep the CPU without a switch, while another
/// thread waits for it, before the stall detector reports it on stderr
/// (when the environment variable GT_STALL_REPORT_MS does not say
/// otherwise): 100 ms.
inline constexpr std::chrono::milliseconds default_stall_threshold{100};

/// Sets the time slice of the calling OS thread's scheduler, in
/// microseconds (a slice beyond about 292 years counts as that); 0 turns
/// preemption off (threads then switch only when they
/// yield, block or finish, as without a timer). Takes effect at once on the
/// calling OS thread; other OS threads keep their own setting, which starts
/// from GT_TIME_SLICE_US (default gt::default_time_slice).
/// Not async-signal-safe; call it from a green thread of this OS thread.
/// @throws std::invalid_argument if `slice` is negative or between 0 and
///         gt::min_time_slice.
/// @throws std::system_error (errno from timer_create(2) or
///         timer_settime(2)) if the timer cannot be made or set.
void set_time_slice(std::chrono::microseconds slice);

/// The calling OS thread's time slice, in microseconds; 0 when preemption
/// is off. Like every gt call, the first one on an OS thread starts its
/// scheduler (which reads GT_TIME_SLICE_US). Not async-signal-safe.
std::chrono::microseconds time_slice() noexcept;

/// Sets the stall threshold of the calling OS thread's scheduler, in
/// milliseconds (std::chrono::milliseconds::max() and anything beyond about
/// 292 years mean "never"); 0 turns the stall detector off. A thread that keeps the
/// CPU for longer than this without a switch while another thread of the
/// same or a higher priority is READY — because preemption is off or
/// disabled, or because it runs where it cannot be preempted (inside a
/// shared library, a blocking system call) — is reported on stderr once
/// per stall, with its name, id and how long it has run. It is not stopped.
/// Not async-signal-safe.
/// @throws std::invalid_argument if `threshold` is negative.
/// @throws std::system_error as gt::set_time_slice.
void set_stall_threshold(std::chrono::milliseconds threshold);

/// The calling OS thread's stall threshold in milliseconds (0: off).
/// Not async-signal-safe.
std::chrono::milliseconds stall_threshold() noexcept;

namespace this_thread {

/// While an object of this type lives, the calling green thread is not
/// preempted by the timer (it still switches when it yields, blocks or
/// finishes, and a thread of higher priority that it makes READY still
/// runs at once). Guards nest. A tick that
/// arrives meanwhile is deferred and honoured when the outermost guard
/// ends. Modelled on boost::this_thread::disable_interruption and on the
/// Linux kernel's preempt_disable()/preempt_enable().
///
/// Keep such regions short: while one lasts, every other thread of this OS
/// thread waits, and the stall detector reports regions that last longer
/// than gt::stall_threshold(). Not copyable or movable; create and destroy
/// it on the same green thread (destroyed on another one, it aborts the
/// process with a message naming the thread). Not async-signal-safe.
class disable_preemption {
public:
    disable_preemption() noexcept;
    ~disable_preemption();
    disable_preemption(const disable_preemption&) = delete;
    disable_preemption& operator=(const disable_preemption&) = delete;

private:
    void* owner_;  // the thread's control block: destroyed elsewhere, it aborts with a message
};

}  // namespace this_thread
}  // namespace gt
