#include "preempt.hpp"

#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>

#include "gt/preemption.hpp"
#include "scheduler.hpp"
#include "syscalls.hpp"

namespace gt::detail::preempt {
namespace {

// Where a tick may switch threads: the main program's machine code (its
// executable PT_LOAD segment), found once with dl_iterate_phdr(3), which
// reports the program first. Not the vDSO, although its clock_gettime takes
// no lock: its callers may hold one (glibc's syslog reads the clock with
// syslog_lock held, AddressSanitizer's allocator with its own).
struct text_range {
    std::uintptr_t begin = 0, end = 0;
    bool contains(std::uintptr_t pc) const noexcept { return pc >= begin && pc < end; }
};
text_range program_text;
bool dynamically_linked = false;  // the program has a PT_INTERP: ld.so loads libc as a library

int find_program_text(dl_phdr_info* info, std::size_t, void*) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info->dlpi_phdr[i];
        if (segment.p_type == PT_INTERP) dynamically_linked = true;
        if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) != 0) {
            program_text.begin = info->dlpi_addr + segment.p_vaddr;
            program_text.end = program_text.begin + segment.p_memsz;
        }
    }
    return 1;  // the first object is the program itself
}

// On the interrupted thread's own stack (no SA_ONSTACK), with SIGALRM
// blocked (no SA_NODEFER), so it never runs inside itself.
void on_sigalrm(int, siginfo_t*, void* ucontext) {
    const int saved_errno = errno;  // errno belongs to the interrupted thread
    if (scheduler* s = scheduler::current_if_any()) s->on_tick(ucontext);
    errno = saved_errno;
}

// Signals 1-64 of a sigset_t: glibc's sigset_t is 1024 bits, the kernel's 64.
std::uint64_t low_word(const sigset_t& set) noexcept {
    std::uint64_t word;
    std::memcpy(&word, &set, sizeof word);
    return word;
}

constexpr std::uint64_t sigalrm_bit = std::uint64_t{1} << (SIGALRM - 1);

// The signal mask the calling OS thread's threads normally run with: read
// when its ticker is made, then whatever the program sets with
// pthread_sigmask or sigprocmask (their wrappers in syscalls.cpp), so that a
// program that unblocks a signal it started with blocked is preempted as
// before, and a handler of that signal is still recognised by its mask.
// Changes made without those two functions (inside libc: siglongjmp,
// sigsetmask; or in a signal handler, which rt_sigreturn undoes) are not
// seen; the rule below stays safe for those that block less than it knows.
thread_local std::uint64_t normal_mask = 0;
thread_local volatile sig_atomic_t mask_changing = 0;  // between the two halves of a wrapper

// The kernel, restarting a system call after the handler (SA_RESTART),
// points the instruction pointer back at its `syscall` instruction (0f 05).
bool at_system_call(const void* ucontext) noexcept {
    const auto* pc = reinterpret_cast<const unsigned char*>(
        static_cast<const ucontext_t*>(ucontext)->uc_mcontext.gregs[REG_RIP]);
    return pc[0] == 0x0f && pc[1] == 0x05;
}

// Calls every C library function that the tick's handler calls (on_sigalrm,
// scheduler::on_tick and what it calls) once, here. A program is linked for
// lazy binding by default: the first call of a function through the PLT
// runs the dynamic linker's resolver, which saves the whole vector register
// state on the stack (about 3.5 KiB with AVX-512). Done by the first tick,
// that would happen on the interrupted thread's stack, on top of the
// kernel's signal frame: twice a tick's usual depth. Keep this list in step
// with the handler.
void bind_what_the_handler_calls() noexcept {
    const int saved_errno = errno;  // __errno_location
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    (void)!::write(-1, "", 0);  // fails (EBADF) and writes nothing; binds write, for the stall report
    const char* volatile empty = "";
    volatile std::size_t length = std::strlen(empty);  // the stall report measures its pieces
    (void)length;
    syscalls::resolve_real_functions();  // pthread_sigmask, through a pointer
    errno = saved_errno;
}

// POSIX timers are per process and not inherited by fork(2)'s child: the
// child's OS thread (the one that forked) needs its timer made again.
void restart_in_child() {
    if (scheduler* s = scheduler::current_if_any()) s->restart_timer_after_fork();
}

void install_handler_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Before the first timer exists: nothing the handler or the system
        // call wrappers need is looked up while ticks can come.
        bind_what_the_handler_calls();
        dl_iterate_phdr(find_program_text, nullptr);
        if (!dynamically_linked) {
            // Linked with -static: libc's malloc and stdio are part of the
            // program's code, and no address tells where their locks are held.
            std::fputs("gt: this program links the C library statically (malloc is part of its own code), so no "
                       "instruction is known to be safe to preempt at; preemption is off\n",
                       stderr);
            program_text = {};
        }
        struct sigaction action {};
        action.sa_sigaction = on_sigalrm;
        // SA_RESTART: read(2), write(2), wait(2)... interrupted by a tick
        // restart instead of failing with EINTR (signal(7) lists the ones
        // that never restart; syscalls.cpp covers the common ones).
        action.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&action.sa_mask);
        struct sigaction before {};
        ::sigaction(SIGALRM, &action, &before);
        if ((before.sa_flags & SA_SIGINFO) != 0 || (before.sa_handler != SIG_DFL && before.sa_handler != SIG_IGN)) {
            std::fputs("gt: replacing the program's own SIGALRM handler: the runtime's preemption timer uses SIGALRM\n",
                       stderr);
        }
        ::pthread_atfork(nullptr, nullptr, restart_in_child);
    });
}

thread_local bool ticking = false;  // the calling OS thread's ticker is ticking

// A whole number >= 0 from the environment, or `fallback` (reported) when
// the variable is set to anything else.
std::int64_t from_environment(const char* name, std::int64_t fallback, std::int64_t minimum, const char* unit) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return fallback;
    char* end = nullptr;
    const int saved_errno = errno;  // the caller's errno is not ours to change
    errno = 0;
    const long long value = std::strtoll(text, &end, 10);
    const bool valid = errno == 0 && *end == '\0' && (value == 0 || (value >= minimum && value <= INT64_MAX / 1'000'000));
    errno = saved_errno;
    if (valid) return value;
    std::fprintf(stderr, "gt: %s=%s is not 0 or a whole number of %s of at least %" PRId64 "; using %" PRId64 "\n",
                 name, text, unit, minimum, fallback);
    return fallback;
}

}  // namespace

ticker::ticker() noexcept : tid_(static_cast<int>(::syscall(SYS_gettid))) {
    // The runtime owns SIGALRM: an OS thread that started with it blocked
    // (say, created while its creator blocked every signal) would never tick.
    unblock_timer_signal();
    sigset_t mask;
    syscalls::real_pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    normal_mask = low_word(mask);
}

ticker::~ticker() { stop(); }

void ticker::stop() noexcept {
    if (created_) ::timer_delete(timer_);
    created_ = false;
    period_ns_ = 0;
    ticking = false;
}

void ticker::set_period(std::int64_t ns) {
    if (ns != 0 && !created_) {
        install_handler_once();
        sigevent event{};
        event.sigev_notify = SIGEV_THREAD_ID;
        event.sigev_signo = SIGALRM;
        event._sigev_un._tid = tid_;  // sigev_notify_thread_id; glibc 2.36 has no macro for it
        if (::timer_create(CLOCK_MONOTONIC, &event, &timer_) != 0) {
            throw std::system_error(errno, std::generic_category(), "gt: timer_create for preemption");
        }
        created_ = true;
    }
    if (!created_) return;  // 0 and no timer: nothing ticks already
    itimerspec period{};
    period.it_interval.tv_sec = ns / 1'000'000'000;
    period.it_interval.tv_nsec = ns % 1'000'000'000;
    period.it_value = period.it_interval;  // all zero: disarmed
    if (::timer_settime(timer_, 0, &period, nullptr) != 0) {
        throw std::system_error(errno, std::generic_category(), "gt: timer_settime for preemption");
    }
    period_ns_ = ns;
    ticking = ns != 0;
}

void ticker::retry_in(std::int64_t ns) noexcept {
    itimerspec when{};
    when.it_value.tv_sec = ns / 1'000'000'000;
    when.it_value.tv_nsec = ns % 1'000'000'000;
    when.it_interval.tv_sec = period_ns_ / 1'000'000'000;
    when.it_interval.tv_nsec = period_ns_ % 1'000'000'000;
    if (created_ && period_ns_ != 0) ::timer_settime(timer_, 0, &when, nullptr);
}

void ticker::restart_after_fork() noexcept {
    const std::int64_t ns = period_ns_;
    created_ = false;  // the parent's timer id means nothing here
    period_ns_ = 0;
    ticking = false;
    tid_ = static_cast<int>(::syscall(SYS_gettid));
    try {
        set_period(ns);
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s in a forked child: preemption is off there\n", e.what());
    }
}

not_preemptible ticker::why_not_safe(const void* ucontext) const noexcept {
    const auto* uc = static_cast<const ucontext_t*>(ucontext);
    // No more signals blocked than normal (SIGALRM aside: the runtime's own,
    // blocked by wrappers that hold ticks). One more is blocked inside a
    // handler of the program's own signal: switching there would suspend
    // that handler midway and run the next thread with its signal blocked.
    if (mask_changing || (low_word(uc->uc_sigmask) & ~normal_mask & ~sigalrm_bit) != 0) {
        return not_preemptible::signal_mask;
    }
    const auto pc = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
    if (program_text.contains(pc)) return not_preemptible::no;
    return at_system_call(ucontext) ? not_preemptible::in_system_call : not_preemptible::not_in_program_code;
}

const char* to_string(not_preemptible reason) noexcept {
    switch (reason) {
        case not_preemptible::no: return "nothing stops it";
        case not_preemptible::preemption_off: return "preemption is off";
        case not_preemptible::critical_section: return "the scheduler is in a critical section";
        case not_preemptible::disabled_by_thread: return "preemption is disabled in it";
        case not_preemptible::signal_mask:
            return "it runs in a signal handler (more signals blocked than the program's mask)";
        case not_preemptible::in_system_call: return "it waits in a system call";
        case not_preemptible::not_in_program_code:
            return "it runs outside the program's own code (in a shared library or the vDSO)";
    }
    return "?";
}

bool blocks_more_than_normal(const sigset_t& mask) noexcept {
    return (low_word(mask) & ~normal_mask & ~sigalrm_bit) != 0;
}

void normal_mask_blocking_ticks(sigset_t& mask) noexcept {
    sigemptyset(&mask);
    const std::uint64_t word = normal_mask | sigalrm_bit;
    std::memcpy(&mask, &word, sizeof word);
}

void signal_mask_changing() noexcept {
    mask_changing = 1;
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

void signal_mask_changed(int how, const sigset_t* set, const sigset_t* before) noexcept {
    if (before != nullptr) {
        const std::uint64_t was = low_word(*before), given = low_word(*set);
        normal_mask = how == SIG_BLOCK ? was | given : how == SIG_UNBLOCK ? was & ~given : given;
    }
    std::atomic_signal_fence(std::memory_order_seq_cst);
    mask_changing = 0;
}

namespace {

// SIG_BLOCK or SIG_UNBLOCK of SIGALRM alone, through libc's pthread_sigmask.
void change_timer_signal(int how) noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    syscalls::real_pthread_sigmask(how, &set, nullptr);
}

}  // namespace

void unblock_timer_signal() noexcept { change_timer_signal(SIG_UNBLOCK); }

void block_timer_signal() noexcept { change_timer_signal(SIG_BLOCK); }

bool this_os_thread_ticks() noexcept { return ticking; }

hold_ticks::hold_ticks() noexcept {
    if (!ticking) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigset_t old;
    syscalls::real_pthread_sigmask(SIG_BLOCK, &set, &old);
    held_ = sigismember(&old, SIGALRM) == 0;
}

hold_ticks::~hold_ticks() {
    if (held_) unblock_timer_signal();
}

void hold_ticks::add_to(sigset_t& mask) const noexcept {
    if (held_) sigaddset(&mask, SIGALRM);
}

std::int64_t slice_from_environment() noexcept {
    return from_environment("GT_TIME_SLICE_US", default_time_slice.count(), min_time_slice.count(), "microseconds") *
           1000;
}

std::int64_t stall_threshold_from_environment() noexcept {
    return from_environment("GT_STALL_REPORT_MS", default_stall_threshold.count(), 1, "milliseconds") * 1'000'000;
}

}  // namespace gt::detail::preempt
