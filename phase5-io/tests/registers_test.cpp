// A preempted thread gets every register back: the timer may stop a green
// thread between any two instructions of the program's own code, where every
// register may hold a live value — not only the callee-saved ones a
// cooperative switch preserves, but rax, rcx, rdx, rsi, rdi, r8-r11, the
// flags, all of xmm0-15 (and the upper halves of ymm0-15), and the x87
// stack, none of which the System V x86-64 psABI (section 3.2.1, "Registers
// and the Stack Frame", Figure 3.4 "Register Usage") asks anyone to keep
// across a call: at a preemption there is no call. The runtime never saves
// them itself: the SIGALRM handler switches threads from inside the handler,
// and the preempted thread's complete user state lives in the signal frame
// on its own stack. On entry to a handler the kernel saves the
// general-purpose registers and flags (struct sigcontext) and the whole
// extended state — x87, SSE, AVX and beyond, as XSAVE lays it out (the
// fpstate that uc_mcontext.fpregs points to) — in that frame, and starts the
// handler with DF clear and a fresh FPU state (empty x87 stack); sigreturn(2)
// restores all of it from the frame (signal(7): "Execution of signal
// handlers", sigreturn(2): "restores the process's signal mask, switches
// stacks, and restores the process's context (processor flags and registers,
// including the stack pointer and instruction pointer)"). So the runtime is
// correct if (a) it never overwrites or moves a suspended thread's signal
// frame (each frame stays on its thread's stack until that thread resumes
// and returns from the handler), and (b) the frame the kernel restores at
// sigreturn is the one it built for that same thread. This test checks the
// outcome, not the mechanism: a mistake in either, or a handler that writes
// into the interrupted thread's saved state, shows up as a wrong register
// value (checked by hand with such deliberate faults in the handler).
//
// How: tests/registers_helpers_x86_64.S (gt_test_hold_registers) loads 15
// general-purpose registers, DF, all 16 xmm (or ymm) registers and all 8 x87
// registers (all 80 bits of each) with values from the test, spins in a loop
// that calls nothing, and writes every register out. Two or three green
// threads do so at once with different values, at a 100 us time slice, until
// each has been preempted at least a thousand times inside the helper (so
// the test cannot pass without preemption happening); between preemptions
// the other threads run with their own values in the same physical
// registers, so any value that leaks from one thread to another, or is lost,
// is caught. Each call uses fresh values (derived from the thread's seed and
// the call number), so a stale value from an earlier call cannot pass
// either.
//
// Not covered: MXCSR and the x87 control word (context_test checks them
// across cooperative switches), AVX-512 state (zmm, k0-7), and the upper ymm
// halves of a thread that uses only SSE (unknown to it, so not checkable).
//
// Built at -O2 and -O0 (registers_test, registers_test_O0); the helper is
// assembly, so its loop is the same at both.
#include <gt/debug.hpp>
#include <gt/preemption.hpp>
#include <gt/thread.hpp>

#include <time.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "preemption_for_test.hpp"

extern "C" void gt_test_hold_registers(const std::uint64_t* in, std::uint64_t iterations, int use_avx,
                                       std::uint64_t* out);

namespace {

// The layout of gt_test_hold_registers's `in` and `out`, in 64-bit words
// (see the comment at the top of registers_helpers_x86_64.S).
constexpr int gpr_words = 15;  // rax ... r15
constexpr int r14_word = 13;   // the loop's up-counter
constexpr int r15_word = 14;   // the loop's down-counter
constexpr int rflags_word = 15;
constexpr int rsp_before_word = 16;
constexpr int rsp_after_word = 17;
constexpr int x87_status_word = 18;
constexpr int vec_word = 32;  // ymm0-15, 4 words each
constexpr int x87_word = 96;  // 8 x87 registers, 2 words each, st(7) (pushed first) to st(0)
constexpr int total_words = 112;

constexpr std::array<const char*, gpr_words> gpr_names = {
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};

constexpr std::uint64_t min_preemptions = 1000;  // per thread, inside the helper
// One call spins about a millisecond (ten 100 us slices) on a ~3 GHz CPU:
// long enough that nearly every tick lands inside the loop, short enough
// that the thread soon checks its count again.
constexpr std::uint64_t iterations_per_call = 3'000'000;
// Holders that are not preempted enough by the time their OS thread has
// used this much CPU fail instead of spinning forever. CPU time, not
// elapsed time: on a loaded machine the process may wait for a CPU far
// longer than it runs, which changes neither the CPU time nor the number of
// preemptions the test needs (about 0.1 s of CPU per holder).
constexpr auto cpu_budget = std::chrono::seconds(5);
constexpr std::size_t max_failures_reported = 20;  // per thread

// SplitMix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number
// generators", 2014): distinct, well-mixed words from a seed.
std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct holder_result {
    std::uint64_t calls = 0;
    std::uint64_t preemptions = 0;  // counted across the helper calls only
    std::uint64_t mismatches = 0;
    std::vector<std::string> failures;  // the first max_failures_reported
};

// CPU time of the calling OS thread: all its green threads together.
std::chrono::nanoseconds os_thread_cpu_time() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

std::string hex(std::uint64_t value) {
    char text[24];
    std::snprintf(text, sizeof text, "0x%016" PRIx64, value);
    return text;
}

// Compares one call's `out` with what it must hold; records each mismatch,
// naming the register. Runs on the green thread: no gtest assertions there
// (gtest's own locks must not be held across a preemption), the main
// thread reports after join.
void check(const std::array<std::uint64_t, total_words>& in,
           const std::array<std::uint64_t, total_words>& out, bool use_avx, const std::string& who,
           holder_result& result) {
    auto mismatch = [&](const std::string& what, std::uint64_t expected, std::uint64_t actual) {
        ++result.mismatches;
        if (result.failures.size() < max_failures_reported) {
            result.failures.push_back(who + " call " + std::to_string(result.calls) + ": " + what +
                                      " expected " + hex(expected) + ", got " + hex(actual));
        }
    };
    for (int r = 0; r < gpr_words; ++r) {
        std::uint64_t expected = in[r];
        if (r == r14_word) expected = in[r] + iterations_per_call;
        if (r == r15_word) expected = 0;
        if (out[r] != expected) mismatch(gpr_names[r], expected, out[r]);
    }
    constexpr std::uint64_t direction_flag = 1u << 10;
    if ((out[rflags_word] & direction_flag) == 0)
        mismatch("rflags.DF (bit 10)", direction_flag, out[rflags_word]);
    if (out[rsp_after_word] != out[rsp_before_word])
        mismatch("rsp", out[rsp_before_word], out[rsp_after_word]);
    // TOP (bits 11-13) back to 0, no stack fault (SF, bit 6) nor invalid
    // operation (IE, bit 0) from pushing onto a full or popping an empty stack.
    constexpr std::uint64_t top_sf_ie = 0x3841;
    if ((out[x87_status_word] & top_sf_ie) != 0)
        mismatch("x87 status word TOP/SF/IE", 0, out[x87_status_word]);
    for (int r = 0; r < 16; ++r) {
        for (int w = 0; w < (use_avx ? 4 : 2); ++w) {
            const int i = vec_word + 4 * r + w;
            if (out[i] != in[i]) {
                mismatch((use_avx ? "ymm" : "xmm") + std::to_string(r) + " bits " + std::to_string(64 * w) +
                             "-" + std::to_string(64 * w + 63),
                         in[i], out[i]);
            }
        }
    }
    for (int k = 0; k < 8; ++k) {
        // Slot k was pushed k-th, so at the end of the pushes it is st(7 - k).
        const std::string name = "x87 st(" + std::to_string(7 - k) + ")";
        const int i = x87_word + 2 * k;
        if (out[i] != in[i]) mismatch(name + " significand", in[i], out[i]);
        if (out[i + 1] != in[i + 1]) mismatch(name + " sign and exponent", in[i + 1], out[i + 1]);
    }
}

// Calls the helper with fresh values, checking every register after every
// call, until every holder has been preempted min_preemptions times inside
// it (or the OS thread has used cpu_budget). A thread that has its count keeps going
// until the others have theirs too: a thread left alone is never preempted
// (nobody else is READY), so it would never get there.
void hold_registers(std::uint64_t seed, bool use_avx, std::atomic<std::size_t>& unfinished,
                    holder_result& result) {
    const std::string who = gt::this_thread::get_name();
    const auto cpu_limit = os_thread_cpu_time() + cpu_budget;
    std::uint64_t state = seed;
    std::array<std::uint64_t, total_words> in{}, out{};
    bool finished = false;
    while (unfinished.load() != 0 && os_thread_cpu_time() < cpu_limit) {
        for (auto& word : in) word = splitmix64(state);
        for (int k = 0; k < 8; ++k) {
            // A normal 80-bit extended value: 64-bit significand with its
            // explicit integer bit set, random sign and a biased exponent
            // between 1 and 0x7ffe (never 0: denormal, nor 0x7fff: infinity
            // or NaN), so that fldt and fstpt pass every bit unchanged.
            in[x87_word + 2 * k] |= std::uint64_t{1} << 63;
            std::uint64_t sign_exponent = in[x87_word + 2 * k + 1] & 0xffff;
            if ((sign_exponent & 0x7fff) == 0 || (sign_exponent & 0x7fff) == 0x7fff) sign_exponent ^= 0x4000;
            // Bytes 10-15 of the slot are not touched: 0 in `in` and `out`.
            in[x87_word + 2 * k + 1] = sign_exponent;
        }
        out.fill(0);
        const std::uint64_t before = gt::debug::this_thread_stats().preemptions;
        gt_test_hold_registers(in.data(), iterations_per_call, use_avx ? 1 : 0, out.data());
        result.preemptions += gt::debug::this_thread_stats().preemptions - before;
        ++result.calls;
        check(in, out, use_avx, who, result);
        if (!finished && result.preemptions >= min_preemptions) {
            finished = true;
            --unfinished;
        }
    }
}

struct holder_spec {
    const char* name;
    std::uint64_t seed;
    bool use_avx;
};

// Runs one green thread per spec at once, at a 100 us slice, and asserts
// that each kept every register and was preempted often enough.
void run_holders(const std::vector<holder_spec>& specs) {
    const preemption_for_test preemption(std::chrono::microseconds(100));
    std::vector<holder_result> results(specs.size());
    std::atomic<std::size_t> unfinished{specs.size()};
    const auto start = std::chrono::steady_clock::now();
    const auto cpu_start = os_thread_cpu_time();
    {
        std::vector<gt::thread> threads;
        for (std::size_t i = 0; i < specs.size(); ++i) {
            threads.emplace_back(gt::thread::attributes{.name = specs[i].name},
                                 [&spec = specs[i], &unfinished, &result = results[i]] {
                                     hold_registers(spec.seed, spec.use_avx, unfinished, result);
                                 });
        }
        for (auto& t : threads) t.join();
    }
    const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto cpu = std::chrono::duration<double>(os_thread_cpu_time() - cpu_start).count();
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const holder_result& r = results[i];
        std::printf("[          ] %s (%s): %" PRIu64 " preemptions in %" PRIu64 " calls, %" PRIu64
                    " mismatches (all holders: %.3f s, %.3f s of CPU)\n",
                    specs[i].name, specs[i].use_avx ? "ymm" : "xmm", r.preemptions, r.calls, r.mismatches,
                    elapsed, cpu);
        for (const std::string& failure : r.failures) ADD_FAILURE() << failure;
        EXPECT_EQ(r.mismatches, 0u) << specs[i].name << ": registers changed across preemption";
        EXPECT_GE(r.preemptions, min_preemptions)
            << specs[i].name << " was not preempted often enough inside the helper, in " << cpu_budget.count()
            << " s of CPU, to prove anything";
    }
}

// Why: on any x86-64 CPU, a thread preempted with live values in every
// general-purpose, SSE and x87 register must find them all when it resumes.
TEST(Registers, SurvivePreemptionGeneralSseAndX87) {
    run_holders({{"sse-a", 0x5eed'0001, false}, {"sse-b", 0x5eed'0002, false}});
}

// Why: with AVX, the upper halves of ymm0-15 are more state in the signal
// frame (XSAVE's YMM_Hi128 component); a runtime or kernel path that saved
// only the legacy FXSAVE area would lose them.
TEST(Registers, SurvivePreemptionWithAvx) {
    if (!__builtin_cpu_supports("avx")) GTEST_SKIP() << "the CPU has no AVX";
    run_holders({{"avx-a", 0xa7c0'0001, true}, {"avx-b", 0xa7c0'0002, true}, {"avx-c", 0xa7c0'0003, true}});
}

}  // namespace
