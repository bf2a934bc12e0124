// Reporting stack overflows. A thread that overflows its stack faults on
// its guard page with SIGSEGV. The handler cannot run on the overflowed
// stack, so each OS thread gets an alternate signal stack (sigaltstack(2)),
// and the handler says which green thread overflowed before the process dies.
#pragma once

namespace gt::detail::overflow {

/// For the calling OS thread: sets up an alternate signal stack unless one
/// is already set; for the process, once: installs the SIGSEGV handler,
/// remembering the previous one. Returns the alternate stack it mapped (to
/// pass to remove_reporter), or nullptr.
void* install_reporter() noexcept;

/// Disables and unmaps the alternate stack install_reporter mapped.
void remove_reporter(void* alt_stack) noexcept;

}  // namespace gt::detail::overflow
