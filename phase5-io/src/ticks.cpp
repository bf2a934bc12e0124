// Timer ticks (the SIGALRM handler calls on_tick on the running thread's
// stack): sampled CPU accounting, the end of a time slice, ticks deferred
// to the end of a critical section or disable_preemption guard, and the
// stall detector. Everything here runs in a signal handler: it calls only
// async-signal-safe functions and allocates nothing.
#include <time.h>

#include <algorithm>
#include <chrono>

#include "gt/preemption.hpp"
#include "preempt.hpp"
#include "scheduler.hpp"

namespace gt::detail {

void scheduler::set_preemption(std::int64_t slice_ns, std::int64_t stall_threshold_ns) {
    critical_section cs(*this);
    // Ticks come ticks_per_slice times a slice. With preemption off the
    // stall detector still needs them: at the default slice's rate, and
    // they never switch.
    const std::int64_t default_slice_ns = std::chrono::nanoseconds(default_time_slice).count();
    const std::int64_t slice_for_ticks = slice_ns != 0 ? slice_ns : stall_threshold_ns != 0 ? default_slice_ns : 0;
    ticker_.set_period(slice_for_ticks / ticks_per_slice);
    slice_ns_ = slice_ns;
    stall_ns_ = stall_threshold_ns;
    last_tick_ = run_seen_since_ = monotonic_now_ns();
    last_tick_cpu_ = thread_cpu_now_ns();
}

void scheduler::on_tick(void* ucontext) noexcept {
    sigalrm_blocked_ = 1;  // the kernel blocks SIGALRM while its handler runs
    take_tick(ucontext);
    sigalrm_blocked_ = 0;  // rt_sigreturn restores the interrupted mask, which had it unblocked
}

void scheduler::take_tick(void* ucontext) noexcept {
    const std::int64_t now = charge_tick();
    // Every tick looks at the earliest deadlines, not only the tick that
    // ends a slice: a due thread of higher priority would otherwise wait
    // behind a spinner of lower priority for up to a slice.
    const bool whole_slice = slice_used();
    // Threads wait on descriptors: the next scheduling decision polls, so
    // that readiness is seen within a slice even when threads are always
    // READY and the OS thread never idles in the poller.
    if (poller_.waiters() != 0) poll_due_ = 1;
    if (!whole_slice && (critical_depth_ != 0 || !due_timer_outranks(now))) return;
    const preempt::not_preemptible why = why_not_preemptible(ucontext);
    if (why == preempt::not_preemptible::no) {
        end_slice(/*in_handler=*/true, whole_slice);
        return;
    }
    defer_tick(why);
    check_stall(now, why);
}

std::int64_t scheduler::charge_tick() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const std::int64_t now = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    // Sampled accounting, as Linux's tick-based accounting: the CPU time
    // this OS thread used since the last tick (not time it slept or waited
    // in the kernel) goes to the thread the tick interrupts.
    const std::int64_t cpu = thread_cpu_now_ns();
    ++running_->ticks;
    running_->cpu_time_ns += cpu - last_tick_cpu_;
    last_tick_cpu_ = cpu;
    last_tick_ = now;
    if (switches_ != switches_at_last_tick_) {  // a switch since the last tick: a new run began in between
        switches_at_last_tick_ = switches_;
        ticks_in_run_ = 0;
        run_seen_since_ = now;
        stall_reported_ = false;
    }
    return now;
}

bool scheduler::slice_used() noexcept {
    // The slice is used at the run's ticks_per_slice-th tick: the run began
    // before the first, so it has lasted more than (ticks_per_slice - 1)
    // periods and at most ticks_per_slice: between half a slice and a slice.
    return ++ticks_in_run_ >= ticks_per_slice;
}

bool scheduler::due_timer_outranks(std::int64_t now) const noexcept {
    // A gt::timer's callback runs on the callback thread, of the highest
    // priority.
    return timers_.any_due(now, [this](const timer_node& node) {
        return node.thread == nullptr || node.thread->priority > running_->priority;
    });
}

preempt::not_preemptible scheduler::why_not_preemptible(const void* ucontext) const noexcept {
    using preempt::not_preemptible;
    if (critical_depth_ > 0) return not_preemptible::critical_section;
    if (slice_ns_ == 0) return not_preemptible::preemption_off;
    if (running_->preemption_disabled > 0) return not_preemptible::disabled_by_thread;
    return ticker_.why_not_safe(ucontext);  // the safe-point rule: signal mask, system call, program code
}

void scheduler::defer_tick(preempt::not_preemptible why) noexcept {
    if (slice_ns_ == 0) return;  // the tick was for the stall detector only
    tick_pending_ = 1;  // honoured when the guard or critical section ends
    // Outside the program's code (or in a signal handler) it usually comes
    // back soon (from a libc call, say) without passing any point that
    // honours the tick: look again in a sixteenth of a slice, not a whole
    // one — unless it waits in a system call, which takes as long as it
    // takes.
    if (why == preempt::not_preemptible::signal_mask || why == preempt::not_preemptible::not_in_program_code) {
        ticker_.retry_in(std::max<std::int64_t>(slice_ns_ / 16, 10'000));
    }
}

void scheduler::check_stall(std::int64_t now, preempt::not_preemptible why) noexcept {
    // Not inside a critical section: the report reads the thread's name,
    // which changes only inside one.
    if (stall_ns_ == 0 || stall_reported_ || why == preempt::not_preemptible::critical_section) return;
    // Stalled: it keeps the CPU while another thread waits for it.
    const bool someone_waits = (!run_queues_.empty() && run_queues_.highest() >= running_->priority) ||
                               (!timers_.empty() && timers_.earliest() <= now);
    if (someone_waits && now - run_seen_since_ >= stall_ns_) {
        stall_reported_ = true;
        report_stall(now - run_seen_since_, why);
    }
}

void scheduler::block_ticks_for(const control_block* next) noexcept {
    if (next->stopped_in_handler && sigalrm_blocked_ == 0) {  // switching from outside a handler
        preempt::block_timer_signal();
        sigalrm_blocked_ = 1;
    }
}

void scheduler::unblock_ticks_after_landing(control_block* self) noexcept {
    if (self->stopped_in_handler) {  // its handler's rt_sigreturn unblocks SIGALRM
        self->stopped_in_handler = false;
    } else if (sigalrm_blocked_ != 0) {  // switched to from inside a handler
        preempt::unblock_timer_signal();
        sigalrm_blocked_ = 0;
    }
}

void scheduler::honour_pending_tick() noexcept {
    if (running_->preemption_disabled > 0) return;  // its guard's end honours it
    end_slice(/*in_handler=*/false);
}

}  // namespace gt::detail
