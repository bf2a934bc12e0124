/// @file
/// Looking inside the runtime: a dump of every green thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>

namespace gt {
class thread;
}

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

/// The priority `t` runs at now: its base priority (gt::thread::get_priority)
/// or, while it owns a gt::mutex that threads of higher priority wait for
/// (directly or through a chain of mutexes), the highest of theirs
/// (priority inheritance; src/wait_for.cpp). Not async-signal-safe.
/// @throws std::system_error as gt::thread::get_priority.
int effective_priority(const thread& t);

/// The calling thread's effective priority (see effective_priority).
int this_thread_effective_priority() noexcept;

/// What the lock-order check does (GT_LOCK_ORDER=off|report|abort in the
/// environment; by default `report` in a build of the runtime without
/// NDEBUG, `off` with it). While it is on, every gt mutex lock and unlock
/// notes the mutex in the calling green thread's list of held mutexes, and
/// a lock taken while holding others adds "held -> taken" edges to one
/// graph for the process; an edge that closes a cycle (two threads, or
/// more, take the same mutexes in different orders: they can deadlock,
/// even if this run did not) is reported once, naming the mutexes, both
/// orders and the threads that took them (Abseil's deadlock detection,
/// absl/synchronization/mutex.cc).
enum class lock_order_check {
    off,     ///< nothing is noted: lock and unlock pay one load and branch
    report,  ///< a cycle is written to stderr once; the program goes on
    abort,   ///< a cycle is written to stderr, then the process aborts
};

/// Changes the mode for the whole process. Mutexes locked before the
/// check was on are not in the held lists (their unlock is ignored).
/// Call it while no other OS thread uses gt mutexes. Not async-signal-safe.
void set_lock_order_check(lock_order_check mode) noexcept;

}  // namespace gt::debug
