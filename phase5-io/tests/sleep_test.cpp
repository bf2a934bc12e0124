// Sleeping: sleep_for/sleep_until block the thread on the timer list; the
// others run meanwhile; when nobody is READY, the OS thread sleeps until
// the earliest deadline instead of spinning. Assertions hold on a loaded
// machine: CPU time is read from the OS thread's CPU clock, deadlines from
// the sleeper's control block, and wall-clock bounds are only "at least".
#include <gt/thread.hpp>

#include <sys/resource.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cooperative.hpp"
#include "scheduler.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// Why: the timer list is ordered by deadline, not by the order of the
// calls. A run counts only if all three were asleep before the first
// deadline (a loaded machine may stall the OS thread for longer than a
// sleep, and then their deadlines were no longer apart as asked); else it
// is run again with sleeps ten times longer.
TEST(Sleep, SleepersWakeInDeadlineOrder) {
    const cooperative_scheduling cooperative;  // asserts wake order; threads append to one std::string unlocked
    std::string order;
    bool asleep_in_time = false;
    for (const auto unit : {10ms, 100ms, 1000ms}) {
        order.clear();
        const auto start = steady::now();
        gt::thread c([&] { gt::this_thread::sleep_for(3 * unit); order += 'c'; });
        gt::thread a([&] { gt::this_thread::sleep_for(unit); order += 'a'; });
        gt::thread b([&] { gt::this_thread::sleep_for(2 * unit); order += 'b'; });
        gt::this_thread::yield();  // each runs until its sleep; main comes back after the three
        asleep_in_time = steady::now() < start + unit;
        c.join();
        a.join();
        b.join();
        if (asleep_in_time) break;
    }
    ASSERT_TRUE(asleep_in_time) << "the OS thread stalled for longer than a second three times";
    EXPECT_EQ(order, "abc");
}

TEST(Sleep, EqualDeadlinesWakeInTheOrderTheyWentToSleep) {
    const cooperative_scheduling cooperative;  // asserts FIFO order; threads append to one std::string
    std::string order;
    const auto at = steady::now() + 5ms;
    std::vector<gt::thread> threads;
    for (char name : std::string("pqrs")) {
        threads.emplace_back([&order, at, name] {
            gt::this_thread::sleep_until(at);
            order += name;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(order, "pqrs");
}

std::int64_t ns_since_epoch(steady::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// Why: sleep_for promises "at least"; it must not return early, and must
// not oversleep: the deadline it sleeps to is the call's time plus the
// duration (read from the sleeper's control block while it sleeps; an
// oversleep by the OS on a loaded machine is not the runtime's), and it
// wakes without waiting for anything else (a bound for gross errors only,
// ten seconds: a loaded machine has stalled for seconds).
TEST(Sleep, SleepForLastsAtLeastTheDurationAndNotMuchMore) {
    gt::detail::control_block* self = gt::detail::scheduler::current().running();
    for (auto d : {1ms, 5ms, 20ms}) {
        std::int64_t deadline = -1, seen_at = -1;
        gt::thread observer([&] {  // runs once main sleeps
            while (self->state != gt::detail::thread_state::blocked) gt::this_thread::yield();
            deadline = self->wake_time;
            seen_at = ns_since_epoch(steady::now());
        });
        const auto start = steady::now();
        gt::this_thread::sleep_for(d);
        const auto took = steady::now() - start;
        observer.join();
        EXPECT_GE(took, d);
        EXPECT_GE(deadline, ns_since_epoch(start + d));
        EXPECT_LE(deadline, seen_at + std::chrono::nanoseconds(d).count());
        EXPECT_LT(took, d + 10s);
    }
}

// Why: a sleep blocks the green thread, not the OS thread. The worker
// counts the rounds it ran while the sleeper was asleep (not rounds per
// wall-clock time: a loaded machine may run this OS thread only once in
// those 20 ms).
TEST(Sleep, OtherThreadsRunWhileOneSleeps) {
    int work_while_asleep = 0;
    bool sleeper_done = false;
    gt::detail::control_block* sleeper_tcb = nullptr;
    gt::thread sleeper([&] {
        sleeper_tcb = gt::detail::scheduler::current().running();
        gt::this_thread::sleep_for(20ms);
        sleeper_done = true;
    });
    gt::thread worker([&] {
        while (!sleeper_done) {
            if (sleeper_tcb != nullptr && sleeper_tcb->state == gt::detail::thread_state::blocked) ++work_while_asleep;
            gt::this_thread::yield();
        }
    });
    sleeper.join();
    worker.join();
    EXPECT_GT(work_while_asleep, 0);
}

// CPU time of the calling OS thread (which runs every green thread here).
double os_thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Why: an idle runtime must cost no CPU: the OS thread sleeps in
// clock_nanosleep until the earliest deadline instead of polling. Measured
// on the OS thread's CPU clock from the moment all ten threads sleep until
// main, asleep with them, wakes at the same deadline: at least 100 ms in
// which nothing may run. (A polling idle loop burns all of it on an idle
// machine, and its share of the CPU on a loaded one.) If a loaded machine
// makes setting up eat most of the 200 ms, the round is measured again.
TEST(Sleep, IdleRuntimeUsesNoCpuWhileEveryThreadSleeps) {
    double cpu = 0, idle = 0;
    for (int round = 0; round < 5 && idle < 0.1; ++round) {
        const auto wake = steady::now() + 200ms;
        std::atomic<int> asleep{0};
        std::vector<gt::thread> threads;
        for (int i = 0; i < 10; ++i) {
            threads.emplace_back([&asleep, wake] {
                ++asleep;
                gt::this_thread::sleep_until(wake);
            });
        }
        while (asleep < 10) gt::this_thread::yield();  // each one runs until its sleep
        const auto idle_from = steady::now();
        const double cpu_before = os_thread_cpu_seconds();
        gt::this_thread::sleep_until(wake);
        cpu = os_thread_cpu_seconds() - cpu_before;
        idle = std::chrono::duration<double>(wake - idle_from).count();
        for (auto& t : threads) t.join();
    }
    EXPECT_GE(idle, 0.1) << "setting up took most of the 200 ms five times: nothing measured";
    EXPECT_LT(cpu, 0.02) << "CPU seconds used while all threads slept " << idle << " s";
}

long voluntary_context_switches() {
    rusage usage{};
    getrusage(RUSAGE_THREAD, &usage);
    return usage.ru_nvcsw;
}

// Why: a sleep whose deadline has passed must not block at all: neither
// the green thread (a READY thread would run meanwhile) nor the OS thread
// (it would count a voluntary context switch). Counted, not timed: a
// loaded machine may take the CPU away for milliseconds anywhere.
TEST(Sleep, ZeroNegativeAndPastDeadlinesReturnAtOnce) {
    const cooperative_scheduling cooperative;  // only a sleep may let `other` run
    bool other_ran = false;
    gt::thread other([&] { other_ran = true; });
    const long switches_before = voluntary_context_switches();
    gt::this_thread::sleep_for(0ms);
    gt::this_thread::sleep_for(-5ms);
    gt::this_thread::sleep_until(steady::now() - 1s);
    const long os_thread_blocked = voluntary_context_switches() - switches_before;
    EXPECT_FALSE(other_ran) << "a sleep switched to another thread";
    EXPECT_EQ(os_thread_blocked, 0) << "a sleep blocked the OS thread";
    other.join();
}

void sleep_far_beyond_the_clocks_range() {
    gt::detail::control_block* a = nullptr;
    gt::detail::control_block* b = nullptr;
    gt::thread ta([&] {
        a = gt::detail::scheduler::current().running();
        gt::this_thread::sleep_for(std::chrono::hours::max());
    });
    gt::thread tb([&] {
        b = gt::detail::scheduler::current().running();
        gt::this_thread::sleep_for(std::chrono::years(1000));
    });
    gt::this_thread::yield();
    const bool ok = a != nullptr && b != nullptr && a->state == gt::detail::thread_state::blocked &&
                    b->state == gt::detail::thread_state::blocked && a->wake_time == INT64_MAX &&
                    b->wake_time == INT64_MAX;
    std::_Exit(ok ? 0 : 1);  // the sleepers never wake: leave without joining
}

// Why: converting hours::max() or a thousand years to nanoseconds overflows;
// a sleep that long must block (practically forever), not return at once.
TEST(SleepDeathTest, SleepsBeyondTheClocksRangeBlockInsteadOfReturning) {
    const cooperative_scheduling cooperative;  // both must be asleep after one yield()
    EXPECT_EXIT(sleep_far_beyond_the_clocks_range(), testing::ExitedWithCode(0), "");
}

TEST(Sleep, SleepUntilWorksWithTheSystemClock) {
    const auto target = std::chrono::system_clock::now() + 10ms;
    gt::this_thread::sleep_until(target);
    EXPECT_GE(std::chrono::system_clock::now(), target);
}

// Why: a sleeping thread is BLOCKED on the timer list, nowhere else. Seen
// only if main looks before the sleep ends: on a loaded machine the OS
// thread may stall for longer, and then it looks again with a ten times
// longer sleep.
TEST(Sleep, SleeperIsBlockedOnTheTimerListWhileItSleeps) {
    const cooperative_scheduling cooperative;  // t must be asleep after main's one yield()
    for (const auto nap : {10ms, 100ms, 1000ms}) {
        gt::detail::control_block* sleeper_tcb = nullptr;
        const auto start = steady::now();
        gt::thread t([&] {
            sleeper_tcb = gt::detail::scheduler::current().running();
            gt::this_thread::sleep_for(nap);
        });
        gt::this_thread::yield();
        ASSERT_NE(sleeper_tcb, nullptr);
        const gt::detail::thread_state state = sleeper_tcb->state;
        const gt::detail::wait_reason waiting_for = sleeper_tcb->waiting_for;
        const gt::detail::on_list list = sleeper_tcb->list;
        const bool before_its_deadline = steady::now() < start + nap;
        t.join();
        if (!before_its_deadline && nap < 1000ms) continue;
        ASSERT_TRUE(before_its_deadline) << "the OS thread stalled for longer than a second three times";
        EXPECT_EQ(state, gt::detail::thread_state::blocked);
        EXPECT_EQ(waiting_for, gt::detail::wait_reason::sleep);
        EXPECT_EQ(list, gt::detail::on_list::timer_list);
        break;
    }
}

TEST(Sleep, HigherPriorityThreadRunsFirstWhenItsSleepEnds) {
    const cooperative_scheduling cooperative;  // asserts an exact order
    std::string trace;
    gt::thread high({.priority = 20}, [&] {
        gt::this_thread::sleep_for(5ms);
        trace += 'H';
    });
    gt::thread low({.priority = 10}, [&] {
        const auto until = steady::now() + 10s;  // only if high never wakes; a loaded machine stalls for ms
        while (steady::now() < until && trace.empty()) gt::this_thread::yield();
        trace += 'l';
    });
    gt::this_thread::set_priority(0);
    gt::this_thread::set_priority(gt::default_priority);
    high.join();
    low.join();
    EXPECT_EQ(trace, "Hl") << "high preempts low at low's first yield after the deadline";
}

// Why: when a higher-priority thread becomes READY, the scheduler picks the
// highest READY thread, and a sleeper whose time has already come counts.
TEST(Sleep, ExpiredSleeperOutranksAThreadThatPreemptsForIt) {
    const cooperative_scheduling cooperative;  // no tick may wake the sleeper during the busy loop
    std::string trace;
    gt::thread sleeper({.priority = 30}, [&] {
        gt::this_thread::sleep_for(1ms);
        trace += 'S';
    });
    const auto until = steady::now() + 5ms;
    while (steady::now() < until) {
    }  // no yield: the sleeper's time passes unnoticed
    gt::thread created({.priority = 20}, [&] { trace += 'C'; });  // preempts main
    created.join();
    sleeper.join();
    EXPECT_EQ(trace, "SC");
}

}  // namespace
