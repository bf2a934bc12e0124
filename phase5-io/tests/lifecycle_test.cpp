// The life of a thread after its function returns: join blocks (no
// polling) and wakes exactly once; detached threads are reaped; stacks are
// reused; nothing leaks; cleanup handlers and exit() unwind as POSIX
// threads do.
#include <gt/debug.hpp>
#include <gt/thread.hpp>

#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cooperative.hpp"
#include "sanitizers.hpp"
#include "scheduler.hpp"

#if defined(GT_ASAN)
// From the sanitizers' allocator interface (sanitizer/allocator_interface.h,
// which GCC 12 does not install): bytes in live heap blocks.
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace {

gt::detail::scheduler& sched() { return gt::detail::scheduler::current(); }

// Why: a polling join would keep the joiner in the run queue; a blocking
// one takes it off until the target finishes, then wakes it once.
TEST(Join, JoinerIsBlockedOffTheRunQueueUntilTheTargetFinishes) {
    const cooperative_scheduling cooperative;  // t must find main already blocked in join()
    gt::detail::control_block* main_tcb = sched().running();
    std::vector<std::string> seen;
    gt::thread t([&] {
        for (int i = 0; i < 3; ++i) {
            seen.push_back(std::string(gt::detail::to_string(main_tcb->state)) + "/" +
                           gt::detail::to_string(main_tcb->waiting_for) + "/" +
                           (sched().has_ready() ? "queue" : "no-queue"));
            gt::this_thread::yield();  // nobody else is READY: returns at once
        }
    });
    t.join();
    EXPECT_EQ(seen, std::vector<std::string>(3, "BLOCKED/join/no-queue"));
    EXPECT_EQ(main_tcb->state, gt::detail::thread_state::running);
}

TEST(Join, JoinerWakesExactlyOnce) {
    const cooperative_scheduling cooperative;  // joiner must not be switched away between setting joiner_tcb and join()
    gt::detail::control_block* joiner_tcb = nullptr;
    int joiner_turns_while_waiting = 0;  // READY or RUNNING before the target finished: a spurious wake
    bool target_done = false;
    gt::thread target([&] {
        for (int i = 0; i < 5; ++i) gt::this_thread::yield();
        target_done = true;
    });
    gt::thread joiner([&] {
        joiner_tcb = sched().running();
        target.join();
        EXPECT_TRUE(target_done);
    });
    gt::thread busy([&] {
        for (int i = 0; i < 10; ++i) {
            if (!target_done && joiner_tcb != nullptr && joiner_tcb->state != gt::detail::thread_state::blocked) {
                ++joiner_turns_while_waiting;
            }
            gt::this_thread::yield();
        }
    });
    joiner.join();
    busy.join();
    EXPECT_EQ(joiner_turns_while_waiting, 0);
    EXPECT_FALSE(target.joinable());
}

// Why: while a thread waits in join(), others run and may move the
// gt::thread object it called join() on (here: a vector grows); join must
// not touch the object after it starts waiting.
TEST(Join, JoinSurvivesItsHandleMovingWhileItWaits) {
    std::vector<gt::thread> threads;
    threads.emplace_back([] {
        for (int i = 0; i < 3; ++i) gt::this_thread::yield();
    });
    // Higher priority: runs inside emplace_back, while the vector reallocates.
    threads.emplace_back(gt::thread::attributes{.priority = 20}, [&threads] { threads[0].join(); });
    for (int i = 0; i < 8; ++i) threads.emplace_back([] {});
    for (auto& t : threads) {
        if (t.joinable()) t.join();
    }
    EXPECT_EQ(sched().thread_count(), 1u);
}

TEST(Join, JoiningAFinishedThreadDoesNotBlock) {
    gt::thread t([] {});
    gt::this_thread::yield();  // t runs to the end
    t.join();
    EXPECT_FALSE(t.joinable());
}

// Why: a detached thread has no owner left to release it; the scheduler
// must reap it once it has switched off its stack.
TEST(Detach, DetachedThreadsAreReapedWhenTheyFinish) {
    const cooperative_scheduling cooperative;  // threads increment one int without a lock; asserts who has run when
    const std::size_t before = sched().thread_count();
    int finished = 0;
    for (int i = 0; i < 5; ++i) {
        gt::thread t([&finished] {
            gt::this_thread::yield();
            ++finished;
        });
        t.detach();
        EXPECT_FALSE(t.joinable());
    }
    EXPECT_EQ(sched().thread_count(), before + 5);
    for (int i = 0; i < 3; ++i) gt::this_thread::yield();
    EXPECT_EQ(finished, 5);
    EXPECT_EQ(sched().thread_count(), before);
}

TEST(Detach, DetachingAFinishedThreadReleasesItAtOnce) {
    const cooperative_scheduling cooperative;  // t must run to its end in main's one yield()
    const std::size_t before = sched().thread_count();
    gt::thread t([] {});
    gt::this_thread::yield();
    t.detach();
    EXPECT_EQ(sched().thread_count(), before);
}

TEST(StackPool, StacksAreReusedSoCreationMakesNoSystemCall) {
    const void* first = nullptr;
    {
        gt::thread warm({.stack_size = 72 * 1024}, [&] { first = sched().running()->stack.bottom(); });
        warm.join();
    }
    const std::size_t idle = sched().stacks().size();
    ASSERT_GE(idle, 1u);
    const void* reused = nullptr;
    gt::thread t({.stack_size = 72 * 1024}, [&] { reused = sched().running()->stack.bottom(); });
    EXPECT_EQ(sched().stacks().size(), idle - 1) << "the new thread took a pooled stack";
    t.join();
    EXPECT_EQ(sched().stacks().size(), idle);
    EXPECT_EQ(reused, first) << "the same mapping, not a new one";
}

long resident_kib() {
    long pages_total = 0, pages_resident = 0;
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) return -1;
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = -1;
    std::fclose(f);
    return pages_resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// The number of memory mappings of the process (lines of /proc/self/maps).
long mappings() {
    long lines = 0;
    std::FILE* f = std::fopen("/proc/self/maps", "r");
    if (f == nullptr) return -1;
    for (int c; (c = std::fgetc(f)) != EOF;) lines += c == '\n';
    std::fclose(f);
    return lines;
}

// Why: a leak of a TCB or a stack per thread is invisible in one test and
// fatal in a server; a million threads make even 64 bytes each show.
// Under ASan, freed memory waits in quarantine, so resident memory cannot
// stay flat, and each thread costs ~80 µs of CPU time (most of it in the
// kernel, mapping and unmapping its fake stack), minutes of wall-clock time
// for a million on a loaded machine: 10,000 rounds, and the sanitizer's
// own count of live heap
// bytes (which excludes the quarantine) and the count of mappings (a
// leaked stack is two: guard page and stack) take resident memory's place;
// LeakSanitizer checks again at exit.
TEST(Leaks, AMillionSequentialThreadsKeepMemoryFlat) {
    for (int i = 0; i < 1000; ++i) {  // warm up: pool, allocator caches
        gt::thread t([] {});
        t.join();
    }
#if defined(GT_ASAN)
    constexpr int rounds = 10'000;
    const std::size_t heap_before = __sanitizer_get_current_allocated_bytes();
#else
    constexpr int rounds = 1'000'000;
#endif
    const long before = resident_kib();
    const long mappings_before = mappings();
    long sum = 0;
    for (int i = 0; i < rounds; ++i) {
        gt::thread t([&sum, i] { sum += i % 3; });
        t.join();
    }
    const long after = resident_kib();
    const long new_mappings = mappings() - mappings_before;
    EXPECT_EQ(sum, rounds / 3 * 3 + (rounds % 3 == 2 ? 1 : 0));  // 0 + 1 + 2 per three rounds
    EXPECT_LT(new_mappings, 100) << "a leaked stack is two mappings";
#if !defined(GT_ASAN)
    EXPECT_LT(after - before, 1024) << "resident memory grew by " << (after - before) << " KiB";
#else
    (void)before, (void)after;
    const auto heap_growth = static_cast<long>(__sanitizer_get_current_allocated_bytes() - heap_before);
    EXPECT_LT(heap_growth, 16 * 1024) << "live heap grew by " << heap_growth << " bytes";  // 2 bytes a thread
#endif
}

struct record_destruction {
    std::vector<std::string>* log;
    ~record_destruction() { log->push_back("local destroyed"); }
};

// Why: pthread_cleanup_push handlers run last-pushed first; exit() must
// unwind the stack (run destructors) before them, as pthread_exit does.
TEST(Cleanup, HandlersRunInLifoOrderAfterTheStackIsUnwoundByExit) {
    std::vector<std::string> log;
    gt::thread t([&] {
        gt::this_thread::cleanup_push([&] { log.push_back("handler 1"); });
        gt::this_thread::cleanup_push([&] { log.push_back("handler 2"); });
        record_destruction local{&log};
        gt::this_thread::exit();
        log.push_back("after exit (never)");
    });
    t.join();
    EXPECT_EQ(log, (std::vector<std::string>{"local destroyed", "handler 2", "handler 1"}));
}

TEST(Cleanup, HandlersRunWhenTheFunctionReturns) {
    std::vector<int> order;
    gt::thread t([&] {
        gt::this_thread::cleanup_push([&] { order.push_back(1); });
        gt::this_thread::cleanup_push([&] { order.push_back(2); });
        gt::this_thread::cleanup_push([&] { order.push_back(3); });
        gt::this_thread::cleanup_pop(false);  // removed, not run
        order.push_back(0);
    });
    t.join();
    EXPECT_EQ(order, (std::vector<int>{0, 2, 1}));
}

TEST(Cleanup, PopWithExecuteRunsTheHandlerNow) {
    int runs = 0;
    gt::thread t([&] {
        gt::this_thread::cleanup_push([&] { ++runs; });
        gt::this_thread::cleanup_pop(true);
        EXPECT_EQ(runs, 1);
    });
    t.join();
    EXPECT_EQ(runs, 1);
}

TEST(Cleanup, ExitInsideACleanupHandlerEndsOnlyThatHandler) {
    std::vector<int> order;
    gt::thread t([&] {
        gt::this_thread::cleanup_push([&] { order.push_back(1); });
        gt::this_thread::cleanup_push([&] {
            order.push_back(2);
            gt::this_thread::exit();
            order.push_back(99);  // never
        });
    });
    t.join();
    EXPECT_EQ(order, (std::vector<int>{2, 1}));
}

TEST(Cleanup, ExitInsideNestedCallsUnwindsAllOfThem) {
    std::vector<std::string> log;
    static volatile bool do_exit = true;  // a path that returns, for the compiler's recursion check
    auto nested = [&](auto& self, int depth) -> void {
        record_destruction guard{&log};
        if (depth > 0) {
            self(self, depth - 1);
        } else if (do_exit) {
            gt::this_thread::exit();
        }
    };
    gt::thread t([&] { nested(nested, 3); });
    t.join();
    EXPECT_EQ(log.size(), 4u);
}

TEST(LifecycleMisuse, ExitFromTheAdoptedMainThreadThrowsOperationNotPermitted) {
    try {
        gt::this_thread::exit();
        FAIL() << "expected std::system_error";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
        EXPECT_NE(std::string(e.what()).find("\"main\""), std::string::npos) << e.what();
    }
}

void swallow_exit() {
    gt::thread t([] {
        try {
            gt::this_thread::exit();
        } catch (...) {
            // swallowed: the thread would go on as if exit() had returned
        }
    });
    t.join();
}

// Why: exit() works by unwinding; a catch (...) that does not rethrow would
// silently cancel it. glibc's pthread_exit aborts then; so do we.
TEST(LifecycleDeathTest, ExitSwallowedByCatchAllAborts) {
    EXPECT_DEATH(swallow_exit(), "exit\\(\\) was caught by a catch \\(\\.\\.\\.\\) that did not rethrow it");
}

struct joins_at_exit {
    gt::thread t;
    ~joins_at_exit() { t.join(); }
};

void join_in_a_static_destructor() {
    static joins_at_exit holder{gt::thread([] { gt::this_thread::yield(); })};
    std::exit(0);  // thread_local destructors first, then static ones: the join runs after
}

// Why: as with std::thread, a static object may join its threads in its
// destructor, which runs after the OS thread's thread_local objects (the
// scheduler's owner) are destroyed.
TEST(LifecycleDeathTest, JoinInAStaticDestructorAtExitWorks) {
    EXPECT_EXIT(join_in_a_static_destructor(), testing::ExitedWithCode(0), "");
}

void os_thread_exits_with_a_sleeping_green_thread() {
    std::thread os_thread([] {
        gt::thread sleeper([] { gt::this_thread::sleep_for(std::chrono::hours(1)); });
        sleeper.detach();
        gt::this_thread::yield();
    });
    os_thread.join();
    std::exit(0);
}

TEST(LifecycleDeathTest, OsThreadExitingWithLiveGreenThreadsSaysSo) {
    EXPECT_EXIT(os_thread_exits_with_a_sleeping_green_thread(), testing::ExitedWithCode(0),
                "gt: an OS thread is exiting with 1 green threads still alive; they will never run again");
}

void yield_inside_a_critical_section() {
    gt::detail::scheduler::critical_section cs(sched());  // as a signal handler interrupting the scheduler would be
    gt::this_thread::yield();
}

// Why: a signal handler that calls into gt while the scheduler is halfway
// through changing its data would corrupt it; the entry points check.
TEST(LifecycleDeathTest, ReenteringTheSchedulerIsReportedNotCorrupting) {
    EXPECT_DEATH(yield_inside_a_critical_section(), "gt: the scheduler was re-entered");
}

TEST(LifecycleMisuse, CleanupPopWithoutAHandlerThrowsLogicError) {
    gt::thread t([] {
        try {
            gt::this_thread::cleanup_pop(false);
            ADD_FAILURE() << "expected std::logic_error";
        } catch (const std::logic_error& e) {
            EXPECT_NE(std::string(e.what()).find("has no cleanup handler"), std::string::npos) << e.what();
        }
    });
    t.join();
}

TEST(LifecycleMisuse, DetachingANonJoinableThreadThrowsInvalidArgument) {
    gt::thread t;
    try {
        t.detach();
        FAIL() << "expected std::system_error";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
    }
}

// Why: two threads joining each other would block forever; pthread_join
// reports EDEADLK for that, and so do we (resource_deadlock_would_occur).
TEST(LifecycleMisuse, JoinCycleThrowsResourceDeadlockWouldOccur) {
    const cooperative_scheduling cooperative;  // a must block in b.join() before b joins a
    gt::thread a, b;
    std::error_code code;
    a = gt::thread([&] { b.join(); });
    b = gt::thread([&] {
        gt::this_thread::yield();  // let a block in b.join()
        try {
            a.join();
        } catch (const std::system_error& e) {
            code = e.code();
        }
    });
    for (int i = 0; i < 5; ++i) gt::this_thread::yield();  // main joins neither yet
    EXPECT_EQ(code, std::errc::resource_deadlock_would_occur);
    a.join();  // a has joined b
}

TEST(LifecycleMisuse, SecondJoinerOfTheSameThreadThrowsInvalidArgument) {
    const cooperative_scheduling cooperative;  // first must join target before second tries
    gt::thread target([] {
        for (int i = 0; i < 3; ++i) gt::this_thread::yield();
    });
    std::error_code code;
    gt::thread first([&] { target.join(); });
    gt::thread second([&] {
        try {
            target.join();
        } catch (const std::system_error& e) {
            code = e.code();
        }
    });
    first.join();
    second.join();
    EXPECT_EQ(code, std::errc::invalid_argument);
}

// Why: with every thread BLOCKED and no timer pending, nothing can ever
// wake anyone; the runtime must say so instead of hanging. join() itself
// refuses cycles, so this builds one through the internal join_wait.
void deadlock_main_and_one_thread() {
    gt::detail::control_block* main_tcb = sched().running();
    gt::detail::control_block* t_tcb = nullptr;
    gt::thread t({.name = "stuck"}, [&] {
        t_tcb = sched().running();
        sched().join_wait(main_tcb);  // t waits for main ...
    });
    gt::this_thread::yield();
    sched().join_wait(t_tcb);  // ... and main for t
}

TEST(LifecycleDeathTest, DeadlockOfAllThreadsIsReportedWithTheDump) {
    const cooperative_scheduling cooperative;  // t must set t_tcb and block before main's join_wait
    EXPECT_DEATH(deadlock_main_and_one_thread(),
                 "gt: deadlock: no thread can run again(.|\n)*main +BLOCKED \\(join\\)(.|\n)*stuck +BLOCKED \\(join\\)");
}

}  // namespace
