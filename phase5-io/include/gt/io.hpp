// Blocking I/O for green threads: POSIX-shaped calls that block only the
// calling green thread. Swap ::read for gt::io::read and a thread-per-
// connection program becomes a green-thread-per-connection program.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>

/// Blocking I/O for green threads.
///
/// Every call behaves like its POSIX namesake on a blocking descriptor
/// (same arguments, same result, -1 and errno on failure), except that
/// while it waits, only the calling green thread is BLOCKED: it waits on
/// the descriptor's wait queue in the scheduler's poller (epoll,
/// edge-triggered), and the other green threads of its OS thread run.
///
/// The first call on a descriptor registers it: a socket, pipe, FIFO or
/// other descriptor epoll accepts is made non-blocking (O_NONBLOCK on its
/// open file description, which duplicates of it share, also in other
/// processes) and added to the poller; a regular file or directory, which
/// epoll refuses (epoll_ctl(2), EPERM), is "always ready": the call runs
/// directly and may keep the OS thread for as long as the disk takes.
///
/// Each call has an overload with a deadline on std::chrono::steady_clock:
/// when it passes before the call could complete, the call fails with
/// ETIMEDOUT (a write that has written part returns that count).
///
/// Close descriptors that gt has seen with gt::io::close (or plain
/// ::close, which gt intercepts): threads waiting on the descriptor wake
/// and fail with EBADF, and never touch the number again.
///
/// Thread safety: a descriptor belongs to the scheduler (OS thread) that
/// first used it; call these only from green threads of that OS thread.
/// Not async-signal-safe.
namespace gt::io {

/// A deadline for the calls' timed overloads.
using deadline = std::chrono::steady_clock::time_point;

/// read(2): reads up to `count` bytes into `buffer`. Returns the number
/// read (0 at end of file) or -1 with errno (read(2)'s errors; EBADF if the
/// descriptor is closed while the thread waits; ETIMEDOUT after the
/// deadline).
ssize_t read(int fd, void* buffer, std::size_t count);
/// read() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
ssize_t read(int fd, void* buffer, std::size_t count, deadline until);

/// write(2) as on a blocking descriptor: waits for room until all `count`
/// bytes are written, and returns `count`; returns the number written so
/// far if an error (or the deadline) stops it after some bytes, else -1
/// with errno (write(2)'s: EPIPE, ECONNRESET...; EBADF; ETIMEDOUT).
ssize_t write(int fd, const void* buffer, std::size_t count);
/// write() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
ssize_t write(int fd, const void* buffer, std::size_t count, deadline until);

/// readv(2): reads into `iovcnt` buffers; as read().
ssize_t readv(int fd, const iovec* iov, int iovcnt);
/// readv() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
ssize_t readv(int fd, const iovec* iov, int iovcnt, deadline until);

/// writev(2): writes every byte of `iovcnt` buffers; as write().
ssize_t writev(int fd, const iovec* iov, int iovcnt);
/// writev() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
ssize_t writev(int fd, const iovec* iov, int iovcnt, deadline until);

/// recv(2) on a socket, with recv's `flags`; as read(). With MSG_WAITALL
/// it waits until `count` bytes, the end of the stream, an error or the
/// deadline, and returns what it received if that is anything; with
/// MSG_PEEK the data stays queued.
ssize_t recv(int fd, void* buffer, std::size_t count, int flags);
/// recv() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
ssize_t recv(int fd, void* buffer, std::size_t count, int flags, deadline until);

/// send(2) on a socket, with send's `flags` (MSG_NOSIGNAL, MSG_MORE...);
/// as write().
ssize_t send(int fd, const void* buffer, std::size_t count, int flags);
/// send() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
ssize_t send(int fd, const void* buffer, std::size_t count, int flags, deadline until);

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC: waits for a connection on
/// listening socket `listener` and returns its descriptor, or -1 with
/// errno. At the descriptor limit it fails with EMFILE or ENFILE at once
/// (the connection stays queued, and the next call takes it once a
/// descriptor is free): back off before calling again.
int accept(int listener, sockaddr* address, socklen_t* length);
/// accept() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
int accept(int listener, sockaddr* address, socklen_t* length, deadline until);

/// connect(2) as on a blocking socket: returns 0 once connected, or -1
/// with errno (ECONNREFUSED, ENETUNREACH, ...; ETIMEDOUT at the deadline,
/// after which the socket is unusable, as after a failed connect).
int connect(int fd, const sockaddr* address, socklen_t length);
/// connect() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
int connect(int fd, const sockaddr* address, socklen_t length, deadline until);

/// close(2): wakes the threads waiting on `fd` (their call fails with
/// EBADF), removes it from the poller, and closes it. Returns 0, or -1
/// with close(2)'s errno.
int close(int fd);

/// Waits until `fd` is readable (data, end of file, an error or a
/// hang-up to read): 0, or -1 with errno (EBADF; ETIMEDOUT). For code that
/// makes its own calls on `fd`: readiness is checked against the level
/// (one zero-timeout poll(2)) before the call returns, so a loop of
/// wait_readable and the program's own non-blocking reads waits between
/// rounds instead of spinning.
int wait_readable(int fd);
/// wait_readable() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
int wait_readable(int fd, deadline until);

/// Waits until `fd` is writable (room, an error or a hang-up): 0, or -1
/// with errno (EBADF; ETIMEDOUT). Checked against the level, as
/// wait_readable.
int wait_writable(int fd);
/// wait_writable() with a deadline on std::chrono::steady_clock: fails with
/// ETIMEDOUT once `until` has passed.
int wait_writable(int fd, deadline until);

/// Owns a descriptor and closes it through gt::io::close, like a
/// std::unique_ptr: movable, not copyable.
class fd {
public:
    fd() noexcept = default;
    /// Takes ownership of `descriptor` (-1: owns nothing).
    explicit fd(int descriptor) noexcept : fd_(descriptor) {}
    /// Takes `other`'s descriptor; `other` owns nothing after.
    fd(fd&& other) noexcept : fd_(other.release()) {}
    /// Closes the owned descriptor, if any, and takes `other`'s.
    fd& operator=(fd&& other) noexcept {
        reset(other.release());
        return *this;
    }
    fd(const fd&) = delete;
    fd& operator=(const fd&) = delete;
    ~fd() { reset(); }

    /// The descriptor, or -1.
    int get() const noexcept { return fd_; }
    /// True if it owns a descriptor.
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// Gives up ownership and returns the descriptor.
    int release() noexcept { return std::exchange(fd_, -1); }
    /// Closes the owned descriptor (through gt::io::close), if any, and
    /// takes `descriptor`.
    void reset(int descriptor = -1) noexcept {
        if (fd_ >= 0) gt::io::close(fd_);
        fd_ = descriptor;
    }

private:
    int fd_ = -1;
};

/// Counters of the calling OS thread's poller (diagnostics and tests).
struct poller_counters {
    std::uint64_t polls;         ///< epoll_pwait2 calls
    std::uint64_t idle_waits;    ///< of which the OS thread slept in the poller
    std::uint64_t events;        ///< readiness events returned
    std::uint64_t stale_events;  ///< of which were for a closed and reused descriptor number
    std::uint64_t wakeups;       ///< threads woken by readiness or a close
};
/// The calling OS thread's poller's counters so far.
poller_counters poller_stats() noexcept;

}  // namespace gt::io
