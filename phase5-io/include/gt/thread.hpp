/// @file
/// Green threads with the interface of std::thread.
///
/// A gt::thread is a user-space thread: it has its own stack and saved
/// registers, and many of them share one OS thread. Switching between them
/// is a function call into a few dozen instructions of assembly; the kernel
/// is not involved. Scheduling is cooperative: a thread runs until it calls
/// gt::this_thread::yield(), blocks (joins a thread that has not finished,
/// sleeps), returns, or makes a thread of higher priority READY.
///
/// Priorities are strict: a READY thread of a higher priority always runs
/// before one of a lower priority; threads of one priority take turns
/// round robin.
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

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace gt {

/// Lowest priority level (runs only when no other level has a READY thread).
inline constexpr int lowest_priority = 0;
/// Highest priority level.
inline constexpr int highest_priority = 31;
/// Priority of a thread created without one, and of the adopted main thread.
inline constexpr int default_priority = 16;

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

class thread;

namespace debug {
int effective_priority(const thread& t);  // gt/debug.hpp
}

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
    /// like boost::thread::attributes:
    /// `gt::thread t({.stack_size = 64 * 1024, .priority = 20, .name = "io"}, f);`
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
        /// Priority, from lowest_priority (0) to highest_priority (31).
        int priority = default_priority;
        /// Name shown in the debug dump, the trace and runtime messages;
        /// empty means "thread-<id>".
        std::string name{};
    };

    /// Creates an object that represents no thread (not joinable).
    thread() noexcept = default;

    /// Starts a new thread that will call `std::invoke(decay-copy(f),
    /// decay-copy(args)...)`, exactly as std::thread does: the copies are
    /// made here, on the calling thread, and destroyed on the new one.
    /// The new thread is READY at the back of its priority's run queue; the
    /// caller keeps running unless the new thread's priority is higher than
    /// its own, in which case the new thread runs at once.
    /// @throws std::system_error errc::resource_unavailable_try_again when
    ///         the stack cannot be mapped (the message names the limit when
    ///         it is vm.max_map_count); anything the copies throw.
    template <class F, class... Args>
        requires(!std::is_same_v<std::remove_cvref_t<F>, thread> &&
                 !std::is_same_v<std::remove_cvref_t<F>, attributes>)
    explicit thread(F&& f, Args&&... args)
        : thread(attributes{}, std::forward<F>(f), std::forward<Args>(args)...) {}

    /// As thread(F&&, Args&&...), with options.
    /// @param attrs options; attrs.stack_size in bytes, at least
    ///        attributes::min_stack_size; attrs.priority from
    ///        lowest_priority to highest_priority.
    /// @param f the callable the new thread runs (decay-copied).
    /// @param args the arguments it is called with (decay-copied).
    /// @throws std::invalid_argument when attrs.stack_size is below
    ///         attributes::min_stack_size (the message says the minimum) or
    ///         attrs.priority is outside [lowest_priority, highest_priority].
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

    /// True if this object represents a thread that has been neither
    /// joined nor detached.
    bool joinable() const noexcept { return tcb_ != nullptr; }

    /// The id of the represented thread, or id() if not joinable().
    id get_id() const noexcept;

    /// Waits until the thread has finished, then releases its stack (to the
    /// stack pool) and control block; afterwards joinable() is false.
    ///
    /// While it waits, the caller is BLOCKED: off the run queue, woken
    /// exactly once by the finishing thread. It never blocks the OS thread
    /// while another green thread can run.
    /// @throws std::system_error errc::invalid_argument if !joinable() or
    ///         another thread is already joining it;
    ///         errc::resource_deadlock_would_occur if the thread is the
    ///         caller or is itself (directly or through others) joining the
    ///         caller; errc::operation_not_permitted if the thread belongs
    ///         to another OS thread's scheduler (std::thread allows that;
    ///         a gt::thread runs only on its creator's OS thread). The
    ///         message names the thread.
    void join();

    /// Lets the thread run on unowned: it is reaped (stack and control
    /// block released) as soon as it finishes. Afterwards joinable() is false.
    /// @throws std::system_error errc::invalid_argument if !joinable();
    ///         errc::operation_not_permitted from another OS thread.
    void detach();

    /// The thread's name ("thread-<id>" unless one was given).
    /// @throws std::system_error errc::invalid_argument if !joinable().
    std::string get_name() const;

    /// The thread's base priority, lowest_priority..highest_priority: the
    /// one it was created with or set_priority gave it. While it owns a
    /// gt::mutex that a thread of higher priority waits for, it runs at
    /// that higher priority (priority inheritance), which
    /// gt::debug::effective_priority reads.
    /// @throws std::system_error errc::invalid_argument if !joinable().
    int get_priority() const;

    /// Changes the thread's base priority (it keeps running at a higher
    /// one while it inherits that). If the thread is READY and now of
    /// higher priority than the caller, it runs at once.
    /// @param priority lowest_priority..highest_priority.
    /// @throws std::invalid_argument if priority is out of range;
    ///         std::system_error errc::invalid_argument if !joinable(),
    ///         errc::operation_not_permitted from another OS thread.
    void set_priority(int priority);

    /// Exchanges the threads represented by *this and other.
    void swap(thread& other) noexcept { std::swap(tcb_, other.tcb_); }

    /// Exchanges the threads represented by a and b.
    friend void swap(thread& a, thread& b) noexcept { a.swap(b); }

private:
    friend int debug::effective_priority(const thread& t);

    static detail::control_block* start(const attributes& attrs,
                                        std::unique_ptr<detail::thread_start> entry);

    detail::control_block* tcb_ = nullptr;  // owned: released by join(), or handed to the scheduler by detach()
};

/// Functions that act on the calling thread, as std::this_thread.
namespace this_thread {

/// Moves the calling thread to the back of its priority's run queue and
/// runs the first READY thread of the highest priority. Returns at once if
/// no other thread of the same or a higher priority is READY; never picks
/// the caller again while such a thread is READY (round robin within a
/// priority). Threads whose sleep has ended become READY first.
/// Adopts the calling OS thread's flow as a green thread on first use.
/// Not async-signal-safe.
void yield() noexcept;

/// The id of the calling green thread (the adopted main thread included).
thread::id get_id() noexcept;

/// Blocks the calling thread until `deadline_ns` on CLOCK_MONOTONIC
/// (std::chrono::steady_clock), in nanoseconds; returns at once if it has
/// passed. When no thread is READY the OS thread sleeps in
/// clock_nanosleep(2) until the earliest deadline: no CPU is used.
void sleep_until_steady_ns(std::int64_t deadline_ns) noexcept;

/// Blocks the calling thread for at least `d`, as std::this_thread::sleep_for.
/// The other green threads run meanwhile.
template <class Rep, class Period>
void sleep_for(const std::chrono::duration<Rep, Period>& d) {
    if (d <= d.zero()) return;
    const auto now = std::chrono::steady_clock::now();
    const auto limit = std::chrono::steady_clock::time_point::max() - now;
    // Compared in floating point first: converting a huge duration (years,
    // hours::max()) to nanoseconds would overflow.
    using seconds_ld = std::chrono::duration<long double>;
    if (std::chrono::duration_cast<seconds_ld>(d) >= std::chrono::duration_cast<seconds_ld>(limit)) {
        sleep_until_steady_ns(std::chrono::steady_clock::time_point::max().time_since_epoch().count());
        return;
    }
    sleep_until_steady_ns((now + std::chrono::ceil<std::chrono::nanoseconds>(d)).time_since_epoch().count());
}

/// Blocks the calling thread until `t` has been reached on Clock, as
/// std::this_thread::sleep_until. For clocks other than steady_clock it
/// re-checks Clock::now() after each wait, so a clock that is adjusted
/// still ends the sleep at or after `t`.
template <class Clock, class Duration>
void sleep_until(const std::chrono::time_point<Clock, Duration>& t) {
    if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
        using seconds_ld = std::chrono::duration<long double>;
        const auto max = std::chrono::steady_clock::time_point::max().time_since_epoch();
        if (std::chrono::duration_cast<seconds_ld>(t.time_since_epoch()) >=
            std::chrono::duration_cast<seconds_ld>(max)) {
            sleep_until_steady_ns(max.count());  // "forever": a deadline that never comes
        } else {
            sleep_until_steady_ns(std::chrono::ceil<std::chrono::nanoseconds>(t.time_since_epoch()).count());
        }
    } else {
        for (auto now = Clock::now(); now < t; now = Clock::now()) sleep_for(t - now);
    }
}

/// Ends the calling thread now: its stack is unwound (destructors of its
/// locals run), then its cleanup handlers run, then its thread-specific
/// values are destroyed, as after a return from its function. Works by
/// throwing an exception that is not a std::exception; code that catches
/// everything (`catch (...)`) must rethrow it. Called in a cleanup handler,
/// it ends that handler (the remaining ones still run); called in a
/// thread-specific value's destructor, it terminates the process.
/// @throws std::system_error errc::operation_not_permitted when called from
///         the adopted main thread, which has no thread function to return
///         from (return from main instead).
[[noreturn]] void exit();

/// Registers `handler` to run when the calling thread finishes (by return or
/// exit()), after the handlers registered later: LIFO, as
/// pthread_cleanup_push(3). The adopted main thread's handlers run only
/// through cleanup_pop(true).
/// @throws std::bad_alloc if the handler cannot be stored.
void cleanup_push(std::function<void()> handler);

/// Removes the most recently pushed cleanup handler and, if `execute`,
/// runs it, as pthread_cleanup_pop(3).
/// @throws std::logic_error if the calling thread has no cleanup handler.
void cleanup_pop(bool execute);

/// The calling thread's name ("main" for the adopted main thread,
/// "thread-<id>" unless one was given).
std::string get_name();

/// Renames the calling thread (any text; shown in the dump, the trace and
/// runtime messages).
void set_name(std::string_view name);

/// The calling thread's base priority (see gt::thread::get_priority).
int get_priority() noexcept;

/// Changes the calling thread's priority. Lowering it below that of a READY
/// thread lets that thread run at once.
/// @param priority lowest_priority..highest_priority.
/// @throws std::invalid_argument if priority is out of range.
void set_priority(int priority);

}  // namespace this_thread

}  // namespace gt

/// Hash of gt::thread::id, as std::hash<std::thread::id>.
template <>
struct std::hash<gt::thread::id> {
    /// The hash of the id's number.
    std::size_t operator()(gt::thread::id i) const noexcept { return std::hash<std::uint64_t>{}(i.value_); }
};
