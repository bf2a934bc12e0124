// gt::condition_variable and gt::condition_variable_any: no lost wakeup
// under preemption, notify_one wakes exactly one waiter, timed waits report
// timeout only when the deadline ended them, and the std error codes.
#include <gt/condition_variable.hpp>
#include <gt/debug.hpp>
#include <gt/mutex.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "blocked_on.hpp"
#include "preemption_for_test.hpp"

using namespace std::chrono_literals;

// Why: the classic lost wakeup. A producer and a consumer hand 20,000
// values through one slot under a 100 µs slice, so ticks land between
// every check and every wait; a single lost notify hangs the test.
TEST(ConditionVariable, PingPongUnderPreemptionLosesNoWakeup) {
    const preemption_for_test preemption(100us);
    gt::mutex m;
    gt::condition_variable cv;
    int slot = 0;  // 0: empty
    long sum = 0;
    constexpr int rounds = 20'000;
    gt::thread consumer([&] {
        for (int i = 1; i <= rounds; ++i) {
            std::unique_lock<gt::mutex> lock(m);
            cv.wait(lock, [&] { return slot != 0; });
            sum += slot;
            slot = 0;
            cv.notify_one();
        }
    });
    for (int i = 1; i <= rounds; ++i) {
        std::unique_lock<gt::mutex> lock(m);
        cv.wait(lock, [&] { return slot == 0; });
        slot = i;
        cv.notify_one();
    }
    consumer.join();
    EXPECT_EQ(sum, static_cast<long>(rounds) * (rounds + 1) / 2);
}

// Why: notify_one wakes exactly one waiter; 8 notifies wake exactly 8 of
// 8, and each wait returns exactly once (google/marl#71).
TEST(ConditionVariable, NotifyOneWakesExactlyOneWaiter) {
    const preemption_for_test preemption(0us);
    gt::mutex m;
    gt::condition_variable cv;
    int woken = 0;
    std::vector<gt::thread> waiters;
    for (int i = 0; i < 8; ++i) {
        waiters.emplace_back([&] {
            std::unique_lock<gt::mutex> lock(m);
            cv.wait(lock);
            ++woken;
        });
    }
    ASSERT_TRUE(wait_until_blocked_on("condition variable", 8));  // every waiter waits
    for (int i = 1; i <= 8; ++i) {
        cv.notify_one();
        ASSERT_TRUE(poll_until([&] { return woken >= i; })) << "notify " << i << " woke nobody";
        EXPECT_EQ(woken, i);
        EXPECT_EQ(blocked_on("condition variable"), 8 - i) << "notify " << i << " woke more than one";
    }
    for (auto& t : waiters) t.join();
    EXPECT_EQ(woken, 8);
}

// Why: cv_status::timeout means the deadline ended the wait, and the
// mutex is held again either way.
TEST(ConditionVariable, WaitForReturnsTimeoutAtTheDeadlineWithTheMutexHeld) {
    gt::mutex m;
    gt::condition_variable cv;
    std::unique_lock<gt::mutex> lock(m);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(cv.wait_for(lock, 3ms), std::cv_status::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 3ms);
    EXPECT_TRUE(lock.owns_lock());
    EXPECT_FALSE(m.try_lock());
}

// Why: a notify before the deadline is no_timeout, and the waiter leaves
// the timer list: its old deadline must not end its next wait early.
// The notify must come before the first deadline; a loaded machine can
// hold main off longer than any fixed window, so a round whose notify came
// late (first == timeout: nothing to check) is run again with a longer one.
TEST(ConditionVariable, ANotifyBeforeTheDeadlineIsNoTimeoutAndLeavesNoTimerBehind) {
    bool checked = false;
    for (std::chrono::milliseconds window = 5ms; window <= 5000ms && !checked; window *= 10) {
        gt::mutex m;
        gt::condition_variable cv;
        std::cv_status first = std::cv_status::timeout, second = std::cv_status::no_timeout;
        std::chrono::steady_clock::duration second_took{};
        gt::thread waiter([&] {
            std::unique_lock<gt::mutex> lock(m);
            first = cv.wait_for(lock, window);  // notified before, unless main was held off
            if (first == std::cv_status::timeout) return;
            const auto start = std::chrono::steady_clock::now();
            second = cv.wait_for(lock, 6 * window);  // nobody notifies: only its own deadline may end it
            second_took = std::chrono::steady_clock::now() - start;
        });
        gt::this_thread::yield();  // the waiter waits
        cv.notify_one();
        waiter.join();
        if (first == std::cv_status::timeout) continue;
        checked = true;
        EXPECT_EQ(second, std::cv_status::timeout);
        EXPECT_GE(second_took, 6 * window);
    }
    EXPECT_TRUE(checked) << "no notify beat a 5 s deadline";
}

// Why: a deadline of system_clock, as std allows, compiles (it did not),
// times out with the mutex held again, and time_point::min() is a deadline
// that has passed, not an overflow into "never".
TEST(ConditionVariable, WaitUntilTakesASystemClockDeadline) {
    gt::mutex m;
    gt::condition_variable cv;
    std::unique_lock<gt::mutex> lock(m);
    EXPECT_EQ(cv.wait_until(lock, std::chrono::system_clock::now() + 2ms), std::cv_status::timeout);
    EXPECT_EQ(cv.wait_until(lock, std::chrono::system_clock::time_point::min()), std::cv_status::timeout);
    EXPECT_TRUE(lock.owns_lock());
}

// Why: std error code for waiting on a lock that does not own its mutex.
TEST(ConditionVariable, WaitWithoutOwningTheLockThrowsOperationNotPermitted) {
    gt::mutex m;
    gt::condition_variable cv;
    std::unique_lock<gt::mutex> lock(m, std::defer_lock);
    try {
        cv.wait(lock);
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
    }
}

// Why: condition_variable_any works over another lockable (here a
// timed_mutex), with the same no-lost-wakeup guarantee.
TEST(ConditionVariableAny, PingPongOverATimedMutexLosesNoWakeup) {
    const preemption_for_test preemption(100us);
    gt::timed_mutex m;
    gt::condition_variable_any cv;
    int slot = 0;
    long sum = 0;
    constexpr int rounds = 5'000;
    gt::thread consumer([&] {
        for (int i = 1; i <= rounds; ++i) {
            std::unique_lock<gt::timed_mutex> lock(m);
            cv.wait(lock, [&] { return slot != 0; });
            sum += slot;
            slot = 0;
            cv.notify_one();
        }
    });
    for (int i = 1; i <= rounds; ++i) {
        std::unique_lock<gt::timed_mutex> lock(m);
        cv.wait(lock, [&] { return slot == 0; });
        slot = i;
        cv.notify_one();
    }
    consumer.join();
    EXPECT_EQ(sum, static_cast<long>(rounds) * (rounds + 1) / 2);
}
