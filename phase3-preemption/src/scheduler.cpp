#include "scheduler.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <vector>

#include "context.hpp"
#include "gt/preemption.hpp"
#include "invariant.hpp"
#include "overflow.hpp"
#include "preempt.hpp"
#include "sanitizers.hpp"
#include "trace.hpp"

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

const char* to_string(thread_state state) noexcept {
    switch (state) {
        case thread_state::ready: return "READY";
        case thread_state::running: return "RUNNING";
        case thread_state::finished: return "FINISHED";
        case thread_state::blocked: return "BLOCKED";
    }
    return "?";
}

const char* to_string(wait_reason reason) noexcept {
    switch (reason) {
        case wait_reason::none: return "-";
        case wait_reason::join: return "join";
        case wait_reason::sleep: return "sleep";
    }
    return "?";
}

void invariant_failed(const char* what, const char* file, int line) noexcept {
    std::fprintf(stderr, "gt: invariant broken: %s (%s:%d)\n", what, file, line);
    trace::flush();
    std::abort();
}

namespace {

// A plain pointer, constant-initialised, so that reading it is safe from
// anywhere: a terminate handler, a signal handler.
thread_local scheduler* this_os_threads_scheduler = nullptr;

std::terminate_handler previous_terminate_handler = nullptr;

// Installed once per process: when std::terminate runs on a green thread
// with an exception active (typically one that escaped the thread's
// function), say which thread before the previous handler (libstdc++'s
// prints the exception) ends the process.
[[noreturn]] void name_the_thread_then_terminate() {
    const scheduler* sched = scheduler::current_if_any();
    const control_block* t = sched != nullptr ? sched->running() : nullptr;
    if (t != nullptr && t->stack.size() != 0 && std::current_exception() != nullptr) {
        std::fprintf(stderr,
                     "gt: \"%s\": std::terminate in gt::thread %llu, with an exception active (typically one that "
                     "escaped the thread's function)\n",
                     scheduler::name_of(*t).c_str(), static_cast<unsigned long long>(t->id));
    }
    trace::flush();
    if (previous_terminate_handler != nullptr) previous_terminate_handler();
    std::abort();
}

}  // namespace

namespace {

// Ends an OS thread's scheduler when the OS thread ends (the destructor of a
// thread_local object runs then). A scheduler that still has green threads
// to run is abandoned instead of destroyed: they can never run again, but
// code that runs later in the process's exit (static destructors) may
// still hold and join them.
struct scheduler_owner {
    scheduler* owned = nullptr;
    ~scheduler_owner() {
        if (owned != nullptr) owned->os_thread_exiting();
    }
};

thread_local scheduler_owner owner;
thread_local bool constructing = false;

}  // namespace

scheduler& scheduler::current() noexcept {
    if (scheduler* s = this_os_threads_scheduler) return *s;
    if (constructing) {
        // Only a signal handler can get here: it interrupted the first gt
        // call on this OS thread, and building a second scheduler (which
        // allocates) from a handler would corrupt the heap.
        std::fputs("gt: called from a signal handler while gt was starting on this OS thread; "
                   "gt functions are not async-signal-safe\n",
                   stderr);
        std::abort();
    }
    constructing = true;
    owner.owned = new scheduler;  // its constructor sets this_os_threads_scheduler
    constructing = false;
    return *owner.owned;
}

scheduler* scheduler::current_if_any() noexcept { return this_os_threads_scheduler; }

scheduler::scheduler() noexcept : running_(&main_), all_threads_(&main_), all_tail_(&main_) {
    main_.id = allocate_thread_id();
    main_.state = thread_state::running;
    main_.owner = this;
    main_.name = "main";
    // The OS thread's own stack, for AddressSanitizer's switch annotations.
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void* addr = nullptr;
        std::size_t size = 0;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            main_.stack_bottom = addr;
            main_.stack_size = size;
        }
        pthread_attr_destroy(&attr);
    }
    eh_globals_ = abi::__cxa_get_globals();  // this OS thread's, for as long as it lives
    this_os_threads_scheduler = this;
    static std::once_flag once;
    std::call_once(once, [] { previous_terminate_handler = std::set_terminate(name_the_thread_then_terminate); });
    alt_stack_ = overflow::install_reporter();
    trace::start_if_requested();
    main_.run_start = trace::enabled ? monotonic_now_ns() : 0;
    trace::created(main_);
    try {
        set_preemption(preempt::slice_from_environment(), preempt::stall_threshold_from_environment());
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s: %s; preemption is off on this OS thread\n", e.what(), std::strerror(e.code().value()));
    }
}

scheduler::~scheduler() {
    // The adopted thread never finishes; its thread-specific values die
    // with its OS thread, as a pthread's do.
    run_tls_destructors(main_);
    reap_zombie();
    overflow::remove_reporter(alt_stack_);
    this_os_threads_scheduler = nullptr;
}

void scheduler::os_thread_exiting() noexcept {
    reap_zombie();
    if (thread_count_ > 1) {
        // No more ticks: one must not switch to a green thread while the
        // OS thread is being torn down.
        ticker_.stop();
        // Abandoned, see scheduler_owner. At process exit that is expected
        // (like detached std::threads); when a single OS thread ends, say so.
        if (::getpid() != static_cast<pid_t>(::syscall(SYS_gettid))) {
            std::fprintf(stderr,
                         "gt: an OS thread is exiting with %zu green threads still alive; they will never run "
                         "again and their stacks are not reclaimed\n",
                         thread_count_ - 1);
        }
        return;
    }
    delete this;
}

std::string scheduler::name_of(const control_block& t) {
    return t.name.empty() ? "thread-" + std::to_string(t.id) : t.name;
}

void scheduler::make_ready(control_block* t) noexcept {
    check_not_reentered();
    critical_section cs(*this);
    GT_INVARIANT(t->state == thread_state::ready, "a thread made READY is in state READY");
    GT_INVARIANT(t->list == on_list::none, "a new thread is on no list");
    t->owner = this;
    t->all_prev = all_tail_;
    all_tail_->all_next = t;
    all_tail_ = t;
    ++thread_count_;
    trace::created(*t);
    run_queues_.push_back(t);
    t->list = on_list::run_queue;
    if (t->priority > running_->priority) preempt_for_higher();
}

control_block* scheduler::pick_next() noexcept {
    control_block* t = run_queues_.pop_highest();
    if (t != nullptr) {
        GT_INVARIANT(t->list == on_list::run_queue, "a thread in a run queue is marked as being there");
        GT_INVARIANT(t->state == thread_state::ready, "only READY threads are in a run queue");
        t->list = on_list::none;
    }
    return t;
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
    GT_INVARIANT(t->state == thread_state::blocked, "only a BLOCKED thread is woken");
    GT_INVARIANT(t->list == on_list::none, "a thread is on at most one list");
    t->state = thread_state::ready;
    t->waiting_for = wait_reason::none;
    trace::woken(*t);
    run_queues_.push_back(t);
    t->list = on_list::run_queue;
}

void scheduler::yield() noexcept {
    check_not_reentered();
    critical_section cs(*this);
    if (timers_ != nullptr) wake_expired_timers(monotonic_now_ns());
    if (run_queues_.empty() || run_queues_.highest() < running_->priority) return;  // nobody else may run
    running_->state = thread_state::ready;
    run_queues_.push_back(running_);
    running_->list = on_list::run_queue;
    switch_to(pick_next());
}

void scheduler::preempt_for_higher() noexcept {
    if (timers_ != nullptr) wake_expired_timers(monotonic_now_ns());  // a sleeper due now may outrank both
    GT_INVARIANT(!run_queues_.empty() && run_queues_.highest() > running_->priority,
                 "a thread is preempted only for a READY thread of higher priority");
    running_->state = thread_state::ready;
    running_->preempted = true;
    run_queues_.push_front(running_);  // first of its level again: sched(7), SCHED_FIFO
    running_->list = on_list::run_queue;
    switch_to(pick_next());
}

void scheduler::join_wait(control_block* target) noexcept {
    check_not_reentered();
    critical_section cs(*this);
    GT_INVARIANT(target->state != thread_state::finished, "join_wait waits only for unfinished threads");
    GT_INVARIANT(target->joiner == nullptr, "a thread has at most one joiner");
    target->joiner = running_;
    running_->joining = target;
    running_->state = thread_state::blocked;
    running_->waiting_for = wait_reason::join;
    trace::blocked(*running_);
    switch_away();
    running_->joining = nullptr;
}

void scheduler::sleep_until(std::int64_t deadline_ns) noexcept {
    check_not_reentered();
    critical_section cs(*this);
    if (deadline_ns <= monotonic_now_ns()) return;
    control_block* self = running_;
    self->wake_time = deadline_ns;
    // Sorted insertion, after every sleeper with the same deadline (FIFO).
    control_block** link = &timers_;
    while (*link != nullptr && (*link)->wake_time <= deadline_ns) link = &(*link)->next;
    self->next = *link;
    *link = self;
    self->list = on_list::timer_list;
    self->state = thread_state::blocked;
    self->waiting_for = wait_reason::sleep;
    trace::blocked(*self);
    switch_away();
}

void scheduler::wake_expired_timers(std::int64_t now) noexcept {
    while (timers_ != nullptr && timers_->wake_time <= now) {
        control_block* t = timers_;
        timers_ = t->next;
        t->next = nullptr;
        t->list = on_list::none;
        ready(t);
    }
}

void scheduler::set_priority(control_block* t, int priority) noexcept {
    check_not_reentered();
    critical_section cs(*this);
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
    } else {
        t->priority = priority;
    }
    trace::priority_changed(*t, old, priority);
    if (!run_queues_.empty() && run_queues_.highest() > running_->priority) preempt_for_higher();
}

void scheduler::set_name(control_block* t, std::string name) {
    critical_section cs(*this);
    t->name = std::move(name);
    trace::named(*t);
}

void scheduler::switch_away() noexcept {
    GT_INVARIANT(running_->state != thread_state::running, "switch_away is called after leaving RUNNING");
    // Its stretch on the CPU ends here, whatever comes next: a switch, an
    // idle OS thread, or its own sleep ending at once (its deadline may pass
    // while the trace event of its blocking is being written).
    if (trace::enabled && running_->run_start >= 0) {
        trace::ran(*running_, running_->run_start, monotonic_now_ns());
        running_->run_start = -1;
    }
    for (;;) {
        if (timers_ != nullptr) wake_expired_timers(monotonic_now_ns());
        if (control_block* next = pick_next()) {
            if (next == running_) {  // its own sleep ended while the OS thread idled, or at once
                next->state = thread_state::running;
                if (trace::enabled) next->run_start = monotonic_now_ns();
                return;
            }
            switch_to(next);
            return;
        }
        if (timers_ == nullptr) report_deadlock();
        // Nothing can run before the earliest deadline: sleep the OS thread.
        const std::int64_t deadline = timers_->wake_time;
        const std::int64_t idle_from = trace::enabled ? monotonic_now_ns() : 0;
        const timespec ts{static_cast<time_t>(deadline / 1'000'000'000), static_cast<long>(deadline % 1'000'000'000)};
        while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
        if (trace::enabled) trace::idle(idle_from, monotonic_now_ns());
    }
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
    GT_INVARIANT(next != prev, "a thread never switches to itself");
    GT_INVARIANT(next->state == thread_state::ready, "only a READY thread is switched to");
    GT_INVARIANT(next->list == on_list::none, "the thread switched to was taken off its run queue");
    GT_INVARIANT(prev->state != thread_state::running, "the caller moved the leaving thread out of RUNNING");
    GT_INVARIANT(run_queues_.empty() || run_queues_.highest() <= next->priority,
                 "the thread switched to has the highest priority of all READY threads");
    next->state = thread_state::running;
    running_ = next;
    if (trace::enabled) {
        const std::int64_t now = monotonic_now_ns();
        if (prev->run_start >= 0) trace::ran(*prev, prev->run_start, now);  // -1: already recorded
        next->run_start = now;
    }
    next->preempted = false;
    next->sliced = false;
    ++next->switches;
    ++switches_;
    tick_pending_ = 0;  // a switch is what a deferred tick asked for
    swap_exception_state(eh_globals_, prev, next);
    // A FINISHED thread never comes back: let ASan free its fake stack.
    sanitizers::start_switch(prev->state == thread_state::finished ? nullptr : &prev->asan_fake_stack,
                             next->stack_bottom, next->stack_size);
    gt_switch_context(&prev->sp, next->sp);
    // Resumed: some thread switched back to prev, and running_ == prev again.
    sanitizers::finish_switch(prev->asan_fake_stack);
    if (zombie_ != nullptr) reap_zombie();
}

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
    control_block* running = running_;
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const std::int64_t now = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    // Sampled accounting, as Linux's tick-based accounting: the CPU time
    // this OS thread used since the last tick (not time it slept or waited
    // in the kernel) goes to the thread the tick interrupts.
    const std::int64_t cpu = thread_cpu_now_ns();
    ++running->ticks;
    running->cpu_time_ns += cpu - last_tick_cpu_;
    last_tick_cpu_ = cpu;
    last_tick_ = now;
    if (switches_ != switches_at_last_tick_) {  // a switch since the last tick: a new run began in between
        switches_at_last_tick_ = switches_;
        ticks_in_run_ = 0;
        run_seen_since_ = now;
        stall_reported_ = false;
    }
    // The slice is used at the run's ticks_per_slice-th tick: the run began
    // before the first, so it has lasted more than (ticks_per_slice - 1)
    // periods and at most ticks_per_slice: between half a slice and a slice.
    if (++ticks_in_run_ < ticks_per_slice) return;
    if (critical_depth_ > 0) {  // the scheduler is changing its data: not now
        if (slice_ns_ != 0) tick_pending_ = 1;
        return;
    }
    const char* cannot = slice_ns_ == 0                     ? "preemption is off"
                         : running->preemption_disabled > 0 ? "preemption is disabled in it"
                         : !ticker_.at_safe_point(ucontext)
                             ? "it runs where it cannot be preempted (a shared library, a system call, a signal handler)"
                             : nullptr;
    if (cannot == nullptr) {
        preempt_for_slice(/*in_handler=*/true);
        return;
    }
    if (slice_ns_ != 0) {
        tick_pending_ = 1;  // deferred: honoured when the guard or critical section ends
        // Outside the program's code it usually comes back soon (from a
        // libc call, say) without passing any point that honours the tick:
        // look again in a sixteenth of a slice, not a whole one — unless it
        // waits in a system call, which takes as long as it takes.
        if (running->preemption_disabled == 0 && !preempt::in_system_call(ucontext)) {
            ticker_.retry_in(std::max<std::int64_t>(slice_ns_ / 16, 10'000));
        }
    }
    // Stalled: it keeps the CPU while another thread waits for it.
    const bool someone_waits = (!run_queues_.empty() && run_queues_.highest() >= running->priority) ||
                               (timers_ != nullptr && timers_->wake_time <= now);
    if (stall_ns_ != 0 && !stall_reported_ && someone_waits && now - run_seen_since_ >= stall_ns_) {
        stall_reported_ = true;
        report_stall(now - run_seen_since_, cannot);
    }
}

void scheduler::honour_pending_tick() noexcept {
    if (running_->preemption_disabled > 0) return;  // its guard's end honours it
    preempt_for_slice(/*in_handler=*/false);
}

void scheduler::preempt_for_slice(bool in_handler) noexcept {
    critical_section cs(*this);
    tick_pending_ = 0;  // inside the section: a tick now cannot preempt a second time
    if (timers_ != nullptr) wake_expired_timers(monotonic_now_ns());
    if (run_queues_.empty() || run_queues_.highest() < running_->priority) return;  // nobody else may run
    if (in_handler) {
        // The thread switched to may have stopped in a yield, not in this
        // handler, so nothing would restore its mask: SIGALRM must not stay
        // blocked. (This thread gets its own mask back at sigreturn.)
        preempt::unblock_timer_signal();
        switches_at_last_tick_ = switches_ + 1;  // the next thread's slice and run start at this tick
        ticks_in_run_ = 0;
        run_seen_since_ = last_tick_;
        stall_reported_ = false;
    }
    control_block* self = running_;
    ++self->preemptions;
    self->state = thread_state::ready;
    self->sliced = true;
    run_queues_.push_back(self);  // it used its slice: to the back of its level
    self->list = on_list::run_queue;
    switch_to(pick_next());
}

namespace {

// write(2) of a C string: async-signal-safe, unlike stdio.
void write_stderr(const char* text) noexcept {
    for (std::size_t left = std::strlen(text); left > 0;) {
        const ssize_t n = ::write(STDERR_FILENO, text, left);
        if (n <= 0) return;
        text += n;
        left -= static_cast<std::size_t>(n);
    }
}

// Decimal digits of `n` into `buffer` (at least 21 bytes), without snprintf.
const char* decimal(std::uint64_t n, char* buffer) noexcept {
    char* p = buffer + 20;
    *p = '\0';
    do {
        *--p = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    return p;
}

}  // namespace

void scheduler::report_stall(std::int64_t ran_ns, const char* why) noexcept {
    // The runtime's "reactor stalled" report (Seastar). Built from pieces
    // with write(2): this runs in a signal handler. The name is safe to read:
    // set_name changes it only inside a critical section, and ticks inside
    // one never get here.
    const control_block& t = *running_;
    char id[21], ms[21];
    write_stderr("gt: stall: thread ");
    write_stderr(decimal(t.id, id));
    write_stderr(" \"");
    if (t.name.empty()) {
        write_stderr("thread-");
        write_stderr(decimal(t.id, id));
    } else {
        write_stderr(t.name.c_str());
    }
    write_stderr("\" has run for ");
    write_stderr(decimal(static_cast<std::uint64_t>(ran_ns / 1'000'000), ms));
    write_stderr(" ms without a switch while other threads wait, because ");
    write_stderr(why);
    write_stderr("; it is not stopped\n");
}

void scheduler::thread_started() noexcept {
    sanitizers::finish_switch(nullptr);
    reap_zombie();
    critical_depth_ = critical_depth_ - 1;  // entered by the thread that switched to us
}

void scheduler::finish_running() noexcept {
    critical_section cs(*this);
    control_block* self = running_;
    self->state = thread_state::finished;
    trace::finished(*self);
    if (self->joiner != nullptr) ready(self->joiner);
    if (self->detached) zombie_ = self;  // reaped after the switch: we still stand on its stack
    switch_away();
    GT_INVARIANT(false, "a FINISHED thread is never resumed");
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
    GT_INVARIANT(t->state == thread_state::finished, "only a FINISHED thread is released");
    GT_INVARIANT(t != running_, "a thread never releases itself");
    if (t->all_prev != nullptr) t->all_prev->all_next = t->all_next;
    if (t->all_next != nullptr) t->all_next->all_prev = t->all_prev;
    if (all_tail_ == t) all_tail_ = t->all_prev;
    --thread_count_;
    stacks_.give(std::move(t->stack));
    delete t;
}

namespace {

// Bytes of the stack that have ever been touched, from the lowest resident
// page (mincore(2)): pages below it were never faulted in. For a pooled
// stack this includes what earlier threads on the same stack touched.
std::size_t stack_high_water(const stack& s) {
    const std::size_t page = page_size();
    const std::size_t pages = s.size() / page;
    std::vector<unsigned char> resident(pages);
    if (pages == 0 || ::mincore(s.bottom(), s.size(), resident.data()) != 0) return 0;
    for (std::size_t i = 0; i < pages; ++i) {
        if (resident[i] & 1) return (pages - i) * page;
    }
    return 0;
}

}  // namespace

void scheduler::dump(std::ostream& out) const {
    // Fixed-width columns, each followed by a space, so that a long id or
    // name shifts the line instead of running into the next column.
    std::ostringstream text;
    text << std::left << std::setw(5) << "id" << ' ' << std::setw(17) << "name" << ' ' << std::setw(15) << "state"
         << ' ' << std::setw(9) << "priority" << ' ' << std::setw(11) << "stack" << ' ' << std::setw(11)
         << "high-water" << ' ' << std::setw(9) << "cpu ms" << ' ' << std::setw(9) << "switches" << ' '
         << "preemptions\n";
    for (const control_block* t = all_threads_; t != nullptr; t = t->all_next) {
        std::string state = to_string(t->state);
        if (t->state == thread_state::blocked) state += std::string(" (") + to_string(t->waiting_for) + ")";
        text << std::left << std::setw(5) << t->id << ' ' << std::setw(17) << name_of(*t) << ' ' << std::setw(15)
             << state << ' ' << std::setw(9) << t->priority << ' ';
        if (t == &main_) {
            text << std::setw(11) << "OS stack" << ' ' << std::setw(11) << "-" << ' ';
        } else {
            text << std::setw(11) << t->stack.size() << ' ' << std::setw(11) << stack_high_water(t->stack) << ' ';
        }
        text << std::setw(9) << t->cpu_time_ns / 1'000'000 << ' ' << std::setw(9) << t->switches << ' '
             << t->preemptions << '\n';
    }
    out << text.str();
}

void scheduler::report_deadlock() const noexcept {
    std::ostringstream text;
    text << "gt: deadlock: no thread can run again: every thread is BLOCKED and none is sleeping.\n";
    dump(text);
    std::fputs(text.str().c_str(), stderr);
    trace::flush();
    std::abort();
}

}  // namespace gt::detail
