// The wait-for graph: which thread a BLOCKED thread waits for (the owner of
// the mutex it waits on, or the thread it joins). Two users walk it: the
// deadlock check, before a thread blocks (a wait that would close a cycle
// never ends), and priority inheritance (scheduler::inherit_priority and
// update_priority, defined in wait_for.cpp), which passes a waiter's
// priority along the same chain. Everything here runs inside the
// scheduler's critical section.
#pragma once

#include <cstdint>
#include <string>

#include "control_block.hpp"

namespace gt::detail {

/// The longest chain either walk follows (Linux's max_lock_depth).
inline constexpr int max_wait_chain = 1024;

/// The owner of mutex queue `q` (from its lock word); nullptr when no
/// thread owns it or `q` is not a mutex's.
control_block* owner_of(const wait_queue& q) noexcept;

/// The thread `t` waits for: the owner of the mutex it is BLOCKED on, or
/// the thread it joins; nullptr for every other wait (a condition
/// variable, a sleep: nobody in particular ends them).
control_block* waits_for(const control_block& t) noexcept;

/// Before `self` waits for `target` (the owner of mutex `q`, or with
/// q == nullptr the thread it joins): if the chain of waits from `target`
/// leads back to `self`, the wait would never end unless one of them has
/// a deadline (`self_timed`, or a timed lock in the chain). Then it
/// throws std::system_error (resource_deadlock_would_occur) whose message
/// names every thread and mutex of the cycle, prefixed by `function`; or,
/// with GT_DEADLOCK=abort in the environment, writes that and the dump to
/// stderr and aborts. Cost: one hop per thread in the chain (usually 1-2).
void check_wait_for_cycle(const control_block& self, const control_block* target, const wait_queue* q,
                          bool self_timed, const char* function);

/// Adds `q` to `owner`'s held_contended list if it is not there yet.
void note_contended(control_block& owner, wait_queue& q) noexcept;
/// Removes `q` from `owner`'s held_contended list if it is there.
void drop_contended(control_block& owner, wait_queue& q) noexcept;

/// `gt::mutex "name" (0x...)`, or the kind and the address alone.
std::string object_text(const wait_queue& q);

/// A thread that ends while it owns a mutex that others wait on (or, while
/// the lock-order check is on, any mutex) is reported, naming the thread
/// and the mutexes, and the process aborts: the mutex would stay locked
/// for ever, and its lock word would name a control block that the next
/// new thread may reuse. Returns if it holds none.
void check_holds_nothing(const control_block& t) noexcept;
/// What a BLOCKED thread waits on, for the dump and the deadlock report:
/// `gt::mutex "m" (0x...) owned by thread 3 "a", for 12 ms`, `join of
/// thread 4 "b"`, `condition variable (0x...)`, `sleep, 3 ms left`;
/// empty if it is not BLOCKED.
std::string wait_text(const control_block& t, std::int64_t now_ns);

}  // namespace gt::detail
