// The scheduler and its OS thread: the first gt call on an OS thread makes
// the scheduler and adopts the code already running there (main, say) as a
// green thread; the OS thread's end ends the scheduler. Most of this file
// is hardening a first reading may skip: each guard says which erratum
// (docs/ERRATA.md) or test made it necessary.
#include "scheduler.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <system_error>

#include "overflow.hpp"
#include "preempt.hpp"
#include "trace.hpp"

namespace gt::detail {

constinit thread_local control_block* running_thread = nullptr;

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

// Ends an OS thread's scheduler when the OS thread ends (the destructor of a
// thread_local object runs then). A scheduler that still has green threads
// to run is abandoned instead of destroyed: they can never run again, but
// code that runs later in the process's exit (static destructors) may
// still hold and join them (docs/ERRATA.md: "joining green threads from a
// static destructor at process exit").
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
        // allocates) from a handler would corrupt the heap (docs/ERRATA.md:
        // "a signal handler that called gt before the first gt call").
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
    change_state(main_, thread_state::ready, thread_state::running);  // adopted: it is already running
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
    running_thread = &main_;
    static std::once_flag once;
    std::call_once(once, [] { previous_terminate_handler = std::set_terminate(name_the_thread_then_terminate); });
    alt_stack_ = overflow::install_reporter();
    trace::start_if_requested();
    main_.run_start = trace::enabled ? monotonic_now_ns() : 0;
    trace::created(main_);
    try {
        set_preemption(preempt::slice_from_environment(), preempt::stall_threshold_from_environment());
        set_schedule_seed(schedule_seed_from_environment());  // 0: the deterministic mode stays off
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
    running_thread = nullptr;
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

}  // namespace gt::detail
