// The calling OS thread's time slice (and, if given, stall threshold) for
// the duration of one test, whatever GT_TIME_SLICE_US says; the previous
// values come back at the end.
//
//     const preemption_for_test preemption(100us);        // slice only
//     const preemption_for_test preemption(1ms, 20ms);    // and a stall threshold
#pragma once

#include <gt/preemption.hpp>

#include <chrono>
#include <optional>

class preemption_for_test {
public:
    explicit preemption_for_test(std::chrono::microseconds slice,
                                 std::optional<std::chrono::milliseconds> stall = std::nullopt)
        : old_slice_(gt::time_slice()), old_stall_(gt::stall_threshold()) {
        gt::set_time_slice(slice);
        if (stall) gt::set_stall_threshold(*stall);
    }
    ~preemption_for_test() {
        gt::set_stall_threshold(old_stall_);
        gt::set_time_slice(old_slice_);
    }
    preemption_for_test(const preemption_for_test&) = delete;
    preemption_for_test& operator=(const preemption_for_test&) = delete;

private:
    std::chrono::microseconds old_slice_;
    std::chrono::milliseconds old_stall_;
};
