// The lock-order check and lock levels: deadlocks found before they happen.
//
// Each green thread keeps the list of gt mutexes it holds
// (control_block::locks_held), while the check is on or for mutexes with a
// level. A lock taken while holding others adds an edge "held -> taken" to
// one graph for the whole process, whose nodes are mutexes. Two threads
// that take A then B, and B then A, leave the edges A->B and B->A: a cycle.
// They can deadlock (each holding its first mutex, waiting for its second)
// even if this run was lucky, so the edge that closes the cycle is reported
// at once, with both orders and the threads that took them. That is
// Abseil's deadlock detection (absl/synchronization/mutex.cc,
// DeadlockCheck; its graph, synchronization/internal/graphcycles.cc, keeps
// a topological order of the nodes incrementally, after Pearce and Kelly,
// so that most new edges need no search). Differences: the held list is
// per green thread (Abseil's is per OS thread, which many green threads
// share), Abseil saves stack traces where we name the threads, and our
// graph searches for a path with a plain depth-first search, only when an
// edge is new: an edge is checked once, later locks in the same order cost
// a hash lookup.
//
// A lock level is a cheaper rule that needs no graph: a thread may take a
// mutex with a level only below the levels of those it holds.
#include "lock_order.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "scheduler.hpp"
#include "sync_report.hpp"
#include "trace.hpp"
#include "wait_for.hpp"

namespace gt::detail {
namespace {

using debug::lock_order_check;

lock_order_check mode_from_environment() noexcept {
#if defined(NDEBUG)
    const lock_order_check fallback = lock_order_check::off;
#else
    const lock_order_check fallback = lock_order_check::report;
#endif
    const char* value = std::getenv("GT_LOCK_ORDER");
    if (value == nullptr || *value == '\0') return fallback;
    if (std::strcmp(value, "off") == 0) return lock_order_check::off;
    if (std::strcmp(value, "report") == 0) return lock_order_check::report;
    if (std::strcmp(value, "abort") == 0) return lock_order_check::abort;
    std::fprintf(stderr, "gt: GT_LOCK_ORDER=%s is not off, report or abort; using %s\n", value,
                 fallback == lock_order_check::off ? "off" : "report");
    return fallback;
}

std::atomic<lock_order_check> mode{mode_from_environment()};

// One edge: `to` was taken while `from` was held.
struct edge {
    std::string taken_by;  // the thread that took them in this order first
    bool closes_cycle;     // reported, and left out of every path search
};

struct node {
    std::string text;  // gt::mutex "name" (0x...)
    std::unordered_map<const lock_word*, edge> out;
    std::unordered_set<const lock_word*> in;
};

// The graph of the whole process. Touched under `lock` and, on the calling
// OS thread, inside its scheduler's critical section, so that no tick
// switches to a green thread that would wait for `lock` on the same OS
// thread.
struct graph {
    std::mutex lock;
    std::unordered_map<const lock_word*, node> nodes;
    std::size_t edges = 0;

    node& at(const lock_word& m) {
        node& n = nodes[&m];
        if (n.text.empty()) n.text = object_text(m.waiters());
        return n;
    }

    // A path from -> ... -> to over edges that close no cycle, as the list
    // of its nodes; empty if there is none.
    std::vector<const lock_word*> path(const lock_word* from, const lock_word* to) const {
        std::unordered_map<const lock_word*, const lock_word*> came_from{{from, nullptr}};
        std::vector<const lock_word*> stack{from};
        while (!stack.empty()) {
            const lock_word* n = stack.back();
            stack.pop_back();
            if (n == to) {
                std::vector<const lock_word*> found;
                for (const lock_word* p = to; p != nullptr; p = came_from[p]) found.insert(found.begin(), p);
                return found;
            }
            for (const auto& [next, e] : nodes.at(n).out) {
                if (!e.closes_cycle && came_from.emplace(next, n).second) stack.push_back(next);
            }
        }
        return {};
    }

    // Adds held -> taken, by `self`; reports a cycle it closes.
    void add(const lock_word& held, const lock_word& taken, const control_block& self) {
        node& from = at(held);
        if (from.out.count(&taken) != 0) return;  // seen before: already checked
        at(taken);
        const std::vector<const lock_word*> back = path(&taken, &held);
        from.out.emplace(&taken, edge{describe(self), !back.empty()});
        nodes.at(&taken).in.insert(&held);
        ++edges;
        if (!back.empty()) report(held, taken, self, back);
    }

    void report(const lock_word& held, const lock_word& taken, const control_block& self,
                const std::vector<const lock_word*>& back) {
        std::string text = "gt: lock-order inversion (a potential deadlock): " + describe(self) + " takes " +
                           nodes.at(&taken).text + " while holding " + nodes.at(&held).text + ", but earlier\n";
        for (std::size_t i = 0; i + 1 < back.size(); ++i) {
            const node& a = nodes.at(back[i]);
            text += "  " + a.out.at(back[i + 1]).taken_by + " took " + nodes.at(back[i + 1]).text +
                    " while holding " + a.text + "\n";
        }
        text += "Threads taking these mutexes in these orders at the same time would wait for each other "
                "forever: take them in one order everywhere (or together, with std::scoped_lock).\n";
        std::fputs(text.c_str(), stderr);
        if (mode.load(std::memory_order_relaxed) == lock_order_check::abort) {
            std::fputs("gt: GT_LOCK_ORDER=abort: aborting\n", stderr);
            trace::flush();
            std::abort();
        }
    }

    void forget(const lock_word* m) {
        const auto found = nodes.find(m);
        if (found == nodes.end()) return;
        for (const lock_word* p : found->second.in) edges -= nodes.at(p).out.erase(m);
        for (const auto& [next, e] : found->second.out) {
            nodes.at(next).in.erase(m);
            --edges;
        }
        nodes.erase(found);
    }
};

graph& the_graph() {
    static graph* g = new graph;  // never destroyed: mutexes may die during exit
    return *g;
}

// The graph's lock, inside the calling OS thread's critical section.

[[noreturn]] void refuse_level(const control_block& self, const lock_word& held, const lock_word& taken) {
    throw std::system_error(
        std::make_error_code(std::errc::resource_deadlock_would_occur),
        "gt::mutex::lock: lock levels out of order: " + describe(self) + " holds " + object_text(held.waiters()) +
            " of level " + std::to_string(held.level()) + " and would take " + object_text(taken.waiters()) +
            " of level " + std::to_string(taken.level()) +
            "; while holding a mutex with a level, take only mutexes of lower levels");
}

}  // namespace

std::atomic<bool> lock_order_checking{mode.load() != lock_order_check::off};

debug::lock_order_check lock_order_mode() noexcept { return mode.load(std::memory_order_relaxed); }

std::size_t lock_order_nodes() noexcept {
    const locked_without_ticks guard(the_graph().lock);
    return the_graph().nodes.size();
}

std::size_t lock_order_edges() noexcept {
    const locked_without_ticks guard(the_graph().lock);
    return the_graph().edges;
}

bool lock_word::lock_checked(std::int64_t deadline_ns) {
    scheduler& s = scheduler::current();
    const control_block& self = *s.running();
    // Only a lock taken while holding others does any work (Abseil, too,
    // returns at once when nothing is held).
    if (!self.locks_held.empty()) {
        for (const lock_word* held : self.locks_held) {
            if (held != this && held->level_ != 0 && level_ != 0 && level_ >= held->level_) {
                refuse_level(self, *held, *this);
            }
        }
        if (lock_order_checking.load(std::memory_order_relaxed)) {
            s.check_not_reentered();
            const locked_without_ticks guard(the_graph().lock);
            for (const lock_word* held : self.locks_held) {
                if (held != this) the_graph().add(*held, *this, self);
            }
        }
    }
    if (!acquire(deadline_ns)) return false;
    note_held();
    return true;
}

void lock_word::note_held() noexcept { scheduler::current().running()->locks_held.push_back(this); }

void lock_word::note_released() noexcept {
    scheduler* s = scheduler::current_if_any();
    if (s == nullptr) return;
    std::vector<const lock_word*>& held = s->running()->locks_held;
    for (auto it = held.rbegin(); it != held.rend(); ++it) {  // usually the last one taken
        if (*it == this) {
            held.erase(std::next(it).base());
            return;
        }
    }
}

void lock_word::forget_lock_order() noexcept {
    const locked_without_ticks guard(the_graph().lock);
    the_graph().forget(this);
}

}  // namespace gt::detail

namespace gt::debug {

void set_lock_order_check(lock_order_check new_mode) noexcept {
    detail::mode.store(new_mode);
    detail::lock_order_checking.store(new_mode != lock_order_check::off);
}

}  // namespace gt::debug
