#include "overflow.hpp"

#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>

#include "report.hpp"
#include "scheduler.hpp"

namespace gt::detail::overflow {
namespace {

constexpr std::size_t alt_stack_size = 64 * 1024;
struct sigaction previous_action;  // whoever handled SIGSEGV before us

void pass_on(int sig, siginfo_t* info, void* context) noexcept {
    if (previous_action.sa_flags & SA_SIGINFO) {
        previous_action.sa_sigaction(sig, info, context);
    } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
        previous_action.sa_handler(sig);
    } else {
        // Default action: restore it; returning re-executes the faulting
        // instruction, which now kills the process with SIGSEGV.
        signal(SIGSEGV, SIG_DFL);
    }
}

// Room a signal frame needs below the interrupted stack pointer: the red
// zone, the kernel's frame (its size for this CPU's register state is
// AT_MINSIGSTKSZ, Linux 5.14 and later) and alignment.
std::uintptr_t signal_frame_room() noexcept {
    const unsigned long frame = ::getauxval(AT_MINSIGSTKSZ);
    return 128 + (frame != 0 ? frame : 4096) + 64;
}

// The kernel could not push a signal frame (a preemption tick's) on the
// thread's stack: it sends SIGSEGV with si_code SI_KERNEL instead, and the
// interrupted stack pointer is within a frame's size of the guard page.
bool signal_frame_did_not_fit(const control_block& t, const siginfo_t* info, const void* context) noexcept {
    if (info->si_code != SI_KERNEL || context == nullptr) return false;
    const auto sp = static_cast<std::uintptr_t>(static_cast<const ucontext_t*>(context)->uc_mcontext.gregs[REG_RSP]);
    const auto bottom = reinterpret_cast<std::uintptr_t>(t.stack.bottom());
    return sp >= bottom && sp - bottom < signal_frame_room();
}

void on_segv(int sig, siginfo_t* info, void* context) {
    const scheduler* sched = scheduler::current_if_any();
    const control_block* t = sched != nullptr ? sched->running() : nullptr;
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    const bool no_room_for_tick = t != nullptr && t->stack.size() != 0 && signal_frame_did_not_fit(*t, info, context);
    if (t != nullptr && t->stack.size() != 0 &&
        ((addr >= reinterpret_cast<std::uintptr_t>(t->stack.guard_begin()) &&
          addr < reinterpret_cast<std::uintptr_t>(t->stack.bottom())) ||
         no_room_for_tick)) {
        // Async-signal-safe output only: name_of would allocate.
        report::text("gt: stack overflow in ");
        report::thread(*t);
        report::text(": it used all of its ");
        report::number(t->stack.size());
        report::text(no_room_for_tick
                         ? "-byte stack: a preemption tick found less room left than a signal frame needs. "
                           "Give it a bigger stack (gt::thread::attributes::stack_size) or recurse less. "
                           "Aborting.\n"
                         : "-byte stack and hit the guard page below it. Give it a bigger stack "
                           "(gt::thread::attributes::stack_size) or recurse less. Aborting.\n");
        // Let an earlier handler (a sanitizer's, a test's) see the fault too.
        if ((previous_action.sa_flags & SA_SIGINFO) ||
            (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN)) {
            pass_on(sig, info, context);
        }
        signal(SIGABRT, SIG_DFL);
        std::abort();
    }
    pass_on(sig, info, context);
}

}  // namespace

void* install_reporter() noexcept {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction action {};
        action.sa_sigaction = on_segv;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGSEGV, &action, &previous_action);
    });
    stack_t current{};
    if (::sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return nullptr;  // keep theirs
    void* mem = ::mmap(nullptr, alt_stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return nullptr;  // no report, but everything else works
    stack_t alt{};
    alt.ss_sp = mem;
    alt.ss_size = alt_stack_size;
    if (::sigaltstack(&alt, nullptr) != 0) {
        ::munmap(mem, alt_stack_size);
        return nullptr;
    }
    return mem;
}

void remove_reporter(void* alt_stack) noexcept {
    if (alt_stack == nullptr) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(&off, nullptr);
    ::munmap(alt_stack, alt_stack_size);
}

}  // namespace gt::detail::overflow
