// Sleeping: sleep_for/sleep_until block the thread on the timer list; the
// others run meanwhile; when nobody is READY, the OS thread sleeps until
// the earliest deadline instead of spinning. Timing assertions are bounds.
#include <gt/thread.hpp>

#include <time.h>

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

TEST(Sleep, SleepersWakeInDeadlineOrder) {
    const cooperative_scheduling cooperative;  // asserts wake order; threads append to one std::string unlocked
    std::string order;
    gt::thread c([&] { gt::this_thread::sleep_for(30ms); order += 'c'; });
    gt::thread a([&] { gt::this_thread::sleep_for(10ms); order += 'a'; });
    gt::thread b([&] { gt::this_thread::sleep_for(20ms); order += 'b'; });
    c.join();
    a.join();
    b.join();
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

// Why: sleep_for promises "at least"; it must not return early, and should
// not oversleep by much on an idle machine (generous bound).
TEST(Sleep, SleepForLastsAtLeastTheDurationAndNotMuchMore) {
    for (auto d : {1ms, 5ms, 20ms}) {
        const auto start = steady::now();
        gt::this_thread::sleep_for(d);
        const auto took = steady::now() - start;
        EXPECT_GE(took, d);
        EXPECT_LT(took, d + 100ms);
    }
}

TEST(Sleep, OtherThreadsRunWhileOneSleeps) {
    int work = 0;
    bool sleeper_done = false;
    gt::thread sleeper([&] {
        gt::this_thread::sleep_for(20ms);
        sleeper_done = true;
    });
    gt::thread worker([&] {
        while (!sleeper_done) {
            ++work;
            gt::this_thread::yield();
        }
    });
    sleeper.join();
    worker.join();
    EXPECT_GT(work, 10);
}

double cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Why: an idle runtime must cost no CPU: the OS thread sleeps in
// clock_nanosleep until the earliest deadline instead of polling.
TEST(Sleep, IdleRuntimeUsesNoCpuWhileEveryThreadSleeps) {
    const double cpu_before = cpu_seconds();
    const auto start = steady::now();
    std::vector<gt::thread> threads;
    for (int i = 0; i < 10; ++i) threads.emplace_back([] { gt::this_thread::sleep_for(100ms); });
    for (auto& t : threads) t.join();
    const double wall = std::chrono::duration<double>(steady::now() - start).count();
    const double cpu = cpu_seconds() - cpu_before;
    EXPECT_GE(wall, 0.1);
    EXPECT_LT(cpu, 0.02) << "CPU seconds used while all threads slept " << wall << " s";
}

TEST(Sleep, ZeroNegativeAndPastDeadlinesReturnAtOnce) {
    const auto start = steady::now();
    gt::this_thread::sleep_for(0ms);
    gt::this_thread::sleep_for(-5ms);
    gt::this_thread::sleep_until(steady::now() - 1s);
    EXPECT_LT(steady::now() - start, 5ms);
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

TEST(Sleep, SleeperIsBlockedOnTheTimerListWhileItSleeps) {
    const cooperative_scheduling cooperative;  // t must be asleep after main's one yield()
    gt::detail::control_block* sleeper_tcb = nullptr;
    gt::thread t([&] {
        sleeper_tcb = gt::detail::scheduler::current().running();
        gt::this_thread::sleep_for(10ms);
    });
    gt::this_thread::yield();
    ASSERT_NE(sleeper_tcb, nullptr);
    EXPECT_EQ(sleeper_tcb->state, gt::detail::thread_state::blocked);
    EXPECT_EQ(sleeper_tcb->waiting_for, gt::detail::wait_reason::sleep);
    EXPECT_EQ(sleeper_tcb->list, gt::detail::on_list::timer_list);
    t.join();
}

TEST(Sleep, HigherPriorityThreadRunsFirstWhenItsSleepEnds) {
    const cooperative_scheduling cooperative;  // asserts an exact order
    std::string trace;
    gt::thread high({.priority = 20}, [&] {
        gt::this_thread::sleep_for(5ms);
        trace += 'H';
    });
    gt::thread low({.priority = 10}, [&] {
        const auto until = steady::now() + 50ms;
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
