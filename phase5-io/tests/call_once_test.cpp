// gt::once_flag and gt::call_once: the function runs once however many
// threads race, the others BLOCK while it runs and return after it, an
// exception lets the next caller try, and a recursive call is refused.
#include <gt/mutex.hpp>  // provides gt::call_once, as <mutex> provides std::call_once
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "blocked_on.hpp"
#include "preemption_for_test.hpp"

using namespace std::chrono_literals;

namespace {
constinit gt::once_flag global_flag;  // fails to compile unless the constructor is constexpr
}

// Why: the point of call_once. 8 threads race for each of 500 flags under
// a 100 µs slice: the function runs once per flag, and every caller
// returns only after it has finished (it sees its result).
TEST(CallOnce, RunsOnceWithEightRacingThreadsAndEveryCallerSeesTheResult) {
    const preemption_for_test preemption(100us);
    constexpr int rounds = 500;
    std::atomic<long> calls{0}, early_returns{0};
    for (int round = 0; round < rounds; ++round) {
        gt::once_flag flag;
        std::atomic<int> value{0};
        std::vector<gt::thread> racers;
        for (int i = 0; i < 8; ++i) {
            racers.emplace_back([&] {
                gt::call_once(flag, [&] {
                    ++calls;
                    for (int k = 0; k < 20'000; ++k) std::atomic_signal_fence(std::memory_order_seq_cst);
                    value = 42;
                });
                if (value.load() != 42) ++early_returns;
            });
        }
        for (auto& t : racers) t.join();
    }
    EXPECT_EQ(calls.load(), rounds);
    EXPECT_EQ(early_returns.load(), 0);
}

// Why: a thread that finds the initialisation running blocks (the dump
// says "call_once"); it does not spin through its slices.
TEST(CallOnce, CallersBlockWhileAnotherThreadRunsTheFunction) {
    const preemption_for_test preemption(100us);
    gt::once_flag flag;
    std::atomic<bool> running{false}, release{false};
    std::atomic<int> returned{0};
    gt::thread runner([&] {
        gt::call_once(flag, [&] {
            running = true;
            while (!release.load()) gt::this_thread::sleep_for(200us);
        });
        ++returned;
    });
    ASSERT_TRUE(poll_until([&] { return running.load(); }));  // else a waiter would run the function
    std::vector<gt::thread> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.emplace_back([&] {
            gt::call_once(flag, [] { ADD_FAILURE() << "ran twice"; });
            ++returned;
        });
    }
    EXPECT_TRUE(wait_until_blocked_on("call_once", 3));
    EXPECT_EQ(returned.load(), 0);
    release = true;
    runner.join();
    for (auto& t : waiters) t.join();
    EXPECT_EQ(returned.load(), 4);
}

// Why: std semantics: a call that throws does not count; the exception
// reaches its caller and the next caller (here one that was blocked
// waiting) runs its own function; once one returns, nobody runs again.
TEST(CallOnce, AnExceptionLetsTheNextCallerTry) {
    const preemption_for_test preemption(0us);
    gt::once_flag flag;
    std::string ran;
    bool thrower_caught = false;
    gt::thread thrower([&] {
        try {
            gt::call_once(flag, [&] {
                ran += 'x';
                if (!wait_until_blocked_on("call_once", 2)) ADD_FAILURE() << "the others never blocked";
                throw std::runtime_error("first try fails");
            });
        } catch (const std::runtime_error&) {
            thrower_caught = true;
        }
    });
    gt::this_thread::yield();
    std::vector<gt::thread> waiters;
    for (char c : {'a', 'b'}) {
        waiters.emplace_back([&, c] { gt::call_once(flag, [&] { ran += c; }); });
    }
    thrower.join();
    for (auto& t : waiters) t.join();
    gt::call_once(flag, [&] { ran += 'z'; });
    EXPECT_TRUE(thrower_caught);
    EXPECT_EQ(ran, "xa");
}

// Why: std::call_once deadlocks if the function calls it on the same flag;
// we refuse with the error code std uses for a deadlock, and the flag is
// usable afterwards (the throwing call did not count).
TEST(CallOnce, CallingItAgainFromInsideTheFunctionThrowsResourceDeadlockWouldOccur) {
    gt::once_flag flag;
    try {
        gt::call_once(flag, [&] { gt::call_once(flag, [] {}); });
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::resource_deadlock_would_occur);
        EXPECT_NE(std::string(e.what()).find("from inside the function it is running"), std::string::npos) << e.what();
    }
    int calls = 0;
    gt::call_once(flag, [&](int n) { calls += n; }, 5);
    gt::call_once(flag, [&](int n) { calls += n; }, 7);
    EXPECT_EQ(calls, 5);
}

// Why: a `static gt::once_flag` must work before main and from static
// constructors, like std::once_flag: constant-initialised (constinit).
TEST(CallOnce, AStaticOnceFlagIsConstantInitialisedAndRunsOnceInTheProcess) {
    static int calls = 0;
    for (int i = 0; i < 3; ++i) gt::call_once(global_flag, [] { ++calls; });
    EXPECT_EQ(calls, 1);
}
