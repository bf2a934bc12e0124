// Stack errors are reported, not just crashed on: an overflow names the
// thread (from an alternate signal stack), and running out of kernel
// mappings (vm.max_map_count) says so instead of a bare ENOMEM.
#include <gt/thread.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "sanitizers.hpp"
#include "stack.hpp"

namespace {

volatile bool keep_recursing = true;

__attribute__((noinline)) std::uint64_t recurse_forever(int depth) {
    volatile char frame[512];
    frame[0] = static_cast<char>(depth);
    if (!keep_recursing) return frame[0];
    return recurse_forever(depth + 1) + frame[0];
}

void overflow_in_a_named_thread() {
    gt::thread t({.stack_size = 32 * 1024, .name = "deep-recursion"}, [] { recurse_forever(0); });
    t.join();
}

// Why: "Segmentation fault" says nothing; the runtime knows which thread
// ran off its stack and how big that stack was.
TEST(OverflowDeathTest, StackOverflowIsReportedWithTheThreadsNameIdAndStackSize) {
    EXPECT_DEATH(overflow_in_a_named_thread(),
                 "gt: stack overflow in thread [0-9]+ \"deep-recursion\": it used all of its 32768-byte stack");
}

TEST(MapLimit, ExplanationNamesVmMaxMapCountAtTheLimit) {
    const std::string text = gt::detail::explain_map_failure(ENOMEM, 65530, 65530);
    EXPECT_NE(text.find("vm.max_map_count is 65530"), std::string::npos) << text;
    EXPECT_NE(text.find("each guarded thread stack takes 2"), std::string::npos) << text;
    EXPECT_NE(text.find("sysctl -w vm.max_map_count="), std::string::npos) << text;
}

TEST(MapLimit, OtherFailuresKeepTheirOwnReason) {
    EXPECT_EQ(gt::detail::explain_map_failure(ENOMEM, 100, 65530), std::string(std::strerror(ENOMEM)));
    EXPECT_EQ(gt::detail::explain_map_failure(EACCES, 65530, 65530), std::string(std::strerror(EACCES)));
}

// Fills the process's mapping table up to vm.max_map_count (whatever this
// machine's value is), leaving room for one mapping, then asks for a thread.
void create_a_thread_with_no_mappings_left() {
    const long page = ::sysconf(_SC_PAGESIZE);
    std::vector<void*> filler;
    for (int i = 0;; ++i) {
        // Alternate protections so the kernel cannot merge neighbours.
        void* p = ::mmap(nullptr, page, i % 2 ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) break;
        filler.push_back(p);
    }
    ::munmap(filler.back(), page);  // one mapping left: a guarded stack needs two
    try {
        // A size the stack pool cannot have cached, so a new stack is mapped.
        gt::thread t({.stack_size = 200 * 1024, .name = "one-too-many"}, [] {});
        t.join();
        std::fputs("created a thread: no error\n", stderr);
        std::_Exit(1);
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        std::_Exit(e.code() == std::errc::resource_unavailable_try_again ? 0 : 2);
    }
}

// Why: past vm.max_map_count the kernel answers ENOMEM, which reads as
// "out of memory" when memory is plentiful; the runtime names the real limit.
TEST(MapLimitDeathTest, RunningOutOfMappingsNamesVmMaxMapCount) {
#if defined(GT_ASAN)
    GTEST_SKIP() << "AddressSanitizer needs mappings of its own and dies first when none are left";
#endif
    EXPECT_EXIT(create_a_thread_with_no_mappings_left(), testing::ExitedWithCode(0),
                "the kernel's limit vm.max_map_count is [0-9]+; each guarded thread stack takes 2");
}

}  // namespace
