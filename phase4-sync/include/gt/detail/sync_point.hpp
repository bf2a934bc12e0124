// The hook every synchronization primitive calls at its synchronization
// points, for the deterministic scheduling mode (gt/deterministic.hpp,
// src/deterministic.cpp). Not part of the API.
//
// Where it is called, before the operation takes effect:
//   lock, timed lock     src/mutex.cpp        lock_contended
//   try_lock             src/mutex.cpp        try_lock_slow
//   unlock               src/mutex.cpp        unlock_contended
//   wait, notify         src/condition_variable.cpp  wait_on, notify_one, notify_all
//   thread create, join  src/thread.cpp       thread::start (after), thread::join
//   yield                src/thread.cpp       this_thread::yield (logged only)
// A new primitive calls it at the start of each of its operations that
// another thread can observe (acquire, release, arrive, send, receive,
// close), outside the scheduler's critical section.
#pragma once

#include <cstdint>

#include "gt/detail/wait_queue.hpp"

namespace gt::debug {

/// One step of a deterministic schedule, as gt::debug::schedule_log
/// records it: a synchronization point the running thread reached, or
/// `run`, the scheduler's pick of the thread that runs next.
enum class schedule_event : std::uint8_t {
    run,       ///< the scheduler picked this thread to run
    create,    ///< it created a thread (logged after the new thread is READY)
    join,      ///< it is about to join a thread
    yield,     ///< it called gt::this_thread::yield
    lock,      ///< it is about to lock a mutex (also a timed lock, a semaphore's acquire)
    try_lock,  ///< it is about to try to lock a mutex
    unlock,    ///< it is about to unlock a mutex (also a semaphore's release)
    wait,      ///< it is about to wait on a condition variable (also a barrier's or a latch's wait)
    notify,    ///< it is about to notify a condition variable (also a latch's count down)
    send,      ///< it is about to send on a channel
    receive,   ///< it is about to receive from a channel
    close,     ///< it is about to close a channel
    other,     ///< another primitive's operation
};

}  // namespace gt::debug

namespace gt::detail {

/// The deterministic mode's work at a synchronization point (log the
/// step, advance the virtual clock, maybe switch): src/deterministic.cpp.
void sync_point_slow(debug::schedule_event what) noexcept;

/// A synchronization point: in the deterministic mode, the running thread
/// may be switched away from here, to a READY thread chosen by the seed.
/// Otherwise nothing: one thread-local load and a branch. The mode keeps
/// running_thread nullptr while it is on (so that the mutexes' inline fast
/// paths, which already test it, take their slow paths and reach this
/// hook); before the OS thread's first gt call it is nullptr too, and the
/// slow function finds no scheduler and returns.
/// Outside any critical section; not async-signal-safe.
inline void sync_point(debug::schedule_event what) noexcept {
    if (running_thread == nullptr) [[unlikely]] sync_point_slow(what);
}

}  // namespace gt::detail
