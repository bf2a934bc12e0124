// Starvation under strict priorities: as long as a higher level always has
// a READY thread, a lower level never runs, however long it has waited.
//
//   build/examples/starvation   (in the phase folder)
#include <gt/thread.hpp>

#include <iostream>

int main() {
    long busy_turns = 0;
    long busy_turns_at_low_start = -1;
    // Two threads of priority 20 that always have more to do: the level is
    // never empty while either runs, since each yield hands over to the other.
    auto busy = [&] {
        for (int i = 0; i < 500'000; ++i) {
            ++busy_turns;
            gt::this_thread::yield();
        }
    };
    gt::this_thread::set_priority(gt::highest_priority);  // create all three before any runs
    gt::thread low({.priority = 10, .name = "low"}, [&] { busy_turns_at_low_start = busy_turns; });
    gt::thread a({.priority = 20, .name = "busy-a"}, busy);
    gt::thread b({.priority = 20, .name = "busy-b"}, busy);
    std::cout << "low (priority 10) has been READY since before busy-a and busy-b (priority 20) started\n";
    gt::this_thread::set_priority(gt::lowest_priority);  // main steps aside: the others run now
    a.join();
    b.join();
    low.join();
    std::cout << "low got its first turn after the busy threads had taken " << busy_turns_at_low_start
              << " turns, that is, once both had finished\n";
}
