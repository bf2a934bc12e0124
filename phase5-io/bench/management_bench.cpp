// What managing threads costs: creating and reaping them now that stacks come
// from a pool, yielding now that the run queue has 32 levels, and the memory
// a thread holds while it waits. Phase 1's switch_bench (inherited unchanged)
// still measures the switch and the plain yield; this program puts phase 2's
// figures side by side with their peers in one run.
//
//   make bench-phaseN     (or, in the phase folder: build/bench/management_bench)
//
// Figures: ns_per_thread and ns_per_switch are wall-clock time per operation,
// as in switch_bench; kib_per_thread is resident memory (RSS, from
// /proc/self/statm) added per thread while 10,000 threads are alive and
// blocked. The run ends with a ratio table against the targets we set:
//   - create+run+join of a gt::thread, with its guarded 256 KiB stack, at or
//     below Boost.Fiber's create+join on its *unguarded* default stack;
//   - yield with three priority levels populated within 1.2x of the plain
//     two-thread yield (the bitmap makes "which level next" O(1));
//   - at most 8 KiB resident per blocked thread.
//
// Sources for what the peers do:
//   - boost/context/fixedsize_stack.hpp: Boost.Fiber's default stack is a
//     malloc of stack_traits::default_size() (128 KiB here), no guard page;
//     boost/context/posix/protected_fixedsize_stack.hpp: an mmap of the
//     size plus one page, then mprotect(PROT_NONE) of the lowest page, and
//     munmap when the fiber ends: three system calls per fiber, no pooling.
//     Boost.Fiber puts a fiber's control structure on its own stack, at the
//     top.
//   - Our stacks: mmap + mprotect guard page the first time, then reused
//     from the scheduler's stack pool (src/stack.cpp), guard page and all.
//
// vm.max_map_count (not run by default; `management_bench --max-map-demo`
// shows it in two child processes): every guarded stack is two kernel
// mappings, and Linux allows vm.max_map_count (65530 by default) per
// process. Boost.Fiber's protected_fixedsize_stack checks mprotect's result
// only with BOOST_ASSERT: built without NDEBUG it aborts at about 32,700
// fibers; with NDEBUG (as the benchmarks are built) the failed mprotect goes
// unnoticed, so that stack has no guard page, and the next mmap failure
// throws a bare std::bad_alloc. gt throws std::system_error
// (errc::resource_unavailable_try_again) whose message names
// vm.max_map_count, at the same count, and the program can carry on.
//
// Nothing is pinned; the machine this was written on has two cores.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <gt/debug.hpp>
#include <gt/preemption.hpp>
#include <gt/thread.hpp>

#include "bench_report.hpp"
#include "peers.hpp"

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER
#include <boost/fiber/all.hpp>
#endif

namespace {

using namespace std::chrono_literals;

// ---- helpers for the memory benchmarks -------------------------------------

/// Threads alive and blocked at once in each memory benchmark.
constexpr int memory_threads = 10'000;

/// Resident set size of the process in KiB: the second field of
/// /proc/self/statm, in pages (proc(5)).
double resident_kib() {
    long size = 0;
    long resident = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1024;
}

/// Memory the kernel spends on the process's page tables, in KiB (VmPTE in
/// /proc/self/status). Not part of RSS; reported beside it.
double page_table_kib() {
    double kib = 0;
    if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f) != nullptr) {
            if (std::strncmp(line, "VmPTE:", 6) == 0) kib = std::strtod(line + 6, nullptr);
        }
        std::fclose(f);
    }
    return kib;
}

/// What one memory measurement found.
struct memory_sample {
    double kib_per_thread = 0;
    double page_table_kib_per_thread = 0;
    double ms_to_block_all = 0;
};

/// Measures the memory a batch of blocked threads holds: start() before the
/// first one is created, stop() once all are blocked.
class resident_probe {
public:
    void start() {
        ::malloc_trim(0);  // free pages that earlier benchmarks left in malloc's arenas are not resident
        rss_ = resident_kib();
        pte_ = page_table_kib();
        t0_ = std::chrono::steady_clock::now();
    }

    void stop(memory_sample& out, int threads) const {
        const auto t1 = std::chrono::steady_clock::now();
        out.kib_per_thread = (resident_kib() - rss_) / threads;
        out.page_table_kib_per_thread = (page_table_kib() - pte_) / threads;
        out.ms_to_block_all = std::chrono::duration<double, std::milli>(t1 - t0_).count();
    }

private:
    double rss_ = 0;
    double pte_ = 0;
    std::chrono::steady_clock::time_point t0_;
};

/// Runs `measure` on a fresh OS thread, so that it has a fresh scheduler of
/// its own (gt and Boost.Fiber both keep one per OS thread), and reports what
/// it found. Why a fresh one: the scheduler of the benchmark's main thread
/// has a stack pool holding stacks that earlier benchmarks touched; a thread
/// given one of those would add no new resident page and look free. A fresh
/// scheduler starts with an empty pool, so every one of the 10,000 stacks is
/// newly mapped and each page counted is one this batch touched. The same
/// goes for the heap: a new OS thread may inherit the malloc arena of one
/// that exited, with free pages still resident, so resident_probe calls
/// malloc_trim(0) first, and control blocks placed there count too. With
/// both, the figure is the same whatever ran before it, and with
/// --benchmark_repetitions every repetition is as fresh as the first.
/// (Does it matter? On the main thread, after an earlier batch had filled
/// the pool and the heap, the same gt measurement read 3.90 KiB instead of
/// 4.34: about a tenth too little.)
template <class Measure>
void report_memory(benchmark::State& state, Measure measure) {
    memory_sample sample;
    for (auto _ : state) {
        std::thread os_thread([&] { measure(sample); });
        os_thread.join();
    }
    state.counters["kib_per_thread"] = sample.kib_per_thread;
    state.counters["page_table_kib_per_thread"] = sample.page_table_kib_per_thread;
    state.counters["ms_to_block_all"] = sample.ms_to_block_all;
    state.counters["threads"] = memory_threads;
}

// ---- (c) memory per blocked thread ------------------------------------------
//
// Registered first, though the fresh OS thread above already makes them
// independent of what ran before. Besides kib_per_thread (RSS), each reports
// page_table_kib_per_thread (VmPTE, kernel memory outside RSS: a 4 KiB page
// table per 2 MiB of address space with a page in use, so 256 KiB stacks
// cost about twice what 128 KiB ones do) and ms_to_block_all (creating the
// 10,000 and letting each run until it blocks, on fresh stacks: mmap and
// page faults dominate).

/// The gt threads of BM_gt_memory_blocked_threads: thread k joins thread k+1,
/// and the last one waits for `release`.
struct join_chain {
    std::vector<gt::thread> threads;
    int blocked = 0;
    bool release = false;
};

void chain_link(join_chain* chain, int k) {
    const gt::this_thread::disable_preemption no_preemption;  // a tick could otherwise come in between
    ++chain->blocked;  // no switch between here and blocking
    if (k + 1 < memory_threads) {
        // Thread k+1 was created before k ran and has not run yet, so this
        // join blocks, and its deadlock check walks one link, not k.
        chain->threads[static_cast<std::size_t>(k + 1)].join();
    } else {
        while (!chain->release) gt::this_thread::sleep_for(1ms);  // BLOCKED on the timer list
    }
}

// Resident KiB per gt::thread (default 256 KiB guarded stack) while 10,000
// are alive and BLOCKED (9,999 in join, one asleep): the cost of a thread
// that waits, which is what a server with one thread per connection holds.
// Why joins and not 10,000 sleepers: a sleeper cannot be woken early (no
// condition variable before phase 4), so cleaning up would mean waiting
// out the sleep; and the timer list is a sorted list that each sleep_for
// walks, O(n): 10,000 sleeps of one length took 180 ms just to fall asleep.
void BM_gt_memory_blocked_threads(benchmark::State& state) {
    report_memory(state, [](memory_sample& sample) {
        join_chain chain;
        chain.threads.reserve(memory_threads);  // before the baseline, as the vector of Boost's fibers
        (void)gt::this_thread::get_id();        // creates this OS thread's scheduler before the baseline
        resident_probe probe;
        probe.start();
        {
            // The chain needs every thread created before any of them runs:
            // no tick may switch to one halfway through the loop.
            const gt::this_thread::disable_preemption no_preemption;
            for (int k = 0; k < memory_threads; ++k) chain.threads.emplace_back(chain_link, &chain, k);
        }
        while (chain.blocked < memory_threads) gt::this_thread::yield();  // one turn: each runs and blocks
        probe.stop(sample, memory_threads);
        // Wake and join everything: the sleeper sees release within 1 ms,
        // finishes and wakes thread 9,998, which finishes and wakes 9,997...
        chain.release = true;
        chain.threads[0].join();
    });
}
BENCHMARK(BM_gt_memory_blocked_threads)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER

/// 10,000 Boost fibers made by `make_fiber(body)`, each blocked on one
/// boost::fibers::condition_variable until released; measures them.
template <class MakeFiber>
void boost_blocked_fibers(memory_sample& sample, MakeFiber make_fiber) {
    boost::fibers::mutex mutex;
    boost::fibers::condition_variable released;
    bool release = false;
    int blocked = 0;
    std::vector<boost::fibers::fiber> fibers;
    fibers.reserve(memory_threads);
    // Creates this OS thread's Boost.Fiber scheduler before the baseline, and
    // makes glibc's steady state explicit: the default stack is a 128 KiB
    // malloc, and the first free of a block that large raises malloc's
    // dynamic mmap threshold above it (mallopt(3), M_MMAP_THRESHOLD), after
    // which such stacks are carved from malloc's arenas, not mmap'd one by
    // one. Any program that has ended one fiber is in that state.
    boost::fibers::fiber([] {}).join();
    resident_probe probe;
    probe.start();
    for (int i = 0; i < memory_threads; ++i) {
        fibers.push_back(make_fiber([&] {
            std::unique_lock lock(mutex);
            ++blocked;
            released.wait(lock, [&] { return release; });
        }));
    }
    while (blocked < memory_threads) boost::this_fiber::yield();
    probe.stop(sample, memory_threads);
    {
        std::unique_lock lock(mutex);
        release = true;
    }
    released.notify_all();
    for (auto& f : fibers) f.join();
}

// Resident KiB per Boost fiber on its default stack (128 KiB malloc, no
// guard page), 10,000 blocked on a condition variable: the peer of the above.
void BM_boost_fiber_memory_blocked(benchmark::State& state) {
    report_memory(state, [](memory_sample& sample) {
        boost_blocked_fibers(sample, [](auto body) { return boost::fibers::fiber(std::move(body)); });
    });
}
BENCHMARK(BM_boost_fiber_memory_blocked)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// The same on protected_fixedsize_stack (128 KiB + guard page, mmap'd): the
// guarded peer, as our stacks are guarded.
void BM_boost_fiber_guarded_memory_blocked(benchmark::State& state) {
    report_memory(state, [](memory_sample& sample) {
        boost_blocked_fibers(sample, [](auto body) {
            return boost::fibers::fiber(std::allocator_arg, boost::fibers::protected_fixedsize_stack(),
                                        std::move(body));
        });
    });
}
BENCHMARK(BM_boost_fiber_guarded_memory_blocked)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

#endif

// ---- (a) thread creation ------------------------------------------------------

// Thread creation (peers.hpp): ours in the steady state takes its stack from
// the pool, so it is a pool lookup, two small allocations, a first frame and
// two switches, with no system call; std::thread's is clone(2), a
// kernel-scheduled start and a futex join (glibc caches thread stacks too);
// Boost.Fiber's default stack is malloc'd, with no guard page, and its
// protected_fixedsize_stack maps and unmaps one per fiber, with no pool.
BENCHMARK(BM_gt_thread_create_join)->UseRealTime();

BENCHMARK(BM_std_thread_create_join)->UseRealTime();

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER

BENCHMARK(BM_boost_fiber_create_join)->UseRealTime();

BENCHMARK(BM_boost_fiber_guarded_create_join)->UseRealTime();

#endif

// ---- (b) yield with priority levels ---------------------------------------------

/// The priorities that have a READY thread, read from the debug dump (the
/// public view of the run queues' bitmap): one line per thread, "id name
/// state priority ...", where a READY thread's state is the word READY and
/// the priority follows it. (Found by the word, not by column: an id of six
/// digits or more runs into the name.)
std::set<int> ready_levels() {
    std::ostringstream dump;
    gt::debug::dump_threads(dump);
    std::istringstream lines(dump.str());
    std::string line;
    std::getline(lines, line);  // the header
    std::set<int> levels;
    while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::string word;
        int priority = -1;
        while (fields >> word && word != "READY") {
        }
        if (word == "READY" && fields >> priority) levels.insert(priority);
    }
    return levels;
}

// The plain yield ping-pong (peers.hpp), nothing else alive: the baseline of
// the next two, measured in the same run. (Phase 2's yield does more than
// phase 1's: the critical section, the timer check, the levels; `make
// bench-phase1` gives phase 1's figure to hold it against.)
BENCHMARK(BM_gt_yield_pingpong)->UseRealTime();

// The same ping-pong with three priority levels populated: does a yield cost
// more when other levels hold threads? It should not: the next level is the
// highest set bit of the bitmap, one instruction, however many are set.
//
// Who is where while the pair yields:
//   level 16 (default_priority): main and the partner, taking turns; while
//            one runs, the other is READY, so bit 16 is always set.
//   level  8: one READY thread (low-8).
//   level  0: one READY thread (low-0).
// So the bitmap has three bits set at every yield (checked from the dump
// before the loop). The lower levels never run during the measurement:
// priorities are strict, and at every yield level 16 has a READY thread (the
// other half of the pair), so pick_next never looks below it. They run only
// after the loop, once main and the partner block in join or finish; if one
// ran earlier, the benchmark reports an error.
void BM_gt_yield_pingpong_3_levels(benchmark::State& state) {
    bool measuring = true;
    bool lower_level_ran = false;
    auto lower = [&] { lower_level_ran = lower_level_ran || measuring; };
    gt::thread low_8({.priority = 8, .name = "low-8"}, lower);
    gt::thread low_0({.priority = 0, .name = "low-0"}, lower);
    bool stop = false;
    gt::thread partner({.name = "partner"}, [&stop] {
        while (!stop) gt::this_thread::yield();
    });
    const bool three_levels = ready_levels() == std::set<int>{gt::lowest_priority, 8, gt::default_priority};
    for (auto _ : state) gt::this_thread::yield();
    stop = true;
    partner.join();  // main is READY at 16 again before low-8 and low-0 get a turn
    measuring = false;
    low_8.join();
    low_0.join();
    if (!three_levels) state.SkipWithError("the READY threads were not on levels 0, 8 and 16");
    if (lower_level_ran) state.SkipWithError("a lower-priority thread ran during the measurement");
    state.counters["ns_per_switch"] = bench::ns_per_op(2);
}
BENCHMARK(BM_gt_yield_pingpong_3_levels)->UseRealTime();

// The plain ping-pong while one more thread sleeps (at level 24, in 20 ms
// naps): every yield first wakes expired sleepers, which reads the clock
// (clock_gettime) whenever the timer list is not empty. What that costs.
void BM_gt_yield_pingpong_with_sleeper(benchmark::State& state) {
    bool stop = false;
    gt::thread sleeper({.priority = 24, .name = "sleeper"}, [&stop] {
        // Wakes every 20 ms (preempting the pair for about a microsecond:
        // 0.005% of the time), so that it can notice `stop` and end.
        while (!stop) gt::this_thread::sleep_for(20ms);
    });
    gt::thread partner([&stop] {
        while (!stop) gt::this_thread::yield();
    });
    for (auto _ : state) gt::this_thread::yield();
    stop = true;
    partner.join();
    sleeper.join();
    state.counters["ns_per_switch"] = bench::ns_per_op(2);
}
BENCHMARK(BM_gt_yield_pingpong_with_sleeper)->UseRealTime();

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER
constexpr const char* boost_missing = nullptr;
#else
constexpr const char* boost_missing = "Boost not built in (needs libboost-fiber-dev)";
#endif

// ---- (d) vm.max_map_count, on request --------------------------------------------

/// Runs `body` in a child process; returns its wait status.
template <class Body>
int in_child(Body body) {
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        std::perror("management_bench: fork");
        return -1;
    }
    if (pid == 0) {
        body();
        std::fflush(stdout);
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

void describe_end(const char* who, int status) {
    if (WIFSIGNALED(status)) {
        std::printf("%s: the child process was killed by signal %d (%s)\n", who, WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
    } else if (WIFEXITED(status)) {
        std::printf("%s: the child process exited with status %d\n", who, WEXITSTATUS(status));
    }
}

/// `--max-map-demo`: create guarded threads until the mapping limit, with
/// gt and with Boost.Fiber's protected_fixedsize_stack, each in a child
/// process (the limit is per process). Takes a second or two and up to a few
/// hundred MiB of page tables and touched stack pages, freed with the child.
int max_map_demo() {
    long limit = -1;
    if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
        if (std::fscanf(f, "%ld", &limit) != 1) limit = -1;
        std::fclose(f);
    }
    std::printf("vm.max_map_count is %ld; each guarded stack takes 2 mappings.\n\n", limit);

    const int gt_status = in_child([] {
        std::vector<gt::thread> threads;
        try {
            for (;;) threads.emplace_back([] {});
        } catch (const std::system_error& e) {
            std::printf("gt: %zu threads created, then std::system_error (%s):\n  %s\n", threads.size(),
                        e.code().message().c_str(), e.what());
        }
        for (auto& t : threads) t.join();
        std::printf("gt: every thread joined; the program carries on.\n");
    });
    describe_end("gt", gt_status);

#if defined(GT_HAVE_BOOST_FIBER) && GT_HAVE_BOOST_FIBER
    // The child cannot report after an abort: it counts into shared memory.
    void* shared = ::mmap(nullptr, sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) return 1;
    auto* created = static_cast<volatile long*>(shared);
    std::printf("\n");
    const int boost_status = in_child([created] {
        std::vector<boost::fibers::fiber> fibers;
        try {
            for (;;) {
                fibers.emplace_back(std::allocator_arg, boost::fibers::protected_fixedsize_stack(), [] {});
                *created = *created + 1;
            }
        } catch (const std::exception& e) {
            std::printf("Boost.Fiber: %ld fibers created, then %s\n", *created, e.what());
        }
        for (auto& f : fibers) f.join();
    });
    std::printf("Boost.Fiber: %ld fibers with protected_fixedsize_stack created\n", *created);
    describe_end("Boost.Fiber", boost_status);
    ::munmap(shared, sizeof(long));
#else
    std::printf("\nBoost.Fiber: not built in (needs libboost-fiber-dev)\n");
#endif
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // Our own flag, taken out before Google Benchmark sees the arguments.
    bool demo = false;
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--max-map-demo") {
            demo = true;
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    argv[argc] = nullptr;
    if (demo) return max_map_demo();

    if (boost_missing != nullptr) {
        std::fprintf(stderr,
                     "management_bench: the Boost.Fiber benchmarks are skipped: install libboost-fiber-dev "
                     "and libboost-context-dev (or run `make deps`), then rebuild\n");
    }
    using goal = bench::comparison::goal;
    const std::vector<bench::comparison> comparisons = {
        {"create+join vs Boost.Fiber (unguarded stack)", "BM_gt_thread_create_join",
         "BM_boost_fiber_create_join", goal::within, 1, boost_missing},
        {"create+join vs Boost.Fiber, guarded stack", "BM_gt_thread_create_join",
         "BM_boost_fiber_guarded_create_join", goal::none, 0, boost_missing},
        {"create+join vs std::thread", "BM_gt_thread_create_join", "BM_std_thread_create_join"},
        {"yield, 3 priority levels vs plain yield", "BM_gt_yield_pingpong_3_levels", "BM_gt_yield_pingpong",
         goal::within, 1.2},
        {"yield, one thread asleep vs plain yield", "BM_gt_yield_pingpong_with_sleeper",
         "BM_gt_yield_pingpong"},
        {"memory per blocked thread (10,000 blocked)", "BM_gt_memory_blocked_threads", nullptr, goal::at_most,
         8},
        {"memory vs Boost.Fiber (unguarded stack)", "BM_gt_memory_blocked_threads",
         "BM_boost_fiber_memory_blocked", goal::none, 0, boost_missing},
        {"memory vs Boost.Fiber, guarded stack", "BM_gt_memory_blocked_threads",
         "BM_boost_fiber_guarded_memory_blocked", goal::none, 0, boost_missing},
    };
    return bench::run_and_compare(argc, argv, comparisons);
}
