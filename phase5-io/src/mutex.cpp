// The slow paths of gt's mutexes: what lock and unlock do when the one
// compare-and-swap of the fast path (include/gt/mutex.hpp) fails.
//
// Lock: inside the scheduler's critical section, take the mutex if it is
// free and not being handed off (barging: the running thread is already
// on the CPU, so letting it in is cheap); else set WAITERS and block on
// the wait queue. An unlock wakes the first waiter to try again; a waiter
// that has kept losing it to barging threads for more than 1 ms sets
// HANDOFF, and from then on unlock writes the first waiter into the lock
// word itself, so that no barging thread can take the mutex from under it
// (Go's starvation mode, src/internal/sync/mutex.go: starvationThresholdNs).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

#include "gt/detail/sync_point.hpp"
#include "gt/mutex.hpp"
#include "report.hpp"
#include "scheduler.hpp"
#include "sync_report.hpp"
#include "trace.hpp"
#include "wait_for.hpp"
#include "wait_queue.hpp"

namespace gt::detail {
namespace {

/// After this long a waiter asks for the mutex to be handed to it.
constexpr std::int64_t starvation_ns = 1'000'000;

control_block* owner_of(std::uintptr_t word) noexcept { return reinterpret_cast<control_block*>(word & ~lock_flags); }

std::string describe(const wait_queue& q) {
    char address[32];
    std::snprintf(address, sizeof address, "%p", static_cast<const void*>(&q));
    return q.name != nullptr ? std::string("\"") + q.name + "\" (" + address + ")" : std::string(address);
}

[[noreturn]] void refuse_foreign_owner(const control_block& self, const control_block& owner, const wait_queue& q) {
    std::fprintf(stderr,
                 "gt: %s would wait for gt::mutex %s, owned by %s of another OS thread's scheduler: sharing a "
                 "gt synchronization object between OS threads is supported from phase 6\n",
                 describe(self).c_str(), describe(q).c_str(), describe(owner).c_str());
    trace::flush();
    std::abort();
}

// Ends the caller's wait without the mutex (a timeout): when it was the
// last waiter, no flag may stay set, or every unlock would take the slow
// path and a HANDOFF would wait for a waiter that is gone.
void leave_without_lock(std::atomic<std::uintptr_t>& word, const wait_queue& waiters) noexcept {
    if (!empty(waiters)) return;
    std::uintptr_t w = word.load(std::memory_order_relaxed);
    while (!word.compare_exchange_weak(w, w & ~lock_flags, std::memory_order_relaxed)) {
    }
}

}  // namespace

std::uintptr_t lock_word::adopt_calling_thread() noexcept { return reinterpret_cast<std::uintptr_t>(scheduler::current().running()); }

bool lock_contended(std::atomic<std::uintptr_t>& word, wait_queue& waiters, std::int64_t deadline_ns) {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::lock);
    control_block* self = s.running();
    const auto me = reinterpret_cast<std::uintptr_t>(self);
    if (owner_of(word.load(std::memory_order_relaxed)) == self) {
        throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                                "gt::mutex::lock: " + describe(*self) + " already owns gt::mutex " +
                                    describe(waiters) + "; locking it again would wait forever");
    }
    std::int64_t waiting_since = 0;
    bool woken_before = false;
    const scheduler::critical_section cs(s);
    for (;;) {
        std::uintptr_t w = word.load(std::memory_order_relaxed);
        if (owner_of(w) == nullptr && (w & lock_handoff) == 0) {
            if (!word.compare_exchange_weak(w, w | me, std::memory_order_acquire, std::memory_order_relaxed)) continue;
            if (!empty(waiters)) {  // barged in ahead of waiters: it inherits the first one's priority
                note_contended(*self, waiters);
                s.inherit_priority(self, front(waiters)->priority);
            }
            return true;
        }
        if (owner_of(w) != nullptr && owner_of(w)->owner != &s) refuse_foreign_owner(*self, *owner_of(w), waiters);
        check_wait_for_cycle(*self, owner_of(w), &waiters, deadline_ns != scheduler::no_deadline, "gt::mutex::lock");
        std::uintptr_t want = w | lock_waiters;
        // The clock is read only by a waiter that an unlock woke and a
        // barging thread beat: the first block costs no clock read (about
        // a fifth of a contended lock's time on this VM), and the 1 ms
        // count starts at its first lost race.
        if (woken_before) {
            const std::int64_t now = wait_clock_ns(s);
            if (waiting_since == 0) waiting_since = now;
            if (now - waiting_since > starvation_ns) want |= lock_handoff;
        }
        if (want != w && !word.compare_exchange_weak(w, want, std::memory_order_relaxed)) continue;
        if (control_block* owner = owner_of(want)) {  // priority inheritance: the owner runs at our priority
            note_contended(*owner, waiters);
            s.inherit_priority(owner, self->priority);
        }
        // For the dump's "for N ms": the time of the last tick, which is
        // at most half a slice old, so that blocking reads no clock.
        self->blocked_since = s.last_tick_ns();
        // Woken and beaten to it by a barging thread: first in line of its
        // priority again, not behind the threads that came after it.
        const wake_reason why = s.block(waiters, deadline_ns, /*at_front_of_level=*/woken_before);
        if (why == wake_reason::handoff) {
            // The unlock wrote us into the word. Leave starvation mode when
            // nobody waits any more or we did not wait long (Go's rule;
            // never beaten by a barging thread counts as not long).
            if (empty(waiters) || waiting_since == 0 || wait_clock_ns(s) - waiting_since < starvation_ns) {
                word.fetch_and(~lock_handoff, std::memory_order_relaxed);
            }
            return true;
        }
        if (why == wake_reason::timeout) {
            leave_without_lock(word, waiters);
            if (control_block* owner = owner_of(word.load(std::memory_order_relaxed))) {
                if (empty(waiters)) drop_contended(*owner, waiters);
                s.update_priority(owner);  // it no longer inherits our priority
            }
            return false;
        }
        woken_before = true;
    }
}

namespace {

// release_locked's change of owner.
void hand_over(scheduler& s, std::atomic<std::uintptr_t>& word, wait_queue& waiters) noexcept {
    for (;;) {
        std::uintptr_t w = word.load(std::memory_order_relaxed);
        control_block* next = front(waiters);
        if (next == nullptr) {
            if (word.compare_exchange_weak(w, 0, std::memory_order_release, std::memory_order_relaxed)) return;
            continue;
        }
        const std::uintptr_t more = next->wait_next != nullptr ? lock_waiters : 0;
        if ((w & lock_handoff) != 0) {
            // Starvation mode: the first waiter owns it before it runs.
            const std::uintptr_t handed = reinterpret_cast<std::uintptr_t>(next) | more | lock_handoff;
            if (!word.compare_exchange_weak(w, handed, std::memory_order_release, std::memory_order_relaxed)) continue;
            s.wake(next, wake_reason::handoff);
            if (more != 0) {  // the new owner inherits from the waiters behind it
                note_contended(*next, waiters);
                s.inherit_priority(next, front(waiters)->priority);
            }
            return;
        }
        if (!word.compare_exchange_weak(w, more, std::memory_order_release, std::memory_order_relaxed)) continue;
        s.wake(next, wake_reason::notified);
        return;
    }
}

}  // namespace

/// Releases a mutex the running thread owns, inside a critical section;
/// wakes the first waiter, without switching. Also used by a condition
/// variable's wait, which releases the mutex and blocks in one section.
void release_locked(scheduler& s, std::atomic<std::uintptr_t>& word, wait_queue& waiters) noexcept {
    control_block* self = s.running();
    drop_contended(*self, waiters);
    hand_over(s, word, waiters);
    s.update_priority(self);  // down to what it still inherits
}

void unlock_contended(std::atomic<std::uintptr_t>& word, wait_queue& waiters) noexcept {
    scheduler& s = scheduler::current();
    control_block* self = s.running();
    const control_block* owner = owner_of(word.load(std::memory_order_relaxed));
    if (owner != self) {
        std::fprintf(stderr, "gt: %s unlocks gt::mutex %s, which %s\n", describe(*self).c_str(),
                     describe(waiters).c_str(),
                     owner == nullptr ? "is not locked" : ("is owned by " + describe(*owner)).c_str());
        trace::flush();
        std::abort();
    }
    s.check_not_reentered();
    sync_point(debug::schedule_event::unlock);
    const scheduler::critical_section cs(s);
    release_locked(s, word, waiters);
}

bool try_lock_slow(std::atomic<std::uintptr_t>& word) noexcept {
    scheduler& s = scheduler::current();
    sync_point(debug::schedule_event::try_lock);
    std::uintptr_t expected = 0;
    return word.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(s.running()),
                                        std::memory_order_acquire, std::memory_order_relaxed);
}

void destroyed_while_waited(const void* object, const char* kind, const wait_queue& waiters) noexcept {
    std::string who;
    for (const control_block* t = waiters.head; t != nullptr; t = t->wait_next) who += (who.empty() ? "" : ", ") + describe(*t);
    std::fprintf(stderr, "gt: %s %s (%p) destroyed while threads wait on it: %s\n", kind,
                 waiters.name != nullptr ? (std::string("\"") + waiters.name + "\"").c_str() : "", object, who.c_str());
    trace::flush();
    std::abort();
}

void recursive_lock::count_up() {
    if (depth_ == max_depth) {
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "gt::recursive_mutex::lock: " + describe(*scheduler::current().running()) +
                                    " has locked it " + std::to_string(max_depth) + " times");
    }
    ++depth_;
}

}  // namespace gt::detail
