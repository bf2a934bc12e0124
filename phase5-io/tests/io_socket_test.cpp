// The edge cases that real pollers got wrong, on sockets over loopback:
// resets, half-closes, failed connects, readiness after a short read,
// datagrams, partial writes, accept at the descriptor limit, and the calls
// and owner that the other tests use least.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "gt/io.hpp"
#include "gt/thread.hpp"
#include "blocked_on.hpp"
#include "io_helpers.hpp"
#include "poller.hpp"
#include "scheduler.hpp"

using namespace std::chrono_literals;
using io_test::already_passed;

namespace {

// SIGPIPE ignored for one test: a write to a reset connection fails with
// EPIPE instead of killing the process.
struct sigpipe_ignored {
    struct sigaction old {};
    sigpipe_ignored() {
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        ::sigaction(SIGPIPE, &ignore, &old);
    }
    ~sigpipe_ignored() { ::sigaction(SIGPIPE, &old, nullptr); }
};

void abort_on_close(int fd) {
    const linger abort{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
}

}  // namespace

// Why: a peer that resets the connection (close with SO_LINGER 0 sends an
// RST) wakes a blocked reader with ECONNRESET, and writes then fail with
// EPIPE or ECONNRESET instead of blocking or killing the process.
TEST(IoSocket, APeerResetFailsReadsAndWrites) {
    const sigpipe_ignored no_sigpipe;
    io_test::tcp_pair tcp;
    ASSERT_GE(tcp.server, 0);
    ssize_t n = 1;
    int error = 0;
    gt::thread reader([&] {
        char c;
        n = gt::io::read(tcp.server, &c, 1);
        error = errno;
    });
    ASSERT_TRUE(wait_until_blocked_on("readable", 1));  // it blocks
    abort_on_close(tcp.client);
    gt::io::close(tcp.client);
    tcp.client = -1;
    reader.join();
    EXPECT_EQ(n, -1);
    EXPECT_EQ(error, ECONNRESET);
    errno = 0;
    EXPECT_EQ(gt::io::write(tcp.server, "x", 1), -1);
    EXPECT_TRUE(errno == EPIPE || errno == ECONNRESET) << errno;
    errno = 0;
    EXPECT_EQ(gt::io::send(tcp.server, "x", 1, MSG_NOSIGNAL), -1);
    EXPECT_TRUE(errno == EPIPE || errno == ECONNRESET) << errno;
}

// Why: a writer blocked on a full socket when the peer resets it must wake
// (EPOLLERR / EPOLLHUP on the write side) and fail, not wait for room that
// never comes.
TEST(IoSocket, AWriterBlockedOnAFullSocketWakesWhenThePeerResets) {
    const sigpipe_ignored no_sigpipe;
    io_test::tcp_pair tcp;
    ASSERT_GE(tcp.server, 0);
    ASSERT_GT(io_test::fill(tcp.server), 0u);
    ssize_t n = 1;
    int error = 0;
    gt::thread writer([&] {
        static const char block[65536] = {};
        n = gt::io::write(tcp.server, block, sizeof block);
        error = errno;
    });
    ASSERT_TRUE(wait_until_blocked_on("writable", 1));  // it blocks
    abort_on_close(tcp.client);
    gt::io::close(tcp.client);
    tcp.client = -1;
    writer.join();
    // The full count never: some bytes may have gone before the reset.
    EXPECT_LT(n, 65536);
    if (n < 0) {
        EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << error;
    }
    EXPECT_EQ(gt::io::send(tcp.server, "x", 1, MSG_NOSIGNAL), -1);
}

// Why: a half-close (shutdown(SHUT_WR)) is an EOF for the other side's
// reads, not a hang-up: writes in the other direction still arrive. A
// poller that treats EPOLLRDHUP as "connection gone" breaks HTTP/1.0-style
// clients that send a request, shut down writing and wait for the answer.
TEST(IoSocket, AHalfCloseIsAnEofAndTheOtherDirectionStillWorks) {
    for (const bool tcp_socket : {true, false}) {
        SCOPED_TRACE(tcp_socket ? "TCP" : "Unix stream");
        io_test::tcp_pair tcp;
        io_test::unix_pair unix_stream;
        const int client = tcp_socket ? tcp.client : unix_stream.a;
        const int server = tcp_socket ? tcp.server : unix_stream.b;
        ASSERT_GE(server, 0);
        std::string request;
        gt::thread reader([&] {
            char buffer[64];
            for (;;) {  // until EOF
                const ssize_t n = gt::io::read(server, buffer, sizeof buffer);
                if (n <= 0) break;
                request.append(buffer, static_cast<std::size_t>(n));
            }
            gt::io::write(server, "answer", 6);
        });
        ASSERT_EQ(gt::io::write(client, "request", 7), 7);
        ASSERT_EQ(::shutdown(client, SHUT_WR), 0);
        char buffer[16] = {};
        EXPECT_EQ(gt::io::read(client, buffer, sizeof buffer), 6);
        reader.join();
        EXPECT_EQ(request, "request");
        EXPECT_EQ(std::string(buffer), "answer");
    }
}

// Why: a connect to a loopback port where nothing listens fails with
// ECONNREFUSED (the RST arrives as EPOLLERR|EPOLLHUP; SO_ERROR says why).
TEST(IoSocket, AConnectToAClosedPortIsRefused) {
    sockaddr_in address;
    const int listener = io_test::listen_loopback(address);
    ASSERT_GE(listener, 0);
    gt::io::close(listener);  // the port is closed now
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    errno = 0;
    EXPECT_EQ(gt::io::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), -1);
    EXPECT_EQ(errno, ECONNREFUSED);
    gt::io::close(fd);
}

// Why: a connect whose SYN is dropped waits for retransmissions (1 s, 3 s,
// ... up to minutes); the deadline overload must end it with ETIMEDOUT.
// On loopback: a listener with backlog 0 that never accepts takes one
// connection into its accept queue and then drops SYNs (tcp_conn_request).
TEST(IoSocket, AConnectToAFullListenerTimesOutAtTheDeadline) {
    sockaddr_in address;
    const int listener = io_test::listen_loopback(address, 0);
    ASSERT_GE(listener, 0);
    std::vector<int> sockets;
    int timed_out = 0, connected = 0;
    for (int i = 0; i < 8 && timed_out == 0; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockets.push_back(fd);
        const auto start = std::chrono::steady_clock::now();
        const int result =
            gt::io::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address, start + 100ms);
        if (result == 0) {
            ++connected;
            continue;
        }
        ASSERT_EQ(errno, ETIMEDOUT);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);  // a deadline, not an early failure
        ++timed_out;
    }
    EXPECT_EQ(timed_out, 1);
    EXPECT_GE(connected, 1);  // the accept queue took at least one
    for (const int fd : sockets) gt::io::close(fd);
    gt::io::close(listener);
}

// Why: the readiness token. After a short read the next read waits for the
// kernel's next edge; data that arrives between the short read and that
// wait raises a new edge on a socket too, so it is read (the existing test
// covers a pipe).
TEST(IoSocket, DataArrivingAfterAShortReadIsRead) {
    for (const bool tcp_socket : {true, false}) {
        SCOPED_TRACE(tcp_socket ? "TCP" : "Unix stream");
        io_test::tcp_pair tcp;
        io_test::unix_pair unix_stream;
        const int writer_end = tcp_socket ? tcp.client : unix_stream.a;
        const int reader_end = tcp_socket ? tcp.server : unix_stream.b;
        ASSERT_GE(reader_end, 0);
        constexpr std::size_t rounds = 200;
        std::size_t got = 0;
        int short_reads = 0;
        gt::thread reader([&] {
            char buffer[64];
            while (got < 3 * rounds) {
                const ssize_t n = gt::io::read(reader_end, buffer, sizeof buffer);
                if (n <= 0) break;
                got += static_cast<std::size_t>(n);
                ++short_reads;
                gt::this_thread::yield();  // the writer writes between this short read and the next wait
            }
        });
        for (std::size_t i = 0; i < rounds; ++i) {
            ASSERT_EQ(gt::io::write(writer_end, "abc", 3), 3);
            gt::this_thread::yield();
        }
        reader.join();
        EXPECT_EQ(got, 3 * rounds);
        EXPECT_GT(short_reads, 1);
    }
}

// Why: a datagram socket returns one message per read, however large the
// buffer: a short read says nothing about what is queued. Two queued
// messages are read by two calls without waiting (fd_kind::message keeps
// the token); treated as a stream, the second would wait for an edge that
// never comes.
TEST(IoSocket, TwoQueuedDatagramsAreReadWithoutWaiting) {
    io_test::unix_pair dgram(SOCK_DGRAM);
    ASSERT_GE(dgram.a, 0);
    ASSERT_EQ(gt::io::write(dgram.a, "one", 3), 3);
    ASSERT_EQ(gt::io::write(dgram.a, "second", 6), 6);
    char buffer[64] = {};
    EXPECT_EQ(gt::io::read(dgram.b, buffer, sizeof buffer, already_passed()), 3);
    EXPECT_EQ(std::string(buffer, 3), "one");
    EXPECT_EQ(gt::io::read(dgram.b, buffer, sizeof buffer, already_passed()), 6) << "errno " << errno;
    EXPECT_EQ(std::string(buffer, 6), "second");
    EXPECT_EQ(gt::io::read(dgram.b, buffer, sizeof buffer, already_passed()), -1);  // now none is queued
    EXPECT_EQ(errno, ETIMEDOUT);
    EXPECT_EQ(gt::io::recv(dgram.b, buffer, sizeof buffer, 0, std::chrono::steady_clock::now() + 5ms), -1);
    EXPECT_EQ(errno, ETIMEDOUT);
}

namespace {

std::vector<unsigned char> pattern(std::size_t size) {
    std::vector<unsigned char> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<unsigned char>(i * 7 + i / 4096);
    return bytes;
}

}  // namespace

// Why: write() writes everything, as on a blocking socket: 4 MiB to a peer
// that reads slowly takes many partial writes and waits for room; the call
// returns the full count and every byte arrives in order.
TEST(IoSocket, AFourMiBWriteToASlowReaderWritesEverything) {
    for (const bool tcp_socket : {true, false}) {
        SCOPED_TRACE(tcp_socket ? "TCP" : "Unix stream");
        io_test::tcp_pair tcp;
        io_test::unix_pair unix_stream;
        const int writer_end = tcp_socket ? tcp.client : unix_stream.a;
        const int reader_end = tcp_socket ? tcp.server : unix_stream.b;
        ASSERT_GE(reader_end, 0);
        const std::vector<unsigned char> sent = pattern(4 << 20);
        std::vector<unsigned char> received;
        gt::thread reader([&] {
            std::vector<unsigned char> buffer(65536);
            while (received.size() < sent.size()) {
                const ssize_t n = gt::io::read(reader_end, buffer.data(), buffer.size());
                if (n <= 0) break;
                received.insert(received.end(), buffer.begin(), buffer.begin() + n);
                gt::this_thread::sleep_for(100us);  // slowly
            }
        });
        EXPECT_EQ(gt::io::write(writer_end, sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
        reader.join();
        EXPECT_TRUE(received == sent) << received.size() << " bytes received";
    }
}

// Why: a deadline that passes in the middle of a long write returns the
// count written so far (as a blocking socket's write interrupted after
// some bytes does), not -1: the caller must know what the peer got.
TEST(IoSocket, AWriteWhoseDeadlinePassesMidwayReturnsTheCountSoFar) {
    io_test::unix_pair unix_stream;
    ASSERT_GE(unix_stream.a, 0);
    const std::vector<unsigned char> sent = pattern(4 << 20);
    const ssize_t n =
        gt::io::write(unix_stream.a, sent.data(), sent.size(), std::chrono::steady_clock::now() + 30ms);
    ASSERT_GT(n, 0);
    EXPECT_LT(n, static_cast<ssize_t>(sent.size()));  // nobody reads: the buffer filled
    // The peer got exactly those bytes.
    std::vector<unsigned char> received(sent.size());
    std::size_t have = 0;
    for (;;) {
        const ssize_t got =
            gt::io::read(unix_stream.b, received.data() + have, received.size() - have, already_passed());
        if (got <= 0) break;
        have += static_cast<std::size_t>(got);
    }
    EXPECT_EQ(have, static_cast<std::size_t>(n));
    EXPECT_TRUE(std::equal(received.begin(), received.begin() + n, sent.begin()));
}

// Why: readv, writev, recv and send share read()'s and write()'s waiting;
// writev resumes in the middle of an iovec after a partial write.
TEST(IoSocket, ReadvWritevRecvAndSendMoveEveryByte) {
    io_test::tcp_pair tcp;
    ASSERT_GE(tcp.server, 0);
    // writev of three buffers large enough for partial writes.
    std::vector<unsigned char> all = pattern(3 << 20);
    iovec out[3] = {
        {all.data(), 1 << 20}, {all.data() + (1 << 20), 1 << 20}, {all.data() + (2 << 20), 1 << 20}};
    std::vector<unsigned char> received(all.size());
    std::size_t have = 0;
    gt::thread reader([&] {
        while (have < received.size()) {
            // readv into two halves of what is left.
            const std::size_t left = received.size() - have;
            iovec in[2] = {{received.data() + have, left / 2},
                           {received.data() + have + left / 2, left - left / 2}};
            const ssize_t n = gt::io::readv(tcp.server, in, left > 1 ? 2 : 1);
            if (n <= 0) break;
            have += static_cast<std::size_t>(n);
        }
    });
    EXPECT_EQ(gt::io::writev(tcp.client, out, 3), static_cast<ssize_t>(all.size()));
    reader.join();
    EXPECT_EQ(have, all.size());
    EXPECT_TRUE(received == all);

    // send and recv, with recv's flags honoured: MSG_PEEK leaves the data.
    gt::thread sender([&] { EXPECT_EQ(gt::io::send(tcp.server, "peek", 4, MSG_NOSIGNAL), 4); });
    char buffer[8] = {};
    EXPECT_EQ(gt::io::recv(tcp.client, buffer, 4, MSG_PEEK | MSG_WAITALL), 4);
    EXPECT_EQ(gt::io::recv(tcp.client, buffer, sizeof buffer, 0), 4);
    EXPECT_EQ(std::string(buffer, 4), "peek");
    sender.join();
}

// Why: gt::io::fd owns a descriptor like std::unique_ptr: closes it once
// on destruction (waking its waiters), moves, releases, resets.
TEST(IoSocket, TheFdOwnerClosesOnceAndMovesReleasesAndResets) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const auto is_open = [](int fd) { return ::fcntl(fd, F_GETFD) >= 0; };
    {
        gt::io::fd r(fds[0]);
        EXPECT_TRUE(r);
        EXPECT_EQ(r.get(), fds[0]);
        gt::io::fd moved(std::move(r));
        EXPECT_FALSE(r);
        EXPECT_EQ(r.get(), -1);
        EXPECT_EQ(moved.get(), fds[0]);
        gt::io::fd assigned;
        assigned = std::move(moved);
        EXPECT_EQ(assigned.get(), fds[0]);
        ssize_t n = 1;
        int error = 0;
        gt::thread reader([&] {
            char c;
            n = gt::io::read(fds[0], &c, 1);
            error = errno;
        });
        ASSERT_TRUE(wait_until_blocked_on("readable", 1));  // it blocks
        assigned.reset();          // closes, waking the reader
        EXPECT_FALSE(assigned);
        reader.join();
        EXPECT_EQ(n, -1);
        EXPECT_EQ(error, EBADF);
        EXPECT_FALSE(is_open(fds[0]));
    }
    {
        gt::io::fd w(fds[1]);
        EXPECT_EQ(w.release(), fds[1]);
    }
    EXPECT_TRUE(is_open(fds[1])) << "released: not closed";
    {
        gt::io::fd w(fds[1]);
        int other[2];
        ASSERT_EQ(::pipe2(other, O_CLOEXEC), 0);
        w.reset(other[0]);  // closes fds[1], owns other[0]
        EXPECT_FALSE(is_open(fds[1]));
        EXPECT_EQ(w.get(), other[0]);
        gt::io::close(other[1]);
    }
    EXPECT_EQ(::fcntl(fds[1], F_GETFD), -1);
}

namespace {

// The soft descriptor limit for one test, restored at the end.
struct descriptor_limit {
    rlimit old{};
    explicit descriptor_limit(rlim_t soft) {
        ::getrlimit(RLIMIT_NOFILE, &old);
        rlimit lowered = old;
        lowered.rlim_cur = soft;
        ::setrlimit(RLIMIT_NOFILE, &lowered);
    }
    ~descriptor_limit() { ::setrlimit(RLIMIT_NOFILE, &old); }
};

}  // namespace

// Why (sustrik/libmill#182): at the descriptor limit accept fails with
// EMFILE while the connection stays queued, and an edge-triggered poller
// sends no new edge for it. accept must return the error at once (no spin
// inside it), and once a descriptor is free the queued backlog is accepted
// without a new connection arriving to raise an edge.
TEST(IoSocket, AcceptAtTheDescriptorLimitFailsWithEmfileAndTheBacklogIsAcceptedLater) {
    sockaddr_in address;
    const int listener = io_test::listen_loopback(address);
    ASSERT_GE(listener, 0);
    constexpr int queued = 3;
    std::vector<int> clients;
    for (int i = 0; i < queued; ++i) clients.push_back(io_test::connect_loopback(address));
    for (const int fd : clients) ASSERT_GE(fd, 0);
    ASSERT_EQ(gt::io::wait_readable(listener), 0);  // the listener is registered; its token set

    // Take every free descriptor below a lowered limit.
    std::vector<int> hogs;
    {
        const int highest = std::max({listener, clients.back()});
        const descriptor_limit limit(static_cast<rlim_t>(highest + 8));
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) hogs.push_back(fd);
        ASSERT_EQ(errno, EMFILE);
        const gt::io::poller_counters before = gt::io::poller_stats();
        for (int i = 0; i < 5; ++i) {
            errno = 0;
            EXPECT_EQ(gt::io::accept(listener, nullptr, nullptr, std::chrono::steady_clock::now() + 1s), -1);
            EXPECT_EQ(errno, EMFILE);
        }
        const gt::io::poller_counters after = gt::io::poller_stats();
        EXPECT_LT(after.polls - before.polls, 5u)
            << "each EMFILE returns at once, without waiting in the poller";
        for (const int fd : hogs) ::close(fd);
    }
    // Room again: the queued connections are accepted, with no new edge.
    for (int i = 0; i < queued; ++i) {
        const int connection =
            gt::io::accept(listener, nullptr, nullptr, std::chrono::steady_clock::now() + 2s);
        EXPECT_GE(connection, 0) << "queued connection " << i << ": errno " << errno;
        if (connection >= 0) gt::io::close(connection);
    }
    for (const int fd : clients) gt::io::close(fd);
    gt::io::close(listener);
}

// Why: a descriptor closed where gt cannot see it (fclose's internal close,
// close_range, another OS thread; here the raw system call) leaves its
// state behind; when accept returns the same number for a new connection,
// that state must not pass for the new socket's, which is not in the
// epoll set: its reads would wait forever. A dup of the old socket keeps
// the old registration alive, and its events, tagged with the old
// generation, are dropped.
TEST(IoSocket, AnAcceptedNumberClosedBehindGtsBackIsRegisteredAfresh) {
    sockaddr_in address;
    const int listener = io_test::listen_loopback(address);
    ASSERT_GE(listener, 0);
    const int first_client = io_test::connect_loopback(address);
    const int second_client = io_test::connect_loopback(address);  // queued, before the number is freed
    const int first = gt::io::accept(listener, nullptr, nullptr);
    ASSERT_GE(first, 0);
    char c;
    ASSERT_EQ(gt::io::read(first, &c, 1, already_passed()), -1);  // token clear, registered
    const int keeper = ::dup(first);                              // keeps the old registration in the set
    ASSERT_EQ(::syscall(SYS_close, first), 0);                    // not through gt
    const int second = gt::io::accept(listener, nullptr, nullptr);
    ASSERT_EQ(second, first) << "the lowest free number is reused";

    const gt::io::poller_counters before = gt::io::poller_stats();
    ssize_t n = 0;
    char got[8] = {};
    gt::thread reader(
        [&] { n = gt::io::read(second, got, sizeof got, std::chrono::steady_clock::now() + 5s); });
    ASSERT_TRUE(wait_until_blocked_on("readable", 1));  // it blocks
    ASSERT_EQ(gt::io::write(first_client, "old", 3), 3);  // an event for the old generation
    gt::this_thread::sleep_for(2ms);
    ASSERT_EQ(gt::io::write(second_client, "new", 3), 3);
    reader.join();
    EXPECT_EQ(n, 3);
    EXPECT_EQ(std::string(got), "new");
    EXPECT_GE(gt::io::poller_stats().stale_events - before.stale_events, 1u);
    ::close(keeper);
    gt::io::close(second);
    gt::io::close(first_client);
    gt::io::close(second_client);
    gt::io::close(listener);
}
