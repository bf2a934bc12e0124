// System calls that a tick must not break. signal(7) lists the calls that
// are never restarted after a signal handler ran, whatever SA_RESTART says:
// they fail with EINTR instead. A preemption tick is not the program's
// signal, so for the common ones gt defines functions of the same names.
// Symbols the program defines come before libc's (symbol interposition,
// as in the sanitizers' interceptors), so calls from the program and from
// libstdc++ (std::this_thread::sleep_for calls nanosleep) land here. Each
// blocks SIGALRM for the duration of the real call (the OS thread is
// blocked in the kernel anyway, so nothing else could run on it) and then
// calls libc's function, found with dlsym(RTLD_NEXT). A tick that fell due
// meanwhile is delivered when the call returns.
//
// Not covered (they still see EINTR): sockets with SO_RCVTIMEO/SO_SNDTIMEO,
// System V IPC, sigtimedwait, io_getevents, inotify reads, and calls the
// compiler turns into their _FORTIFY_SOURCE variants (__poll_chk...).
#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "preempt.hpp"

namespace {

template <typename Function>
Function libc(const char* name) noexcept {
    return reinterpret_cast<Function>(::dlsym(RTLD_NEXT, name));
}

// `mask` with SIGALRM added if `hold` blocked it, for calls that replace
// the signal mask while they wait.
const sigset_t* with_ticks_held(const sigset_t* mask, sigset_t& copy,
                                const gt::detail::preempt::hold_ticks& hold) noexcept {
    if (mask == nullptr) return nullptr;
    copy = *mask;
    hold.add_to(copy);
    return &copy;
}

}  // namespace

using gt::detail::preempt::hold_ticks;

extern "C" {

int nanosleep(const timespec* duration, timespec* remaining) {
    static const auto real = libc<int (*)(const timespec*, timespec*)>("nanosleep");
    const hold_ticks hold;
    return real(duration, remaining);
}

int clock_nanosleep(clockid_t clock, int flags, const timespec* time, timespec* remaining) {
    static const auto real = libc<int (*)(clockid_t, int, const timespec*, timespec*)>("clock_nanosleep");
    const hold_ticks hold;
    return real(clock, flags, time, remaining);
}

// glibc's sleep and usleep call nanosleep inside libc, not through the
// symbol table, so they need their own wrappers.
unsigned int sleep(unsigned int seconds) {
    static const auto real = libc<unsigned int (*)(unsigned int)>("sleep");
    const hold_ticks hold;
    return real(seconds);
}

int usleep(useconds_t microseconds) {
    static const auto real = libc<int (*)(useconds_t)>("usleep");
    const hold_ticks hold;
    return real(microseconds);
}

int poll(pollfd* fds, nfds_t count, int timeout_ms) {
    static const auto real = libc<int (*)(pollfd*, nfds_t, int)>("poll");
    const hold_ticks hold;
    return real(fds, count, timeout_ms);
}

int ppoll(pollfd* fds, nfds_t count, const timespec* timeout, const sigset_t* mask) {
    static const auto real = libc<int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*)>("ppoll");
    const hold_ticks hold;
    sigset_t copy;
    return real(fds, count, timeout, with_ticks_held(mask, copy, hold));
}

int select(int count, fd_set* readable, fd_set* writable, fd_set* exceptional, timeval* timeout) {
    static const auto real = libc<int (*)(int, fd_set*, fd_set*, fd_set*, timeval*)>("select");
    const hold_ticks hold;
    return real(count, readable, writable, exceptional, timeout);
}

int pselect(int count, fd_set* readable, fd_set* writable, fd_set* exceptional, const timespec* timeout,
            const sigset_t* mask) {
    static const auto real =
        libc<int (*)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*)>("pselect");
    const hold_ticks hold;
    sigset_t copy;
    return real(count, readable, writable, exceptional, timeout, with_ticks_held(mask, copy, hold));
}

int epoll_wait(int epoll, epoll_event* events, int capacity, int timeout_ms) {
    static const auto real = libc<int (*)(int, epoll_event*, int, int)>("epoll_wait");
    const hold_ticks hold;
    return real(epoll, events, capacity, timeout_ms);
}

int epoll_pwait(int epoll, epoll_event* events, int capacity, int timeout_ms, const sigset_t* mask) {
    static const auto real = libc<int (*)(int, epoll_event*, int, int, const sigset_t*)>("epoll_pwait");
    const hold_ticks hold;
    sigset_t copy;
    return real(epoll, events, capacity, timeout_ms, with_ticks_held(mask, copy, hold));
}

// pause and sigsuspend wait for a signal: a tick must not count as one.
int pause() {
    static const auto real = libc<int (*)()>("pause");
    const hold_ticks hold;
    return real();
}

int sigsuspend(const sigset_t* mask) {
    static const auto real = libc<int (*)(const sigset_t*)>("sigsuspend");
    const hold_ticks hold;
    sigset_t copy;
    return real(with_ticks_held(mask, copy, hold));
}

}  // extern "C"
