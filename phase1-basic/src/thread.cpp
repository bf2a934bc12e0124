// gt::thread and gt::this_thread: the public API over the scheduler.
#include "gt/thread.hpp"

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>

#include "context.hpp"
#include "scheduler.hpp"
#include "sanitizers.hpp"

namespace gt {
namespace detail {

struct id_factory {
    static thread::id make(std::uint64_t value) noexcept { return thread::id(value); }
};

namespace {

// Where every new thread starts (via gt_context_entry), on its own stack.
//
// No try/catch: an exception that escapes the thread's function finds no
// handler on this stack (the unwinder's search ends at gt_context_entry), so
// the C++ runtime calls std::terminate at the throw itself, before unwinding
// anything: destructors do not run and a debugger or core dump shows where
// it was thrown. That is what std::thread does too. The scheduler's
// terminate handler names the thread first.
[[noreturn]] void thread_main(void* arg) {
    auto* self = static_cast<control_block*>(arg);
    scheduler& sched = *self->owner;
    sched.thread_started();
    self->entry->run();
    delete self->entry;  // the decay-copies die on the new thread, as with std::thread
    self->entry = nullptr;
    sched.finish_running();
}

std::system_error join_error(std::errc code, const std::string& what) {
    return std::system_error(std::make_error_code(code), "gt::thread::join: " + what);
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
    detail::scheduler& sched = detail::scheduler::current();
    auto tcb = std::make_unique<detail::control_block>();
    tcb->id = detail::allocate_thread_id();
    tcb->stack = detail::stack::allocate(attrs.stack_size, tcb->id);
    tcb->stack_bottom = tcb->stack.bottom();
    tcb->stack_size = tcb->stack.size();
    detail::sanitizers::unpoison(tcb->stack.bottom(), tcb->stack.size());
    tcb->sp = detail::make_context(tcb->stack.top(), &detail::thread_main, tcb.get());
    tcb->entry = entry.release();
    sched.make_ready(tcb.get());
    return tcb.release();
}

thread& thread::operator=(thread&& other) noexcept {
    if (joinable()) {
        std::fprintf(stderr, "gt: gt::thread %llu was assigned to while joinable (join() it first); calling std::terminate\n",
                     static_cast<unsigned long long>(tcb_->id));
        std::terminate();
    }
    tcb_ = std::exchange(other.tcb_, nullptr);
    return *this;
}

thread::~thread() {
    if (joinable()) {
        std::fprintf(stderr, "gt: gt::thread %llu destroyed while joinable (join() it before it goes out of scope); calling std::terminate\n",
                     static_cast<unsigned long long>(tcb_->id));
        std::terminate();
    }
}

thread::id thread::get_id() const noexcept {
    return tcb_ == nullptr ? id() : detail::id_factory::make(tcb_->id);
}

void thread::join() {
    using detail::join_error;
    if (tcb_ == nullptr) {
        throw join_error(std::errc::invalid_argument,
                         "this gt::thread is not joinable (default-constructed, moved from, or already joined)");
    }
    detail::scheduler& sched = detail::scheduler::current();
    if (tcb_ == sched.running()) {
        throw join_error(std::errc::resource_deadlock_would_occur,
                         "thread " + std::to_string(tcb_->id) + " cannot join itself");
    }
    if (tcb_->owner != &sched) {
        throw join_error(std::errc::operation_not_permitted,
                         "thread " + std::to_string(tcb_->id) +
                             " belongs to another OS thread's scheduler; join it from that OS thread");
    }
    // From here on, *this is not touched: while we wait, other threads run,
    // and one of them may move or destroy this gt::thread object (say, by
    // growing the vector it lives in).
    detail::control_block* target = std::exchange(tcb_, nullptr);
    // Wait by yielding: the target is READY until it finishes, so each yield
    // lets it (and everyone else) run one more turn.
    while (target->state != detail::thread_state::finished) sched.yield();
    delete target;  // unmaps its stack: safe, we are running on our own
}

namespace this_thread {

void yield() noexcept { detail::scheduler::current().yield(); }

thread::id get_id() noexcept { return detail::id_factory::make(detail::scheduler::current().running()->id); }

}  // namespace this_thread
}  // namespace gt
