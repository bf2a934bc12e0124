// The round-robin scheduler. Scheduling here is cooperative and
// deterministic, so these tests assert exact interleavings (golden traces).
#include <gt/thread.hpp>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cooperative.hpp"
#include "scheduler.hpp"

namespace {

// Why: round robin means every READY thread gets one turn before anyone
// gets a second, in the order they became READY.
TEST(RoundRobin, GoldenInterleavingOfThreeThreads) {
    const cooperative_scheduling cooperative;  // asserts an exact interleaving
    std::string trace;
    auto worker = [&](char name, int turns) {
        for (int i = 0; i < turns; ++i) {
            trace += name;
            gt::this_thread::yield();
        }
        trace += static_cast<char>(name - 'A' + 'a');  // lower case: returns
    };
    gt::thread a(worker, 'A', 3);
    gt::thread b(worker, 'B', 2);
    gt::thread c(worker, 'C', 4);
    trace += 'm';  // main keeps running until it yields or joins
    a.join();      // main yields in turn until a finishes
    trace += 'm';
    b.join();
    c.join();
    // m: main before joining. Then turns in run-queue order A B C (main),
    // where main's turns add nothing until a has finished. B returns after
    // 2 turns (b), A after 3 (a); main then sees a FINISHED (m), finds b
    // already FINISHED, and yields to C until C returns (c).
    EXPECT_EQ(trace, "mABCABCAbCaCmc");
}

TEST(RoundRobin, NewThreadDoesNotRunUntilItsCreatorYields) {
    const cooperative_scheduling cooperative;  // asserts the new thread does not run until main yields
    bool ran = false;
    gt::thread t([&] { ran = true; });
    EXPECT_FALSE(ran);
    gt::this_thread::yield();
    EXPECT_TRUE(ran);
    t.join();
}

// Why: a yield that re-picked the yielder while others wait would starve them.
TEST(RoundRobin, YieldNeverRepicksTheYielderWhileAnotherThreadIsReady) {
    const cooperative_scheduling cooperative;  // asserts an exact interleaving
    std::vector<int> order;
    gt::thread t([&] {
        for (int i = 0; i < 3; ++i) {
            order.push_back(1);
            gt::this_thread::yield();
        }
    });
    for (int i = 0; i < 3; ++i) {
        order.push_back(0);
        gt::this_thread::yield();
    }
    t.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 0, 1, 0, 1}));
}

TEST(RoundRobin, YieldWithNothingElseReadyReturnsToTheCaller) {
    auto& sched = gt::detail::scheduler::current();
    auto* before = sched.running();
    ASSERT_FALSE(sched.has_ready());
    gt::this_thread::yield();
    EXPECT_EQ(sched.running(), before);
    EXPECT_EQ(before->state, gt::detail::thread_state::running);
}

TEST(RoundRobin, ThreadsCreatedByThreadsJoinTheRotation) {
    const cooperative_scheduling cooperative;  // asserts an exact interleaving
    std::string trace;
    gt::thread parent([&] {
        trace += 'P';
        gt::thread child([&] {
            trace += 'c';
            gt::this_thread::yield();
            trace += 'c';
        });
        gt::this_thread::yield();
        trace += 'P';
        child.join();
        trace += 'P';
    });
    parent.join();
    EXPECT_EQ(trace, "PcPcP");
}

TEST(States, ThreadMovesReadyRunningFinished) {
    const cooperative_scheduling cooperative;  // asserts t's state after each of main's yields
    auto& sched = gt::detail::scheduler::current();
    gt::detail::control_block* self = nullptr;
    gt::thread t([&] {
        self = sched.running();
        EXPECT_EQ(self->state, gt::detail::thread_state::running);
        gt::this_thread::yield();
    });
    gt::this_thread::yield();  // t runs, then yields back to main
    ASSERT_NE(self, nullptr);
    EXPECT_EQ(self->state, gt::detail::thread_state::ready);
    EXPECT_EQ(sched.running()->state, gt::detail::thread_state::running);
    gt::this_thread::yield();  // t returns
    EXPECT_EQ(self->state, gt::detail::thread_state::finished);
    EXPECT_STREQ(gt::detail::to_string(self->state), "FINISHED");
    t.join();
}

// Why: thousands of threads must coexist: each costs one mapping pair and a
// TCB, and the run queue must keep exact FIFO order at that size.
TEST(Scale, TenThousandThreadsInterleaveAndJoin) {
    const cooperative_scheduling cooperative;  // asserts FIFO order; threads update shared counters
    constexpr int n = 10'000;
    constexpr int rounds = 3;
    std::vector<int> progress(n, 0);
    long long steps = 0;
    bool in_order = true;
    int last = -1;
    std::vector<gt::thread> threads;
    threads.reserve(n);
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            for (int r = 0; r < rounds; ++r) {
                // Round robin: thread i runs right after thread i-1 in every round.
                if (last != (i == 0 ? n - 1 : i - 1) && !(r == 0 && i == 0)) in_order = false;
                last = i;
                ++progress[i];
                ++steps;
                gt::this_thread::yield();
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(steps, static_cast<long long>(n) * rounds);
    EXPECT_TRUE(in_order);
    for (int i = 0; i < n; ++i) ASSERT_EQ(progress[i], rounds) << "thread index " << i;
}

// Why: a state change the scheduler did not expect must stop the program
// and say which thread, which state it was in and which it should have
// been in, instead of corrupting the run queue quietly.
TEST(StateMachineDeathTest, AWrongStateChangeNamesTheThreadAndBothStates) {
    EXPECT_DEATH(
        {
            gt::detail::control_block t;
            t.id = 4242;
            t.state = gt::detail::thread_state::finished;
            gt::detail::change_state(t, gt::detail::thread_state::ready, gt::detail::thread_state::running);
        },
        "invariant broken: thread 4242.* goes from READY to RUNNING, but it is FINISHED");
}

// Why: a thread linked into two lists at once corrupts both; the run queue
// owns the membership mark and refuses the second insertion.
TEST(StateMachineDeathTest, TheRunQueueRefusesAThreadAlreadyOnAList) {
    EXPECT_DEATH(
        {
            gt::detail::control_block t;
            t.id = 4343;
            gt::detail::run_queue q;
            q.push_back(&t);
            q.push_back(&t);
        },
        "a thread is on at most one list: thread 4343.* is READY, on a run queue");
}

}  // namespace
