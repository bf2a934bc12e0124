// Channels for green threads: gt::channel<T>, a FIFO queue of a fixed
// capacity between threads, with Go's semantics (src/runtime/chan.go).
//
// A channel keeps a ring buffer of `capacity` values (none: a rendezvous)
// and two wait queues, of blocked senders and of blocked receivers. Each
// waiter leaves a record beside its queue entry: where its value is (a
// sender) or where a value should go (a receiver). A send that finds a
// receiver waiting moves the value straight into that receiver's slot and
// wakes it holding it; a receive that finds a full buffer and a blocked
// sender takes the buffer's head and moves that sender's value into the
// freed place (for a rendezvous, straight into its own slot). So nothing
// passes through the buffer twice, a woken waiter never has to try again,
// and values leave in the order they entered.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "gt/detail/wait_queue.hpp"
#include "gt/mutex.hpp"

namespace gt {

/// Thrown by a send on a closed channel, and by a send that was blocked
/// when the channel was closed. A std::logic_error: as in Go, where such a
/// send panics, the program's protocol decides who closes a channel and
/// when; a sender that must cope with a close catches it. The value was
/// not delivered, and the sender still has it (see channel::send).
class channel_closed : public std::logic_error {
public:
    channel_closed() : std::logic_error("gt::channel: send on a closed channel") {}
};

namespace detail {

/// The waiting side of a channel: one per blocked thread, on its stack.
struct channel_waiter {
    control_block* thread;
    void* value;  // a sender's T, or a receiver's std::optional<T>
    channel_waiter* prev = nullptr;
    channel_waiter* next = nullptr;
    bool linked = false;
};

/// The records of one wait queue's threads, in arrival order.
struct channel_waiter_list {
    channel_waiter* head = nullptr;
    channel_waiter* tail = nullptr;
};

/// What a channel operation did.
enum class channel_result : std::uint8_t { done, closed, timeout };

/// Everything of a channel but the type of its values (src/channel.cpp):
/// the closed flag, the buffer's bookkeeping, the waiters. The typed
/// moves are the template's (virtual).
class channel_core {
public:
    channel_core(const channel_core&) = delete;
    channel_core& operator=(const channel_core&) = delete;

    /// Sends `*value` (a T); blocks while there is no room and no
    /// receiver, until `deadline_ns` (CLOCK_MONOTONIC; INT64_MAX: none;
    /// 0: do not block). Moves from *value only when it is delivered.
    channel_result send(void* value, std::int64_t deadline_ns);
    /// Receives into `*slot` (a std::optional<T>, empty); blocks while the
    /// channel is empty and open, until `deadline_ns` as send.
    channel_result receive(void* slot, std::int64_t deadline_ns);
    /// Closes it and wakes every waiter; later closes do nothing.
    void close() noexcept;
    bool closed() const noexcept;
    std::size_t capacity() const noexcept { return capacity_; }
    /// Values in the buffer now.
    std::size_t size() const noexcept;

protected:
    explicit channel_core(std::size_t capacity) noexcept : capacity_(capacity) {}
    ~channel_core();

    // The typed moves; called inside the scheduler's critical section.
    /// Moves the T at `value` into the buffer's place `index` (raw storage).
    virtual void put(std::size_t index, void* value) noexcept = 0;
    /// Moves the T at the buffer's place `index` into the optional<T> at
    /// `slot` and destroys it there.
    virtual void take(std::size_t index, void* slot) noexcept = 0;
    /// Moves the T at `value` into the optional<T> at `slot`.
    virtual void hand_over(void* value, void* slot) noexcept = 0;
    /// Destroys the T at the buffer's place `index`.
    virtual void destroy(std::size_t index) noexcept = 0;

    /// Destroys the values left in the buffer (the template's destructor).
    void destroy_buffered() noexcept;

private:
    const std::size_t capacity_;
    std::size_t head_ = 0;   // the oldest value's place
    std::size_t count_ = 0;  // values in the buffer
    bool closed_ = false;
    wait_queue senders_{wait_reason::channel};
    wait_queue receivers_{wait_reason::channel};
    channel_waiter_list sender_records_;
    channel_waiter_list receiver_records_;
};

}  // namespace detail

/// A channel of values of type T between green threads, as Go's `chan T`
/// ([golang/go] src/runtime/chan.go; Boost.Fiber's buffered_channel and
/// unbuffered_channel are the C++ relatives). FIFO: values are received
/// in the order they were sent (senders that block are served in wait
/// order: highest priority first, then first come). Every value sent is
/// received exactly once, or is still in the channel when it is destroyed.
///
/// Blocking operations BLOCK the calling green thread on the channel's wait
/// queue (wait_reason::channel); timed ones also wait on the scheduler's
/// timer heap. A blocked waiter is handed its value (or its room) by the
/// thread that serves it: it does not have to try again.
///
/// T must be move-constructible without throwing: values are moved, and
/// destroyed, inside the runtime's critical section, where T's move
/// constructor and destructor must not call gt (no locking a gt::mutex).
///
/// Errors: a send on a closed channel throws gt::channel_closed; destroying
/// a channel that threads wait on reports them on stderr and aborts.
///
/// Thread safety: any green thread of one OS thread's scheduler (phase 6:
/// any). Not async-signal-safe.
template <class T>
class channel final : private detail::channel_core {
    static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                  "gt::channel<T>: T must be nothrow move-constructible and destructible");

public:
    /// A channel that buffers up to `capacity` values; 0: a rendezvous,
    /// where each send waits until a receiver takes its value.
    /// @throws std::bad_alloc if the buffer cannot be allocated.
    explicit channel(std::size_t capacity = 0)
        : channel_core(capacity), buffer_(capacity > 0 ? new storage[capacity] : nullptr) {}
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    /// Destroys the values still buffered. Aborts if threads wait on it.
    ~channel() { destroy_buffered(); }

    /// Sends `value`: to a waiting receiver, else into the buffer, else
    /// blocks until one of the two can take it. With capacity 0, returns
    /// once a receiver has taken the value.
    /// @throws gt::channel_closed if the channel is closed, or is closed
    ///         while this send waits. `value` is then left as it was (not
    ///         moved from): the rvalue overload moves from its argument
    ///         only when the value is delivered, so the caller keeps an
    ///         undelivered value (`ch.send(std::move(v))` leaves `v`
    ///         intact on channel_closed).
    void send(T&& value) {
        if (channel_core::send(&value, INT64_MAX) == detail::channel_result::closed) throw channel_closed();
    }
    /// Sends a copy of `value` (which is never changed).
    void send(const T& value) { send(T(value)); }

    /// Sends `value` if that needs no waiting (a receiver waits, or the
    /// buffer has room); else returns false, and `value` is left as it was.
    /// @throws gt::channel_closed if the channel is closed.
    bool try_send(T&& value) { return send_ns(value, 0); }
    /// try_send() of a copy of `value`.
    bool try_send(const T& value) {
        T copy(value);
        return send_ns(copy, 0);
    }

    /// As send(), but gives up at `t`: false on timeout (`value` is left
    /// as it was). @throws gt::channel_closed as send().
    template <class Clock, class Duration>
    bool send_until(T&& value, const std::chrono::time_point<Clock, Duration>& t) {
        return send_ns(value, detail::steady_deadline_ns(t));
    }
    /// send_until() of a copy of `value`.
    template <class Clock, class Duration>
    bool send_until(const T& value, const std::chrono::time_point<Clock, Duration>& t) {
        T copy(value);
        return send_ns(copy, detail::steady_deadline_ns(t));
    }
    /// As send(), but gives up after `d`: false on timeout.
    template <class Rep, class Period>
    bool send_for(T&& value, const std::chrono::duration<Rep, Period>& d) {
        return send_until(std::move(value), std::chrono::steady_clock::now() + d);
    }
    /// send_for() of a copy of `value`.
    template <class Rep, class Period>
    bool send_for(const T& value, const std::chrono::duration<Rep, Period>& d) {
        return send_until(value, std::chrono::steady_clock::now() + d);
    }

    /// Receives the oldest value; blocks while the channel is empty and
    /// open. Empty once the channel is closed and every value sent before
    /// the close has been received. Never throws.
    std::optional<T> receive() noexcept { return receive_ns(INT64_MAX); }
    /// Receives a value if one is there now (or a sender waits); else empty.
    std::optional<T> try_receive() noexcept { return receive_ns(0); }
    /// As receive(), but gives up at `t`. Empty on timeout, or when closed
    /// and drained (closed() tells which).
    template <class Clock, class Duration>
    std::optional<T> receive_until(const std::chrono::time_point<Clock, Duration>& t) noexcept {
        return receive_ns(detail::steady_deadline_ns(t));
    }
    /// As receive(), but gives up after `d` (on steady_clock).
    template <class Rep, class Period>
    std::optional<T> receive_for(const std::chrono::duration<Rep, Period>& d) noexcept {
        return receive_until(std::chrono::steady_clock::now() + d);
    }

    /// Closes the channel: later sends throw channel_closed; blocked senders
    /// wake and throw it, keeping their values; blocked receivers wake with
    /// an empty optional (the buffer is empty while a receiver waits);
    /// values still buffered are received by later receives. Closing again
    /// does nothing. Never blocks.
    void close() noexcept { channel_core::close(); }
    /// True once close() has been called.
    bool closed() const noexcept { return channel_core::closed(); }
    /// The capacity given to the constructor.
    std::size_t capacity() const noexcept { return channel_core::capacity(); }
    /// Values buffered now (a snapshot: other threads may change it at once).
    std::size_t size() const noexcept { return channel_core::size(); }

private:
    struct storage {
        alignas(T) unsigned char bytes[sizeof(T)];
    };

    bool send_ns(T& value, std::int64_t deadline_ns) {
        const detail::channel_result r = channel_core::send(&value, deadline_ns);
        if (r == detail::channel_result::closed) throw channel_closed();
        return r == detail::channel_result::done;
    }
    std::optional<T> receive_ns(std::int64_t deadline_ns) noexcept {
        std::optional<T> slot;
        channel_core::receive(&slot, deadline_ns);
        return slot;
    }

    T* at(std::size_t index) noexcept { return std::launder(reinterpret_cast<T*>(buffer_[index].bytes)); }
    void put(std::size_t index, void* value) noexcept override {
        ::new (static_cast<void*>(buffer_[index].bytes)) T(std::move(*static_cast<T*>(value)));
    }
    void take(std::size_t index, void* slot) noexcept override {
        static_cast<std::optional<T>*>(slot)->emplace(std::move(*at(index)));
        destroy(index);
    }
    void hand_over(void* value, void* slot) noexcept override {
        static_cast<std::optional<T>*>(slot)->emplace(std::move(*static_cast<T*>(value)));
    }
    void destroy(std::size_t index) noexcept override { at(index)->~T(); }

    std::unique_ptr<storage[]> buffer_;
};

}  // namespace gt
