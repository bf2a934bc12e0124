// Stacks: every thread gets its own mmap'd stack with a PROT_NONE guard page
// below it. Deep recursion that fits must work; recursion that does not fit
// must fault on the guard page instead of overwriting memory below.
#include <gt/thread.hpp>

#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "scheduler.hpp"

namespace {

// Uses about 1 KiB of stack per level; noinline and the use of the result
// after the call keep the compiler from turning it into a loop.
__attribute__((noinline)) std::uint64_t recurse(int depth) {
    volatile char frame[1024];
    std::memset(const_cast<char*>(frame), depth & 0x7f, sizeof frame);
    if (depth == 0) return frame[0];
    return recurse(depth - 1) + frame[depth % sizeof frame];
}

// Why: the stack a thread is given must really be usable, all of it.
TEST(Stack, DeepRecursionThatFitsTheStackWorks) {
    std::uint64_t result = 0;
    // 128 levels of ~1 KiB in a 256 KiB stack: about half of it.
    gt::thread t([&] { result = recurse(128); });
    t.join();
    std::uint64_t expected = 0;
    for (int d = 128; d >= 1; --d) expected += static_cast<std::uint64_t>(d & 0x7f);
    EXPECT_EQ(result, expected);
}

TEST(Stack, ThreadRunsOnItsOwnMappedStack) {
    std::uintptr_t local = 0, bottom = 0, top = 0;
    gt::thread t([&] {
        // The frame address, not a local's: ASan may move locals to a fake stack.
        local = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
        const auto& s = gt::detail::scheduler::current().running()->stack;
        bottom = reinterpret_cast<std::uintptr_t>(s.bottom());
        top = reinterpret_cast<std::uintptr_t>(s.top());
    });
    t.join();
    EXPECT_GE(local, bottom);
    EXPECT_LT(local, top);
    EXPECT_EQ(top - bottom, gt::thread::attributes::default_stack_size);
}

TEST(Stack, SizeIsRoundedUpToWholePages) {
    std::size_t size = 0;
    gt::thread t({.stack_size = gt::thread::attributes::min_stack_size + 1},
                 [&] { size = gt::detail::scheduler::current().running()->stack.size(); });
    t.join();
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    EXPECT_EQ(size, gt::thread::attributes::min_stack_size + page);
}

// The death test's child reports where the fault hit, from an alternate
// signal stack (the thread's own stack is the one that just overflowed).
std::uintptr_t guard_lo, guard_hi;

void on_segv(int, siginfo_t* info, void* context) {
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    // With preemption, a tick may arrive when the stack has less room left
    // than a signal frame: the kernel then cannot push the frame and sends
    // SIGSEGV (SI_KERNEL) with the stack pointer just above the guard page.
    // Caught at the guard page all the same.
    const auto sp = static_cast<std::uintptr_t>(static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RSP]);
    const bool tick_did_not_fit = info->si_code == SI_KERNEL && sp >= guard_hi && sp - guard_hi < 8192;
    const char* msg = addr >= guard_lo && addr < guard_hi ? "fault in the guard page\n"
                      : tick_did_not_fit                  ? "fault in the guard page (a tick's signal frame)\n"
                                                          : "fault elsewhere\n";
    (void)!::write(STDERR_FILENO, msg, std::strlen(msg));
    ::_exit(3);
}

volatile bool keep_recursing = true;  // volatile: the compiler cannot prove the recursion infinite

__attribute__((noinline)) std::uint64_t recurse_forever(int depth) {
    volatile char frame[512];
    frame[0] = static_cast<char>(depth);
    if (!keep_recursing) return frame[0];
    return recurse_forever(depth + 1) + frame[0];
}

void install_guard_page_reporter() {
    static char alt_stack[64 * 1024];
    stack_t ss{};
    ss.ss_sp = alt_stack;
    ss.ss_size = sizeof alt_stack;
    ::sigaltstack(&ss, nullptr);
    struct sigaction sa{};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    ::sigaction(SIGSEGV, &sa, nullptr);
}

// Called on the thread: remembers where its guard page is.
void record_guard_page() {
    const auto& s = gt::detail::scheduler::current().running()->stack;
    guard_lo = reinterpret_cast<std::uintptr_t>(s.guard_begin());
    guard_hi = reinterpret_cast<std::uintptr_t>(s.bottom());
}

void overflow_a_thread_stack() {
    install_guard_page_reporter();
    gt::thread t({.stack_size = gt::thread::attributes::min_stack_size}, [] {
        record_guard_page();
        recurse_forever(0);
    });
    t.join();
}

// Why: without the guard page an overflow silently overwrites whatever is
// mapped below the stack (another thread's stack, the heap).
TEST(StackDeathTest, OverflowFaultsOnTheGuardPage) {
    EXPECT_EXIT(overflow_a_thread_stack(), testing::ExitedWithCode(3), "fault in the guard page");
}

std::uintptr_t large_frame_bottom;  // where it wrote, if no fault stopped it

__attribute__((noinline)) void use_a_frame_bigger_than_the_stack() {
    volatile char big[64 * 1024];  // 4 times the whole stack, in one frame
    // The array's address escapes into an (empty) asm statement, so the
    // compiler must reserve all of it. Otherwise Clang shrinks an array of
    // which one byte is used down to that byte, and nothing overflows.
    asm volatile("" : : "r"(big) : "memory");
    big[0] = 1;  // its lowest byte: far below the guard page
    large_frame_bottom = reinterpret_cast<std::uintptr_t>(&big[0]);
}

void overflow_with_one_large_frame() {
    install_guard_page_reporter();
    gt::thread t({.stack_size = gt::thread::attributes::min_stack_size}, [] {
        record_guard_page();
        use_a_frame_bigger_than_the_stack();
        std::fprintf(stderr, "no fault: the frame's lowest byte was %s\n",
                     large_frame_bottom < guard_lo ? "below the guard page (the frame was not probed)"
                                                   : "inside the stack (the frame was not 64 KiB)");
    });
    t.join();
}

// Why: a frame larger than the guard page could step over it and write into
// whatever lies below; -fstack-clash-protection (in the build flags) makes
// the function touch its frame page by page, so the guard page is hit first.
TEST(StackDeathTest, OneFrameLargerThanTheStackStillFaultsOnTheGuardPage) {
    EXPECT_EXIT(overflow_with_one_large_frame(), testing::ExitedWithCode(3), "fault in the guard page");
}

// Not instrumented by ASan, so its locals stay on the thread's own stack.
// An instrumented function's locals may live on an ASan "fake stack"
// instead (detect_stack_use_after_return=1), which LeakSanitizer does not
// scan while the thread is switched out: see the walkthrough, section 7.
__attribute__((no_sanitize_address, noinline)) void hold_heap_memory_while_waiting() {
    std::vector<int> only_on_this_stack(1000, 7);
    gt::this_thread::yield();  // never resumed: main exits meanwhile
    only_on_this_stack[0] = 0;
}

void exit_while_a_thread_holds_heap_memory_on_its_stack() {
    static gt::thread* holder = new gt::thread(hold_heap_memory_while_waiting);
    gt::this_thread::yield();
    (void)holder;
    std::exit(0);
}

// Why: LeakSanitizer scans only the stacks it knows; without registering
// each green stack, memory a waiting thread still uses is reported as a
// leak when the process exits (and the exit status becomes 23).
TEST(StackDeathTest, MemoryReferencedFromAWaitingThreadsStackIsNotALeakAtExit) {
    EXPECT_EXIT(exit_while_a_thread_holds_heap_memory_on_its_stack(), testing::ExitedWithCode(0), "");
}

TEST(Stack, StackSizeBelowTheMinimumThrowsInvalidArgument) {
    try {
        gt::thread t({.stack_size = 1024}, [] {});
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("below the minimum of 16384 bytes"), std::string::npos) << e.what();
    }
}

TEST(Stack, UnmappableStackThrowsSystemErrorAndLosesNothing) {
    bool ran = false;
    try {
        gt::thread t({.stack_size = SIZE_MAX - 1}, [&] { ran = true; });
        FAIL() << "expected std::system_error";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::resource_unavailable_try_again);
        EXPECT_NE(std::string(e.what()).find("mmap of a stack of"), std::string::npos) << e.what();
    }
    // The runtime is intact: the next thread runs normally.
    gt::thread t([&] { ran = true; });
    t.join();
    EXPECT_TRUE(ran);
}

}  // namespace
