// gt::mutex and its siblings: mutual exclusion under preemption, the std
// interface and error codes, blocking (not spinning) waiters, priority
// order of the wait queue, and the handoff that keeps a waiter from
// starving behind a thread that relocks at once (golang/go#13086).
#include <gt/debug.hpp>
#include <gt/mutex.hpp>
#include <gt/preemption.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "blocked_on.hpp"
#include "preemption_for_test.hpp"

using namespace std::chrono_literals;

namespace {

// Spins (no calls) until `n` more ticks have landed on the calling thread.
void spin_for_ticks(std::uint64_t n) {
    const std::uint64_t end = gt::debug::this_thread_stats().ticks + n;
    while (gt::debug::this_thread_stats().ticks < end) {
    }
}

constinit gt::mutex global_mutex;  // constinit: fails to compile unless the constructor is constexpr

}  // namespace

// Why: a `static gt::mutex` must be usable before main and from any
// static constructor, like std::mutex: constant-initialised.
TEST(Mutex, AStaticMutexIsConstantInitialisedAndWorks) {
    global_mutex.lock();
    EXPECT_FALSE(global_mutex.try_lock());
    global_mutex.unlock();
    EXPECT_TRUE(global_mutex.try_lock());
    global_mutex.unlock();
}

// Why: the point of a mutex. `count = count + 1` is a load and a store; a
// tick between them loses increments unless the mutex excludes the others.
TEST(Mutex, ExcludesUnderPreemptionAndNoIncrementIsLost) {
    const preemption_for_test preemption(100us);
    constexpr int threads = 8;
    constexpr long per_thread = 200'000;
    gt::mutex m;
    volatile long count = 0;
    std::vector<gt::thread> workers;
    for (int i = 0; i < threads; ++i) {
        workers.emplace_back([&] {
            for (long k = 0; k < per_thread; ++k) {
                const std::lock_guard<gt::mutex> hold(m);
                count = count + 1;
            }
        });
    }
    for (auto& t : workers) t.join();
    EXPECT_EQ(count, threads * per_thread);
}

// Why: std::mutex leaves a relock undefined; we say so with the error code
// std allows, naming the thread, instead of waiting forever.
TEST(Mutex, LockingAMutexOneOwnsThrowsResourceDeadlockWouldOccur) {
    gt::mutex m;
    m.lock();
    try {
        m.lock();
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::resource_deadlock_would_occur);
        EXPECT_NE(std::string(e.what()).find("\"main\""), std::string::npos) << e.what();
    }
    EXPECT_FALSE(m.try_lock());
    m.unlock();
}

// Why: a waiter is BLOCKED, not spinning: while it waits, it is never
// switched to, however many slices the owner runs.
TEST(Mutex, AWaiterIsBlockedAndIsNotSwitchedToWhileItWaits) {
    const preemption_for_test preemption(100us);
    gt::mutex m;
    m.lock();
    std::uint64_t waiter_switches_while_waiting = 0;
    std::uint64_t switches_before = 0;
    gt::thread waiter([&] {
        {
            // No slice may end between the counts and the lock (the block
            // itself still switches): only the wait is counted.
            const gt::this_thread::disable_preemption only_the_wait;
            switches_before = gt::debug::this_thread_stats().switches;
            m.lock();
            waiter_switches_while_waiting = gt::debug::this_thread_stats().switches - switches_before;
        }
        m.unlock();
    });
    gt::thread spinner([] { spin_for_ticks(20); });  // many slices go by
    spin_for_ticks(20);
    spinner.join();
    m.unlock();
    waiter.join();
    EXPECT_EQ(waiter_switches_while_waiting, 1u);  // the one switch that woke it
}

// Why: under strict priorities an unlock must wake the highest waiter
// first, FIFO among equals.
TEST(Mutex, UnlockWakesTheHighestPriorityWaiterFirstThenInArrivalOrder) {
    const preemption_for_test preemption(0us);  // exact order: cooperative
    gt::mutex m;
    std::string order;
    m.lock();
    std::vector<gt::thread> waiters;
    const int priorities[] = {10, 12, 10, 12, 11};
    for (int i = 0; i < 5; ++i) {
        waiters.emplace_back(gt::thread::attributes{.priority = priorities[i]}, [&, i] {
            const std::lock_guard<gt::mutex> hold(m);
            order += static_cast<char>('a' + i);
        });
    }
    // Main (priority 16) sleeps until all five have blocked on the mutex
    // (they run highest first); an unlock before that would let the late
    // ones take the free mutex in ready-queue order, not the queue's.
    ASSERT_TRUE(wait_until_blocked_on("mutex", 5));
    m.unlock();
    for (auto& t : waiters) t.join();
    EXPECT_EQ(order, "bdeac");
}

// Why: barging alone can starve a waiter forever behind a thread that
// unlocks and relocks at once (golang/go#13086). After 1 ms of waiting the
// mutex is handed to the waiter directly. The holder never lets a tick
// switch between its unlock and its relock (disable_preemption), so
// without the handoff the waiter, woken at each unlock, always finds the
// mutex taken again when it runs, and the holder gives up after 2,000
// ticks (hundreds of slices; with the handoff the waiter owns it within a
// few).
TEST(Mutex, AWaiterIsNotStarvedByAThreadThatRelocksAtOnce) {
    const preemption_for_test preemption(200us);
    gt::mutex m;
    std::atomic<bool> waiter_got_it{false};
    bool holder_gave_up = false;
    gt::thread holder([&] {
        const std::uint64_t give_up = gt::debug::this_thread_stats().ticks + 2000;
        m.lock();
        while (!waiter_got_it.load()) {
            if (gt::debug::this_thread_stats().ticks >= give_up) {
                holder_gave_up = true;
                break;
            }
            volatile int work = 0;
            for (int i = 0; i < 1000; ++i) work = work + 1;
            const gt::this_thread::disable_preemption no_tick_between;
            m.unlock();
            m.lock();
        }
        m.unlock();
    });
    gt::thread waiter([&] {
        spin_for_ticks(2);  // let the holder get going
        const std::lock_guard<gt::mutex> hold(m);
        waiter_got_it = true;
    });
    waiter.join();
    holder.join();
    EXPECT_TRUE(waiter_got_it.load());
    EXPECT_FALSE(holder_gave_up) << "the waiter starved: the mutex was never handed to it";
}

// Why: timed locks wait on the timer list and give up at their deadline,
// and a waiter that gave up leaves no flag behind (the next unlock is the
// fast one, and the mutex is free).
TEST(TimedMutex, TryLockForTimesOutWhileOwnedAndSucceedsOnceFree) {
    gt::timed_mutex m;
    m.lock();
    bool got = true;
    gt::thread other([&] { got = m.try_lock_for(5ms); });
    other.join();
    EXPECT_FALSE(got);
    m.unlock();
    gt::thread again([&] {
        got = m.try_lock_for(5ms);
        if (got) m.unlock();
    });
    again.join();
    EXPECT_TRUE(got);
    EXPECT_TRUE(m.try_lock());
    m.unlock();
}

// Why: std's timed locks take a deadline of any clock. One of
// system_clock did not compile (a duration_cast to a const duration), and
// time_point::min() would overflow "deadline minus now" into "never".
TEST(TimedMutex, TryLockUntilTakesASystemClockDeadline) {
    using std::chrono::system_clock;
    gt::timed_mutex m;
    m.lock();
    bool got_soon = true, got_min = true;
    gt::thread other([&] {
        got_soon = m.try_lock_until(system_clock::now() + 5ms);
        got_min = m.try_lock_until(system_clock::time_point::min());
    });
    other.join();
    EXPECT_FALSE(got_soon);
    EXPECT_FALSE(got_min);
    m.unlock();
    gt::thread again([&] {
        got_soon = m.try_lock_until(system_clock::now() + 5ms);
        if (got_soon) m.unlock();
    });
    again.join();
    EXPECT_TRUE(got_soon);
}

// Why: std::recursive_mutex semantics: the owner may relock; others wait
// until every lock has been unlocked.
TEST(RecursiveMutex, TheOwnerRelocksAndOthersWaitForTheLastUnlock) {
    gt::recursive_mutex m;
    m.lock();
    m.lock();
    EXPECT_TRUE(m.try_lock());
    bool other_got = true;
    gt::thread other([&] { other_got = m.try_lock(); });
    other.join();
    EXPECT_FALSE(other_got);
    m.unlock();
    m.unlock();
    m.unlock();
    gt::thread third([&] {
        other_got = m.try_lock();
        if (other_got) m.unlock();
    });
    third.join();
    EXPECT_TRUE(other_got);
}

// Why: std::lock / std::scoped_lock over gt mutexes in opposite orders
// must not deadlock (libstdc++ blocks on the one that failed).
TEST(Mutex, ScopedLockOfThreeMutexesInOppositeOrdersNeverDeadlocks) {
    const preemption_for_test preemption(100us);
    gt::mutex a, b, c;
    long total = 0;
    std::vector<gt::thread> workers;
    for (int i = 0; i < 4; ++i) {
        workers.emplace_back([&, i] {
            for (int k = 0; k < 20'000; ++k) {
                if (i % 2 == 0) {
                    const std::scoped_lock hold(a, b, c);
                    ++total;
                } else {
                    const std::scoped_lock hold(c, b, a);
                    ++total;
                }
            }
        });
    }
    for (auto& t : workers) t.join();
    EXPECT_EQ(total, 80'000);
}
