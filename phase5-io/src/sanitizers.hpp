// Telling AddressSanitizer about stack switches. ASan tracks one stack per
// OS thread; when we move rsp to another stack behind its back it reports
// false stack-buffer-overflows and loses its fake stacks. The fiber API
// (sanitizer/common_interface_defs.h) fixes that: announce every switch
// before it happens and confirm it on the other side. Without ASan these
// functions are empty and vanish.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define GT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GT_ASAN 1
#endif
#endif

#if defined(GT_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

namespace gt::detail::sanitizers {

/// Call right before switching to a stack [bottom, bottom + size).
/// `fake_stack_save` keeps the leaving context's fake stack for its return;
/// pass nullptr when the leaving context will never run again.
inline void start_switch(void** fake_stack_save, const void* bottom, std::size_t size) noexcept {
#if defined(GT_ASAN)
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
    (void)fake_stack_save, (void)bottom, (void)size;
#endif
}

/// Call first thing after a switch lands, with what start_switch saved for
/// this context (nullptr the first time a context runs).
inline void finish_switch(void* fake_stack) noexcept {
#if defined(GT_ASAN)
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#else
    (void)fake_stack;
#endif
}

/// Clears ASan's shadow for memory that becomes a fresh stack: frames of a
/// finished thread never returned, so their redzones are still poisoned.
inline void unpoison(const void* begin, std::size_t size) noexcept {
#if defined(GT_ASAN)
    __asan_unpoison_memory_region(begin, size);
#else
    (void)begin, (void)size;
#endif
}

/// LeakSanitizer looks for pointers to live heap blocks on the stacks it
/// knows, which are the OS threads' own. A green thread's stack is just
/// mapped memory to it, so memory referenced only from a waiting thread's
/// locals would be reported as leaked at exit: register each stack as a
/// root region while it is mapped.
inline void register_root(const void* begin, std::size_t size) noexcept {
#if defined(GT_ASAN)
    __lsan_register_root_region(begin, size);
#else
    (void)begin, (void)size;
#endif
}

/// Undoes register_root, before the memory is unmapped.
inline void unregister_root(const void* begin, std::size_t size) noexcept {
#if defined(GT_ASAN)
    __lsan_unregister_root_region(begin, size);
#else
    (void)begin, (void)size;
#endif
}

}  // namespace gt::detail::sanitizers
