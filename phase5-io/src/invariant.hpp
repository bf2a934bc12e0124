// Executable invariants: a broken one stops the process with a message that
// names it, instead of letting the scheduler run on corrupted state.
#pragma once

namespace gt::detail {

struct control_block;

/// Writes "gt: invariant broken: <what> (<file>:<line>)" to stderr and
/// aborts. Async-signal-safe (write(2) only): a tick can find one broken.
[[noreturn]] void invariant_failed(const char* what, const char* file, int line) noexcept;

/// The same, with the values that broke it: `t`'s id, name, state and the
/// list it is on ("... : thread 7 \"worker\" is BLOCKED, on no list").
[[noreturn]] void invariant_failed(const char* what, const control_block& t, const char* file, int line) noexcept;

}  // namespace gt::detail

/// Checks `cond`; if it is false, reports `what` (a sentence stating the
/// invariant) and aborts. On in the builds the tests and demos use; compiled
/// out with -DNDEBUG, like assert(), which is how the benchmarks build the
/// library (each check is cheap, but a context switch is only a few dozen
/// instructions). GT_INVARIANT_ON also names the thread `t` it is about.
#if defined(NDEBUG)
#define GT_INVARIANT(cond, what) static_cast<void>(0)
#define GT_INVARIANT_ON(cond, t, what) static_cast<void>(0)
#else
#define GT_INVARIANT(cond, what) \
    ((cond) ? static_cast<void>(0) : ::gt::detail::invariant_failed(what, __FILE__, __LINE__))
#define GT_INVARIANT_ON(cond, t, what) \
    ((cond) ? static_cast<void>(0) : ::gt::detail::invariant_failed(what, (t), __FILE__, __LINE__))
#endif
