// The deterministic scheduling mode (include/gt/deterministic.hpp): with a
// seed, every switch happens at a synchronization point and every choice
// of the next thread comes from the seed's generator, so one seed is one
// interleaving, replayed exactly each time it runs.
//
// Three pieces, each small:
//   - the synchronization points: the primitives call sync_point
//     (include/gt/detail/sync_point.hpp) before each operation; there
//     deterministic_sync_point lets the running thread stay or give way;
//   - the policy: pick_next calls pick_deterministic, which draws among
//     the READY threads of the highest level;
//   - the fast paths: running_thread stays nullptr while the mode is on
//     (switch_to, set_schedule_seed), and the mutexes' inline fast paths
//     already send a nullptr owner to their slow paths, where the hook is.
//     So the mode costs the fast paths nothing when it is off.
// CHESS (Musuvathi et al., OSDI 2008) controls the scheduler the same way,
// at synchronization points only; it enumerates schedules where this
// samples them, as the Relacy race detector's random scheduler does.
#include "deterministic.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <system_error>

#include "scheduler.hpp"

namespace gt::detail {

std::uint64_t schedule_seed_from_environment() noexcept {
    const char* text = std::getenv("GT_SCHEDULE_SEED");
    if (text == nullptr || *text == '\0') return 0;
    char* end = nullptr;
    const int saved_errno = errno;  // the caller's errno is not ours to change
    errno = 0;
    const unsigned long long value = std::strtoull(text, &end, 10);
    const bool valid = errno == 0 && *end == '\0' && *text >= '0' && *text <= '9';
    errno = saved_errno;
    if (valid) return value;
    std::fprintf(stderr, "gt: GT_SCHEDULE_SEED=%s is not a whole number; the deterministic mode is off\n", text);
    return 0;
}

std::int64_t wait_clock_ns(const scheduler& s) noexcept {
    return s.deterministic().on ? s.deterministic().virtual_now_ns : monotonic_now_ns();
}

void sync_point_slow(debug::schedule_event what) noexcept {
    scheduler* s = scheduler::current_if_any();
    if (s != nullptr && s->deterministic().on) s->deterministic_sync_point(what);
}

void scheduler::set_schedule_seed(std::uint64_t seed) {
    check_not_reentered();
    deterministic_state& d = deterministic_;
    if (seed != 0) {
        if (!d.on) {
            // The timer would switch at instants the seed does not choose.
            d.slice_before_ns = slice_ns_;
            set_preemption(0, stall_ns_);
        }
        d.log.reserve(debug::schedule_log_capacity);  // logging never allocates from here on
        const critical_section cs(*this);
        d.on = true;
        d.seed = seed;
        d.dice = splitmix64(seed);
        d.virtual_now_ns = 0;
        d.log.clear();
        d.dropped = 0;
        running_thread = nullptr;  // the mutexes take their slow paths, which reach sync_point
        return;
    }
    if (!d.on) return;
    {
        const critical_section cs(*this);
        d.on = false;
        running_thread = running_;
    }
    set_preemption(d.slice_before_ns, stall_ns_);
}

void scheduler::deterministic_sync_point(debug::schedule_event what) noexcept {
    check_not_reentered();
    bool give_way = false;
    {
        const critical_section cs(*this);
        deterministic_state& d = deterministic_;
        d.record(running_->id, what);
        d.virtual_now_ns += deterministic_state::ns_per_sync_point;
        // A yield gives way by itself; elsewhere the running thread is one
        // more candidate, as likely to go on as each READY thread of its
        // level is to replace it (a thread of a lower level cannot).
        if (what != debug::schedule_event::yield && !run_queues_.empty() &&
            run_queues_.highest() >= running_->priority) {
            std::uint64_t peers = 0;
            for (const control_block* t = run_queues_.front(run_queues_.highest()); t != nullptr; t = t->next) ++peers;
            give_way = d.dice.below(peers + 1) != 0;
        }
    }
    if (give_way) yield();  // to the back of its level; pick_deterministic draws who runs
}

control_block* scheduler::pick_deterministic() noexcept {
    if (run_queues_.empty()) return nullptr;
    control_block* const first = run_queues_.front(run_queues_.highest());
    std::uint64_t candidates = 0;
    bool stopping_is_among = false;  // a yielding thread is back in its run queue: it must not be picked
    for (const control_block* t = first; t != nullptr; t = t->next) {
        ++candidates;
        stopping_is_among = stopping_is_among || t == running_;
    }
    control_block* pick = first;
    if (candidates > 1) {
        std::uint64_t k = deterministic_.dice.below(stopping_is_among ? candidates - 1 : candidates);
        for (;; pick = pick->next) {
            if (pick == running_) continue;
            if (k == 0) break;
            --k;
        }
    }
    // (A single candidate may be the running thread itself: its sleep ended
    // while the OS thread idled, and switch_away resumes it.)
    run_queues_.remove(pick);
    deterministic_.record(pick->id, debug::schedule_event::run);
    return pick;
}

}  // namespace gt::detail

namespace gt::debug {

using detail::scheduler;

void set_schedule_seed(std::uint64_t seed) { scheduler::current().set_schedule_seed(seed); }

std::uint64_t schedule_seed() noexcept {
    const detail::deterministic_state& d = scheduler::current().deterministic();
    return d.on ? d.seed : 0;
}

std::vector<schedule_step> schedule_log() {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    const scheduler::critical_section cs(s);
    return s.deterministic().log;
}

std::uint64_t schedule_log_dropped() noexcept { return scheduler::current().deterministic().dropped; }

const char* to_string(schedule_event event) noexcept {
    switch (event) {
        case schedule_event::run: return "run";
        case schedule_event::create: return "create";
        case schedule_event::join: return "join";
        case schedule_event::yield: return "yield";
        case schedule_event::lock: return "lock";
        case schedule_event::try_lock: return "try_lock";
        case schedule_event::unlock: return "unlock";
        case schedule_event::wait: return "wait";
        case schedule_event::notify: return "notify";
        case schedule_event::send: return "send";
        case schedule_event::receive: return "receive";
        case schedule_event::close: return "close";
        case schedule_event::other: return "other";
        case schedule_event::lock_shared: return "lock_shared";
        case schedule_event::try_lock_shared: return "try_lock_shared";
        case schedule_event::unlock_shared: return "unlock_shared";
        case schedule_event::acquire: return "acquire";
        case schedule_event::try_acquire: return "try_acquire";
        case schedule_event::release: return "release";
        case schedule_event::arrive: return "arrive";
        case schedule_event::call_once: return "call_once";
    }
    return "?";
}

deterministic_schedule::deterministic_schedule(std::uint64_t seed) : previous_(schedule_seed()) {
    if (seed == 0) throw std::invalid_argument("gt::debug::deterministic_schedule: the seed is 0, which means off");
    set_schedule_seed(seed);
}

deterministic_schedule::~deterministic_schedule() {
    try {
        set_schedule_seed(previous_);
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "gt: gt::debug::deterministic_schedule could not restore the time slice: %s\n", e.what());
    }
}

}  // namespace gt::debug
