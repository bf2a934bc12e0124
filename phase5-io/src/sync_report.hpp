// Messages of the synchronization primitives beyond the mutex: who did
// what to which object. Used on their slow paths and misuse checks, never
// from a signal handler (they allocate).
#pragma once

#include <string>

#include "control_block.hpp"

namespace gt::detail {

/// `thread 7 "worker"`: the id and the name as the dump shows it.
std::string describe(const control_block& t);

/// `gt::barrier (0x7ffc...)` or `gt::barrier "name" (0x...)`: the kind of
/// object, its name if it has one, and its address.
std::string describe(const char* kind, const void* object, const char* name = nullptr);

/// The running thread of the calling OS thread, described (the scheduler
/// is created, adopting the OS thread, if it has none yet).
std::string describe_caller();

/// Writes "gt: <message>" to stderr, flushes the trace and aborts: a
/// misuse that std leaves undefined, reported instead of corrupting state.
[[noreturn]] void misuse(const std::string& message) noexcept;

}  // namespace gt::detail
