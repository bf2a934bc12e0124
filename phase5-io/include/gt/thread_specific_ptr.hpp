/// @file
/// Thread-local storage for green threads: gt::thread_specific_ptr.
///
/// C++ `thread_local` variables and `errno` belong to the *OS* thread, so
/// every green thread on that OS thread shares them. A thread_specific_ptr
/// holds one pointer per green thread instead, with the interface and
/// semantics of boost::thread_specific_ptr (Boost.Thread, "Thread Local
/// Storage").
#pragma once

#include <cstdint>
#include <memory>

namespace gt {

namespace detail {

/// Type-erased destructor of one thread_specific_ptr's values.
struct tls_cleanup {
    virtual ~tls_cleanup() = default;
    /// Destroys `value` (never null).
    virtual void destroy(void* value) noexcept = 0;
};

/// A key never used before. Thread-safe.
std::uint64_t allocate_tls_key() noexcept;
/// The calling green thread's value for `key`, or nullptr.
void* tls_get(std::uint64_t key) noexcept;
/// Sets the calling green thread's value for `key` (nullptr removes it);
/// the previous value is not destroyed. `cleanup` destroys the value when
/// the thread finishes.
/// @throws std::bad_alloc.
void tls_set(std::uint64_t key, void* value, const std::shared_ptr<tls_cleanup>& cleanup);

}  // namespace detail

/// A pointer with one value per green thread, as boost::thread_specific_ptr.
///
/// Each thread starts with nullptr. When a thread finishes (by return or
/// gt::this_thread::exit()), its non-null value is destroyed with the
/// cleanup function — `delete` by default — on that thread, after its
/// cleanup handlers. Values of the adopted main thread are destroyed when
/// its OS thread exits.
///
/// Thread-safety: each green thread sees only its own value; the object
/// itself may be shared by all threads. Destroying the object resets the
/// calling thread's value only; other threads' values are still destroyed
/// when those threads finish.
/// @tparam T the pointee type.
template <class T>
class thread_specific_ptr {
public:
    /// Values are destroyed with `delete`.
    thread_specific_ptr() : cleanup_(std::make_shared<delete_cleanup>()) {}

    /// Values are destroyed with `cleanup_function(value)`; a null function
    /// means values are never destroyed by the runtime.
    explicit thread_specific_ptr(void (*cleanup_function)(T*))
        : cleanup_(cleanup_function != nullptr ? std::make_shared<function_cleanup>(cleanup_function) : nullptr) {}

    thread_specific_ptr(const thread_specific_ptr&) = delete;
    thread_specific_ptr& operator=(const thread_specific_ptr&) = delete;

    /// Resets the calling thread's value (destroying it).
    ~thread_specific_ptr() { reset(); }

    /// The calling thread's value (nullptr until it sets one).
    T* get() const noexcept { return static_cast<T*>(detail::tls_get(key_)); }
    /// The calling thread's value.
    T* operator->() const noexcept { return get(); }
    /// The calling thread's pointee; get() must not be null.
    T& operator*() const noexcept { return *get(); }

    /// Makes `new_value` the calling thread's value and destroys the old one
    /// (if it is non-null and different).
    /// @throws std::bad_alloc (the old value is then kept).
    void reset(T* new_value = nullptr) {
        T* old = get();
        if (old == new_value) return;
        detail::tls_set(key_, new_value, cleanup_);
        if (old != nullptr && cleanup_ != nullptr) cleanup_->destroy(old);
    }

    /// Gives up the calling thread's value without destroying it: it
    /// becomes nullptr, and the old value is returned.
    T* release() noexcept {
        T* old = get();
        if (old != nullptr) detail::tls_set(key_, nullptr, cleanup_);  // removing never allocates
        return old;
    }

private:
    struct delete_cleanup final : detail::tls_cleanup {
        void destroy(void* value) noexcept override { delete static_cast<T*>(value); }
    };
    struct function_cleanup final : detail::tls_cleanup {
        explicit function_cleanup(void (*f)(T*)) : fn(f) {}
        void destroy(void* value) noexcept override { fn(static_cast<T*>(value)); }
        void (*fn)(T*);
    };

    std::uint64_t key_ = detail::allocate_tls_key();
    std::shared_ptr<detail::tls_cleanup> cleanup_;
};

}  // namespace gt
