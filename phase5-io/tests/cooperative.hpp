// For tests written for cooperative scheduling (the earlier phases) that
// assert an exact interleaving, or whose threads change shared data (a
// std::string, a counter) without a lock: with preemption, a tick may
// switch threads between any two instructions, which changes the order and
// can interrupt a thread halfway through changing shared data. Such a test
// declares, as its first statement,
//
//     const cooperative_scheduling cooperative;
//
// and runs with preemption off on this OS thread until it ends. (The
// earlier phase's own copies of these tests run unchanged against this
// phase's library with GT_TIME_SLICE_US=0: make check.)
#pragma once

#include <chrono>

#include "preemption_for_test.hpp"

class cooperative_scheduling : public preemption_for_test {
public:
    cooperative_scheduling() : preemption_for_test(std::chrono::microseconds(0)) {}
};
