// gt::timer (gt/timer.hpp): starting, cancelling and destroying a timer,
// and reading its state. A timer's state (timer_state) and the callback
// thread that runs its callback are in callback_thread.hpp/.cpp; its
// expiry is expire_timer there.
#include "gt/timer.hpp"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "callback_thread.hpp"

namespace gt {
namespace detail {
namespace {

std::system_error api_error(const char* function, std::errc code, const std::string& what) {
    return std::system_error(std::make_error_code(code), std::string(function) + ": " + what);
}

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
    if (s != t->sched) {
        // Another OS thread, or this one after its scheduler ended (a static
        // or thread_local timer at exit): the scheduler must not be touched.
        // A timer neither pending nor running is only memory; the others are
        // in its scheduler's heap or on its callback thread.
        if (t->pending() || t->running) foreign_destruction("a gt::timer");
        delete t;
        return;
    }
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

}  // namespace gt
