// The edge cases that real pollers got wrong, on descriptors that are not
// network connections: files epoll refuses, stray numbers, zero-byte
// calls, a close under a waiter and the reuse of its number, hang-ups,
// signals, the deadlock report, and descriptors of a second OS thread.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "gt/io.hpp"
#include "gt/thread.hpp"
#include "blocked_on.hpp"
#include "io_helpers.hpp"
#include "poller.hpp"
#include "scheduler.hpp"

using namespace std::chrono_literals;
using io_test::already_passed;
using io_test::pipe_pair;

namespace {

const gt::detail::fd_state* state_of(int fd) { return gt::detail::scheduler::current().poller().find(fd); }

}  // namespace

// Why (troglobit/libuev#12): epoll_ctl refuses regular files and
// directories with EPERM, and /dev/null too (it has no poll method); a
// poller that passes the error on cannot read a file. They are always
// ready: the call runs directly, without an epoll registration.
TEST(IoEdge, ADirectoryAndDevNullAreAlwaysReady) {
    const int dir = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dir, 0);
    char buffer[16];
    EXPECT_EQ(gt::io::read(dir, buffer, sizeof buffer), -1);
    EXPECT_EQ(errno, EISDIR);  // read(2)'s own answer, not the poller's
    EXPECT_EQ(gt::io::wait_readable(dir, already_passed()), 0);
    EXPECT_EQ(gt::io::wait_writable(dir, already_passed()), 0);
    ASSERT_NE(state_of(dir), nullptr);
    EXPECT_EQ(state_of(dir)->kind, gt::detail::fd_kind::always_ready);
    EXPECT_FALSE(state_of(dir)->registered);
    EXPECT_EQ(gt::io::close(dir), 0);

    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ASSERT_GE(null, 0);
    EXPECT_EQ(gt::io::write(null, "abc", 3, already_passed()), 3);
    EXPECT_EQ(gt::io::read(null, buffer, sizeof buffer, already_passed()), 0);  // end of file at once
    EXPECT_EQ(state_of(null)->kind, gt::detail::fd_kind::always_ready);
    EXPECT_FALSE(state_of(null)->registered);
    EXPECT_EQ(gt::io::close(null), 0);
}

// Why: a number that is not open fails with EBADF before anything is
// registered; a stray large number must not grow the per-descriptor table
// to its size (1 << 24 slots would be 128 MiB).
TEST(IoEdge, ANumberThatIsNotOpenFailsWithEbadfWithoutASlot) {
    constexpr int stray = 1 << 24;
    char c = 0;
    for (const int fd : {-1, stray}) {
        errno = 0;
        EXPECT_EQ(gt::io::read(fd, &c, 1), -1);
        EXPECT_EQ(errno, EBADF);
        errno = 0;
        EXPECT_EQ(gt::io::write(fd, &c, 1), -1);
        EXPECT_EQ(errno, EBADF);
        errno = 0;
        EXPECT_EQ(gt::io::accept(fd, nullptr, nullptr), -1);
        EXPECT_EQ(errno, EBADF);
        errno = 0;
        EXPECT_EQ(gt::io::wait_readable(fd), -1);
        EXPECT_EQ(errno, EBADF);
    }
    EXPECT_EQ(state_of(stray), nullptr);
    // A number closed before its first use: EBADF too, and no registration.
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    ::close(fds[0]);
    errno = 0;
    EXPECT_EQ(gt::io::read(fds[0], &c, 1), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_TRUE(state_of(fds[0]) == nullptr || !state_of(fds[0])->registered);
    gt::io::close(fds[1]);
}

// Why: read(2) and write(2) of 0 bytes on a blocking pipe or stream socket
// return 0 at once; with readiness tokens, a call that waits for the token
// first would block a thread that asked for nothing.
TEST(IoEdge, ReadAndWriteOfZeroBytesReturnAtOnce) {
    pipe_pair p;
    ASSERT_GE(p.r, 0);
    char buffer[64];
    ASSERT_EQ(gt::io::write(p.w, "x", 1), 1);
    ASSERT_EQ(gt::io::read(p.r, buffer, sizeof buffer), 1);  // short: the read token is clear now
    EXPECT_EQ(gt::io::read(p.r, buffer, 0, already_passed()), 0);
    const iovec none{buffer, 0};
    EXPECT_EQ(gt::io::readv(p.r, &none, 1, already_passed()), 0);

    ASSERT_GT(io_test::fill(p.w), 0u);  // full: the write token is clear now
    EXPECT_EQ(gt::io::write(p.w, buffer, 0, already_passed()), 0);
    EXPECT_EQ(gt::io::writev(p.w, &none, 1, already_passed()), 0);
    EXPECT_EQ(gt::io::write(p.w, "y", 1, already_passed()), -1);  // a write of 1 byte still waits
    EXPECT_EQ(errno, ETIMEDOUT);
}

// Why (wingo/fibers#80): a descriptor closed while threads wait on it must
// wake them with an error, writers as well as readers, or they sleep
// forever on a number the next open may reuse.
TEST(IoEdge, CloseWakesReadersAndWritersWithEbadf) {
    for (const bool plain_close : {false, true}) {
        for (const bool socket : {false, true}) {
            SCOPED_TRACE(std::string(plain_close ? "::close" : "gt::io::close") +
                         (socket ? ", socketpair" : ", pipes"));
            // A socket's end both reads and writes: the reader and the
            // writer wait on the same descriptor. A pipe's end goes one
            // way: the reader waits on an empty pipe, the writer on a full
            // one.
            int a[2], b[2];
            if (socket) {
                ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
                b[0] = a[1], b[1] = a[0];
            } else {
                ASSERT_EQ(::pipe2(a, O_CLOEXEC), 0);
                ASSERT_EQ(::pipe2(b, O_CLOEXEC), 0);
            }
            const int read_end = a[0];
            const int write_end = b[1];
            ASSERT_GT(io_test::fill(write_end), 0u);
            ssize_t read_result = 1, write_result = 1;
            int read_error = 0, write_error = 0;
            gt::thread reader([&] {
                char c;
                read_result = gt::io::read(read_end, &c, 1);
                read_error = errno;
            });
            gt::thread writer([&] {
                write_result = gt::io::write(write_end, "z", 1);
                write_error = errno;
            });
            ASSERT_TRUE(poll_until([] { return blocked_on("readable") + blocked_on("writable") == 2; }));  // both block
            const auto closer = [&](int fd) { return plain_close ? ::close(fd) : gt::io::close(fd); };
            EXPECT_EQ(closer(read_end), 0);
            if (write_end != read_end) {
                EXPECT_EQ(closer(write_end), 0);
            }
            reader.join();
            writer.join();
            EXPECT_EQ(read_result, -1);
            EXPECT_EQ(read_error, EBADF);
            EXPECT_EQ(write_result, -1);
            EXPECT_EQ(write_error, EBADF);
            gt::io::close(a[1]);
            if (!socket) gt::io::close(b[0]);
        }
    }
}

// Why (wingo/fibers#80, Go's fdseq): a number closed under a waiter and
// reused at once by a new pipe: the woken waiter fails with EBADF and
// never reads the new pipe's data, and the new pipe is registered afresh.
TEST(IoEdge, ANumberReusedAtOnceAfterACloseIsANewDescriptor) {
    for (const bool plain_close : {false, true}) {
        SCOPED_TRACE(plain_close ? "::close" : "gt::io::close");
        pipe_pair old_pipe;
        ASSERT_GE(old_pipe.r, 0);
        const int number = old_pipe.r;
        char c;
        ASSERT_EQ(gt::io::read(number, &c, 1, already_passed()), -1);  // registers it
        const std::uint32_t generation = state_of(number)->generation;
        ssize_t n = 1;
        int error = 0;
        char got[8] = {};
        gt::thread reader([&] {
            n = gt::io::read(number, got, sizeof got);
            error = errno;
        });
        ASSERT_TRUE(wait_until_blocked_on("readable", 1));  // it blocks
        ASSERT_EQ(plain_close ? ::close(number) : gt::io::close(number), 0);
        old_pipe.r = -1;
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        ASSERT_EQ(fds[0], number) << "the lowest free number is reused";
        ASSERT_EQ(::write(fds[1], "new", 3), 3);  // before the old waiter runs again
        reader.join();
        EXPECT_EQ(n, -1);
        EXPECT_EQ(error, EBADF);
        EXPECT_EQ(std::string(got), "");
        EXPECT_EQ(state_of(number)->generation, generation + 1);
        // The new pipe: registered on its first use, its data read, and a
        // reader that waits on it woken by the next write.
        char buffer[8] = {};
        EXPECT_EQ(gt::io::read(fds[0], buffer, sizeof buffer), 3);
        EXPECT_TRUE(state_of(number)->registered);
        gt::thread late([&] { ASSERT_EQ(gt::io::write(fds[1], "again", 5), 5); });
        EXPECT_EQ(gt::io::read(fds[0], buffer, sizeof buffer), 5);
        late.join();
        gt::io::close(fds[0]);
        gt::io::close(fds[1]);
    }
}

// Why: the readiness token's trap. A writer that writes and closes before
// the poller looks sends one edge, EPOLLIN|EPOLLHUP; the reader's read of
// the data is short, and if the short read cleared the token, the end of
// file that came in the same edge would never be read: no further edge
// comes from a closed peer (found by the half-close test, which hung one
// run in three). The same for a socket whose peer writes and shuts down.
TEST(IoEdge, TheEndOfFileThatCameWithTheLastDataIsRead) {
    for (const bool socket : {false, true}) {
        SCOPED_TRACE(socket ? "Unix stream, shutdown(SHUT_WR)" : "pipe, close");
        pipe_pair p;
        io_test::unix_pair s;
        const int read_end = socket ? s.a : p.r;
        int& write_end = socket ? s.b : p.w;
        std::string got;
        ssize_t last = 1;
        gt::thread reader([&] {
            char buffer[64];
            ssize_t n;
            while ((n = gt::io::read(read_end, buffer, sizeof buffer,
                                     std::chrono::steady_clock::now() + 5s)) > 0) {
                got.append(buffer, static_cast<std::size_t>(n));
            }
            last = n;
        });
        gt::this_thread::yield();  // the reader waits, its token clear
        // Data and end of file with no switch in between: one edge.
        ASSERT_EQ(gt::io::write(write_end, "abc", 3), 3);
        if (socket) {
            ASSERT_EQ(::shutdown(write_end, SHUT_WR), 0);
        } else {
            gt::io::close(write_end);
            write_end = -1;
        }
        reader.join();
        EXPECT_EQ(got, "abc");
        EXPECT_EQ(last, 0) << "errno " << errno << " (ETIMEDOUT: the end of file was lost)";
    }
}

// Why (redpanda-data/seastar#65): a level-triggered poller reports a
// hung-up or failed socket on every wait until it is closed, so a thread
// that read the EOF and went on to wait for something else leaves the OS
// thread spinning in epoll. Edge-triggered, the hang-up is one event: over
// a window in which the thread waits elsewhere, the poller's work stays
// bounded instead of growing with time.
TEST(IoEdge, AHangUpDoesNotMakeThePollerSpin) {
    for (const bool reset : {false, true}) {
        SCOPED_TRACE(reset ? "TCP reset (EPOLLERR)" : "Unix socket closed (EPOLLHUP)");
        io_test::tcp_pair tcp;
        io_test::unix_pair unix_stream;
        int mine = reset ? tcp.server : unix_stream.a;
        int& peer = reset ? tcp.client : unix_stream.b;
        ASSERT_GE(mine, 0);
        ASSERT_GE(peer, 0);
        pipe_pair later;
        ssize_t first = 1, second = 1;
        gt::thread waiter([&] {
            char c;
            first = gt::io::read(mine, &c, 1);      // the peer's close ends it
            second = gt::io::read(later.r, &c, 1);  // then it waits elsewhere; `mine` stays open
        });
        ASSERT_TRUE(wait_until_blocked_on("readable", 1));  // the waiter blocks on `mine`
        if (reset) {
            const linger abort{1, 0};
            ASSERT_EQ(::setsockopt(peer, SOL_SOCKET, SO_LINGER, &abort, sizeof abort), 0);
        }
        gt::io::close(peer);
        peer = -1;
        gt::this_thread::sleep_for(5ms);  // the waiter reads the hang-up and moves on
        const gt::io::poller_counters before = gt::io::poller_stats();
        gt::this_thread::sleep_for(300ms);  // the window: every thread waits, the OS thread idles
        const gt::io::poller_counters after = gt::io::poller_stats();
        ASSERT_EQ(gt::io::write(later.w, "x", 1), 1);
        waiter.join();
        EXPECT_EQ(first, reset ? -1 : 0);
        EXPECT_EQ(second, 1);
        EXPECT_LT(after.polls - before.polls, 10u) << "epoll waits over 300 ms of idling";
        EXPECT_LT(after.events - before.events, 10u) << "events over 300 ms of idling";
    }
}

namespace {

std::atomic<int> signals_handled{0};
void count_signal(int) { signals_handled.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

// Why: the program's own signals interrupt the OS thread's sleep in
// epoll_pwait2 (EINTR); that must stay inside the poller: the green
// thread's read neither fails with EINTR nor returns early.
TEST(IoEdge, TheProgramsOwnSignalsDoNotInterruptAGreenThreadsRead) {
    struct sigaction action {
    }, old{};
    action.sa_handler = count_signal;  // no SA_RESTART: epoll_pwait2 fails with EINTR
    sigemptyset(&action.sa_mask);
    ASSERT_EQ(::sigaction(SIGUSR1, &action, &old), 0);
    signals_handled = 0;
    pipe_pair p;
    const pthread_t main_os_thread = ::pthread_self();
    std::atomic<bool> reading{false};
    std::thread signaller([&] {  // an OS thread outside gt
        while (!reading.load()) std::this_thread::sleep_for(1ms);
        for (int i = 0; i < 20; ++i) {
            ::pthread_kill(main_os_thread, SIGUSR1);
            std::this_thread::sleep_for(2ms);
        }
        ::write(p.w, "x", 1);
    });
    char c = 0;
    reading = true;
    const ssize_t n = gt::io::read(p.r, &c, 1);
    const int error = errno;
    signaller.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    EXPECT_EQ(n, 1) << "errno " << error;
    EXPECT_EQ(c, 'x');
    EXPECT_GT(signals_handled.load(), 0);
}

namespace {

// Every green thread of the OS thread waits, and nothing in gt could wake
// them: only the world outside (an OS thread, a timer) can.
bool wait_on_the_world() {
    pipe_pair p;
    std::thread outside([&] {
        std::this_thread::sleep_for(50ms);
        ::write(p.w, "x", 1);
    });
    char c;
    const bool read_one = gt::io::read(p.r, &c, 1) == 1;  // main alone, blocked on a descriptor
    outside.join();
    // Main alone, blocked on a descriptor with a deadline.
    const bool timed_out =
        gt::io::read(p.r, &c, 1, std::chrono::steady_clock::now() + 30ms) == -1 && errno == ETIMEDOUT;
    pipe_pair q;
    bool waited = false;
    gt::thread waiter([&] {
        char d;
        waited = gt::io::read(q.r, &d, 1) == 1;
    });
    std::thread writer([&] {
        std::this_thread::sleep_for(30ms);
        ::write(q.w, "y", 1);
    });
    waiter.join();  // main on a join, the waiter on a descriptor
    writer.join();
    return read_one && timed_out && waited;
}

}  // namespace

// Why (moonbitlang/async#513): the report "every thread is blocked" is
// true of a program whose threads all wait on descriptors, and wrong: the
// kernel will wake them. It must not fire while a thread waits on a
// descriptor or a timer (it aborts the process, hence a death test that
// expects a clean exit).
TEST(IoEdgeDeathTest, TheDeadlockReportStaysQuietWhileThreadsWaitOnDescriptors) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: no inherited epoll set
    EXPECT_EXIT({ std::_Exit(wait_on_the_world() ? 0 : 2); }, ::testing::ExitedWithCode(0), "");
}

// Why: each OS thread has its own scheduler and poller; descriptors used by
// green threads of a second OS thread block and wake there, while the first
// OS thread's green threads block on their own descriptors.
TEST(IoEdge, EachOsThreadBlocksOnItsOwnPoller) {
    pipe_pair to_other, to_main;
    constexpr int rounds = 100;
    std::atomic<int> answered{0};
    std::thread other([&] {
        gt::thread echo([&] {
            char c;
            for (int i = 0; i < rounds; ++i) {
                if (gt::io::read(to_other.r, &c, 1) != 1 || gt::io::write(to_main.w, &c, 1) != 1) return;
                ++answered;
            }
        });
        echo.join();
    });
    int ok = 0;
    for (int i = 0; i < rounds; ++i) {
        const char out = static_cast<char>('a' + i % 26);
        char in = 0;
        if (gt::io::write(to_other.w, &out, 1) == 1 && gt::io::read(to_main.r, &in, 1) == 1 && in == out)
            ++ok;
    }
    other.join();
    EXPECT_EQ(ok, rounds);
    EXPECT_EQ(answered.load(), rounds);
}
