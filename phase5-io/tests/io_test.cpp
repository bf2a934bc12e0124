// gt::io's core: a green thread blocked on a descriptor lets the others run,
// wakes on readiness, and loses no readiness between calls.
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <csignal>
#include <sstream>
#include <string>
#include <thread>

#include "gt/debug.hpp"
#include "gt/io.hpp"
#include "gt/thread.hpp"
#include "blocked_on.hpp"
#include "cooperative.hpp"
#include "io_helpers.hpp"

using namespace std::chrono_literals;

using io_test::listen_loopback;
using io_test::pipe_pair;

// Why: the point of the phase: a read with nothing to read blocks only its
// green thread; the others run, and the write wakes the reader.
TEST(Io, AReaderBlocksOnlyItsGreenThreadAndWakesOnData) {
    pipe_pair p;
    ASSERT_GE(p.r, 0);
    std::atomic<int> steps{0};
    char got[8] = {};
    ssize_t n = 0;
    gt::thread reader([&] { n = gt::io::read(p.r, got, sizeof got); });
    gt::this_thread::yield();  // the reader blocks on the pipe
    for (int i = 0; i < 10; ++i) {
        ++steps;  // main runs meanwhile
        gt::this_thread::yield();
    }
    EXPECT_EQ(n, 0);
    ASSERT_EQ(gt::io::write(p.w, "hello", 5), 5);
    reader.join();
    EXPECT_EQ(n, 5);
    EXPECT_EQ(std::string(got, 5), "hello");
    EXPECT_EQ(steps.load(), 10);
}

// Why: the readiness token: after a short read the next read waits for the
// kernel's next edge; data written right after the short read must still
// wake it (a lost edge would leave it asleep forever).
TEST(Io, DataWrittenRightAfterAShortReadIsRead) {
    pipe_pair p;
    ASSERT_GE(p.r, 0);
    std::string got;
    gt::thread reader([&] {
        char buffer[64];
        while (got.size() < 300) {
            const ssize_t n = gt::io::read(p.r, buffer, sizeof buffer);
            if (n <= 0) break;
            got.append(buffer, static_cast<std::size_t>(n));
        }
    });
    for (int i = 0; i < 100; ++i) {
        ASSERT_EQ(gt::io::write(p.w, "abc", 3), 3);
        if (i % 3 == 0) gt::this_thread::yield();  // sometimes the reader reads short in between
    }
    reader.join();
    EXPECT_EQ(got.size(), 300u);
}

// Why: a TCP connection over loopback, connect and accept included, with
// the listener, the server and the client all green threads of one OS
// thread.
TEST(Io, TcpEchoOverLoopback) {
    sockaddr_in address;
    const int listener = listen_loopback(address);
    ASSERT_GE(listener, 0);
    std::string echoed;
    gt::thread server([&] {
        const int c = gt::io::accept(listener, nullptr, nullptr);
        ASSERT_GE(c, 0);
        char buffer[256];
        for (;;) {
            const ssize_t n = gt::io::read(c, buffer, sizeof buffer);
            if (n <= 0) break;
            ASSERT_EQ(gt::io::write(c, buffer, static_cast<std::size_t>(n)), n);
        }
        gt::io::close(c);
    });
    gt::thread client([&] {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_EQ(gt::io::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        for (int i = 0; i < 50; ++i) {
            const std::string message = "message " + std::to_string(i) + ";";
            ASSERT_EQ(gt::io::write(fd, message.data(), message.size()), static_cast<ssize_t>(message.size()));
            char buffer[64];
            std::size_t have = 0;
            while (have < message.size()) {
                const ssize_t n = gt::io::read(fd, buffer + have, message.size() - have);
                ASSERT_GT(n, 0);
                have += static_cast<std::size_t>(n);
            }
            echoed.append(buffer, have);
        }
        gt::io::close(fd);
    });
    client.join();
    server.join();
    gt::io::close(listener);
    EXPECT_EQ(echoed.size(), 50 * std::string("message 0;").size() + 40);
    EXPECT_EQ(echoed.substr(0, 20), "message 0;message 1;");
}

// Why (wingo/fibers#80): a descriptor closed while another thread waits on
// it must wake that thread with an error, not leave it asleep forever.
TEST(Io, CloseWakesAWaiterWithEbadf) {
    for (const bool plain_close : {false, true}) {
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        ssize_t n = 1;
        int error = 0;
        gt::thread reader([&] {
            char c;
            n = gt::io::read(fds[0], &c, 1);
            error = errno;
        });
        ASSERT_TRUE(wait_until_blocked_on("readable", 1));  // a tick may delay it: wait until it blocks
        if (plain_close) {
            ::close(fds[0]);  // gt intercepts close(2) too
        } else {
            gt::io::close(fds[0]);
        }
        reader.join();
        EXPECT_EQ(n, -1) << (plain_close ? "::close" : "gt::io::close");
        EXPECT_EQ(error, EBADF);
        ::close(fds[1]);
    }
}

// Why: a deadline ends the wait with ETIMEDOUT, and it is a deadline, not
// a poll: the thread is BLOCKED until then.
TEST(Io, ReadWithADeadlineFailsWithEtimedout) {
    pipe_pair p;
    const auto start = std::chrono::steady_clock::now();
    char c;
    EXPECT_EQ(gt::io::read(p.r, &c, 1, start + 20ms), -1);
    EXPECT_EQ(errno, ETIMEDOUT);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

// Why (troglobit/libuev#12): epoll refuses regular files with EPERM; gt
// reads them directly instead of failing.
TEST(Io, ARegularFileIsAlwaysReady) {
    char path[] = "/tmp/gt-io-test-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::unlink(path);
    ASSERT_EQ(gt::io::write(fd, "file data", 9), 9);
    ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
    char buffer[16] = {};
    EXPECT_EQ(gt::io::read(fd, buffer, sizeof buffer), 9);
    EXPECT_EQ(std::string(buffer, 9), "file data");
    EXPECT_EQ(gt::io::wait_readable(fd), 0);
    EXPECT_EQ(gt::io::close(fd), 0);
}

// Why: while every thread waits on a descriptor the OS thread sleeps in the
// poller: no CPU time passes, and the deadlock report does not fire.
TEST(Io, AllThreadsWaitingOnDescriptorsCostNoCpu) {
    pipe_pair p;
    rusage before{}, after{};
    char c = 0;
    ssize_t n = 0;
    gt::thread writer([&] {
        gt::this_thread::sleep_for(200ms);
        gt::io::write(p.w, "x", 1);
    });
    ::getrusage(RUSAGE_THREAD, &before);
    n = gt::io::read(p.r, &c, 1);  // main waits on the pipe, the writer sleeps
    ::getrusage(RUSAGE_THREAD, &after);
    writer.join();
    EXPECT_EQ(n, 1);
    const auto cpu_us = [](const rusage& r) {
        return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1'000'000L + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
    };
    EXPECT_LT(cpu_us(after) - cpu_us(before), 20'000) << "µs of CPU over a 200 ms wait";
    EXPECT_GE(gt::io::poller_stats().idle_waits, 1u);
}

// Why: the dump says which descriptor and direction a thread waits on.
TEST(Io, TheDumpNamesTheDescriptorAThreadWaitsOn) {
    pipe_pair p;
    gt::thread reader([&] {
        char c;
        gt::io::read(p.r, &c, 1);
    });
    ASSERT_TRUE(wait_until_blocked_on("readable", 1));  // a tick may delay it: wait until it blocks
    std::ostringstream out;
    gt::debug::dump_threads(out);
    const std::string dump = out.str();
    gt::io::write(p.w, "x", 1);
    reader.join();
    EXPECT_NE(dump.find("descriptor " + std::to_string(p.r) + " to become readable"), std::string::npos) << dump;
}

// Why: a short MSG_PEEK leaves the data queued, so it must not count as
// draining the socket: the recv after it found the token clear and waited
// for an edge that never came (found in review).
TEST(Io, ARecvAfterAShortPeekGetsTheData) {
    sockaddr_in address;
    const int listener = listen_loopback(address);
    ASSERT_GE(listener, 0);
    const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(gt::io::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    const int server = gt::io::accept(listener, nullptr, nullptr);
    ASSERT_GE(server, 0);
    ASSERT_EQ(gt::io::write(client, "abcdef", 6), 6);
    char buffer[16] = {};
    ASSERT_EQ(gt::io::recv(server, buffer, 2, MSG_PEEK, std::chrono::steady_clock::now() + 5s), 2);  // full
    // A short peek (6 of 16), then the real read.
    ASSERT_EQ(gt::io::recv(server, buffer, sizeof buffer, MSG_PEEK, std::chrono::steady_clock::now() + 5s), 6);
    EXPECT_EQ(gt::io::recv(server, buffer, sizeof buffer, 0, std::chrono::steady_clock::now() + 5s), 6);
    EXPECT_EQ(std::string(buffer, 6), "abcdef");
    for (int fd : {client, server, listener}) gt::io::close(fd);
}

// Why: recv(2)'s MSG_WAITALL waits for all the bytes; on the non-blocking
// socket underneath, the green thread must do the waiting.
TEST(Io, RecvWithWaitallWaitsForEveryByte) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    gt::thread writer([&] {
        for (const char* part : {"ab", "cd", "ef"}) {
            gt::io::write(fds[1], part, 2);
            gt::this_thread::yield();
        }
    });
    char buffer[6] = {};
    EXPECT_EQ(gt::io::recv(fds[0], buffer, sizeof buffer, MSG_WAITALL), 6);
    EXPECT_EQ(std::string(buffer, 6), "abcdef");
    writer.join();
    gt::io::close(fds[0]);
    gt::io::close(fds[1]);
}

// Why: a packet pipe (O_DIRECT, pipe(7)) returns one packet per read, so a
// short read does not drain it: the second packet was never read (found in
// review).
TEST(Io, BothPacketsOfAPacketPipeAreRead) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_DIRECT), 0);
    ASSERT_EQ(::write(fds[1], "one", 3), 3);
    ASSERT_EQ(::write(fds[1], "two", 3), 3);
    char buffer[64];
    EXPECT_EQ(gt::io::read(fds[0], buffer, sizeof buffer, std::chrono::steady_clock::now() + 5s), 3);
    EXPECT_EQ(gt::io::read(fds[0], buffer, sizeof buffer, std::chrono::steady_clock::now() + 5s), 3);
    EXPECT_EQ(std::string(buffer, 3), "two");
    gt::io::close(fds[0]);
    gt::io::close(fds[1]);
}

// Why: with preemption off there are no ticks to ask for a poll, and a
// thread that only yields never lets the OS thread idle in the poller: a
// reader would never learn that its pipe became readable (found in review).
// Every poll_every-th scheduling decision polls while threads wait.
TEST(Io, AReaderWakesAmongThreadsThatOnlyYieldWithoutTicks) {
    const cooperative_scheduling cooperative;
    pipe_pair p;
    bool got = false;
    gt::thread reader([&] {
        char c;
        got = gt::io::read(p.r, &c, 1) == 1;
    });
    gt::this_thread::yield();  // it blocks on the pipe
    ASSERT_EQ(::write(p.w, "x", 1), 1);  // not through gt: nothing but the poller can tell it
    int yields = 0;
    while (!got && yields < 100'000) {
        gt::this_thread::yield();
        ++yields;
    }
    EXPECT_TRUE(got) << "the reader never woke in " << yields << " yields";
    EXPECT_LE(yields, 1000);
    reader.join();
}

namespace {
std::atomic<int> usr1_handled{0};
}  // namespace

// Why: the OS thread idles in epoll_pwait2 with the program's signal mask
// plus SIGALRM, which the scheduler keeps from the wrappers of
// pthread_sigmask instead of asking the kernel at every idle: a signal the
// program blocked must stay blocked while the OS thread sleeps there, and
// arrive once the program unblocks it.
TEST(Io, ASignalTheProgramBlockedStaysBlockedWhileTheOsThreadIdles) {
    struct sigaction action {};
    action.sa_handler = [](int) { usr1_handled.fetch_add(1); };
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGUSR1, &action, &old), 0);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr1, nullptr), 0);
    usr1_handled = 0;
    const pthread_t self = ::pthread_self();
    std::atomic<bool> sent{false};
    std::thread sender([&] {
        ::pthread_kill(self, SIGUSR1);
        sent = true;
    });
    pipe_pair p;
    while (!sent) {  // idles in the poller until the signal is pending
        char c;
        gt::io::read(p.r, &c, 1, std::chrono::steady_clock::now() + 5ms);
    }
    sender.join();
    gt::this_thread::sleep_for(20ms);  // idles again with the signal pending
    EXPECT_EQ(usr1_handled.load(), 0) << "handled while the program had it blocked";
    ASSERT_EQ(::pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr), 0);
    EXPECT_EQ(usr1_handled.load(), 1);
    ::sigaction(SIGUSR1, &old, nullptr);
}
