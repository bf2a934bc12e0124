// The lock-order check (a potential deadlock, found before it happens) and
// lock levels. The members of lock_word that include/gt/mutex.hpp calls
// when checked() is true are defined in lock_order.cpp; this header has
// the rest, for the runtime and tests.
#pragma once

#include "gt/debug.hpp"
#include "gt/mutex.hpp"

namespace gt::detail {

/// The current mode (GT_LOCK_ORDER, or gt::debug::set_lock_order_check).
debug::lock_order_check lock_order_mode() noexcept;

/// Number of mutexes and of held->acquired edges in the lock-order graph
/// (for tests: a destroyed mutex leaves none behind).
std::size_t lock_order_nodes() noexcept;
std::size_t lock_order_edges() noexcept;

}  // namespace gt::detail
