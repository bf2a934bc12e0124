// gt::thread and gt::this_thread: the public API over the scheduler.
#include "gt/thread.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>

#include "context.hpp"
#include "gt/debug.hpp"
#include "gt/detail/sync_point.hpp"
#include "gt/preemption.hpp"
#include "scheduler.hpp"
#include "sanitizers.hpp"
#include "wait_for.hpp"

namespace gt {
namespace detail {

struct id_factory {
    static thread::id make(std::uint64_t value) noexcept { return thread::id(value); }
};

/// Thrown by this_thread::exit() to unwind the thread's stack; caught in
/// thread_main. Not a std::exception, so `catch (const std::exception&)`
/// does not swallow it (glibc's pthread_exit does the same with its
/// abi::__forced_unwind).
struct thread_exit_request {
    bool consumed = false;  // set by whoever is entitled to catch it
    ~thread_exit_request() {
        // Destroyed without reaching thread_main: a catch (...) swallowed it.
        // glibc's pthread_exit aborts in that case too ("exception not rethrown").
        if (!consumed) {
            std::fputs("gt: gt::this_thread::exit() was caught by a catch (...) that did not rethrow it; aborting\n",
                       stderr);
            std::abort();
        }
    }
};

namespace {

// `"name": `, the prefix by which runtime messages name a thread.
std::string quoted(const control_block& t) { return '"' + scheduler::name_of(t) + "\": "; }

void run_cleanup_handlers(control_block& self) {
    while (!self.cleanup_handlers.empty()) {
        std::function<void()> handler = std::move(self.cleanup_handlers.back());
        self.cleanup_handlers.pop_back();
        try {
            handler();
        } catch (thread_exit_request& request) {
            request.consumed = true;  // exit() inside a handler ends that handler; the others still run.
        }
    }
}

// Where every new thread starts (via gt_context_entry), on its own stack.
//
// No try/catch for what escapes: an exception that escapes the thread's
// function finds no handler on this stack (the unwinder's search ends at
// gt_context_entry), so the C++ runtime calls std::terminate at the throw
// itself, before unwinding anything: destructors do not run and a debugger
// or core dump shows where it was thrown. That is what std::thread does
// too. The scheduler's terminate handler names the thread first. Only
// this_thread::exit()'s own exception is caught.
[[noreturn]] void thread_main(void* arg) {
    auto* self = static_cast<control_block*>(arg);
    scheduler& sched = *self->owner;
    sched.thread_started();
    try {
        self->entry->run();
    } catch (thread_exit_request& request) {
        request.consumed = true;  // this_thread::exit(): the stack is unwound; finish as after a return
    }
    delete self->entry;  // the decay-copies die on the new thread, as with std::thread
    self->entry = nullptr;
    run_cleanup_handlers(*self);  // then thread-specific values, as POSIX orders them
    run_tls_destructors(*self);
    check_holds_nothing(*self);  // a lock word naming a finished thread would name its successor
    sched.finish_running();
}

std::system_error api_error(const char* function, std::errc code, const std::string& what) {
    return std::system_error(std::make_error_code(code), std::string(function) + ": " + what);
}

std::system_error join_error(std::errc code, const std::string& what) {
    return api_error("gt::thread::join", code, what);
}

// The checks every gt::thread member that acts on the thread makes.
control_block* usable(control_block* tcb, const char* function) {
    if (tcb == nullptr) {
        throw api_error(function, std::errc::invalid_argument,
                        "this gt::thread is not joinable (default-constructed, moved from, joined or detached)");
    }
    if (tcb->owner != &scheduler::current()) {
        throw api_error(function, std::errc::operation_not_permitted,
                        quoted(*tcb) + "thread " + std::to_string(tcb->id) +
                            " belongs to another OS thread's scheduler; use it from that OS thread");
    }
    return tcb;
}

void check_priority(int priority, const char* function, const std::string& who) {
    if (priority < lowest_priority || priority > highest_priority) {
        throw std::invalid_argument(std::string(function) + ": " + who + "priority " + std::to_string(priority) +
                                    " is outside gt::lowest_priority..gt::highest_priority (" +
                                    std::to_string(lowest_priority) + ".." + std::to_string(highest_priority) +
                                    ")");
    }
}

}  // namespace
}  // namespace detail

detail::control_block* thread::start(const attributes& attrs, std::unique_ptr<detail::thread_start> entry) {
    if (attrs.stack_size < attributes::min_stack_size) {
        throw std::invalid_argument("gt::thread: stack_size " + std::to_string(attrs.stack_size) +
                                    " bytes is below the minimum of " +
                                    std::to_string(attributes::min_stack_size) +
                                    " bytes (gt::thread::attributes::min_stack_size)");
    }
    detail::check_priority(attrs.priority, "gt::thread", attrs.name.empty() ? "" : '"' + attrs.name + "\": ");
    // Preemption could otherwise switch to another thread halfway through
    // this one's changes to shared runtime data (here: the stack pool), and
    // in join and detach between a check and the act that relies on it.
    const this_thread::disable_preemption no_preemption;
    detail::scheduler& sched = detail::scheduler::current();
    auto tcb = std::make_unique<detail::control_block>();
    tcb->id = detail::allocate_thread_id();
    tcb->priority = tcb->base_priority = attrs.priority;
    tcb->name = attrs.name;
    tcb->stack = sched.stacks().take(attrs.stack_size, tcb->id);
    tcb->stack_bottom = tcb->stack.bottom();
    tcb->stack_size = tcb->stack.size();
    detail::sanitizers::unpoison(tcb->stack.bottom(), tcb->stack.size());
    tcb->sp = detail::make_context(tcb->stack.top(), &detail::thread_main, tcb.get());
    tcb->entry = entry.release();
    detail::control_block* t = tcb.release();
    sched.make_ready(t);  // a thread of higher priority runs before this returns
    detail::sync_point(debug::schedule_event::create);  // the deterministic mode may run it first
    return t;
}

thread& thread::operator=(thread&& other) noexcept {
    if (joinable()) {
        std::fprintf(stderr, "gt: %sgt::thread %llu was assigned to while joinable (join() or detach() it first); calling std::terminate\n",
                     detail::quoted(*tcb_).c_str(), static_cast<unsigned long long>(tcb_->id));
        std::terminate();
    }
    tcb_ = std::exchange(other.tcb_, nullptr);
    return *this;
}

thread::~thread() {
    if (joinable()) {
        std::fprintf(stderr, "gt: %sgt::thread %llu destroyed while joinable (join() or detach() it before it goes out of scope); calling std::terminate\n",
                     detail::quoted(*tcb_).c_str(), static_cast<unsigned long long>(tcb_->id));
        std::terminate();
    }
}

thread::id thread::get_id() const noexcept {
    return tcb_ == nullptr ? id() : detail::id_factory::make(tcb_->id);
}

void thread::join() {
    using detail::join_error;
    detail::sync_point(debug::schedule_event::join);
    const this_thread::disable_preemption no_preemption;  // see thread::start
    if (tcb_ == nullptr) {
        throw join_error(std::errc::invalid_argument,
                         "this gt::thread is not joinable (default-constructed, moved from, joined or detached)");
    }
    detail::scheduler& sched = detail::scheduler::current();
    if (tcb_ == sched.running()) {
        throw join_error(std::errc::resource_deadlock_would_occur,
                         detail::quoted(*tcb_) + "thread " + std::to_string(tcb_->id) + " cannot join itself");
    }
    if (tcb_->owner != &sched) {
        throw join_error(std::errc::operation_not_permitted,
                         detail::quoted(*tcb_) + "thread " + std::to_string(tcb_->id) +
                             " belongs to another OS thread's scheduler; join it from that OS thread");
    }
    if (tcb_->joiner != nullptr) {
        throw join_error(std::errc::invalid_argument, detail::quoted(*tcb_) + "thread " + std::to_string(tcb_->id) +
                                                          " is already being joined by thread " +
                                                          std::to_string(tcb_->joiner->id));
    }
    // Like pthread_join's EDEADLK: if the target is (through a chain of
    // joins and mutexes) waiting for us, waiting for it would block both
    // forever. The same walk as a contended lock's (wait_for.cpp).
    detail::check_wait_for_cycle(*sched.running(), tcb_, nullptr, false, "gt::thread::join");
    // From here on, *this is not touched: while we wait, other threads run,
    // and one of them may move or destroy this gt::thread object (say, by
    // growing the vector it lives in).
    detail::control_block* target = std::exchange(tcb_, nullptr);
    // Block: off the run queue until the target's finish_running wakes us.
    if (target->state != detail::thread_state::finished) sched.join_wait(target);
    sched.release(target);  // its stack goes back to the pool: safe, we run on our own
}

void thread::detach() {
    const this_thread::disable_preemption no_preemption;  // see thread::start
    detail::control_block* t = detail::usable(tcb_, "gt::thread::detach");
    if (t->joiner != nullptr) {
        throw detail::api_error("gt::thread::detach", std::errc::invalid_argument,
                                detail::quoted(*t) + "thread " + std::to_string(t->id) + " is being joined");
    }
    tcb_ = nullptr;
    if (t->state == detail::thread_state::finished) {
        t->owner->release(t);
    } else {
        t->detached = true;  // reaped by the scheduler when it finishes
    }
}

std::string thread::get_name() const {
    const this_thread::disable_preemption no_preemption;  // its owner may rename it meanwhile
    return detail::scheduler::name_of(*detail::usable(tcb_, "gt::thread::get_name"));
}

int thread::get_priority() const { return detail::usable(tcb_, "gt::thread::get_priority")->base_priority; }

void thread::set_priority(int priority) {
    const this_thread::disable_preemption no_preemption;  // see thread::start
    detail::control_block* t = detail::usable(tcb_, "gt::thread::set_priority");
    detail::check_priority(priority, "gt::thread::set_priority", detail::quoted(*t));
    t->owner->set_priority(t, priority);
}

namespace this_thread {

void yield() noexcept {
    detail::sync_point(debug::schedule_event::yield);  // the deterministic mode logs it
    detail::scheduler::current().yield();
}

thread::id get_id() noexcept { return detail::id_factory::make(detail::scheduler::current().running()->id); }

void sleep_until_steady_ns(std::int64_t deadline_ns) noexcept { detail::scheduler::current().sleep_until(deadline_ns); }

void exit() {
    detail::scheduler& sched = detail::scheduler::current();
    if (sched.running()->entry == nullptr && sched.running()->stack.size() == 0) {
        throw detail::api_error("gt::this_thread::exit", std::errc::operation_not_permitted,
                                detail::quoted(*sched.running()) + "thread " + std::to_string(sched.running()->id) +
                                    " is the adopted main thread: it has no thread function to leave; "
                                    "return from main instead");
    }
    throw detail::thread_exit_request{};
}

void cleanup_push(std::function<void()> handler) {
    detail::scheduler::current().running()->cleanup_handlers.push_back(std::move(handler));
}

void cleanup_pop(bool execute) {
    detail::control_block* self = detail::scheduler::current().running();
    if (self->cleanup_handlers.empty()) {
        throw std::logic_error("gt::this_thread::cleanup_pop: " + detail::quoted(*self) + "thread " +
                               std::to_string(self->id) + " has no cleanup handler to pop");
    }
    std::function<void()> handler = std::move(self->cleanup_handlers.back());
    self->cleanup_handlers.pop_back();
    if (execute) handler();
}

std::string get_name() { return detail::scheduler::name_of(*detail::scheduler::current().running()); }

void set_name(std::string_view name) {
    detail::scheduler& sched = detail::scheduler::current();
    sched.set_name(sched.running(), std::string(name));
}

int get_priority() noexcept { return detail::scheduler::current().running()->base_priority; }

void set_priority(int priority) {
    detail::scheduler& sched = detail::scheduler::current();
    detail::check_priority(priority, "gt::this_thread::set_priority", detail::quoted(*sched.running()));
    sched.set_priority(sched.running(), priority);
}

disable_preemption::disable_preemption() noexcept : owner_(detail::scheduler::current().running()) {
    detail::control_block* self = static_cast<detail::control_block*>(owner_);
    self->preemption_disabled = self->preemption_disabled + 1;
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the region's code stays after the increment
}

disable_preemption::~disable_preemption() {
    detail::scheduler& sched = detail::scheduler::current();
    std::atomic_signal_fence(std::memory_order_seq_cst);  // ... and before the decrement
    detail::control_block* self = sched.running();
    if (self != owner_) {
        std::fprintf(stderr,
                     "gt: %sgt::this_thread::disable_preemption destroyed on thread %llu, not on the thread that "
                     "created it; aborting\n",
                     detail::quoted(*self).c_str(), static_cast<unsigned long long>(self->id));
        std::abort();
    }
    self->preemption_disabled = self->preemption_disabled - 1;
    if (self->preemption_disabled == 0) sched.preemption_enabled_again();
}

}  // namespace this_thread

namespace {

// In ns; a duration too long for 64-bit nanoseconds (about 292 years)
// counts as the longest one.
template <typename Duration>
std::int64_t saturated_ns(Duration d) {
    if (d >= std::chrono::duration_cast<Duration>(std::chrono::nanoseconds::max())) return INT64_MAX;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

std::int64_t checked_ns(std::chrono::microseconds slice) {
    if (slice.count() < 0 || (slice.count() > 0 && slice < min_time_slice)) {
        throw std::invalid_argument("gt::set_time_slice: " + std::to_string(slice.count()) +
                                    " µs is neither 0 (preemption off) nor at least gt::min_time_slice (" +
                                    std::to_string(min_time_slice.count()) + " µs)");
    }
    return saturated_ns(slice);
}

}  // namespace

void set_time_slice(std::chrono::microseconds slice) {
    detail::scheduler& sched = detail::scheduler::current();
    sched.set_preemption(checked_ns(slice), sched.stall_threshold_ns());
}

std::chrono::microseconds time_slice() noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::nanoseconds(detail::scheduler::current().time_slice_ns()));
}

void set_stall_threshold(std::chrono::milliseconds threshold) {
    if (threshold.count() < 0) {
        throw std::invalid_argument("gt::set_stall_threshold: " + std::to_string(threshold.count()) +
                                    " ms is negative (0 turns the stall detector off)");
    }
    detail::scheduler& sched = detail::scheduler::current();
    sched.set_preemption(sched.time_slice_ns(), saturated_ns(threshold));
}

std::chrono::milliseconds stall_threshold() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(detail::scheduler::current().stall_threshold_ns()));
}

namespace debug {

void dump_threads(std::ostream& out) {
    const this_thread::disable_preemption no_preemption;  // other threads' names and states stay put
    detail::scheduler::current().dump(out);
}

int effective_priority(const thread& t) {
    const this_thread::disable_preemption no_preemption;  // an unlock may change it meanwhile
    return detail::usable(t.tcb_, "gt::debug::effective_priority")->priority;
}

int this_thread_effective_priority() noexcept { return detail::scheduler::current().running()->priority; }

thread_stats this_thread_stats() noexcept {
    const detail::control_block* self = detail::scheduler::current().running();
    return {std::chrono::nanoseconds(self->cpu_time_ns), self->switches,
            self->stops[static_cast<std::size_t>(detail::stop_reason::slice_expired)], self->ticks};
}

}  // namespace debug
}  // namespace gt
