// System calls that a tick must not break. signal(7) lists the calls that
// are never restarted after a signal handler ran, whatever SA_RESTART says:
// they fail with EINTR instead. A preemption tick is not the program's
// signal, so for the common ones gt defines functions of the same names.
// Symbols the program defines come before libc's (symbol interposition,
// as in the sanitizers' interceptors), so calls from the program and from
// libstdc++ (std::this_thread::sleep_for calls nanosleep) land here.
//
// Called from a green thread of an OS thread that has a scheduler, the
// waits park only that green thread (parked_calls.cpp): a sleep sleeps on
// the scheduler's timer heap, a wait for descriptors waits in its poller,
// and the other green threads run meanwhile. Otherwise (an OS thread
// without a scheduler, a signal handler, a ppoll/pselect/epoll_pwait whose
// mask unblocks a signal the program waits for, pause, sigsuspend, a zero
// timeout), each blocks SIGALRM for the duration of the real call (the OS
// thread is blocked in the kernel anyway, so nothing else could run on it)
// and then calls libc's function, found with dlsym(RTLD_NEXT). A tick that
// fell due meanwhile is delivered when the call returns.
//
// libc's functions are found once, by resolve_real_functions(), which the
// ticker calls before it makes the process's first timer: a wrapper never
// runs dlsym, or waits for a guard variable of a function-local static,
// where a tick could preempt it (a second green thread would then wait for
// that guard with the whole OS thread). That call is also what links this
// file into the program (see syscalls.hpp).
//
// pthread_sigmask and sigprocmask are wrapped too, for another reason: the
// mask the program sets is the mask its threads normally run with, which
// the safe-point rule compares the interrupted code's mask with
// (preempt.hpp, signal_mask_changing).
//
// Not covered (they still see EINTR): sockets with SO_RCVTIMEO/SO_SNDTIMEO,
// System V IPC, sigtimedwait, io_getevents, inotify reads, and calls the
// compiler turns into their _FORTIFY_SOURCE variants (__poll_chk...).
#include "syscalls.hpp"

#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "parked_calls.hpp"
#include "preempt.hpp"
#include "scheduler.hpp"

namespace {

// One function of libc's, found by name. Constant-initialised (no guard
// variable); resolve_real_functions() fills it before any tick can come. A
// call made earlier than that (before the process has a timer at all)
// finds it itself: two OS threads that race to do so store the same value.
template <typename Function>
class real_function {
public:
    explicit constexpr real_function(const char* name) noexcept : name_(name) {}

    Function get() noexcept {
        const Function f = pointer_.load(std::memory_order_relaxed);
        return f != nullptr ? f : resolve();
    }
    Function resolve() noexcept {
        const auto f = reinterpret_cast<Function>(::dlsym(RTLD_NEXT, name_));
        pointer_.store(f, std::memory_order_relaxed);
        return f;
    }
    bool resolved() const noexcept { return pointer_.load(std::memory_order_relaxed) != nullptr; }

private:
    const char* name_;
    std::atomic<Function> pointer_{nullptr};
};

constinit real_function<int (*)(const timespec*, timespec*)> real_nanosleep{"nanosleep"};
constinit real_function<int (*)(clockid_t, int, const timespec*, timespec*)> real_clock_nanosleep_{"clock_nanosleep"};
constinit real_function<unsigned int (*)(unsigned int)> real_sleep{"sleep"};
constinit real_function<int (*)(useconds_t)> real_usleep{"usleep"};
constinit real_function<int (*)(pollfd*, nfds_t, int)> real_poll{"poll"};
constinit real_function<int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*)> real_ppoll{"ppoll"};
constinit real_function<int (*)(int, fd_set*, fd_set*, fd_set*, timeval*)> real_select{"select"};
constinit real_function<int (*)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*)> real_pselect{
    "pselect"};
constinit real_function<int (*)(int, epoll_event*, int, int)> real_epoll_wait{"epoll_wait"};
constinit real_function<int (*)(int, epoll_event*, int, int, const sigset_t*)> real_epoll_pwait{"epoll_pwait"};
constinit real_function<int (*)()> real_pause{"pause"};
constinit real_function<int (*)(const sigset_t*)> real_sigsuspend{"sigsuspend"};
constinit real_function<int (*)(int, const sigset_t*, sigset_t*)> real_pthread_sigmask_{"pthread_sigmask"};
constinit real_function<int (*)(int, const sigset_t*, sigset_t*)> real_sigprocmask{"sigprocmask"};
constinit real_function<int (*)(int)> real_close_{"close"};

// Applies `f` to every real_function above.
template <typename F>
void for_each_real_function(F f) {
    f(real_nanosleep), f(real_clock_nanosleep_), f(real_sleep), f(real_usleep), f(real_poll), f(real_ppoll);
    f(real_select), f(real_pselect), f(real_epoll_wait), f(real_epoll_pwait), f(real_pause), f(real_sigsuspend);
    f(real_pthread_sigmask_), f(real_sigprocmask), f(real_close_);
}

// The runtime owns SIGALRM while the OS thread ticks: a program that blocks
// "every signal" (sigfillset, then SIG_BLOCK or SIG_SETMASK, before a
// sigwait loop, say) would otherwise stop the ticks for good, and the stall
// detector with them. So the wrappers take SIGALRM out of what they block.
const sigset_t* without_timer_signal(int how, const sigset_t* set, sigset_t& copy) noexcept {
    if (set == nullptr || how == SIG_UNBLOCK || !gt::detail::preempt::this_os_thread_ticks()) return set;
    copy = *set;
    sigdelset(&copy, SIGALRM);
    return &copy;
}

// The body of both mask wrappers below: `real` is libc's pthread_sigmask
// (returns an error number) or sigprocmask (returns -1 and sets errno);
// either way 0 means success, and the result is passed on unchanged.
int set_program_mask(int (*real)(int, const sigset_t*, sigset_t*), int how, const sigset_t* set,
                     sigset_t* old) noexcept {
    if (set == nullptr) return real(how, set, old);  // only reads it
    sigset_t copy;
    set = without_timer_signal(how, set, copy);
    sigset_t before;
    gt::detail::preempt::signal_mask_changing();
    const int result = real(how, set, &before);
    gt::detail::preempt::signal_mask_changed(how, set, result == 0 ? &before : nullptr);
    if (result == 0 && old != nullptr) *old = before;
    return result;
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

namespace gt::detail::syscalls {

void resolve_real_functions() noexcept {
    for_each_real_function([](auto& real) { real.resolve(); });
}

bool real_functions_resolved() noexcept {
    bool all = true;
    for_each_real_function([&all](const auto& real) { all = all && real.resolved(); });
    return all;
}

int real_clock_nanosleep(clockid_t clock, int flags, const timespec* time, timespec* remaining) noexcept {
    return real_clock_nanosleep_.get()(clock, flags, time, remaining);
}

int real_close(int fd) noexcept { return real_close_.get()(fd); }

int real_epoll_pwait(int epoll, epoll_event* events, int capacity, int timeout_ms, const sigset_t* mask) noexcept {
    return ::real_epoll_pwait.get()(epoll, events, capacity, timeout_ms, mask);
}

int real_pthread_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
    return real_pthread_sigmask_.get()(how, set, old);
}

}  // namespace gt::detail::syscalls

using gt::detail::preempt::hold_ticks;
namespace parked = gt::detail::parked;

namespace {

constexpr std::int64_t ns_per_ms = 1'000'000;

// A poll-style timeout in ms (negative: none) as a deadline.
std::int64_t deadline_in_ms(int timeout_ms) noexcept {
    if (timeout_ms < 0) return parked::no_deadline;
    const timespec d{timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * ns_per_ms};
    return parked::deadline_after(d);
}

// True if `t` (nullptr: no timeout) is a wait worth parking for; a zero or
// invalid timeout goes straight to the C library.
bool worth_parking(const timespec* t) noexcept { return t == nullptr || parked::positive(t); }

}  // namespace

extern "C" {

// The sleeps park on the scheduler's timer heap. They return 0 after the
// whole duration and write no remaining time: the kernel writes it only
// when a signal handler cut the sleep short, and a parked sleep is never
// cut short (the program's handlers run on whichever thread the signal
// interrupts; see the walkthrough).
int nanosleep(const timespec* duration, timespec* remaining) {
    if (parked::positive(duration)) {
        if (auto* s = parked::scheduler_for()) {
            parked::sleep_until(*s, parked::deadline_after(*duration));
            return 0;
        }
    }
    const hold_ticks hold;
    return real_nanosleep.get()(duration, remaining);
}

// CLOCK_MONOTONIC and CLOCK_REALTIME, relative or absolute. An absolute
// CLOCK_REALTIME time is turned into a CLOCK_MONOTONIC deadline when the
// call is made: a later change of the wall clock (clock_settime, a leap)
// does not move it, where the kernel's sleep would follow the clock.
int clock_nanosleep(clockid_t clock, int flags, const timespec* time, timespec* remaining) {
    const bool absolute = flags == TIMER_ABSTIME;
    if ((clock == CLOCK_MONOTONIC || clock == CLOCK_REALTIME) && (flags == 0 || absolute) &&
        parked::positive(time)) {
        if (auto* s = parked::scheduler_for()) {
            std::int64_t deadline = 0;
            if (!absolute) {
                deadline = parked::deadline_after(*time);
            } else {
                timespec now;
                ::clock_gettime(clock, &now);  // the wall clock first: the deadline errs late, never early
                // The time left as a timespec, which deadline_after
                // saturates: in nanoseconds, a time centuries ahead (tv_sec
                // = LONG_MAX, "never") would overflow and end the sleep at once.
                timespec left{time->tv_sec - now.tv_sec, time->tv_nsec - now.tv_nsec};
                if (left.tv_nsec < 0) {
                    left.tv_nsec += 1'000'000'000;
                    --left.tv_sec;
                }
                if (left.tv_sec < 0 || (left.tv_sec == 0 && left.tv_nsec == 0)) return 0;
                deadline = parked::deadline_after(left);
            }
            parked::sleep_until(*s, deadline);
            return 0;
        }
    }
    const hold_ticks hold;
    return real_clock_nanosleep_.get()(clock, flags, time, remaining);
}

// glibc's sleep and usleep call nanosleep inside libc, not through the
// symbol table, so they need their own wrappers.
unsigned int sleep(unsigned int seconds) {
    if (seconds != 0) {
        if (auto* s = parked::scheduler_for()) {
            parked::sleep_until(*s, parked::deadline_after({static_cast<time_t>(seconds), 0}));
            return 0;  // no seconds left
        }
    }
    const hold_ticks hold;
    return real_sleep.get()(seconds);
}

int usleep(useconds_t microseconds) {
    if (microseconds != 0) {
        if (auto* s = parked::scheduler_for()) {
            const timespec d{static_cast<time_t>(microseconds / 1'000'000),
                             static_cast<long>(microseconds % 1'000'000) * 1000};
            parked::sleep_until(*s, parked::deadline_after(d));
            return 0;
        }
    }
    const hold_ticks hold;
    return real_usleep.get()(microseconds);
}

// The waits for descriptors park in the scheduler's poller and return what
// the real call returns with a zero timeout once a descriptor is ready, or
// at the deadline (parked_calls.hpp). A zero timeout goes straight to the
// C library.
int poll(pollfd* fds, nfds_t count, int timeout_ms) {
    if (timeout_ms != 0) {
        if (auto* s = parked::scheduler_for()) {
            return parked::poll(*s, fds, count, deadline_in_ms(timeout_ms), nullptr, real_ppoll.get());
        }
    }
    const hold_ticks hold;
    return real_poll.get()(fds, count, timeout_ms);
}

// With a mask that unblocks a signal the thread has blocked, ppoll is the
// program's race-free wait for that signal: it waits in the kernel, as
// before, since a parked thread cannot take the mask along.
int ppoll(pollfd* fds, nfds_t count, const timespec* timeout, const sigset_t* mask) {
    if (worth_parking(timeout)) {
        if (auto* s = parked::scheduler_for(mask)) {
            const std::int64_t deadline = timeout == nullptr ? parked::no_deadline : parked::deadline_after(*timeout);
            return parked::poll(*s, fds, count, deadline, mask, real_ppoll.get());
        }
    }
    const hold_ticks hold;
    sigset_t copy;
    return real_ppoll.get()(fds, count, timeout, with_ticks_held(mask, copy, hold));
}

// Linux's select writes the time left into `timeout`; so does the parked
// one (0 when it timed out).
int select(int count, fd_set* readable, fd_set* writable, fd_set* exceptional, timeval* timeout) {
    timespec limit{};
    const bool valid = timeout == nullptr || (timeout->tv_sec >= 0 && timeout->tv_usec >= 0);
    if (timeout != nullptr && valid) {
        limit = {static_cast<time_t>(timeout->tv_sec + timeout->tv_usec / 1'000'000),
                 static_cast<long>(timeout->tv_usec % 1'000'000) * 1000};
    }
    if (valid && worth_parking(timeout == nullptr ? nullptr : &limit)) {
        if (auto* s = parked::scheduler_for()) {
            const std::int64_t deadline = timeout == nullptr ? parked::no_deadline : parked::deadline_after(limit);
            const int result = parked::select(*s, count, readable, writable, exceptional, deadline, nullptr,
                                              real_pselect.get());
            if (timeout != nullptr) {
                const std::int64_t left = std::max<std::int64_t>(0, deadline - gt::detail::monotonic_now_ns());
                timeout->tv_sec = static_cast<time_t>(left / 1'000'000'000);
                timeout->tv_usec = static_cast<suseconds_t>(left % 1'000'000'000 / 1000);
            }
            return result;
        }
    }
    const hold_ticks hold;
    return real_select.get()(count, readable, writable, exceptional, timeout);
}

int pselect(int count, fd_set* readable, fd_set* writable, fd_set* exceptional, const timespec* timeout,
            const sigset_t* mask) {
    if (worth_parking(timeout)) {
        if (auto* s = parked::scheduler_for(mask)) {
            const std::int64_t deadline = timeout == nullptr ? parked::no_deadline : parked::deadline_after(*timeout);
            return parked::select(*s, count, readable, writable, exceptional, deadline, mask, real_pselect.get());
        }
    }
    const hold_ticks hold;
    sigset_t copy;
    return real_pselect.get()(count, readable, writable, exceptional, timeout, with_ticks_held(mask, copy, hold));
}

int epoll_wait(int epoll, epoll_event* events, int capacity, int timeout_ms) {
    if (timeout_ms != 0) {
        if (auto* s = parked::scheduler_for()) {
            return parked::epoll_wait(*s, epoll, events, capacity, deadline_in_ms(timeout_ms), nullptr,
                                      real_epoll_pwait.get());
        }
    }
    const hold_ticks hold;
    return real_epoll_wait.get()(epoll, events, capacity, timeout_ms);
}

int epoll_pwait(int epoll, epoll_event* events, int capacity, int timeout_ms, const sigset_t* mask) {
    if (timeout_ms != 0) {
        if (auto* s = parked::scheduler_for(mask)) {
            return parked::epoll_wait(*s, epoll, events, capacity, deadline_in_ms(timeout_ms), mask,
                                      real_epoll_pwait.get());
        }
    }
    const hold_ticks hold;
    sigset_t copy;
    return real_epoll_pwait.get()(epoll, events, capacity, timeout_ms, with_ticks_held(mask, copy, hold));
}

// pause and sigsuspend wait for a signal: a tick must not count as one.
// They keep the OS thread: the signal they wait for is delivered to the OS
// thread, and its handler runs on whichever green thread runs then; a
// parked thread would not learn that it ran.
int pause() {
    const hold_ticks hold;
    return real_pause.get()();
}

int sigsuspend(const sigset_t* mask) {
    const hold_ticks hold;
    sigset_t copy;
    return real_sigsuspend.get()(with_ticks_held(mask, copy, hold));
}

// The program sets its signal mask: what it sets, SIGALRM aside, is the
// mask its threads normally run with from now on
// (preempt::signal_mask_changed).
int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
    return set_program_mask(real_pthread_sigmask_.get(), how, set, old);
}

int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
    return set_program_mask(real_sigprocmask.get(), how, set, old);
}

}  // extern "C"
