// Adversarial runs of gt::io, timers and the idle path with preemption on:
// many ping-pongs with random yields, deadlines and priorities; a close
// racing with a read on another thread while the number is reused at
// once; timers started, cancelled and destroyed as they expire; accept
// storms; I/O under a gt::mutex; a forked child. Each run counts events,
// never wall time, and a watchdog turns a hang into a failure.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "gt/condition_variable.hpp"
#include "gt/io.hpp"
#include "gt/mutex.hpp"
#include "gt/thread.hpp"
#include "gt/timer.hpp"
#include "io_helpers.hpp"
#include "poller.hpp"
#include "scheduler.hpp"

using namespace std::chrono_literals;
using io_test::pipe_pair;

namespace {

// Ends the process with a message if the scope is still running after
// `limit`: a hang fails the test instead of stalling the suite. Waits on
// an OS thread, outside gt, so it runs even when the green threads' OS
// thread is stuck in the kernel.
class watchdog {
public:
    explicit watchdog(const char* what, std::chrono::seconds limit = 60s)
        : thread_([this, what, limit] {
              std::unique_lock lock(m_);
              if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
                  std::fprintf(stderr, "watchdog: %s still running after %llds: a hang\n", what,
                               static_cast<long long>(limit.count()));
                  std::abort();
              }
          }) {}
    ~watchdog() {
        {
            std::lock_guard lock(m_);
            done_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

// Burns about `n` loop turns of CPU, so that a tick may land anywhere.
void spin_for(unsigned n) {
    volatile unsigned sink = 0;
    for (unsigned k = 0; k < n; ++k) sink = k;
    (void)sink;
}

// A few yields, sometimes none: the green threads interleave differently
// in every round.
void random_yields(std::minstd_rand& dice) {
    for (unsigned i = dice() % 4; i > 0; --i) gt::this_thread::yield();
}

// Reads exactly `n` bytes, retrying a read whose short random deadline
// passed; false on an error or an early end of file.
bool read_exactly(int fd, char* buffer, std::size_t n, std::minstd_rand& dice) {
    std::size_t done = 0;
    while (done < n) {
        ssize_t got;
        if (dice() % 3 == 0) {
            got = gt::io::read(fd, buffer + done, n - done,
                               std::chrono::steady_clock::now() + std::chrono::microseconds(dice() % 300));
            if (got < 0 && errno == ETIMEDOUT) continue;
        } else {
            got = gt::io::read(fd, buffer + done, n - done);
        }
        if (got <= 0) return false;
        done += static_cast<std::size_t>(got);
    }
    return true;
}

enum class channel_kind { pipe, unix_stream, unix_datagram, tcp };

// Two one-way channels, a->b and b->a, of `kind`, closed at the end.
struct duplex {
    int a_out = -1, b_in = -1, b_out = -1, a_in = -1;
    std::vector<int> owned;
    explicit duplex(channel_kind kind) {
        if (kind == channel_kind::pipe) {
            int x[2], y[2];
            if (::pipe2(x, O_CLOEXEC) != 0 || ::pipe2(y, O_CLOEXEC) != 0) return;
            b_in = x[0], a_out = x[1], a_in = y[0], b_out = y[1];
            owned = {x[0], x[1], y[0], y[1]};
        } else if (kind == channel_kind::tcp) {
            auto* p = new io_test::tcp_pair;  // closed below, through `owned`
            a_out = a_in = p->client;
            b_out = b_in = p->server;
            owned = {p->client, p->server};
            p->client = p->server = -1;
            delete p;
        } else {
            int s[2];
            const int type = kind == channel_kind::unix_stream ? SOCK_STREAM : SOCK_SEQPACKET;
            if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, s) != 0) return;
            a_out = a_in = s[0];
            b_out = b_in = s[1];
            owned = {s[0], s[1]};
        }
    }
    duplex(const duplex&) = delete;
    duplex& operator=(const duplex&) = delete;
    ~duplex() {
        for (int fd : owned) gt::io::close(fd);
    }
};

}  // namespace

// Why: a lost wakeup shows as a ping-pong that stops. Many pairs over
// every kind of descriptor, with yields, short deadlines and priority
// changes between the calls, let ticks land at every point of a read or a
// write; every round must complete.
TEST(IoStress, ManyPingPongsWithRandomYieldsDeadlinesAndPrioritiesAllComplete) {
    const watchdog dog("the ping-pongs");
    constexpr int pairs_per_kind = 12;
    constexpr int rounds = 300;
    constexpr std::size_t message = 97;
    std::atomic<long> completed{0};
    std::vector<std::unique_ptr<duplex>> channels;
    std::vector<gt::thread> threads;
    for (channel_kind kind :
         {channel_kind::pipe, channel_kind::unix_stream, channel_kind::unix_datagram, channel_kind::tcp}) {
        for (int i = 0; i < pairs_per_kind; ++i) {
            channels.push_back(std::make_unique<duplex>(kind));
            duplex& d = *channels.back();
            ASSERT_GE(d.a_out, 0);
            ASSERT_GE(d.b_in, 0);
            const unsigned seed = static_cast<unsigned>(channels.size());
            threads.emplace_back([&d, &completed, seed] {
                std::minstd_rand dice(seed);
                char out[message], in[message];
                for (int r = 0; r < rounds; ++r) {
                    std::fill(std::begin(out), std::end(out), static_cast<char>(r));
                    random_yields(dice);
                    if (gt::io::write(d.a_out, out, message) != static_cast<ssize_t>(message)) return;
                    if (dice() % 16 == 0) gt::this_thread::set_priority(static_cast<int>(dice() % 3) + 15);
                    if (!read_exactly(d.a_in, in, message, dice)) return;
                    if (in[0] != static_cast<char>(r) || in[message - 1] != static_cast<char>(r)) return;
                    completed.fetch_add(1, std::memory_order_relaxed);
                }
            });
            threads.emplace_back([&d, seed] {
                std::minstd_rand dice(seed * 7919);
                char buffer[message];
                for (int r = 0; r < rounds; ++r) {
                    if (!read_exactly(d.b_in, buffer, message, dice)) return;
                    random_yields(dice);
                    if (gt::io::write(d.b_out, buffer, message) != static_cast<ssize_t>(message)) return;
                }
            });
        }
    }
    for (gt::thread& t : threads) t.join();
    EXPECT_EQ(completed.load(), 4L * pairs_per_kind * rounds);
}

// Why (wingo/fibers#80, Go's pollUnblock): a thread inside gt::io::read
// when another thread closes the descriptor must come back with EBADF,
// whatever point of the read the close lands on: also between the
// registration and the wait, or between an EAGAIN and the next wait, where
// a tick may switch to the closer. The number, reused at once by a new
// pipe that gt has not seen, must never be read by it: that pipe is
// blocking, and a read of it would steal the new pipe's data, or hold the
// whole OS thread in read(2).
TEST(IoStress, ACloseRacingWithAReadNeverHandsTheReaderTheNumbersNextFile) {
    constexpr int iterations = 10000;
    std::atomic<int> iteration{0};
    std::atomic<int> rescue_fd{-1};  // the write end of the pipe that reuses the number
    std::atomic<bool> finished{false};
    std::atomic<int> rescued{0};
    // A hang here is the OS thread blocked in read(2) on the new, blocking
    // pipe: an outside OS thread writes into it to set the thread free, and
    // the run counts it.
    std::thread rescuer([&] {
        int seen = -1;
        auto since = std::chrono::steady_clock::now();
        while (!finished.load()) {
            std::this_thread::sleep_for(50ms);
            const int now_at = iteration.load();
            if (now_at != seen) {
                seen = now_at;
                since = std::chrono::steady_clock::now();
            } else if (std::chrono::steady_clock::now() - since > 3s) {
                const int fd = rescue_fd.load();
                if (fd >= 0 && ::write(fd, "R", 1) == 1) rescued.fetch_add(1);
                since = std::chrono::steady_clock::now();
            }
        }
    });
    gt::detail::poller& poller = gt::detail::scheduler::current().poller();
    int wrong_file = 0, other = 0, closed_inside = 0;
    std::minstd_rand dice(12345);
    for (int i = 0; i < iterations; ++i) {
        iteration.store(i);
        int p[2];
        ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
        char got = 0;
        ssize_t n = 0;
        int error = 0;
        bool returned = false;
        const unsigned before = dice() % 100000;  // up to about a slice: the slice may end anywhere in the read
        gt::thread reader([&] {
            spin_for(before);
            n = gt::io::read(p[0], &got, 1);
            error = errno;
            returned = true;
        });
        // The reader is inside gt::io::read once its descriptor is
        // registered (its state has a kind): close from then on.
        for (;;) {
            const gt::detail::fd_state* st = poller.find(p[0]);
            if (st != nullptr && st->kind != gt::detail::fd_kind::unknown) break;
            gt::this_thread::yield();
        }
        spin_for(dice() % 2000);
        if (returned) {  // cannot happen: nothing was written to p
            ++other;
        } else {
            ++closed_inside;
        }
        gt::io::close(p[0]);
        int q[2];
        ASSERT_EQ(::pipe2(q, O_CLOEXEC), 0);  // takes p[0]'s number
        rescue_fd.store(q[1]);
        ::write(q[1], "Z", 1);  // data in the new file, which the reader must not take
        reader.join();
        rescue_fd.store(-1);
        if (n == 1) {
            ++wrong_file;
        } else if (!(n == -1 && error == EBADF)) {
            ++other;
        }
        gt::io::close(q[0]);
        gt::io::close(q[1]);
        gt::io::close(p[1]);
    }
    finished.store(true);
    rescuer.join();
    EXPECT_EQ(closed_inside, iterations);
    EXPECT_EQ(wrong_file, 0) << "reads that took the next file's data";
    EXPECT_EQ(rescued.load(), 0) << "OS thread blocked in read(2) on the next file";
    EXPECT_EQ(other, 0);
}

// Why: a gt::timer is started, cancelled and destroyed by green threads
// while ticks expire it; a one-shot timer fires at most once per start,
// a cancel that returns true means it will not fire, and nothing leaks or
// hangs (run under ASan too).
TEST(IoStress, TimersStartedCancelledAndDestroyedAsTheyExpireStayConsistent) {
    const watchdog dog("the timer churn");
    constexpr int workers = 8;
    constexpr int rounds = 400;
    std::atomic<long> fired_after_cancel{0}, double_fired{0}, fired_total{0};
    std::vector<gt::thread> threads;
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back([&, w] {
            std::minstd_rand dice(static_cast<unsigned>(w) + 1);
            for (int r = 0; r < rounds; ++r) {
                auto fires = std::make_shared<std::atomic<int>>(0);
                auto cancelled = std::make_shared<std::atomic<bool>>(false);
                {
                    gt::timer t(std::chrono::microseconds(dice() % 200), [fires, cancelled, &fired_after_cancel] {
                        if (cancelled->load()) fired_after_cancel.fetch_add(1);
                        fires->fetch_add(1);
                    });
                    spin_for(dice() % 5000);
                    switch (dice() % 4) {
                    case 0:
                        if (t.cancel()) cancelled->store(true);
                        break;
                    case 1:
                        gt::this_thread::yield();
                        break;
                    case 2:
                        t.start(std::chrono::microseconds(dice() % 100));  // restart: one firing at most
                        break;
                    default:
                        break;  // destroyed at once
                    }
                }
                // Destroyed: whatever ran has returned; nothing more will.
                const int f = fires->load();
                if (f > 1) double_fired.fetch_add(1);
                fired_total.fetch_add(f);
                gt::this_thread::sleep_for(std::chrono::microseconds(dice() % 300));
                if (fires->load() != f) fired_after_cancel.fetch_add(1);  // fired after its destruction
            }
        });
    }
    for (gt::thread& t : threads) t.join();
    EXPECT_EQ(fired_after_cancel.load(), 0);
    EXPECT_EQ(double_fired.load(), 0);
    EXPECT_GT(fired_total.load(), 0);
}

// Why: an accept storm (hundreds of connections at once, two acceptors
// sharing the listener) must serve every client: the listener's token
// stays set while the backlog holds more, and the edge of a connection
// that arrives during an accept is not lost.
TEST(IoStress, AnAcceptStormServesEveryClient) {
    const watchdog dog("the accept storm");
    constexpr int clients = 400;
    sockaddr_in address;
    const int listener = io_test::listen_loopback(address, 1024);
    ASSERT_GE(listener, 0);
    std::atomic<int> served{0}, answered{0};
    std::atomic<bool> stop{false};
    std::vector<gt::thread> servers;
    std::vector<gt::thread> handlers;
    for (int a = 0; a < 2; ++a) {
        servers.emplace_back([&] {
            while (!stop.load()) {
                const int c = gt::io::accept(listener, nullptr, nullptr, std::chrono::steady_clock::now() + 20ms);
                if (c < 0) continue;
                gt::thread([c, &served] {
                    char b;
                    if (gt::io::read(c, &b, 1) == 1 && gt::io::write(c, &b, 1) == 1) served.fetch_add(1);
                    gt::io::close(c);
                }).detach();
            }
        });
    }
    std::vector<gt::thread> cs;
    for (int i = 0; i < clients; ++i) {
        cs.emplace_back([&, i] {
            const int fd = io_test::connect_loopback(address);
            if (fd < 0) return;
            char b = static_cast<char>(i);
            if (i % 3 == 0) gt::this_thread::yield();
            if (gt::io::write(fd, &b, 1) == 1 && gt::io::read(fd, &b, 1) == 1 && b == static_cast<char>(i)) {
                answered.fetch_add(1);
            }
            gt::io::close(fd);
        });
    }
    for (gt::thread& t : cs) t.join();
    stop.store(true);
    for (gt::thread& t : servers) t.join();
    gt::io::close(listener);
    EXPECT_EQ(answered.load(), clients);
}

// Why: a thread BLOCKED on a descriptor is on the descriptor's wait queue,
// not a run queue; changing its priority then (or a priority inherited
// through a gt::mutex it holds while it reads) must neither lose its
// wakeup nor leave it on two queues.
TEST(IoStress, PriorityChangesOfThreadsBlockedOnDescriptorsLoseNoWakeup) {
    const watchdog dog("priority changes");
    constexpr int rounds = 300;
    int done = 0;
    std::minstd_rand dice(7);
    for (int r = 0; r < rounds; ++r) {
        pipe_pair p;
        gt::mutex m;
        char got = 0;
        gt::thread reader([&] {
            const std::lock_guard lock(m);  // a high-priority locker will lend it its priority
            gt::io::read(p.r, &got, 1);
        });
        gt::thread locker({.priority = 20}, [&] {
            for (unsigned k = dice() % 3; k > 0; --k) gt::this_thread::yield();
            const std::lock_guard lock(m);
        });
        for (unsigned k = dice() % 3; k > 0; --k) gt::this_thread::yield();
        reader.set_priority(static_cast<int>(dice() % 31));
        if (dice() % 2) gt::this_thread::yield();
        gt::io::write(p.w, "x", 1);
        reader.set_priority(static_cast<int>(dice() % 31));
        reader.join();
        locker.join();
        if (got == 'x') ++done;
    }
    EXPECT_EQ(done, rounds);
}

// Why: threads wait on a gt::condition_variable fed by a thread that waits
// on a pipe fed by a gt::timer callback: the three kinds of waiting
// (condition variable, descriptor, timer heap) hand off to each other, and
// the deadlock report must not fire while any of them can still wake.
TEST(IoStress, ConditionVariablesDescriptorsAndTimersHandOffWithoutALostWakeup) {
    const watchdog dog("the hand-offs");
    constexpr int items = 500;
    pipe_pair p;
    gt::mutex m;
    gt::condition_variable cv;
    int queued = 0, consumed = 0;
    bool over = false;
    std::atomic<int> written{0};
    gt::timer feeder(
        200us,
        [&] {
            if (written.load() < items && gt::io::write(p.w, "i", 1) == 1) written.fetch_add(1);
        },
        100us);
    gt::thread pump([&] {
        char c;
        for (int i = 0; i < items; ++i) {
            if (gt::io::read(p.r, &c, 1) != 1) break;
            {
                const std::lock_guard lock(m);
                ++queued;
            }
            cv.notify_one();
        }
        const std::lock_guard lock(m);
        over = true;
        cv.notify_all();
    });
    std::vector<gt::thread> consumers;
    for (int i = 0; i < 4; ++i) {
        consumers.emplace_back([&] {
            std::unique_lock lock(m);
            for (;;) {
                cv.wait(lock, [&] { return queued > 0 || over; });
                if (queued == 0) return;
                --queued;
                ++consumed;
            }
        });
    }
    pump.join();
    for (gt::thread& t : consumers) t.join();
    feeder.cancel();
    EXPECT_EQ(consumed, items);
}

// Why: a child made by fork(2) must use gt::io with its own epoll instance
// (the inherited descriptor names the parent's): a green thread of the
// child blocks on a pipe, the parent writes, the child's thread wakes;
// and the parent's own waits still work afterwards.
TEST(IoStress, AForkedChildBlocksAndWakesOnItsOwnPoller) {
    const watchdog dog("the fork");
    pipe_pair to_child, from_child, parent_own;
    char c;
    // The parent's poller holds these before the fork.
    ASSERT_EQ(gt::io::write(parent_own.w, "p", 1), 1);
    ASSERT_EQ(gt::io::read(parent_own.r, &c, 1), 1);
    gt::thread parent_waiter([&] { gt::io::read(parent_own.r, &c, 1); });  // blocked across the fork
    gt::this_thread::yield();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        char got = 0;
        gt::thread t([&] { gt::io::read(to_child.r, &got, 1); });
        t.join();
        gt::io::write(from_child.w, &got, 1);
        std::_Exit(got == 'c' ? 0 : 3);  // the parent_waiter copy stays blocked: never joined here
    }
    ASSERT_EQ(gt::io::write(to_child.w, "c", 1), 1);
    char back = 0;
    EXPECT_EQ(gt::io::read(from_child.r, &back, 1), 1);
    EXPECT_EQ(back, 'c');
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    ASSERT_EQ(gt::io::write(parent_own.w, "q", 1), 1);
    parent_waiter.join();
    EXPECT_EQ(c, 'q');
}

// Why: while every thread waits on a timer, a periodic gt::timer and an
// idle callback that returns false, the OS thread sleeps in the poller;
// CPU time stays a small part of the time waited.
TEST(IoStress, TimersAndAnIdleCallbackCostLittleCpuWhileIdle) {
    const watchdog dog("the idle run");
    std::atomic<int> ticks{0};
    gt::timer periodic(5ms, [&] { ticks.fetch_add(1); }, 5ms);
    gt::idle_handle idle = gt::on_idle([] { return false; });
    pipe_pair p;
    gt::thread reader([&] {
        char c;
        gt::io::read(p.r, &c, 1, std::chrono::steady_clock::now() + 300ms);
    });
    const std::int64_t before = io_test::cpu_us();
    gt::this_thread::sleep_for(300ms);
    reader.join();
    const std::int64_t used = io_test::cpu_us() - before;
    periodic.cancel();
    EXPECT_GE(ticks.load(), 10);
    // Measured: 1-3 ms for 60 firings and as many idle rounds.
    EXPECT_LT(used, 60'000) << "µs of CPU for 300 ms of waiting";
}

// Why: a program that closes every descriptor above 2 (a daemon's start,
// a child before exec) also closes the number of the scheduler's own epoll
// instance. Closed, every idle's epoll_pwait2 failed at once with EBADF:
// sleeps became a busy loop and gt::io calls failed. The close wrapper
// refuses that number (EBADF, as for a number that is not open), and the
// OS thread still sleeps in the poller (its polls counted).
TEST(IoStress, ClosingTheSchedulersOwnEpollDescriptorFailsAndIdlingStillSleeps) {
    const watchdog dog("the idle after a close of everything");
    gt::this_thread::sleep_for(1ms);  // the scheduler has idled: its epoll instance exists
    const int epoll = gt::detail::scheduler::current().poller().epoll_fd();
    ASSERT_GE(epoll, 0);
    errno = 0;
    EXPECT_EQ(::close(epoll), -1);
    EXPECT_EQ(errno, EBADF);
    const std::uint64_t polls_before = gt::io::poller_stats().polls;
    for (int i = 0; i < 20; ++i) gt::this_thread::sleep_for(5ms);
    // One poll per sleep, give or take a tick's: a spinning idle polls
    // thousands of times in 100 ms.
    EXPECT_LT(gt::io::poller_stats().polls - polls_before, 200u);
    pipe_pair p;
    char c = 0;
    gt::thread reader([&] { gt::io::read(p.r, &c, 1); });
    gt::this_thread::sleep_for(2ms);
    ASSERT_EQ(gt::io::write(p.w, "x", 1), 1);
    reader.join();
    EXPECT_EQ(c, 'x');
}

// Why: each OS thread has its own scheduler and poller; green threads of
// four OS threads ping-pong with each other over pipes (every message
// crosses OS threads, through the kernel), with yields and deadlines, at
// the same time: no poller may lose an edge that another OS thread's
// write raised, and each OS thread's idle must wake for it.
TEST(IoStress, GreenThreadsOfFourOsThreadsPingPongAcrossThem) {
    const watchdog dog("the cross-thread ping-pongs");
    constexpr int os_threads = 4;
    constexpr int per_thread = 6;
    constexpr int rounds = 200;
    // Ring: green thread j of OS thread i sends to green thread j of OS
    // thread i+1 and reads from OS thread i-1's.
    std::vector<std::array<int, 2>> pipes(os_threads * per_thread);
    for (auto& p : pipes) ASSERT_EQ(::pipe2(p.data(), O_CLOEXEC), 0);
    std::atomic<long> completed{0};
    std::vector<std::thread> workers;
    for (int i = 0; i < os_threads; ++i) {
        workers.emplace_back([&, i] {
            std::vector<gt::thread> ts;
            for (int j = 0; j < per_thread; ++j) {
                ts.emplace_back([&, i, j] {
                    std::minstd_rand dice(static_cast<unsigned>(i * 100 + j));
                    const int out = pipes[static_cast<std::size_t>(((i + 1) % os_threads) * per_thread + j)][1];
                    const int in = pipes[static_cast<std::size_t>(i * per_thread + j)][0];
                    char buffer[64];
                    for (int r = 0; r < rounds; ++r) {
                        // The first OS thread starts each round; the others pass it on.
                        if (i == 0 && gt::io::write(out, buffer, sizeof buffer) != sizeof buffer) return;
                        random_yields(dice);
                        if (!read_exactly(in, buffer, sizeof buffer, dice)) return;
                        if (i != 0 && gt::io::write(out, buffer, sizeof buffer) != sizeof buffer) return;
                        completed.fetch_add(1, std::memory_order_relaxed);
                    }
                });
            }
            for (gt::thread& t : ts) t.join();
        });
    }
    for (std::thread& w : workers) w.join();
    for (auto& p : pipes) {
        ::close(p[0]);
        ::close(p[1]);
    }
    EXPECT_EQ(completed.load(), long{os_threads} * per_thread * rounds);
}

// Why: a pool of threads reading one descriptor (workers on one datagram
// socket, acceptors on one listener) must not leave work queued while a
// worker sleeps. A reader that clears the token, reads, and sets it again
// only after a switch let another reader find it clear and wait for an
// edge that never comes: the message or connection was queued already,
// and an edge-triggered poller announces it once. Two datagrams, two
// readers, a deadline: a reader that times out while a datagram is still
// queued waited with the token wrongly clear.
TEST(IoStress, TwoReadersOfOneSocketNeverWaitWhileAMessageIsQueued) {
    const watchdog dog("the reader pool");
    constexpr int iterations = 3000;
    int stranded = 0;
    std::minstd_rand dice(99);
    for (int i = 0; i < iterations; ++i) {
        io_test::unix_pair pair(SOCK_DGRAM);
        ASSERT_EQ(::send(pair.a, "1", 1, 0), 1);
        ASSERT_EQ(::send(pair.a, "2", 1, 0), 1);
        int timed_out = 0;
        std::vector<gt::thread> readers;
        for (int r = 0; r < 2; ++r) {
            const unsigned before = dice() % 100000;  // the slice may end anywhere in the recv
            readers.emplace_back([&, before] {
                spin_for(before);
                char c;
                if (gt::io::recv(pair.b, &c, 1, 0, std::chrono::steady_clock::now() + 20ms) < 0 && errno == ETIMEDOUT) {
                    ++timed_out;
                }
            });
        }
        for (gt::thread& t : readers) t.join();
        stranded += timed_out;
    }
    EXPECT_EQ(stranded, 0) << "readers that waited while a datagram was queued";
}

// Why: as above, for a pool of acceptors: two connections queued, two
// acceptors, each accepts once.
TEST(IoStress, TwoAcceptorsNeverWaitWhileAConnectionIsQueued) {
    const watchdog dog("the acceptor pool");
    constexpr int iterations = 1500;
    sockaddr_in address;
    const int listener = io_test::listen_loopback(address);
    ASSERT_GE(listener, 0);
    int stranded = 0;
    std::minstd_rand dice(5);
    for (int i = 0; i < iterations; ++i) {
        const int c1 = io_test::connect_loopback(address);
        const int c2 = io_test::connect_loopback(address);
        ASSERT_GE(c1, 0);
        ASSERT_GE(c2, 0);
        int timed_out = 0;
        std::vector<gt::thread> acceptors;
        for (int r = 0; r < 2; ++r) {
            const unsigned before = dice() % 100000;
            acceptors.emplace_back([&, before] {
                spin_for(before);
                const int c = gt::io::accept(listener, nullptr, nullptr, std::chrono::steady_clock::now() + 20ms);
                if (c >= 0) {
                    gt::io::close(c);
                } else if (errno == ETIMEDOUT) {
                    ++timed_out;
                }
            });
        }
        for (gt::thread& t : acceptors) t.join();
        stranded += timed_out;
        gt::io::close(c1);
        gt::io::close(c2);
        // A stranded connection is still queued: take it, for the next round.
        for (int c; (c = gt::io::accept(listener, nullptr, nullptr, io_test::already_passed())) >= 0;) gt::io::close(c);
    }
    gt::io::close(listener);
    EXPECT_EQ(stranded, 0) << "acceptors that waited while a connection was queued";
}

// Why: wait_readable is for code that makes its own calls (a library
// handed a descriptor, an SSL read that wants more): wait, read until
// EAGAIN, wait again. gt cannot clear the readiness token after a read it
// does not see, and wait_readable returned at once for ever after the
// first edge: the loop spun, tens of thousands of wakeups a second. It
// checks the level now: one return per write here, give or take one.
TEST(IoStress, WaitReadableWithTheProgramsOwnReadsDoesNotSpin) {
    const watchdog dog("the wait_readable loop");
    pipe_pair p;
    long waits = 0, got = 0;
    gt::thread reader([&] {
        char buffer[16];
        while (got < 3) {
            if (gt::io::wait_readable(p.r) != 0) return;
            ++waits;
            const ssize_t n = ::read(p.r, buffer, sizeof buffer);  // the program's own read
            if (n > 0) got += n;
        }
    });
    for (int i = 0; i < 3; ++i) {
        gt::this_thread::sleep_for(20ms);
        ASSERT_EQ(::write(p.w, "x", 1), 1);
    }
    reader.join();
    EXPECT_EQ(got, 3);
    EXPECT_LE(waits, 6) << "returns of wait_readable for 3 one-byte writes";
}

// Why: dup2 onto a descriptor number closes the descriptor that had it,
// without the close wrapper: gt kept a state that said "registered" for a
// file that was not in the epoll set, and a read of the new file waited
// for an edge that never came, with data queued (and no deadlock report:
// a thread waits on a descriptor). dup2 and dup3 forget the number first.
TEST(IoStress, AReadAfterDup2OntoAKnownNumberReadsTheNewFile) {
    const watchdog dog("the read after dup2");
    for (bool use_dup3 : {false, true}) {
        pipe_pair p, q;
        char buffer[8];
        ASSERT_EQ(gt::io::write(p.w, "a", 1), 1);
        ASSERT_EQ(gt::io::read(p.r, buffer, sizeof buffer), 1);  // a short read: the token is clear
        ASSERT_EQ(use_dup3 ? ::dup3(q.r, p.r, O_CLOEXEC) : ::dup2(q.r, p.r), p.r);
        ASSERT_EQ(::write(q.w, "b", 1), 1);
        EXPECT_EQ(gt::io::read(p.r, buffer, sizeof buffer, std::chrono::steady_clock::now() + 5s), 1)
            << (use_dup3 ? "dup3" : "dup2") << ": " << std::strerror(errno);
        EXPECT_EQ(buffer[0], 'b');
    }
    // The poller's own epoll descriptor is refused as a target.
    const int epoll = gt::detail::scheduler::current().poller().epoll_fd();
    pipe_pair r;
    EXPECT_EQ(::dup2(r.r, epoll), -1);
    EXPECT_EQ(errno, EBADF);
}
