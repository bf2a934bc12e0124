// Priority inversion, as on the Mars Pathfinder lander in 1997, and its fix:
// a low-priority thread holds the lock of a shared bus, a high-priority
// thread needs the bus, and two medium-priority threads, which need no
// lock at all, keep the CPU. Priorities are strict, so the low thread does
// not run while a medium one is READY, and the high thread waits for the
// mediums' work as well as the low thread's: the mediums outrank it in
// effect. Two runs of the same scene:
//   1. the lock is a gt::binary_semaphore: a semaphore has no owner (any
//      thread may release it), so the runtime cannot tell whom the high
//      thread waits for, and nobody's priority changes;
//   2. the lock is a gt::mutex: its lock word names the owner, and while
//      the high thread waits, the low thread runs at the high priority
//      (priority inheritance) until it unlocks.
// Waiting is measured in timer ticks (each tick interrupts whoever runs;
// the timer ticks twice per 100 µs slice), not in wall-clock time, which a
// busy machine stretches.
//
//   build/examples/inversion                  (in the phase folder; both runs)
//   build/examples/inversion semaphore        (only the first run; "mutex": only the second)
//   GT_TRACE=build/inversion.trace.json build/examples/inversion mutex
//                                             (the trace shows low's priority change, and the
//                                              mediums waiting until high is done)
#include <gt/debug.hpp>
#include <gt/mutex.hpp>
#include <gt/preemption.hpp>
#include <gt/semaphore.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr int low_priority = 1, medium_priority = 10, high_priority = 30;
constexpr int mediums = 2;
constexpr std::uint64_t low_work_ticks = 10;      // the low thread's work while it holds the bus
constexpr std::uint64_t medium_work_ticks = 100;  // each medium thread's work (no lock)

// Ticks that interrupted a spinning thread (low or medium): the scene's clock.
std::atomic<std::uint64_t> work_ticks{0};
std::atomic<std::uint64_t> medium_ticks{0};

// Spins until `n` timer ticks have interrupted the calling thread, counting
// each in the scene's clock (and in `mine`, if given); calls `look()` on
// every turn of the loop.
template <class Look>
void work_for_ticks(std::uint64_t n, std::atomic<std::uint64_t>* mine, Look look) {
    std::uint64_t seen = gt::debug::this_thread_stats().ticks;
    const std::uint64_t end = seen + n;
    while (seen < end) {
        look();
        const std::uint64_t now = gt::debug::this_thread_stats().ticks;
        if (now != seen) {
            work_ticks += now - seen;
            if (mine != nullptr) *mine += now - seen;
            seen = now;
        }
    }
}

// A sleeping thread is BLOCKED, so lower priorities run meanwhile.
void sleep_until_set(const std::atomic<bool>& flag) {
    while (!flag.load()) gt::this_thread::sleep_for(50us);
}

// What the high thread saw, and what the low thread's priority was.
struct outcome {
    std::uint64_t waited_ticks = 0;         // ticks between its request for the bus and getting it
    std::uint64_t medium_ticks_waited = 0;  // of those, the mediums' work
    int low_base = -1, low_effective = -1;  // low's, read by low while it held the bus and high waited
    int low_after = -1;                     // low's effective priority after its unlock
};

// The scene, with `Lock` as the bus's lock (lock() and unlock()).
template <class Lock>
outcome run_scene(Lock& bus) {
    work_ticks = 0;
    medium_ticks = 0;
    outcome out;
    std::atomic<bool> low_holds{false}, high_waits{false};
    gt::thread* low_thread = nullptr;  // set before low first runs (main outranks it)
    gt::thread low({.priority = low_priority, .name = "low"}, [&] {
        bus.lock();
        low_holds = true;
        work_for_ticks(low_work_ticks, nullptr, [&] {
            if (high_waits && out.low_effective < 0) {  // high has asked for the bus: what does low run at?
                out.low_base = low_thread->get_priority();
                out.low_effective = gt::debug::effective_priority(*low_thread);
            }
        });
        bus.unlock();
        out.low_after = gt::debug::this_thread_effective_priority();  // (main may be in low.join() by now)
    });
    low_thread = &low;
    sleep_until_set(low_holds);  // main blocks: low runs and takes the bus
    std::vector<gt::thread> medium;
    for (int i = 0; i < mediums; ++i) {
        medium.emplace_back(
            gt::thread::attributes{.priority = medium_priority, .name = "medium-" + std::to_string(i + 1)},
            [] { work_for_ticks(medium_work_ticks, &medium_ticks, [] {}); });
    }
    gt::thread high({.priority = high_priority, .name = "high"}, [&] {  // runs at once: it outranks main
        const std::uint64_t asked = work_ticks, medium_asked = medium_ticks;
        high_waits = true;
        bus.lock();  // low holds it: high blocks
        out.waited_ticks = work_ticks - asked;
        out.medium_ticks_waited = medium_ticks - medium_asked;
        bus.unlock();
    });
    high.join();
    for (auto& m : medium) m.join();
    low.join();
    return out;
}

// Lets a binary semaphore stand in for a lock: lock() takes its one unit,
// unlock() gives it back.
struct semaphore_lock {
    gt::binary_semaphore units{1};
    void lock() { units.acquire(); }
    void unlock() { units.release(); }
};

void report(const outcome& out) {
    std::printf("   high waited %llu ticks for the bus; during %llu of them the medium threads ran\n",
                static_cast<unsigned long long>(out.waited_ticks),
                static_cast<unsigned long long>(out.medium_ticks_waited));
    if (out.low_effective >= 0) {
        std::printf(
            "   while high waited, low's priority: base %d, effective %d "
            "(gt::debug::effective_priority)\n",
            out.low_base, out.low_effective);
    } else {
        std::printf(
            "   low finished before high asked for the bus (rare: no inversion this time); run it again\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string only = argc > 1 ? argv[1] : "";
    if (only != "" && only != "semaphore" && only != "mutex") {
        std::fprintf(stderr, "usage: %s [semaphore|mutex]\n", argv[0]);
        return 2;
    }
    gt::set_time_slice(100us);
    std::printf(
        "The scene: low (priority %d) holds the bus and needs %llu ticks of work to finish; high\n"
        "(priority %d) asks for the bus; %d medium threads (priority %d) want %llu ticks of CPU each.\n",
        low_priority, static_cast<unsigned long long>(low_work_ticks), high_priority, mediums,
        medium_priority, static_cast<unsigned long long>(medium_work_ticks));

    if (only != "mutex") {
        std::printf(
            "1. the bus's lock is a gt::binary_semaphore (a semaphore has no owner: no inheritance)\n");
        semaphore_lock semaphore;
        report(run_scene(semaphore));
        std::printf(
            "   priority inversion: low could not run while a medium thread was READY, so high,\n"
            "   the most important thread, waited for all the mediums' work too\n");
    }
    if (only == "semaphore") return 0;

    std::printf("2. the bus's lock is a gt::mutex (its lock word names the owner)\n");
    gt::mutex mutex({.name = "bus"});
    const outcome fixed = run_scene(mutex);
    report(fixed);
    std::printf(
        "   priority inheritance: while high waited for low's mutex, low ran at high's priority,\n"
        "   above the mediums; it finished its work, unlocked, and dropped back to %d\n",
        fixed.low_after);
    return 0;
}
