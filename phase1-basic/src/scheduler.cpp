#include "scheduler.hpp"

#include <pthread.h>

#include <cxxabi.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>

#include "context.hpp"
#include "invariant.hpp"
#include "sanitizers.hpp"

namespace gt::detail {

std::uint64_t allocate_thread_id() noexcept {
    static std::atomic<std::uint64_t> next_id{1};
    return next_id.fetch_add(1, std::memory_order_relaxed);
}

const char* to_string(thread_state state) noexcept {
    switch (state) {
        case thread_state::ready: return "READY";
        case thread_state::running: return "RUNNING";
        case thread_state::finished: return "FINISHED";
    }
    return "?";
}

void invariant_failed(const char* what, const char* file, int line) noexcept {
    std::fprintf(stderr, "gt: invariant broken: %s (%s:%d)\n", what, file, line);
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
                     "gt: std::terminate in gt::thread %llu, with an exception active (typically one that "
                     "escaped the thread's function)\n",
                     static_cast<unsigned long long>(t->id));
    }
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

scheduler::scheduler() noexcept : running_(&main_) {
    main_.id = allocate_thread_id();
    main_.state = thread_state::running;
    main_.owner = this;
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
}

scheduler::~scheduler() { this_os_threads_scheduler = nullptr; }

void scheduler::os_thread_exiting() noexcept {
    if (has_ready()) return;  // threads that never finished: abandon, see scheduler_owner
    delete this;
}

void scheduler::make_ready(control_block* t) noexcept {
    GT_INVARIANT(t->state == thread_state::ready, "a thread made READY is in state READY");
    t->owner = this;
    run_queue_.push_back(t);
}

control_block* scheduler::pick_next() noexcept { return run_queue_.pop_front(); }

void scheduler::yield() noexcept {
    control_block* next = pick_next();
    if (next == nullptr) return;  // nobody else is READY: keep running
    running_->state = thread_state::ready;
    run_queue_.push_back(running_);
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
    GT_INVARIANT(next != prev, "a thread never switches to itself");
    GT_INVARIANT(next->state == thread_state::ready, "only a READY thread is switched to");
    GT_INVARIANT(prev->state != thread_state::running, "the caller moved the leaving thread out of RUNNING");
    next->state = thread_state::running;
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
    running_->state = thread_state::finished;
    control_block* next = pick_next();
    // Whoever will join this thread is READY (join waits by yielding).
    GT_INVARIANT(next != nullptr, "a finishing thread finds a READY thread to switch to");
    switch_to(next);
    GT_INVARIANT(false, "a FINISHED thread is never resumed");
    std::abort();
}

}  // namespace gt::detail
