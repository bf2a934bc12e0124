// For tests that must know when their threads have blocked, on a machine
// too busy to trust a sleep: counts the calling OS thread's BLOCKED threads
// that wait for `reason` (as the dump names it: "shared mutex", "barrier",
// "semaphore", "call_once", "channel", ...), and waits until there are `n`
// (or until any condition holds).
#pragma once

#include <gt/debug.hpp>
#include <gt/thread.hpp>

#include <chrono>
#include <sstream>
#include <string>

inline int blocked_on(const std::string& reason) {
    std::ostringstream dump;
    gt::debug::dump_threads(dump);
    const std::string text = dump.str();
    const std::string key = "BLOCKED (" + reason;
    int n = 0;
    for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) ++n;
    return n;
}

/// True once `condition()` holds, asked between short sleeps (the other
/// threads run meanwhile); false after 20 s (a broken primitive), so that
/// the test fails instead of hanging.
template <class Condition>
bool poll_until(Condition condition) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!condition()) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        gt::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
}

/// True once `n` threads block on `reason`; false after 20 s.
inline bool wait_until_blocked_on(const std::string& reason, int n) {
    return poll_until([&] { return blocked_on(reason) == n; });
}
