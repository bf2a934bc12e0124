// The waiting calls parked on a green thread. Every wait for descriptors
// has the same shape: the real call with a zero timeout first (already
// ready, or an error in the arguments: done, no epoll needed); then the
// thread waits until one descriptor, an epoll instance, is readable in the
// scheduler's poller, and asks the real call again. The poller's readiness
// token of that descriptor is cleared before each zero-timeout call, so an
// event that arrives after the call looked sets it again and none is lost.
#include "parked_calls.hpp"

#include <gt/io.hpp>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>

#include "poller.hpp"
#include "preempt.hpp"
#include "scheduler.hpp"
#include "syscalls.hpp"

namespace gt::detail::parked {

static_assert(no_deadline == scheduler::no_deadline);

namespace {

constexpr std::int64_t ns_per_s = 1'000'000'000;

// Signals 1-64 of a sigset_t (the kernel's mask; glibc's type is larger).
std::uint64_t low_word(const sigset_t& set) noexcept {
    std::uint64_t word;
    std::memcpy(&word, &set, sizeof word);
    return word;
}

std::int64_t add_saturating(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t sum;
    return __builtin_add_overflow(a, b, &sum) || sum >= no_deadline ? no_deadline - 1 : sum;
}

// What is left until `deadline_ns`, for a wait in the kernel: nullptr (no
// timeout) for no_deadline, else `ts` set to the time left (0 if passed).
const timespec* time_left(std::int64_t deadline_ns, timespec& ts) noexcept {
    if (deadline_ns == no_deadline) return nullptr;
    std::int64_t left = deadline_ns - monotonic_now_ns();
    if (left < 0) left = 0;
    ts = {static_cast<time_t>(left / ns_per_s), static_cast<long>(left % ns_per_s)};
    return &ts;
}

// `mask` with SIGALRM added if `hold` blocked it (nullptr stays nullptr).
const sigset_t* with_ticks_held(const sigset_t* mask, sigset_t& copy, const preempt::hold_ticks& hold) noexcept {
    if (mask == nullptr) return nullptr;
    copy = *mask;
    hold.add_to(copy);
    return &copy;
}

// An epoll instance of the call's own, closed through the close(2) wrapper
// (io.cpp) so that the poller forgets it.
class temporary_epoll {
public:
    temporary_epoll() noexcept : fd_(::epoll_create1(EPOLL_CLOEXEC)) {}
    ~temporary_epoll() {
        if (fd_ >= 0) ::close(fd_);
    }
    temporary_epoll(const temporary_epoll&) = delete;
    temporary_epoll& operator=(const temporary_epoll&) = delete;

    int fd() const noexcept { return fd_; }

    // Watches `fd` for `events`, level-triggered (the level is what the
    // zero-timeout call looks at). True if watched, or if epoll refuses the
    // file (EPERM: a regular file, which poll and select report ready for
    // reading and writing at once, so the first zero-timeout call has
    // returned it already; it never gets the other events).
    bool add(int fd, std::uint32_t events) noexcept {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        if (::epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &ev) == 0) {
            ++watched_;
            return true;
        }
        return errno == EPERM;
    }
    // Adds `events` to those of `fd`, which add() already watches.
    bool add_more(int fd, std::uint32_t events) noexcept {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        return ::epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &ev) == 0;
    }
    int watched() const noexcept { return watched_; }

private:
    int fd_;
    int watched_ = 0;
};

// Calls `call` (a real call with a zero timeout) again while it fails with
// EINTR: with a signal pending, poll and select fail so even when they do
// not wait (fs/select.c checks signal_pending before it returns "nothing
// ready"), and a tick is a signal. A handler of the program's that ran here
// cannot end the parked call either (see the walkthrough).
template <typename Call>
int retrying(Call call) noexcept {
    int result;
    do {
        result = call();
    } while (result < 0 && errno == EINTR);
    return result;
}

// Why a wait for descriptors stopped.
enum class outcome { ready, timed_out, cannot_wait };

// Parks the running thread until `check()` (the real call with a zero
// timeout) returns non-zero, `epoll` being readable whenever it may; at
// the deadline, `check()` runs once more, as the kernel's own wait looks
// once more when its timer fires. `result` is check()'s last value.
// cannot_wait: the poller cannot watch `epoll` (its epoll_ctl failed: too
// deep a nesting of epoll instances, the watch limit...), or it was closed
// meanwhile by another thread of the program.
template <typename Check>
outcome wait_until_ready(scheduler& s, int epoll, fd_kind kind, std::int64_t deadline_ns, Check check,
                         int& result) noexcept {
    fd_state* st = nullptr;
    {
        const scheduler::critical_section cs(s);
        st = s.poller().state_for(epoll, kind);
    }
    if (st == nullptr || st->kind == fd_kind::always_ready) return outcome::cannot_wait;
    const std::uint32_t generation = st->generation;
    for (;;) {
        st->readable = false;  // before the check: an event from here on sets it again
        result = check();
        if (result != 0) return outcome::ready;
        const int waited = deadline_ns == no_deadline
                               ? gt::io::wait_readable(epoll)
                               : gt::io::wait_readable(epoll, gt::io::deadline(std::chrono::nanoseconds(deadline_ns)));
        if (waited != 0) {
            if (errno != ETIMEDOUT || st->generation != generation) return outcome::cannot_wait;
            result = check();
            return result != 0 ? outcome::ready : outcome::timed_out;
        }
    }
}

}  // namespace

scheduler* scheduler_for(const sigset_t* call_mask) noexcept {
    scheduler* s = scheduler::current_if_any();
    if (s == nullptr || s->in_critical_section()) return nullptr;
    sigset_t now;
    if (syscalls::real_pthread_sigmask(SIG_BLOCK, nullptr, &now) != 0) return nullptr;
    if (preempt::this_os_thread_ticks() && sigismember(&now, SIGALRM) == 1) return nullptr;
    if (preempt::blocks_more_than_normal(now)) return nullptr;
    const std::uint64_t sigalrm_bit = std::uint64_t{1} << (SIGALRM - 1);
    if (call_mask != nullptr && (low_word(now) & ~low_word(*call_mask) & ~sigalrm_bit) != 0) return nullptr;
    return s;
}

std::int64_t deadline_after(const timespec& duration) noexcept {
    std::int64_t ns;
    if (__builtin_mul_overflow(static_cast<std::int64_t>(duration.tv_sec), ns_per_s, &ns)) return no_deadline - 1;
    return add_saturating(monotonic_now_ns(), add_saturating(ns, duration.tv_nsec));
}

bool positive(const timespec* t) noexcept {
    return t != nullptr && t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < ns_per_s &&
           (t->tv_sec != 0 || t->tv_nsec != 0);
}

void sleep_until(scheduler& s, std::int64_t deadline_ns) noexcept {
    const int saved_errno = errno;  // the threads that run meanwhile share it
    s.sleep_until(deadline_ns);
    errno = saved_errno;
}

int poll(scheduler& s, pollfd* fds, nfds_t count, std::int64_t deadline_ns, const sigset_t* mask,
         ppoll_function real) noexcept {
    const int saved_errno = errno;
    const timespec zero{0, 0};
    const auto check = [&] { return retrying([&] { return real(fds, count, &zero, nullptr); }); };
    int result = check();
    if (result != 0) return result;  // ready, or an error in the arguments
    // The events poll(2) takes have the values of their EPOLL namesakes
    // (EPOLLIN == POLLIN...); hang-ups and errors are reported either way.
    constexpr std::uint32_t poll_events =
        POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLWRBAND | POLLMSG | POLLRDHUP;
    outcome how = outcome::cannot_wait;
    {
        temporary_epoll set;
        bool watched = set.fd() >= 0;
        for (nfds_t i = 0; watched && i < count; ++i) {
            if (fds[i].fd < 0) continue;  // poll ignores it
            std::uint32_t events = static_cast<std::uint16_t>(fds[i].events) & poll_events;
            watched = set.add(fds[i].fd, events);
            if (!watched && errno == EEXIST) {  // listed twice: watch for what all its entries ask
                for (nfds_t j = 0; j < i; ++j) {
                    if (fds[j].fd == fds[i].fd) events |= static_cast<std::uint16_t>(fds[j].events) & poll_events;
                }
                watched = set.add_more(fds[i].fd, events);
            }
        }
        if (watched && set.watched() == 0) {  // nothing that can become ready: a sleep
            sleep_until(s, deadline_ns);
            result = check();
            how = outcome::ready;
        } else if (watched) {
            how = wait_until_ready(s, set.fd(), fd_kind::message, deadline_ns, check, result);
        }
    }
    if (how == outcome::cannot_wait) {  // in the kernel for the rest of its time, as before
        const preempt::hold_ticks hold;
        timespec left;
        sigset_t copy;
        result = real(fds, count, time_left(deadline_ns, left), with_ticks_held(mask, copy, hold));
    }
    if (result >= 0) errno = saved_errno;
    return result;
}

int select(scheduler& s, int count, fd_set* readable, fd_set* writable, fd_set* exceptional,
           std::int64_t deadline_ns, const sigset_t* mask, pselect_function real) noexcept {
    const int saved_errno = errno;
    const timespec zero{0, 0};
    if (count > FD_SETSIZE) {  // sets larger than fd_set: left to the kernel
        const preempt::hold_ticks hold;
        timespec left;
        sigset_t copy;
        return real(count, readable, writable, exceptional, time_left(deadline_ns, left),
                    with_ticks_held(mask, copy, hold));
    }
    // The kernel reads and writes the first `count` bits of each set, in
    // whole longs; every zero-timeout call starts from the caller's sets.
    fd_set asked[3];
    fd_set* sets[3] = {readable, writable, exceptional};
    const std::size_t bytes = count <= 0 ? 0 : (static_cast<std::size_t>(count) + 63) / 64 * 8;
    for (int k = 0; k < 3; ++k) {
        if (sets[k] != nullptr) std::memcpy(&asked[k], sets[k], bytes);
    }
    const auto check = [&] {
        for (int k = 0; k < 3; ++k) {
            if (sets[k] != nullptr) std::memcpy(sets[k], &asked[k], bytes);
        }
        return retrying([&] { return real(count, readable, writable, exceptional, &zero, nullptr); });
    };
    int result = retrying([&] { return real(count, readable, writable, exceptional, &zero, nullptr); });
    if (result != 0) return result;
    // select(2)'s sets in epoll's terms (the kernel's POLLIN_SET,
    // POLLOUT_SET and POLLEX_SET in fs/select.c); hang-ups and errors are
    // reported to epoll either way, and count as readable to select.
    constexpr std::uint32_t in_set = EPOLLIN | EPOLLRDNORM | EPOLLRDBAND;
    constexpr std::uint32_t out_set = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
    const auto member = [&](int k, int fd) {
        const auto* bits = reinterpret_cast<const unsigned char*>(&asked[k]);
        return sets[k] != nullptr && (bits[fd / 8] >> (fd % 8) & 1) != 0;
    };
    outcome how = outcome::cannot_wait;
    {
        temporary_epoll set;
        bool watched = set.fd() >= 0;
        for (int fd = 0; watched && fd < count; ++fd) {
            const std::uint32_t events =
                (member(0, fd) ? in_set : 0) | (member(1, fd) ? out_set : 0) | (member(2, fd) ? std::uint32_t{EPOLLPRI} : 0);
            if (events != 0) watched = set.add(fd, events);
        }
        if (watched && set.watched() == 0) {  // no descriptors: select as a sleep
            sleep_until(s, deadline_ns);
            result = check();
            how = outcome::ready;
        } else if (watched) {
            how = wait_until_ready(s, set.fd(), fd_kind::message, deadline_ns, check, result);
        }
    }
    if (how == outcome::cannot_wait) {
        for (int k = 0; k < 3; ++k) {
            if (sets[k] != nullptr) std::memcpy(sets[k], &asked[k], bytes);
        }
        const preempt::hold_ticks hold;
        timespec left;
        sigset_t copy;
        result = real(count, readable, writable, exceptional, time_left(deadline_ns, left),
                      with_ticks_held(mask, copy, hold));
    }
    if (result >= 0) errno = saved_errno;
    return result;
}

int epoll_wait(scheduler& s, int epoll, epoll_event* events, int capacity, std::int64_t deadline_ns,
               const sigset_t* mask, epoll_pwait_function real) noexcept {
    const int saved_errno = errno;
    const auto check = [&] { return retrying([&] { return real(epoll, events, capacity, 0, nullptr); }); };
    int result = check();
    if (result != 0) return result;
    // The program's epoll descriptor joins the scheduler's epoll set and
    // stays there until closed; its kind is known (no fstat, and no
    // O_NONBLOCK, which epoll_wait ignores anyway).
    const outcome how = wait_until_ready(s, epoll, fd_kind::message, deadline_ns, check, result);
    if (how == outcome::cannot_wait) {
        const preempt::hold_ticks hold;
        sigset_t copy;
        int timeout_ms = -1;
        if (deadline_ns != no_deadline) {
            const std::int64_t left = deadline_ns - monotonic_now_ns();
            const std::int64_t ms = left <= 0 ? 0 : (left + 999'999) / 1'000'000;  // rounded up, as the kernel does
            timeout_ms = ms > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max() : static_cast<int>(ms);
        }
        result = real(epoll, events, capacity, timeout_ms, with_ticks_held(mask, copy, hold));
    }
    if (result >= 0) errno = saved_errno;
    return result;
}

}  // namespace gt::detail::parked
