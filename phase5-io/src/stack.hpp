// Thread stacks: memory from mmap with a PROT_NONE guard page below, so a
// stack overflow faults on the guard page instead of silently overwriting
// whatever lies below the stack.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace gt::detail {

/// One mapping: [base, base + guard_size) is the guard page (PROT_NONE),
/// [base + guard_size, base + guard_size + usable_size) is the stack.
/// Stacks grow down, so the thread starts at top() and the guard page is
/// what it reaches when it overflows.
class stack {
public:
    stack() noexcept = default;
    stack(const stack&) = delete;
    stack& operator=(const stack&) = delete;
    stack(stack&& other) noexcept;
    stack& operator=(stack&& other) noexcept;
    ~stack();

    /// Maps a stack with at least `usable_bytes` usable bytes (rounded up to
    /// whole pages) plus one guard page. Registers it with Valgrind.
    /// @throws std::system_error (errc::resource_unavailable_try_again, as
    ///         std::thread does) when mmap or mprotect fails; the message
    ///         names `thread_id` and the errno text.
    static stack allocate(std::size_t usable_bytes, unsigned long long thread_id);

    /// Lowest usable byte (just above the guard page).
    void* bottom() const noexcept { return usable_begin_; }
    /// One past the highest usable byte: where the thread's stack starts.
    void* top() const noexcept { return static_cast<char*>(usable_begin_) + usable_size_; }
    /// Usable bytes, a multiple of the page size.
    std::size_t size() const noexcept { return usable_size_; }
    /// The guard page: [guard_begin(), bottom()).
    void* guard_begin() const noexcept { return mapping_; }

private:
    void release() noexcept;

    void* mapping_ = nullptr;       // start of the whole mapping (guard page first)
    std::size_t mapping_size_ = 0;  // guard + usable bytes
    void* usable_begin_ = nullptr;
    std::size_t usable_size_ = 0;
    unsigned valgrind_id_ = 0;      // VALGRIND_STACK_REGISTER's handle
};

/// Idle stacks kept for reuse, guard pages and all, so that creating a
/// thread in the steady state makes no system call. One pool per scheduler,
/// so it needs no lock. A reused stack keeps the pages earlier threads
/// touched; at most `capacity` stacks are kept, the rest are unmapped.
class stack_pool {
public:
    static constexpr std::size_t capacity = 256;

    stack_pool();

    /// An idle stack of the same rounded size, or a newly mapped one.
    /// @throws std::system_error as stack::allocate.
    stack take(std::size_t usable_bytes, unsigned long long thread_id);

    /// Keeps `s` for reuse, or unmaps it when the pool is full.
    void give(stack s) noexcept;

    /// Number of idle stacks.
    std::size_t size() const noexcept { return idle_.size(); }

private:
    std::vector<stack> idle_;
};

/// The page size, from sysconf(_SC_PAGESIZE), in bytes.
std::size_t page_size() noexcept;

/// The reason text for a failed stack mmap/mprotect with errno `err`: when
/// the failure is ENOMEM with `mappings` at the limit `max_map_count`
/// (/proc/sys/vm/max_map_count), it names that limit and the ways out;
/// otherwise strerror(err).
std::string explain_map_failure(int err, long mappings, long max_map_count);

}  // namespace gt::detail
