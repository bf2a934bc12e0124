// Priority inheritance: under strict priorities a high thread waiting for a
// mutex held by a low one would wait as long as any medium thread keeps
// the CPU (the Mars Pathfinder inversion); the owner runs at its highest
// waiter's priority, through chains of mutexes, and drops back at unlock.
#include <gt/condition_variable.hpp>
#include <gt/debug.hpp>
#include <gt/mutex.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "preemption_for_test.hpp"

using namespace std::chrono_literals;

namespace {

void spin_for_ticks(std::uint64_t n) {
    const std::uint64_t end = gt::debug::this_thread_stats().ticks + n;
    while (gt::debug::this_thread_stats().ticks < end) {
    }
}

// Sleeps in short steps until `flag` is set (a sleeping thread is BLOCKED:
// lower priorities run meanwhile).
void sleep_until_set(const std::atomic<bool>& flag) {
    while (!flag.load()) gt::this_thread::sleep_for(50us);
}

}  // namespace

// Why: the Mars Pathfinder inversion. Low holds the bus mutex, high waits
// for it, mediums spin: without inheritance low never runs again and high
// waits until the mediums stop (here: until they give up after 2,000
// ticks of spinning, far more than low needs to finish).
TEST(PriorityInheritance, MarsPathfinderInversionIsFixed) {
    const preemption_for_test preemption(100us);
    gt::mutex bus({.name = "bus"});
    std::atomic<bool> low_holds{false}, high_done{false}, medium_gave_up{false};
    int low_priority_while_high_waited = -1;
    gt::thread low({.priority = 1, .name = "low"}, [&] {
        const std::lock_guard<gt::mutex> hold(bus);
        low_holds = true;
        spin_for_ticks(10);  // its work on the bus, preempted now and then
        low_priority_while_high_waited = gt::debug::this_thread_effective_priority();
    });
    sleep_until_set(low_holds);
    std::vector<gt::thread> mediums;
    for (int i = 0; i < 2; ++i) {
        mediums.emplace_back(gt::thread::attributes{.priority = 10, .name = "medium"}, [&] {
            const std::uint64_t give_up = gt::debug::this_thread_stats().ticks + 2000;
            while (!high_done.load()) {
                if (gt::debug::this_thread_stats().ticks >= give_up) {
                    medium_gave_up = true;
                    return;
                }
            }
        });
    }
    gt::thread high({.priority = 30, .name = "high"}, [&] {
        const std::lock_guard<gt::mutex> hold(bus);  // blocks: low owns it
        high_done = true;
    });
    // high ran at once (it outranks main) and blocked: low inherited 30
    // and ran before main got back here.
    EXPECT_EQ(low.get_priority(), 1);  // the base priority is unchanged
    high.join();
    EXPECT_TRUE(high_done.load());
    EXPECT_FALSE(medium_gave_up.load()) << "high waited until the mediums gave up: low was starved";
    for (auto& m : mediums) m.join();
    low.join();
    EXPECT_EQ(low_priority_while_high_waited, 30);
}

// Why: inheritance must follow the chain (RIOT-OS/RIOT#7365): t4 waits for
// C held by t3, which waits for B held by t2, which waits for A held by
// t1. All three owners run at t4's priority; each drops back to what it
// still inherits at each unlock, and to its base at its last.
TEST(PriorityInheritance, PriorityFollowsAChainOfThreeMutexesAndDropsBackAtEachUnlock) {
    const preemption_for_test preemption(0us);  // cooperative: exact order
    gt::mutex a({.name = "A"}), b({.name = "B"}), c({.name = "C"});
    std::atomic<bool> t1_holds{false}, t2_holds{false}, t3_holds{false}, release{false};
    int t1_after = -1, t2_after_a = -1, t2_after_b = -1, t3_after_b = -1, t3_after_c = -1;
    gt::thread t1({.priority = 17, .name = "t1"}, [&] {
        a.lock();
        t1_holds = true;
        sleep_until_set(release);
        a.unlock();
        t1_after = gt::debug::this_thread_effective_priority();
    });
    gt::thread t2({.priority = 18, .name = "t2"}, [&] {
        b.lock();
        t2_holds = true;
        a.lock();
        a.unlock();
        t2_after_a = gt::debug::this_thread_effective_priority();
        b.unlock();
        t2_after_b = gt::debug::this_thread_effective_priority();
    });
    gt::thread t3({.priority = 19, .name = "t3"}, [&] {
        c.lock();
        t3_holds = true;
        b.lock();
        b.unlock();
        t3_after_b = gt::debug::this_thread_effective_priority();
        c.unlock();
        t3_after_c = gt::debug::this_thread_effective_priority();
    });
    EXPECT_TRUE(t1_holds && t2_holds && t3_holds);
    EXPECT_EQ(gt::debug::effective_priority(t1), 19);  // t3 waits (through t2) for t1
    EXPECT_EQ(gt::debug::effective_priority(t2), 19);
    gt::thread t4({.priority = 25, .name = "t4"}, [&] { const std::lock_guard<gt::mutex> hold(c); });
    EXPECT_EQ(gt::debug::effective_priority(t3), 25);
    EXPECT_EQ(gt::debug::effective_priority(t2), 25);
    EXPECT_EQ(gt::debug::effective_priority(t1), 25);
    EXPECT_EQ(t1.get_priority(), 17);
    EXPECT_EQ(t2.get_priority(), 18);
    EXPECT_EQ(t3.get_priority(), 19);
    release = true;
    t4.join();
    t3.join();
    t2.join();
    t1.join();
    EXPECT_EQ(t1_after, 17);
    EXPECT_EQ(t2_after_a, 25);  // still holds B, which t3 (at 25) waits for
    EXPECT_EQ(t2_after_b, 18);
    EXPECT_EQ(t3_after_b, 25);  // still holds C, which t4 waits for
    EXPECT_EQ(t3_after_c, 19);
}

// Why: a waiter that gives up (a timed lock) must take its priority away
// with it, or the owner would run above its due for as long as it holds on.
// The owner's priority is read while the waiter waits, which needs main to
// read it before the waiter's deadline; a loaded machine can hold main off
// longer than any fixed wait, so a round that read it late runs again with
// a ten times longer one.
TEST(PriorityInheritance, AWaiterThatTimesOutTakesItsPriorityBack) {
    const preemption_for_test preemption(0us);
    bool checked = false;
    for (std::chrono::milliseconds window = 3ms; window <= 3000ms && !checked; window *= 10) {
        gt::timed_mutex m({.name = "m"});
        std::atomic<bool> holds{false}, release{false};
        int during = -1, after_timeout = -1;
        gt::thread owner({.priority = 5, .name = "owner"}, [&] {
            const std::lock_guard<gt::timed_mutex> hold(m);
            holds = true;
            sleep_until_set(release);
            after_timeout = gt::debug::this_thread_effective_priority();
        });
        sleep_until_set(holds);
        bool got = true;
        const auto start = std::chrono::steady_clock::now();  // before the waiter's deadline is set
        gt::thread waiter({.priority = 28, .name = "waiter"}, [&] { got = m.try_lock_for(window); });
        during = gt::debug::effective_priority(owner);
        checked = std::chrono::steady_clock::now() < start + window;  // read while the waiter waited
        waiter.join();
        release = true;
        owner.join();
        EXPECT_FALSE(got);
        if (checked) {
            EXPECT_EQ(during, 28);
        }
        EXPECT_EQ(after_timeout, 5);
    }
    EXPECT_TRUE(checked) << "main never read the owner's priority before a 3 s deadline";
}

// Why: set_priority changes the base; a thread that inherits more keeps
// running at what it inherits until it unlocks, then runs at the new base.
TEST(PriorityInheritance, SetPriorityChangesTheBaseAndInheritanceStillWins) {
    const preemption_for_test preemption(0us);
    gt::mutex m;
    std::atomic<bool> holds{false}, release{false};
    int after_unlock = -1;
    gt::thread owner({.priority = 5, .name = "owner"}, [&] {
        m.lock();
        holds = true;
        sleep_until_set(release);
        m.unlock();
        after_unlock = gt::debug::this_thread_effective_priority();
    });
    sleep_until_set(holds);
    gt::thread waiter({.priority = 28, .name = "waiter"}, [&] { const std::lock_guard<gt::mutex> hold(m); });
    owner.set_priority(7);
    EXPECT_EQ(owner.get_priority(), 7);
    EXPECT_EQ(gt::debug::effective_priority(owner), 28);
    release = true;
    waiter.join();
    owner.join();
    EXPECT_EQ(after_unlock, 7);
}

// Why: a condition variable's wait releases the mutex: the waiter's
// priority must leave the owner that gave it up.
TEST(PriorityInheritance, WaitingOnAConditionVariableGivesTheInheritedPriorityBack) {
    const preemption_for_test preemption(0us);
    gt::mutex m;
    gt::condition_variable cv;
    std::atomic<bool> holds{false}, go_wait{false};
    bool notified = false;
    gt::thread owner({.priority = 3, .name = "owner"}, [&] {
        std::unique_lock<gt::mutex> lock(m);
        holds = true;
        sleep_until_set(go_wait);
        cv.wait(lock, [&] { return notified; });
    });
    sleep_until_set(holds);
    gt::thread waiter({.priority = 20, .name = "waiter"}, [&] { const std::lock_guard<gt::mutex> hold(m); });
    EXPECT_EQ(gt::debug::effective_priority(owner), 20);
    go_wait = true;
    waiter.join();  // the owner's wait released m, so the waiter got it
    EXPECT_EQ(gt::debug::effective_priority(owner), 3);
    {
        const std::lock_guard<gt::mutex> hold(m);
        notified = true;
    }
    cv.notify_one();
    owner.join();
}

// Why: a due sleeper or timed waiter of high priority is a thread of high
// priority kept from the CPU, like an inversion: the tick must wake it at
// the first tick after its deadline, not only at the tick that ends the
// spinner's slice. Counted in ticks: with 10 ms ticks (20 ms slices) and a
// 20 µs sleep, the waking tick is the spinner's first of its run; waking
// only at slice ends, it would be the second, and the spinner would have
// seen one tick go by first in nearly every round.
TEST(TimedWakeup, ADueHighPriorityThreadRunsAtTheNextTickNotAtTheEndOfTheSlice) {
    const preemption_for_test preemption(20ms);
    // The spinner's ticks in its current run, as far as it has seen them
    // (the tick that switches away from it is never seen).
    static volatile std::uint64_t ticks_this_run = 0, spinner_switches = 0;
    std::atomic<bool> done{false};
    gt::thread spinner({.priority = 1, .name = "spinner"}, [&] {
        std::uint64_t run_start_ticks = 0, last_switches = 0;
        while (!done.load()) {
            const gt::debug::thread_stats s = gt::debug::this_thread_stats();
            if (s.switches != last_switches) {  // a new run
                last_switches = s.switches;
                run_start_ticks = s.ticks;
            }
            ticks_this_run = s.ticks - run_start_ticks;
            spinner_switches = s.switches;
        }
    });
    int rounds_spinner_ran = 0, rounds_a_tick_went_by = 0;
    gt::thread high({.priority = 30, .name = "high"}, [&] {
        for (int round = 0; round < 20; ++round) {
            const std::uint64_t switches = spinner_switches;
            ticks_this_run = 0;
            gt::this_thread::sleep_for(20us);
            if (spinner_switches != switches) ++rounds_spinner_ran;
            if (ticks_this_run != 0) ++rounds_a_tick_went_by;
        }
        done = true;
    });
    high.join();
    spinner.join();
    EXPECT_GE(rounds_spinner_ran, 10);
    EXPECT_LE(rounds_a_tick_went_by, 3);
}
