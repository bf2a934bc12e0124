// Strict priorities: one FIFO run queue per level, the highest non-empty
// level always runs first, and a thread that becomes READY with a higher
// priority than the running thread runs at once. Cooperative, so the
// interleavings are exact (golden traces).
#include <gt/thread.hpp>

#include <stdexcept>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "cooperative.hpp"
#include "scheduler.hpp"

namespace {

std::string trace;

void run_turns(char name, int turns) {
    for (int i = 0; i < turns; ++i) {
        trace += name;
        gt::this_thread::yield();
    }
}

class Priority : public testing::Test {
protected:
    void SetUp() override { trace.clear(); }

    const cooperative_scheduling cooperative;  // every test asserts an exact order (golden trace)
};

// Why: strict priority means a lower level gets nothing while a higher
// one has a READY thread; within a level, round robin.
TEST_F(Priority, HigherLevelsRunToCompletionFirstRoundRobinWithinALevel) {
    gt::thread low({.priority = 5}, run_turns, 'l', 2);
    gt::thread mid1({.priority = 10}, run_turns, 'm', 2);
    gt::thread mid2({.priority = 10}, run_turns, 'n', 2);
    gt::this_thread::set_priority(gt::lowest_priority);  // main steps aside
    gt::this_thread::yield();
    gt::this_thread::set_priority(gt::default_priority);
    low.join();
    mid1.join();
    mid2.join();
    EXPECT_EQ(trace, "mnmnll");
}

TEST_F(Priority, HigherPriorityThreadRunsAsSoonAsItIsCreated) {
    trace += 'a';
    gt::thread high({.priority = gt::default_priority + 1}, [] { trace += 'H'; });
    trace += 'b';  // main resumes only after high has finished
    high.join();
    EXPECT_EQ(trace, "aHb");
}

TEST_F(Priority, ThreadMadeReadyByALowerOneRunsImmediately) {
    gt::thread low({.priority = 3}, [] {
        trace += "L1";
        gt::thread high({.priority = 20}, [] { trace += "H"; });
        trace += "L2";
        high.join();
    });
    gt::this_thread::set_priority(2);  // below low: low runs now
    trace += "M";
    gt::this_thread::set_priority(gt::default_priority);
    low.join();
    EXPECT_EQ(trace, "L1HL2M");
}

// Why: a preempted thread has not used its turn; POSIX (sched(7),
// SCHED_FIFO) puts it back at the head of its level, not the tail.
TEST_F(Priority, PreemptedThreadResumesBeforeOthersOfItsLevel) {
    gt::thread a({.priority = 8}, [] {
        trace += 'a';
        gt::thread h({.priority = 9}, [] { trace += 'H'; });  // preempts a
        trace += 'a';
        h.join();
    });
    gt::thread b({.priority = 8}, [] { trace += 'b'; });
    gt::this_thread::set_priority(1);
    gt::this_thread::set_priority(gt::default_priority);
    a.join();
    b.join();
    EXPECT_EQ(trace, "aHab");
}

TEST_F(Priority, RaisingAReadyThreadAboveTheRunningOneRunsItAtOnce) {
    gt::thread t({.priority = 4}, [] { trace += 'T'; });
    trace += '1';
    t.set_priority(gt::highest_priority);
    trace += '2';
    EXPECT_EQ(t.get_priority(), gt::highest_priority);
    t.join();
    EXPECT_EQ(trace, "1T2");
}

TEST_F(Priority, LoweringItselfBelowAReadyThreadYieldsToIt) {
    gt::thread t({.priority = 10}, [] { trace += 'T'; });
    trace += '1';
    gt::this_thread::set_priority(9);
    trace += '2';
    EXPECT_EQ(gt::this_thread::get_priority(), 9);
    gt::this_thread::set_priority(gt::default_priority);
    t.join();
    EXPECT_EQ(trace, "1T2");
}

TEST_F(Priority, YieldDoesNotGiveTheCpuToALowerLevel) {
    gt::thread low({.priority = 1}, [] { trace += 'l'; });
    trace += 'a';
    gt::this_thread::yield();  // only a lower level is READY: keep running
    trace += 'b';
    low.join();
    EXPECT_EQ(trace, "abl");
}

TEST_F(Priority, JoinWakesAHigherJoinerBeforeOtherReadyThreads) {
    gt::thread worker({.priority = 6}, [] {
        trace += 'w';
        gt::this_thread::yield();
        trace += 'w';
    });
    gt::thread other({.priority = 6}, run_turns, 'o', 3);
    gt::thread joiner({.priority = 12}, [&] {
        worker.join();
        trace += 'J';
    });  // runs now, blocks at once
    gt::this_thread::set_priority(0);
    gt::this_thread::set_priority(gt::default_priority);
    joiner.join();
    other.join();
    EXPECT_EQ(trace, "wowJoo");
}

// Why: the bitmap finds the highest non-empty level in O(1); check it on
// every level, both directions.
TEST(PriorityRunQueues, BitmapFindsTheHighestNonEmptyLevel) {
    gt::detail::priority_run_queues q;
    std::vector<gt::detail::control_block> tcbs(gt::detail::priority_run_queues::levels);
    for (int p = 0; p < gt::detail::priority_run_queues::levels; ++p) {
        tcbs[p].priority = p;
        q.push_back(&tcbs[p]);
        EXPECT_EQ(q.highest(), p);
    }
    for (int p = gt::detail::priority_run_queues::levels - 1; p >= 0; --p) {
        EXPECT_EQ(q.pop_highest(), &tcbs[p]);
    }
    EXPECT_TRUE(q.empty());
}

TEST(PriorityMisuse, OutOfRangePriorityThrowsInvalidArgumentNamingTheRange) {
    try {
        gt::thread t({.priority = 32, .name = "too-high"}, [] {});
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("\"too-high\""), std::string::npos) << what;
        EXPECT_NE(what.find("priority 32 is outside"), std::string::npos) << what;
        EXPECT_NE(what.find("(0..31)"), std::string::npos) << what;
    }
    EXPECT_THROW(gt::this_thread::set_priority(-1), std::invalid_argument);
    gt::thread t([] {});
    EXPECT_THROW(t.set_priority(99), std::invalid_argument);
    t.join();
    EXPECT_THROW(t.set_priority(1), std::system_error) << "not joinable any more";
}

}  // namespace
