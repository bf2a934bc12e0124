// Run-once initialisation for green threads, with the interface of
// <mutex>'s std::once_flag and std::call_once (include <gt/mutex.hpp>,
// which includes this header, as <mutex> provides them).
//
// A once_flag is one atomic word and a wait queue:
//
//   0          not done: the next caller runs the function
//   running    the control block of the thread running it
//   done (1)   done: every call returns at once (one load, inline)
//
// A thread that finds another's initialisation running BLOCKS on the wait
// queue (wait_reason::call_once) until it ends; it does not spin. If the
// function throws, the flag goes back to "not done" and the first waiter
// runs it next (std semantics, [thread.once.callonce]).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>

#include "gt/detail/wait_queue.hpp"

namespace gt {

class once_flag;

namespace detail {

inline constexpr std::uintptr_t once_done = 1;

/// The slow paths (src/call_once.cpp). once_begin blocks while another
/// thread runs the function and returns true if the caller must run it
/// now (the flag names it as the runner), false once it is done. Throws
/// std::system_error (resource_deadlock_would_occur) if the caller runs
/// it already.
bool once_begin(once_flag& flag);
/// The function returned: done; wakes every waiter.
void once_succeeded(once_flag& flag) noexcept;
/// The function threw: not done; wakes the first waiter to run it.
void once_failed(once_flag& flag) noexcept;

}  // namespace detail

/// The flag of a gt::call_once, as std::once_flag ([thread.once.onceflag]).
/// constexpr: a `static gt::once_flag` is constant-initialised.
class once_flag {
public:
    constexpr once_flag() noexcept = default;
    once_flag(const once_flag&) = delete;
    once_flag& operator=(const once_flag&) = delete;
    ~once_flag() {
        if (waiters_.head != nullptr) [[unlikely]] destroyed_while_waited();
    }

private:
    friend bool detail::once_begin(once_flag&);
    friend void detail::once_succeeded(once_flag&) noexcept;
    friend void detail::once_failed(once_flag&) noexcept;
    template <class Callable, class... Args>
    friend void call_once(once_flag& flag, Callable&& f, Args&&... args);

    [[noreturn]] void destroyed_while_waited() const noexcept;

    std::atomic<std::uintptr_t> state_{0};
    detail::wait_queue waiters_{detail::wait_reason::call_once};
};

/// Calls `std::invoke(f, args...)` unless a call on `flag` has already
/// returned, as std::call_once ([thread.once.callonce]). While one thread
/// runs it, other callers on the same flag BLOCK until it ends; when it
/// returns, they return without calling. If it throws, the exception
/// reaches its caller, the flag stays not done, and the first waiter (or
/// the next caller) calls its own function.
///
/// @throws whatever `f` throws; std::system_error
///         (resource_deadlock_would_occur) if `f` calls call_once on the
///         same flag from the thread running it (std: deadlock).
///
/// Thread safety: any green thread of one OS thread's scheduler (phase 6:
/// any); the done check is one acquire load (after a thread-local load
/// that sends it to the deterministic mode's synchronization point while
/// that is on). Not async-signal-safe.
/// Source: [thread.once.callonce]; the blocking waiters follow Go's
/// sync.Once (src/sync/once.go: its doSlow takes a mutex, not a spin).
template <class Callable, class... Args>
void call_once(once_flag& flag, Callable&& f, Args&&... args) {
    // running_thread is nullptr in the deterministic mode: once_begin
    // then reaches the synchronization point (and answers "done" itself).
    if (detail::running_thread != nullptr && flag.state_.load(std::memory_order_acquire) == detail::once_done) return;
    if (!detail::once_begin(flag)) return;
    try {
        std::invoke(std::forward<Callable>(f), std::forward<Args>(args)...);
    } catch (...) {
        detail::once_failed(flag);
        throw;
    }
    detail::once_succeeded(flag);
}

}  // namespace gt
