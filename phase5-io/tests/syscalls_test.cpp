// System calls under preemption. The timer sends SIGALRM every slice; a
// tick that lands while a green thread is blocked in the kernel must not
// make the call fail with EINTR, return early, or change errno: read(2)
// and write(2) are restarted (SA_RESTART); the calls that signal(7) says
// are never restarted (nanosleep, poll, select, epoll_wait, ...) are
// wrapped by src/syscalls.cpp: on a green thread they park only that
// thread (syscalls_park_test.cpp checks that the others run meanwhile),
// elsewhere they hold SIGALRM and the tick that fell due meanwhile is
// delivered afterwards; either way no tick ends them. Also: errno belongs to the green
// thread across preemption, a fork(2) child is preempted too, and invalid
// GT_TIME_SLICE_US / GT_STALL_REPORT_MS values are reported and replaced.
//
// Every test sets its own slice (the binary runs with GT_TIME_SLICE_US=100,
// see the Makefile) and keeps a spinning green thread READY, so that ticks
// land (a blocking call lasts ~300 slices of 100 µs) and would switch if
// they could. Timing assertions are lower bounds plus generous upper ones.
#include <gt/debug.hpp>
#include <gt/preemption.hpp>
#include <gt/thread.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "preemption_for_test.hpp"
#include "scheduler.hpp"
#include "syscalls.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

bool sigalrm_blocked() {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    return sigismember(&mask, SIGALRM) == 1;
}

// A green thread that spins without calls or yields (only the timer takes
// the CPU from it) until destroyed: READY whenever another thread runs.
// It publishes its preemption count and whether it ever ran with SIGALRM
// blocked (checked every 4096 turns of the loop: pthread_sigmask is a
// system call). If preemption is broken it would spin forever once it got
// the CPU: it gives up after 10 s without a preemption (not 10 s of its
// life: a loaded machine stretches a test), so that a broken runtime fails
// the test instead of hanging it.
class spinner {
public:
    spinner()
        : thread_({.name = "spinner"}, [this] {
              auto give_up = steady::now() + 10s;
              std::uint64_t preempted = 0;
              for (std::uint64_t turn = 0; !stop_.load(std::memory_order_relaxed); ++turn) {
                  spins_.store(spins_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
                  preemptions_.store(gt::debug::this_thread_stats().preemptions, std::memory_order_relaxed);
                  if (turn % 4096 == 0) {
                      if (sigalrm_blocked()) saw_sigalrm_blocked_ = true;
                      if (preemptions_.load(std::memory_order_relaxed) != preempted) {
                          preempted = preemptions_.load(std::memory_order_relaxed);
                          give_up = steady::now() + 10s;
                      } else if (steady::now() > give_up) {
                          ADD_FAILURE() << "the spinner kept the CPU for 10 s: preemption is broken";
                          return;
                      }
                  }
              }
          }) {}
    ~spinner() {
        stop();
        thread_.join();
    }
    spinner(const spinner&) = delete;
    spinner& operator=(const spinner&) = delete;

    void stop() const { stop_ = true; }
    long spins() const { return spins_.load(); }
    std::uint64_t preemptions() const { return preemptions_.load(); }
    bool saw_sigalrm_blocked() const { return saw_sigalrm_blocked_.load(); }

private:
    mutable std::atomic<bool> stop_{false};
    std::atomic<long> spins_{0};
    std::atomic<std::uint64_t> preemptions_{0};
    std::atomic<bool> saw_sigalrm_blocked_{false};
    gt::thread thread_;  // last: starts after the members it uses
};

// Spins without yielding (only a tick can switch away from the caller)
// until `done` or the deadline; true if `done` came first.
template <typename Predicate>
bool spin_until(Predicate done, std::chrono::nanoseconds deadline = 10s) {
    const auto end = steady::now() + deadline;
    while (!done()) {
        if (steady::now() > end) return false;
    }
    return true;
}

class pipe_pair {
public:
    pipe_pair() {
        if (::pipe(fds_) != 0) throw std::runtime_error("pipe failed");
    }
    ~pipe_pair() {
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    int read_end() const { return fds_[0]; }
    int write_end() const { return fds_[1]; }

private:
    int fds_[2];
};

// Another OS thread that writes `text` to `fd` after `delay` (its sleep is
// a plain nanosleep: no gt runs on that OS thread, so no ticks there).
std::thread write_later(int fd, std::string text, std::chrono::milliseconds delay) {
    return std::thread([fd, text = std::move(text), delay] {
        std::this_thread::sleep_for(delay);
        const ssize_t n = ::write(fd, text.data(), text.size());
        (void)n;
    });
}

timespec to_timespec(std::chrono::nanoseconds d) {
    return {static_cast<time_t>(d.count() / 1'000'000'000), static_cast<long>(d.count() % 1'000'000'000)};
}

constexpr auto call_time = 30ms;  // ~300 slices of 100 µs
// "Returned, and not much later": a bound for gross errors only (a wrong
// unit, a wait restarted from the start at every tick), generous for ASan,
// -O0 and a loaded machine (stalls of several seconds have been seen while
// others build).
constexpr auto late_bound = 10s;

// ---- 1. read(2): restarted by SA_RESTART ---------------------------------

// Why: read(2) is restarted after a tick (SA_RESTART): blocked across ~300
// ticks, it returns the bytes the other OS thread wrote, never -1/EINTR.
// The writer waits 30 ms and until 50 ticks have interrupted the read
// (counted: a loaded machine handles fewer ticks per second).
TEST(RestartedCalls, PipeReadBlocksThroughTicksAndReturnsTheBytes) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const pipe_pair p;
    const auto start = steady::now();  // before the writer starts its 30 ms
    const auto ticks_before = gt::debug::this_thread_stats().ticks;
    // Read from the writer's OS thread while the tick handler counts: an
    // aligned 8-byte load, and only a lower bound is needed.
    const volatile std::uint64_t& reader_ticks = gt::detail::scheduler::current().running()->ticks;
    std::thread writer([&p, &reader_ticks, ticks_before] {
        const auto give_up = steady::now() + 10s;
        std::this_thread::sleep_for(call_time);
        while (reader_ticks - ticks_before < 50 && steady::now() < give_up) std::this_thread::sleep_for(1ms);
        const ssize_t n = ::write(p.write_end(), "hello", 5);
        (void)n;
    });
    char buffer[16] = {};
    errno = 0;
    const ssize_t n = ::read(p.read_end(), buffer, sizeof buffer);
    const int read_errno = errno;
    const auto took = steady::now() - start;
    const auto ticks = gt::debug::this_thread_stats().ticks - ticks_before;
    writer.join();
    EXPECT_EQ(n, 5) << "errno " << read_errno;
    EXPECT_EQ(read_errno, 0);
    EXPECT_EQ(std::string(buffer), "hello");
    EXPECT_GE(took, call_time);
    EXPECT_LT(took, late_bound);
    // Ticks really landed while read(2) was blocked (SIGALRM is not blocked
    // there; ~300 are due in 30 ms on an idle machine).
    EXPECT_GE(ticks, 50u) << "no ticks interrupted the read: the test proves nothing";
}

// Why: write(2) to a full pipe blocks too; restarted after ticks it
// completes once the reader drains the pipe.
TEST(RestartedCalls, PipeWriteToAFullPipeBlocksThroughTicksAndCompletes) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const pipe_pair p;
    const int capacity = fcntl(p.write_end(), F_GETPIPE_SZ);
    ASSERT_GT(capacity, 0);
    const std::string fill(static_cast<std::size_t>(capacity), 'f');
    ASSERT_EQ(::write(p.write_end(), fill.data(), fill.size()), capacity);  // now full
    const auto start = steady::now();
    std::thread reader([&] {  // drains what is there, which lets the write in
        std::this_thread::sleep_for(call_time);
        std::string sink(static_cast<std::size_t>(capacity), '\0');
        std::size_t got = 0;
        while (got < sink.size()) {
            const ssize_t n = ::read(p.read_end(), sink.data() + got, sink.size() - got);
            if (n <= 0) break;
            got += static_cast<std::size_t>(n);
        }
    });
    errno = 0;
    const ssize_t n = ::write(p.write_end(), "end", 3);
    const int write_errno = errno;
    const auto took = steady::now() - start;
    reader.join();
    EXPECT_EQ(n, 3) << "errno " << write_errno;
    EXPECT_EQ(write_errno, 0);
    char tail[4] = {};
    if (n == 3) {
        EXPECT_EQ(::read(p.read_end(), tail, 3), 3);
    }
    EXPECT_EQ(std::string(tail), "end");
    EXPECT_GE(took, call_time);
    EXPECT_LT(took, late_bound);
}

// ---- 2. sleeps: wrapped with SIGALRM blocked -----------------------------

// Why: nanosleep is never restarted (signal(7)): a tick would end it early
// with EINTR. Wrapped, it sleeps the whole time, returns 0, and never
// writes the remaining time (the kernel writes it only when interrupted).
TEST(Sleeps, NanosleepReturnsZeroAfterTheWholeDuration) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const timespec duration = to_timespec(call_time);
    timespec remaining{7, 7};
    errno = 0;
    const auto start = steady::now();
    const int result = ::nanosleep(&duration, &remaining);
    const auto took = steady::now() - start;
    EXPECT_EQ(result, 0);
    EXPECT_EQ(errno, 0);
    EXPECT_GE(took, call_time);
    EXPECT_LT(took, call_time + late_bound);
    EXPECT_EQ(remaining.tv_sec, 7);
    EXPECT_EQ(remaining.tv_nsec, 7);
    EXPECT_FALSE(sigalrm_blocked()) << "the wrapper left SIGALRM blocked";
}

// Why: clock_nanosleep (relative and absolute, both clocks) returns its
// error number instead of setting errno: a tick must not make it EINTR.
TEST(Sleeps, ClockNanosleepRelativeAndAbsoluteReturnZero) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME}) {
        SCOPED_TRACE(clock == CLOCK_MONOTONIC ? "CLOCK_MONOTONIC" : "CLOCK_REALTIME");
        const timespec relative = to_timespec(call_time);
        timespec remaining{7, 7};
        auto start = steady::now();
        EXPECT_EQ(::clock_nanosleep(clock, 0, &relative, &remaining), 0);
        EXPECT_GE(steady::now() - start, call_time);
        EXPECT_EQ(remaining.tv_sec, 7);

        timespec now;
        clock_gettime(clock, &now);
        const timespec target =
            to_timespec(std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec) + call_time);
        start = steady::now();
        EXPECT_EQ(::clock_nanosleep(clock, TIMER_ABSTIME, &target, nullptr), 0);
        clock_gettime(clock, &now);
        EXPECT_TRUE(now.tv_sec > target.tv_sec || (now.tv_sec == target.tv_sec && now.tv_nsec >= target.tv_nsec))
            << "woke before the absolute deadline";
        EXPECT_LT(steady::now() - start, call_time + late_bound);
    }
    EXPECT_FALSE(sigalrm_blocked()) << "the wrapper left SIGALRM blocked";
}

// Why: glibc's usleep and sleep call nanosleep inside libc, past the
// nanosleep wrapper; they need (and have) their own.
TEST(Sleeps, UsleepAndSleepReturnZeroAfterTheWholeDuration) {
    // The stall detector would (rightly) report main's second in sleep(1)
    // while the spinner waits; that is not what this test is about.
    const preemption_for_test preemption(100us, 0ms);
    const spinner spin;
    errno = 0;
    auto start = steady::now();
    EXPECT_EQ(::usleep(30'000), 0);
    EXPECT_GE(steady::now() - start, 30ms);
    EXPECT_EQ(errno, 0);

    EXPECT_EQ(::sleep(0), 0u);

    start = steady::now();
    EXPECT_EQ(::sleep(1), 0u);  // returns the seconds left when interrupted
    const auto took = steady::now() - start;
    EXPECT_GE(took, 1s);
    EXPECT_LT(took, 1s + late_bound);
    EXPECT_EQ(errno, 0);
    EXPECT_FALSE(sigalrm_blocked()) << "the wrapper left SIGALRM blocked";
}

// Why: libstdc++'s std::this_thread::sleep_for calls nanosleep from its
// shared library; the wrapper must catch that call too (an EINTR there
// would be retried by libstdc++, but the tick must not be lost either).
TEST(Sleeps, StdSleepForLastsTheWholeDuration) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const auto start = steady::now();
    std::this_thread::sleep_for(call_time);
    EXPECT_GE(steady::now() - start, call_time);
    EXPECT_FALSE(sigalrm_blocked());
}

// ---- 3. waiting for descriptors: wrapped with SIGALRM blocked ------------

// Why: poll(2) is never restarted: a tick would end it with EINTR long
// before its timeout. It must time out (0) and leave errno alone.
TEST(Polling, PollOnASilentPipeTimesOutWithZeroAndErrnoUntouched) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const pipe_pair p;
    pollfd fd{p.read_end(), POLLIN, 0};
    errno = EDOM;
    const auto start = steady::now();
    const int result = ::poll(&fd, 1, static_cast<int>(call_time.count()));
    const auto took = steady::now() - start;
    EXPECT_EQ(result, 0);
    EXPECT_EQ(errno, EDOM);
    EXPECT_EQ(fd.revents, 0);
    EXPECT_GE(took, call_time);
    EXPECT_LT(took, call_time + late_bound);
    EXPECT_FALSE(sigalrm_blocked()) << "the wrapper left SIGALRM blocked";
}

// Why: the wrapper must not stop poll(2) from seeing the descriptor become
// ready: woken by another OS thread's write, it returns 1 with POLLIN.
TEST(Polling, PollWokenByAWriterOnAnotherOsThreadReturnsOne) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const pipe_pair p;
    const auto start = steady::now();
    std::thread writer = write_later(p.write_end(), "x", call_time);
    pollfd fd{p.read_end(), POLLIN, 0};
    const int result = ::poll(&fd, 1, 10'000);
    const auto took = steady::now() - start;
    writer.join();
    EXPECT_EQ(result, 1);
    EXPECT_EQ(fd.revents, POLLIN);
    EXPECT_GE(took, call_time);
    EXPECT_LT(took, late_bound);
}

// Why: ppoll replaces the signal mask while it waits; with a mask that does
// not block SIGALRM, the wrapper must add SIGALRM to it or a tick ends it.
TEST(Polling, PpollWithAMaskThatLetsSigalrmThroughStillTimesOut) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const pipe_pair p;
    pollfd fd{p.read_end(), POLLIN, 0};
    sigset_t nothing_blocked;
    sigemptyset(&nothing_blocked);
    const timespec timeout = to_timespec(call_time);
    errno = EDOM;
    const auto start = steady::now();
    const int result = ::ppoll(&fd, 1, &timeout, &nothing_blocked);
    const auto took = steady::now() - start;
    EXPECT_EQ(result, 0);
    EXPECT_EQ(errno, EDOM);
    EXPECT_GE(took, call_time);
    EXPECT_LT(took, call_time + late_bound);
    EXPECT_FALSE(sigalrm_blocked());
    // And without a mask (nullptr: the thread's own mask stays).
    const auto start2 = steady::now();
    EXPECT_EQ(::ppoll(&fd, 1, &timeout, nullptr), 0);
    EXPECT_GE(steady::now() - start2, call_time);
}

// Why: select(2) and pselect(2) are never restarted either; both must time
// out with 0, and Linux's select counts its timeout down to zero.
TEST(Polling, SelectAndPselectOnASilentPipeTimeOutWithZero) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const pipe_pair p;
    {
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(p.read_end(), &readable);
        timeval timeout{0, static_cast<suseconds_t>(std::chrono::microseconds(call_time).count())};
        errno = EDOM;
        const auto start = steady::now();
        const int result = ::select(p.read_end() + 1, &readable, nullptr, nullptr, &timeout);
        const auto took = steady::now() - start;
        EXPECT_EQ(result, 0);
        EXPECT_EQ(errno, EDOM);
        EXPECT_EQ(timeout.tv_sec, 0);
        EXPECT_EQ(timeout.tv_usec, 0) << "select returned with time left: it was cut short";
        EXPECT_FALSE(FD_ISSET(p.read_end(), &readable));
        EXPECT_GE(took, call_time);
        EXPECT_LT(took, call_time + late_bound);
    }
    {
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(p.read_end(), &readable);
        const timespec timeout = to_timespec(call_time);
        sigset_t nothing_blocked;
        sigemptyset(&nothing_blocked);
        const auto start = steady::now();
        EXPECT_EQ(::pselect(p.read_end() + 1, &readable, nullptr, nullptr, &timeout, &nothing_blocked), 0);
        EXPECT_GE(steady::now() - start, call_time);
        EXPECT_FALSE(sigalrm_blocked());
    }
}

// Why: epoll_wait and epoll_pwait are never restarted; they must time out
// with 0, and a write from another OS thread must still wake them.
TEST(Polling, EpollWaitTimesOutWithZeroAndIsWokenByAWriter) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const pipe_pair p;
    const int epoll = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(epoll, 0);
    epoll_event interest{};
    interest.events = EPOLLIN;
    interest.data.fd = p.read_end();
    ASSERT_EQ(epoll_ctl(epoll, EPOLL_CTL_ADD, p.read_end(), &interest), 0);
    epoll_event event{};
    const int timeout_ms = static_cast<int>(call_time.count());

    errno = EDOM;
    auto start = steady::now();
    EXPECT_EQ(::epoll_wait(epoll, &event, 1, timeout_ms), 0);
    EXPECT_EQ(errno, EDOM);
    EXPECT_GE(steady::now() - start, call_time);
    EXPECT_FALSE(sigalrm_blocked());

    sigset_t nothing_blocked;
    sigemptyset(&nothing_blocked);
    start = steady::now();
    EXPECT_EQ(::epoll_pwait(epoll, &event, 1, timeout_ms, &nothing_blocked), 0);
    EXPECT_GE(steady::now() - start, call_time);
    EXPECT_FALSE(sigalrm_blocked());

    start = steady::now();
    std::thread writer = write_later(p.write_end(), "x", call_time);
    const int result = ::epoll_wait(epoll, &event, 1, 10'000);
    const auto took = steady::now() - start;
    writer.join();
    EXPECT_EQ(result, 1);
    EXPECT_EQ(event.data.fd, p.read_end());
    EXPECT_GE(took, call_time);
    EXPECT_LT(took, late_bound);
    ::close(epoll);
}

// ---- pause and sigsuspend: a tick is not "a signal" for them -------------

std::atomic<int> sigusr1_count{0};
void on_sigusr1(int) { sigusr1_count.fetch_add(1); }

// Installs a SIGUSR1 handler and, on another OS thread, sends SIGUSR1 to
// the calling OS thread after `delay` and then every 5 ms until stopped (a
// single one could land before the wait starts and be lost to it).
class sigusr1_later {
public:
    explicit sigusr1_later(std::chrono::milliseconds delay) : target_(pthread_self()) {
        struct sigaction action {};
        action.sa_handler = on_sigusr1;
        sigemptyset(&action.sa_mask);
        sigaction(SIGUSR1, &action, &old_);
        sigusr1_count = 0;
        sender_ = std::thread([this, delay] {
            std::this_thread::sleep_for(delay);
            while (!stop_.load()) {
                pthread_kill(target_, SIGUSR1);
                std::this_thread::sleep_for(5ms);
            }
        });
    }
    ~sigusr1_later() {
        stop_ = true;
        sender_.join();
        sigaction(SIGUSR1, &old_, nullptr);
    }
    sigusr1_later(const sigusr1_later&) = delete;
    sigusr1_later& operator=(const sigusr1_later&) = delete;

private:
    pthread_t target_;
    struct sigaction old_ {};
    std::atomic<bool> stop_{false};
    std::thread sender_;
};

// Why: pause(2) returns when a signal handler has run; a tick's handler
// must not count, or pause would return at the first tick.
TEST(WaitingForSignals, PauseReturnsForTheProgramsSignalNotForATick) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const auto start = steady::now();  // before the sender starts its 30 ms
    const sigusr1_later signal(call_time);
    errno = 0;
    const int result = ::pause();
    const int pause_errno = errno;
    const auto took = steady::now() - start;
    EXPECT_EQ(result, -1);
    EXPECT_EQ(pause_errno, EINTR);
    EXPECT_GE(sigusr1_count.load(), 1);
    EXPECT_GE(took, call_time) << "pause returned early: a tick counted as a signal";
    EXPECT_FALSE(sigalrm_blocked());
}

// Why: sigsuspend installs the caller's mask while it waits; with one that
// lets SIGALRM through, the wrapper must still keep ticks out.
TEST(WaitingForSignals, SigsuspendReturnsForTheProgramsSignalNotForATick) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const auto start = steady::now();
    const sigusr1_later signal(call_time);
    sigset_t nothing_blocked;
    sigemptyset(&nothing_blocked);
    errno = 0;
    const int result = ::sigsuspend(&nothing_blocked);
    const int suspend_errno = errno;
    const auto took = steady::now() - start;
    EXPECT_EQ(result, -1);
    EXPECT_EQ(suspend_errno, EINTR);
    EXPECT_GE(sigusr1_count.load(), 1);
    EXPECT_GE(took, call_time) << "sigsuspend returned early: a tick counted as a signal";
    EXPECT_FALSE(sigalrm_blocked());
}

// ---- 4. errno belongs to the green thread --------------------------------

// Why: errno is per OS thread, shared by its green threads; the handler
// saves and restores it around a switch, so a thread preempted between
// setting errno and reading it reads its own value, not another thread's.
TEST(Errno, EachGreenThreadKeepsItsOwnErrnoAcrossPreemption) {
    const preemption_for_test preemption(100us);
    std::atomic<bool> stop{false};
    std::atomic<long> other_writes{0};
    int errno_at_end = -1;
    long mismatches = 0;
    std::uint64_t preemptions = 0;
    bool enough = false;
    gt::thread keeper({.name = "keeper"}, [&] {
        const std::uint64_t before = gt::debug::this_thread_stats().preemptions;
        errno = 1234;
        const auto end = steady::now() + 10s;
        for (std::uint64_t turn = 1;; ++turn) {
            std::atomic_signal_fence(std::memory_order_seq_cst);  // read errno afresh every turn
            if (errno != 1234) ++mismatches;
            preemptions = gt::debug::this_thread_stats().preemptions - before;
            if (preemptions >= 30) {
                enough = true;
                break;
            }
            if (turn % 1024 == 0) {
                const int saved = errno;  // steady::now() leaves errno alone, but be sure
                const bool late = steady::now() > end;
                errno = saved;
                if (late) break;
            }
        }
        errno_at_end = errno;
        stop = true;
    });
    gt::thread clobberer({.name = "clobberer"}, [&] {
        const auto give_up = steady::now() + 10s;  // keeper never ran again: preemption is broken
        for (std::uint64_t turn = 1; !stop.load(std::memory_order_relaxed); ++turn) {
            errno = 42;
            std::atomic_signal_fence(std::memory_order_seq_cst);  // a store every turn
            other_writes.store(other_writes.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            if (turn % 4096 == 0 && steady::now() > give_up) break;
        }
        EXPECT_EQ(errno, 42);
    });
    keeper.join();
    clobberer.join();
    EXPECT_TRUE(enough) << "keeper was preempted only " << preemptions << " times in 10 s";
    EXPECT_GT(other_writes.load(), 0);
    EXPECT_EQ(mismatches, 0);
    EXPECT_EQ(errno_at_end, 1234);
}

// ---- 5. after a blocking call --------------------------------------------

// Why: the tick that fell due while a wrapped call held SIGALRM is
// delivered when the call ends, and the hold ends with it: afterwards
// preemption goes on and no thread runs with SIGALRM blocked.
TEST(AfterABlockingCall, PreemptionGoesOnAndNoThreadIsLeftWithSigalrmBlocked) {
    const preemption_for_test preemption(100us);
    const spinner spin;
    const pipe_pair p;
    const auto wait_calls = std::vector<std::pair<const char*, std::function<void()>>>{
        {"nanosleep", [] { const timespec d = to_timespec(call_time); ::nanosleep(&d, nullptr); }},
        {"usleep", [] { ::usleep(static_cast<useconds_t>(std::chrono::microseconds(call_time).count())); }},
        {"poll", [&] { pollfd fd{p.read_end(), POLLIN, 0}; ::poll(&fd, 1, static_cast<int>(call_time.count())); }},
        {"ppoll", [&] {
             pollfd fd{p.read_end(), POLLIN, 0};
             const timespec d = to_timespec(call_time);
             sigset_t none;
             sigemptyset(&none);
             ::ppoll(&fd, 1, &d, &none);
         }},
        {"select", [] { timeval t{0, 30'000}; ::select(0, nullptr, nullptr, nullptr, &t); }},
    };
    for (const auto& [name, call] : wait_calls) {
        SCOPED_TRACE(name);
        call();
        ASSERT_FALSE(sigalrm_blocked());
        // main spins: only ticks can let the spinner run and preempt it again.
        const std::uint64_t before = spin.preemptions();
        ASSERT_TRUE(spin_until([&] { return spin.preemptions() >= before + 5; }))
            << "the spinner was preempted only " << spin.preemptions() - before << " times in 10 s";
        ASSERT_FALSE(sigalrm_blocked());
    }
    // Several green threads, each blocking in turn, then running on.
    constexpr int n = 4;
    std::atomic<int> blocked_after_call{0}, blocked_later{0}, not_preempted{0};
    std::vector<gt::thread> sleepers;
    for (int i = 0; i < n; ++i) {
        sleepers.emplace_back([&] {
            const timespec d = to_timespec(10ms);
            ::nanosleep(&d, nullptr);
            if (sigalrm_blocked()) ++blocked_after_call;
            const std::uint64_t before = gt::debug::this_thread_stats().preemptions;
            const bool preempted = spin_until([&] {
                return gt::debug::this_thread_stats().preemptions >= before + 3 || not_preempted.load() > 0;
            });
            if (!preempted) ++not_preempted;  // and the others give up at once
            if (sigalrm_blocked()) ++blocked_later;
        });
    }
    for (auto& t : sleepers) t.join();
    EXPECT_EQ(blocked_after_call.load(), 0);
    EXPECT_EQ(blocked_later.load(), 0);
    EXPECT_EQ(not_preempted.load(), 0);
    EXPECT_FALSE(sigalrm_blocked());
    EXPECT_FALSE(spin.saw_sigalrm_blocked());
    EXPECT_GT(spin.spins(), 0);
}

// ---- 7. the wrappers find libc's functions before any tick -----------------

bool in_resolve_child() { return std::getenv("GT_RESOLVE_CHILD") != nullptr; }

// Runs in a fresh process started by the test below, with preemption and
// the stall detector off, so that no timer exists until it sets a slice.
TEST(RealFunctionsChild, Scenario) {
    if (!in_resolve_child()) GTEST_SKIP() << "runs only as the child of RealFunctions tests";
    gt::this_thread::yield();  // the scheduler starts, without a timer
    const bool before = gt::detail::syscalls::real_functions_resolved();
    gt::set_time_slice(std::chrono::hours(1));  // the process's first timer: its first tick is 30 min away
    const bool after = gt::detail::syscalls::real_functions_resolved();
    const auto ticks = gt::debug::this_thread_stats().ticks;
    std::printf("before %d after %d ticks %d\n", before, after, static_cast<int>(ticks));
}

// Why: a wrapper that looked libc's function up at its first call (a
// function-local static: a guard variable, then dlsym) could be preempted
// while it held the guard, in its own code; the next green thread to make
// the same call would wait for that guard with the whole OS thread. So all
// are found when the process's first timer is made, before its first tick,
// and no wrapper looks anything up while ticks can come.
TEST(RealFunctions, AreAllFoundWhenTheFirstTimerIsMadeBeforeAnyTick) {
    if (in_resolve_child()) GTEST_SKIP();
    const std::string self = std::string("/proc/") + std::to_string(::getpid()) + "/exe";
    const std::string command = "GT_RESOLVE_CHILD=1 GT_TIME_SLICE_US=0 GT_STALL_REPORT_MS=0 " + self +
                                " --gtest_filter=RealFunctionsChild.Scenario 2>&1";
    std::string output;
    if (std::FILE* child = ::popen(command.c_str(), "r")) {
        char buffer[256];
        while (std::fgets(buffer, sizeof buffer, child) != nullptr) output += buffer;
        ::pclose(child);
    }
    EXPECT_NE(output.find("before 0 after 1 ticks 0"), std::string::npos) << output;
}

// ---- 6. fork(2) ----------------------------------------------------------

// In a child: two green threads that spin without yielding, each until it
// has seen the other's counter move five times. Only preemption lets both
// get there (in a few ms). Exit code 0 on success; 1 if the 20 s deadline
// passed (a hang guard: a loaded machine stretches a few ms to seconds);
// 2 if the child's slice is not the parent's; 3 if SIGALRM is blocked; 4
// if the child hung (a watchdog on another OS thread ends it after 30 s).
[[noreturn]] void spin_in_pairs_then_exit(std::chrono::microseconds expected_slice) {
    std::thread([] {
        std::this_thread::sleep_for(30s);
        _exit(4);
    }).detach();
    if (gt::time_slice() != expected_slice) _exit(2);
    if (sigalrm_blocked()) _exit(3);
    std::atomic<long> counts[2] = {0, 0};
    std::atomic<bool> done[2] = {false, false};
    const auto deadline = steady::now() + 20s;
    std::atomic<bool> late{false};
    auto body = [&](int me) {
        const int other = 1 - me;
        long seen = counts[other].load();
        int moves = 0;
        for (std::uint64_t turn = 1; !(done[0].load() && done[1].load()); ++turn) {
            counts[me].store(counts[me].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            const long now = counts[other].load(std::memory_order_relaxed);
            if (now != seen) {
                seen = now;
                if (++moves >= 5) done[me] = true;
            }
            if (turn % 4096 == 0 && steady::now() > deadline) {
                late = true;
                return;
            }
        }
    };
    gt::thread a([&] { body(0); });
    gt::thread b([&] { body(1); });
    a.join();
    b.join();
    _exit(late.load() || !done[0].load() || !done[1].load() ? 1 : 0);
}

// Waits for `child` while a spinner is READY (waitpid is restarted by
// SA_RESTART) and returns its exit code, or -1 if it did not exit normally.
int wait_for_child(pid_t child) {
    const spinner spin;
    int status = 0;
    errno = 0;
    const pid_t waited = ::waitpid(child, &status, 0);
    EXPECT_EQ(waited, child) << "errno " << errno;
    if (waited != child) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Why: POSIX timers are not inherited by fork(2); without the atfork hook
// that makes the child's timer again, two spinners in the child would
// never share the CPU.
TEST(Fork, TheChildIsPreemptedTooWhenForkedFromTheMainThread) {
    const preemption_for_test preemption(100us);
    const pid_t child = ::fork();
    ASSERT_NE(child, -1);
    if (child == 0) spin_in_pairs_then_exit(100us);
    EXPECT_EQ(wait_for_child(child), 0)
        << "1: the child's spinners made no progress (no ticks); 2: wrong slice; 3: SIGALRM blocked; 4: hung";
}

// Why: the same when the fork happens on a green thread of its own, with
// another thread READY: the child continues on that thread's stack.
TEST(Fork, TheChildIsPreemptedTooWhenForkedFromAGreenThread) {
    const preemption_for_test preemption(200us);
    const spinner spin;
    pid_t child = -1;
    gt::thread forker([&] {
        child = ::fork();
        if (child == 0) {
            spin.stop();  // the child has a copy of the spinner too: let it end when it runs
            spin_in_pairs_then_exit(200us);
        }
    });
    forker.join();
    ASSERT_NE(child, -1);
    EXPECT_EQ(wait_for_child(child), 0)
        << "1: the child's spinners made no progress (no ticks); 2: wrong slice; 3: SIGALRM blocked; 4: hung";
}

// ---- 7. the environment and the API's checks -----------------------------

// Sets (or, with nullptr, unsets) an environment variable, then restores it.
class environment_variable {
public:
    environment_variable(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value != nullptr) {
            setenv(name, value, 1);
        } else {
            unsetenv(name);
        }
    }
    ~environment_variable() {
        if (old_) {
            setenv(name_, old_->c_str(), 1);
        } else {
            unsetenv(name_);
        }
    }
    environment_variable(const environment_variable&) = delete;
    environment_variable& operator=(const environment_variable&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};

struct fresh_scheduler {
    std::chrono::microseconds slice{-1};
    std::chrono::milliseconds stall{-1};
    std::string stderr_text;
    bool other_thread_ran_while_first_spun = false;  // false with preemption off
    std::uint64_t spinner_preemptions = 0;
};

// Starts gt on a new OS thread (its scheduler reads the environment at the
// first gt call there) and reports what that scheduler chose. With
// `spin_ticks` > 0, one green thread spins without yielding while another
// is READY, until it has taken that many ticks (counted, not timed: a
// loaded machine delivers fewer per second; 30 s if none come) or the
// other has run: with preemption on, the other runs meanwhile.
fresh_scheduler start_gt_on_a_new_os_thread(std::uint64_t spin_ticks = 0) {
    fresh_scheduler result;
    testing::internal::CaptureStderr();
    std::thread([&] {
        gt::thread reader([&] {
            result.slice = gt::time_slice();
            result.stall = gt::stall_threshold();
        });
        reader.join();
        if (spin_ticks > 0) {
            std::atomic<bool> other_ran{false};
            gt::thread first([&] {
                const std::uint64_t end = gt::debug::this_thread_stats().ticks + spin_ticks;
                const auto give_up = steady::now() + 30s;
                // The clock is read rarely: a tick that lands in its vDSO
                // code is not in the program's code, and does not switch.
                for (std::uint64_t turn = 1; gt::debug::this_thread_stats().ticks < end && !other_ran.load(); ++turn) {
                    if (turn % 4096 == 0 && steady::now() > give_up) break;
                }
                result.other_thread_ran_while_first_spun = other_ran.load();
                result.spinner_preemptions = gt::debug::this_thread_stats().preemptions;
            });
            gt::thread second([&] { other_ran = true; });
            first.join();
            second.join();
        }
    }).join();
    result.stderr_text = testing::internal::GetCapturedStderr();
    return result;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// The common part of both variables' warnings. (Only warnings are counted:
// on a loaded machine the stall detector may add a report of its own.)
const std::string not_a_valid_value = " is not 0 or a whole number of ";

// Why: a typo in GT_TIME_SLICE_US must not turn preemption off or into
// garbage silently: it is reported once, naming the value, and the default
// slice is used (and really ticks).
TEST(Environment, AnInvalidTimeSliceIsReportedAndTheDefaultUsed) {
    const environment_variable stall("GT_STALL_REPORT_MS", nullptr);
    for (const char* bad : {"abc", "5", "99", "-100", "100us", "1e3", "99999999999999999999"}) {
        SCOPED_TRACE(bad);
        const environment_variable slice("GT_TIME_SLICE_US", bad);
        const fresh_scheduler s = start_gt_on_a_new_os_thread(bad == std::string("abc") ? 10 : 0);  // five slices
        EXPECT_EQ(s.slice, gt::default_time_slice);
        EXPECT_EQ(s.slice, 10000us);
        const std::string warning = std::string("gt: GT_TIME_SLICE_US=") + bad +
                                    " is not 0 or a whole number of microseconds of at least 100; using 10000\n";
        EXPECT_EQ(count(s.stderr_text, warning), 1u) << "stderr: " << s.stderr_text;
        EXPECT_EQ(s.stall, gt::default_stall_threshold);
        if (bad == std::string("abc")) {
            EXPECT_TRUE(s.other_thread_ran_while_first_spun) << "the default slice did not preempt the spinner";
            EXPECT_GE(s.spinner_preemptions, 1u);
        }
    }
}

// Why: the valid values: 0 turns preemption off (a spinner keeps the CPU
// through ten ticks, the stall detector's), the minimum is accepted, an
// empty value means the default; none warns.
TEST(Environment, ValidTimeSlicesAreUsedWithoutAWarning) {
    const environment_variable stall("GT_STALL_REPORT_MS", nullptr);
    {
        const environment_variable slice("GT_TIME_SLICE_US", "0");
        const fresh_scheduler s = start_gt_on_a_new_os_thread(10);
        EXPECT_EQ(s.slice, 0us);
        EXPECT_EQ(count(s.stderr_text, not_a_valid_value), 0u) << s.stderr_text;
        EXPECT_FALSE(s.other_thread_ran_while_first_spun) << "preemption is off, yet the spinner was preempted";
        EXPECT_EQ(s.spinner_preemptions, 0u);
    }
    for (const auto& [text, expected] : std::vector<std::pair<const char*, std::chrono::microseconds>>{
             {"100", 100us}, {"250", 250us}, {"20000", 20000us}, {"", gt::default_time_slice}}) {
        SCOPED_TRACE(text);
        const environment_variable slice("GT_TIME_SLICE_US", text);
        const fresh_scheduler s = start_gt_on_a_new_os_thread();
        EXPECT_EQ(s.slice, expected);
        EXPECT_EQ(count(s.stderr_text, not_a_valid_value), 0u) << s.stderr_text;
    }
}

// Why: the stall threshold's variable is checked the same way.
TEST(Environment, AnInvalidStallThresholdIsReportedAndTheDefaultUsed) {
    const environment_variable slice("GT_TIME_SLICE_US", "1000");
    for (const char* bad : {"xyz", "-1", "10ms"}) {
        SCOPED_TRACE(bad);
        const environment_variable stall("GT_STALL_REPORT_MS", bad);
        const fresh_scheduler s = start_gt_on_a_new_os_thread();
        EXPECT_EQ(s.stall, gt::default_stall_threshold);
        EXPECT_EQ(s.slice, 1000us);
        const std::string warning = std::string("gt: GT_STALL_REPORT_MS=") + bad +
                                    " is not 0 or a whole number of milliseconds of at least 1; using 100\n";
        EXPECT_EQ(count(s.stderr_text, warning), 1u) << "stderr: " << s.stderr_text;
    }
    for (const auto& [text, expected] :
         std::vector<std::pair<const char*, std::chrono::milliseconds>>{{"0", 0ms}, {"1", 1ms}, {"250", 250ms}}) {
        SCOPED_TRACE(text);
        const environment_variable stall("GT_STALL_REPORT_MS", text);
        const fresh_scheduler s = start_gt_on_a_new_os_thread();
        EXPECT_EQ(s.stall, expected);
        EXPECT_EQ(count(s.stderr_text, not_a_valid_value), 0u) << s.stderr_text;
    }
}

// Why: the environment is read once, when an OS thread's scheduler starts:
// changing it later does not change a running scheduler's slice.
TEST(Environment, ARunningSchedulerKeepsItsSliceWhenTheEnvironmentChanges) {
    const preemption_for_test preemption(300us);
    const environment_variable slice("GT_TIME_SLICE_US", "abc");
    testing::internal::CaptureStderr();
    std::chrono::microseconds seen{-1};
    gt::thread t([&] { seen = gt::time_slice(); });
    t.join();
    EXPECT_EQ(seen, 300us);
    EXPECT_EQ(gt::time_slice(), 300us);
    const std::string text = testing::internal::GetCapturedStderr();
    EXPECT_EQ(count(text, not_a_valid_value), 0u) << text;
}

template <typename Function>
std::string invalid_argument_message(Function f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    } catch (...) {
        return "(another exception)";
    }
    return "(no exception)";
}

// Why: the API rejects slices it cannot honour, naming the function and the
// value, and leaves the slice as it was.
TEST(PreemptionApi, InvalidSlicesAndThresholdsThrowNamingFunctionAndValue) {
    const preemption_for_test preemption(100us);
    for (const auto bad : {-1us, 5us, 99us, -10000us}) {
        SCOPED_TRACE(bad.count());
        const std::string what = invalid_argument_message([&] { gt::set_time_slice(bad); });
        EXPECT_NE(what.find("gt::set_time_slice"), std::string::npos) << what;
        EXPECT_NE(what.find(std::to_string(bad.count())), std::string::npos) << what;
        EXPECT_EQ(gt::time_slice(), 100us);
    }
    const std::string what = invalid_argument_message([] { gt::set_stall_threshold(-1ms); });
    EXPECT_NE(what.find("gt::set_stall_threshold"), std::string::npos) << what;
    EXPECT_NE(what.find("-1"), std::string::npos) << what;

    gt::set_time_slice(100us);  // the minimum is accepted
    EXPECT_EQ(gt::time_slice(), 100us);
    gt::set_time_slice(0us);
    EXPECT_EQ(gt::time_slice(), 0us);
}

// ---- limits ----------------------------------------------------------------

// Why: "practically never" is a value users pass: a slice or threshold too
// long for 64-bit nanoseconds (about 292 years) counts as the longest one,
// instead of overflowing into a negative or invalid one.
TEST(Limits, AHugeTimeSliceMeansPracticallyNever) {
    const preemption_for_test preemption(100us);
    EXPECT_NO_THROW(gt::set_time_slice(std::chrono::microseconds::max()));
    EXPECT_GE(gt::time_slice(), std::chrono::hours(24 * 365 * 292));
}

TEST(Limits, AHugeStallThresholdMeansNever) {
    const preemption_for_test preemption(100us);
    const auto old_threshold = gt::stall_threshold();
    gt::set_stall_threshold(std::chrono::milliseconds::max());
    EXPECT_GE(gt::stall_threshold(), std::chrono::hours(24 * 365 * 292));
    gt::set_stall_threshold(old_threshold);
}

// Why: errno belongs to the caller: reading GT_TIME_SLICE_US and
// GT_STALL_REPORT_MS (strtoll sets errno) must not change it, neither in
// the first gt call on an OS thread nor in gt::time_slice() and
// gt::stall_threshold() before it.
TEST(Environment, ReadingTheEnvironmentLeavesErrnoAlone) {
    const environment_variable slice("GT_TIME_SLICE_US", "100");
    const environment_variable stall("GT_STALL_REPORT_MS", "100");
    int after_time_slice = -1, after_stall_threshold = -1, after_first_call = -1;
    std::thread([&] {
        errno = 1234;
        (void)gt::time_slice();
        after_time_slice = errno;
        errno = 1234;
        (void)gt::stall_threshold();
        after_stall_threshold = errno;
        errno = 1234;
        gt::this_thread::yield();  // the first gt call: the scheduler starts here
        after_first_call = errno;
    }).join();
    EXPECT_EQ(after_time_slice, 1234);
    EXPECT_EQ(after_stall_threshold, 1234);
    EXPECT_EQ(after_first_call, 1234);
}

}  // namespace
