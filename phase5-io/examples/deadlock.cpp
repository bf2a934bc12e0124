// Deadlock: two threads that take the same two mutexes in opposite orders
// (one A then B, the other B then A), what the runtime says about it, and
// the fix. Three parts:
//   1. a lucky run: the two threads take the mutexes one after the other,
//      so nothing hangs; the lock-order check still reports the two orders,
//      because with other timing they would deadlock;
//   2. an unlucky run: each thread holds its first mutex and asks for its
//      second; the lock that would close the cycle throws
//      std::system_error (resource_deadlock_would_occur) naming both
//      threads and both mutexes, instead of hanging both threads forever;
//   3. the fix: both threads take both mutexes with std::scoped_lock, which
//      never waits for one mutex while holding another.
// The lock-order check is on by default in a build without NDEBUG (as the
// examples are built); GT_LOCK_ORDER=off|report|abort chooses, and this
// demo sets it where it matters with gt::debug::set_lock_order_check.
//
//   build/examples/deadlock                 (in the phase folder; the reports go to stderr)
#include <gt/debug.hpp>
#include <gt/mutex.hpp>
#include <gt/preemption.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {

// A sleeping thread is BLOCKED, so others run meanwhile.
void sleep_until_set(const std::atomic<bool>& flag) {
    while (!flag.load()) gt::this_thread::sleep_for(50us);
}

void lucky_run() {
    std::printf(
        "1. a lucky run: thread \"A-then-B\" locks A then B and finishes; then thread \"B-then-A\"\n"
        "   locks B then A. Nothing hangs, but the lock-order check reports the two orders:\n");
    std::fflush(stdout);  // the report goes to stderr: keep the two in order
    gt::debug::set_lock_order_check(gt::debug::lock_order_check::report);
    gt::mutex a({.name = "A"}), b({.name = "B"});
    gt::thread first({.name = "A-then-B"}, [&] {
        const std::lock_guard<gt::mutex> hold_a(a);
        const std::lock_guard<gt::mutex> hold_b(b);
    });
    first.join();
    gt::thread second({.name = "B-then-A"}, [&] {
        const std::lock_guard<gt::mutex> hold_b(b);
        const std::lock_guard<gt::mutex> hold_a(a);  // the edge B -> A closes the cycle A -> B -> A
    });
    second.join();
    std::printf("   both threads finished (this time)\n");
}

void unlucky_run() {
    std::printf(
        "2. an unlucky run: each thread holds its first mutex when it asks for its second\n"
        "   (lock-order check off for this part, so that only the deadlock check speaks)\n");
    gt::debug::set_lock_order_check(gt::debug::lock_order_check::off);
    gt::mutex a({.name = "A"}), b({.name = "B"});
    std::atomic<bool> holds_a{false}, holds_b{false}, waits_for_b{false};
    std::string what, who = "nobody";
    auto take_second = [&](gt::mutex& second, const char* me) {
        try {
            const std::lock_guard<gt::mutex> hold(second);
        } catch (const std::system_error& e) {
            what = e.what();
            who = me;
        }
    };
    gt::thread ab({.name = "A-then-B"}, [&] {
        const std::lock_guard<gt::mutex> hold(a);
        holds_a = true;
        sleep_until_set(holds_b);
        {
            // No tick between raising the flag and blocking in the lock:
            // when "B-then-A" sees the flag, this thread waits for B.
            const gt::this_thread::disable_preemption no_tick;
            waits_for_b = true;
            take_second(b, "A-then-B");
        }
    });
    gt::thread ba({.name = "B-then-A"}, [&] {
        sleep_until_set(holds_a);
        const std::lock_guard<gt::mutex> hold(b);
        holds_b = true;
        sleep_until_set(waits_for_b);
        take_second(a, "B-then-A");  // closes the cycle: throws instead of waiting forever
    });
    ab.join();
    ba.join();
    std::printf("   thread \"%s\"'s lock threw std::system_error; its what():\n   %s\n", who.c_str(),
                what.c_str());
    std::printf(
        "   its lock_guard unlocked B as the exception left the scope; \"A-then-B\" then got B and\n"
        "   finished. Without the check, both threads would be BLOCKED forever.\n");
}

void fixed() {
    constexpr int rounds = 20'000;
    std::printf(
        "3. the fix: both threads take A and B together with std::scoped_lock, in opposite\n"
        "   orders as before, %d times each, preempted by the timer (lock-order check on)\n",
        rounds);
    std::fflush(stdout);
    gt::debug::set_lock_order_check(gt::debug::lock_order_check::report);
    gt::mutex a({.name = "A"}), b({.name = "B"});
    long both_held = 0;  // changed only while both are held
    unsigned long preempted = 0;
    auto body = [&](gt::mutex& first, gt::mutex& second) {
        for (int i = 0; i < rounds; ++i) {
            const std::scoped_lock hold(first, second);
            ++both_held;
        }
        const unsigned long mine = gt::debug::this_thread_stats().preemptions;
        const std::scoped_lock hold(first, second);
        preempted += mine;
    };
    gt::thread ab({.name = "A-then-B"}, [&] { body(a, b); });
    gt::thread ba({.name = "B-then-A"}, [&] { body(b, a); });
    ab.join();
    ba.join();
    std::printf(
        "   both held %ld times of %d, the threads preempted %lu times: no deadlock, no report.\n"
        "   std::scoped_lock (std::lock) blocks on one mutex while holding none, and only\n"
        "   try-locks the others; a try_lock cannot wait, so it cannot deadlock\n",
        both_held, 2 * rounds, preempted);
}

}  // namespace

int main() {
    gt::set_time_slice(100us);
    lucky_run();
    unlucky_run();
    fixed();
    return 0;
}
