// The scheduler's core: the policy (pick_next), the run queue, and every
// change of a thread's state: in through make_ready, out of RUNNING
// through stop_running, into RUNNING through switch_to.
#include "scheduler.hpp"

#include <atomic>
#include <cstdlib>

#include "context.hpp"
#include "invariant.hpp"
#include "sanitizers.hpp"

namespace gt::detail {

std::uint64_t allocate_thread_id() noexcept {
    static std::atomic<std::uint64_t> next_id{1};
    return next_id.fetch_add(1, std::memory_order_relaxed);
}

void scheduler::make_ready(control_block* t) noexcept {
    t->owner = this;
    run_queue_.push_back(t);  // asserts it is READY
}

control_block* scheduler::pick_next() noexcept { return run_queue_.pop_front(); }

void scheduler::stop_running(stop_reason why) noexcept {
    control_block* self = running_;
    switch (why) {
        case stop_reason::yield:          // round robin: behind the others
            change_state(*self, thread_state::running, thread_state::ready);
            run_queue_.push_back(self);
            switch_to(pick_next());
            return;
        case stop_reason::finished:
            change_state(*self, thread_state::running, thread_state::finished);
            switch_away();
            return;
    }
}

void scheduler::yield() noexcept {
    if (run_queue_.empty()) return;  // nobody else is READY: keep running
    stop_running(stop_reason::yield);
}

void scheduler::switch_away() noexcept {
    control_block* next = pick_next();
    GT_INVARIANT_ON(next != nullptr, *running_, "a thread that stops for good finds a READY thread to switch to");
    switch_to(next);
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
    GT_INVARIANT_ON(next != prev, *next, "a thread never switches to itself");
    GT_INVARIANT_ON(next->list == on_list::none, *next, "the thread switched to was taken off its run queue");
    GT_INVARIANT_ON(prev->state != thread_state::running, *prev, "stop_running moved the leaving thread out of RUNNING");
    change_state(*next, thread_state::ready, thread_state::running);
    running_ = next;
    swap_exception_state(eh_globals_, prev, next);
    // A FINISHED thread never comes back: let ASan free its fake stack.
    sanitizers::start_switch(prev->state == thread_state::finished ? nullptr : &prev->asan_fake_stack,
                             next->stack_bottom, next->stack_size);
    gt_switch_context(&prev->sp, next->sp);
    // Resumed: some thread switched back to prev, and running_ == prev again.
    sanitizers::finish_switch(prev->asan_fake_stack);
}

void scheduler::thread_started() noexcept { sanitizers::finish_switch(nullptr); }

void scheduler::finish_running() noexcept {
    [[maybe_unused]] control_block* self = running_;
    stop_running(stop_reason::finished);
    GT_INVARIANT_ON(false, *self, "a FINISHED thread is never resumed");
    std::abort();
}

}  // namespace gt::detail
