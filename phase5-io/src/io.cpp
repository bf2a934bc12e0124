// gt::io: POSIX-shaped calls that block only the calling green thread.
// Each one registers the descriptor with the scheduler's poller on first
// use, then tries the non-blocking system call whenever the descriptor's
// readiness token says it may make progress, and otherwise blocks on the
// descriptor's wait queue until the poller sets the token again.
#include "gt/io.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <vector>

#include "poller.hpp"
#include "scheduler.hpp"
#include "syscalls.hpp"

namespace gt::io {

namespace {

using detail::fd_kind;
using detail::fd_state;
using detail::scheduler;

enum class direction { read, write };

std::int64_t to_ns(deadline until) noexcept {
    if (until == deadline::max()) return scheduler::no_deadline;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count();
    return ns < 0 ? 0 : ns;  // long past (time_point::min()): a deadline that has passed
}

// The state of `fd`, registered on first use; nullptr with errno set.
// `generation`: the descriptor's generation, read in the same critical
// section, which names this use of the number for the rest of the call: a
// close from here on (by a thread that ran when this section ended, say)
// fails the call with EBADF instead of letting it go on with whatever file
// reuses the number.
fd_state* state_of(scheduler& s, int fd, fd_kind known = fd_kind::unknown,
                   std::uint32_t* generation = nullptr) noexcept {
    s.check_not_reentered();
    int error = 0;
    fd_state* st = nullptr;
    {
        const scheduler::critical_section cs(s);
        st = s.poller().state_for(fd, known);
        if (st == nullptr) error = errno;
        if (st != nullptr && generation != nullptr) *generation = st->generation;
    }  // the section's end may switch threads, which share errno: set it after
    if (st == nullptr) errno = error;
    return st;
}

// Returns 0 at once if `st`'s token for `dir` is set; else blocks the
// running thread on the descriptor's wait queue until the poller sets it
// (0), the descriptor is closed (EBADF) or the deadline passes (ETIMEDOUT);
// -1 with errno then. `generation`: state_of's; a descriptor closed since
// fails with EBADF at once.
int await(scheduler& s, fd_state& st, direction dir, std::int64_t deadline_ns, std::uint32_t generation) noexcept {
    s.check_not_reentered();
    int error = 0;
    {
        const scheduler::critical_section cs(s);
        if (st.generation != generation) {
            error = EBADF;  // closed since the call began: the number may already name another file
        } else if (dir == direction::read ? st.readable : st.writable) {
            // Checked inside the section: an edge the poller takes from
            // here on wakes this thread, and one it took before set the token.
            return 0;
        } else {
            detail::control_block* self = s.running();
            self->waiting_fd = st.fd;
            s.poller().waiter_added();
            const detail::wake_reason why =
                s.block(dir == direction::read ? st.readers : st.writers, deadline_ns);
            s.poller().waiter_removed();
            self->waiting_fd = -1;
            if (st.generation != generation) {
                error = EBADF;  // closed while it waited
            } else if (why == detail::wake_reason::timeout) {
                error = ETIMEDOUT;
            }
        }
    }
    if (error == 0) return 0;
    errno = error;
    return -1;
}

// One non-blocking system call on `st`'s descriptor, `call()`: the token
// of `dir` is cleared just before it and set again after it if
// `keep(result)` says the descriptor may have more (errno is the call's),
// all inside one critical section. So no other thread can close the
// descriptor between the generation check and the call (the call would go
// to the file that reuses the number: blocking, not in the epoll set), and
// none can find the token clear while it is only cleared for this call
// (it would wait for an edge that may never come: the data or connection
// that this call left queued raised its edge already). -1/EBADF without
// the call if the descriptor was closed since `generation`.
template <typename Call, typename Keep>
auto attempt(scheduler& s, fd_state& st, direction dir, std::uint32_t generation, Call call, Keep keep) {
    decltype(call()) result = -1;
    int error = EBADF;
    {
        const scheduler::critical_section cs(s);
        if (st.generation == generation) {
            bool& token = dir == direction::read ? st.readable : st.writable;
            token = false;
            result = call();
            error = errno;
            if (keep(result)) token = true;
        }
    }  // the section's end may switch threads, which share errno: set it after
    errno = error;
    return result;
}

bool drained(int error) noexcept { return error == EAGAIN || error == EWOULDBLOCK; }

// The read side: `call()` is one non-blocking read-like system call that
// asks for `wanted` bytes. `consumes`: false for a call that leaves what it
// reads queued (MSG_PEEK), whose short result drains nothing.
template <typename Call>
ssize_t read_like(int fd, std::size_t wanted, std::int64_t deadline_ns, Call call, bool consumes = true) {
    scheduler& s = scheduler::current();
    std::uint32_t generation = 0;
    fd_state* st = state_of(s, fd, fd_kind::unknown, &generation);
    if (st == nullptr) return -1;
    // A read of 0 bytes from a stream returns 0 at once, as on a blocking
    // descriptor, whatever the token says (from a datagram socket it would
    // take a message, so it waits like any read).
    if (st->kind == fd_kind::always_ready || (wanted == 0 && st->kind == fd_kind::stream)) return call();
    for (;;) {
        if (await(s, *st, direction::read, deadline_ns, generation) != 0) return -1;
        // The token is cleared before the call: an edge that arrives from
        // here on sets it again, so the clear can lose none.
        const ssize_t n = attempt(s, *st, direction::read, generation, call, [&](ssize_t got) {
            // A short read from a stream drained it (the next read waits for
            // an edge instead of spending a system call on EAGAIN); anything
            // else may leave more to read: end of file, an error, a full
            // buffer, a peek, or a stream whose peer has shut down (the end
            // of file still to read came in the same edge as the data).
            if (got < 0) return !drained(errno);
            return got == 0 || static_cast<std::size_t>(got) == wanted || st->kind != fd_kind::stream ||
                   !consumes || st->read_closed;
        });
        if (n < 0 && drained(errno)) continue;  // drained: wait for the next edge
        return n;                               // -1/EBADF too: closed, the state is no longer its
    }
}

// The write side: `call(done)` is one non-blocking write-like system call
// of what is left after the first `done` of `total` bytes. Loops until
// everything is written, as a blocking write does.
template <typename Call>
ssize_t write_like(int fd, std::size_t total, std::int64_t deadline_ns, Call call) {
    scheduler& s = scheduler::current();
    std::uint32_t generation = 0;
    fd_state* st = state_of(s, fd, fd_kind::unknown, &generation);
    if (st == nullptr) return -1;
    if (total == 0 && st->kind == fd_kind::stream) return call(0);  // as read_like's 0 bytes
    std::size_t done = 0;
    do {
        if (st->kind != fd_kind::always_ready && await(s, *st, direction::write, deadline_ns, generation) != 0) {
            return done > 0 ? static_cast<ssize_t>(done) : -1;
        }
        const ssize_t n = attempt(
            s, *st, direction::write, generation, [&] { return call(done); },
            [&](ssize_t wrote) {
                // An error: the next call meets it too. A write that took
                // everything leaves room, probably; a partial one filled the
                // buffer, and the kernel's next edge says when there is room
                // again.
                if (wrote < 0) return !drained(errno);
                return done + static_cast<std::size_t>(wrote) == total || st->kind != fd_kind::stream;
            });
        if (n < 0) {
            if (drained(errno)) continue;  // full: wait for room
            return done > 0 ? static_cast<ssize_t>(done) : -1;
        }
        done += static_cast<std::size_t>(n);
    } while (done < total);
    return static_cast<ssize_t>(done);
}

// What is left of `iov` after its first `done` bytes, in `rest`.
const iovec* skip(const iovec* iov, int& iovcnt, std::size_t done, std::vector<iovec>& rest) {
    if (done == 0) return iov;
    rest.assign(iov, iov + iovcnt);
    std::size_t i = 0;
    while (i < rest.size() && done >= rest[i].iov_len) done -= rest[i++].iov_len;
    if (i < rest.size()) {
        rest[i].iov_base = static_cast<char*>(rest[i].iov_base) + done;
        rest[i].iov_len -= done;
    }
    iovcnt = static_cast<int>(rest.size() - i);
    return rest.data() + i;
}

std::size_t total_of(const iovec* iov, int iovcnt) noexcept {
    std::size_t total = 0;
    for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
    return total;
}

}  // namespace

ssize_t read(int fd, void* buffer, std::size_t count, deadline until) {
    return read_like(fd, count, to_ns(until), [&] { return ::read(fd, buffer, count); });
}
ssize_t read(int fd, void* buffer, std::size_t count) { return read(fd, buffer, count, deadline::max()); }

ssize_t readv(int fd, const iovec* iov, int iovcnt, deadline until) {
    return read_like(fd, total_of(iov, iovcnt), to_ns(until), [&] { return ::readv(fd, iov, iovcnt); });
}
ssize_t readv(int fd, const iovec* iov, int iovcnt) { return readv(fd, iov, iovcnt, deadline::max()); }

ssize_t recv(int fd, void* buffer, std::size_t count, int flags, deadline until) {
    const bool consumes = (flags & MSG_PEEK) == 0;
    if ((flags & MSG_WAITALL) == 0 || !consumes) {
        return read_like(
            fd, count, to_ns(until), [&] { return ::recv(fd, buffer, count, flags | MSG_DONTWAIT); }, consumes);
    }
    // MSG_WAITALL: the kernel cannot wait for all of it on a non-blocking
    // socket, so the green thread does, as recv(2) describes: until `count`
    // bytes, the end of the stream, an error, or the deadline (the bytes
    // received so far are returned if any).
    std::size_t done = 0;
    const int once = flags & ~MSG_WAITALL;
    while (done < count) {
        const ssize_t n = recv(fd, static_cast<char*>(buffer) + done, count - done, once, until);
        if (n < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return static_cast<ssize_t>(done);
}
ssize_t recv(int fd, void* buffer, std::size_t count, int flags) {
    return recv(fd, buffer, count, flags, deadline::max());
}

ssize_t write(int fd, const void* buffer, std::size_t count, deadline until) {
    return write_like(fd, count, to_ns(until), [&](std::size_t done) {
        return ::write(fd, static_cast<const char*>(buffer) + done, count - done);
    });
}
ssize_t write(int fd, const void* buffer, std::size_t count) {
    return write(fd, buffer, count, deadline::max());
}

ssize_t writev(int fd, const iovec* iov, int iovcnt, deadline until) {
    std::vector<iovec> rest;
    return write_like(fd, total_of(iov, iovcnt), to_ns(until), [&](std::size_t done) {
        int left = iovcnt;
        const iovec* from = skip(iov, left, done, rest);
        return ::writev(fd, from, left);
    });
}
ssize_t writev(int fd, const iovec* iov, int iovcnt) { return writev(fd, iov, iovcnt, deadline::max()); }

ssize_t send(int fd, const void* buffer, std::size_t count, int flags, deadline until) {
    return write_like(fd, count, to_ns(until), [&](std::size_t done) {
        return ::send(fd, static_cast<const char*>(buffer) + done, count - done, flags | MSG_DONTWAIT);
    });
}
ssize_t send(int fd, const void* buffer, std::size_t count, int flags) {
    return send(fd, buffer, count, flags, deadline::max());
}

int accept(int listener, sockaddr* address, socklen_t* length, deadline until) {
    scheduler& s = scheduler::current();
    std::uint32_t generation = 0;
    fd_state* st = state_of(s, listener, fd_kind::unknown, &generation);
    if (st == nullptr) return -1;
    const std::int64_t deadline_ns = to_ns(until);
    for (;;) {
        if (await(s, *st, direction::read, deadline_ns, generation) != 0) return -1;
        // Taken, or an error (EMFILE, ENFILE at the descriptor limit): the
        // backlog may hold more, and an edge-triggered poller sends no new
        // edge for connections already queued, so the token stays set.
        const int connection = attempt(
            s, *st, direction::read, generation,
            [&] { return ::accept4(listener, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC); },
            [](int c) { return c >= 0 || !drained(errno); });
        if (connection < 0 && drained(errno)) continue;  // the backlog is empty
        // Registered now, as the non-blocking socket accept4 made, of the
        // listener's kind: no system calls to find that out on its first
        // read.
        if (connection >= 0) {
            // A state gt still holds for this number belongs to a descriptor
            // closed where gt could not see it (fclose, close_range, another
            // OS thread): the new socket is not in the epoll set, so that
            // state is forgotten first, or its reads would wait forever.
            if (fd_state* old = s.poller().find(connection); old != nullptr && old->kind != fd_kind::unknown) {
                const scheduler::critical_section cs(s);
                s.poller().forget(s, connection);
            }
            state_of(s, connection, st->kind);
        }
        return connection;
    }
}
int accept(int listener, sockaddr* address, socklen_t* length) {
    return accept(listener, address, length, deadline::max());
}

int connect(int fd, const sockaddr* address, socklen_t length, deadline until) {
    scheduler& s = scheduler::current();
    std::uint32_t generation = 0;
    fd_state* st = state_of(s, fd, fd_kind::unknown, &generation);
    if (st == nullptr) return -1;
    if (st->kind == fd_kind::always_ready) return ::connect(fd, address, length);
    // The token stays clear while the handshake goes on (EINPROGRESS):
    // writable again once it ends, either way.
    if (attempt(
            s, *st, direction::write, generation, [&] { return ::connect(fd, address, length); },
            [](int r) { return r == 0 || errno != EINPROGRESS; }) == 0) {
        return 0;
    }
    if (errno != EINPROGRESS) return -1;
    if (await(s, *st, direction::write, to_ns(until), generation) != 0) return -1;
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) return -1;
    st->writable = true;
    if (error == 0) return 0;
    errno = error;
    return -1;
}
int connect(int fd, const sockaddr* address, socklen_t length) {
    return connect(fd, address, length, deadline::max());
}

namespace {

// Whether `fd` is ready for `dir` now (a zero-timeout poll(2), made with
// the system call itself: libc's poll is the program's, interposed): 1
// ready (or hung up, failed, not open: a call would return at once), 0 not.
int ready_now(int fd, direction dir) noexcept {
    pollfd p{fd, static_cast<short>(dir == direction::read ? POLLIN : POLLOUT), 0};
    const timespec zero{0, 0};
    long n;
    do {
        n = ::syscall(SYS_ppoll, &p, 1, &zero, nullptr, 0);
    } while (n < 0 && errno == EINTR);  // a tick pending: poll fails so even with a zero timeout
    return n == 0 ? 0 : 1;
}

// wait_readable and wait_writable. The caller makes the call itself, where
// gt cannot clear the token after it (a read that drains the descriptor,
// an EAGAIN), so a set token is checked against the level before it is
// trusted; else a loop of wait_readable and a read that fails with EAGAIN
// would spin, the token set for ever. Not ready: the token is cleared, in
// the same section as the look, and the thread waits for the next edge.
int wait_until_ready(int fd, direction dir, deadline until) {
    scheduler& s = scheduler::current();
    std::uint32_t generation = 0;
    fd_state* st = state_of(s, fd, fd_kind::unknown, &generation);
    if (st == nullptr) return -1;
    if (st->kind == fd_kind::always_ready) return 0;
    const std::int64_t deadline_ns = to_ns(until);
    for (;;) {
        if (await(s, *st, dir, deadline_ns, generation) != 0) return -1;
        const int ready = attempt(
            s, *st, dir, generation, [&] { return ready_now(fd, dir); }, [](int r) { return r != 0; });
        if (ready > 0) return 0;
        if (ready < 0) return -1;  // EBADF: closed meanwhile
    }
}

}  // namespace

int wait_readable(int fd, deadline until) { return wait_until_ready(fd, direction::read, until); }
int wait_readable(int fd) { return wait_readable(fd, deadline::max()); }
int wait_writable(int fd, deadline until) { return wait_until_ready(fd, direction::write, until); }
int wait_writable(int fd) { return wait_writable(fd, deadline::max()); }

int close(int fd) { return ::close(fd); }  // the wrapper below

poller_counters poller_stats() noexcept {
    const detail::poller_stats& stats = scheduler::current().poller().stats();
    return {stats.polls, stats.idle_waits, stats.events, stats.stale_events, stats.wakeups};
}

}  // namespace gt::io

// close(2) for the whole program, like the wrappers in syscalls.cpp (symbol
// interposition): a descriptor that the calling OS thread's poller knows is
// forgotten first, so that threads waiting on it wake with EBADF instead of
// sleeping forever on a number that the next open may reuse. It is linked
// into every program that uses gt::io (this file), and only there: no
// descriptor is in a poller otherwise. Async-signal-safe when called from
// a signal handler that interrupted the scheduler (it then only closes).
// The poller's own epoll descriptor is the runtime's, not the program's: a
// close of it (a loop that closes every number above 2, say) fails with
// EBADF, as for a number that is not open, instead of leaving the OS
// thread to spin in a poller whose epoll_pwait2 fails at once.
namespace {

// What close(2), dup2(2) and dup3(2) do before they close `fd`: the calling
// OS thread's poller forgets it, waking its waiters. False, with errno
// EBADF, for the poller's own epoll descriptor, which they may not close.
bool forget_closing(int fd) noexcept {
    using gt::detail::scheduler;
    scheduler* s = scheduler::current_if_any();
    if (s == nullptr) return true;
    if (fd >= 0 && fd == s->poller().epoll_fd_if_made()) {
        errno = EBADF;
        return false;
    }
    if (!s->in_critical_section() && s->poller().find(fd) != nullptr) {
        const scheduler::critical_section cs(*s);
        s->poller().forget(*s, fd);
    }
    return true;
}

}  // namespace

extern "C" int close(int fd) {
    if (!forget_closing(fd)) return -1;
    return gt::detail::syscalls::real_close(fd);
}

// dup2(2) and dup3(2) onto a number gt knows close that descriptor behind
// the poller's back: its state would say "registered" for a file that is
// not in the epoll set, and a read of the new file would wait for an edge
// that never comes. They forget it first, as close does, unless `fd` is
// not open (the call then fails with EBADF and closes nothing) or the two
// are the same number; the poller's own epoll descriptor is refused
// (EBADF), as by close.
extern "C" int dup3(int fd, int target, int flags) {
    if (fd != target && ::fcntl(fd, F_GETFD) >= 0 && !forget_closing(target)) return -1;
    return static_cast<int>(::syscall(SYS_dup3, fd, target, flags));
}

extern "C" int dup2(int fd, int target) {
    if (fd == target) return ::fcntl(fd, F_GETFD) < 0 ? -1 : target;  // dup2's rule; dup3 fails with EINVAL
    return dup3(fd, target, 0);
}
