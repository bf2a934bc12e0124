// The poller's work: registering a descriptor once, edge-triggered, and
// turning epoll's events into wakeups of the threads on the descriptor's
// wait queues.
#include "poller.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <iterator>
#include <limits>
#include <mutex>

#include "scheduler.hpp"
#include "syscalls.hpp"

namespace gt::detail {

namespace {

// Events for reading: data, the peer's shutdown of its writing side
// (EPOLLRDHUP: read sees EOF), a hang-up or an error; for writing: room,
// a hang-up or an error. Errors are never read from the event: the next
// system call returns them (ECONNRESET, EPIPE, EOF), as in Seastar.
constexpr std::uint32_t read_events = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr std::uint32_t write_events = EPOLLOUT | EPOLLHUP | EPOLLERR;

// Registered once, for both directions, edge-triggered: no epoll_ctl per
// operation (as Go; libuv's level-triggered loop modifies interest as it
// changes), and a hang-up reported once cannot make the poller spin. The
// event's data is the descriptor and its generation. epoll_ctl's result.
int watch(int epoll, const fd_state& st, int op) noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = static_cast<std::uint32_t>(st.fd) | std::uint64_t{st.generation} << 32;
    return ::epoll_ctl(epoll, op, st.fd, &ev);
}

fd_kind kind_of(int fd, const struct stat& info, int flags) noexcept {
    if (S_ISREG(info.st_mode) || S_ISDIR(info.st_mode) || S_ISBLK(info.st_mode)) return fd_kind::always_ready;
    // A pipe returns what is queued, up to the buffer's size, so a short
    // read emptied it; one opened with O_DIRECT is a packet pipe
    // (pipe(7)), one packet per read.
    if (S_ISFIFO(info.st_mode)) return (flags & O_DIRECT) != 0 ? fd_kind::message : fd_kind::stream;
    if (S_ISSOCK(info.st_mode)) {
        int type = 0, domain = 0;
        socklen_t size = sizeof type;
        ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size);
        size = sizeof domain;
        ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size);
        // TCP only: a Unix stream socket's read stops short where a message
        // with other credentials or passed descriptors (SCM_RIGHTS) begins.
        if (type == SOCK_STREAM && (domain == AF_INET || domain == AF_INET6)) return fd_kind::stream;
    }
    // Datagram sockets return one message per read, ttys in packet mode
    // less than is queued, eventfd and timerfd fixed sizes: for them a
    // short read says nothing about what is left (libuv's uv__read notes
    // the tty case), and only EAGAIN clears the token.
    return fd_kind::message;
}

// epoll_pwait2(2), or on a kernel older than 5.11 (ENOSYS) epoll_pwait
// with the timeout rounded up to whole milliseconds: a wait may end up to
// 1 ms late there, never early.
int wait_for_events(int epoll, epoll_event* events, int capacity, const timespec* timeout,
                    const sigset_t* mask) noexcept {
    static constinit std::atomic<bool> have_pwait2{true};
    if (have_pwait2.load(std::memory_order_relaxed)) {
        const int n = ::epoll_pwait2(epoll, events, capacity, timeout, mask);
        if (n >= 0 || errno != ENOSYS) return n;
        have_pwait2.store(false, std::memory_order_relaxed);
    }
    int ms = -1;
    if (timeout != nullptr) {
        const std::int64_t ns = std::int64_t{timeout->tv_sec} * 1'000'000'000 + timeout->tv_nsec;
        ms = static_cast<int>(std::min<std::int64_t>((ns + 999'999) / 1'000'000, std::numeric_limits<int>::max()));
    }
    return syscalls::real_epoll_pwait(epoll, events, capacity, ms, mask);
}

void wake_all(scheduler& s, wait_queue& q, poller_stats& stats) noexcept {
    while (q.head != nullptr) {
        s.wake(q.head, wake_reason::notified);
        ++stats.wakeups;
    }
}

}  // namespace

poller::~poller() {
    if (epoll_ >= 0) syscalls::real_close(epoll_);  // the close wrapper refuses it (io.cpp)
}

int poller::epoll_fd() noexcept {
    if (epoll_ < 0) {
        static std::once_flag once;
        std::call_once(once, [] {
            ::pthread_atfork(nullptr, nullptr, [] {
                if (scheduler* s = scheduler::current_if_any()) s->poller().restart_after_fork();
            });
        });
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    }
    return epoll_;
}

void poller::restart_after_fork() noexcept {
    if (epoll_ < 0) return;
    syscalls::real_close(epoll_);
    epoll_ = -1;
    if (epoll_fd() < 0) return;
    for (const std::unique_ptr<fd_state>& st : table_) {
        if (st == nullptr || !st->registered) continue;
        st->registered = watch(epoll_, *st, EPOLL_CTL_ADD) == 0;
        st->readable = st->writable = true;  // edges before the fork went to the parent's instance
    }
}

fd_state* poller::state_for(int fd, fd_kind known) noexcept {
    // A number beyond the table is checked before the table grows to it: a
    // stray number (read(1 << 30, ...)) fails with EBADF instead of
    // allocating a slot for every number below it.
    if (fd < 0 || (static_cast<std::size_t>(fd) >= table_.size() && ::fcntl(fd, F_GETFD) < 0)) {
        errno = EBADF;
        return nullptr;
    }
    if (static_cast<std::size_t>(fd) >= table_.size()) table_.resize(static_cast<std::size_t>(fd) + 1);
    std::unique_ptr<fd_state>& slot = table_[static_cast<std::size_t>(fd)];
    if (slot == nullptr) slot = std::make_unique<fd_state>(fd);
    fd_state& st = *slot;
    if (st.kind != fd_kind::unknown) return &st;

    st.readable = st.writable = true;  // until a call finds otherwise
    st.read_closed = false;
    if (known != fd_kind::unknown) {
        st.kind = known;
    } else {
        struct stat info;
        const int flags = ::fcntl(fd, F_GETFL);
        if (flags < 0 || ::fstat(fd, &info) != 0) return nullptr;  // EBADF
        st.kind = kind_of(fd, info, flags);
        if (st.kind == fd_kind::always_ready) return &st;
        if ((flags & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
            st.kind = fd_kind::unknown;
            return nullptr;
        }
    }
    if (epoll_fd() < 0) {
        st.kind = fd_kind::unknown;
        return nullptr;
    }
    if (watch(epoll_, st, EPOLL_CTL_ADD) != 0) {
        if (errno == EPERM) {  // a file epoll cannot watch (epoll_ctl(2)): always ready
            st.kind = fd_kind::always_ready;
            return &st;
        }
        if (errno != EEXIST) {  // EEXIST: a dup2'd number gt knew, still in the set
            st.kind = fd_kind::unknown;
            return nullptr;
        }
        watch(epoll_, st, EPOLL_CTL_MOD);
    }
    st.registered = true;
    return &st;
}

void poller::forget(scheduler& s, int fd) noexcept {
    fd_state* st = find(fd);
    if (st == nullptr || st->kind == fd_kind::unknown) return;
    // Go's pollUnblock before the real close: the waiters learn of the
    // close (EBADF) and never retry, since the number may be reused at once.
    ++st->generation;
    wake_all(s, st->readers, stats_);
    wake_all(s, st->writers, stats_);
    // Removed by hand: the set holds the open file description, which a
    // dup of the descriptor keeps alive after close (epoll(7), "Questions
    // and answers" 6).
    if (st->registered) ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    st->registered = false;
    st->kind = fd_kind::unknown;
    st->readable = st->writable = true;
}

int poller::poll(scheduler& s, std::int64_t deadline_ns, const sigset_t* mask) noexcept {
    if (epoll_fd() < 0) return 0;
    timespec timeout{0, 0};
    const timespec* wait = &timeout;
    if (deadline_ns == scheduler::no_deadline) {
        wait = nullptr;
    } else if (deadline_ns != 0) {
        const std::int64_t left = deadline_ns - monotonic_now_ns();
        if (left > 0)
            timeout = {static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    }
    if (wait == nullptr || timeout.tv_sec != 0 || timeout.tv_nsec != 0) ++stats_.idle_waits;
    ++stats_.polls;
    // epoll_pwait2 (Linux 5.11) takes the timeout in ns where epoll_wait
    // rounds to ms, and the mask for exactly the wait.
    const int n = wait_for_events(epoll_, events_, static_cast<int>(std::size(events_)), wait, mask);
    if (n <= 0) return 0;  // EINTR: a signal of the program's; the caller loops
    stats_.events += static_cast<std::uint64_t>(n);
    for (int i = 0; i < n; ++i) {
        const auto fd = static_cast<int>(events_[i].data.u64 & 0xffff'ffff);
        const auto generation = static_cast<std::uint32_t>(events_[i].data.u64 >> 32);
        fd_state* st = find(fd);
        if (st == nullptr || st->generation != generation || !st->registered) {
            ++stats_.stale_events;  // for an earlier use of the number
            continue;
        }
        if ((events_[i].events & read_events) != 0) {
            st->readable = true;
            if ((events_[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) st->read_closed = true;
            wake_all(s, st->readers, stats_);
        }
        if ((events_[i].events & write_events) != 0) {
            st->writable = true;
            wake_all(s, st->writers, stats_);
        }
    }
    return n;
}

}  // namespace gt::detail
