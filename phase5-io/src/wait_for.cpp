// The wait-for walk, shared by the deadlock check and priority inheritance.
//
// A thread blocked on a gt::mutex waits for that mutex's owner (the lock
// word names it); a thread in join() waits for the thread it joins. Those
// edges form the wait-for graph. A thread about to add an edge walks the
// chain from its target: reaching itself means the wait closes a cycle and
// would never end (the deadlock check throws instead of blocking). Priority
// inheritance walks the same chain: the owner of the mutex a high-priority
// thread waits for runs at that priority until it unlocks, and so does the
// owner of the mutex that owner waits for, and so on (Linux's rtmutex,
// kernel/locking/rtmutex.c, walks its chain the same way, up to
// max_lock_depth = 1024 hops; RIOT-OS/RIOT#7365 is the bug of a walk that
// stopped after one hop).
#include "wait_for.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <system_error>

#include "gt/mutex.hpp"
#include "scheduler.hpp"
#include "sync_report.hpp"
#include "trace.hpp"
#include "wait_queue.hpp"

namespace gt::detail {

control_block* owner_of(const wait_queue& q) noexcept {
    if (q.owner == nullptr) return nullptr;
    return reinterpret_cast<control_block*>(q.owner->load(std::memory_order_relaxed) & ~lock_flags);
}

namespace {

// The owner of the mutex `t` is BLOCKED on: the edges priority passes along
// (a join passes none: the joined thread runs at its own priority).
control_block* mutex_owner_awaited_by(const control_block& t) noexcept {
    return t.state == thread_state::blocked && t.waiting_on != nullptr ? owner_of(*t.waiting_on) : nullptr;
}

// A timed lock in the cycle ends it at its deadline: no deadlock, only a wait.
bool has_deadline(const control_block& t) noexcept {
    return t.waiting_on != nullptr && t.wake_time != scheduler::no_deadline;
}

// ", which waits for gt::mutex "b" (0x...), owned by thread 4 "y"" or
// ", which joins thread 4 "y"": the edge out of a BLOCKED thread.
std::string edge_text(const control_block& t, const control_block& next) {
    if (t.waiting_on == nullptr) return "joins " + describe(next);
    return "waits for " + object_text(*t.waiting_on) + ", owned by " + describe(next);
}

}  // namespace

control_block* waits_for(const control_block& t) noexcept {
    if (t.state != thread_state::blocked) return nullptr;
    if (t.waiting_for == wait_reason::join) return t.joining;
    return t.waiting_on != nullptr ? owner_of(*t.waiting_on) : nullptr;
}

void check_wait_for_cycle(const control_block& self, const control_block* target, const wait_queue* q,
                          bool self_timed, const char* function) {
    bool timed = self_timed;
    int hops = 0;
    const control_block* t = target;
    for (; t != nullptr && t != &self && hops < max_wait_chain; t = waits_for(*t), ++hops) timed |= has_deadline(*t);
    if (t != &self || timed) return;
    std::string text = std::string(function) + ": deadlock: " + describe(self) + " would " +
                       (q != nullptr ? "wait for " + object_text(*q) + ", owned by " : std::string("join ")) +
                       describe(*target);
    for (t = target; t != &self; t = waits_for(*t)) text += ", which " + edge_text(*t, *waits_for(*t));
    text += ": each of them would wait for the next forever";
    const char* mode = std::getenv("GT_DEADLOCK");
    if (mode != nullptr && std::strcmp(mode, "abort") == 0) {
        std::ostringstream dump;
        self.owner->dump(dump);
        std::fprintf(stderr, "gt: %s (GT_DEADLOCK=abort)\n%s", text.c_str(), dump.str().c_str());
        trace::flush();
        std::abort();
    }
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur), text);
}

void note_contended(control_block& owner, wait_queue& q) noexcept {
    for (const wait_queue* held = owner.held_contended; held != nullptr; held = held->held_next) {
        if (held == &q) return;
    }
    q.held_next = owner.held_contended;
    owner.held_contended = &q;
}

void drop_contended(control_block& owner, wait_queue& q) noexcept {
    for (wait_queue** link = &owner.held_contended; *link != nullptr; link = &(*link)->held_next) {
        if (*link == &q) {
            *link = q.held_next;
            q.held_next = nullptr;
            return;
        }
    }
}

void scheduler::set_effective_priority(control_block* t, int priority) noexcept {
    const int old = t->priority;
    if (old == priority) return;
    if (t->list == on_list::run_queue) {
        // sched(7): raised, a thread goes to the end of its new level's list;
        // lowered, to the front.
        run_queues_.remove(t);
        t->priority = priority;
        if (priority > old) {
            run_queues_.push_back(t);
        } else {
            run_queues_.push_front(t);
        }
    } else if (t->state == thread_state::blocked && t->waiting_on != nullptr) {
        wait_queue& q = *t->waiting_on;  // its place in the queue follows its priority
        unlink(q, t);
        t->priority = priority;
        enqueue(q, t);
    } else {
        t->priority = priority;
    }
    trace::priority_changed(*t, old, priority);
    // A switch, if one is due now, when the outermost section ends.
    if ((t->state == thread_state::ready && priority > running_->priority) || (t == running_ && outranked())) {
        outrank_pending_ = 1;
    }
}

void scheduler::inherit_priority(control_block* t, int priority) noexcept {
    GT_INVARIANT(critical_depth_ > 0, "scheduler data changes only inside a critical section");
    for (int hop = 0; t != nullptr && t->priority < priority && hop < max_wait_chain; ++hop) {
        set_effective_priority(t, priority);
        t = mutex_owner_awaited_by(*t);
    }
}

void scheduler::update_priority(control_block* t) noexcept {
    GT_INVARIANT(critical_depth_ > 0, "scheduler data changes only inside a critical section");
    for (int hop = 0; t != nullptr && hop < max_wait_chain; ++hop) {
        int priority = t->base_priority;
        for (const wait_queue* q = t->held_contended; q != nullptr; q = q->held_next) {
            if (q->head != nullptr && q->head->priority > priority) priority = q->head->priority;
        }
        if (priority == t->priority) return;
        set_effective_priority(t, priority);  // its place in a wait queue may change that queue's first waiter
        t = mutex_owner_awaited_by(*t);
    }
}

std::string object_text(const wait_queue& q) {
    char address[32];
    std::snprintf(address, sizeof address, "%p", static_cast<const void*>(&q));
    const std::string kind = q.reason == wait_reason::mutex ? "gt::mutex" : to_string(q.reason);
    return q.name != nullptr ? kind + " \"" + q.name + "\" (" + address + ")" : kind + " (" + address + ")";
}

std::string wait_text(const control_block& t, std::int64_t now_ns) {
    if (t.state != thread_state::blocked) return {};
    const auto ms = [](std::int64_t ns) { return std::to_string(ns / 1'000'000) + " ms"; };
    if (t.waiting_for == wait_reason::join && t.joining != nullptr) {
        return "join of " + describe(*t.joining) + ", for " + ms(now_ns - t.blocked_since);
    }
    if (t.waiting_for == wait_reason::sleep) return "sleep, " + ms(t.wake_time - now_ns) + " left";
    if (t.waiting_on == nullptr) return to_string(t.waiting_for);
    std::string text = object_text(*t.waiting_on);
    if (t.waiting_for == wait_reason::readable || t.waiting_for == wait_reason::writable) {
        text = "descriptor " + std::to_string(t.waiting_fd) + " to become " + to_string(t.waiting_for);
    }
    if (t.waiting_on->owner != nullptr) {
        const control_block* owner = owner_of(*t.waiting_on);
        text += owner != nullptr ? ", owned by " + describe(*owner) : ", being handed over";
        if (t.blocked_since != 0) text += ", for about " + ms(now_ns - t.blocked_since);  // as of a tick
    }
    if (t.wake_time != scheduler::no_deadline) text += ", deadline in " + ms(t.wake_time - now_ns);
    return text;
}

void check_holds_nothing(const control_block& t) noexcept {
    if (t.held_contended == nullptr && t.locks_held.empty()) return;
    std::string held;
    for (const wait_queue* q = t.held_contended; q != nullptr; q = q->held_next) {
        held += (held.empty() ? "" : ", ") + object_text(*q) + " (threads wait on it)";
    }
    if (held.empty()) held = std::to_string(t.locks_held.size()) + " gt::mutex(es) without waiters";
    std::fprintf(stderr, "gt: %s finished while it owns %s; unlock every mutex before a thread ends\n",
                 describe(t).c_str(), held.c_str());
    trace::flush();
    std::abort();
}

}  // namespace gt::detail
