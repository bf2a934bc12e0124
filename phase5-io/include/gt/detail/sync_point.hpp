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
//   shared_mutex         src/shared_mutex.cpp every rw_*_contended and rw_try_*_slow
//   semaphore            src/semaphore.cpp    acquire_contended, try_acquire_slow, release_contended
//   barrier              src/barrier.cpp      barrier_state::arrive, barrier_state::wait
//   latch                src/latch.cpp        count_down, wait_contended, try_wait_slow
//   call_once            src/call_once.cpp    once_begin, once_succeeded, once_failed
//   channel              src/channel.cpp      channel_core::send, receive, close
// Each inline fast path that can complete without the runtime first tests
// running_thread, as the mutexes' fast paths do: null sends it to the
// slow path, where the call is; the mode costs a fast path nothing more.
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
    run,              ///< the scheduler picked this thread to run
    create,           ///< it created a thread (logged after the new thread is READY)
    join,             ///< it is about to join a thread
    yield,            ///< it called gt::this_thread::yield
    lock,             ///< it is about to lock a mutex or a shared_mutex exclusively (also a timed lock)
    try_lock,         ///< it is about to try to lock a mutex or a shared_mutex exclusively
    unlock,           ///< it is about to unlock a mutex or a shared_mutex's exclusive hold
    wait,             ///< it is about to wait on a condition variable, a barrier or a latch (also try_wait)
    notify,           ///< it is about to notify a condition variable
    send,             ///< it is about to send on a channel (also try_send, a timed send)
    receive,          ///< it is about to receive from a channel (also try_receive, a timed receive)
    close,            ///< it is about to close a channel
    other,            ///< another primitive's operation
    lock_shared,      ///< it is about to lock a shared_mutex shared (also a timed lock_shared)
    try_lock_shared,  ///< it is about to try to lock a shared_mutex shared
    unlock_shared,    ///< it is about to give up a shared hold
    acquire,          ///< it is about to acquire a semaphore's unit (also a timed acquire)
    try_acquire,      ///< it is about to try to acquire a semaphore's unit
    release,          ///< it is about to release a semaphore's units
    arrive,           ///< it is about to arrive at a barrier or count a latch down
    call_once,        ///< it is about to enter gt::call_once, or its function returned or threw
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
