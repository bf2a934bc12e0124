// What synchronization costs: a mutex nobody else wants, a mutex two
// threads pass back and forth, a condition variable and a channel that two
// threads take turns on, and eight threads queueing for one mutex. Each
// beside Boost.Fiber's primitive (and std::mutex for the uncontended case)
// in one run:
//
//   make bench-phase4     (or, in the phase folder: build/bench/sync_bench)
//
// Figures (the ratio table reads the counter named ns_per_*), all CPU time
// of the benchmark's OS thread per operation: every green thread and fiber
// here runs on that one OS thread, so its CPU time is the work, and time
// the kernel gives other processes of a shared machine is left out (the
// wall-clock time is in the "Time" column):
//   (1) ns_per_lock_unlock: lock() then unlock() of a mutex that nobody
//       else holds or waits for: our inline compare-and-swap pair
//       (include/gt/mutex.hpp); beside it, the floor (two compare-and-swaps
//       on one word), Boost.Fiber's mutex, and std::mutex with one OS
//       thread in the process and with two (see BM_std_mutex_uncontended).
//   (2) ns_per_round: the "contended hand-off" of the issue: two threads
//       each loop lock; yield; unlock; yield, so the lock is always held
//       when the other one runs, and every lock() blocks once. A round is
//       one turn of main's loop (the partner turns once meanwhile).
//   (3) ns_per_round: condition-variable ping-pong: a turn variable under a
//       mutex; each thread waits until it is its turn, passes the turn and
//       notifies. A round is main -> partner -> main.
//   (4) ns_per_round: channel ping-pong: main sends a number on one
//       channel, the partner receives it and sends it back on another.
//       Ours is gt::channel (capacity 1); Boost.Fiber's buffered_channel
//       of capacity 2, which holds one value (its capacity is a power of
//       two and one slot stays empty). Without gt/channel.hpp in the
//       tree, only Boost's runs.
//   (5) ns_per_acquisition: a lock convoy: 8 threads each take the mutex
//       1,000 times and yield while holding it, so the other 7 are queued
//       behind the owner at every turn; per acquisition, including the 8
//       threads' creation and join.
// The run ends with a ratio table against the targets of the issue:
// uncontended lock+unlock, hand-off and condition-variable ping-pong each
// at most 0.5x Boost.Fiber's time (at least 2x faster).
//
// Sources for what the peers do (read, not copied):
//   - boost/fiber/mutex.hpp, libs/fiber/src/mutex.cpp (Boost 1.74):
//     mutex::lock takes the mutex's spinlock (detail::spinlock, a
//     test-and-test-and-set word), checks owner_, sets it to the active
//     context, releases the spinlock; unlock takes the spinlock again,
//     clears owner_ and wakes the first waiter of its wait_queue, which
//     then competes for the mutex again.
//   - libstdc++'s std::mutex is pthread_mutex_t; glibc's lock is a CAS on
//     the futex word, unlock an exchange, futex(2) only when contended.
//
// Nothing is pinned; the machine this was written on has two cores, and
// every thread of these benchmarks lives on one OS thread, so no figure
// includes a cross-CPU wakeup.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <gt/condition_variable.hpp>
#include <gt/mutex.hpp>
#include <gt/thread.hpp>

#include "bench_report.hpp"

#if __has_include(<gt/channel.hpp>)
#include <gt/channel.hpp>
#define GT_BENCH_HAVE_CHANNEL 1
#else
#define GT_BENCH_HAVE_CHANNEL 0
#endif

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER
#include <boost/fiber/all.hpp>
#endif

namespace {

// ---- (1) uncontended lock+unlock ------------------------------------------------

template <class Mutex>
void uncontended(benchmark::State& state) {
    Mutex m;
    for (auto _ : state) {
        m.lock();
        benchmark::ClobberMemory();  // the critical section: keeps the pair from being merged away
        m.unlock();
    }
    state.counters["ns_per_lock_unlock"] = bench::ns_per_op(1);
}

void BM_gt_mutex_uncontended(benchmark::State& state) { uncontended<gt::mutex>(state); }
BENCHMARK(BM_gt_mutex_uncontended);

// The floor for a lock word that another OS thread may share: two
// compare-and-swaps (lock cmpxchg) on one word, the fast paths without the
// read of the running thread.
void BM_two_cas_floor(benchmark::State& state) {
    std::atomic<std::uintptr_t> word{0};
    const auto self = reinterpret_cast<std::uintptr_t>(&state);
    for (auto _ : state) {
        std::uintptr_t expected = 0;
        word.compare_exchange_strong(expected, self, std::memory_order_acquire, std::memory_order_relaxed);
        benchmark::ClobberMemory();
        expected = self;
        word.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed);
    }
    state.counters["ns_per_lock_unlock"] = bench::ns_per_op(1);
}
BENCHMARK(BM_two_cas_floor);

// glibc skips the atomic instructions of pthread_mutex_lock/unlock while
// the process has one OS thread (__libc_single_threaded): this benchmark
// process has one until BM_std_mutex_uncontended_two_os_threads starts a
// second (registered after this one, so it runs after it).
void BM_std_mutex_uncontended(benchmark::State& state) { uncontended<std::mutex>(state); }
BENCHMARK(BM_std_mutex_uncontended);

// The same once the process has had a second OS thread: glibc's mutex then
// uses its atomic compare-and-swap and exchange, as every multi-threaded
// program's std::mutex does.
void BM_std_mutex_uncontended_two_os_threads(benchmark::State& state) {
    std::thread([] {}).join();  // __libc_single_threaded stays false from now on
    uncontended<std::mutex>(state);
}
BENCHMARK(BM_std_mutex_uncontended_two_os_threads);

// ---- (2) contended hand-off: lock; yield; unlock; yield ---------------------------

void BM_gt_mutex_handoff(benchmark::State& state) {
    gt::mutex m;
    bool stop = false;
    gt::thread partner([&] {
        while (!stop) {
            m.lock();
            gt::this_thread::yield();
            m.unlock();
            gt::this_thread::yield();
        }
    });
    for (auto _ : state) {
        m.lock();
        gt::this_thread::yield();
        m.unlock();
        gt::this_thread::yield();
    }
    stop = true;
    partner.join();
    state.counters["ns_per_round"] = bench::ns_per_op(1);
}
BENCHMARK(BM_gt_mutex_handoff);

// ---- (3) condition-variable ping-pong ------------------------------------------------

void BM_gt_condvar_pingpong(benchmark::State& state) {
    gt::mutex m;
    gt::condition_variable cv;
    int turn = 0;  // 0: main's, 1: the partner's, 2: stop
    gt::thread partner([&] {
        std::unique_lock lock(m);
        for (;;) {
            cv.wait(lock, [&] { return turn != 0; });
            if (turn == 2) return;
            turn = 0;
            cv.notify_one();
        }
    });
    {
        std::unique_lock lock(m);
        for (auto _ : state) {
            turn = 1;
            cv.notify_one();
            cv.wait(lock, [&] { return turn == 0; });
        }
        turn = 2;
        cv.notify_one();
    }
    partner.join();
    state.counters["ns_per_round"] = bench::ns_per_op(1);
}
BENCHMARK(BM_gt_condvar_pingpong);

// ---- (4) channel ping-pong ----------------------------------------------------------

#if GT_BENCH_HAVE_CHANNEL
void BM_gt_channel_pingpong(benchmark::State& state) {
    gt::channel<int> there(1), back(1);
    gt::thread partner([&] {
        while (std::optional<int> v = there.receive()) back.send(*v + 1);
    });
    int v = 0;
    for (auto _ : state) {
        there.send(v);
        v = *back.receive();
    }
    there.close();
    partner.join();
    benchmark::DoNotOptimize(v);
    state.counters["ns_per_round"] = bench::ns_per_op(1);
}
BENCHMARK(BM_gt_channel_pingpong);
constexpr const char* channel_missing = nullptr;
#else
constexpr const char* channel_missing = "gt::channel is not in this tree yet (gt/channel.hpp)";
#endif

// ---- (5) a lock convoy of 8 threads --------------------------------------------------

constexpr int convoy_threads = 8;
constexpr int convoy_rounds = 1000;

void BM_gt_mutex_convoy_8(benchmark::State& state) {
    for (auto _ : state) {
        gt::mutex m;
        long counter = 0;
        std::vector<gt::thread> threads;
        threads.reserve(convoy_threads);
        for (int i = 0; i < convoy_threads; ++i) {
            threads.emplace_back([&] {
                for (int r = 0; r < convoy_rounds; ++r) {
                    const std::lock_guard lock(m);
                    ++counter;
                    gt::this_thread::yield();  // holding it: the others queue up behind
                }
            });
        }
        for (gt::thread& t : threads) t.join();
        if (counter != long{convoy_threads} * convoy_rounds) state.SkipWithError("lost an increment");
    }
    state.counters["ns_per_acquisition"] = bench::ns_per_op(convoy_threads * convoy_rounds);
}
BENCHMARK(BM_gt_mutex_convoy_8)->Unit(benchmark::kMicrosecond);

// ---- the peers: Boost.Fiber -------------------------------------------------------------

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER

void BM_boost_fiber_mutex_uncontended(benchmark::State& state) { uncontended<boost::fibers::mutex>(state); }
BENCHMARK(BM_boost_fiber_mutex_uncontended);

void BM_boost_fiber_mutex_handoff(benchmark::State& state) {
    boost::fibers::mutex m;
    bool stop = false;
    boost::fibers::fiber partner([&] {
        while (!stop) {
            m.lock();
            boost::this_fiber::yield();
            m.unlock();
            boost::this_fiber::yield();
        }
    });
    for (auto _ : state) {
        m.lock();
        boost::this_fiber::yield();
        m.unlock();
        boost::this_fiber::yield();
    }
    stop = true;
    partner.join();
    state.counters["ns_per_round"] = bench::ns_per_op(1);
}
BENCHMARK(BM_boost_fiber_mutex_handoff);

void BM_boost_fiber_condvar_pingpong(benchmark::State& state) {
    boost::fibers::mutex m;
    boost::fibers::condition_variable cv;
    int turn = 0;
    boost::fibers::fiber partner([&] {
        std::unique_lock lock(m);
        for (;;) {
            cv.wait(lock, [&] { return turn != 0; });
            if (turn == 2) return;
            turn = 0;
            cv.notify_one();
        }
    });
    {
        std::unique_lock lock(m);
        for (auto _ : state) {
            turn = 1;
            cv.notify_one();
            cv.wait(lock, [&] { return turn == 0; });
        }
        turn = 2;
        cv.notify_one();
    }
    partner.join();
    state.counters["ns_per_round"] = bench::ns_per_op(1);
}
BENCHMARK(BM_boost_fiber_condvar_pingpong);

void BM_boost_fiber_channel_pingpong(benchmark::State& state) {
    using channel = boost::fibers::buffered_channel<int>;
    channel there(2), back(2);
    boost::fibers::fiber partner([&] {
        int v = 0;
        while (there.pop(v) == boost::fibers::channel_op_status::success) back.push(v + 1);
    });
    int v = 0;
    for (auto _ : state) {
        there.push(v);
        back.pop(v);
    }
    there.close();
    partner.join();
    benchmark::DoNotOptimize(v);
    state.counters["ns_per_round"] = bench::ns_per_op(1);
}
BENCHMARK(BM_boost_fiber_channel_pingpong);

void BM_boost_fiber_mutex_convoy_8(benchmark::State& state) {
    for (auto _ : state) {
        boost::fibers::mutex m;
        long counter = 0;
        std::vector<boost::fibers::fiber> fibers;
        fibers.reserve(convoy_threads);
        for (int i = 0; i < convoy_threads; ++i) {
            fibers.emplace_back([&] {
                for (int r = 0; r < convoy_rounds; ++r) {
                    const std::lock_guard lock(m);
                    ++counter;
                    boost::this_fiber::yield();
                }
            });
        }
        for (boost::fibers::fiber& f : fibers) f.join();
        if (counter != long{convoy_threads} * convoy_rounds) state.SkipWithError("lost an increment");
    }
    state.counters["ns_per_acquisition"] = bench::ns_per_op(convoy_threads * convoy_rounds);
}
BENCHMARK(BM_boost_fiber_mutex_convoy_8)->Unit(benchmark::kMicrosecond);

constexpr const char* boost_missing = nullptr;
#else
constexpr const char* boost_missing = "Boost not built in (needs libboost-fiber-dev)";
#endif

}  // namespace

int main(int argc, char** argv) {
    if (boost_missing != nullptr) {
        std::fprintf(stderr,
                     "sync_bench: the Boost.Fiber benchmarks are skipped: install libboost-fiber-dev "
                     "and libboost-context-dev (or run `make deps`), then rebuild\n");
    }
    using goal = bench::comparison::goal;
    const std::vector<bench::comparison> comparisons = {
        {"uncontended lock+unlock vs Boost.Fiber", "BM_gt_mutex_uncontended", "BM_boost_fiber_mutex_uncontended",
         goal::faster_by, 2, boost_missing},
        {"uncontended lock+unlock vs two CAS (floor)", "BM_gt_mutex_uncontended", "BM_two_cas_floor"},
        {"uncontended vs std::mutex, 1 OS thread", "BM_gt_mutex_uncontended", "BM_std_mutex_uncontended"},
        {"uncontended vs std::mutex, 2 OS threads", "BM_gt_mutex_uncontended",
         "BM_std_mutex_uncontended_two_os_threads"},
        {"hand-off (lock;yield;unlock;yield) vs Boost", "BM_gt_mutex_handoff", "BM_boost_fiber_mutex_handoff",
         goal::faster_by, 2, boost_missing},
        {"condition-variable ping-pong vs Boost.Fiber", "BM_gt_condvar_pingpong",
         "BM_boost_fiber_condvar_pingpong", goal::faster_by, 2, boost_missing},
        {"channel ping-pong vs Boost.Fiber", "BM_gt_channel_pingpong", "BM_boost_fiber_channel_pingpong",
         goal::none, 0, channel_missing != nullptr ? channel_missing : boost_missing},
        {"lock convoy, 8 threads, vs Boost.Fiber", "BM_gt_mutex_convoy_8", "BM_boost_fiber_mutex_convoy_8",
         goal::none, 0, boost_missing},
    };
    return bench::run_and_compare(argc, argv, comparisons);
}
