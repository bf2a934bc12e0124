// The timer heap: every deadline of one scheduler (sleepers, timed waiters,
// gt::timer callbacks) in a 4-ary min-heap, so that inserting and cancelling
// cost O(log n) where phase 4's sorted list cost O(n), and the earliest
// deadline is O(1). Go keeps one 4-ary heap of timers per P
// (src/runtime/time.go); libuv a binary heap (src/timer.c). Four children
// per node make the heap half as deep as a binary one, and a node's
// children share a cache line (4 entries of 24 bytes).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "invariant.hpp"

namespace gt::detail {

struct control_block;
struct timer_node;

/// What a gt::timer does when its deadline passes (expire_timer, in
/// callback_thread.cpp): called by the scheduler, inside its critical
/// section, with the deadline that passed, after the node has left the heap.
using timer_expiry = void (*)(timer_node& node, std::int64_t deadline_ns) noexcept;

/// One deadline's place in the heap. Embedded in what waits for it (the
/// thread's control block, a gt::timer), so that arming a timer allocates
/// nothing but, sometimes, room in the heap's array. Changed only inside
/// the scheduler's critical section.
struct timer_node {
    static constexpr std::uint32_t not_queued = std::numeric_limits<std::uint32_t>::max();
    /// Its index in the heap's array (what makes cancel O(log n));
    /// not_queued when it is not in the heap.
    std::uint32_t index = not_queued;
    /// The sleeper or timed waiter this deadline wakes; nullptr for a
    /// gt::timer, whose `expire` runs instead.
    control_block* thread = nullptr;
    timer_expiry expire = nullptr;

    bool queued() const noexcept { return index != not_queued; }
};

class timer_heap {
public:
    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }

    /// The earliest deadline (ns, CLOCK_MONOTONIC); only if !empty().
    std::int64_t earliest() const noexcept { return heap_.front().deadline; }
    /// The node with the earliest deadline; only if !empty().
    timer_node* front() const noexcept { return heap_.front().node; }

    /// Adds `node`, which is not queued, to fire at `deadline_ns`, after
    /// every node already queued with the same deadline (a sequence number
    /// breaks ties, as libuv's start_id does). O(log n). Allocates when the
    /// array grows (std::bad_alloc); reserve() ahead to avoid that.
    void insert(timer_node* node, std::int64_t deadline_ns) {
        GT_INVARIANT(!node->queued(), "a timer node is in the heap at most once");
        heap_.push_back(entry{deadline_ns, next_seq_++, node});
        sift_up(heap_.size() - 1);
    }

    /// Takes `node`, which is queued, out of the heap. O(log n).
    void remove(timer_node* node) noexcept {
        GT_INVARIANT(node->queued() && node->index < heap_.size() && heap_[node->index].node == node,
                     "only a node in the heap is removed from it");
        const std::size_t i = node->index;
        node->index = timer_node::not_queued;
        const entry last = heap_.back();
        heap_.pop_back();
        if (i == heap_.size()) return;  // it was the last entry
        place(i, last);
        if (i > 0 && before(heap_[i], heap_[parent(i)])) {
            sift_up(i);
        } else {
            sift_down(i);
        }
    }

    /// The earliest node if its deadline is at or before `now_ns`, taken
    /// out of the heap (its deadline in `*deadline_ns`); else nullptr.
    timer_node* pop_due(std::int64_t now_ns, std::int64_t* deadline_ns) noexcept {
        if (heap_.empty() || heap_.front().deadline > now_ns) return nullptr;
        timer_node* node = heap_.front().node;
        *deadline_ns = heap_.front().deadline;
        remove(node);
        return node;
    }

    /// Calls `visit(node)` for every node whose deadline is at or before
    /// `now_ns`, in no particular order, until it returns true; returns
    /// whether it did. Visits only the due nodes and their children: a
    /// node that is not due has no due descendant. Allocates nothing and
    /// recurses at most log4(n) deep, so a signal handler may call it.
    template <typename Visit>
    bool any_due(std::int64_t now_ns, Visit&& visit, std::size_t from = 0) const noexcept {
        if (from >= heap_.size() || heap_[from].deadline > now_ns) return false;
        if (visit(*heap_[from].node)) return true;
        for (std::size_t c = first_child(from); c < first_child(from) + arity; ++c) {
            if (any_due(now_ns, visit, c)) return true;
        }
        return false;
    }

    /// Makes room for `n` nodes, so that inserting up to that many
    /// allocates nothing.
    void reserve(std::size_t n) { heap_.reserve(n); }

private:
    static constexpr std::size_t arity = 4;
    struct entry {
        std::int64_t deadline;  // copied here: comparisons touch only the array
        std::uint64_t seq;      // insertion order, for equal deadlines
        timer_node* node;
    };

    static std::size_t parent(std::size_t i) noexcept { return (i - 1) / arity; }
    static std::size_t first_child(std::size_t i) noexcept { return i * arity + 1; }
    static bool before(const entry& a, const entry& b) noexcept {
        return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
    }
    void place(std::size_t i, const entry& e) noexcept {
        heap_[i] = e;
        e.node->index = static_cast<std::uint32_t>(i);
    }
    void sift_up(std::size_t i) noexcept {
        const entry moving = heap_[i];
        while (i > 0 && before(moving, heap_[parent(i)])) {
            place(i, heap_[parent(i)]);
            i = parent(i);
        }
        place(i, moving);
    }
    void sift_down(std::size_t i) noexcept {
        const entry moving = heap_[i];
        for (;;) {
            const std::size_t first = first_child(i);
            if (first >= heap_.size()) break;
            std::size_t least = first;
            const std::size_t end = std::min(first + arity, heap_.size());
            for (std::size_t c = first + 1; c < end; ++c) {
                if (before(heap_[c], heap_[least])) least = c;
            }
            if (!before(heap_[least], moving)) break;
            place(i, heap_[least]);
            i = least;
        }
        place(i, moving);
    }

    std::vector<entry> heap_;
    std::uint64_t next_seq_ = 0;
};

}  // namespace gt::detail
