// Reports that may be written from anywhere: a signal handler (the stall
// detector, the stack-overflow report), a scheduler whose invariant just
// broke. write(2) is async-signal-safe and allocates nothing; stdio is
// neither (signal-safety(7)).
#pragma once

#include <cstddef>
#include <cstdint>

namespace gt::detail {

struct control_block;

namespace report {

/// Writes `text` to stderr with write(2), retrying short writes.
void text(const char* text) noexcept;

/// Writes `n` in decimal, formatted without snprintf.
void number(std::uint64_t n) noexcept;

/// Writes `thread 7 "worker"`: the id and the name as the dump shows it
/// ("thread-<id>" when it has none). Reads the stored name without
/// copying it: call where nobody renames `t` meanwhile (inside the
/// scheduler's critical section, or from a signal handler that
/// interrupted code outside one).
void thread(const control_block& t) noexcept;

}  // namespace report
}  // namespace gt::detail
