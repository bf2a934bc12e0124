// The three deadlock layers and lock levels: an actual deadlock refused at
// the lock (or join) that would close a wait-for cycle; a potential one
// (two lock orders) reported by the lock-order graph even when this run
// did not deadlock; the global "every thread is blocked" report, naming
// what each thread waits on; and lock levels, refused at once. Each fires
// on its case and stays quiet on a correct program.
#include <gt/condition_variable.hpp>
#include <gt/debug.hpp>
#include <gt/mutex.hpp>
#include <gt/preemption.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "blocked_on.hpp"
#include "lock_order.hpp"
#include "preemption_for_test.hpp"

using namespace std::chrono_literals;

namespace {

void sleep_until_set(const std::atomic<bool>& flag) {
    while (!flag.load()) gt::this_thread::sleep_for(50us);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The lock-order check in a given mode for one test; the previous mode
// comes back at the end.
class lock_order_for_test {
public:
    explicit lock_order_for_test(gt::debug::lock_order_check mode) : old_(gt::detail::lock_order_mode()) {
        gt::debug::set_lock_order_check(mode);
    }
    ~lock_order_for_test() { gt::debug::set_lock_order_check(old_); }

private:
    gt::debug::lock_order_check old_;
};

}  // namespace

// Why: AB/BA between two threads: the lock that would close the cycle
// throws at once, naming both threads and both mutexes, instead of
// blocking both threads forever. (Which of the two locks comes second
// depends on where ticks land; exactly one throws.)
TEST(Deadlock, AbBaBetweenTwoThreadsThrowsFromTheLockThatClosesTheCycle) {
    const lock_order_for_test quiet(gt::debug::lock_order_check::off);
    gt::mutex a({.name = "A"}), b({.name = "B"});
    std::atomic<bool> x_holds_a{false}, y_holds_b{false};
    std::atomic<int> throws{0};
    std::string what;
    auto take_second = [&](gt::mutex& second) {
        try {
            const std::lock_guard<gt::mutex> also(second);
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::errc::resource_deadlock_would_occur);
            what = e.what();
            ++throws;
        }
    };
    gt::thread x({.name = "x"}, [&] {
        const std::lock_guard<gt::mutex> hold(a);
        x_holds_a = true;
        sleep_until_set(y_holds_b);
        take_second(b);
    });
    gt::thread y({.name = "y"}, [&] {
        sleep_until_set(x_holds_a);
        const std::lock_guard<gt::mutex> hold(b);
        y_holds_b = true;
        take_second(a);
    });
    x.join();
    y.join();
    EXPECT_EQ(throws.load(), 1);
    EXPECT_TRUE(contains(what, "\"x\"")) << what;
    EXPECT_TRUE(contains(what, "\"y\"")) << what;
    EXPECT_TRUE(contains(what, "gt::mutex \"A\"")) << what;
    EXPECT_TRUE(contains(what, "gt::mutex \"B\"")) << what;
    EXPECT_TRUE(contains(what, "deadlock")) << what;
}

// Why: the walk follows the chain, not one hop: p waits for q's mutex, q
// for r's, and r's lock of p's mutex closes a cycle of three.
TEST(Deadlock, ACycleOfThreeThreadsIsRefusedNamingEveryThread) {
    const lock_order_for_test quiet(gt::debug::lock_order_check::off);
    gt::mutex m1({.name = "m1"}), m2({.name = "m2"}), m3({.name = "m3"});
    std::atomic<int> holding{0}, throws{0};
    std::string what;
    auto body = [&](gt::mutex& mine, gt::mutex& next, bool last) {
        const std::lock_guard<gt::mutex> hold(mine);
        ++holding;
        while (holding.load() < 3) gt::this_thread::sleep_for(50us);
        if (last) gt::this_thread::sleep_for(2ms);  // usually the other two block first
        try {
            const std::lock_guard<gt::mutex> also(next);
        } catch (const std::system_error& e) {
            what = e.what();
            ++throws;
        }
    };
    gt::thread p({.name = "p"}, [&] { body(m1, m2, false); });
    gt::thread q({.name = "q"}, [&] { body(m2, m3, false); });
    gt::thread r({.name = "r"}, [&] { body(m3, m1, true); });
    p.join();
    q.join();
    r.join();
    EXPECT_EQ(throws.load(), 1);
    for (const char* part : {"\"p\"", "\"q\"", "\"r\"", "\"m1\"", "\"m2\"", "\"m3\""}) {
        EXPECT_TRUE(contains(what, part)) << part << " missing from: " << what;
    }
}

// Why: joins are edges of the same graph: a thread that joins a thread
// waiting for a mutex the joiner holds would wait forever.
TEST(Deadlock, JoiningAThreadThatWaitsForAMutexOneHoldsThrows) {
    gt::mutex m({.name = "m"});
    m.lock();
    gt::thread t({.name = "waiter"}, [&] { const std::lock_guard<gt::mutex> hold(m); });
    ASSERT_TRUE(wait_until_blocked_on("mutex", 1));  // t blocks on m (else t's lock would close the cycle)
    try {
        t.join();
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::resource_deadlock_would_occur);
        EXPECT_TRUE(contains(e.what(), "would join thread")) << e.what();
        EXPECT_TRUE(contains(e.what(), "\"waiter\", which waits for gt::mutex \"m\"")) << e.what();
        EXPECT_TRUE(contains(e.what(), "owned by thread")) << e.what();
    }
    EXPECT_TRUE(t.joinable());
    m.unlock();
    t.join();
}

// Why: and the other way round: a lock whose owner joins the locker.
TEST(Deadlock, LockingAMutexWhoseOwnerJoinsTheCallerThrows) {
    gt::mutex m({.name = "m"});
    std::string what;
    std::atomic<bool> joining{false};
    std::atomic<gt::thread*> locker_object{nullptr};  // set once main has made it
    gt::thread owner({.name = "owner"}, [&] {
        const std::lock_guard<gt::mutex> hold(m);
        while (locker_object.load() == nullptr) gt::this_thread::sleep_for(50us);
        const gt::this_thread::disable_preemption no_tick_between;  // the flag and the join's block
        joining = true;
        locker_object.load()->join();  // waits for the locker below
    });
    gt::thread locker({.name = "locker"}, [&] {
        sleep_until_set(joining);  // owner is BLOCKED in join now
        try {
            m.lock();
            m.unlock();
        } catch (const std::system_error& e) {
            what = e.what();
        }
    });
    locker_object = &locker;
    owner.join();
    EXPECT_TRUE(contains(what, "\"owner\", which joins thread")) << what;
    EXPECT_FALSE(locker.joinable());  // owner joined it
}

// Why: a timed lock in the cycle ends the wait at its deadline: that is
// no deadlock, and try_lock_for must time out as usual, not throw.
TEST(Deadlock, ACycleThatATimedLockEndsIsNotADeadlock) {
    const lock_order_for_test quiet(gt::debug::lock_order_check::off);
    gt::timed_mutex a, b;
    std::atomic<bool> x_holds_a{false}, y_waits{false};
    bool got = true;
    gt::thread x([&] {
        const std::lock_guard<gt::timed_mutex> hold(a);
        x_holds_a = true;
        sleep_until_set(y_waits);
        got = b.try_lock_for(2ms);
        if (got) b.unlock();
    });
    gt::thread y([&] {
        sleep_until_set(x_holds_a);
        const std::lock_guard<gt::timed_mutex> hold(b);
        y_waits = true;
        const std::lock_guard<gt::timed_mutex> also(a);
    });
    x.join();
    y.join();
    EXPECT_FALSE(got);
}

// Why: GT_DEADLOCK=abort turns the exception into a report with the dump
// and an abort, for programs that would swallow the exception.
TEST(DeadlockDeathTest, GtDeadlockAbortAbortsWithTheCycleAndTheDump) {
    EXPECT_DEATH(
        {
            setenv("GT_DEADLOCK", "abort", 1);
            gt::mutex m({.name = "m"});
            m.lock();
            gt::thread t({.name = "waiter"}, [&] { const std::lock_guard<gt::mutex> hold(m); });
            static_cast<void>(wait_until_blocked_on("mutex", 1));  // else t's lock would close the cycle
            t.join();
        },
        "gt::thread::join: deadlock: thread [0-9]+ \"main\" would join thread [0-9]+ \"waiter\"(.|\n)*"
        "GT_DEADLOCK=abort(.|\n)*waiter +BLOCKED \\(mutex\\)");
}

// Why: the potential deadlock: one thread takes A then B, later another
// takes B then A. Neither run deadlocked, but the two orders can; the
// report names both orders and the threads that took them, once.
TEST(LockOrder, AbBaInversionIsReportedOnceEvenWithoutADeadlock) {
    const lock_order_for_test report(gt::debug::lock_order_check::report);
    gt::mutex a({.name = "order-A"}), b({.name = "order-B"});
    gt::thread first({.name = "first"}, [&] { const std::scoped_lock<gt::mutex> ha(a), hb(b); });
    first.join();
    testing::internal::CaptureStderr();
    gt::thread second({.name = "second"}, [&] {
        for (int i = 0; i < 3; ++i) {
            const std::lock_guard<gt::mutex> hb(b);
            const std::lock_guard<gt::mutex> ha(a);
        }
    });
    second.join();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(contains(err, "lock-order inversion")) << err;
    EXPECT_TRUE(contains(err, "thread")) << err;
    EXPECT_TRUE(contains(err, "\"second\" takes gt::mutex \"order-A\"")) << err;
    EXPECT_TRUE(contains(err, "while holding gt::mutex \"order-B\"")) << err;
    EXPECT_TRUE(contains(err, "\"first\" took gt::mutex \"order-B\"")) << err;
    EXPECT_TRUE(contains(err, ") while holding gt::mutex \"order-A\"")) << err;
    EXPECT_EQ(err.find("lock-order inversion"), err.rfind("lock-order inversion")) << "reported more than once";
}

// Why: one order everywhere is correct and must stay quiet.
TEST(LockOrder, OneOrderEverywhereIsQuiet) {
    const lock_order_for_test report(gt::debug::lock_order_check::report);
    gt::mutex a, b, c;
    testing::internal::CaptureStderr();
    for (int round = 0; round < 2; ++round) {
        gt::thread t([&] {
            const std::lock_guard<gt::mutex> ha(a);
            const std::lock_guard<gt::mutex> hb(b);
            const std::lock_guard<gt::mutex> hc(c);
        });
        t.join();
        const std::lock_guard<gt::mutex> ha(a);
        const std::lock_guard<gt::mutex> hc(c);
    }
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

// Why: ~mutex removes its node: two mutexes re-created at the same
// addresses and taken in the other order are new mutexes, not a cycle.
TEST(LockOrder, AMutexRecreatedAtTheSameAddressDoesNotFakeACycle) {
    const lock_order_for_test report(gt::debug::lock_order_check::report);
    alignas(gt::mutex) unsigned char space_a[sizeof(gt::mutex)], space_b[sizeof(gt::mutex)];
    const std::size_t nodes_before = gt::detail::lock_order_nodes();
    testing::internal::CaptureStderr();
    for (int round = 0; round < 2; ++round) {
        auto* a = new (space_a) gt::mutex;
        auto* b = new (space_b) gt::mutex;
        if (round == 0) {
            const std::lock_guard<gt::mutex> ha(*a);
            const std::lock_guard<gt::mutex> hb(*b);
        } else {
            const std::lock_guard<gt::mutex> hb(*b);
            const std::lock_guard<gt::mutex> ha(*a);
        }
        a->~mutex();
        b->~mutex();
    }
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
    EXPECT_EQ(gt::detail::lock_order_nodes(), nodes_before);
}

// Why: GT_LOCK_ORDER=abort stops the program at the first inversion.
void take_in_both_orders() {
    gt::debug::set_lock_order_check(gt::debug::lock_order_check::abort);
    gt::mutex a({.name = "a"});
    gt::mutex b({.name = "b"});
    {
        const std::lock_guard<gt::mutex> ha(a);
        const std::lock_guard<gt::mutex> hb(b);
    }
    const std::lock_guard<gt::mutex> hb(b);
    const std::lock_guard<gt::mutex> ha(a);
}

TEST(LockOrderDeathTest, AbortModeAbortsAtTheInversion) {
    EXPECT_DEATH(take_in_both_orders(), "lock-order inversion(.|\n)*GT_LOCK_ORDER=abort");
}

// Why: lock levels are checked even when nobody holds the mutex: the
// out-of-order lock fails at once, naming both mutexes and levels.
TEST(LockLevels, TakingALevelNotBelowAHeldOneFailsAtOnceEvenUncontended) {
    gt::mutex high({.name = "high", .level = 20}), low({.name = "low", .level = 10}), same({.name = "same", .level = 10});
    {
        const std::lock_guard<gt::mutex> h(high);
        const std::lock_guard<gt::mutex> l(low);  // downwards: fine
    }
    const std::lock_guard<gt::mutex> l(low);
    for (gt::mutex* m : {&high, &same}) {
        try {
            m->lock();
            m->unlock();
            FAIL() << "no exception";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::errc::resource_deadlock_would_occur);
            EXPECT_TRUE(contains(e.what(), "holds gt::mutex \"low\"")) << e.what();
            EXPECT_TRUE(contains(e.what(), "of level 10")) << e.what();
        }
    }
    EXPECT_TRUE(high.try_lock());  // unchecked: free, and a try_lock cannot wait
    high.unlock();
}

// Why: the global net: every thread blocked, and no cycle for the walk to
// see (a condition variable has no owner). The report names each wait:
// the mutex with its owner, the condition variable, the join.
void block_everyone() {
    gt::mutex m({.name = "held-by-main"});
    gt::mutex for_cv;
    gt::condition_variable cv;
    m.lock();
    gt::thread sleeper({.name = "cv-waiter"}, [&] {
        std::unique_lock<gt::mutex> lock(for_cv);
        cv.wait(lock);
    });
    gt::thread locker({.name = "locker"}, [&] { const std::lock_guard<gt::mutex> hold(m); });
    gt::this_thread::sleep_for(1ms);
    sleeper.join();
}

TEST(DeadlockDeathTest, TheGlobalReportNamesWhatEachThreadWaitsOn) {
    EXPECT_DEATH(block_everyone(),
                 "gt: deadlock: no thread can run again(.|\n)*"
                 "main +BLOCKED \\(join\\)(.|\n)*waits on join of thread [0-9]+ \"cv-waiter\"(.|\n)*"
                 "cv-waiter +BLOCKED \\(condition variable\\)(.|\n)*waits on condition variable \\(0x(.|\n)*"
                 "locker +BLOCKED \\(mutex\\)(.|\n)*waits on gt::mutex \"held-by-main\" \\(0x[0-9a-f]+\\), owned by "
                 "thread [0-9]+ \"main\"(, for about [0-9]+ ms)?\n");
}

// Why: a pending timed wait can still wake a thread: no report, and the
// program goes on when it times out.
TEST(Deadlock, EveryThreadBlockedButATimedWaitPendingIsNoDeadlock) {
    gt::mutex m;
    gt::mutex for_cv;
    gt::condition_variable cv;
    m.lock();
    gt::thread locker([&] { const std::lock_guard<gt::mutex> hold(m); });
    ASSERT_TRUE(wait_until_blocked_on("mutex", 1));
    std::unique_lock<gt::mutex> lock(for_cv);
    EXPECT_EQ(cv.wait_for(lock, 5ms), std::cv_status::timeout);  // main and locker both BLOCKED meanwhile
    m.unlock();
    locker.join();
}
