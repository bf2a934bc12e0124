// The interposed waiting calls of syscalls.cpp (nanosleep, poll, select,
// epoll_wait...) when they park only the calling green thread: called from
// a green thread of an OS thread that has a scheduler, a sleep becomes a
// sleep on the scheduler's timer heap, and a wait for descriptors becomes a
// wait on one descriptor in the scheduler's poller, while the other green
// threads run. The walkthrough's section "The interposed calls now park a
// green thread" explains the design and what stays OS-thread-blocking.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

#include <cstdint>

namespace gt::detail {

class scheduler;

namespace parked {

/// The calling OS thread's scheduler if the green thread running on it may
/// park in an interposed call now, else nullptr (the call then blocks the
/// OS thread, as before): when the OS thread has no scheduler; inside the
/// scheduler's critical section (a signal handler that interrupted it);
/// with SIGALRM blocked on a ticking OS thread (inside the tick's handler);
/// with more signals blocked than the program's mask (inside a handler of
/// one of the program's signals, preempt::blocks_more_than_normal); or
/// when `call_mask`, the mask a ppoll, pselect or epoll_pwait installs for
/// its wait, unblocks a signal the thread has blocked: the program waits
/// for that signal, and a parked thread cannot take the mask along (the
/// mask is the OS thread's, shared by every green thread that runs
/// meanwhile). Costs one system call (reads the signal mask).
scheduler* scheduler_for(const sigset_t* call_mask = nullptr) noexcept;

/// The CLOCK_MONOTONIC deadline `duration` from now, in ns, saturating at
/// the largest representable one. `duration` must be valid (tv_sec >= 0,
/// 0 <= tv_nsec < 10^9).
std::int64_t deadline_after(const timespec& duration) noexcept;

/// True if `t` is a valid timespec (tv_sec >= 0, 0 <= tv_nsec < 10^9) that
/// is not zero: a wait worth parking for. An invalid one goes to the C
/// library, which fails it with EINVAL; a zero one too, at once.
bool positive(const timespec* t) noexcept;

/// Parks the running thread on `s`'s timer heap until `deadline_ns`
/// (CLOCK_MONOTONIC); errno is kept.
void sleep_until(scheduler& s, std::int64_t deadline_ns) noexcept;

/// The C library's functions the waits below call, found by syscalls.cpp.
using ppoll_function = int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*);
using pselect_function = int (*)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*);
using epoll_pwait_function = int (*)(int, epoll_event*, int, int, const sigset_t*);

/// Sentinel for the waits' `deadline_ns`: no timeout.
constexpr std::int64_t no_deadline = INT64_MAX;

/// poll(2) and ppoll(2) parked: returns what `real` (the C library's ppoll)
/// returns with a zero timeout once a descriptor is ready, or at the
/// deadline (CLOCK_MONOTONIC ns, or no_deadline). `mask` is the call's
/// (scheduler_for accepted it; only a fallback wait uses it). The
/// descriptors wait in a temporary epoll instance (level-triggered, the
/// events asked for), which waits in the scheduler's poller; when that
/// cannot be made (no descriptors left, epoll's limits) the call waits for
/// the rest of its time in the kernel with ticks held, as before. errno is
/// kept unless the result is -1.
int poll(scheduler& s, pollfd* fds, nfds_t count, std::int64_t deadline_ns, const sigset_t* mask,
         ppoll_function real) noexcept;

/// select(2) and pselect(2) parked, as poll() above; `real` is the C
/// library's pselect. Sets the caller's fd_sets as the last zero-timeout
/// call left them. `count` above FD_SETSIZE waits in the kernel.
int select(scheduler& s, int count, fd_set* readable, fd_set* writable, fd_set* exceptional,
           std::int64_t deadline_ns, const sigset_t* mask, pselect_function real) noexcept;

/// epoll_wait(2) and epoll_pwait(2) parked on the program's own epoll
/// descriptor `epoll`, which the scheduler's poller then watches (an epoll
/// descriptor is readable while its ready list is not empty): waits until
/// it is readable and returns what `real` (the C library's epoll_pwait)
/// returns with a zero timeout, or that at the deadline.
int epoll_wait(scheduler& s, int epoll, epoll_event* events, int capacity, std::int64_t deadline_ns,
               const sigset_t* mask, epoll_pwait_function real) noexcept;

}  // namespace parked
}  // namespace gt::detail
