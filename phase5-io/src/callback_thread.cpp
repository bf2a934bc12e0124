// The callback thread ("gt-timers"): one green thread per scheduler that
// runs gt::timer's and gt::on_idle's callbacks, so that no user code ever
// runs on the scheduler's path. Its state is in callback_thread.hpp; the
// APIs are timer.cpp and idle.cpp.
//
// The scheduler's part is small: a gt::timer's deadline sits in the timer
// heap like a sleeper's, and when it passes, wake_expired_timers calls
// expire_timer (inside the critical section, perhaps in the SIGALRM
// handler), which re-arms a periodic timer from its scheduled deadline,
// queues the timer for the callback thread and wakes it. When no thread is
// READY, switch_away calls run_idle_callbacks, which wakes the callback
// thread for a round of idle callbacks. Everything else happens on the
// callback thread, outside the critical section.
//
// The callback thread exists while it is needed: while a timer is pending
// or an idle callback is registered (or a start() is making it). When it
// finds nothing to do and nothing pending, it ends. So it never keeps an
// OS thread's scheduler alive (os_thread_exiting abandons a scheduler
// with live threads), and while it waits for work some timer is in the heap
// or an idle callback is registered: it never hides a deadlock.
#include "callback_thread.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <exception>

#include "gt/thread.hpp"

namespace gt {
namespace detail {
namespace {

constinit thread_local callback_thread this_os_threads_callbacks;

}  // namespace

callback_thread& callbacks_of(scheduler& s) noexcept {
    callback_thread& ct = this_os_threads_callbacks;
    if (ct.sched == nullptr) {
        ct.sched = &s;
        ct.work.name = "work for the callback thread";
        ct.returned.name = "a timer or idle callback to return";
    }
    return ct;
}

[[noreturn]] void foreign_destruction(const char* what) noexcept {
    std::fprintf(stderr,
                 "gt: %s destroyed on another OS thread than the one whose scheduler it belongs to; destroy it on "
                 "its own OS thread; calling std::terminate\n",
                 what);
    std::terminate();
}

// ---- Inside the critical section. ----

namespace {

void wake_callback_thread(callback_thread& ct) noexcept {
    if (control_block* t = front(ct.work)) ct.sched->wake(t, wake_reason::notified);
}

void wake_return_waiters(callback_thread& ct) noexcept {
    while (control_block* t = front(ct.returned)) ct.sched->wake(t, wake_reason::notified);
}

void push_due(callback_thread& ct, timer_state& t) noexcept {
    t.due = true;
    t.due_prev = ct.due_tail;
    t.due_next = nullptr;
    (ct.due_tail != nullptr ? ct.due_tail->due_next : ct.due_head) = &t;
    ct.due_tail = &t;
}

void unlink_due(callback_thread& ct, timer_state& t) noexcept {
    (t.due_prev != nullptr ? t.due_prev->due_next : ct.due_head) = t.due_next;
    (t.due_next != nullptr ? t.due_next->due_prev : ct.due_tail) = t.due_prev;
    t.due_prev = t.due_next = nullptr;
    t.due = false;
}

std::int64_t saturated_add(std::int64_t a, std::int64_t b) noexcept {
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

}  // namespace

void let_go_if_unneeded(callback_thread& ct) noexcept {
    if (!ct.needed()) wake_callback_thread(ct);
}

// Takes `t`'s pending firing back, if it has one.
bool cancel_locked(timer_state& t) noexcept {
    if (!t.pending()) return false;
    if (t.queued()) t.sched->disarm(&t);
    if (t.due) unlink_due(*t.ct, t);
    --t.ct->pending_timers;
    return true;
}

// The timer heap's expiry of a gt::timer (timer_node::expire): called by
// wake_expired_timers inside the critical section, perhaps in the SIGALRM
// handler, so it allocates nothing (a periodic re-arm puts back the node
// that has just left the heap: the array does not grow) and runs no user
// code.
void expire_timer(timer_node& node, std::int64_t deadline) noexcept {
    auto& t = static_cast<timer_state&>(node);
    callback_thread& ct = *t.ct;
    if (t.period_ns > 0) {
        // The next deadline counts from this one, not from now; deadlines
        // already passed are skipped, not queued (tinygo-org/tinygo#5525).
        std::int64_t next = saturated_add(deadline, t.period_ns);
        const std::int64_t now = monotonic_now_ns();
        if (next <= now) {
            const std::int64_t skipped = (now - deadline) / t.period_ns;  // deadlines in (deadline, now]
            t.missed += static_cast<std::uint64_t>(skipped);
            next = saturated_add(deadline, (skipped + 1) * t.period_ns);
        }
        ct.sched->arm(&t, next);
    }
    if (t.due) {
        ++t.missed;  // a firing already waits for the callback thread: at most one does
    } else {
        t.firing_ns = deadline;
        push_due(ct, t);
        wake_callback_thread(ct);
    }
    // pending() stayed true (in the heap before, due or in the heap now).
}

idle_step run_idle_callbacks(scheduler& s) noexcept {
    callback_thread& ct = this_os_threads_callbacks;
    if (ct.idle_count == 0) return idle_step::none;
    control_block* waiting = front(ct.work);
    // Busy inside a callback: what that callback waits for decides whether
    // the process is deadlocked.
    if (waiting == nullptr) return idle_step::none;
    if (ct.last_round_did_work) {
        // The callbacks found work: poll without waiting, run what that
        // readied, and call them again when nothing is READY.
        if (s.poller().waiters() != 0) {
            s.poller().poll(s, 0, nullptr);
            if (s.has_ready()) return idle_step::readied;
        }
    } else if (ct.sleeps_at_last_round == s.idle_sleeps()) {
        return idle_step::sleep;  // at most one round per idle period
    }
    ct.sleeps_at_last_round = s.idle_sleeps();
    ct.last_round_did_work = false;  // the round sets it
    ct.idle_cursor = ct.idle_head;
    ct.idle_round_due = true;
    s.wake(waiting, wake_reason::notified);
    return idle_step::readied;
}

namespace {

// ---- The callback thread. ----

struct work_item {
    enum kind { none, timer, idle_round } what = none;
    timer_state* t = nullptr;
    std::int64_t scheduled_ns = 0;
};

// Waits for work; `none` when nothing needs the thread any more.
work_item take_work(callback_thread& ct) {
    scheduler& s = *ct.sched;
    scheduler::critical_section cs(s);
    for (;;) {
        if (timer_state* t = ct.due_head) {
            unlink_due(ct, *t);
            if (!t->queued()) --ct.pending_timers;  // a one-shot timer's last firing
            t->running = true;
            ++t->fired;
            return {work_item::timer, t, t->firing_ns};
        }
        if (ct.idle_round_due) {
            ct.idle_round_due = false;
            return {work_item::idle_round};
        }
        if (!ct.needed()) {
            ct.thread = nullptr;  // from here on, a start() makes a new one
            return {};
        }
        s.block(ct.work);
    }
}

void run_timer(callback_thread& ct, timer_state& t, std::int64_t scheduled_ns) {
    if (t.at) {
        t.at(timer::clock::time_point(std::chrono::nanoseconds(scheduled_ns)));
    } else {
        t.plain();
    }
    bool orphaned = false;
    {
        scheduler::critical_section cs(*ct.sched);
        t.running = false;
        orphaned = t.orphaned;
        wake_return_waiters(ct);
    }
    if (orphaned) delete &t;  // its gt::timer was destroyed by this callback
}

void run_idle_round(callback_thread& ct) {
    bool did_work = false;
    for (;;) {
        idle_entry* e = nullptr;
        {
            scheduler::critical_section cs(*ct.sched);
            e = ct.idle_cursor;
            if (e == nullptr) {
                ct.last_round_did_work = did_work;
                return;
            }
            ct.idle_cursor = e->next;
            e->running = true;
            ++e->calls;
        }
        did_work = e->fn() || did_work;
        bool orphaned = false;
        {
            scheduler::critical_section cs(*ct.sched);
            e->running = false;
            orphaned = e->orphaned;
            wake_return_waiters(ct);
        }
        if (orphaned) delete e;
    }
}

void exit_inside_callback() {
    std::fputs("gt: gt::this_thread::exit() was called inside a timer or idle callback, on the callback thread; "
               "return from the callback instead; aborting\n",
               stderr);
    std::abort();
}

void callback_thread_main(callback_thread* ct) {
    {
        scheduler::critical_section cs(*ct->sched);
        ct->thread = ct->sched->running();
        ct->starting = false;
    }
    gt::this_thread::cleanup_push(&exit_inside_callback);
    for (;;) {
        const work_item w = take_work(*ct);
        if (w.what == work_item::none) break;
        if (w.what == work_item::timer) {
            run_timer(*ct, *w.t, w.scheduled_ns);
        } else {
            run_idle_round(*ct);
        }
        // A callback may have changed the thread's priority; the next one
        // must not run late because of it.
        if (gt::this_thread::get_priority() != highest_priority) gt::this_thread::set_priority(highest_priority);
    }
    gt::this_thread::cleanup_pop(false);
}

}  // namespace

// Makes the callback thread unless it exists or is being made. The caller
// holds a pin, so that the thread does not end before the caller's work is
// in place.
void ensure_callback_thread(callback_thread& ct) {
    {
        scheduler::critical_section cs(*ct.sched);
        if (ct.thread != nullptr || ct.starting) return;
        ct.starting = true;
    }
    try {
        thread::attributes attrs;
        attrs.name = "gt-timers";
        attrs.priority = highest_priority;
        gt::thread(attrs, callback_thread_main, &ct).detach();  // it runs at once unless the caller is of its priority
    } catch (...) {
        scheduler::critical_section cs(*ct.sched);
        ct.starting = false;
        throw;
    }
}

}  // namespace detail
}  // namespace gt
