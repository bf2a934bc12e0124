// The operations on a wait queue (its head, detail::wait_queue, is in the
// public include/gt/detail/wait_queue.hpp so that primitives can embed it).
// A doubly linked list through control_block::wait_prev/wait_next: O(1)
// removal, for a waiter that a timeout or a handoff takes out of the middle.
// Every operation runs inside the scheduler's critical section.
#pragma once

#include "control_block.hpp"
#include "invariant.hpp"

namespace gt::detail {

/// The first waiter: the highest priority, the longest-waiting of it; or
/// nullptr.
inline control_block* front(const wait_queue& q) noexcept { return q.head; }

inline bool empty(const wait_queue& q) noexcept { return q.head == nullptr; }

/// Links `t` in after every waiter of its priority or higher (FIFO within a
/// level); `at_front_of_level`: before the others of its priority (a mutex
/// waiter that was woken and lost the lock again keeps its place, as Go's
/// semaphore queues such a waiter LIFO). O(waiters of higher priority).
inline void enqueue(wait_queue& q, control_block* t, bool at_front_of_level = false) noexcept {
    GT_INVARIANT_ON(t->waiting_on == nullptr, *t, "a thread waits on one wait queue at a time");
    control_block* after = q.tail;  // the new neighbour before t; nullptr: t becomes the head
    if (at_front_of_level) {
        while (after != nullptr && after->priority <= t->priority) after = after->wait_prev;
    } else {
        while (after != nullptr && after->priority < t->priority) after = after->wait_prev;
    }
    control_block* before = after != nullptr ? after->wait_next : q.head;
    t->wait_prev = after;
    t->wait_next = before;
    (after != nullptr ? after->wait_next : q.head) = t;
    (before != nullptr ? before->wait_prev : q.tail) = t;
    t->waiting_on = &q;
}

/// Unlinks `t`, which is on `q`.
inline void unlink(wait_queue& q, control_block* t) noexcept {
    GT_INVARIANT_ON(t->waiting_on == &q, *t, "only a thread on a wait queue is removed from it");
    (t->wait_prev != nullptr ? t->wait_prev->wait_next : q.head) = t->wait_next;
    (t->wait_next != nullptr ? t->wait_next->wait_prev : q.tail) = t->wait_prev;
    t->wait_prev = t->wait_next = nullptr;
    t->waiting_on = nullptr;
}

}  // namespace gt::detail
