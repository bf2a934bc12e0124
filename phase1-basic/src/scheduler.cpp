#include "scheduler.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

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

scheduler& scheduler::current() noexcept {
    static thread_local scheduler instance;
    return instance;
}

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

void scheduler::switch_to(control_block* next) noexcept {
    control_block* prev = running_;
    GT_INVARIANT(next != prev, "a thread never switches to itself");
    GT_INVARIANT(next->state == thread_state::ready, "only a READY thread is switched to");
    GT_INVARIANT(prev->state != thread_state::running, "the caller moved the leaving thread out of RUNNING");
    next->state = thread_state::running;
    running_ = next;
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
