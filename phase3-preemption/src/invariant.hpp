// Executable invariants: a broken one stops the process with a message that
// names it, instead of letting the scheduler run on corrupted state.
#pragma once

namespace gt::detail {

/// Prints "gt: invariant broken: <what> (<file>:<line>)" to stderr and aborts.
[[noreturn]] void invariant_failed(const char* what, const char* file, int line) noexcept;

}  // namespace gt::detail

/// Checks `cond`; if it is false, reports `what` (a sentence stating the
/// invariant) and aborts. On in the builds the tests and demos use; compiled
/// out with -DNDEBUG, like assert(), which is how the benchmarks build the
/// library (each check is cheap, but a context switch is only a few dozen
/// instructions).
#if defined(NDEBUG)
#define GT_INVARIANT(cond, what) static_cast<void>(0)
#else
#define GT_INVARIANT(cond, what) \
    ((cond) ? static_cast<void>(0) : ::gt::detail::invariant_failed(what, __FILE__, __LINE__))
#endif
