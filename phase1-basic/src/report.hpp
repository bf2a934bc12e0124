// Reports that may be written from anywhere: a signal handler, a
// scheduler whose invariant just broke. write(2) is async-signal-safe and
// allocates nothing; stdio is neither (signal-safety(7)).
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

/// Writes `thread 7`: which thread a report is about.
void thread(const control_block& t) noexcept;

}  // namespace report
}  // namespace gt::detail
