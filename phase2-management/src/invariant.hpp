// Executable invariants: a broken one stops the process with a message that
// names it, instead of letting the scheduler run on corrupted state.
#pragma once

namespace gt::detail {

/// Prints "gt: invariant broken: <what> (<file>:<line>)" to stderr and aborts.
[[noreturn]] void invariant_failed(const char* what, const char* file, int line) noexcept;

}  // namespace gt::detail

/// Checks `cond`; if it is false, reports `what` (a sentence stating the
/// invariant) and aborts. Always on: each check is one predictable branch.
#define GT_INVARIANT(cond, what) \
    ((cond) ? static_cast<void>(0) : ::gt::detail::invariant_failed(what, __FILE__, __LINE__))
