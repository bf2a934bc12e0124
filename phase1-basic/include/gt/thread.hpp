/// @file
/// Green threads with the interface of std::thread.
///
/// A gt::thread is a user-space thread: it has its own stack and saved
/// registers, and many of them share one OS thread. Switching between them
/// is a function call into a few dozen instructions of assembly; the kernel
/// is not involved. Scheduling is cooperative: a thread runs until it calls
/// gt::this_thread::yield(), joins a thread that has not finished, or
/// returns.
///
/// Each OS thread that uses gt has its own scheduler, created on first use;
/// the code that was already running on that OS thread (your `main`) is
/// adopted as its first green thread. A gt::thread belongs to the OS thread
/// that created it and only runs there.
///
/// What belongs to whom: C++ `thread_local` variables and `errno` belong to
/// the OS thread, so all its green threads share them (read `errno` before
/// anything that can switch threads). The C++ exception state — what
/// `throw;` rethrows, std::current_exception(), std::uncaught_exceptions() —
/// is kept per green thread by the runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <ostream>
#include <tuple>
#include <type_traits>
#include <utility>

namespace gt {

namespace detail {

struct control_block;
struct id_factory;

/// Type-erased entry of a new thread: the decay-copied callable and its
/// arguments. Destroyed on the new thread once the callable has returned.
struct thread_start {
    virtual ~thread_start() = default;
    /// Invokes the callable with its arguments.
    virtual void run() = 0;
};

/// The thread_start for callable F and arguments Args (already decayed).
template <class F, class... Args>
struct thread_start_for final : thread_start {
    template <class G, class... As>
    explicit thread_start_for(G&& g, As&&... as)
        : call(std::forward<G>(g), std::forward<As>(as)...) {}

    void run() override {
        std::apply([](auto&&... xs) { std::invoke(std::move(xs)...); }, std::move(call));
    }

    std::tuple<F, Args...> call;
};

}  // namespace detail

/// A green thread of execution, with the interface and semantics of
/// std::thread (see [thread.thread.class] in the C++ standard).
///
/// Thread-safety: a gt::thread object, like a std::thread, must not be used
/// from two threads at once. All gt threads of one OS thread run one at a
/// time, so they share data without data races, but not without logic races
/// across a yield().
class thread {
public:
    /// Identifies a thread, like std::thread::id. A default-constructed id
    /// identifies no thread. Ids are unique within the process and never
    /// reused; they increase in creation order (the adopted main thread of
    /// the first OS thread to use gt gets 1) but may skip numbers: a
    /// creation that fails also uses one up.
    class id {
    public:
        /// The id of no thread.
        id() noexcept = default;

        /// Total order, as std::thread::id.
        friend constexpr auto operator<=>(id, id) noexcept = default;
        /// Equality, as std::thread::id.
        friend constexpr bool operator==(id, id) noexcept = default;

        /// Writes the id's number, or "thread::id of a non-executing
        /// thread" for a default-constructed id (as libstdc++ does).
        template <class CharT, class Traits>
        friend std::basic_ostream<CharT, Traits>& operator<<(std::basic_ostream<CharT, Traits>& out,
                                                             id i) {
            if (i.value_ == 0) return out << "thread::id of a non-executing thread";
            return out << i.value_;
        }

    private:
        friend class thread;
        friend struct std::hash<id>;
        friend struct detail::id_factory;
        explicit constexpr id(std::uint64_t value) noexcept : value_(value) {}
        std::uint64_t value_ = 0;
    };

    /// Options for a new thread, passed as the first constructor argument,
    /// like boost::thread::attributes: `gt::thread t({.stack_size = 64 * 1024}, f);`
    struct attributes {
        /// Stack size used when none is given: 256 KiB. Pages are only
        /// backed by memory once the thread touches them.
        static constexpr std::size_t default_stack_size = 256 * 1024;
        /// Smallest accepted stack size: 16 KiB, enough for the entry
        /// trampoline's frame, the runtime's own frames and its error
        /// messages, with room for a small thread function. Under
        /// AddressSanitizer frames are several times larger: give threads
        /// 64 KiB or more there.
        static constexpr std::size_t min_stack_size = 16 * 1024;

        /// Usable stack in bytes, rounded up to whole pages; the guard page
        /// (one page, PROT_NONE) comes on top of it.
        std::size_t stack_size = default_stack_size;
    };

    /// Creates an object that represents no thread (not joinable).
    thread() noexcept = default;

    /// Starts a new thread that will call `std::invoke(decay-copy(f),
    /// decay-copy(args)...)`, exactly as std::thread does: the copies are
    /// made here, on the calling thread, and destroyed on the new one.
    /// The new thread is READY at the back of the run queue; the caller
    /// keeps running until it yields or joins.
    /// @throws std::system_error errc::resource_unavailable_try_again when
    ///         the stack cannot be mapped; anything the copies throw.
    template <class F, class... Args>
        requires(!std::is_same_v<std::remove_cvref_t<F>, thread> &&
                 !std::is_same_v<std::remove_cvref_t<F>, attributes>)
    explicit thread(F&& f, Args&&... args)
        : thread(attributes{}, std::forward<F>(f), std::forward<Args>(args)...) {}

    /// As thread(F&&, Args&&...), with options.
    /// @param attrs options; attrs.stack_size in bytes, at least
    ///        attributes::min_stack_size.
    /// @param f the callable the new thread runs (decay-copied).
    /// @param args the arguments it is called with (decay-copied).
    /// @throws std::invalid_argument when attrs.stack_size is below
    ///         attributes::min_stack_size (the message says the minimum).
    /// @throws std::system_error errc::resource_unavailable_try_again when
    ///         the stack cannot be mapped.
    template <class F, class... Args>
    explicit thread(const attributes& attrs, F&& f, Args&&... args) {
        static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                      "gt::thread: the callable must be invocable with the decay-copied arguments "
                      "(as for std::thread; wrap references in std::ref)");
        using start_type = detail::thread_start_for<std::decay_t<F>, std::decay_t<Args>...>;
        tcb_ = start(attrs, std::make_unique<start_type>(std::forward<F>(f), std::forward<Args>(args)...));
    }

    thread(const thread&) = delete;
    thread& operator=(const thread&) = delete;

    /// Takes over other's thread; other no longer represents a thread.
    thread(thread&& other) noexcept : tcb_(std::exchange(other.tcb_, nullptr)) {}

    /// Takes over other's thread. If *this is joinable, calls std::terminate
    /// (as std::thread does), after printing which thread it was.
    thread& operator=(thread&& other) noexcept;

    /// If joinable(), calls std::terminate (as std::thread does), after
    /// printing "gt::thread N destroyed while joinable" to stderr.
    ~thread();

    /// True if this object represents a thread that has not been joined.
    bool joinable() const noexcept { return tcb_ != nullptr; }

    /// The id of the represented thread, or id() if not joinable().
    id get_id() const noexcept;

    /// Waits until the thread has finished, then releases its stack and
    /// control block; afterwards joinable() is false.
    ///
    /// While it waits, the caller yields (it stays READY and is rescheduled
    /// round robin until the target has finished); it never blocks the OS
    /// thread.
    /// @throws std::system_error errc::invalid_argument if !joinable();
    ///         errc::resource_deadlock_would_occur if the thread is the
    ///         caller; errc::operation_not_permitted if the thread belongs
    ///         to another OS thread's scheduler (std::thread allows that;
    ///         a gt::thread runs only on its creator's OS thread). The
    ///         message names the thread.
    void join();

    /// Exchanges the threads represented by *this and other.
    void swap(thread& other) noexcept { std::swap(tcb_, other.tcb_); }

    /// Exchanges the threads represented by a and b.
    friend void swap(thread& a, thread& b) noexcept { a.swap(b); }

private:
    static detail::control_block* start(const attributes& attrs,
                                        std::unique_ptr<detail::thread_start> entry);

    detail::control_block* tcb_ = nullptr;  // owned: released by join()
};

/// Functions that act on the calling thread, as std::this_thread.
namespace this_thread {

/// Moves the calling thread to the back of the run queue and runs the
/// thread at its front. Returns at once if no other thread is READY; never
/// picks the caller again while another thread is READY (round robin).
/// Adopts the calling OS thread's flow as a green thread on first use.
/// Not async-signal-safe.
void yield() noexcept;

/// The id of the calling green thread (the adopted main thread included).
thread::id get_id() noexcept;

}  // namespace this_thread

}  // namespace gt

/// Hash of gt::thread::id, as std::hash<std::thread::id>.
template <>
struct std::hash<gt::thread::id> {
    /// The hash of the id's number.
    std::size_t operator()(gt::thread::id i) const noexcept { return std::hash<std::uint64_t>{}(i.value_); }
};
