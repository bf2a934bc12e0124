// The context switch and the first frame of a new thread, checked against
// each hazard of the System V x86-64 calling convention separately: a
// switch that forgets a register, misaligns the stack or leaks FP control
// state breaks code far away from the switch, often only at one -O level.
// This file is built at -O2 and at -O0 (context_test, context_test_O0).
#include <gt/thread.hpp>

#include <unistd.h>

#include <cctype>
#include <cfenv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unwind.h>
#include <xmmintrin.h>

#include "context.hpp"
#include "frame_chain.hpp"

extern "C" {
std::uint64_t gt_test_callee_saved_survive(void (*fn)(), std::uint64_t seed);
std::uint64_t gt_test_rsp_at_call();
}

namespace {

void yield_twice() {
    gt::this_thread::yield();
    gt::this_thread::yield();
}

std::uint16_t x87_control_word() {
    std::uint16_t cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
}

void set_x87_control_word(std::uint16_t cw) { __asm__ volatile("fldcw %0" : : "m"(cw)); }

// Why: the switch saves only rbx, rbp, r12-r15; if it missed one, a caller
// would find a value from another thread in it after a yield.
TEST(ContextSwitch, PreservesCalleeSavedRegisters) {
    std::uint64_t mask_a = ~0ull, mask_b = ~0ull, mask_main = ~0ull;
    gt::thread a([&] { mask_a = gt_test_callee_saved_survive(yield_twice, 0x1000); });
    gt::thread b([&] { mask_b = gt_test_callee_saved_survive(yield_twice, 0x2000); });
    mask_main = gt_test_callee_saved_survive(yield_twice, 0x3000);
    a.join();
    b.join();
    EXPECT_EQ(mask_a, 0u) << "bit 0 rbx, 1 rbp, 2 r12, 3 r13, 4 r14, 5 r15";
    EXPECT_EQ(mask_b, 0u);
    EXPECT_EQ(mask_main, 0u);
}

// Why: doubles live in caller-saved xmm registers; the compiler must spill
// them around the switch call, which works only if the switch is a real call.
TEST(ContextSwitch, DoublesSurviveAcrossYield) {
    double sum_a = 0, sum_b = 0;
    gt::thread a([&] {
        double x = 1.5;
        for (int i = 0; i < 100; ++i) {
            x = x * 1.000001 + 0.25;
            gt::this_thread::yield();
            sum_a += x;
        }
    });
    gt::thread b([&] {
        double y = -7.25;
        for (int i = 0; i < 100; ++i) {
            y = y * 0.999999 - 0.5;
            gt::this_thread::yield();
            sum_b += y;
        }
    });
    a.join();
    b.join();
    double x = 1.5, y = -7.25, expect_a = 0, expect_b = 0;
    for (int i = 0; i < 100; ++i) {
        x = x * 1.000001 + 0.25;
        expect_a += x;
        y = y * 0.999999 - 0.5;
        expect_b += y;
    }
    EXPECT_DOUBLE_EQ(sum_a, expect_a);
    EXPECT_DOUBLE_EQ(sum_b, expect_b);
}

// Why: MXCSR and the x87 control word are callee-saved state (ABI 3.2.1);
// a thread that changes its rounding mode must not change anyone else's.
TEST(ContextSwitch, FloatingPointControlStateIsPerThread) {
    const int original_round = std::fegetround();
    const std::uint16_t original_cw = x87_control_word();
    int round_a = -1, round_b = -1;
    std::uint32_t mxcsr_b = 0;
    std::uint16_t cw_a = 0, cw_b = 0;
    const std::uint16_t extended_precision_cw = (original_cw & ~0x0300) | 0x0300;  // PC = 64-bit mantissa
    const std::uint16_t single_precision_cw = original_cw & ~0x0300;               // PC = 24-bit mantissa
    gt::thread a([&] {
        ASSERT_EQ(std::fesetround(FE_DOWNWARD), 0);  // sets both MXCSR.RC and the x87 RC
        set_x87_control_word((x87_control_word() & ~0x0300) | (extended_precision_cw & 0x0300));
        gt::this_thread::yield();  // b runs with its own state, sets FE_UPWARD
        round_a = std::fegetround();
        cw_a = x87_control_word();
        std::fesetround(original_round);
        set_x87_control_word(original_cw);
    });
    gt::thread b([&] {
        EXPECT_EQ(std::fegetround(), original_round) << "a's rounding mode leaked into b";
        ASSERT_EQ(std::fesetround(FE_UPWARD), 0);
        set_x87_control_word((x87_control_word() & ~0x0300) | (single_precision_cw & 0x0300));
        gt::this_thread::yield();
        round_b = std::fegetround();
        mxcsr_b = _mm_getcsr();
        cw_b = x87_control_word();
        std::fesetround(original_round);
        set_x87_control_word(original_cw);
    });
    a.join();
    b.join();
    EXPECT_EQ(round_a, FE_DOWNWARD);
    EXPECT_EQ(round_b, FE_UPWARD);
    EXPECT_EQ(mxcsr_b & 0x6000u, 0x4000u) << "MXCSR.RC of b should be 'round up' (binary 10)";
    EXPECT_EQ(cw_a & 0x0300, 0x0300) << "x87 precision control of a";
    EXPECT_EQ(cw_b & 0x0300, 0x0000) << "x87 precision control of b";
    EXPECT_EQ(std::fegetround(), original_round) << "a thread's rounding mode leaked into main";
    EXPECT_EQ(x87_control_word(), original_cw) << "a thread's x87 control word leaked into main";
}

// Why: POSIX says a new thread inherits its creator's floating-point
// environment; gt::thread does the same, like std::thread on Linux.
TEST(ContextSwitch, NewThreadInheritsCreatorsFloatingPointControlState) {
    const int original_round = std::fegetround();
    const std::uint16_t original_cw = x87_control_word();
    ASSERT_EQ(std::fesetround(FE_TOWARDZERO), 0);
    set_x87_control_word(static_cast<std::uint16_t>(x87_control_word() & ~0x0300));  // 24-bit precision
    int seen_round = -1;
    std::uint16_t seen_cw = 0xffff;
    gt::thread t([&] {
        seen_round = std::fegetround();
        seen_cw = x87_control_word();
    });
    std::fesetround(original_round);  // the thread captured the state at creation
    set_x87_control_word(original_cw);
    t.join();
    EXPECT_EQ(seen_round, FE_TOWARDZERO);
    EXPECT_EQ(seen_cw & 0x0300, 0x0000) << "x87 precision control";
}

// Why: the ABI requires rsp % 16 == 0 at every call; a trampoline that gets
// this wrong crashes movaps-using code (printf("%f"), SSE) in the thread.
TEST(FirstFrame, StackIsAlignedAtEveryCallInANewThread) {
    std::uint64_t rsp = 1;
    gt::thread t([&] { rsp = gt_test_rsp_at_call(); });
    t.join();
    EXPECT_EQ(rsp % 16, 0u);
}

TEST(FirstFrame, SnprintfOfDoublesWorksInANewThread) {
    char text[64] = {};
    gt::thread t([&] { std::snprintf(text, sizeof text, "%f %.3e %g", 3.25, -1234.5, 0.1); });
    t.join();
    EXPECT_STREQ(text, "3.250000 -1.234e+03 0.1");
}

TEST(FirstFrame, AlignedSseStoresToTheStackWork) {
    float out[4] = {};
    gt::thread t([&] {
        alignas(16) float local[4];
        _mm_store_ps(local, _mm_set_ps(4.f, 3.f, 2.f, 1.f));  // movaps: faults if misaligned
        std::memcpy(out, local, sizeof out);
    });
    t.join();
    EXPECT_EQ(out[0], 1.f);
    EXPECT_EQ(out[3], 4.f);
}

// Why: exceptions unwind with the DWARF call-frame info; inside a thread
// they must find their handler without walking off the thread's stack.
TEST(Unwinding, ExceptionThrownAndCaughtInsideAThread) {
    std::string caught;
    gt::thread t([&] {
        try {
            gt::this_thread::yield();
            throw std::runtime_error("thrown in a green thread");
        } catch (const std::runtime_error& e) {
            caught = e.what();
        }
    });
    t.join();
    EXPECT_EQ(caught, "thrown in a green thread");
}

// Why: the C++ runtime keeps "the exception being handled" per OS thread.
// A thread that yields inside a catch block must find its own exception
// when it rethrows, not the one another thread is handling.
TEST(Unwinding, RethrowAfterAYieldInsideCatchRethrowsTheThreadsOwnException) {
    std::string seen_a, seen_b;
    auto worker = [](const char* name, std::string& seen) {
        try {
            throw std::runtime_error(name);
        } catch (...) {
            gt::this_thread::yield();  // the other thread enters its own catch block
            try {
                throw;
            } catch (const std::runtime_error& e) {
                seen = e.what();
            }
        }
    };
    gt::thread a(worker, "a", std::ref(seen_a));
    gt::thread b(worker, "b", std::ref(seen_b));
    a.join();
    b.join();
    EXPECT_EQ(seen_a, "a");
    EXPECT_EQ(seen_b, "b");
}

TEST(Unwinding, ExceptionStateOfOneThreadIsInvisibleToAnother) {
    int uncaught_seen = -1;
    bool current_seen = true;
    struct yields_while_unwinding {
        ~yields_while_unwinding() { gt::this_thread::yield(); }
    };
    gt::thread unwinding([] {
        try {
            yields_while_unwinding y;
            throw 42;  // y's destructor yields in the middle of the unwinding
        } catch (int) {
        }
    });
    gt::thread observer([&] {
        uncaught_seen = std::uncaught_exceptions();
        current_seen = std::current_exception() != nullptr;
    });
    unwinding.join();
    observer.join();
    EXPECT_EQ(uncaught_seen, 0);
    EXPECT_FALSE(current_seen);
}

extern "C" __attribute__((noinline)) void gt_test_gdb_stops_here() { __asm__ volatile(""); }

bool in_gdb_child() { return std::getenv("GT_TEST_GDB_CHILD") != nullptr; }

// Runs under gdb, started by the test below.
TEST(GdbChild, CallAFunctionInsideAThread) {
    if (!in_gdb_child()) GTEST_SKIP() << "runs only under gdb, started by the Unwinding tests";
    gt::thread t([] { gt_test_gdb_stops_here(); });
    t.join();
}

// Why: what a learner sees in gdb is the test that matters for call-frame
// information: the backtrace of a green thread must end at the trampoline,
// with no "??" frame read from beyond the stack (.cfi_undefined rip).
TEST(Unwinding, GdbBacktraceInsideAThreadEndsAtTheEntryTrampoline) {
    if (in_gdb_child()) GTEST_SKIP();
    if (std::system("command -v gdb >/dev/null 2>&1") != 0) GTEST_SKIP() << "gdb is not installed (make deps)";
    char self[4096] = {};
    ASSERT_GT(::readlink("/proc/self/exe", self, sizeof self - 1), 0);
    // gdb passes SIGALRM on silently by default, but a .gdbinit may say
    // otherwise: say it here. And each tick is a round trip through gdb, too
    // slow for the 100 µs slice the tests run with: the child gets the
    // default slice.
    const std::string command = std::string("GT_TEST_GDB_CHILD=1 GT_TIME_SLICE_US=10000 gdb -nx -batch "
                                            "-ex 'handle SIGALRM nostop noprint pass' "
                                            "-ex 'break gt_test_gdb_stops_here' -ex run -ex bt --args '") +
                                self + "' --gtest_filter=GdbChild.* 2>&1";
    std::string output;
    if (FILE* pipe = ::popen(command.c_str(), "r")) {
        char buffer[4096];
        while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
        ::pclose(pipe);
    }
    if (output.find("ptrace: Operation not permitted") != std::string::npos) {
        GTEST_SKIP() << "this machine does not allow gdb to trace";
    }
    std::vector<std::string> frames;
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
        if (line.size() > 1 && line[0] == '#' && std::isdigit(static_cast<unsigned char>(line[1]))) frames.push_back(line);
    }
    ASSERT_GE(frames.size(), 2u) << output;
    EXPECT_NE(frames.front().find("gt_test_gdb_stops_here"), std::string::npos) << output;
    EXPECT_NE(frames.back().find("gt_context_entry"), std::string::npos) << output;
    for (const auto& f : frames) EXPECT_EQ(f.find("??"), std::string::npos) << output;
}

struct walk_state {
    int frames = 0;
    std::uintptr_t last_ip = 0;  // of the outermost frame that has code
};

_Unwind_Reason_Code count_frame(struct _Unwind_Context* context, void* arg) {
    auto* state = static_cast<walk_state*>(arg);
    ++state->frames;
    // libgcc reports one last pseudo-frame with IP 0 once the return
    // address is undefined; the frame before it is the outermost real one.
    if (const std::uintptr_t ip = _Unwind_GetIP(context); ip != 0) state->last_ip = ip;
    return state->frames > 200 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

// Why: backtrace(), gdb and the exception unwinder walk up until the call
// frame information says "no caller"; gt_context_entry says exactly that
// (.cfi_undefined rip), so a walk ends there instead of reading garbage.
TEST(Unwinding, BacktraceInsideAThreadEndsAtTheEntryTrampoline) {
    walk_state walk;
    _Unwind_Reason_Code result = _URC_NO_REASON;
    gt::thread t([&] { result = _Unwind_Backtrace(count_frame, &walk); });
    t.join();
    EXPECT_EQ(result, _URC_END_OF_STACK);
    EXPECT_LT(walk.frames, 20);
    const auto entry = reinterpret_cast<std::uintptr_t>(&gt_context_entry);
    EXPECT_GT(walk.last_ip, entry) << "the outermost frame should be gt_context_entry";
    EXPECT_LE(walk.last_ip, entry + 16) << "the outermost frame should be gt_context_entry";
}

// Why: perf --call-graph=fp, profilers and hand-written unwinders follow the
// saved rbp from frame to frame until they find the 0 that make_context
// wrote. If a runtime frame on the way (thread_main) does not keep a frame
// pointer, the thread's code finds the runtime's spare use of rbp (the
// scheduler's address) as its saved rbp, and they read heap memory as stack
// frames. Walked from code built with frame pointers, and from a thread
// function whose own frames have none (this file at -O2).
TEST(Unwinding, FramePointerChainStaysOnTheThreadsStackAndEndsAtZero) {
    constexpr int depth = 3;
    const gt_test::frame_chain with_frame_pointers = gt_test::walk_from_code_built_with_frame_pointers(depth);
    gt_test::frame_chain direct;
    gt::thread t(gt_test::record_frame_chain, &direct);
    t.join();
    const auto entry = reinterpret_cast<std::uintptr_t>(&gt_context_entry);
    for (const auto& chain : {with_frame_pointers, direct}) {
        EXPECT_EQ(chain.off_stack, 0u) << gt_test::describe(chain);
        EXPECT_TRUE(chain.ended_at_zero) << gt_test::describe(chain);
        // The outermost record is the one thread_main pushed, returning into
        // the trampoline (or, were the trampoline to push one, all zeroes).
        const std::uintptr_t last = chain.last_return_address;
        EXPECT_TRUE(last == 0 || (last > entry && last <= entry + 16))
            << gt_test::describe(chain) << "; gt_context_entry is at " << std::hex << entry;
    }
    // The walker's frame, one per nested call, and thread_main's at least.
    EXPECT_GE(with_frame_pointers.frames, depth + 3) << gt_test::describe(with_frame_pointers);
}

}  // namespace
