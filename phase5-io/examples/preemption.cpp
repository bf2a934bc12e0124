// Preemption: three threads spin forever and never yield, yet every one of
// them, a fourth that yields now and then, and main keep getting the CPU:
// the timer ends each time slice.
//
//   build/examples/preemption                   (in the phase folder)
//   build/examples/preemption --no-preemption   phase 2's cooperative scheduling:
//                                               the first spinner keeps the CPU
//   GT_TRACE=build/preemption.trace.json build/examples/preemption   (see make trace)
#include <gt/preemption.hpp>
#include <gt/thread.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

constexpr int spinners = 3;
constexpr int threads = spinners + 1;  // and one that yields
std::array<std::atomic<long>, threads> counts{};

std::string name(int i) { return i < spinners ? std::string("spinner-") + char('a' + i) : "polite"; }

std::string moved_since(const std::array<long, threads>& before) {
    std::string line;
    for (int i = 0; i < threads; ++i) {
        line += (i == 0 ? "" : ", ") + name(i) + (counts[i].load() != before[i] ? " moved" : " idle");
    }
    return line;
}

std::array<long, threads> snapshot() {
    std::array<long, threads> now{};
    for (int i = 0; i < threads; ++i) now[i] = counts[i].load();
    return now;
}

}  // namespace

int main(int argc, char** argv) {
    const bool flag = argc == 2 && std::strcmp(argv[1], "--no-preemption") == 0;
    if (argc > 2 || (argc == 2 && !flag)) {
        std::fprintf(stderr, "usage: %s [--no-preemption]\n", argv[0]);
        return 2;
    }
    if (flag) gt::set_time_slice(0us);
    const bool off = gt::time_slice() == 0us;  // the flag, or GT_TIME_SLICE_US=0
    std::printf("preemption %s; three threads spin forever and never yield, one yields now and then\n",
                off ? "off" : ("on, time slice " + std::to_string(gt::time_slice().count()) + " µs").c_str());
    std::fflush(stdout);

    if (off) {
        // Nothing on this OS thread will ever take the CPU back from the
        // first spinner, so another OS thread has to look and end the demo.
        std::thread([] {
            const std::array<long, threads> start{};
            std::this_thread::sleep_for(1s);
            std::printf("after 1 s, seen from another OS thread: %s\n", moved_since(start).c_str());
            std::printf("main never woke from its first 0.2 s sleep: the first spinner never gave the CPU back\n");
            std::fflush(stdout);
            std::_Exit(0);
        }).detach();
    }

    for (int i = 0; i < spinners; ++i) {
        gt::thread({.name = name(i)}, [i] {
            for (;;) counts[i].store(counts[i].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        }).detach();
    }
    gt::thread({.name = name(spinners)}, [] {
        for (long n = 1;; ++n) {
            counts[spinners].store(n, std::memory_order_relaxed);
            if (n % 1'000'000 == 0) gt::this_thread::yield();  // gives up the rest of its slice
        }
    }).detach();

    // main is a thread of the same priority: it sleeps, and wakes to look.
    bool all_moved = true;
    for (int round = 1; round <= 5; ++round) {
        const std::array<long, threads> before = snapshot();
        gt::this_thread::sleep_for(200ms);
        const std::string line = moved_since(before);
        all_moved = all_moved && line.find("idle") == std::string::npos;
        std::printf("after %d.%d s: %s\n", round * 2 / 10, round * 2 % 10, line.c_str());
    }
    std::printf("%s\n", all_moved ? "every thread moved in every round, and main woke every time"
                                  : "some thread stood still in some round");
    return 0;  // the others are detached: they end with the process
}
