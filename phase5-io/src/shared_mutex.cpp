// The slow paths of gt::shared_mutex and gt::shared_timed_mutex
// (include/gt/shared_mutex.hpp): what happens when the one compare-and-swap
// of a fast path fails because a writer holds the lock or waits for it,
// or when running_thread is nullptr (no scheduler yet, or the
// deterministic mode: each slow path starts with its sync_point).
//
// Every change below happens inside the scheduler's critical section, and
// the thread that releases the lock admits the next holders itself:
//   - a writer's unlock admits EVERY queued reader at once (the word
//     becomes their count), or else hands the lock to the first writer;
//   - the last reader out before a waiting writer hands the lock to it;
//   - a writer that times out lets in the readers it alone held back.
// A waiter woken with wake_reason::handoff therefore holds the lock
// already. Go's sync.RWMutex does the same with its readerWait count and
// two semaphores (src/sync/rwmutex.go); writer preference as there.
#include <system_error>

#include "gt/detail/sync_point.hpp"
#include "gt/shared_mutex.hpp"
#include "invariant.hpp"
#include "scheduler.hpp"
#include "sync_report.hpp"
#include "wait_queue.hpp"

namespace gt::detail {
namespace {

control_block* writer_of(std::uint64_t w) noexcept {
    return (w & rw_write_locked) != 0 ? reinterpret_cast<control_block*>(w & ~rw_flags) : nullptr;
}

std::uint64_t readers_of(std::uint64_t w) noexcept { return (w & rw_write_locked) != 0 ? 0 : w / rw_one_reader; }

std::string describe(rw_lock& l) { return describe("gt::shared_mutex", &l, l.writers().name); }

[[noreturn]] void refuse_relock(rw_lock& l, const control_block& self, const char* function) {
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            std::string(function) + ": " + describe(self) + " holds " + describe(l) +
                                " exclusively already; waiting for it would wait forever");
}

// Admits every queued reader at once, beside the readers that hold it
// (none if it was write-locked): they hold the lock when they run.
// `writers_flag`: a writer waits, and will wait for all of them.
void admit_all_readers(scheduler& s, rw_lock& l, std::uint64_t writers_flag) noexcept {
    std::uint64_t n = readers_of(l.word().load(std::memory_order_relaxed));
    for (const control_block* t = front(l.readers()); t != nullptr; t = t->wait_next) ++n;
    l.word().store(n * rw_one_reader | writers_flag, std::memory_order_release);
    while (control_block* t = front(l.readers())) s.wake(t, wake_reason::handoff);
}

// Hands the lock to the first waiting writer; `readers_flag`: readers wait
// behind it (they stay queued until it unlocks).
void hand_to_writer(scheduler& s, rw_lock& l, std::uint64_t readers_flag) noexcept {
    control_block* t = front(l.writers());
    const std::uint64_t more = t->wait_next != nullptr ? rw_writers_waiting : 0;
    l.word().store(reinterpret_cast<std::uint64_t>(t) | rw_write_locked | more | readers_flag,
                   std::memory_order_release);
    s.wake(t, wake_reason::handoff);
}

}  // namespace

bool rw_try_lock_slow(rw_lock& l) noexcept {
    scheduler& s = scheduler::current();  // adopts an OS thread that has not called gt yet
    sync_point(debug::schedule_event::try_lock);
    std::uint64_t expected = 0;
    return l.word().compare_exchange_strong(expected, reinterpret_cast<std::uint64_t>(s.running()) | rw_write_locked,
                                            std::memory_order_acquire, std::memory_order_relaxed);
}

bool rw_try_lock_shared_slow(rw_lock& l) noexcept {
    sync_point(debug::schedule_event::try_lock_shared);
    return l.try_add_reader();
}

bool rw_lock_contended(rw_lock& l, std::int64_t deadline_ns) {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::lock);
    control_block* self = s.running();
    const scheduler::critical_section cs(s);
    for (;;) {
        std::uint64_t w = l.word().load(std::memory_order_relaxed);
        if (writer_of(w) == self) refuse_relock(l, *self, "gt::shared_mutex::lock");
        if (w == 0) {
            if (l.word().compare_exchange_weak(w, reinterpret_cast<std::uint64_t>(self) | rw_write_locked,
                                               std::memory_order_acquire, std::memory_order_relaxed)) {
                return true;
            }
            continue;
        }
        // From here on, new readers wait (the fast path sees the flag).
        if ((w & rw_writers_waiting) == 0 &&
            !l.word().compare_exchange_weak(w, w | rw_writers_waiting, std::memory_order_relaxed)) {
            continue;
        }
        const wake_reason why = s.block(l.writers(), deadline_ns);
        if (why == wake_reason::handoff) return true;  // the releaser wrote us into the word
        GT_INVARIANT(why == wake_reason::timeout, "a shared_mutex's writer is woken only by a handoff or its deadline");
        // Given up: if it was the last writer waiting, the readers it held
        // back go in now, unless a writer holds the lock.
        if (empty(l.writers())) {
            w = l.word().fetch_and(~rw_writers_waiting, std::memory_order_relaxed);
            if ((w & rw_write_locked) == 0 && !empty(l.readers())) admit_all_readers(s, l, 0);
        }
        return false;
    }
}

bool rw_lock_shared_contended(rw_lock& l, std::int64_t deadline_ns) {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::lock_shared);
    control_block* self = s.running();
    const scheduler::critical_section cs(s);
    for (;;) {
        std::uint64_t w = l.word().load(std::memory_order_relaxed);
        if (writer_of(w) == self) refuse_relock(l, *self, "gt::shared_mutex::lock_shared");
        if ((w & (rw_write_locked | rw_writers_waiting)) == 0) {
            if (l.word().compare_exchange_weak(w, w + rw_one_reader, std::memory_order_acquire,
                                               std::memory_order_relaxed)) {
                return true;
            }
            continue;
        }
        if ((w & rw_readers_waiting) == 0 &&
            !l.word().compare_exchange_weak(w, w | rw_readers_waiting, std::memory_order_relaxed)) {
            continue;
        }
        const wake_reason why = s.block(l.readers(), deadline_ns);
        if (why == wake_reason::handoff) return true;  // counted in by the releaser
        GT_INVARIANT(why == wake_reason::timeout, "a shared_mutex's reader is woken only by a handoff or its deadline");
        if (empty(l.readers())) l.word().fetch_and(~rw_readers_waiting, std::memory_order_relaxed);
        return false;
    }
}

void rw_unlock_contended(rw_lock& l) noexcept {
    scheduler& s = scheduler::current();
    control_block* self = s.running();
    const std::uint64_t w = l.word().load(std::memory_order_relaxed);
    if (writer_of(w) != self) {
        const control_block* writer = writer_of(w);
        misuse(describe(*self) + " unlocks " + describe(l) + ", which " +
               (writer != nullptr ? "is held exclusively by " + describe(*writer)
                                  : readers_of(w) > 0 ? "is held shared (by " + std::to_string(readers_of(w)) +
                                                            " readers), not exclusively"
                                                      : std::string("is not locked")));
    }
    s.check_not_reentered();
    sync_point(debug::schedule_event::unlock);
    const scheduler::critical_section cs(s);
    // Neither fast path can change the word meanwhile: it is write-locked.
    const std::uint64_t writers_flag = empty(l.writers()) ? 0 : rw_writers_waiting;
    if (!empty(l.readers())) {
        admit_all_readers(s, l, writers_flag);  // the next writer waits for them
    } else if (writers_flag != 0) {
        hand_to_writer(s, l, 0);
    } else {
        l.word().store(0, std::memory_order_release);
    }
}

void rw_unlock_shared_contended(rw_lock& l) noexcept {
    scheduler& s = scheduler::current();
    control_block* self = s.running();
    std::uint64_t w = l.word().load(std::memory_order_relaxed);
    if (readers_of(w) == 0) {
        const control_block* writer = writer_of(w);
        misuse(describe(*self) + " calls unlock_shared on " + describe(l) + ", which " +
               (writer != nullptr ? "is held exclusively by " + describe(*writer) + ", not shared"
                                  : std::string("no reader holds")));
    }
    s.check_not_reentered();
    sync_point(debug::schedule_event::unlock_shared);
    const scheduler::critical_section cs(s);
    for (;;) {
        w = l.word().load(std::memory_order_relaxed);
        if (readers_of(w) == 1 && (w & rw_writers_waiting) != 0) {
            if (!empty(l.writers())) {
                hand_to_writer(s, l, w & rw_readers_waiting);  // the readers behind it wait on
                return;
            }
            // Every writer that set the flag has timed out: its timeout took
            // it off the queue at once, but it clears the flag only when it
            // runs again. The lock is free now, and the readers it held
            // back go in.
            l.word().store(0, std::memory_order_release);
            if (!empty(l.readers())) admit_all_readers(s, l, 0);
            return;
        }
        if (l.word().compare_exchange_weak(w, w - rw_one_reader, std::memory_order_release,
                                           std::memory_order_relaxed)) {
            return;
        }
    }
}

}  // namespace gt::detail
