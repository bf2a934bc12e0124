/// @file
/// Looking inside the runtime: a dump of every green thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>

namespace gt::debug {

/// Writes one line per green thread of the calling OS thread's scheduler,
/// in creation order: id, name, state (with what a BLOCKED thread waits
/// for: join or sleep), priority, stack size in bytes, the stack's
/// high-water mark in bytes — how deep it has ever been touched, at page
/// granularity (from mincore(2); a reused stack remembers earlier threads)
/// — and the accounting of thread_stats: CPU time in ms, switches,
/// preemptions.
/// The adopted main thread runs on the OS thread's stack and shows
/// "OS stack". Not async-signal-safe.
/// @throws whatever writing to `out` throws.
void dump_threads(std::ostream& out);

/// What the runtime has counted for one thread.
struct thread_stats {
    /// CPU time, sampled: each timer tick charges the CPU time the OS thread
    /// used since the previous tick (CLOCK_THREAD_CPUTIME_ID) to the thread
    /// it interrupts, as Linux's tick-based accounting does; accurate over
    /// many ticks, not for short bursts. Over all threads of an OS thread
    /// it adds up to that OS thread's CPU time. Zero while no timer ticks
    /// (preemption and stall detector both off).
    std::chrono::nanoseconds cpu_time;
    /// Times the thread was switched to.
    std::uint64_t switches;
    /// Times the timer switched away from it because its slice was used.
    std::uint64_t preemptions;
    /// Timer ticks that interrupted it, whether they switched or not (a tick
    /// that finds it where it cannot be preempted is deferred).
    std::uint64_t ticks;
};

/// The calling thread's accounting. Not async-signal-safe.
thread_stats this_thread_stats() noexcept;

}  // namespace gt::debug
