// gt::counting_semaphore and gt::binary_semaphore: exact counts under
// preemption, units handed to waiters (no barging past them), FIFO, timed
// acquires, and the misuse of releasing past the maximum.
#include <gt/semaphore.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "blocked_on.hpp"
#include "preemption_for_test.hpp"

using namespace std::chrono_literals;

// Why: a semaphore of 3 admits at most 3 at a time, and after 8 threads ×
// 20,000 acquire/release pairs under a 100 µs slice its count is 3 again:
// no unit lost or duplicated by a tick inside acquire or release.
TEST(CountingSemaphore, CountsStayExactUnderPreemption) {
    const preemption_for_test preemption(100us);
    gt::counting_semaphore<3> slots(3);
    std::atomic<int> inside{0};
    std::atomic<long> too_many{0}, passes{0};
    std::vector<gt::thread> workers;
    for (int i = 0; i < 8; ++i) {
        workers.emplace_back([&] {
            for (int k = 0; k < 20'000; ++k) {
                slots.acquire();
                if (inside.fetch_add(1) >= 3) ++too_many;
                ++passes;
                inside.fetch_sub(1);
                slots.release();
            }
        });
    }
    for (auto& t : workers) t.join();
    EXPECT_EQ(too_many.load(), 0);
    EXPECT_EQ(passes.load(), 8 * 20'000L);
    int left = 0;
    while (slots.try_acquire()) ++left;
    EXPECT_EQ(left, 3);
}

// Why: a release hands its unit to the first waiter, which wakes holding
// it: a thread that runs before the waiter cannot take it (no barging),
// and waiters are served first come, first served.
TEST(CountingSemaphore, AReleaseHandsItsUnitsToTheWaitersInOrder) {
    const preemption_for_test preemption(0us);
    gt::counting_semaphore<> sem(0);
    std::string order;
    std::vector<gt::thread> waiters;
    for (int i = 0; i < 4; ++i) {
        waiters.emplace_back([&, i] {
            sem.acquire();
            order += static_cast<char>('a' + i);
        });
    }
    ASSERT_TRUE(wait_until_blocked_on("semaphore", 4));
    sem.release(2);
    EXPECT_FALSE(sem.try_acquire()) << "both units belong to the woken waiters";
    ASSERT_TRUE(poll_until([&] { return order.size() >= 2; }));  // the two woken ones run
    EXPECT_EQ(order, "ab");
    EXPECT_EQ(blocked_on("semaphore"), 2);
    sem.release(3);
    for (auto& t : waiters) t.join();
    EXPECT_EQ(order, "abcd");
    EXPECT_TRUE(sem.try_acquire());  // the third unit went to the count
    EXPECT_FALSE(sem.try_acquire());
}

// Why: a timed acquire waits on the timer list and gives up at its
// deadline, leaving no waiter flag behind; a release before the deadline
// ends it with the unit.
TEST(CountingSemaphore, TimedAcquireTimesOutAndAReleaseBeforeTheDeadlineWins) {
    gt::binary_semaphore sem(0);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(sem.try_acquire_for(5ms));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 5ms);
    EXPECT_FALSE(sem.try_acquire_until(std::chrono::steady_clock::now() - 1ms));  // passed: at once
    bool got = false;
    gt::thread waiter([&] { got = sem.try_acquire_for(60s); });
    ASSERT_TRUE(wait_until_blocked_on("semaphore", 1));
    sem.release();
    waiter.join();
    EXPECT_TRUE(got);
    sem.release();  // the fast path again: no flag was left
    EXPECT_TRUE(sem.try_acquire());
    EXPECT_EQ(gt::binary_semaphore::max(), 1);
}

// Why: an initial count outside 0..max() is refused before anything
// depends on it.
TEST(CountingSemaphore, AnInitialCountOutsideTheRangeThrowsInvalidArgument) {
    try {
        gt::counting_semaphore<4> sem(5);
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
    }
    EXPECT_THROW(gt::binary_semaphore(-1), std::system_error);
}

namespace {

void release_a_binary_semaphore_twice() {
    gt::binary_semaphore sem(0);
    sem.release();
    sem.release();
}

}  // namespace

// Why: releasing past the maximum (std: undefined) would make a binary
// semaphore admit two threads; we name the thread and the semaphore.
TEST(CountingSemaphoreDeathTest, ReleasingPastTheMaximumReportsTheThreadAndTheSemaphore) {
    EXPECT_DEATH(release_a_binary_semaphore_twice(),
                 "gt: thread [0-9]+ \"main\" releases 1 unit\\(s\\) of gt::counting_semaphore \\(0x[0-9a-f]+\\), "
                 "whose count is 1 of at most 1: that is past its maximum");
}
