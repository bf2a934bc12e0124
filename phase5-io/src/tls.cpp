// Thread-specific values: each thread keeps a small vector of (key, value,
// cleanup) in its control block. Lookups scan it: O(number of
// thread_specific_ptr values the thread has set), typically a handful.
#include <algorithm>
#include <atomic>
#include <utility>

#include "gt/thread_specific_ptr.hpp"
#include "scheduler.hpp"

namespace gt::detail {

std::uint64_t allocate_tls_key() noexcept {
    static std::atomic<std::uint64_t> next_key{1};
    return next_key.fetch_add(1, std::memory_order_relaxed);
}

void* tls_get(std::uint64_t key) noexcept {
    for (const tls_slot& slot : scheduler::current().running()->tls) {
        if (slot.key == key) return slot.value;
    }
    return nullptr;
}

void tls_set(std::uint64_t key, void* value, const std::shared_ptr<tls_cleanup>& cleanup) {
    std::vector<tls_slot>& slots = scheduler::current().running()->tls;
    auto it = std::find_if(slots.begin(), slots.end(), [key](const tls_slot& s) { return s.key == key; });
    if (value == nullptr) {
        if (it != slots.end()) slots.erase(it);
    } else if (it != slots.end()) {
        it->value = value;
    } else {
        slots.push_back(tls_slot{key, value, cleanup});
    }
}

void run_tls_destructors(control_block& t) noexcept {
    // One value at a time, each set to null just before its destructor runs,
    // so a destructor can still use the thread's other values (a per-thread
    // log, say). A destructor may set values again; like POSIX
    // (PTHREAD_DESTRUCTOR_ITERATIONS, pthread_key_create(3)), try a few
    // rounds, then give up on the rest.
    for (int round = 0; round < 4; ++round) {
        bool destroyed_any = false;
        for (std::size_t i = 0; i < t.tls.size(); ++i) {  // re-read: destructors may add or remove slots
            void* value = std::exchange(t.tls[i].value, nullptr);
            std::shared_ptr<tls_cleanup> cleanup = t.tls[i].cleanup;
            if (value == nullptr || cleanup == nullptr) continue;
            cleanup->destroy(value);
            destroyed_any = true;
        }
        if (!destroyed_any) break;
    }
    t.tls.clear();
}

}  // namespace gt::detail
