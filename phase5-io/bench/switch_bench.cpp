// What a switch and a thread cost: our yield and our bare context switch,
// side by side with the alternatives a reader could have used instead, and
// our thread creation against std::thread's and Boost.Fiber's.
//
//   make bench-phaseN     (or, in the phase folder: build/bench/switch_bench)
//
// Every figure is per operation: the counter ns_per_switch (or
// ns_per_handoff, ns_per_thread) divides the elapsed wall-clock time by the
// number of operations, so a ping-pong round trip counts as two switches.
// The run ends with a ratio table against the targets we set:
//   - raw switch within 1.5x of Boost.Context's fiber switch;
//   - gt::this_thread::yield at least 2x faster than boost::this_fiber::yield
//     and at least 50x faster than handing off between two OS threads.
//
// Sources for what the peers do:
//   - Boost.Context documentation, "Overview": a switch between OS threads
//     needs system calls and can cost over a thousand CPU cycles, a fiber
//     switch needs none; its "Performance" table has the fcontext_t backend
//     (assembly, the one Debian ships) far ahead of its ucontext_t backend.
//     Boost 1.74's jump_fcontext saves the same registers and FP control
//     state as our gt_switch_context (objdump -d libboost_context.so).
//   - getcontext(3): a ucontext_t includes uc_sigmask, the signals blocked in
//     that context. glibc's x86-64 swapcontext
//     (sysdeps/unix/sysv/linux/x86_64/swapcontext.S) therefore makes an
//     rt_sigprocmask system call on every switch; `strace -c -e
//     rt_sigprocmask build/bench/switch_bench --benchmark_filter=swapcontext`
//     shows one call per swapcontext.
//   - boost/context/fixedsize_stack.hpp: Boost.Fiber's default stack
//     (fixedsize_stack) comes from malloc, with no guard page; ours is an
//     mmap with a PROT_NONE guard page, which costs system calls per thread.
//
// Nothing is pinned: the machine this was written on has two cores, and the
// OS-thread handoff is measured as the scheduler places the threads.
#include <benchmark/benchmark.h>
#include <ucontext.h>

#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <gt/thread.hpp>

#include "bench_report.hpp"
#include "context.hpp"
#include "peers.hpp"

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER
#include <boost/context/fiber.hpp>
#include <boost/fiber/all.hpp>
#endif

namespace {

constexpr std::size_t partner_stack_size = 64 * 1024;

// ---- our runtime ----------------------------------------------------------

BENCHMARK(BM_gt_yield_pingpong)->UseRealTime();  // peers.hpp

// The saved stack pointers of BM_raw_switch_pingpong's two contexts; the
// partner's entry function gets a pointer to them as its argument.
struct raw_pair {
    void* main_sp = nullptr;
    void* partner_sp = nullptr;
};

[[noreturn]] void raw_partner(void* arg) {
    auto* pair = static_cast<raw_pair*>(arg);
    for (;;) gt_switch_context(&pair->partner_sp, pair->main_sp);
}

// gt_switch_context alone, no scheduler: the floor under our yield, and the
// figure to hold against Boost.Context's switch.
void BM_raw_switch_pingpong(benchmark::State& state) {
    auto stack = std::make_unique<std::byte[]>(partner_stack_size);
    raw_pair pair;
    pair.partner_sp = gt::detail::make_context(stack.get() + partner_stack_size, &raw_partner, &pair);
    for (auto _ : state) gt_switch_context(&pair.main_sp, pair.partner_sp);
    // The partner stays suspended inside its loop; it owns nothing, so
    // dropping its stack is all the cleanup it needs.
    state.counters["ns_per_switch"] = bench::ns_per_op(2);
}
BENCHMARK(BM_raw_switch_pingpong)->UseRealTime();

// ---- glibc ucontext -------------------------------------------------------

// makecontext passes only int arguments, so the partner finds its contexts here.
ucontext_t uc_main;
ucontext_t uc_partner;

void uc_partner_loop() {
    for (;;) swapcontext(&uc_partner, &uc_main);
}

// swapcontext(3): the portable (and obsolescent) way to switch stacks; it
// also saves and restores the signal mask, one system call per switch.
void BM_swapcontext_pingpong(benchmark::State& state) {
    auto stack = std::make_unique<std::byte[]>(partner_stack_size);
    getcontext(&uc_partner);
    uc_partner.uc_stack.ss_sp = stack.get();
    uc_partner.uc_stack.ss_size = partner_stack_size;
    uc_partner.uc_link = nullptr;
    makecontext(&uc_partner, &uc_partner_loop, 0);
    for (auto _ : state) swapcontext(&uc_main, &uc_partner);
    state.counters["ns_per_switch"] = bench::ns_per_op(2);
}
BENCHMARK(BM_swapcontext_pingpong)->UseRealTime();

// ---- OS threads -----------------------------------------------------------

// Two OS threads taking turns through a std::mutex and a
// std::condition_variable: what a yield would cost if each green thread were
// an OS thread. It measures a futex wake plus a futex sleep on each side
// (notify_one wakes the other thread through the kernel, wait puts this one
// to sleep until its turn comes back), and the kernel scheduler's wakeup
// latency; unpinned, the two threads may also sit on different cores.
void BM_os_thread_handoff_pingpong(benchmark::State& state) {
    std::mutex mutex;
    std::condition_variable turn_changed;
    bool partners_turn = false;
    bool stop = false;
    std::thread partner([&] {
        std::unique_lock lock(mutex);
        for (;;) {
            turn_changed.wait(lock, [&] { return partners_turn || stop; });
            if (stop) return;
            partners_turn = false;
            // Notify after unlocking, so the woken side does not wake only
            // to block on the mutex we still hold.
            lock.unlock();
            turn_changed.notify_one();
            lock.lock();
        }
    });
    for (auto _ : state) {
        std::unique_lock lock(mutex);
        partners_turn = true;
        lock.unlock();
        turn_changed.notify_one();
        lock.lock();
        turn_changed.wait(lock, [&] { return !partners_turn; });
    }
    {
        std::lock_guard lock(mutex);
        stop = true;
    }
    turn_changed.notify_one();
    partner.join();
    state.counters["ns_per_handoff"] = bench::ns_per_op(2);
}
BENCHMARK(BM_os_thread_handoff_pingpong)->UseRealTime();

// ---- thread creation ------------------------------------------------------

BENCHMARK(BM_gt_thread_create_join)->UseRealTime();   // peers.hpp
BENCHMARK(BM_std_thread_create_join)->UseRealTime();  // peers.hpp

// ---- Boost.Context and Boost.Fiber ----------------------------------------

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER

// boost::context::fiber resumed back and forth: Boost's bare switch
// (jump_fcontext plus its C++ wrapper), the peer of BM_raw_switch_pingpong.
void BM_boost_context_fiber_pingpong(benchmark::State& state) {
    namespace ctx = boost::context;
    bool stop = false;
    ctx::fiber partner{[&stop](ctx::fiber&& caller) {
        while (!stop) caller = std::move(caller).resume();
        return std::move(caller);
    }};
    for (auto _ : state) partner = std::move(partner).resume();
    stop = true;
    partner = std::move(partner).resume();  // lets the partner return, so its stack is freed
    state.counters["ns_per_switch"] = bench::ns_per_op(2);
}
BENCHMARK(BM_boost_context_fiber_pingpong)->UseRealTime();

// boost::this_fiber::yield between the main fiber and one other: Boost.Fiber's
// scheduler (round robin by default), the peer of BM_gt_yield_pingpong.
void BM_boost_fiber_yield_pingpong(benchmark::State& state) {
    bool stop = false;
    boost::fibers::fiber partner([&stop] {
        while (!stop) boost::this_fiber::yield();
    });
    for (auto _ : state) boost::this_fiber::yield();
    stop = true;
    partner.join();
    state.counters["ns_per_switch"] = bench::ns_per_op(2);
}
BENCHMARK(BM_boost_fiber_yield_pingpong)->UseRealTime();

BENCHMARK(BM_boost_fiber_create_join)->UseRealTime();          // peers.hpp
BENCHMARK(BM_boost_fiber_guarded_create_join)->UseRealTime();  // peers.hpp

constexpr const char* boost_missing = nullptr;
#else
constexpr const char* boost_missing = "Boost not built in (needs libboost-fiber-dev)";
#endif

}  // namespace

int main(int argc, char** argv) {
    if (boost_missing != nullptr) {
        std::fprintf(stderr,
                     "switch_bench: the Boost.Context and Boost.Fiber benchmarks are skipped: install "
                     "libboost-fiber-dev and libboost-context-dev (or run `make deps`), then rebuild\n");
    }
    using goal = bench::comparison::goal;
    const std::vector<bench::comparison> comparisons = {
        {"raw switch vs Boost.Context fiber", "BM_raw_switch_pingpong", "BM_boost_context_fiber_pingpong",
         goal::within, 1.5, boost_missing},
        {"raw switch vs glibc swapcontext", "BM_raw_switch_pingpong", "BM_swapcontext_pingpong"},
        {"yield vs raw switch (the scheduler's share)", "BM_gt_yield_pingpong", "BM_raw_switch_pingpong"},
        {"yield vs Boost.Fiber yield", "BM_gt_yield_pingpong", "BM_boost_fiber_yield_pingpong", goal::faster_by,
         2, boost_missing},
        {"yield vs OS-thread handoff", "BM_gt_yield_pingpong", "BM_os_thread_handoff_pingpong", goal::faster_by,
         50},
        {"gt create+join vs std::thread", "BM_gt_thread_create_join", "BM_std_thread_create_join"},
        {"gt create+join vs Boost.Fiber", "BM_gt_thread_create_join", "BM_boost_fiber_create_join", goal::none, 0,
         boost_missing},
        {"gt create+join vs Boost.Fiber, guarded stack", "BM_gt_thread_create_join",
         "BM_boost_fiber_guarded_create_join", goal::none, 0, boost_missing},
    };
    return bench::run_and_compare(argc, argv, comparisons);
}
