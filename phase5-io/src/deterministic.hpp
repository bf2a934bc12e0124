// The deterministic scheduling mode's state, one per scheduler (the
// scheduler's deterministic_ member): the seed's generator, the virtual
// clock and the log. Its code is in deterministic.cpp; the API in
// include/gt/deterministic.hpp.
#pragma once

#include <cstdint>
#include <vector>

#include "gt/deterministic.hpp"

namespace gt::detail {

class scheduler;

/// splitmix64: a 64-bit counter stepped by the golden ratio, then mixed
/// (Steele, Lea and Flood, "Fast Splittable Pseudorandom Number
/// Generators", OOPSLA 2014; constants as in Vigna's reference
/// splitmix64.c, prng.di.unimi.it). Every seed gives a full-period,
/// well-mixed sequence, seed 1 as well as seed 2, which is what a test
/// that walks seeds 1, 2, 3... needs.
class splitmix64 {
public:
    explicit splitmix64(std::uint64_t seed = 0) noexcept : state_(seed) {}

    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        return z ^ (z >> 31);
    }

    /// A number in [0, n), n > 0: next() modulo n (skewed towards the low
    /// numbers by at most n / 2^64, nothing for a choice among threads).
    std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }

private:
    std::uint64_t state_;
};

/// Touched only inside the scheduler's critical section, by its own OS
/// thread; the log's storage is reserved when the mode is turned on, so
/// that logging never allocates (pick_deterministic may run where
/// allocating is unsafe).
struct deterministic_state {
    bool on = false;
    std::uint64_t seed = 0;
    splitmix64 dice;
    /// The mutexes' clock while the mode is on: 1 µs per synchronization
    /// point, so that the 1 ms after which a waiter gets the mutex handed
    /// to it ends at the same step of every replay.
    std::int64_t virtual_now_ns = 0;
    static constexpr std::int64_t ns_per_sync_point = 1000;
    /// The time slice to restore when the mode ends, ns.
    std::int64_t slice_before_ns = 0;
    std::vector<debug::schedule_step> log;
    std::uint64_t dropped = 0;

    void record(std::uint64_t thread_id, debug::schedule_event what) noexcept {
        if (log.size() < log.capacity()) {
            log.push_back({thread_id, what});
        } else {
            ++dropped;
        }
    }
};

/// The clock a mutex times its waiters by (the 1 ms handoff rule):
/// CLOCK_MONOTONIC, in ns; in the deterministic mode its virtual clock.
std::int64_t wait_clock_ns(const scheduler& s) noexcept;

/// GT_SCHEDULE_SEED from the environment; 0 (off) if unset or not a whole
/// number (reported on stderr).
std::uint64_t schedule_seed_from_environment() noexcept;

}  // namespace gt::detail
