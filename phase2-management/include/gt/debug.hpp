/// @file
/// Looking inside the runtime: a dump of every green thread.
#pragma once

#include <iosfwd>

namespace gt::debug {

/// Writes one line per green thread of the calling OS thread's scheduler,
/// in creation order: id, name, state (with what a BLOCKED thread waits
/// for: join or sleep), priority, stack size in bytes, and the stack's
/// high-water mark in bytes — how deep it has ever been touched, at page
/// granularity (from mincore(2); a reused stack remembers earlier threads).
/// The adopted main thread runs on the OS thread's stack and shows
/// "OS stack". Not async-signal-safe.
/// @throws whatever writing to `out` throws.
void dump_threads(std::ostream& out);

}  // namespace gt::debug
