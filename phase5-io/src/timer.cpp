// gt::timer and gt::on_idle (gt/timer.hpp): callbacks that the scheduler
// hands to one green thread per scheduler, the callback thread
// ("gt-timers"), so that no user code ever runs on the scheduler's path.
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
#include "gt/timer.hpp"

#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "gt/thread.hpp"
#include "scheduler.hpp"
#include "wait_queue.hpp"

namespace gt {
namespace detail {

struct callback_thread;

/// A gt::timer's state. A timer_node first, so that the heap's node is the
/// timer (expire_timer casts back). Changed inside the critical section,
/// except the callbacks, which are set before the first start.
struct timer_state : timer_node {
    std::function<void()> plain;
    timer::callback_at at;
    scheduler* sched = nullptr;  // set by the first start(): the timer belongs to it
    callback_thread* ct = nullptr;
    std::int64_t period_ns = 0;
    /// The scheduled deadline of the firing that waits for the callback thread.
    std::int64_t firing_ns = 0;
    /// Links in the callback thread's FIFO of due timers, while `due`.
    timer_state* due_prev = nullptr;
    timer_state* due_next = nullptr;
    bool due = false;       // a firing waits for the callback thread
    bool running = false;   // its callback runs now
    bool orphaned = false;  // destroyed by its own callback: freed when that returns
    std::uint64_t fired = 0;
    std::uint64_t missed = 0;

    /// A firing will come: its deadline is in the heap, or it is due.
    bool pending() const noexcept { return queued() || due; }
};

/// An idle callback's registration (gt::idle_handle).
struct idle_entry {
    std::function<bool()> fn;
    scheduler* sched = nullptr;
    callback_thread* ct = nullptr;
    idle_entry* prev = nullptr;  // registration order
    idle_entry* next = nullptr;
    bool running = false;
    bool orphaned = false;  // unregistered by its own call: freed when it returns
    std::uint64_t calls = 0;
};

/// One per scheduler (per OS thread): the callback thread and its work.
/// Changed inside the scheduler's critical section.
struct callback_thread {
    scheduler* sched = nullptr;
    control_block* thread = nullptr;  // the callback thread; nullptr: none, or it is ending
    bool starting = false;            // a start() or on_idle() is creating it
    wait_queue work{wait_reason::timer};      // it waits here for work
    wait_queue returned{wait_reason::timer};  // destructors wait here for a running callback
    timer_state* due_head = nullptr;  // FIFO of due timers, in the order their deadlines passed
    timer_state* due_tail = nullptr;
    std::size_t pending_timers = 0;   // timers with pending() true
    std::size_t pins = 0;             // start()s and on_idle()s between making the thread and arming
    idle_entry* idle_head = nullptr;
    idle_entry* idle_tail = nullptr;
    std::size_t idle_count = 0;
    idle_entry* idle_cursor = nullptr;  // the next callback of the round that runs
    bool idle_round_due = false;        // the hook asked for a round
    bool last_round_did_work = false;   // some callback of the last round returned true
    std::uint64_t sleeps_at_last_round = ~std::uint64_t{0};  // scheduler::idle_sleeps() then

    bool needed() const noexcept {
        return pending_timers != 0 || idle_count != 0 || pins != 0 || due_head != nullptr || idle_round_due;
    }
};

namespace {

constinit thread_local callback_thread this_os_threads_callbacks;

callback_thread& callbacks_of(scheduler& s) noexcept {
    callback_thread& ct = this_os_threads_callbacks;
    if (ct.sched == nullptr) {
        ct.sched = &s;
        ct.work.name = "work for the callback thread";
        ct.returned.name = "a timer or idle callback to return";
    }
    return ct;
}

std::system_error api_error(const char* function, std::errc code, const std::string& what) {
    return std::system_error(std::make_error_code(code), std::string(function) + ": " + what);
}

[[noreturn]] void foreign_destruction(const char* what) noexcept {
    std::fprintf(stderr,
                 "gt: %s destroyed on another OS thread than the one whose scheduler it belongs to; destroy it on "
                 "its own OS thread; calling std::terminate\n",
                 what);
    std::terminate();
}

// ---- Inside the critical section. ----

void wake_callback_thread(callback_thread& ct) noexcept {
    if (control_block* t = front(ct.work)) ct.sched->wake(t, wake_reason::notified);
}

void wake_return_waiters(callback_thread& ct) noexcept {
    while (control_block* t = front(ct.returned)) ct.sched->wake(t, wake_reason::notified);
}

// Nothing needs the callback thread any more: wake it so that it ends (it
// outranks every other thread, so it does before the section's owner goes on).
void let_go_if_unneeded(callback_thread& ct) noexcept {
    if (!ct.needed()) wake_callback_thread(ct);
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

// Takes `t`'s pending firing back, if it has one.
bool cancel_locked(timer_state& t) noexcept {
    if (!t.pending()) return false;
    if (t.queued()) t.sched->disarm(&t);
    if (t.due) unlink_due(*t.ct, t);
    --t.ct->pending_timers;
    return true;
}

std::int64_t saturated_add(std::int64_t a, std::int64_t b) noexcept {
    return a > INT64_MAX - b ? INT64_MAX : a + b;
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

// Holds a pin on the callback thread for a scope: it does not end while
// the pin is held, and may when it is released.
class pin {
public:
    explicit pin(callback_thread& ct) : ct_(ct) {
        scheduler::critical_section cs(*ct_.sched);
        ++ct_.pins;
    }
    ~pin() {
        scheduler::critical_section cs(*ct_.sched);
        --ct_.pins;
        let_go_if_unneeded(ct_);
    }
    pin(const pin&) = delete;
    pin& operator=(const pin&) = delete;

private:
    callback_thread& ct_;
};

std::int64_t steady_ns(timer::clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace
}  // namespace detail

// ---- gt::timer ----

timer::timer(clock::time_point deadline, std::function<void()> plain, callback_at at, clock::duration period) {
    if (!plain && !at) throw std::invalid_argument("gt::timer: the callback is empty");
    if (period < clock::duration::zero()) {
        throw std::invalid_argument("gt::timer: the period (" + std::to_string(period.count()) +
                                    " ns) is negative; 0 means a timer that fires once");
    }
    auto state = std::make_unique<detail::timer_state>();
    state->expire = &detail::expire_timer;
    state->plain = std::move(plain);
    state->at = std::move(at);
    state_ = state.release();
    try {
        start(deadline, period);
    } catch (...) {
        destroy();
        throw;
    }
}

timer::timer(clock::duration delay, std::function<void()> callback, clock::duration period)
    : timer(clock::now() + delay, std::move(callback), callback_at(), period) {}
timer::timer(clock::time_point deadline, std::function<void()> callback, clock::duration period)
    : timer(deadline, std::move(callback), callback_at(), period) {}
timer::timer(clock::duration delay, callback_at callback, clock::duration period)
    : timer(clock::now() + delay, std::function<void()>(), std::move(callback), period) {}
timer::timer(clock::time_point deadline, callback_at callback, clock::duration period)
    : timer(deadline, std::function<void()>(), std::move(callback), period) {}

timer& timer::operator=(timer&& other) noexcept {
    if (this != &other) {
        destroy();
        state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
}

timer::~timer() { destroy(); }

void timer::start(clock::duration delay, clock::duration period) { start(clock::now() + delay, period); }

void timer::start(clock::time_point deadline, clock::duration period) {
    using namespace detail;
    if (state_ == nullptr) {
        throw api_error("gt::timer::start", std::errc::invalid_argument,
                        "this gt::timer has no callback (default-constructed or moved from)");
    }
    if (period < clock::duration::zero()) {
        throw std::invalid_argument("gt::timer::start: the period (" + std::to_string(period.count()) +
                                    " ns) is negative; 0 means a timer that fires once");
    }
    timer_state& t = *state_;
    if (t.sched != nullptr && t.sched != scheduler::current_if_any()) {
        throw api_error("gt::timer::start", std::errc::operation_not_permitted,
                        "this gt::timer belongs to another OS thread's scheduler; use it from that OS thread");
    }
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    callback_thread& ct = callbacks_of(s);
    const std::int64_t deadline_ns = steady_ns(deadline);
    const auto arm = [&] {
        cancel_locked(t);
        t.sched = &s;
        t.ct = &ct;
        t.period_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(period).count();
        s.arm(&t, deadline_ns);  // std::bad_alloc: then nothing is pending
        ++ct.pending_timers;
    };
    {
        scheduler::critical_section cs(s);
        if (ct.thread != nullptr) {  // it exists and cannot end before this section does
            arm();
            return;
        }
    }
    const pin held(ct);
    ensure_callback_thread(ct);
    scheduler::critical_section cs(s);
    arm();
}

bool timer::cancel() {
    using namespace detail;
    if (state_ == nullptr || state_->sched == nullptr) return false;
    if (state_->sched != scheduler::current_if_any()) {
        throw api_error("gt::timer::cancel", std::errc::operation_not_permitted,
                        "this gt::timer belongs to another OS thread's scheduler; use it from that OS thread");
    }
    scheduler& s = *state_->sched;
    s.check_not_reentered();
    scheduler::critical_section cs(s);
    const bool was_pending = cancel_locked(*state_);
    let_go_if_unneeded(*state_->ct);
    return was_pending;
}

void timer::destroy() noexcept {
    using namespace detail;
    timer_state* t = std::exchange(state_, nullptr);
    if (t == nullptr) return;
    if (t->sched == nullptr) {  // never started
        delete t;
        return;
    }
    scheduler* s = scheduler::current_if_any();
    if (s != t->sched) foreign_destruction("a gt::timer");
    s->check_not_reentered();
    bool free_now = true;
    {
        scheduler::critical_section cs(*s);
        cancel_locked(*t);
        if (t->running) {
            if (s->running() == t->ct->thread) {
                t->orphaned = true;  // by its own callback: run_timer frees it when the callback returns
                free_now = false;
            } else {
                while (t->running) s->block(t->ct->returned);
            }
        }
        let_go_if_unneeded(*t->ct);
    }
    if (free_now) delete t;  // outside the section: the callback's captures may run any code
}

namespace {

// Reads a field of a timer's state consistently: a tick may run
// expire_timer in between.
template <typename F>
auto read_state(const detail::timer_state* t, F read) noexcept {
    if (t == nullptr) return decltype(read(*t))();
    detail::scheduler* s = t->sched;
    if (s == nullptr || s != detail::scheduler::current_if_any()) return read(*t);
    detail::scheduler::critical_section cs(*s);
    return read(*t);
}

}  // namespace

bool timer::pending() const noexcept {
    return read_state(state_, [](const detail::timer_state& t) { return t.pending(); });
}
bool timer::running() const noexcept {
    return read_state(state_, [](const detail::timer_state& t) { return t.running; });
}
std::uint64_t timer::fired() const noexcept {
    return read_state(state_, [](const detail::timer_state& t) { return t.fired; });
}
std::uint64_t timer::missed() const noexcept {
    return read_state(state_, [](const detail::timer_state& t) { return t.missed; });
}

// ---- Idle callbacks ----

idle_handle on_idle(std::function<bool()> callback) {
    using namespace detail;
    if (!callback) throw std::invalid_argument("gt::on_idle: the callback is empty");
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    callback_thread& ct = callbacks_of(s);
    auto e = std::make_unique<idle_entry>();
    e->fn = std::move(callback);
    e->sched = &s;
    e->ct = &ct;
    const pin held(ct);
    ensure_callback_thread(ct);
    scheduler::critical_section cs(s);
    e->prev = ct.idle_tail;
    (ct.idle_tail != nullptr ? ct.idle_tail->next : ct.idle_head) = e.get();
    ct.idle_tail = e.get();
    ++ct.idle_count;
    s.set_idle_hook(&run_idle_callbacks);
    return idle_handle(e.release());
}

idle_handle& idle_handle::operator=(idle_handle&& other) noexcept {
    if (this != &other) {
        reset();
        entry_ = std::exchange(other.entry_, nullptr);
    }
    return *this;
}

void idle_handle::reset() noexcept {
    using namespace detail;
    idle_entry* e = std::exchange(entry_, nullptr);
    if (e == nullptr) return;
    scheduler* s = scheduler::current_if_any();
    if (s != e->sched) foreign_destruction("a gt::idle_handle");
    s->check_not_reentered();
    callback_thread& ct = *e->ct;
    bool free_now = true;
    {
        scheduler::critical_section cs(*s);
        if (ct.idle_cursor == e) ct.idle_cursor = e->next;  // a round that runs skips it
        (e->prev != nullptr ? e->prev->next : ct.idle_head) = e->next;
        (e->next != nullptr ? e->next->prev : ct.idle_tail) = e->prev;
        --ct.idle_count;
        if (e->running) {
            if (s->running() == ct.thread) {
                e->orphaned = true;  // by its own call: run_idle_round frees it when the call returns
                free_now = false;
            } else {
                while (e->running) s->block(ct.returned);
            }
        }
        let_go_if_unneeded(ct);
    }
    if (free_now) delete e;
}

std::uint64_t idle_handle::calls() const noexcept {
    if (entry_ == nullptr) return 0;
    detail::scheduler* s = entry_->sched;
    if (s != detail::scheduler::current_if_any()) return entry_->calls;
    detail::scheduler::critical_section cs(*s);
    return entry_->calls;
}

}  // namespace gt
