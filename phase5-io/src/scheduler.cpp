// The scheduler's core: the policy (pick_next), the run queues, and every
// change of a thread's state: in through make_ready and ready, out of
// RUNNING through stop_running, into RUNNING through switch_to.
#include "scheduler.hpp"

#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "context.hpp"
#include "invariant.hpp"
#include "preempt.hpp"
#include "sanitizers.hpp"
#include "syscalls.hpp"
#include "trace.hpp"
#include "wait_queue.hpp"

namespace gt::detail {

std::uint64_t allocate_thread_id() noexcept {
    static std::atomic<std::uint64_t> next_id{1};
    return next_id.fetch_add(1, std::memory_order_relaxed);
}

std::int64_t thread_cpu_now_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t monotonic_now_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void scheduler::make_ready(control_block* t) noexcept {
    check_not_reentered();
    critical_section cs(*this);
    GT_INVARIANT_ON(t->list == on_list::none, *t, "a new thread is on no list");
    t->owner = this;
    t->all_prev = all_tail_;
    all_tail_->all_next = t;
    all_tail_ = t;
    ++thread_count_;
    trace::created(*t);
    run_queues_.push_back(t);  // asserts it is READY
    switch_if_outranked();
}

control_block* scheduler::pick_next() noexcept {
    if (deterministic_.on) [[unlikely]] return pick_deterministic();
    return run_queues_.pop_highest();
}

void scheduler::check_not_reentered() const noexcept {
    // Kept in release builds: one compare. The scheduler's own code never
    // calls these entry points from inside a critical section, so only a
    // signal handler that interrupted the scheduler can.
    if (critical_depth_ != 0) {
        std::fputs("gt: the scheduler was re-entered while it was changing its own data "
                   "(a signal handler called into gt?); gt functions are not async-signal-safe\n",
                   stderr);
        std::abort();
    }
}

void scheduler::ready(control_block* t) noexcept {
    GT_INVARIANT(critical_depth_ > 0, "scheduler data changes only inside a critical section");
    change_state(*t, thread_state::blocked, thread_state::ready);
    trace::woken(*t);  // before waiting_for is cleared: the event says what ended the wait
    t->waiting_for = wait_reason::none;
    run_queues_.push_back(t);
}

void scheduler::stop_running(stop_reason why) noexcept {
    GT_INVARIANT(critical_depth_ > 0, "scheduler data changes only inside a critical section");
    control_block* self = running_;
    self->stopped_for = why;
    ++self->stops[static_cast<std::size_t>(why)];
    switch (why) {
        case stop_reason::yield:          // round robin: behind the others of its level
        case stop_reason::slice_expired:
            change_state(*self, thread_state::running, thread_state::ready);
            run_queues_.push_back(self);
            switch_to(pick_next());
            return;
        case stop_reason::outranked:      // it has not used its turn: sched(7), SCHED_FIFO
            change_state(*self, thread_state::running, thread_state::ready);
            run_queues_.push_front(self);
            switch_to(pick_next());
            return;
        case stop_reason::join:           // on no list: its target's finish_running wakes it
            change_state(*self, thread_state::running, thread_state::blocked);
            switch_away();
            return;
        case stop_reason::sleep:          // in the timer heap until its wake_time
            change_state(*self, thread_state::running, thread_state::blocked);
            arm_wake_time(self);
            switch_away();
            return;
        case stop_reason::wait:           // on its wait queue (block enqueued it), and in the timer heap until a deadline
            change_state(*self, thread_state::running, thread_state::blocked);
            if (self->wake_time != no_deadline) arm_wake_time(self);
            switch_away();
            return;
        case stop_reason::finished:
            change_state(*self, thread_state::running, thread_state::finished);
            switch_away();
            return;
    }
}

void scheduler::yield() noexcept {
    check_not_reentered();
    critical_section cs(*this);
    wake_due();
    if (run_queues_.empty() || run_queues_.highest() < running_->priority) return;  // nobody else may run
    stop_running(stop_reason::yield);
}

void scheduler::switch_if_outranked() noexcept {
    if (!outranked()) return;
    if (!timers_.empty()) wake_expired_timers(monotonic_now_ns());  // a sleeper due now may outrank both
    stop_running(stop_reason::outranked);
}

void scheduler::end_slice(bool in_handler, bool whole_slice) noexcept {
    critical_section cs(*this);
    tick_pending_ = 0;  // inside the section: a tick now cannot end a second slice
    wake_due();
    if (run_queues_.empty() || run_queues_.highest() < running_->priority) return;  // nobody else may run
    if (!whole_slice && !outranked()) return;  // only a thread of higher priority ends a slice early
    if (in_handler) {
        // SIGALRM stays blocked until this handler returns, after the thread
        // runs again; the thread switched to gets the mask it needs
        // (block_ticks_for, unblock_ticks_after_landing).
        running_->stopped_in_handler = true;
        switches_at_last_tick_ = switches_ + 1;  // the next thread's slice and run start at this tick
        ticks_in_run_ = 0;
        run_seen_since_ = last_tick_;
        stall_reported_ = false;
    }
    stop_running(whole_slice ? stop_reason::slice_expired : stop_reason::outranked);
}

void scheduler::join_wait(control_block* target) noexcept {
    check_not_reentered();
    critical_section cs(*this);
    GT_INVARIANT_ON(target->state != thread_state::finished, *target, "join_wait waits only for unfinished threads");
    GT_INVARIANT_ON(target->joiner == nullptr, *target, "a thread has at most one joiner");
    target->joiner = running_;
    running_->joining = target;
    running_->waiting_for = wait_reason::join;
    running_->blocked_since = monotonic_now_ns();
    trace::blocked(*running_);
    stop_running(stop_reason::join);
    running_->joining = nullptr;
}

void scheduler::sleep_until(std::int64_t deadline_ns) noexcept {
    check_not_reentered();
    critical_section cs(*this);
    if (deadline_ns <= monotonic_now_ns()) return;
    control_block* self = running_;
    self->wake_time = deadline_ns;
    self->waiting_for = wait_reason::sleep;
    trace::blocked(*self);
    stop_running(stop_reason::sleep);
}

void scheduler::arm_wake_time(control_block* t) {
    GT_INVARIANT_ON(t->state == thread_state::blocked, *t, "only BLOCKED threads wait in the timer heap");
    GT_INVARIANT_ON(t->list == on_list::none, *t, "a thread is on at most one list");
    timers_.insert(&t->timer, t->wake_time);
    t->list = on_list::timer_list;
}

void scheduler::wake_expired_timers(std::int64_t now) noexcept {
    std::int64_t deadline = 0;
    while (timer_node* node = timers_.pop_due(now, &deadline)) {
        control_block* t = node->thread;
        if (t == nullptr) {
            node->expire(*node, deadline);  // a gt::timer
            continue;
        }
        t->list = on_list::none;  // out of the heap
        if (t->waiting_for == wait_reason::sleep) {
            ready(t);
        } else {
            wake(t, wake_reason::timeout);  // a timed waiter: its deadline won the race for its ticket
        }
    }
}

void scheduler::wake_due() noexcept {
    if (!timers_.empty()) wake_expired_timers(monotonic_now_ns());
    // Readiness: when a tick asked for it, and, for the threads that never
    // let the OS thread idle and run without ticks (preemption off), at
    // every poll_every-th decision.
    if (poller_.waiters() != 0 && (poll_due_ != 0 || ++decisions_since_poll_ >= poll_every)) {
        poll_due_ = 0;
        decisions_since_poll_ = 0;
        poller_.poll(*this, 0, nullptr);
    }
}

wake_reason scheduler::block(wait_queue& q, std::int64_t deadline_ns, bool at_front_of_level) noexcept {
    GT_INVARIANT(critical_depth_ == 1, "a thread blocks inside exactly one critical section, its own");
    if (deadline_ns != no_deadline && deadline_ns <= monotonic_now_ns()) return wake_reason::timeout;
    control_block* self = running_;
    enqueue(q, self, at_front_of_level);
    self->waiting_for = q.reason;
    self->woke_by = wake_reason::none;
    self->wake_time = deadline_ns;
    trace::blocked(*self);
    stop_running(stop_reason::wait);
    return self->woke_by;
}

bool scheduler::wake(control_block* t, std::uint32_t epoch, wake_reason why) noexcept {
    GT_INVARIANT(critical_depth_ > 0, "scheduler data changes only inside a critical section");
    if (t->owner != this) report_foreign_wake(*t);
    // The ticket: of a notify, a timeout and a handoff racing for one block,
    // exactly one moves the epoch on; the others find it moved and leave
    // the thread alone (Boost.Fiber's context::wake does the same).
    if (!t->wake_epoch.compare_exchange_strong(epoch, epoch + 1, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
        return false;
    }
    GT_INVARIANT_ON(t->state == thread_state::blocked && t->waiting_on != nullptr, *t,
                    "a thread is woken only while it blocks on a wait queue");
    unlink(*t->waiting_on, t);
    if (t->list == on_list::timer_list) {  // woken before its deadline
        timers_.remove(&t->timer);
        t->list = on_list::none;
    }
    t->woke_by = why;
    ready(t);
    if (t->priority > running_->priority) outrank_pending_ = 1;  // switched to when the outermost section ends
    return true;
}

void scheduler::honour_pending() noexcept {
    if (outrank_pending_ != 0) {
        outrank_pending_ = 0;
        critical_section cs(*this);
        switch_if_outranked();
        return;  // this section's end looks at a deferred tick
    }
    honour_pending_tick();
}

void scheduler::set_priority(control_block* t, int priority) noexcept {
    check_not_reentered();
    critical_section cs(*this);
    t->base_priority = priority;
    update_priority(t);  // what it inherits keeps it up
    switch_if_outranked();
}

void scheduler::set_name(control_block* t, std::string name) {
    critical_section cs(*this);
    t->name = std::move(name);
    trace::named(*t);
}

void scheduler::switch_away() noexcept {
    GT_INVARIANT_ON(running_->state != thread_state::running && running_->list != on_list::run_queue, *running_,
                    "switch_away is called after leaving RUNNING, off the run queues");
    // Its stretch on the CPU ends here, whatever comes next: a switch, an
    // idle OS thread, or its own sleep ending at once (its deadline may pass
    // while the trace event of its blocking is being written).
    if (trace::enabled && running_->run_start >= 0) {
        trace::ran(*running_, running_->run_start, monotonic_now_ns());
        running_->run_start = -1;
    }
    for (;;) {
        wake_due();
        if (control_block* next = pick_next()) {
            if (next == running_) {  // its own sleep ended while the OS thread idled, or at once
                change_state(*next, thread_state::ready, thread_state::running);
                if (trace::enabled) next->run_start = monotonic_now_ns();
                return;
            }
            switch_to(next);
            return;
        }
        const idle_step step = idle_hook_ != nullptr ? idle_hook_(*this) : idle_step::none;
        if (step == idle_step::readied) continue;  // the idle callbacks run before the OS thread sleeps
        if (step == idle_step::none && timers_.empty() && poller_.waiters() == 0) report_deadlock();
        idle();
    }
}

void scheduler::idle() noexcept {
    const std::int64_t deadline = timers_.empty() ? no_deadline : timers_.earliest();
    const std::int64_t idle_from = trace::enabled ? monotonic_now_ns() : 0;
    if (poller_.epoll_fd() >= 0) {
        // SIGALRM blocked for exactly the wait (epoll_pwait2's mask): a tick
        // could only wake it for nothing. A tick that fell due meanwhile
        // arrives on return, inside this critical section: deferred. The
        // rest of the mask is the program's, as the wrappers of
        // pthread_sigmask and sigprocmask recorded it: no system call to
        // read it.
        sigset_t mask;
        preempt::normal_mask_blocking_ticks(mask);
        poller_.poll(*this, deadline, &mask);
    } else {
        // No epoll descriptor (at the process's descriptor limit), so no
        // thread waits on a descriptor: sleep until the deadline.
        const timespec ts{static_cast<time_t>(deadline / 1'000'000'000), static_cast<long>(deadline % 1'000'000'000)};
        const preempt::hold_ticks hold;  // EINTR: the program's signal
        while (syscalls::real_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
    }
    if (trace::enabled) trace::idle(idle_from, monotonic_now_ns());
    ++idle_sleeps_;  // a new idle period: the idle callbacks may run again
}

namespace {

// The exception-handling globals of the Itanium C++ ABI (section 2.2.2,
// "Caught Exception Stack"), which libstdc++ keeps per OS thread: the stack
// of exceptions being handled (what `throw;` rethrows and
// std::current_exception returns) and the number of exceptions in flight
// (std::uncaught_exceptions). Each green thread needs its own, or a thread
// that yields inside a catch block would hand its exception to the next.
struct cxa_eh_globals {
    void* caught_exceptions;
    unsigned int uncaught_exceptions;
};

void swap_exception_state(void* eh_globals, control_block* prev, control_block* next) noexcept {
    auto* globals = static_cast<cxa_eh_globals*>(eh_globals);
    prev->caught_exceptions = globals->caught_exceptions;
    prev->uncaught_exceptions = globals->uncaught_exceptions;
    globals->caught_exceptions = next->caught_exceptions;
    globals->uncaught_exceptions = next->uncaught_exceptions;
}

}  // namespace

void scheduler::switch_to(control_block* next) noexcept {
    control_block* prev = running_;
    GT_INVARIANT(critical_depth_ == 1, "a switch happens inside exactly one critical section");
    GT_INVARIANT_ON(next != prev, *next, "a thread never switches to itself");
    GT_INVARIANT_ON(next->list == on_list::none, *next, "the thread switched to was taken off its run queue");
    GT_INVARIANT_ON(prev->state != thread_state::running, *prev, "stop_running moved the leaving thread out of RUNNING");
    GT_INVARIANT_ON(run_queues_.empty() || run_queues_.highest() <= next->priority, *next,
                    "the thread switched to has the highest priority of all READY threads");
    change_state(*next, thread_state::ready, thread_state::running);
    running_ = next;
    running_thread = deterministic_.on ? nullptr : next;  // nullptr: the mutexes take their slow paths
    if (trace::enabled) {
        const std::int64_t now = monotonic_now_ns();
        if (prev->run_start >= 0) trace::ran(*prev, prev->run_start, now);  // -1: already recorded
        next->run_start = now;
    }
    ++next->switches;
    ++switches_;
    tick_pending_ = 0;  // a switch is what a deferred tick asked for
    outrank_pending_ = 0;  // and what an outranking wake asked for: pick_next took the highest
    swap_exception_state(eh_globals_, prev, next);
    block_ticks_for(next);
    // A FINISHED thread never comes back: let ASan free its fake stack.
    sanitizers::start_switch(prev->state == thread_state::finished ? nullptr : &prev->asan_fake_stack,
                             next->stack_bottom, next->stack_size);
    gt_switch_context(&prev->sp, next->sp);
    // Resumed: some thread switched back to prev, and running_ == prev again.
    sanitizers::finish_switch(prev->asan_fake_stack);
    unblock_ticks_after_landing(prev);
    if (zombie_ != nullptr) reap_zombie();
}

void scheduler::thread_started() noexcept {
    sanitizers::finish_switch(nullptr);
    unblock_ticks_after_landing(running_);
    reap_zombie();
    critical_depth_ = critical_depth_ - 1;  // entered by the thread that switched to us
}

void scheduler::finish_running() noexcept {
    critical_section cs(*this);
    control_block* self = running_;
    trace::finished(*self);
    if (self->joiner != nullptr) ready(self->joiner);
    if (self->detached) zombie_ = self;  // reaped after the switch: we still stand on its stack
    stop_running(stop_reason::finished);
    GT_INVARIANT_ON(false, *self, "a FINISHED thread is never resumed");
    std::abort();
}

void scheduler::reap_zombie() noexcept {
    if (zombie_ == nullptr) return;
    control_block* z = zombie_;
    zombie_ = nullptr;
    release(z);
}

void scheduler::release(control_block* t) noexcept {
    critical_section cs(*this);
    GT_INVARIANT_ON(t->state == thread_state::finished, *t, "only a FINISHED thread is released");
    GT_INVARIANT_ON(t != running_, *t, "a thread never releases itself");
    if (t->all_prev != nullptr) t->all_prev->all_next = t->all_next;
    if (t->all_next != nullptr) t->all_next->all_prev = t->all_prev;
    if (all_tail_ == t) all_tail_ = t->all_prev;
    --thread_count_;
    stacks_.give(std::move(t->stack));
    delete t;
}

}  // namespace gt::detail
