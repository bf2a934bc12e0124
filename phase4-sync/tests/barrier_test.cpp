// gt::barrier and gt::latch: phases with immediate re-arrival under
// preemption, the completion once per phase, arrive_and_drop, tokens,
// blocking waiters, and the bad-count errors.
#include <gt/barrier.hpp>
#include <gt/debug.hpp>
#include <gt/latch.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "blocked_on.hpp"
#include "preemption_for_test.hpp"

using namespace std::chrono_literals;

// Why: the barrier's hard case. Threads re-arrive at once after each
// phase, under a 100 µs slice; a waiter woken by phase p must not be
// confused by an arrival for p+1 (the generation), and the completion runs
// exactly once per phase, before anyone of that phase goes on.
TEST(Barrier, AThousandPhasesOfEightThreadsRunTheCompletionOncePerPhase) {
    const preemption_for_test preemption(100us);
    constexpr int threads = 8, phases = 1000;
    std::atomic<long> completions{0};
    auto on_completion = [&]() noexcept { ++completions; };
    gt::barrier<decltype(on_completion)> sync(threads, on_completion);
    std::atomic<long> out_of_step{0};
    std::vector<gt::thread> workers;
    for (int i = 0; i < threads; ++i) {
        workers.emplace_back([&] {
            for (long p = 0; p < phases; ++p) {
                // Uneven work, so that ticks land at every point of the phase.
                for (long k = 0; k < (p % 7) * 400; ++k) std::atomic_signal_fence(std::memory_order_seq_cst);
                sync.arrive_and_wait();
                if (completions.load() != p + 1) ++out_of_step;  // the next phase needs this thread first
            }
        });
    }
    for (auto& t : workers) t.join();
    EXPECT_EQ(completions.load(), phases);
    EXPECT_EQ(out_of_step.load(), 0);
}

// Why: arrive_and_drop counts in the current phase and lowers the count of
// every later one; without that, the remaining threads would wait forever.
TEST(Barrier, ArriveAndDropLowersTheCountOfLaterPhases) {
    const preemption_for_test preemption(100us);
    std::atomic<int> completions{0};
    auto on_completion = [&]() noexcept { ++completions; };
    gt::barrier<decltype(on_completion)> sync(4, on_completion);
    std::vector<gt::thread> workers;
    for (int i = 0; i < 3; ++i) {
        workers.emplace_back([&] {
            for (int p = 0; p < 11; ++p) sync.arrive_and_wait();
        });
    }
    workers.emplace_back([&] { sync.arrive_and_drop(); });
    for (auto& t : workers) t.join();
    EXPECT_EQ(completions.load(), 11);
}

// Why: arrive() and wait(token) split the barrier: the token's phase ends
// only when the last thread arrives, and a token of a phase that has ended
// waits no more.
TEST(Barrier, WaitWithATokenBlocksUntilItsPhaseEnds) {
    const preemption_for_test preemption(0us);
    gt::barrier<> sync(2);
    bool other_arrived = false;
    std::uint64_t switches_while_waiting = 0;
    gt::thread other([&] {
        gt::this_thread::sleep_for(2ms);
        other_arrived = true;
        sync.arrive_and_wait();
    });
    auto token = sync.arrive();
    const std::uint64_t before = gt::debug::this_thread_stats().switches;
    sync.wait(std::move(token));
    switches_while_waiting = gt::debug::this_thread_stats().switches - before;
    EXPECT_TRUE(other_arrived);
    EXPECT_EQ(switches_while_waiting, 1u) << "the waiter blocked once and was woken once";
    other.join();
    auto next = sync.arrive();  // phase 1: alone, it waits for a partner
    gt::thread partner([&] { sync.arrive_and_wait(); });
    sync.wait(std::move(next));
    partner.join();
    EXPECT_EQ(gt::barrier<>::max(), PTRDIFF_MAX);
}

// Why: waiters are BLOCKED on the barrier (the dump says so), not spinning.
TEST(Barrier, WaitersBlockOnTheBarrier) {
    const preemption_for_test preemption(100us);
    gt::barrier<> sync(4);
    std::vector<gt::thread> workers;
    for (int i = 0; i < 3; ++i) workers.emplace_back([&] { sync.arrive_and_wait(); });
    EXPECT_TRUE(wait_until_blocked_on("barrier", 3));
    sync.arrive_and_wait();
    for (auto& t : workers) t.join();
    EXPECT_EQ(blocked_on("barrier"), 0);
}

// Why: std leaves a negative count undefined; a constructor can refuse it
// before anything depends on it.
TEST(Barrier, ANegativeCountOrUpdateThrowsInvalidArgument) {
    try {
        gt::barrier<> sync(-1);
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
    }
    gt::barrier<> sync(1);
    EXPECT_THROW(static_cast<void>(sync.arrive(0)), std::system_error);
}

namespace {

void arrive_once_too_often() {
    gt::barrier<> sync(1);
    [[maybe_unused]] auto first = sync.arrive();  // ends phase 0
    [[maybe_unused]] auto second = sync.arrive(2);
}

}  // namespace

// Why: more arrivals than a phase expects would push the count below zero
// (std: undefined); we name the thread and the barrier and stop.
TEST(BarrierDeathTest, ArrivingMoreThanThePhaseExpectsReportsTheThreadAndTheBarrier) {
    EXPECT_DEATH(arrive_once_too_often(),
                 "gt: thread [0-9]+ \"main\" arrives 2 time\\(s\\) at gt::barrier \\(0x[0-9a-f]+\\) in phase 1, "
                 "which waits for 1 more arrival\\(s\\) of its 1: more threads arrive than the barrier expects");
}

// Why: a latch releases its waiters when, and only when, the count
// reaches zero; they are blocked until then.
TEST(Latch, WaitersBlockUntilTheCountReachesZero) {
    const preemption_for_test preemption(100us);
    gt::latch done(3);
    std::atomic<int> released{0};
    std::vector<gt::thread> waiters;
    for (int i = 0; i < 8; ++i) {
        waiters.emplace_back([&] {
            done.wait();
            ++released;
        });
    }
    ASSERT_TRUE(wait_until_blocked_on("barrier", 8));
    done.count_down();
    done.count_down();
    EXPECT_EQ(blocked_on("barrier"), 8) << "a count_down before zero woke a waiter";
    gt::this_thread::sleep_for(1ms);  // a waiter woken by mistake would run now
    EXPECT_EQ(released.load(), 0);
    EXPECT_FALSE(done.try_wait());
    done.count_down();
    for (auto& t : waiters) t.join();
    EXPECT_EQ(released.load(), 8);
    EXPECT_TRUE(done.try_wait());
    done.wait();  // returns at once
}

// Why: the common pattern "wait, then destroy" must be safe: the thread
// that counts down must not touch the latch after a waiter can see zero.
// Under ASan a use after free fails this test.
TEST(Latch, AThreadThatSawZeroMayDestroyTheLatchAtOnce) {
    const preemption_for_test preemption(100us);
    long waited = 0;
    for (int round = 0; round < 2000; ++round) {
        auto* gate = new gt::latch(1);
        gt::thread waiter([gate, &waited] {
            gate->wait();
            delete gate;  // the counter may not have returned from count_down yet
            ++waited;
        });
        gt::thread counter([gate] { gate->count_down(); });
        counter.join();
        waiter.join();
    }
    EXPECT_EQ(waited, 2000);
}

// Why: arrive_and_wait is count_down plus wait for every participant.
TEST(Latch, ArriveAndWaitReleasesEveryParticipantTogether) {
    const preemption_for_test preemption(100us);
    gt::latch start(6);
    std::atomic<int> arrived{0}, early{0};
    std::vector<gt::thread> workers;
    for (int i = 0; i < 6; ++i) {
        workers.emplace_back([&] {
            ++arrived;
            start.arrive_and_wait();
            if (arrived.load() != 6) ++early;
        });
    }
    for (auto& t : workers) t.join();
    EXPECT_EQ(early.load(), 0);
    EXPECT_EQ(gt::latch::max(), PTRDIFF_MAX);
}

// Why: a negative count is refused before anything depends on it.
TEST(Latch, ANegativeCountThrowsInvalidArgument) {
    try {
        gt::latch l(-2);
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
    }
    gt::latch l(1);
    EXPECT_THROW(l.count_down(-1), std::system_error);
}

namespace {

void count_down_below_zero() {
    gt::latch l(2);
    l.count_down(3);
}

}  // namespace

// Why: counting a latch down below zero is a broken protocol (std:
// undefined); the report names the thread and the latch.
TEST(LatchDeathTest, CountingDownBelowZeroReportsTheThreadAndTheLatch) {
    EXPECT_DEATH(count_down_below_zero(),
                 "gt: thread [0-9]+ \"main\" counts down gt::latch \\(0x[0-9a-f]+\\) by 3, but its count is 2: it "
                 "would go below zero");
}
