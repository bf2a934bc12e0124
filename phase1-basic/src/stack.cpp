#include "stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "sanitizers.hpp"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GT_VALGRIND_STACK_REGISTER(lo, hi) VALGRIND_STACK_REGISTER(lo, hi)
#define GT_VALGRIND_STACK_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#else
#define GT_VALGRIND_STACK_REGISTER(lo, hi) 0u
#define GT_VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

namespace gt::detail {

std::size_t page_size() noexcept {
    static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

stack stack::allocate(std::size_t usable_bytes, unsigned long long thread_id) {
    const std::size_t page = page_size();
    const bool too_big = usable_bytes > SIZE_MAX / 2;  // rounding below would overflow
    const std::size_t usable = too_big ? 0 : (usable_bytes + page - 1) / page * page;
    const std::size_t total = usable + page;

    // Pages are backed by memory only once touched; MAP_NORESERVE also
    // reserves no swap for the untouched rest.
    void* mapping = too_big ? MAP_FAILED
                            : ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) {
        const int err = too_big ? ENOMEM : errno;
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "gt::thread " + std::to_string(thread_id) + ": mmap of a stack of " +
                                    std::to_string(usable_bytes) + " bytes failed: " + std::strerror(err));
    }
    if (::mprotect(mapping, page, PROT_NONE) != 0) {
        const int err = errno;
        ::munmap(mapping, total);
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "gt::thread " + std::to_string(thread_id) +
                                    ": mprotect of the stack guard page failed: " + std::strerror(err));
    }

    stack s;
    s.mapping_ = mapping;
    s.mapping_size_ = total;
    s.usable_begin_ = static_cast<char*>(mapping) + page;
    s.usable_size_ = usable;
    s.valgrind_id_ = GT_VALGRIND_STACK_REGISTER(s.usable_begin_, s.top());
    sanitizers::register_root(s.usable_begin_, s.usable_size_);
    return s;
}

stack::stack(stack&& other) noexcept
    : mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_size_(std::exchange(other.mapping_size_, 0)),
      usable_begin_(std::exchange(other.usable_begin_, nullptr)),
      usable_size_(std::exchange(other.usable_size_, 0)),
      valgrind_id_(std::exchange(other.valgrind_id_, 0)) {}

stack& stack::operator=(stack&& other) noexcept {
    if (this != &other) {
        release();
        mapping_ = std::exchange(other.mapping_, nullptr);
        mapping_size_ = std::exchange(other.mapping_size_, 0);
        usable_begin_ = std::exchange(other.usable_begin_, nullptr);
        usable_size_ = std::exchange(other.usable_size_, 0);
        valgrind_id_ = std::exchange(other.valgrind_id_, 0);
    }
    return *this;
}

stack::~stack() { release(); }

void stack::release() noexcept {
    if (mapping_ == nullptr) return;
    GT_VALGRIND_STACK_DEREGISTER(valgrind_id_);
    sanitizers::unregister_root(usable_begin_, usable_size_);
    ::munmap(mapping_, mapping_size_);
    mapping_ = nullptr;
}

}  // namespace gt::detail
