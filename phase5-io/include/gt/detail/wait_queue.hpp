// What the inline fast paths of gt's synchronization primitives need to
// see: the wait queue's head (a member of every primitive, so that a
// `static gt::mutex` is constant-initialised), what a thread waits for, and
// the running thread of the calling OS thread. Not part of the API.
#pragma once

#include <atomic>
#include <cstdint>

namespace gt::detail {

struct control_block;

/// What a BLOCKED thread waits for.
enum class wait_reason : std::uint8_t {
    none,                ///< not blocked
    join,                ///< another thread to finish (control_block::joining)
    sleep,               ///< its wake_time (on the scheduler's timer heap)
    mutex,               ///< a gt::mutex (or timed, recursive) to be unlocked
    condition_variable,  ///< a notify, or its deadline
    shared_mutex,        ///< a gt::shared_mutex
    barrier,             ///< the other threads of a gt::barrier or gt::latch
    semaphore,           ///< a gt::counting_semaphore to be released
    call_once,           ///< another thread's gt::call_once to end
    channel,             ///< a gt::channel to have room, a value, or be closed
    readable,            ///< a descriptor to become readable (control_block::waiting_fd)
    writable,            ///< a descriptor to become writable
    timer,               ///< the callback thread: work (a due gt::timer, a round of idle callbacks); others: a timer's callback to return
};

/// How a block ended: the one wakeup that readied the thread.
enum class wake_reason : std::uint8_t {
    none,      ///< not woken yet
    notified,  ///< an unlock, notify, release or close readied it; it tries again
    handoff,   ///< an unlock made it the mutex's owner directly
    timeout,   ///< its deadline passed first
};

/// The head of a wait queue: the BLOCKED threads waiting for one object,
/// linked through their control blocks (`wait_prev`, `wait_next`), highest
/// priority first and FIFO within a priority. Allocation-free, so a waiter
/// costs nothing but its control block. Touched only inside the
/// scheduler's critical section (src/wait_queue.hpp has its operations).
struct wait_queue {
    /// A queue whose waiters wait for `why`. `owner_word`: for a mutex, its
    /// lock word, whose bits above the flags are the owner's control block
    /// (priority inheritance and the deadlock check follow it).
    constexpr explicit wait_queue(wait_reason why,
                                  const std::atomic<std::uintptr_t>* owner_word = nullptr) noexcept
        : reason(why), owner(owner_word) {}
    wait_queue(const wait_queue&) = delete;
    wait_queue& operator=(const wait_queue&) = delete;

    control_block* head = nullptr;
    control_block* tail = nullptr;
    const wait_reason reason;
    const std::atomic<std::uintptr_t>* const owner;
    /// A name for reports (gt::mutex::attributes); nullptr: the address.
    const char* name = nullptr;
    /// The next mutex in its owner's control_block::held_contended list
    /// (priority inheritance); touched inside the critical section.
    wait_queue* held_next = nullptr;
};

/// The green thread RUNNING on the calling OS thread; nullptr before its
/// first gt call, and while the deterministic mode is on (so that the fast
/// paths, which send a nullptr owner to their slow paths, reach its
/// synchronization points). Written by the scheduler at every switch; read
/// by the primitives' fast paths, which store it in a lock word as the owner.
/// constinit: reading it costs one load, no initialisation check.
extern constinit thread_local control_block* running_thread;

}  // namespace gt::detail
