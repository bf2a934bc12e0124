// The debug dump: every thread with its id, name, state (and what a
// BLOCKED thread waits for), priority, stack size and stack high-water mark.
//
//   build/examples/thread_dump   (in the phase folder)
#include <gt/debug.hpp>
#include <gt/thread.hpp>

#include <chrono>
#include <cstring>
#include <iostream>

namespace {

using namespace std::chrono_literals;

void use_stack(std::size_t bytes) {
    char buffer[32 * 1024];
    std::memset(buffer, 1, bytes < sizeof buffer ? bytes : sizeof buffer);
    asm volatile("" : : "r"(buffer) : "memory");  // keep the writes
}

}  // namespace

int main() {
    gt::thread sleeper({.priority = 20, .name = "sleeper"}, [] { gt::this_thread::sleep_for(10ms); });
    gt::thread deep({.stack_size = 64 * 1024, .name = "deep"}, [] { use_stack(30 * 1024); });
    gt::thread joiner({.name = "joiner"}, [&] { sleeper.join(); });
    gt::this_thread::yield();  // deep runs and finishes; joiner blocks on sleeper
    gt::debug::dump_threads(std::cout);
    joiner.join();
    deep.join();
}
