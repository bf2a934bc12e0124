// The deterministic scheduling mode: a seed replays one interleaving
// exactly, different seeds give different ones, the choice respects
// strict priorities, every synchronization point (fast paths included) is
// a chance to switch, and a search over seeds finds a lost wakeup in a
// broken condition variable that the real one never has. Then every other
// primitive (shared_mutex, semaphore, barrier, latch, call_once, channel):
// each of its operations is a logged sync point, and its property holds
// under 50 seeds.
#include <gt/barrier.hpp>
#include <gt/call_once.hpp>
#include <gt/channel.hpp>
#include <gt/condition_variable.hpp>
#include <gt/deterministic.hpp>
#include <gt/latch.hpp>
#include <gt/mutex.hpp>
#include <gt/preemption.hpp>
#include <gt/semaphore.hpp>
#include <gt/shared_mutex.hpp>
#include <gt/thread.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "blocked_on.hpp"
#include "preemption_for_test.hpp"

// Failures print an event by its name, not as a byte.
namespace gt::debug {
void PrintTo(schedule_event event, std::ostream* out) { *out << to_string(event); }
}  // namespace gt::debug

using namespace std::chrono_literals;
using gt::debug::schedule_event;
using gt::debug::schedule_step;

namespace {

// A log with each thread id replaced by the order in which the thread
// first appears in it: ids are process-unique, so two runs of one
// scenario number their threads differently.
std::vector<schedule_step> normalised(const std::vector<schedule_step>& log) {
    std::map<std::uint64_t, std::uint64_t> order;
    std::vector<schedule_step> out;
    for (const schedule_step& s : log) {
        const auto it = order.try_emplace(s.thread_id, order.size()).first;
        out.push_back({it->second, s.event});
    }
    return out;
}

// Four threads around a mutex and two condition variables: two producers
// put 12 numbers each through a queue of capacity 2, two consumers take
// them. Returns the numbers in the order they were taken.
std::vector<int> producers_and_consumers() {
    constexpr int per_producer = 12;
    constexpr std::size_t capacity = 2;
    gt::mutex m;
    gt::condition_variable not_empty;
    gt::condition_variable not_full;
    std::deque<int> queue;
    std::vector<int> taken;
    std::vector<gt::thread> threads;
    for (int p = 0; p < 2; ++p) {
        threads.emplace_back([&, p] {
            for (int i = 0; i < per_producer; ++i) {
                std::unique_lock<gt::mutex> lock(m);
                not_full.wait(lock, [&] { return queue.size() < capacity; });
                queue.push_back(p * 100 + i);
                not_empty.notify_one();
            }
        });
    }
    for (int c = 0; c < 2; ++c) {
        threads.emplace_back([&] {
            for (int i = 0; i < per_producer; ++i) {
                std::unique_lock<gt::mutex> lock(m);
                not_empty.wait(lock, [&] { return !queue.empty(); });
                taken.push_back(queue.front());
                queue.pop_front();
                not_full.notify_one();
            }
        });
    }
    for (gt::thread& t : threads) t.join();
    return taken;
}

struct run_record {
    std::vector<schedule_step> log;
    std::vector<int> taken;
};

run_record run_with_seed(std::uint64_t seed) {
    run_record r;
    {
        const gt::debug::deterministic_schedule mode(seed);
        r.taken = producers_and_consumers();
    }
    EXPECT_EQ(gt::debug::schedule_log_dropped(), 0u);
    r.log = normalised(gt::debug::schedule_log());
    return r;
}

// The bug: wait releases the caller's mutex before it becomes a waiter.
// A notify that comes in between (the notifier can now take the mutex,
// set the flag and notify) finds no waiter and is lost; the waiter then
// waits for good. gt::condition_variable_any does the same two steps in
// the other order (its internal mutex first), which is the fix.
class broken_condition_variable {
public:
    void wait(std::unique_lock<gt::mutex>& lock) {
        lock.unlock();  // the bug: from here until cv_.wait, a notify is lost
        std::unique_lock<gt::mutex> hold(internal_);
        cv_.wait(hold);
        hold.unlock();
        lock.lock();
    }
    void notify_one() {
        const std::lock_guard<gt::mutex> hold(internal_);
        cv_.notify_one();
    }

private:
    gt::mutex internal_;
    gt::condition_variable cv_;
};

// One thread waits for a flag that another sets and notifies. With a
// lost wakeup the waiter never ends and main's join finds every thread
// blocked: the runtime's deadlock report aborts the process.
template <class ConditionVariable>
void handshake() {
    gt::mutex m;
    ConditionVariable cv;
    bool ready = false;
    gt::thread waiter([&] {
        std::unique_lock<gt::mutex> lock(m);
        while (!ready) cv.wait(lock);
    });
    gt::thread notifier([&] {
        {
            const std::lock_guard<gt::mutex> lock(m);
            ready = true;
        }
        cv.notify_one();
    });
    waiter.join();
    notifier.join();
}

// Runs `scenario` under `seed` in a forked child (stderr and core dumps
// off): true if it returned, false if it died (a hang of every thread is
// the deadlock report's abort, found without any timeout).
bool survives(std::uint64_t seed, void (*scenario)()) {
    const pid_t child = ::fork();
    if (child == 0) {
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        const int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, STDERR_FILENO);
        {
            const gt::debug::deterministic_schedule mode(seed);
            scenario();
        }
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

// Why: replay is the mode's point. A test that failed under one seed must
// fail the same way when run again with it, step for step.
TEST(DeterministicSchedule, TheSameSeedReplaysTheSameInterleaving) {
    const run_record first = run_with_seed(7);
    const run_record second = run_with_seed(7);
    EXPECT_GT(first.log.size(), 100u);
    EXPECT_EQ(first.log, second.log);
    EXPECT_EQ(first.taken, second.taken);
    EXPECT_EQ(first.taken.size(), 24u);
}

// Why: a search over seeds is useful only if seeds explore different
// interleavings.
TEST(DeterministicSchedule, DifferentSeedsGiveDifferentInterleavings) {
    const run_record one = run_with_seed(1);
    const run_record two = run_with_seed(2);
    EXPECT_NE(one.log, two.log);
    std::set<std::vector<int>> orders;
    for (std::uint64_t seed = 1; seed <= 8; ++seed) orders.insert(run_with_seed(seed).taken);
    EXPECT_GE(orders.size(), 2u) << "eight seeds took the numbers in one order only";
}

// Why: the mode chooses among threads of the highest READY level only;
// a pick from all levels would break strict priority (and switch_to's
// invariant) in exactly the programs one tests with it.
TEST(DeterministicSchedule, PicksOnlyAmongTheHighestReadyLevel) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        std::vector<char> order;
        gt::mutex m;
        {
            const gt::debug::deterministic_schedule mode(seed);
            std::vector<gt::thread> threads;
            auto body = [&](char who) {
                return [&, who] {
                    for (int i = 0; i < 5; ++i) {
                        const std::lock_guard<gt::mutex> hold(m);
                        order.push_back(who);
                    }
                };
            };
            threads.emplace_back(gt::thread::attributes{.priority = 10}, body('L'));
            for (int i = 0; i < 3; ++i) threads.emplace_back(gt::thread::attributes{.priority = 12}, body('H'));
            for (gt::thread& t : threads) t.join();
        }
        ASSERT_EQ(order.size(), 20u);
        const auto first_low = std::find(order.begin(), order.end(), 'L');
        EXPECT_EQ(std::count(order.begin(), first_low, 'H'), 15) << "seed " << seed << ": the low thread ran early";
    }
}

// Why: within a level the seed, not the FIFO run queue, decides who runs
// first; otherwise the mode would only ever explore round robin.
TEST(DeterministicSchedule, ThreadsOfOneLevelStartInOrdersTheSeedChooses) {
    std::set<std::vector<int>> starts;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        std::vector<int> order;
        {
            const gt::debug::deterministic_schedule mode(seed);
            std::vector<gt::thread> threads;
            for (int i = 0; i < 3; ++i) threads.emplace_back([&order, i] { order.push_back(i); });
            for (gt::thread& t : threads) t.join();
        }
        starts.insert(order);
    }
    EXPECT_GE(starts.size(), 4u) << "20 seeds started 3 threads in fewer than 4 of their 6 orders";
}

// Why: the mutexes' inline fast paths never call the runtime; the mode
// must still see every lock, try_lock and unlock, or an uncontended lock
// would be a place where no interleaving is ever tried.
TEST(DeterministicSchedule, UncontendedMutexOperationsAreSynchronizationPoints) {
    gt::mutex m;
    gt::condition_variable cv;
    {
        const gt::debug::deterministic_schedule mode(3);
        m.lock();
        m.unlock();
        ASSERT_TRUE(m.try_lock());
        m.unlock();
        cv.notify_one();
        gt::thread t([] {});
        t.join();
        gt::this_thread::yield();
    }
    std::vector<schedule_event> mine;
    const std::uint64_t main_id = gt::debug::schedule_log().front().thread_id;
    for (const schedule_step& s : gt::debug::schedule_log()) {
        if (s.thread_id == main_id && s.event != schedule_event::run) mine.push_back(s.event);
    }
    const std::vector<schedule_event> expected{schedule_event::lock,   schedule_event::unlock, schedule_event::try_lock,
                                               schedule_event::unlock, schedule_event::notify, schedule_event::create,
                                               schedule_event::join,   schedule_event::yield};
    EXPECT_EQ(mine, expected);
}

// Why: in the mode the fast paths see no owner (running_thread is nullptr),
// and a recursive mutex asks "do I own it?" on its fast path: it must
// still count its owner's locks, not report a self-deadlock.
TEST(DeterministicSchedule, RecursiveAndTimedMutexesWorkInTheMode) {
    gt::recursive_mutex r;
    gt::timed_mutex t;
    const gt::debug::deterministic_schedule mode(5);
    r.lock();
    EXPECT_TRUE(r.try_lock());
    r.lock();
    bool other_got_it = true;
    gt::thread other([&] {
        other_got_it = r.try_lock();
        const std::lock_guard<gt::recursive_mutex> hold(r);  // blocks until main's three unlocks
    });
    gt::this_thread::yield();
    r.unlock();
    r.unlock();
    r.unlock();
    other.join();
    EXPECT_FALSE(other_got_it);
    EXPECT_TRUE(t.try_lock_for(1ms));
    t.unlock();
}

// Why: mutual exclusion must hold whatever the seed chooses (the mode
// sends every lock through the slow path, which must still exclude).
TEST(DeterministicSchedule, MutualExclusionHoldsUnderManySeeds) {
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
        const gt::debug::deterministic_schedule mode(seed);
        gt::mutex m;
        long count = 0;
        std::vector<gt::thread> threads;
        for (int i = 0; i < 4; ++i) {
            threads.emplace_back([&] {
                for (int k = 0; k < 100; ++k) {
                    const std::lock_guard<gt::mutex> hold(m);
                    const long seen = count;
                    gt::this_thread::yield();  // a switch here loses an increment unless the mutex excludes
                    count = seen + 1;
                }
            });
        }
        for (gt::thread& t : threads) t.join();
        EXPECT_EQ(count, 400) << "seed " << seed;
    }
}

// Why: the timer would switch at instants no seed chose; the mode turns
// preemption off, and the program's time slice must come back after it.
TEST(DeterministicSchedule, PreemptionIsOffWhileOnAndItsSliceComesBack) {
    const preemption_for_test preemption(100us);
    {
        const gt::debug::deterministic_schedule mode(11);
        EXPECT_EQ(gt::time_slice(), 0us);
        EXPECT_EQ(gt::debug::schedule_seed(), 11u);
    }
    EXPECT_EQ(gt::time_slice(), 100us);
    EXPECT_EQ(gt::debug::schedule_seed(), 0u);
}

// Why: a whole test binary runs in the mode from the environment, so
// `GT_SCHEDULE_SEED=n ./test` replays what a failing run printed.
TEST(DeterministicSchedule, TheSeedComesFromTheEnvironmentWhenASchedulerStarts) {
    ::setenv("GT_SCHEDULE_SEED", "42", 1);
    std::uint64_t seed = 0;
    std::chrono::microseconds slice{-1};
    std::thread os_thread([&] {  // a new OS thread: its first gt call creates its scheduler
        seed = gt::debug::schedule_seed();
        slice = gt::time_slice();
    });
    os_thread.join();
    ::unsetenv("GT_SCHEDULE_SEED");
    EXPECT_EQ(seed, 42u);
    EXPECT_EQ(slice, 0us);
}

// Why: 0 means "off"; a guard given 0 would silently test nothing.
TEST(DeterministicSchedule, AGuardRefusesSeedZero) {
    EXPECT_THROW(gt::debug::deterministic_schedule(0), std::invalid_argument);
}

// Why: the walkthrough's claim. Searching seeds finds the lost wakeup of a
// condition variable that releases the mutex before it waits, the failing
// seed fails again when replayed, and the real condition variable never
// fails under the same seeds.
TEST(DeterministicSchedule, ASeedSearchFindsALostWakeupThatTheRealConditionVariableNeverHas) {
    constexpr std::uint64_t seeds = 200;
    std::uint64_t found = 0;
    for (std::uint64_t seed = 1; seed <= seeds && found == 0; ++seed) {
        if (!survives(seed, handshake<broken_condition_variable>)) found = seed;
    }
    ASSERT_NE(found, 0u) << "no seed of 1.." << seeds << " lost the wakeup";
    EXPECT_FALSE(survives(found, handshake<broken_condition_variable>)) << "seed " << found << " did not replay";
    for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
        EXPECT_TRUE(survives(seed, handshake<gt::condition_variable>)) << "seed " << seed;
        EXPECT_TRUE(survives(seed, handshake<gt::condition_variable_any>)) << "seed " << seed;
    }
}

namespace {

constexpr std::uint64_t primitive_seeds = 50;

// The events the thread that appears first in the log (the scenario's
// main thread) logged, `run` steps left out.
std::vector<schedule_event> main_threads_events() {
    const std::vector<schedule_step> log = gt::debug::schedule_log();
    std::vector<schedule_event> mine;
    if (log.empty()) return mine;
    for (const schedule_step& s : log) {
        if (s.thread_id == log.front().thread_id && s.event != schedule_event::run) mine.push_back(s.event);
    }
    return mine;
}

// How many steps of the last run's log are `what`.
long logged(schedule_event what) {
    const std::vector<schedule_step> log = gt::debug::schedule_log();
    return std::count_if(log.begin(), log.end(), [what](const schedule_step& s) { return s.event == what; });
}

// Two senders put 0..19 and 100..119 through a channel of `capacity`, two
// receivers take until it is closed (main closes it once both senders are
// done). Returns what each receiver took, in order.
std::vector<std::vector<int>> two_by_two_channel(std::size_t capacity) {
    gt::channel<int> ch(capacity);
    std::vector<std::vector<int>> taken(2);
    std::vector<gt::thread> senders;
    std::vector<gt::thread> receivers;
    for (int s = 0; s < 2; ++s) {
        senders.emplace_back([&ch, s] {
            for (int i = 0; i < 20; ++i) {
                if (i % 4 == 3) {
                    while (!ch.try_send(s * 100 + i)) gt::this_thread::yield();
                } else {
                    ch.send(s * 100 + i);
                }
            }
        });
    }
    for (int r = 0; r < 2; ++r) {
        receivers.emplace_back([&ch, &taken, r] {
            while (std::optional<int> v = ch.receive()) taken[r].push_back(*v);
        });
    }
    for (gt::thread& t : senders) t.join();
    ch.close();
    for (gt::thread& t : receivers) t.join();
    return taken;
}

}  // namespace

// Why: the mode switches only at sync points, so an operation without one
// is a place where no interleaving is ever tried; and a test reads the log
// to see what a seed did. Each operation of each primitive logs its event,
// once, whether it blocks or not (with one thread nothing switches).
TEST(DeterministicSchedule, EveryPrimitivesOperationsAreLoggedSynchronizationPoints) {
    gt::shared_timed_mutex rw;
    gt::counting_semaphore<2> sem(0);
    gt::barrier<> barrier(1);
    gt::latch latch(1);
    gt::once_flag once;
    gt::channel<int> ch(1);
    int calls = 0;
    {
        const gt::debug::deterministic_schedule mode(13);
        rw.lock();
        rw.unlock();
        ASSERT_TRUE(rw.try_lock());
        EXPECT_FALSE(rw.try_lock_shared());
        rw.unlock();
        rw.lock_shared();
        EXPECT_FALSE(rw.try_lock());
        rw.unlock_shared();
        ASSERT_TRUE(rw.try_lock_shared());
        rw.unlock_shared();
        ASSERT_TRUE(rw.try_lock_for(1ms));
        rw.unlock();
        ASSERT_TRUE(rw.try_lock_shared_for(1ms));
        rw.unlock_shared();
        sem.release(2);
        sem.acquire();
        EXPECT_TRUE(sem.try_acquire());
        EXPECT_FALSE(sem.try_acquire_for(0ms));
        barrier.arrive_and_wait();
        EXPECT_FALSE(latch.try_wait());
        latch.count_down();
        latch.wait();
        gt::call_once(once, [&] { ++calls; });
        gt::call_once(once, [&] { ++calls; });
        ch.send(1);
        EXPECT_FALSE(ch.try_send(2));
        EXPECT_EQ(ch.receive(), 1);
        EXPECT_EQ(ch.try_receive(), std::nullopt);
        ch.close();
    }
    EXPECT_EQ(calls, 1);
    using e = schedule_event;
    const std::vector<schedule_event> expected{
        e::lock,        e::unlock,      e::try_lock,    e::try_lock_shared, e::unlock, e::lock_shared,
        e::try_lock,    e::unlock_shared, e::try_lock_shared, e::unlock_shared, e::lock, e::unlock,
        e::lock_shared, e::unlock_shared, e::release,   e::acquire,         e::try_acquire, e::acquire,
        e::arrive,      e::wait,        e::wait,        e::arrive,          e::wait,   e::call_once,
        e::call_once,   e::call_once,   e::send,        e::send,            e::receive, e::receive,
        e::close};
    EXPECT_EQ(main_threads_events(), expected);
    for (const schedule_event what : expected) {
        EXPECT_STRNE(gt::debug::to_string(what), "?") << static_cast<int>(what);
    }
}

// Why: before an OS thread's first gt call running_thread is nullptr too,
// with the mode off: the fast paths that now test it must still do their
// work from such a thread (the slow paths adopt it, or need no scheduler).
TEST(DeterministicSchedule, PrimitivesWorkAsAnOSThreadsFirstGtCall) {
    gt::shared_mutex rw;
    gt::counting_semaphore<> sem(1);
    gt::latch latch(1);
    gt::once_flag once;
    int calls = 0;
    bool ok = true;
    auto first_call = [&](auto&& operation) {
        std::thread os_thread([&] { ok = operation() && ok; });
        os_thread.join();
    };
    first_call([&] { return rw.try_lock_shared(); });
    first_call([&] { return !rw.try_lock(); });  // the reader above holds it
    rw.unlock_shared();
    first_call([&] {
        if (!rw.try_lock()) return false;
        rw.unlock();
        rw.lock_shared();
        rw.unlock_shared();
        return true;
    });
    first_call([&] { return sem.try_acquire() && !sem.try_acquire(); });
    first_call([&] {
        sem.release();
        sem.acquire();
        return true;
    });
    first_call([&] { return !latch.try_wait(); });
    first_call([&] {
        latch.count_down();
        latch.wait();
        return latch.try_wait();
    });
    first_call([&] {
        gt::call_once(once, [&] { ++calls; });
        return true;
    });
    first_call([&] {
        gt::call_once(once, [&] { ++calls; });
        return true;
    });
    EXPECT_TRUE(ok);
    EXPECT_EQ(calls, 1);
}

// Why: a reader-writer lock must exclude writers from each other and from
// readers whatever the interleaving; each writer's increment is split by
// a sync point, so a second writer or a reader inside would show.
TEST(DeterministicSchedule, SharedMutexExcludesWritersWithExactCountsUnderManySeeds) {
    int most_readers_of_all = 0;
    for (std::uint64_t seed = 1; seed <= primitive_seeds; ++seed) {
        gt::shared_timed_mutex rw;
        long count = 0;
        int writers_inside = 0, readers_inside = 0, most_readers = 0;
        bool overlap = false;
        {
            const gt::debug::deterministic_schedule mode(seed);
            std::vector<gt::thread> threads;
            for (int w = 0; w < 2; ++w) {
                threads.emplace_back([&, w] {
                    for (int k = 0; k < 25; ++k) {
                        if (k % 5 == 4 && w == 1) {
                            while (!rw.try_lock()) gt::this_thread::yield();
                        } else {
                            rw.lock();
                        }
                        overlap = overlap || writers_inside > 0 || readers_inside > 0;
                        ++writers_inside;
                        const long seen = count;
                        gt::this_thread::yield();  // lost increments, unless writers exclude
                        count = seen + 1;
                        --writers_inside;
                        rw.unlock();
                    }
                });
            }
            for (int r = 0; r < 3; ++r) {
                threads.emplace_back([&, r] {
                    for (int k = 0; k < 15; ++k) {
                        if (r == 2) {
                            while (!rw.try_lock_shared()) gt::this_thread::yield();
                        } else {
                            rw.lock_shared();
                        }
                        overlap = overlap || writers_inside > 0;
                        most_readers = std::max(most_readers, ++readers_inside);
                        const long seen = count;
                        gt::this_thread::yield();
                        overlap = overlap || count != seen;  // a writer got in meanwhile
                        --readers_inside;
                        rw.unlock_shared();
                    }
                });
            }
            for (gt::thread& t : threads) t.join();
        }
        EXPECT_EQ(count, 50) << "seed " << seed;
        EXPECT_FALSE(overlap) << "seed " << seed;
        most_readers_of_all = std::max(most_readers_of_all, most_readers);
        EXPECT_GT(logged(schedule_event::lock_shared), 0) << "seed " << seed;
        EXPECT_GT(logged(schedule_event::unlock_shared), 0) << "seed " << seed;
        EXPECT_GT(logged(schedule_event::lock), 0) << "seed " << seed;
    }
    EXPECT_GE(most_readers_of_all, 2) << "no seed had two readers inside at once";
}

// Why: Go's rule, under every interleaving the seeds pick: the readers
// queued behind a writer all get in when it unlocks, even though another
// writer waits too. Each admitted reader then waits at a latch for the
// other two while holding the lock, which only readers admitted together
// can pass (readers let in one by one would deadlock there, and the
// runtime's deadlock report would end the test). The waiting writer gets
// the lock after all three.
TEST(DeterministicSchedule, AWritersUnlockAdmitsEveryQueuedReaderUnderManySeeds) {
    for (std::uint64_t seed = 1; seed <= primitive_seeds; ++seed) {
        gt::shared_mutex rw;
        gt::latch all_inside(3);
        std::string order;
        {
            const gt::debug::deterministic_schedule mode(seed);
            rw.lock();
            std::vector<gt::thread> threads;
            for (int r = 0; r < 3; ++r) {
                threads.emplace_back([&] {
                    const std::shared_lock<gt::shared_mutex> hold(rw);
                    order += 'R';
                    all_inside.arrive_and_wait();
                });
            }
            while (blocked_on("shared mutex") != 3) gt::this_thread::yield();
            threads.emplace_back([&] {
                const std::unique_lock<gt::shared_mutex> hold(rw);
                order += 'W';
            });
            while (blocked_on("shared mutex") != 4) gt::this_thread::yield();
            rw.unlock();
            for (gt::thread& t : threads) t.join();
        }
        EXPECT_EQ(order, "RRRW") << "seed " << seed;
        EXPECT_EQ(logged(schedule_event::arrive), 3) << "seed " << seed;
    }
}

// Why: a barrier's phases must not mix whatever the interleaving: the
// completion runs once per phase, after every arrival of that phase and
// before any waiter of it returns; arrive_and_drop lowers later phases'
// count.
TEST(DeterministicSchedule, BarrierPhasesAndOneCompletionPerPhaseUnderManySeeds) {
    constexpr int phases = 5;
    for (std::uint64_t seed = 1; seed <= primitive_seeds; ++seed) {
        std::vector<int> arrived(phases, 0);
        int completions = 0;
        bool wrong = false;
        const auto expected_in = [](int phase) { return phase <= 2 ? 4 : 3; };  // one thread drops in phase 2
        auto on_completion = [&]() noexcept {
            wrong = wrong || arrived[completions] != expected_in(completions);
            ++completions;
        };
        gt::barrier<decltype(on_completion)> barrier(4, on_completion);
        {
            const gt::debug::deterministic_schedule mode(seed);
            std::vector<gt::thread> threads;
            for (int i = 0; i < 4; ++i) {
                threads.emplace_back([&, i] {
                    for (int p = 0; p < phases; ++p) {
                        ++arrived[p];
                        if (i == 3 && p == 2) {
                            barrier.arrive_and_drop();
                            return;
                        }
                        barrier.arrive_and_wait();
                        wrong = wrong || completions != p + 1;  // its phase, and only its phase, has ended
                    }
                });
            }
            for (gt::thread& t : threads) t.join();
        }
        EXPECT_FALSE(wrong) << "seed " << seed;
        EXPECT_EQ(completions, phases) << "seed " << seed;
        EXPECT_EQ(logged(schedule_event::arrive), 3 * phases + 3) << "seed " << seed;
    }
}

// Why: a semaphore of 2 must let at most 2 threads in at once and lose no
// unit whatever the interleaving (a release hands its unit to a waiter).
TEST(DeterministicSchedule, SemaphoreCountsExactlyUnderManySeeds) {
    for (std::uint64_t seed = 1; seed <= primitive_seeds; ++seed) {
        gt::counting_semaphore<> sem(2);
        int inside = 0, most_inside = 0, entries = 0;
        {
            const gt::debug::deterministic_schedule mode(seed);
            std::vector<gt::thread> threads;
            for (int i = 0; i < 4; ++i) {
                threads.emplace_back([&, i] {
                    for (int k = 0; k < 20; ++k) {
                        if (i == 3) {
                            while (!sem.try_acquire()) gt::this_thread::yield();
                        } else {
                            sem.acquire();
                        }
                        most_inside = std::max(most_inside, ++inside);
                        ++entries;
                        gt::this_thread::yield();
                        --inside;
                        sem.release();
                    }
                });
            }
            for (gt::thread& t : threads) t.join();
        }
        EXPECT_LE(most_inside, 2) << "seed " << seed;
        EXPECT_EQ(entries, 80) << "seed " << seed;
        EXPECT_TRUE(sem.try_acquire()) << "seed " << seed;
        EXPECT_TRUE(sem.try_acquire()) << "seed " << seed;
        EXPECT_FALSE(sem.try_acquire()) << "seed " << seed << ": a unit too many";
        EXPECT_GT(logged(schedule_event::acquire), 0) << "seed " << seed;
        EXPECT_EQ(logged(schedule_event::release), 80) << "seed " << seed;
    }
}

// Why: call_once runs its function once whatever the interleaving, every
// caller returns after it has run, and a function that throws lets the
// next caller run its own. The sync point at the end of a run lets the
// seeds put the other callers there, blocked, while it runs.
TEST(DeterministicSchedule, CallOnceRunsOnceUnderManySeeds) {
    std::uint64_t seeds_where_one_waited = 0;
    for (std::uint64_t seed = 1; seed <= primitive_seeds; ++seed) {
        gt::once_flag flag;
        int runs = 0, successes = 0;
        bool early = false;
        int most_blocked = 0;
        {
            const gt::debug::deterministic_schedule mode(seed);
            std::vector<gt::thread> threads;
            for (int i = 0; i < 4; ++i) {
                threads.emplace_back([&] {
                    try {
                        gt::call_once(flag, [&] {
                            most_blocked = std::max(most_blocked, blocked_on("call_once"));
                            if (++runs == 1) throw std::runtime_error("the first run fails");
                            ++successes;
                        });
                        early = early || successes != 1;
                    } catch (const std::runtime_error&) {
                    }
                });
            }
            for (gt::thread& t : threads) t.join();
        }
        EXPECT_EQ(runs, 2) << "seed " << seed;
        EXPECT_EQ(successes, 1) << "seed " << seed;
        EXPECT_FALSE(early) << "seed " << seed << ": a caller returned before the function had";
        EXPECT_EQ(logged(schedule_event::call_once), 4 + 2) << "seed " << seed;  // 4 calls, 2 runs ended
        if (most_blocked > 0) ++seeds_where_one_waited;
    }
    EXPECT_GT(seeds_where_one_waited, 0u) << "no seed had a caller wait for a running call_once";
}

// Why: a channel between two senders and two receivers delivers every
// value exactly once, each sender's values in the order sent, whatever
// the interleaving, buffered or as a rendezvous.
TEST(DeterministicSchedule, AChannelDeliversEveryValueOnceTwoByTwoUnderManySeeds) {
    for (std::uint64_t seed = 1; seed <= primitive_seeds; ++seed) {
        std::vector<std::vector<int>> taken;
        {
            const gt::debug::deterministic_schedule mode(seed);
            taken = two_by_two_channel(seed % 3);  // capacities 0, 1 and 2
        }
        std::vector<int> all;
        for (const std::vector<int>& one : taken) {
            for (int s = 0; s < 2; ++s) {  // per sender, a receiver sees its values in order
                std::vector<int> from;
                for (int v : one) {
                    if (v / 100 == s) from.push_back(v);
                }
                EXPECT_TRUE(std::is_sorted(from.begin(), from.end())) << "seed " << seed;
            }
            all.insert(all.end(), one.begin(), one.end());
        }
        std::sort(all.begin(), all.end());
        std::vector<int> expected;
        for (int s = 0; s < 2; ++s) {
            for (int i = 0; i < 20; ++i) expected.push_back(s * 100 + i);
        }
        EXPECT_EQ(all, expected) << "seed " << seed;
        EXPECT_GE(logged(schedule_event::send), 40) << "seed " << seed;
        EXPECT_GE(logged(schedule_event::receive), 42) << "seed " << seed;
        EXPECT_EQ(logged(schedule_event::close), 1) << "seed " << seed;
    }
}

// Why: replay with the newer primitives too: a channel scenario run twice
// with one seed takes the same steps and hands each receiver the same
// values; and the seeds do not all agree.
TEST(DeterministicSchedule, TheSameSeedReplaysAChannelScenario) {
    auto run = [](std::uint64_t seed) {
        std::vector<std::vector<int>> taken;
        {
            const gt::debug::deterministic_schedule mode(seed);
            taken = two_by_two_channel(1);
        }
        EXPECT_EQ(gt::debug::schedule_log_dropped(), 0u);
        return std::make_pair(normalised(gt::debug::schedule_log()), taken);
    };
    const auto first = run(17);
    const auto second = run(17);
    EXPECT_GT(first.first.size(), 100u);
    EXPECT_EQ(first.first, second.first);
    EXPECT_EQ(first.second, second.second);
    std::set<std::vector<std::vector<int>>> splits;
    for (std::uint64_t seed = 1; seed <= 8; ++seed) splits.insert(run(seed).second);
    EXPECT_GE(splits.size(), 2u) << "eight seeds split the values between the receivers one way only";
}

// Why: the mode turns preemption off, so a thread that polls a try_
// operation without yielding would spin for ever unless the poll itself
// is a sync point; each poll below gives the other thread its chance.
TEST(DeterministicSchedule, PollingATryOperationLetsOtherThreadsRun) {
    constexpr int bound = 100'000;  // a poll that never switched would use them all
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
        gt::counting_semaphore<> sem(0);
        gt::latch latch(1);
        gt::shared_mutex rw;
        gt::channel<int> ch(1);
        int polls_left = 0;
        {
            const gt::debug::deterministic_schedule mode(seed);
            gt::thread other([&] {
                rw.lock();
                sem.release();
                latch.count_down();
                rw.unlock();
                ch.send(1);
            });
            int k = 0;
            while (k < bound && !sem.try_acquire()) ++k;  // only `other` can end this poll
            while (k < bound && !rw.try_lock_shared()) ++k;
            if (k < bound) rw.unlock_shared();
            while (k < bound && !latch.try_wait()) ++k;
            std::optional<int> v;
            while (k < bound && !(v = ch.try_receive())) ++k;
            polls_left = bound - k;
            other.join();
        }
        EXPECT_GT(polls_left, 0) << "seed " << seed;
    }
}
