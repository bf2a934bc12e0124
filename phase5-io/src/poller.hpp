// The poller: one epoll instance per scheduler, through which a green
// thread blocks on a descriptor the way it blocks on a mutex (on a wait
// queue, off every run queue), and in which the OS thread sleeps when no
// thread can run. Design and sources: the walkthrough, sections 2-4;
// epoll(7), epoll_ctl(2), epoll_pwait2(2); Go's src/runtime/netpoll_epoll.go
// and netpoll.go.
#pragma once

#include <signal.h>
#include <sys/epoll.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "gt/detail/wait_queue.hpp"

namespace gt::detail {

class scheduler;

/// How the readiness tokens of a descriptor are kept (see fd_state).
enum class fd_kind : std::uint8_t {
    unknown,       ///< not seen yet, or closed since: looked at on next use
    stream,        ///< a TCP socket or a pipe: a short read drains it
    message,       ///< anything else epoll takes (datagram and Unix sockets, packet pipes, ttys, eventfd...):
                   ///< only EAGAIN drains it
    always_ready,  ///< a regular file or directory, which epoll refuses (EPERM): calls run directly
};

/// What the poller knows about one descriptor number. Created the first time
/// gt meets the descriptor and kept for the number's lifetime in the
/// process, across close and reuse: `generation` tells one use of the number
/// from the next.
///
/// The readiness tokens `readable` and `writable` say "a call may make
/// progress". A call clears its token before the system call and sets it
/// again when the result shows the descriptor may have more (a read that
/// filled the buffer, a write that took everything); a short read from a
/// stream leaves it clear, so the next read waits for the kernel's next
/// edge instead of spending a system call on EAGAIN. An edge that arrives
/// after the clear sets it again, so none is lost.
///
/// Touched by the thread that calls gt::io on the descriptor and, inside
/// the scheduler's critical section, by the poller; both on the scheduler's
/// OS thread.
struct fd_state {
    explicit fd_state(int number) noexcept : fd(number) {}
    fd_state(const fd_state&) = delete;
    fd_state& operator=(const fd_state&) = delete;

    const int fd;
    /// Bumped by every close: a waiter whose generation is gone was closed
    /// under (EBADF), and epoll events carry it (epoll_event::data is
    /// fd | generation << 32), so an event for an earlier use of the number
    /// is dropped.
    std::uint32_t generation = 0;
    fd_kind kind = fd_kind::unknown;
    /// In the epoll set (edge-triggered, for both directions, once).
    bool registered = false;
    bool readable = true;
    bool writable = true;
    /// The peer shut down its writing side, hung up or failed (EPOLLRDHUP,
    /// EPOLLHUP, EPOLLERR seen): every read from now on returns at once
    /// (data, then 0 or the error), and no further edge will come, so a
    /// short read must not clear `readable`: the edge that carried the
    /// last data also carried the end of file.
    bool read_closed = false;
    /// The threads BLOCKED until the descriptor becomes readable, writable.
    wait_queue readers{wait_reason::readable};
    wait_queue writers{wait_reason::writable};
};

/// Counters of the poller's work, for tests and the walkthrough.
struct poller_stats {
    std::uint64_t polls = 0;         ///< epoll_pwait2 calls
    std::uint64_t idle_waits = 0;    ///< of which the OS thread slept (timeout > 0)
    std::uint64_t events = 0;        ///< events returned
    std::uint64_t stale_events = 0;  ///< of which were for an earlier use of a descriptor number
    std::uint64_t wakeups = 0;       ///< threads woken by readiness
};

class poller {
public:
    poller() noexcept = default;
    poller(const poller&) = delete;
    poller& operator=(const poller&) = delete;
    ~poller();

    /// The state of `fd`, registered with epoll on first sight: a regular
    /// file or directory becomes always_ready; anything else is made
    /// non-blocking (O_NONBLOCK on its open file description, which its
    /// duplicates share) and added to the epoll set, edge-triggered, for
    /// reading and writing. nullptr with errno set (EBADF for a descriptor
    /// that is not open; epoll_create1's or epoll_ctl's errors). `known`:
    /// the kind of a descriptor gt made itself, already non-blocking (an
    /// accepted socket), which saves the system calls that find it out.
    /// Inside the scheduler's critical section.
    fd_state* state_for(int fd, fd_kind known = fd_kind::unknown) noexcept;

    /// The state of `fd` if gt has met it, else nullptr.
    fd_state* find(int fd) const noexcept {
        return fd >= 0 && static_cast<std::size_t>(fd) < table_.size() ? table_[fd].get() : nullptr;
    }

    /// `fd` is about to be closed: its waiters are woken (their call fails
    /// with EBADF), its generation moves on, and it leaves the epoll set.
    /// Inside the scheduler's critical section.
    void forget(scheduler& s, int fd) noexcept;

    /// Waits for readiness until `deadline_ns` (CLOCK_MONOTONIC; 0: do not
    /// wait, scheduler::no_deadline: no timeout) with `mask` as the signal
    /// mask for the wait, and wakes the threads waiting on every descriptor
    /// that became ready. Returns the number of events. Inside the
    /// scheduler's critical section.
    int poll(scheduler& s, std::int64_t deadline_ns, const sigset_t* mask) noexcept;

    /// Threads BLOCKED on a descriptor now.
    std::size_t waiters() const noexcept { return waiters_; }
    void waiter_added() noexcept { ++waiters_; }
    void waiter_removed() noexcept { --waiters_; }

    const poller_stats& stats() const noexcept { return stats_; }

    /// The epoll descriptor, made on first use; -1 with errno on failure.
    int epoll_fd() noexcept;
    /// The epoll descriptor if it has been made, else -1 (makes none).
    int epoll_fd_if_made() const noexcept { return epoll_; }

    /// In the child of a fork(2): the epoll descriptor it inherited names
    /// the parent's epoll instance (registrations would be shared with the
    /// parent), so the child makes its own and registers its descriptors
    /// again.
    void restart_after_fork() noexcept;

private:
    int epoll_ = -1;
    std::size_t waiters_ = 0;
    std::vector<std::unique_ptr<fd_state>> table_;  // indexed by descriptor number
    poller_stats stats_;
    // What one poll returns. Here, not on the stack of whichever thread went
    // idle last: 1.5 KiB there would be another page for every connection
    // thread (measured: 8.6 KiB of memory per idle connection, 4.7 without).
    epoll_event events_[128];
};

}  // namespace gt::detail
