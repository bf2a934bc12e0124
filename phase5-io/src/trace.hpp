// Scheduling events in the Chrome trace-event format (JSON), which Perfetto
// (ui.perfetto.dev) and chrome://tracing open: set GT_TRACE=<file> ("%p" in
// it becomes the process id) and every scheduler of the process appends to
// that file. Each green thread is one
// track (tid = its id); a "run" slice spans each stretch it held the CPU,
// and instant events mark create, block, wake, finish and priority change.
// Format: "Trace Event Format", Google (docs.google.com, the
// chromium/catapult project's trace-viewer documentation).
#pragma once

#include <cstdint>

#include "control_block.hpp"

namespace gt::detail::trace {

/// True once GT_TRACE named a file that could be opened. Checked before
/// every event, so tracing costs one predictable branch when off.
extern bool enabled;

/// Opens the file named by GT_TRACE, once per process. Thread-safe.
void start_if_requested() noexcept;

/// The thread's track is named (metadata event) and "create" is recorded.
void created(const control_block& t) noexcept;
/// The thread's track name changes.
void named(const control_block& t) noexcept;
/// A "run" slice of `t` from `from_ns` to `to_ns` (CLOCK_MONOTONIC), with
/// how it ended (to_string of its stopped_for: "yield", "outranked" by a
/// thread of higher priority, "time slice" used, "join", "sleep",
/// "finished"); and the thread's switches, preemptions and CPU time so far.
void ran(const control_block& t, std::int64_t from_ns, std::int64_t to_ns) noexcept;
/// `t` became BLOCKED (its waiting_for says why), with the object it
/// waits on (a mutex by name or address, with its owner; a joined thread;
/// "descriptor N", and "fd": N, when it waits for one to become readable
/// or writable).
void blocked(const control_block& t) noexcept;
/// `t` became READY after being BLOCKED: what it waited for (with "fd"
/// for a descriptor) and, for a wait queue, what woke it (notified,
/// handoff, timeout).
void woken(const control_block& t) noexcept;
/// `t` finished.
void finished(const control_block& t) noexcept;
/// `t`'s priority changed from `from` to `to`.
void priority_changed(const control_block& t, int from, int to) noexcept;
/// The OS thread slept from `from_ns` to `to_ns`: no thread could run.
void idle(std::int64_t from_ns, std::int64_t to_ns) noexcept;
/// Writes buffered events to the file now (before the process aborts).
void flush() noexcept;

}  // namespace gt::detail::trace
