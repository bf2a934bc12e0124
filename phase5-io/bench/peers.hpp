// Benchmarks that more than one benchmark program of a phase runs: the
// plain yield ping-pong and thread creation (ours, std::thread's and
// Boost.Fiber's), defined once here and registered (BENCHMARK) by each
// program that needs them in its ratio table.
#pragma once

#include <benchmark/benchmark.h>

#include <memory>
#include <thread>

#include <gt/thread.hpp>

#include "bench_report.hpp"

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER
#include <boost/fiber/all.hpp>
#endif

// gt::this_thread::yield between the adopted main thread and one gt::thread:
// the cost every cooperative program pays at each turn (run queue + switch).
inline void BM_gt_yield_pingpong(benchmark::State& state) {
    bool stop = false;
    gt::thread partner([&stop] {
        while (!stop) gt::this_thread::yield();
    });
    // Each iteration: main -> partner, partner -> main. Both are READY in
    // turn, so every yield switches.
    for (auto _ : state) gt::this_thread::yield();
    stop = true;
    partner.join();
    state.counters["ns_per_switch"] = bench::ns_per_op(2);
}

// Create, run and join a gt::thread with an empty function: the fixed cost
// of a green thread (control block, guarded stack mapping, two switches).
inline void BM_gt_thread_create_join(benchmark::State& state) {
    for (auto _ : state) {
        gt::thread t([] {});
        t.join();
    }
    state.counters["ns_per_thread"] = bench::ns_per_op(1);
}

// The same with std::thread: clone(2), a kernel-scheduled start, a futex join.
inline void BM_std_thread_create_join(benchmark::State& state) {
    for (auto _ : state) {
        std::thread t([] {});
        t.join();
    }
    state.counters["ns_per_thread"] = bench::ns_per_op(1);
}

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER

// Create and join an empty boost::fibers::fiber on its default stack (malloc,
// no guard page): the peer of BM_gt_thread_create_join.
inline void BM_boost_fiber_create_join(benchmark::State& state) {
    for (auto _ : state) {
        boost::fibers::fiber f([] {});
        f.join();
    }
    state.counters["ns_per_thread"] = bench::ns_per_op(1);
}

// The same on protected_fixedsize_stack (mmap + guard page, as our stacks):
// separates the cost of guarded stacks from the cost of the runtime.
inline void BM_boost_fiber_guarded_create_join(benchmark::State& state) {
    for (auto _ : state) {
        boost::fibers::fiber f(std::allocator_arg, boost::fibers::protected_fixedsize_stack(), [] {});
        f.join();
    }
    state.counters["ns_per_thread"] = bench::ns_per_op(1);
}

#endif
