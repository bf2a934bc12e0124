// The C library's own versions of the calls that syscalls.cpp wraps, for
// the runtime itself, and the one reference that links syscalls.cpp in.
#pragma once

#include <signal.h>
#include <sys/epoll.h>
#include <time.h>

namespace gt::detail::syscalls {

/// Finds the C library's version of every function syscalls.cpp defines
/// (dlsym(RTLD_NEXT)), once. The ticker calls it before it makes the first
/// timer, so no wrapper ever resolves anything while ticks can come. It is
/// also the reference that links syscalls.cpp out of libgt.a into every
/// program that can be preempted: nothing else in the runtime names a
/// symbol of that file, and without it the wrappers would be left out.
/// Not async-signal-safe (dlsym).
void resolve_real_functions() noexcept;

/// True once every C library function the wrappers call has been found.
/// Async-signal-safe.
bool real_functions_resolved() noexcept;

/// The C library's clock_nanosleep(2), not the wrapper: for the scheduler,
/// which holds ticks itself while its OS thread idles. Returns 0 or an
/// error number (EINTR when a signal handler of the program ran).
int real_clock_nanosleep(clockid_t clock, int flags, const timespec* time, timespec* remaining) noexcept;

/// The C library's pthread_sigmask(3), not the wrapper: for the runtime's
/// own changes of SIGALRM, which are not the program's mask. Returns 0 or
/// an error number. Async-signal-safe once resolve_real_functions() ran.
int real_pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept;

/// The C library's close(2), not io.cpp's wrapper, which calls it once the
/// poller has forgotten the descriptor. Async-signal-safe.
int real_close(int fd) noexcept;

/// The C library's epoll_pwait(2), not the wrapper: for the poller on a
/// kernel without epoll_pwait2, with its own mask. -1 with errno on failure.
int real_epoll_pwait(int epoll, epoll_event* events, int capacity, int timeout_ms, const sigset_t* mask) noexcept;

}  // namespace gt::detail::syscalls
