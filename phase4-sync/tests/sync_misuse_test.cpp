// Misuse of gt's synchronization objects ends in a clear message naming
// the threads and the object, never in silent corruption: unlocking a
// mutex one does not own or that is not locked, destroying a mutex or a
// condition variable that threads wait on, and sharing a mutex between
// OS threads (supported from phase 6).
#include <gt/condition_variable.hpp>
#include <gt/mutex.hpp>
#include <gt/preemption.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "blocked_on.hpp"

using namespace std::chrono_literals;

namespace {

void unlock_someone_elses() {
    gt::mutex m({.name = "theirs"});
    m.lock();
    gt::thread t({.name = "intruder"}, [&] { m.unlock(); });
    t.join();
}

// Why: std::mutex leaves a foreign unlock undefined (it may silently let
// two threads in); we name the thread that unlocked and the owner.
TEST(SyncMisuseDeathTest, UnlockingAMutexOneDoesNotOwnNamesBothThreads) {
    EXPECT_DEATH(unlock_someone_elses(),
                 "gt: thread [0-9]+ \"intruder\" unlocks gt::mutex \"theirs\" \\(0x[0-9a-f]+\\), which is owned by "
                 "thread [0-9]+ \"main\"");
}

void unlock_unlocked() {
    gt::mutex m({.name = "free"});
    m.unlock();
}

// Why: an unlock too many is the other common mistake.
TEST(SyncMisuseDeathTest, UnlockingAnUnlockedMutexSaysItIsNotLocked) {
    EXPECT_DEATH(unlock_unlocked(), "gt: thread [0-9]+ \"main\" unlocks gt::mutex \"free\" \\(0x[0-9a-f]+\\), which is "
                                    "not locked");
}

void destroy_mutex_while_waited() {
    gt::set_time_slice(std::chrono::microseconds(0));  // no tick: the waiter blocks before main goes on
    auto m = std::make_unique<gt::mutex>(gt::mutex::attributes{.name = "doomed"});
    m->lock();
    gt::thread t({.name = "waiter"}, [&] { const std::lock_guard<gt::mutex> hold(*m); });
    if (!wait_until_blocked_on("mutex", 1)) return;  // t blocks on it (else no report: the test fails)
    m.reset();
}

// Why: a waiter's control block is linked into the mutex's queue; freeing
// the mutex under it would corrupt memory later, far from the mistake.
TEST(SyncMisuseDeathTest, DestroyingAMutexWithWaitersNamesThemAndAborts) {
    EXPECT_DEATH(destroy_mutex_while_waited(),
                 "gt: gt::mutex \"doomed\" \\(0x[0-9a-f]+\\) destroyed while threads wait on it: thread [0-9]+ "
                 "\"waiter\"");
}

void destroy_condition_variable_while_waited() {
    gt::set_time_slice(std::chrono::microseconds(0));  // no tick: the waiter blocks before main goes on
    gt::mutex m;
    auto cv = std::make_unique<gt::condition_variable>();
    gt::thread t({.name = "cv-waiter"}, [&] {
        std::unique_lock<gt::mutex> lock(m);
        cv->wait(lock);
    });
    if (!wait_until_blocked_on("condition variable", 1)) return;  // else no report: the test fails
    cv.reset();
}

TEST(SyncMisuseDeathTest, DestroyingAConditionVariableWithWaitersNamesThemAndAborts) {
    EXPECT_DEATH(destroy_condition_variable_while_waited(),
                 "gt: gt::condition_variable +\\(0x[0-9a-f]+\\) destroyed while threads wait on it: thread [0-9]+ "
                 "\"cv-waiter\"");
}

gt::mutex shared_between_os_threads({.name = "shared"});

void share_a_mutex_between_os_threads() {
    std::atomic<bool> held{false}, done{false};
    std::thread first([&] {
        gt::thread holder({.name = "holder"}, [&] {
            const std::lock_guard<gt::mutex> hold(shared_between_os_threads);
            held = true;
            while (!done.load()) std::this_thread::sleep_for(1ms);  // blocks this OS thread: fine here
        });
        holder.join();
    });
    std::thread second([&] {
        while (!held.load()) std::this_thread::sleep_for(1ms);
        gt::thread taker({.name = "taker"}, [&] { const std::lock_guard<gt::mutex> hold(shared_between_os_threads); });
        taker.join();
    });
    second.join();
    done = true;
    first.join();
}

// Why: each OS thread has its own scheduler; until phase 6 a primitive
// cannot wake or wait for a thread of another one, and says so instead
// of losing the wakeup.
TEST(SyncMisuseDeathTest, AMutexSharedBetweenOsThreadsIsRefusedUntilPhase6) {
    EXPECT_DEATH(share_a_mutex_between_os_threads(),
                 "gt: thread [0-9]+ \"taker\" would wait for gt::mutex \"shared\" \\(0x[0-9a-f]+\\), owned by thread "
                 "[0-9]+ \"holder\" of another OS thread's scheduler(.|\n)*supported from phase 6");
}

}  // namespace

// Why: a thread that ends owning a mutex others wait on leaves them
// waiting for ever, and the lock word names a control block that the next
// new thread may reuse (found by a reviewer: a later thread "owned" it).
// Reported at the end of the thread, with the thread and the mutex.
TEST(SyncMisuseDeathTest, AThreadThatFinishesOwningAWaitedOnMutexIsReported) {
    EXPECT_DEATH(
        {
            gt::set_time_slice(std::chrono::microseconds(0));  // this order exactly: a tick could run the waiter first
            gt::mutex m({.name = "left-locked"});
            gt::thread owner({.name = "forgetful"}, [&] {
                m.lock();
                gt::this_thread::yield();  // the waiter blocks on it now
            });
            gt::thread waiter([&] { const std::lock_guard<gt::mutex> hold(m); });
            owner.join();
            waiter.join();
        },
        "gt: thread [0-9]+ \"forgetful\" finished while it owns gt::mutex \"left-locked\" \\(0x[0-9a-f]+\\) "
        "\\(threads wait on it\\)");
}

// Why: a condition variable's wait must return holding its mutex; when
// the relock is refused (here the deadlock check: the mutex's owner joins
// the waiter), std says terminate. Before, the exception reached the
// caller, whose unique_lock then unlocked a mutex it did not hold.
TEST(SyncMisuseDeathTest, AConditionVariableWaitWhoseRelockIsRefusedAborts) {
    EXPECT_DEATH(
        {
            gt::set_time_slice(std::chrono::microseconds(0));  // this order exactly: a tick could let the joiner's join see the cycle first
            gt::mutex m;
            gt::condition_variable cv;
            bool go = false;
            gt::thread* waiter_handle = nullptr;
            gt::thread waiter({.name = "cv-waiter"}, [&] {
                std::unique_lock<gt::mutex> lock(m);
                cv.wait(lock, [&] { return go; });
            });
            waiter_handle = &waiter;
            static_cast<void>(wait_until_blocked_on("condition variable", 1));  // the waiter waits
            gt::thread joiner([&] {
                const std::lock_guard<gt::mutex> hold(m);
                go = true;
                cv.notify_one();
                waiter_handle->join();  // holding m: the waiter's relock would wait for us for ever
            });
            joiner.join();
        },
        "gt: thread [0-9]+ \"cv-waiter\": a condition variable's wait could not lock its mutex again: "
        "gt::mutex::lock: deadlock");
}
