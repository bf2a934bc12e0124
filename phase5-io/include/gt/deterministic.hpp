/// @file
/// The deterministic scheduling mode, for testing concurrent code: a seed
/// decides every switch, so the same seed replays the same interleaving,
/// and running a scenario under many seeds searches for a bad one.
///
/// While the mode is on for an OS thread, its scheduler
///   - turns preemption off there (the timer would switch at instants the
///     seed does not choose), and restores the time slice afterwards;
///   - treats every synchronization point as a chance to switch: each
///     mutex lock, try_lock and unlock, condition-variable wait and
///     notify, thread creation and join (and each operation of the other
///     gt primitives), where the running thread stays or gives way, each
///     with the same probability as every READY thread it could give way
///     to; and every gt::this_thread::yield;
///   - picks the thread to run next pseudo-randomly among the READY
///     threads of the highest non-empty priority level (strict priority
///     still holds; the order within a level is the seed's), from a
///     splitmix64 generator seeded with the seed;
///   - measures a mutex waiter's wait (the 1 ms after which the mutex is
///     handed to it) on a virtual clock of 1 µs per synchronization point,
///     not on the real one, which a busy machine would make vary;
///   - logs each step, (thread id, event), for gt::debug::schedule_log.
/// Replay holds for a program whose threads interact only through gt's
/// primitives and do not sleep or wait with a deadline (timers run on the
/// real clock), with the same threads created in the same order.
///
/// Set it from the environment, `GT_SCHEDULE_SEED=n` (n > 0; read when an
/// OS thread's scheduler is created, on its first gt call), or from a test
/// with gt::debug::deterministic_schedule.
///
/// The idea is CHESS's (Musuvathi et al., "Finding and Reproducing
/// Heisenbugs in Concurrent Programs", OSDI 2008): control every
/// scheduling decision at synchronization points, so an interleaving can
/// be searched for and replayed. CHESS and Rust's loom enumerate the
/// interleavings; this mode samples them at random, as the Relacy race
/// detector's random scheduler does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gt/detail/sync_point.hpp"

namespace gt::debug {

/// Turns the deterministic mode on for the calling OS thread with `seed`,
/// or off with 0. A new seed starts the generator, the virtual clock and
/// the log afresh. Turning it on turns preemption off on this OS thread;
/// turning it off restores the time slice it had (do not call
/// gt::set_time_slice meanwhile). Not async-signal-safe.
/// @throws std::system_error as gt::set_time_slice, when the timer cannot
///         be set.
void set_schedule_seed(std::uint64_t seed);

/// The calling OS thread's seed; 0 when the mode is off.
std::uint64_t schedule_seed() noexcept;

/// One logged step: the thread (its gt::thread id number) and what it did.
struct schedule_step {
    std::uint64_t thread_id;  ///< the thread's id number (as gt::thread::id prints it)
    schedule_event event;     ///< what it did, or `run`: the scheduler picked it
    /// Same thread, same event.
    friend bool operator==(const schedule_step&, const schedule_step&) = default;
};

/// The most steps the log keeps; later steps of the same run are counted,
/// not kept (the log never allocates while the mode runs).
inline constexpr std::size_t schedule_log_capacity = 1 << 16;

/// The steps logged on the calling OS thread since the seed was last set
/// (the log outlives the mode, so a test reads it after the scenario),
/// in order, at most schedule_log_capacity of them.
/// Thread ids are process-unique: to compare two runs, compare the order
/// in which threads appear, not the numbers.
std::vector<schedule_step> schedule_log();

/// Steps of the last run that did not fit in the log.
std::uint64_t schedule_log_dropped() noexcept;

/// The event's name ("lock", "run", ...), for printing a log.
const char* to_string(schedule_event event) noexcept;

/// The deterministic mode for the lifetime of this guard, on the OS
/// thread that creates it; the previous setting (off, or a seed, which
/// then starts afresh) comes back when it ends.
///
///     for (std::uint64_t seed = 1; seed <= 200; ++seed) {
///         const gt::debug::deterministic_schedule mode(seed);
///         run_scenario();
///     }
class deterministic_schedule {
public:
    /// @throws std::invalid_argument if `seed` is 0; as set_schedule_seed.
    explicit deterministic_schedule(std::uint64_t seed);
    ~deterministic_schedule();
    deterministic_schedule(const deterministic_schedule&) = delete;
    deterministic_schedule& operator=(const deterministic_schedule&) = delete;

private:
    std::uint64_t previous_;
};

}  // namespace gt::debug
