// Priorities, blocking join, sleep and cleanup handlers, visible in order.
//
//   low  (priority 4)  background work; runs only when nobody else can
//   mid  (priority 16) creates high, then blocks joining it
//   high (priority 24) preempts mid when created, sleeps, preempts low when it wakes
//
//   make demo-phaseN    (or, in the phase folder: build/examples/priorities)
//   GT_TRACE=trace.json build/examples/priorities   # then open trace.json in ui.perfetto.dev
#include <gt/thread.hpp>

#include <chrono>
#include <iostream>
#include <string_view>

namespace {

using namespace std::chrono_literals;

bool high_done = false;

void say(std::string_view what) {
    std::cout << gt::this_thread::get_name() << " (priority " << gt::this_thread::get_priority() << "): " << what
              << '\n';
}

void low_work() {
    gt::this_thread::cleanup_push([] { say("cleanup handler runs as low finishes"); });
    say("runs: every other thread is blocked or sleeping");
    say("works in the background, yielding, until high wakes");
    while (!high_done) gt::this_thread::yield();  // a yield lets only equal or higher priorities in
    say("resumes: nobody of higher priority is READY any more");
}

void high_work() {
    say("runs at once: it outranks mid, which was switched out");
    say("sleeps 20 ms");
    gt::this_thread::sleep_for(20ms);
    say("woke up and preempted low at its next yield");
    high_done = true;
}

void mid_work() {
    say("creates high");
    gt::thread high({.priority = 24, .name = "high"}, high_work);
    say("is back while high sleeps; joins high (blocks)");
    high.join();
    say("joined high");
}

}  // namespace

int main() {
    say("creates low and mid, then joins mid (blocks)");
    gt::thread low({.priority = 4, .name = "low"}, low_work);
    gt::thread mid({.priority = 16, .name = "mid"}, mid_work);
    mid.join();
    say("joined mid; joins low");
    low.join();
    say("all threads joined");
}
