#include "stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
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

namespace {

long read_max_map_count() noexcept {
    long value = -1;
    if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
        if (std::fscanf(f, "%ld", &value) != 1) value = -1;
        std::fclose(f);
    }
    return value;
}

long count_mappings() noexcept {
    long lines = 0;
    if (std::FILE* f = std::fopen("/proc/self/maps", "r")) {
        for (int c; (c = std::fgetc(f)) != EOF;) lines += c == '\n';
        std::fclose(f);
    }
    return lines;
}

}  // namespace

std::string explain_map_failure(int err, long mappings, long max_map_count) {
    // Each guarded stack is two mappings (guard + stack). Near the limit, the
    // kernel refuses new mappings (mmap) and splits of old ones (mprotect)
    // with ENOMEM, which would read as "out of memory" without this.
    if (err == ENOMEM && max_map_count > 0 && mappings >= max_map_count - 2) {
        return "the process has " + std::to_string(mappings) +
               " memory mappings and the kernel's limit vm.max_map_count is " + std::to_string(max_map_count) +
               "; each guarded thread stack takes 2. Join or detach finished threads, create fewer at once, "
               "or raise the limit: sysctl -w vm.max_map_count=" + std::to_string(max_map_count * 4);
    }
    return std::strerror(err);
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
                                    std::to_string(usable_bytes) + " bytes failed: " +
                                    explain_map_failure(err, count_mappings(), read_max_map_count()));
    }
    if (::mprotect(mapping, page, PROT_NONE) != 0) {
        const int err = errno;
        ::munmap(mapping, total);
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "gt::thread " + std::to_string(thread_id) +
                                    ": mprotect of the stack guard page failed: " +
                                    explain_map_failure(err, count_mappings(), read_max_map_count()));
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

stack_pool::stack_pool() { idle_.reserve(capacity); }

stack stack_pool::take(std::size_t usable_bytes, unsigned long long thread_id) {
    const std::size_t page = page_size();
    if (usable_bytes <= SIZE_MAX / 2) {
        const std::size_t rounded = (usable_bytes + page - 1) / page * page;
        for (std::size_t i = idle_.size(); i-- > 0;) {
            if (idle_[i].size() == rounded) {
                stack s = std::move(idle_[i]);
                idle_[i] = std::move(idle_.back());
                idle_.pop_back();
                return s;
            }
        }
    }
    return stack::allocate(usable_bytes, thread_id);
}

void stack_pool::give(stack s) noexcept {
    if (idle_.size() < capacity) idle_.push_back(std::move(s));  // no allocation: reserved
}

void stack::release() noexcept {
    if (mapping_ == nullptr) return;
    GT_VALGRIND_STACK_DEREGISTER(valgrind_id_);
    sanitizers::unregister_root(usable_begin_, usable_size_);
    ::munmap(mapping_, mapping_size_);
    mapping_ = nullptr;
}

}  // namespace gt::detail
