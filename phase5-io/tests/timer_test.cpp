// gt::timer and gt::on_idle: callbacks on the callback thread ("gt-timers"),
// periods counted from the scheduled deadline, cancel and destruction at
// every moment of a callback's life, idle callbacks that cost no CPU.
// Assertions hold on a loaded machine: "never early" is exact (a deadline
// is compared with the clock read inside the callback), lateness bounds are
// seconds, periods are checked on the scheduled deadlines the callbacks are
// told, and idleness on the OS thread's CPU time.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "gt/deterministic.hpp"
#include "gt/io.hpp"
#include "gt/mutex.hpp"
#include "gt/preemption.hpp"
#include "gt/semaphore.hpp"
#include "gt/thread.hpp"
#include "gt/timer.hpp"
#include "scheduler.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// Sleeps in steps until `done()` or 30 s pass: false then (a hang fails the
// test instead of blocking it).
template <typename Done>
bool wait_until(Done done, std::chrono::milliseconds step = 1ms) {
    const auto give_up = steady::now() + 30s;
    while (!done()) {
        if (steady::now() > give_up) return false;
        gt::this_thread::sleep_for(step);
    }
    return true;
}

std::size_t threads_alive() { return gt::detail::scheduler::current().thread_count(); }

std::int64_t thread_cpu_ns() {
    rusage usage{};
    ::getrusage(RUSAGE_THREAD, &usage);
    return (std::int64_t{usage.ru_utime.tv_sec} + usage.ru_stime.tv_sec) * 1'000'000'000 +
           (std::int64_t{usage.ru_utime.tv_usec} + usage.ru_stime.tv_usec) * 1'000;
}

// Why: the basic promise: a timer runs its callback once, never before its
// deadline, on the callback thread (not on the scheduler's path, not on
// the thread that made it); and the callback thread ends once nothing needs
// it, so it never keeps a scheduler alive.
TEST(Timer, OneShotRunsOnceNeverEarlyOnTheCallbackThread) {
    const std::size_t before = threads_alive();
    std::atomic<int> calls{0};
    std::string name;
    steady::time_point ran{};
    const auto deadline = steady::now() + 5ms;
    gt::timer t(deadline, [&] {
        ran = steady::now();
        name = gt::this_thread::get_name();
        ++calls;
    });
    EXPECT_TRUE(t.pending());
    ASSERT_TRUE(wait_until([&] { return calls.load() == 1; }));
    gt::this_thread::sleep_for(10ms);
    EXPECT_EQ(calls.load(), 1);
    EXPECT_GE(ran, deadline) << "a timer never fires early";
    EXPECT_EQ(name, "gt-timers");
    EXPECT_FALSE(t.pending());
    EXPECT_EQ(t.fired(), 1u);
    EXPECT_EQ(threads_alive(), before) << "the callback thread ended when nothing needed it";
}

// Why: the ordering and lateness check, at the scale of a server's
// per-connection timeouts: many timers with random deadlines fire each
// exactly once, in deadline order (equal deadlines in creation order),
// never early; lateness is reported and bounded only against gross errors.
TEST(Timer, ManyTimersFireInDeadlineOrderNeverEarly) {
    constexpr int count = 2000;
    std::mt19937 random(42);
    // The first deadline comes after the last timer is made, or the order
    // is not checkable: a round that took longer (a loaded machine under
    // ASan) runs again with ten times the margin.
    for (const auto margin : {300ms, 3000ms}) {
        const auto start = steady::now() + margin;
        std::vector<steady::time_point> deadlines(count);
        std::vector<int> order;
        std::vector<std::int64_t> late_ns;
        order.reserve(count);
        late_ns.reserve(count);
        int early = 0;
        std::vector<gt::timer> timers;
        timers.reserve(count);
        for (int i = 0; i < count; ++i) {
            deadlines[i] = start + std::chrono::microseconds(random() % 50'000);
            timers.emplace_back(deadlines[i], [&, i] {
                const auto now = steady::now();
                if (now < deadlines[i]) ++early;
                late_ns.push_back((now - deadlines[i]).count());
                order.push_back(i);
            });
        }
        const bool made_in_time = steady::now() < start;
        ASSERT_TRUE(wait_until([&] { return order.size() == count; }));
        if (!made_in_time && margin != 3000ms) continue;
        ASSERT_TRUE(made_in_time) << "making 2000 timers took more than 3 s";
        EXPECT_EQ(early, 0);
        std::vector<int> expected(count);
        for (int i = 0; i < count; ++i) expected[i] = i;
        std::stable_sort(expected.begin(), expected.end(), [&](int a, int b) { return deadlines[a] < deadlines[b]; });
        EXPECT_EQ(order, expected);
        std::sort(late_ns.begin(), late_ns.end());
        std::printf("lateness of %d timers: median %.3f ms, p99 %.3f ms, max %.3f ms\n", count,
                    late_ns[count / 2] / 1e6, late_ns[count * 99 / 100] / 1e6, late_ns.back() / 1e6);
        EXPECT_LT(late_ns.back(), std::int64_t{5'000'000'000}) << "a gross error: seconds late";
        for (auto& t : timers) EXPECT_FALSE(t.pending());
        break;
    }
}

// Why: expired timers are checked before the run queue (at every tick,
// switch and yield), so a timer fires while threads are always READY: two
// spinners of the default priority never sleep, and the timer still fires
// (the spinners would spin on until it does; 30 s bound a hang).
TEST(Timer, FiresWhileThreadsAreAlwaysReady) {
    std::atomic<bool> fired{false};
    const auto deadline = steady::now() + 20ms;
    steady::time_point ran{};
    gt::timer t(deadline, [&] {
        ran = steady::now();
        fired = true;
    });
    std::atomic<std::uint64_t> spins{0};
    auto spin = [&] {
        const auto give_up = steady::now() + 30s;
        while (!fired && steady::now() < give_up) spins.fetch_add(1, std::memory_order_relaxed);
    };
    gt::thread a(spin), b(spin);
    a.join();
    b.join();
    ASSERT_TRUE(fired.load());
    EXPECT_GE(ran, deadline);
    std::printf("a timer among two spinners was %.3f ms late\n", std::chrono::duration<double, std::milli>(ran - deadline).count());
}

// Why: the drift check of tinygo-org/tinygo#5525: a period counts from the
// scheduled deadline, so the k-th firing is scheduled at first + k * period
// exactly, however late each callback runs and however long it takes (here
// it burns 3 of every 10 ms); and every period of the second is accounted
// for, as a firing or as a missed one, none twice.
TEST(Timer, PeriodicDeadlinesAreExactMultiplesOfThePeriod) {
    constexpr auto period = 10ms;
    std::vector<steady::time_point> scheduled;
    scheduled.reserve(200);
    const auto first = steady::now() + period;
    gt::timer t(first, gt::timer::callback_at([&](steady::time_point at) {
                    scheduled.push_back(at);
                    const auto until = steady::now() + 3ms;
                    while (steady::now() < until) {
                    }
                }),
                period);
    gt::this_thread::sleep_until(first + 1s);
    ASSERT_TRUE(t.cancel());
    const auto cancelled = steady::now();
    const std::uint64_t fired = t.fired(), missed = t.missed();
    ASSERT_FALSE(scheduled.empty());
    ASSERT_EQ(scheduled.size(), fired);
    std::int64_t last_k = -1;
    for (const auto at : scheduled) {
        const auto since_first = at - first;
        ASSERT_EQ(since_first % period, steady::duration::zero()) << "a scheduled deadline off the period's grid";
        const std::int64_t k = since_first / period;
        ASSERT_GT(k, last_k) << "scheduled deadlines only move forward";
        last_k = k;
    }
    // Every deadline first + k * period that passed before the cancel is
    // counted once, as fired or missed, except at most one that was due and
    // waiting when the cancel took it back; the 101 of the second had all
    // passed when main woke (its deadline is the last one's, and it went to
    // sleep first).
    const auto passed = static_cast<std::uint64_t>((cancelled - first) / period) + 1;
    EXPECT_GE(fired + missed, static_cast<std::uint64_t>(last_k + 1));
    EXPECT_LE(fired + missed, passed) << "no period is counted twice";
    EXPECT_GE(fired + missed, 100u) << "the 101 deadlines of the second, less one taken back";
    std::printf("periodic 10 ms over 1 s: %llu fired, %llu missed\n", static_cast<unsigned long long>(fired),
                static_cast<unsigned long long>(missed));
}

// Why: missed periods are skipped, not bunched: while the callback thread
// is blocked (here in the first callback for 52.5 ms of a 5 ms period),
// at most one firing waits; after the block exactly one firing whose
// deadline passed during it runs, and the others count as missed.
TEST(Timer, MissedPeriodsAreSkippedNotBunched) {
    constexpr auto period = 5ms;
    std::vector<steady::time_point> scheduled;
    steady::time_point block_end{}, first_ran{};
    gt::timer t(1ms, gt::timer::callback_at([&](steady::time_point at) {
                    scheduled.push_back(at);
                    if (scheduled.size() == 1) {
                        first_ran = steady::now();
                        block_end = at + 52'500us;
                        gt::this_thread::sleep_until(block_end);
                    }
                }),
                period);
    ASSERT_TRUE(wait_until([&] { return scheduled.size() >= 4; }));
    t.cancel();
    int caught_up = 0;  // firings after the block whose deadline passed during it
    for (std::size_t i = 1; i < scheduled.size(); ++i) caught_up += scheduled[i] < block_end ? 1 : 0;
    EXPECT_LE(caught_up, 1) << "bunched";
    // A deadline passed while the first callback ran (unless the machine
    // stalled it past the block): that one waited, and ran after.
    if (first_ran < block_end - period) {
        EXPECT_EQ(caught_up, 1);
    }
    EXPECT_EQ((scheduled[1] - scheduled[0]) % period, steady::duration::zero()) << "on the period's grid";
    // The ten deadlines of the block, first + 5 ms ... first + 50 ms: one
    // ran after it, the others were skipped.
    EXPECT_GE(t.missed(), 9u);
}

// Why: cancel stops what has not started: a cancelled timer never runs;
// cancel says whether a firing was pending; a periodic timer that cancels
// itself from its callback runs exactly that many times.
TEST(Timer, CancelStopsFiringsIncludingFromTheCallback) {
    std::atomic<int> never{0};
    gt::timer a(5ms, [&] { ++never; });
    EXPECT_TRUE(a.cancel());
    EXPECT_FALSE(a.cancel());
    EXPECT_FALSE(a.pending());

    int calls = 0;
    gt::timer b(
        1ms,
        [&] {
            if (++calls == 3) b.cancel();
        },
        1ms);
    ASSERT_TRUE(wait_until([&] { return !b.pending(); }));
    gt::this_thread::sleep_for(20ms);
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(never.load(), 0);
}

// Why: restart semantics (libuv's uv_timer_start on an active timer): a
// new start replaces the pending firing, also from inside the callback,
// which is how a one-shot timer re-arms itself.
TEST(Timer, StartReplacesThePendingFiringAndReArmsFromTheCallback) {
    int calls = 0;
    gt::timer t(1h, [&] {
        if (++calls < 5) t.start(1ms);
    });
    t.start(1ms);  // replaces the hour
    ASSERT_TRUE(wait_until([&] { return calls == 5 && !t.pending(); }));
    gt::this_thread::sleep_for(10ms);
    EXPECT_EQ(calls, 5);
}

// Why: a timer destroyed by its own callback (the object that owns it is
// deleted there) must not free the callback it is running; ASan checks
// that the captures stay valid until the callback returns.
TEST(Timer, DestroyedInsideItsOwnCallbackIsSafe) {
    std::atomic<bool> done{false};
    std::unique_ptr<gt::timer> owner;
    const std::string text = "still here";
    {
        const gt::this_thread::disable_preemption no_tick;  // owner is set before the callback can run
        owner = std::make_unique<gt::timer>(1ms, [&owner, &done, copy = text] {
            owner.reset();                    // destroys this timer
            gt::this_thread::sleep_for(1ms);  // and goes on running, on its captures
            if (copy == "still here") done = true;
        });
    }
    ASSERT_TRUE(wait_until([&] { return done.load(); }));
    EXPECT_EQ(owner, nullptr);
}

// Why: destroying a timer whose callback runs (blocked in a sleep) from
// another green thread waits for the callback to return, so what it uses
// outlives it (Linux's del_timer_sync); cancel() instead returns at once.
TEST(Timer, DestroyedWhileItsCallbackRunsWaitsForIt) {
    std::atomic<int> stage{0};
    auto t = std::make_unique<gt::timer>(1ms, [&] {
        stage = 1;
        gt::this_thread::sleep_for(20ms);
        stage = 2;
    });
    ASSERT_TRUE(wait_until([&] { return stage.load() == 1; }));
    EXPECT_TRUE(t->running());
    EXPECT_FALSE(t->cancel());  // nothing pending; returns although the callback runs
    EXPECT_EQ(stage.load(), 1);
    t.reset();
    EXPECT_EQ(stage.load(), 2) << "the destructor returned before the callback";
}

// Why: with ticks every 100 µs, a timer's expiry (inside the scheduler,
// perhaps in the SIGALRM handler) lands between any two steps of start,
// cancel and destroy on other green threads, and callbacks that block
// let them find timers running and due. Whatever the interleaving: no callback runs after
// cancel() or the destructor returned, fired() counts exactly the
// callbacks started, and the callback thread ends once nothing is pending
// (a pending count off by one would keep it alive, or end it early).
TEST(Timer, StartCancelAndDestroyRacingWithExpiryLoseNothing) {
    struct slot {
        std::unique_ptr<gt::timer> t;
        std::atomic<int> entries{0};
        std::atomic<bool> closed{false};  // cancelled or destroyed: no callback may start
    };
    constexpr int workers = 3;
    constexpr int slots_per_worker = 8;
    constexpr int steps = 4000;
    const std::size_t before = threads_alive();
    std::atomic<int> late_callbacks{0};
    std::atomic<int> miscounted{0};
    std::atomic<int> callbacks{0};
    std::vector<gt::thread> threads;
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back([&, w] {
            std::mt19937 rng(static_cast<unsigned>(w) + 1);
            slot slots[slots_per_worker];
            for (int step = 0; step < steps; ++step) {
                slot& s = slots[rng() % slots_per_worker];
                const auto delay = std::chrono::microseconds(rng() % 300);
                switch (rng() % 4) {
                    case 0: {  // a new timer, maybe periodic; its callback may block
                        s.t.reset();
                        s.closed = false;
                        s.entries = 0;
                        const bool blocks = rng() % 2 == 0;
                        const auto period = rng() % 3 == 0 ? std::chrono::microseconds(50) : 0us;
                        s.t = std::make_unique<gt::timer>(
                            delay,
                            [&s, &late_callbacks, &callbacks, blocks] {
                                if (s.closed) ++late_callbacks;
                                ++s.entries;
                                ++callbacks;
                                // Blocked, it lets the workers run: they find
                                // it running and others due behind it.
                                if (blocks) gt::this_thread::sleep_for(20us);
                            },
                            period);
                        break;
                    }
                    case 1:  // restart
                        if (s.t) {
                            s.closed = false;
                            s.t->start(delay, rng() % 2 == 0 ? std::chrono::microseconds(70) : 0us);
                        }
                        break;
                    case 2:  // cancel; a callback that runs now may finish
                        if (s.t) {
                            s.t->cancel();
                            s.closed = !s.t->running();
                            if (!s.t->running() && s.t->fired() != static_cast<std::uint64_t>(s.entries)) {
                                ++miscounted;
                            }
                        }
                        break;
                    default:  // destroy: waits for a running callback
                        if (s.t) {
                            s.t.reset();
                            s.closed = true;
                        }
                        break;
                }
                if (step % 16 == 0) gt::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
            }
            for (slot& s : slots) {
                s.t.reset();
                s.closed = true;
            }
        });
    }
    for (gt::thread& t : threads) t.join();
    EXPECT_EQ(late_callbacks.load(), 0) << "a callback started after cancel() or the destructor returned";
    EXPECT_EQ(miscounted.load(), 0) << "fired() differs from the callbacks started";
    EXPECT_GT(callbacks.load(), 100) << "few timers fired: the test did not test";
    std::printf("start, cancel and destroy racing with expiry: %d callbacks\n", callbacks.load());
    EXPECT_TRUE(wait_until([&] { return threads_alive() == before; })) << "the callback thread did not end";
}

// Why: a thread of the callback thread's own priority is not preempted by
// it, so the callback thread's end (nothing pending after a cancel or a
// last firing) and a new start() interleave at every tick and yield: the
// start may find the thread woken to end, gone, or still in its last
// steps after a new one was made; and under the deterministic mode, a new
// callback thread may run before the start() that made it arms its timer.
// No timer may be lost: every timer whose cancel() found nothing pending
// has fired exactly once, and the callback thread ends at last.
void start_while_the_callback_thread_ends(std::uint64_t seed, int iterations) {
    const std::size_t before = threads_alive();
    std::atomic<int> fired{0};
    int expected = 0;
    gt::thread::attributes attrs;
    attrs.priority = gt::highest_priority;
    const auto give_up = steady::now() + 60s;  // a lost timer fails the test instead of hanging it
    gt::thread worker(attrs, [&] {
        std::mt19937 rng(static_cast<unsigned>(seed) + 7);
        for (int i = 0; i < iterations; ++i) {
            const int before_this = fired.load();
            gt::timer t(std::chrono::microseconds(rng() % 30), [&] { ++fired; });
            switch (rng() % 3) {
                case 0:  // taken back, or it fired already
                    if (!t.cancel()) ++expected;
                    break;
                case 1:  // left to fire: the destructor below finds it done
                    ++expected;
                    while (fired.load() == before_this && steady::now() < give_up) gt::this_thread::yield();
                    break;
                default:  // a yield first, to let the callback thread run
                    gt::this_thread::yield();
                    if (!t.cancel()) ++expected;
                    break;
            }
        }
    });
    worker.join();
    EXPECT_EQ(fired.load(), expected) << "seed " << seed;
    EXPECT_TRUE(wait_until([&] { return threads_alive() == before; })) << "the callback thread did not end";
}

TEST(Timer, TheCallbackThreadEndingWhileAStartArmsLosesNoTimer) {
    start_while_the_callback_thread_ends(0, 3000);  // preempted at the 100 µs slice
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
        gt::debug::set_schedule_seed(seed);
        start_while_the_callback_thread_ends(seed, 200);
        gt::debug::set_schedule_seed(0);
        if (HasFailure()) break;
    }
}

// Why: callbacks may block; they run one after another on the callback
// thread, so a blocked callback delays the timers behind it (documented)
// but nothing else: while it waits for a gt::mutex, then a pipe, a worker
// thread makes progress, and the later timer runs once it returns.
TEST(Timer, ABlockingCallbackDelaysLaterCallbacksButNotTheProgram) {
    gt::mutex m;
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    std::vector<std::string> events;
    std::atomic<std::uint64_t> worker_steps{0};
    std::atomic<bool> stop{false};
    m.lock();
    gt::timer blocking(1ms, [&] {
        events.push_back("a starts");
        { const std::lock_guard<gt::mutex> lock(m); }
        char c = 0;
        EXPECT_EQ(gt::io::read(fds[0], &c, 1), 1);
        gt::this_thread::sleep_for(1ms);
        events.push_back("a returns");
    });
    gt::timer later(2ms, [&] { events.push_back("b"); });
    gt::thread worker([&] {
        while (!stop) {
            ++worker_steps;
            gt::this_thread::sleep_for(100us);
        }
    });
    ASSERT_TRUE(wait_until([&] { return !events.empty(); }));
    const std::uint64_t steps_at_block = worker_steps;
    ASSERT_TRUE(wait_until([&] { return worker_steps > steps_at_block + 10; })) << "the worker progresses";
    EXPECT_EQ(events.size(), 1u) << "b waits behind the blocked callback";
    m.unlock();
    ASSERT_TRUE(wait_until([&] { return worker_steps > steps_at_block + 20; }));
    EXPECT_EQ(events.size(), 1u) << "a now waits for the pipe";
    ASSERT_EQ(gt::io::write(fds[1], "x", 1), 1);
    ASSERT_TRUE(wait_until([&] { return events.size() == 3; }));
    EXPECT_EQ(events, (std::vector<std::string>{"a starts", "a returns", "b"}));
    stop = true;
    worker.join();
    gt::io::close(fds[0]);
    gt::io::close(fds[1]);
}

// Why: the scale: 10,000 gt::timers armed and cancelled leave
// nothing behind (no firing, an empty heap, no callback thread); and the
// cost of re-arming and cancelling one timer among them, which the
// walkthrough reports (the bound is for gross regressions only).
TEST(Timer, TenThousandTimersStartedAndCancelled) {
    std::atomic<int> calls{0};
    std::vector<gt::timer> timers;
    timers.reserve(10'000);
    for (int i = 0; i < 10'000; ++i) timers.emplace_back(1s + std::chrono::microseconds(i), [&] { ++calls; });
    EXPECT_EQ(gt::detail::scheduler::current().timers().size(), 10'000u);
    gt::timer probe(1h, [&] { ++calls; });
    constexpr int rounds = 200'000;
    const auto start = steady::now();
    for (int i = 0; i < rounds; ++i) {
        probe.start(1h + std::chrono::nanoseconds(i));
        probe.cancel();
    }
    const double ns = std::chrono::duration<double, std::nano>(steady::now() - start).count() / rounds;
    std::printf("gt::timer start+cancel with 10,000 timers pending: %.1f ns\n", ns);
    for (auto& t : timers) EXPECT_TRUE(t.cancel());
    EXPECT_EQ(gt::detail::scheduler::current().timers().size(), 0u);
    timers.clear();
    gt::this_thread::sleep_for(5ms);
    EXPECT_EQ(calls.load(), 0);
    EXPECT_LT(ns, 50'000.0);
}

// Why: misuse fails with the std-like exception the header names.
TEST(Timer, MisuseThrowsTheNamedExceptions) {
    EXPECT_THROW(gt::timer(1ms, std::function<void()>()), std::invalid_argument);
    EXPECT_THROW(gt::timer(1ms, [] {}, -1ms), std::invalid_argument);
    gt::timer empty;
    try {
        empty.start(1ms);
        ADD_FAILURE() << "start() on a timer without a callback";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
    }
    EXPECT_FALSE(empty.cancel());
    gt::timer t(1h, [] {});
    EXPECT_THROW(t.start(1ms, -1ns), std::invalid_argument);
    std::thread other([&] {
        try {
            t.cancel();
            ADD_FAILURE() << "cancel() from another OS thread";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
        }
    });
    other.join();
    EXPECT_TRUE(t.cancel());
}

// Why: the callback thread must not keep the deadlock detector from firing:
// after a timer has fired, or been cancelled, a program whose threads all
// wait for each other is reported, as without timers.
void deadlock_after_timers() {
    std::atomic<bool> fired{false};
    gt::timer a(1ms, [&] { fired = true; });
    gt::timer b(1h, [] {});
    while (!fired) gt::this_thread::sleep_for(1ms);
    b.cancel();
    gt::binary_semaphore never(0);
    never.acquire();
}

TEST(TimerDeathTest, ADeadlockIsReportedAfterTimersFiredOrWereCancelled) {
    EXPECT_DEATH(deadlock_after_timers(), "deadlock");
}

void exit_with_a_pending_timer() {
    static gt::timer pending(1h, [] {});
    std::exit(0);
}

// Why: a pending timer is no reason to keep running after main returns,
// and no reason to complain: the process exits normally.
TEST(TimerDeathTest, ExitWithAPendingTimerIsNormal) {
    EXPECT_EXIT(exit_with_a_pending_timer(), ::testing::ExitedWithCode(0), "^$");
}

void os_thread_with_timers_exits_quietly() {
    std::thread([] {
        std::atomic<bool> fired{false};
        gt::timer once(1ms, [&] { fired = true; });
        gt::timer never(1h, [] {});
        while (!fired) gt::this_thread::sleep_for(1ms);
    }).join();
    std::exit(0);
}

// Why: the callback thread ends with the last timer, so an OS thread that
// used timers ends with no green thread left: its scheduler is destroyed,
// without the "green threads still alive" warning of an abandoned one.
TEST(TimerDeathTest, AnOsThreadThatUsedTimersEndsQuietly) {
    EXPECT_EXIT(os_thread_with_timers_exits_quietly(), ::testing::ExitedWithCode(0), "^$");
}

std::atomic<int> fires_on_other_os_threads{0};

void timers_outlive_their_os_threads_scheduler() {
    std::unique_ptr<gt::timer> handed_over;
    std::thread([&] {
        // Constructed before the OS thread's first gt call, so destroyed
        // after its scheduler (thread_local objects die in reverse order).
        thread_local gt::timer fired_once;
        fired_once = gt::timer(1ms, [] { ++fires_on_other_os_threads; });
        handed_over = std::make_unique<gt::timer>(1ms, [] { ++fires_on_other_os_threads; });
        handed_over->cancel();
        gt::timer never(1h, [] {});
        never.cancel();
        while (fires_on_other_os_threads == 0) gt::this_thread::sleep_for(1ms);
    }).join();
    if (fires_on_other_os_threads != 1) std::exit(2);
    handed_over.reset();  // on another OS thread, its own gone: it is neither pending nor running
    std::exit(0);
}

// Why: a timer that is neither pending nor running holds nothing of its
// scheduler's, so destroying it anywhere is safe, as the header promises
// (only a pending or running timer destroyed on another OS thread is
// fatal): a thread_local or static timer that fired, destroyed at exit
// after its OS thread's scheduler, and one handed to another OS thread,
// end quietly instead of calling std::terminate.
TEST(TimerDeathTest, ATimerThatIsNeitherPendingNorRunningOutlivesItsScheduler) {
    EXPECT_EXIT(timers_outlive_their_os_threads_scheduler(), ::testing::ExitedWithCode(0), "^$");
}

// ---- Idle callbacks ----

// Why: an idle process uses no CPU even with an idle callback registered:
// one that returns false is called a bounded number of times (once per
// sleep of the OS thread) while main sleeps 200 ms, and the OS thread's
// CPU time over that window stays far below the window (getrusage).
TEST(Idle, AFalseCallbackCostsNoCpuAndIsCalledBoundedTimes) {
    std::uint64_t calls = 0;
    std::string where;
    gt::idle_handle h = gt::on_idle([&] {
        ++calls;
        where = gt::this_thread::get_name();
        return false;
    });
    const std::int64_t cpu_before = thread_cpu_ns();
    gt::this_thread::sleep_for(200ms);
    const std::int64_t cpu = thread_cpu_ns() - cpu_before;
    EXPECT_GE(calls, 1u) << "nothing was READY while main slept";
    EXPECT_LE(calls, 10u);
    EXPECT_EQ(h.calls(), calls);
    EXPECT_EQ(where, "gt-timers");
    EXPECT_LT(cpu, 20'000'000) << "CPU time while idle, ns";
    std::printf("idle 200 ms with a false idle callback: %llu calls, %.3f ms CPU\n",
                static_cast<unsigned long long>(calls), cpu / 1e6);
}

// Why: a callback that keeps finding work is called again as long as
// nothing is READY, and descriptors are still polled in between: a reader
// gets every message a sleeping writer sends, and the sleeps still end.
TEST(Idle, ATrueCallbackIsCalledRepeatedlyAndIoProgresses) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    std::uint64_t calls = 0;
    gt::idle_handle h = gt::on_idle([&] { return ++calls, true; });
    constexpr int messages = 50;
    int received = 0;
    gt::thread reader([&] {
        char c;
        while (received < messages && gt::io::read(fds[0], &c, 1) == 1) ++received;
    });
    gt::thread writer([&] {
        for (int i = 0; i < messages; ++i) {
            gt::this_thread::sleep_for(1ms);
            ASSERT_EQ(gt::io::write(fds[1], "m", 1), 1);
        }
    });
    writer.join();
    reader.join();
    EXPECT_EQ(received, messages);
    EXPECT_GT(calls, static_cast<std::uint64_t>(messages)) << "called again and again between the messages";
    h.reset();
    const std::uint64_t after_reset = calls;
    gt::this_thread::sleep_for(5ms);
    EXPECT_EQ(calls, after_reset) << "not called after reset";
    gt::io::close(fds[0]);
    gt::io::close(fds[1]);
}

// Why: an idle callback may unregister itself (its handle is destroyed
// inside it) and others; it may block; and the callback thread ends
// once no idle callback and no timer is left.
TEST(Idle, UnregisteringFromInsideACallbackIsSafe) {
    const std::size_t before = threads_alive();
    auto self = std::make_unique<gt::idle_handle>();
    int calls = 0;
    *self = gt::on_idle([&self, &calls, text = std::string("alive")] {
        self.reset();
        gt::this_thread::sleep_for(1ms);  // blocks, on its own captures
        calls += text == "alive" ? 1 : 100;
        return false;
    });
    gt::this_thread::sleep_for(20ms);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(self, nullptr);
    EXPECT_EQ(threads_alive(), before);
    EXPECT_THROW((void)gt::on_idle(std::function<bool()>()), std::invalid_argument);
}

// Why: idle callbacks are registered and unregistered by other green
// threads while a round runs (its callbacks block, so the round spans
// many switches, and ticks land everywhere): an unregistered callback is
// never called after reset() returns, even when it was the round's next
// one, a new one joins later rounds, and the callback thread ends with
// the last registration.
TEST(Idle, RegisteringAndUnregisteringDuringRoundsLosesNothing) {
    struct slot {
        gt::idle_handle h;
        std::atomic<bool> closed{true};
    };
    constexpr int workers = 3;
    constexpr int slots_per_worker = 6;
    constexpr int steps = 600;
    const std::size_t before = threads_alive();
    std::atomic<int> late_calls{0};
    std::atomic<int> calls{0};
    std::vector<gt::thread> threads;
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back([&, w] {
            std::mt19937 rng(static_cast<unsigned>(w) + 11);
            slot slots[slots_per_worker];
            for (int step = 0; step < steps; ++step) {
                slot& s = slots[rng() % slots_per_worker];
                if (rng() % 2 == 0) {
                    s.h.reset();
                    s.closed = true;
                } else if (!s.h) {
                    const bool blocks = rng() % 2 == 0;
                    s.closed = false;
                    s.h = gt::on_idle([&s, &late_calls, &calls, blocks] {
                        if (s.closed) ++late_calls;
                        ++calls;
                        if (blocks) gt::this_thread::sleep_for(std::chrono::microseconds(30));
                        return false;
                    });
                }
                // Blocking leaves nothing READY now and then: a round runs.
                if (rng() % 4 == 0) gt::this_thread::sleep_for(std::chrono::microseconds(rng() % 100));
            }
            for (slot& s : slots) {
                s.h.reset();
                s.closed = true;
            }
        });
    }
    for (gt::thread& t : threads) t.join();
    EXPECT_EQ(late_calls.load(), 0) << "an idle callback ran after reset() returned";
    EXPECT_GT(calls.load(), 0) << "no round ran: the test did not test";
    std::printf("registering and unregistering during rounds: %d idle calls\n", calls.load());
    EXPECT_TRUE(wait_until([&] { return threads_alive() == before; })) << "the callback thread did not end";
}

}  // namespace
