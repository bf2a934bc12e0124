// The interposed waits (src/syscalls.cpp, src/parked_calls.cpp) park only
// the calling green thread: while one thread is inside nanosleep, poll,
// select or epoll_wait, the other green threads of its OS thread run. Each
// test keeps a "counter" green thread READY that counts its turns only
// while the caller is BLOCKED (a call that blocked the whole OS thread
// would never let it count: the caller stays RUNNING in the kernel), and
// checks what the call returns and writes. Timing assertions are lower
// bounds only, plus a generous upper bound for gross errors.
#include <gt/debug.hpp>
#include <gt/io.hpp>
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
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "preemption_for_test.hpp"
#include "scheduler.hpp"

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using gt::detail::control_block;
using gt::detail::stop_reason;
using gt::detail::thread_state;
using gt::detail::wait_reason;

namespace {

constexpr auto call_time = 30ms;
constexpr auto late_bound = 10s;  // gross errors only: a loaded machine stalls for seconds

control_block* me() { return gt::detail::scheduler::current().running(); }

// A green thread that yields in a loop and counts its turns while
// `watched` is BLOCKED, noting what it waits for.
class counter {
public:
    explicit counter(const control_block* watched)
        : thread_({.name = "counter"}, [this, watched] {
              while (!stop_.load(std::memory_order_relaxed)) {
                  if (watched->state == thread_state::blocked) {
                      reason_.store(watched->waiting_for, std::memory_order_relaxed);
                      during_.fetch_add(1, std::memory_order_relaxed);
                  }
                  gt::this_thread::yield();
              }
          }) {}
    ~counter() {
        stop_ = true;
        thread_.join();
    }
    counter(const counter&) = delete;
    counter& operator=(const counter&) = delete;

    long during() const { return during_.load(); }
    wait_reason reason() const { return reason_.load(); }

private:
    std::atomic<bool> stop_{false};
    std::atomic<long> during_{0};
    std::atomic<wait_reason> reason_{wait_reason::none};
    gt::thread thread_;
};

// A green thread that, once `watched` is BLOCKED, writes one byte to `fd`.
// If it has not written within 20 s (the call blocked the whole OS thread,
// so it never ran), an OS thread writes instead: a broken runtime fails
// the test instead of hanging it.
class write_when_blocked {
public:
    // With `turns`, it also waits until the counter has counted a turn
    // during the block, so that the test's "another thread ran meanwhile"
    // does not depend on the order in which the writer and the counter
    // come after the blocked thread.
    write_when_blocked(const control_block* watched, int fd, const counter* turns = nullptr)
        : thread_({.name = "writer"},
                  [this, watched, fd, turns] {
                      const long before = turns != nullptr ? turns->during() : 0;
                      while ((watched->state != thread_state::blocked || (turns != nullptr && turns->during() <= before)) &&
                             !written_.load()) {
                          gt::this_thread::yield();
                      }
                      if (!written_.exchange(true)) write_one(fd);
                  }),
          rescue_([this, fd] {
              const auto give_up = steady::now() + 20s;
              while (!written_.load() && steady::now() < give_up) std::this_thread::sleep_for(1ms);
              if (!written_.exchange(true)) write_one(fd);
          }) {}
    ~write_when_blocked() {
        written_ = true;  // the call has returned: no write is needed any more
        rescue_.join();
        thread_.join();
    }
    write_when_blocked(const write_when_blocked&) = delete;
    write_when_blocked& operator=(const write_when_blocked&) = delete;

private:
    static void write_one(int fd) {
        const ssize_t n = ::write(fd, "x", 1);
        (void)n;
    }
    std::atomic<bool> written_{false};
    gt::thread thread_;
    std::thread rescue_;
};

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
    // Fills the pipe: its write end is then not writable.
    void fill() const {
        const int capacity = ::fcntl(write_end(), F_GETPIPE_SZ);
        const std::string bytes(static_cast<std::size_t>(capacity), 'f');
        if (::write(write_end(), bytes.data(), bytes.size()) != capacity) throw std::runtime_error("fill failed");
    }

private:
    int fds_[2];
};

timespec to_timespec(std::chrono::nanoseconds d) {
    return {static_cast<time_t>(d.count() / 1'000'000'000), static_cast<long>(d.count() % 1'000'000'000)};
}

std::uint64_t parks(const control_block* t) {
    return t->stops[static_cast<std::size_t>(stop_reason::sleep)] + t->stops[static_cast<std::size_t>(stop_reason::wait)];
}

// ---- sleeps -----------------------------------------------------------------

// Why: nanosleep (and std::this_thread::sleep_for, which calls it) is how
// most programs wait; on a green thread it must not stop the others. It
// returns 0 after the whole duration and, like the kernel when nothing cut
// the sleep short, leaves the remaining-time argument alone.
TEST(ParkedSleeps, NanosleepParksOnlyTheCallingGreenThread) {
    const preemption_for_test preemption(100us);
    const counter c(me());
    const timespec duration = to_timespec(call_time);
    timespec remaining{7, 7};
    errno = EDOM;
    const auto start = steady::now();
    const int result = ::nanosleep(&duration, &remaining);
    const auto took = steady::now() - start;
    EXPECT_EQ(result, 0);
    EXPECT_EQ(errno, EDOM);
    EXPECT_GE(took, call_time);
    EXPECT_LT(took, late_bound);
    EXPECT_EQ(remaining.tv_sec, 7);
    EXPECT_EQ(remaining.tv_nsec, 7);
    EXPECT_GT(c.during(), 0) << "no other green thread ran during nanosleep";
    EXPECT_EQ(c.reason(), wait_reason::sleep);
}

// Why: clock_nanosleep parks for both clocks, relative and absolute; an
// absolute CLOCK_REALTIME time is converted when the call is made, and the
// call still ends at or after it on that clock.
TEST(ParkedSleeps, ClockNanosleepParksForBothClocksRelativeAndAbsolute) {
    const preemption_for_test preemption(100us);
    for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME}) {
        for (int flags : {0, TIMER_ABSTIME}) {
            SCOPED_TRACE(std::string(clock == CLOCK_MONOTONIC ? "CLOCK_MONOTONIC" : "CLOCK_REALTIME") +
                         (flags == 0 ? " relative" : " absolute"));
            const counter c(me());
            // Before the clock is read for an absolute target: the sleep
            // lasts at least call_time from then, not from a later start.
            const auto start = steady::now();
            timespec now;
            ::clock_gettime(clock, &now);
            const timespec target =
                to_timespec(std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec) + call_time);
            const timespec relative = to_timespec(call_time);
            timespec remaining{7, 7};
            EXPECT_EQ(::clock_nanosleep(clock, flags, flags == 0 ? &relative : &target, &remaining), 0);
            EXPECT_GE(steady::now() - start, call_time);
            ::clock_gettime(clock, &now);
            EXPECT_TRUE(now.tv_sec > target.tv_sec || (now.tv_sec == target.tv_sec && now.tv_nsec >= target.tv_nsec))
                << "woke before the deadline on its own clock";
            EXPECT_EQ(remaining.tv_sec, 7);
            EXPECT_GT(c.during(), 0);
            EXPECT_EQ(c.reason(), wait_reason::sleep);
        }
    }
}

// Why: an absolute time centuries ahead (tv_sec = LONG_MAX is a common
// "never") is a sleep without end, as in the kernel. Converted to
// nanoseconds without care, it overflowed, and the call returned 0 at
// once: a program that sleeps until "never" in a loop spun.
TEST(ParkedSleeps, AnAbsoluteTimeCenturiesAheadDoesNotEndTheSleepAtOnce) {
    for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME}) {
        for (time_t seconds : {time_t{LONG_MAX}, time_t{LONG_MAX / 1000}, time_t{20'000'000'000}}) {
            SCOPED_TRACE(std::string(clock == CLOCK_MONOTONIC ? "CLOCK_MONOTONIC" : "CLOCK_REALTIME") +
                         " tv_sec " + std::to_string(seconds));
            // The sleeper never ends (it is left asleep, detached): its
            // flags outlive the test.
            auto returned = std::make_shared<std::atomic<bool>>(false);
            gt::thread([returned, clock, seconds] {
                const timespec never{seconds, 0};
                ::clock_nanosleep(clock, TIMER_ABSTIME, &never, nullptr);
                returned->store(true);
            }).detach();
            gt::this_thread::sleep_for(20ms);  // the sleeper runs at once, and returns at once if it does
            EXPECT_FALSE(returned->load()) << "the sleep ended at once";
        }
    }
}

// Why: glibc's sleep and usleep reach nanosleep inside libc, past its
// wrapper; their own wrappers park too, and sleep returns 0 seconds left.
TEST(ParkedSleeps, SleepAndUsleepParkAndReturnZero) {
    const preemption_for_test preemption(100us);
    const counter c(me());
    auto start = steady::now();
    EXPECT_EQ(::usleep(30'000), 0);
    EXPECT_GE(steady::now() - start, 30ms);
    const long after_usleep = c.during();
    EXPECT_GT(after_usleep, 0);
    start = steady::now();
    EXPECT_EQ(::sleep(1), 0u);
    EXPECT_GE(steady::now() - start, 1s);
    EXPECT_GT(c.during(), after_usleep);
}

// Why: libstdc++'s sleep_for calls nanosleep from its shared library: a
// green thread that uses std::this_thread::sleep_for parks as well.
TEST(ParkedSleeps, StdSleepForParks) {
    const preemption_for_test preemption(100us);
    const counter c(me());
    const auto start = steady::now();
    std::this_thread::sleep_for(call_time);
    EXPECT_GE(steady::now() - start, call_time);
    EXPECT_GT(c.during(), 0);
}

// Why: a zero timeout asks "is anything ready now?": the call goes
// straight to the C library and never parks (no switch away).
TEST(ParkedSleeps, ZeroTimeoutsNeverPark) {
    const preemption_for_test preemption(100us);
    const counter c(me());
    const pipe_pair p;
    const std::uint64_t before = parks(me());
    const timespec zero{0, 0};
    EXPECT_EQ(::nanosleep(&zero, nullptr), 0);
    EXPECT_EQ(::usleep(0), 0);
    EXPECT_EQ(::sleep(0), 0u);
    pollfd fd{p.read_end(), POLLIN, 0};
    EXPECT_EQ(::poll(&fd, 1, 0), 0);
    EXPECT_EQ(::ppoll(&fd, 1, &zero, nullptr), 0);
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(p.read_end(), &readable);
    timeval tv{0, 0};
    EXPECT_EQ(::select(p.read_end() + 1, &readable, nullptr, nullptr, &tv), 0);
    const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event event{};
    EXPECT_EQ(::epoll_wait(epoll, &event, 1, 0), 0);
    ::close(epoll);
    EXPECT_EQ(parks(me()), before);
}

// ---- poll and ppoll ---------------------------------------------------------

// Why: poll parks until one of its descriptors is ready and then reports
// exactly what the kernel reports: POLLIN on the pipe written to, nothing
// on the silent one, nothing for a negative descriptor (ignored).
TEST(ParkedPoll, PollParksUntilADescriptorIsReadyAndSetsRevents) {
    const preemption_for_test preemption(100us);
    const pipe_pair silent, spoken;
    const counter c(me());
    pollfd fds[3] = {{silent.read_end(), POLLIN, 0}, {spoken.read_end(), POLLIN, 0}, {-1, POLLIN, 0}};
    int result = 0;
    {
        const write_when_blocked writer(me(), spoken.write_end(), &c);
        result = ::poll(fds, 3, 10'000);
    }
    EXPECT_EQ(result, 1);
    EXPECT_EQ(fds[0].revents, 0);
    EXPECT_EQ(fds[1].revents, POLLIN);
    EXPECT_EQ(fds[2].revents, 0);
    EXPECT_GT(c.during(), 0);
    EXPECT_EQ(c.reason(), wait_reason::readable);
}

// Why: the other direction: a full pipe's write end, listed twice (once
// for POLLOUT, once for POLLIN, which a write end never has), becomes
// writable when another green thread drains the pipe.
TEST(ParkedPoll, PollForWritingParksUntilThePipeHasRoom) {
    const preemption_for_test preemption(100us);
    const pipe_pair p;
    p.fill();
    const counter c(me());
    const control_block* self = me();
    gt::thread drainer([&] {
        while (self->state != thread_state::blocked) gt::this_thread::yield();
        static char sink[65536];
        const ssize_t n = ::read(p.read_end(), sink, sizeof sink);  // one read: the pipe is blocking
        (void)n;
    });
    pollfd fds[2] = {{p.write_end(), POLLOUT, 0}, {p.write_end(), POLLIN, 0}};
    const int result = ::poll(fds, 2, 10'000);
    drainer.join();
    EXPECT_EQ(result, 1);
    EXPECT_EQ(fds[0].revents, POLLOUT);
    EXPECT_EQ(fds[1].revents, 0);
    EXPECT_GT(c.during(), 0);
}

// Why: the timeout is honoured: a silent pipe times out with 0, no
// revents, errno untouched, after at least the timeout; and a poll of no
// descriptors is a sleep.
TEST(ParkedPoll, PollTimesOutWithZeroAfterItsTimeout) {
    const preemption_for_test preemption(100us);
    const pipe_pair p;
    const counter c(me());
    pollfd fd{p.read_end(), POLLIN, POLLERR};
    errno = EDOM;
    auto start = steady::now();
    EXPECT_EQ(::poll(&fd, 1, static_cast<int>(call_time.count())), 0);
    EXPECT_GE(steady::now() - start, call_time);
    EXPECT_EQ(fd.revents, 0);
    EXPECT_EQ(errno, EDOM);
    start = steady::now();
    EXPECT_EQ(::poll(nullptr, 0, static_cast<int>(call_time.count())), 0);
    EXPECT_GE(steady::now() - start, call_time);
    EXPECT_GT(c.during(), 0);
}

// Why: ppoll with no mask, or with a mask that unblocks nothing the thread
// has blocked, is poll with a timespec: it parks.
TEST(ParkedPoll, PpollWithoutAMaskThatUnblocksAnythingParks) {
    const preemption_for_test preemption(100us);
    const pipe_pair p;
    const counter c(me());
    pollfd fd{p.read_end(), POLLIN, 0};
    const timespec timeout = to_timespec(call_time);
    auto start = steady::now();
    EXPECT_EQ(::ppoll(&fd, 1, &timeout, nullptr), 0);
    EXPECT_GE(steady::now() - start, call_time);
    const long after_first = c.during();
    EXPECT_GT(after_first, 0);
    sigset_t own;
    pthread_sigmask(SIG_BLOCK, nullptr, &own);
    {
        const write_when_blocked writer(me(), p.write_end(), &c);
        EXPECT_EQ(::ppoll(&fd, 1, nullptr, &own), 1);
    }
    EXPECT_EQ(fd.revents, POLLIN);
    EXPECT_GT(c.during(), after_first);
}

std::atomic<int> sigusr1_count{0};
void on_sigusr1(int) { sigusr1_count.fetch_add(1); }

// Why: ppoll with a mask that unblocks a signal the thread blocks is the
// program's race-free wait for that signal; a parked thread cannot take
// the mask along, so it waits in the kernel as before and the signal ends
// it with EINTR (parked, it would have waited its whole 10 s).
TEST(ParkedPoll, PpollWithAMaskThatUnblocksABlockedSignalStillEndsWithEintr) {
    const preemption_for_test preemption(100us);
    struct sigaction action {}, old {};
    action.sa_handler = on_sigusr1;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, &old);
    sigset_t usr1, before;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &before);
    sigusr1_count = 0;
    const pthread_t target = pthread_self();
    std::thread sender([target] {
        std::this_thread::sleep_for(call_time);
        pthread_kill(target, SIGUSR1);  // pending until ppoll unblocks it
    });
    const pipe_pair p;
    pollfd fd{p.read_end(), POLLIN, 0};
    const timespec timeout = to_timespec(10s);
    sigset_t unblocked = before;
    sigdelset(&unblocked, SIGUSR1);
    const auto start = steady::now();
    errno = 0;
    const int result = ::ppoll(&fd, 1, &timeout, &unblocked);
    const int error = errno;
    const auto took = steady::now() - start;
    sender.join();
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    sigaction(SIGUSR1, &old, nullptr);
    EXPECT_EQ(result, -1);
    EXPECT_EQ(error, EINTR);
    EXPECT_EQ(sigusr1_count.load(), 1);
    EXPECT_LT(took, 9s) << "ppoll did not end at the signal: it was parked";
}

// ---- select and pselect -----------------------------------------------------

// Why: select parks, then leaves in the sets exactly the ready descriptors
// (the kernel's answer) and, as Linux's select does, writes the time left.
TEST(ParkedSelect, SelectParksAndLeavesOnlyTheReadyDescriptorsInItsSets) {
    const preemption_for_test preemption(100us);
    const pipe_pair silent, spoken, full;
    full.fill();
    const counter c(me());
    fd_set readable, writable;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    FD_SET(silent.read_end(), &readable);
    FD_SET(spoken.read_end(), &readable);
    FD_SET(full.write_end(), &writable);
    const int count = std::max({silent.read_end(), spoken.read_end(), full.write_end()}) + 1;
    timeval timeout{10, 0};
    int result = 0;
    {
        const write_when_blocked writer(me(), spoken.write_end(), &c);
        result = ::select(count, &readable, &writable, nullptr, &timeout);
    }
    EXPECT_EQ(result, 1);
    EXPECT_TRUE(FD_ISSET(spoken.read_end(), &readable));
    EXPECT_FALSE(FD_ISSET(silent.read_end(), &readable));
    EXPECT_FALSE(FD_ISSET(full.write_end(), &writable));
    EXPECT_TRUE(timeout.tv_sec < 10 || (timeout.tv_sec == 10 && timeout.tv_usec == 0));
    EXPECT_GT(timeout.tv_sec * 1'000'000 + timeout.tv_usec, 0) << "woken early, yet no time left";
    EXPECT_GT(c.during(), 0);
    EXPECT_EQ(c.reason(), wait_reason::readable);
}

// Why: a select that times out returns 0 with empty sets and no time left,
// after at least its timeout; with no descriptors it is a sleep.
TEST(ParkedSelect, SelectTimesOutWithZeroEmptySetsAndNoTimeLeft) {
    const preemption_for_test preemption(100us);
    const pipe_pair p;
    const counter c(me());
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(p.read_end(), &readable);
    timeval timeout{0, 30'000};
    errno = EDOM;
    auto start = steady::now();
    EXPECT_EQ(::select(p.read_end() + 1, &readable, nullptr, nullptr, &timeout), 0);
    EXPECT_GE(steady::now() - start, 30ms);
    EXPECT_EQ(errno, EDOM);
    EXPECT_FALSE(FD_ISSET(p.read_end(), &readable));
    EXPECT_EQ(timeout.tv_sec, 0);
    EXPECT_EQ(timeout.tv_usec, 0);
    timeout = {0, 30'000};
    start = steady::now();
    EXPECT_EQ(::select(0, nullptr, nullptr, nullptr, &timeout), 0);
    EXPECT_GE(steady::now() - start, 30ms);
    EXPECT_GT(c.during(), 0);
}

// Why: pselect without a mask parks like select, and its timeout is
// honoured.
TEST(ParkedSelect, PselectParksUntilReadyOrItsTimeout) {
    const preemption_for_test preemption(100us);
    const pipe_pair p;
    const counter c(me());
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(p.read_end(), &readable);
    const timespec timeout = to_timespec(call_time);
    const auto start = steady::now();
    EXPECT_EQ(::pselect(p.read_end() + 1, &readable, nullptr, nullptr, &timeout, nullptr), 0);
    EXPECT_GE(steady::now() - start, call_time);
    const long after_timeout = c.during();
    EXPECT_GT(after_timeout, 0);
    FD_SET(p.read_end(), &readable);
    {
        const write_when_blocked writer(me(), p.write_end(), &c);
        EXPECT_EQ(::pselect(p.read_end() + 1, &readable, nullptr, nullptr, nullptr, nullptr), 1);
    }
    EXPECT_TRUE(FD_ISSET(p.read_end(), &readable));
    EXPECT_GT(c.during(), after_timeout);
}

// ---- epoll_wait and epoll_pwait ---------------------------------------------

// Why: epoll_wait on the program's own epoll descriptor parks until that
// descriptor has events, and returns them; its timeout is honoured; and a
// closed epoll descriptor whose number a new one reuses parks as well.
TEST(ParkedEpoll, EpollWaitParksOnTheProgramsEpollDescriptor) {
    const preemption_for_test preemption(100us);
    const counter c(me());
    for (int round = 0; round < 2; ++round) {  // the second reuses the number
        SCOPED_TRACE(round);
        const pipe_pair p;
        const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
        ASSERT_GE(epoll, 0);
        epoll_event interest{};
        interest.events = EPOLLIN;
        interest.data.fd = p.read_end();
        ASSERT_EQ(::epoll_ctl(epoll, EPOLL_CTL_ADD, p.read_end(), &interest), 0);
        epoll_event events[4] = {};
        errno = EDOM;
        const auto start = steady::now();
        EXPECT_EQ(::epoll_wait(epoll, events, 4, static_cast<int>(call_time.count())), 0);
        EXPECT_GE(steady::now() - start, call_time);
        EXPECT_EQ(errno, EDOM);
        const long after_timeout = c.during();
        EXPECT_GT(after_timeout, 0);
        int result = 0;
        {
            const write_when_blocked writer(me(), p.write_end(), &c);
            result = round == 0 ? ::epoll_wait(epoll, events, 4, -1) : ::epoll_pwait(epoll, events, 4, 10'000, nullptr);
        }
        EXPECT_EQ(result, 1);
        EXPECT_EQ(events[0].data.fd, p.read_end());
        EXPECT_EQ(events[0].events, static_cast<std::uint32_t>(EPOLLIN));
        EXPECT_GT(c.during(), after_timeout);
        EXPECT_EQ(c.reason(), wait_reason::readable);
        ::close(epoll);
    }
}

// ---- where parking is not sound ---------------------------------------------

std::atomic<long> handler_parks{-1};
std::atomic<int> handler_sleep_result{-1};
void sleeps_in_handler(int) {
    const control_block* self = gt::detail::scheduler::current().running();
    const std::uint64_t before = parks(self);
    handler_sleep_result = ::usleep(20'000);
    handler_parks = static_cast<long>(parks(self) - before);
}

// Why: a handler of the program's signal interrupts whatever green thread
// ran; parking there would suspend the handler midway and run the next
// thread with the signal blocked. A sleep in a handler keeps the OS
// thread, as before, and the handler completes.
TEST(NotParked, ASleepInsideTheProgramsSignalHandlerKeepsTheOsThread) {
    const preemption_for_test preemption(100us);
    const counter c(me());
    struct sigaction action {}, old {};
    action.sa_handler = sleeps_in_handler;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR2, &action, &old);
    handler_parks = -1;
    const auto start = steady::now();
    ::raise(SIGUSR2);
    const auto took = steady::now() - start;
    sigaction(SIGUSR2, &old, nullptr);
    EXPECT_EQ(handler_sleep_result.load(), 0);
    EXPECT_EQ(handler_parks.load(), 0) << "the handler's sleep parked its green thread";
    EXPECT_GE(took, 20ms);
}

// ---- the trace --------------------------------------------------------------

bool in_trace_child() { return std::getenv("GT_PARK_TRACE_CHILD") != nullptr; }

// Runs in a child process started by the test below, with GT_TRACE set:
// "poller" waits in poll for a pipe that "writer" writes once it blocks.
TEST(ParkedTraceChild, Scenario) {
    if (!in_trace_child()) GTEST_SKIP() << "runs only as the child of ParkedTrace tests";
    const pipe_pair p;
    std::atomic<const control_block*> poller{nullptr};
    gt::thread waiter({.name = "poller"}, [&] {
        poller = me();
        pollfd fd{p.read_end(), POLLIN, 0};
        ::poll(&fd, 1, 10'000);
    });
    gt::thread writer({.name = "writer"}, [&] {
        while (poller.load() == nullptr || poller.load()->state != thread_state::blocked) gt::this_thread::yield();
        ::usleep(5'000);  // nothing READY meanwhile: the OS thread idles in the poller
        const ssize_t n = ::write(p.write_end(), "x", 1);
        (void)n;
    });
    waiter.join();
    writer.join();
}

// Why: the trace must show I/O waits for what they are: a block on a
// descriptor ("waiting for" readable, with its number) and the wake that
// ends it, and the OS thread's idle stretch while nothing could run.
TEST(ParkedTrace, APollShowsAsABlockOnADescriptorAndTheOsThreadIdles) {
    if (in_trace_child()) GTEST_SKIP();
    char self[PATH_MAX] = {};
    ASSERT_GT(::readlink("/proc/self/exe", self, sizeof self - 1), 0);
    char path[] = "/tmp/gt-park-trace-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    const std::string command = std::string("GT_TRACE=") + path + " GT_PARK_TRACE_CHILD=1 '" + self +
                                "' --gtest_filter=ParkedTraceChild.Scenario >/dev/null 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    std::ifstream in(path);
    const nlohmann::json trace = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    std::remove(path);
    ASSERT_TRUE(trace.is_array());
    std::uint64_t poller = 0;
    for (const auto& e : trace) {
        if (e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"].get<std::string>().rfind("poller", 0) == 0) {
            poller = e["tid"];
        }
    }
    ASSERT_NE(poller, 0u);
    int io_blocks = 0, io_wakes = 0, idles = 0;
    for (const auto& e : trace) {
        if (e["ph"] == "X" && e["name"] == "idle" && e["tid"] == 0) ++idles;
        if (e["ph"] != "i" || e["tid"] != poller) continue;
        const auto& args = e["args"];
        if (e["name"] == "block" && args.value("waiting for", "") == "readable" && args.contains("fd") &&
            args["object"] == "descriptor " + std::to_string(args["fd"].get<int>())) {
            ++io_blocks;
        }
        if (e["name"] == "wake" && args.value("waited for", "") == "readable" && args.contains("fd")) ++io_wakes;
    }
    EXPECT_EQ(io_blocks, 1) << trace.dump(1);
    EXPECT_EQ(io_wakes, 1) << trace.dump(1);
    EXPECT_GE(idles, 1) << trace.dump(1);
}

}  // namespace
