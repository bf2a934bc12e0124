// What the runtime says about itself: names of states and reasons, broken
// invariants, the thread dump, and the deadlock and stall reports. Reports
// that may come from a signal handler use report.hpp's writer only.
#include <sys/mman.h>

#include <cstdlib>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <vector>

#include "invariant.hpp"
#include "report.hpp"
#include "scheduler.hpp"
#include "trace.hpp"
#include "wait_for.hpp"

namespace gt::detail {

const char* to_string(thread_state state) noexcept {
    switch (state) {
        case thread_state::ready: return "READY";
        case thread_state::running: return "RUNNING";
        case thread_state::finished: return "FINISHED";
        case thread_state::blocked: return "BLOCKED";
    }
    return "?";
}

const char* to_string(stop_reason why) noexcept {
    switch (why) {
        case stop_reason::yield: return "yield";
        case stop_reason::outranked: return "outranked";
        case stop_reason::slice_expired: return "time slice";
        case stop_reason::join: return "join";
        case stop_reason::sleep: return "sleep";
        case stop_reason::wait: return "wait";
        case stop_reason::finished: return "finished";
    }
    return "?";
}

const char* to_string(wait_reason reason) noexcept {
    switch (reason) {
        case wait_reason::none: return "-";
        case wait_reason::join: return "join";
        case wait_reason::sleep: return "sleep";
        case wait_reason::mutex: return "mutex";
        case wait_reason::condition_variable: return "condition variable";
        case wait_reason::shared_mutex: return "shared mutex";
        case wait_reason::barrier: return "barrier";
        case wait_reason::semaphore: return "semaphore";
        case wait_reason::call_once: return "call_once";
        case wait_reason::channel: return "channel";
        case wait_reason::readable: return "readable";
        case wait_reason::writable: return "writable";
        case wait_reason::timer: return "timer";
    }
    return "?";
}

const char* to_string(wake_reason reason) noexcept {
    switch (reason) {
        case wake_reason::none: return "-";
        case wake_reason::notified: return "notified";
        case wake_reason::handoff: return "handoff";
        case wake_reason::timeout: return "timeout";
    }
    return "?";
}

const char* to_string(on_list list) noexcept {
    switch (list) {
        case on_list::none: return "no list";
        case on_list::run_queue: return "a run queue";
        case on_list::timer_list: return "the timer heap";
    }
    return "?";
}

namespace {

[[noreturn]] void end_report(const char* file, int line) noexcept {
    report::text(" (");
    report::text(file);
    report::text(":");
    report::number(static_cast<std::uint64_t>(line));
    report::text(")\n");
    trace::flush();
    std::abort();
}

}  // namespace

void invariant_failed(const char* what, const char* file, int line) noexcept {
    report::text("gt: invariant broken: ");
    report::text(what);
    end_report(file, line);
}

void invariant_failed(const char* what, const control_block& t, const char* file, int line) noexcept {
    report::text("gt: invariant broken: ");
    report::text(what);
    report::text(": ");
    report::thread(t);
    report::text(" is ");
    report::text(to_string(t.state));
    report::text(", on ");
    report::text(to_string(t.list));
    end_report(file, line);
}

void wrong_state(const control_block& t, thread_state from, thread_state to, const char* file, int line,
                 const char* function) noexcept {
    report::text("gt: invariant broken: ");
    report::thread(t);
    report::text(" goes from ");
    report::text(to_string(from));
    report::text(" to ");
    report::text(to_string(to));
    report::text(", but it is ");
    report::text(to_string(t.state));
    report::text(" (in ");
    report::text(function);
    report::text(")");
    end_report(file, line);
}

std::string scheduler::name_of(const control_block& t) {
    return t.name.empty() ? "thread-" + std::to_string(t.id) : t.name;
}

namespace {

// Bytes of the stack that have ever been touched, from the lowest resident
// page (mincore(2)): pages below it were never faulted in. For a pooled
// stack this includes what earlier threads on the same stack touched.
std::size_t stack_high_water(const stack& s) {
    const std::size_t page = page_size();
    const std::size_t pages = s.size() / page;
    std::vector<unsigned char> resident(pages);
    if (pages == 0 || ::mincore(s.bottom(), s.size(), resident.data()) != 0) return 0;
    for (std::size_t i = 0; i < pages; ++i) {
        if (resident[i] & 1) return (pages - i) * page;
    }
    return 0;
}

}  // namespace

void scheduler::dump(std::ostream& out) const {
    // Fixed-width columns, each followed by a space, so that a long id or
    // name shifts the line instead of running into the next column.
    std::ostringstream text;
    text << std::left << std::setw(5) << "id" << ' ' << std::setw(17) << "name" << ' ' << std::setw(15) << "state"
         << ' ' << std::setw(9) << "priority" << ' ' << std::setw(11) << "stack" << ' ' << std::setw(11)
         << "high-water" << ' ' << std::setw(9) << "cpu ms" << ' ' << std::setw(9) << "switches" << ' '
         << "preemptions\n";
    const std::int64_t now = monotonic_now_ns();
    for (const control_block* t = all_threads_; t != nullptr; t = t->all_next) {
        std::string state = to_string(t->state);
        if (t->state == thread_state::blocked) state += std::string(" (") + to_string(t->waiting_for) + ")";
        text << std::left << std::setw(5) << t->id << ' ' << std::setw(17) << name_of(*t) << ' ' << std::setw(15)
             << state << ' ' << std::setw(9) << t->priority << ' ';
        if (t == &main_) {
            text << std::setw(11) << "OS stack" << ' ' << std::setw(11) << "-" << ' ';
        } else {
            text << std::setw(11) << t->stack.size() << ' ' << std::setw(11) << stack_high_water(t->stack) << ' ';
        }
        text << std::setw(9) << t->cpu_time_ns / 1'000'000 << ' ' << std::setw(9) << t->switches << ' '
             << t->stops[static_cast<std::size_t>(stop_reason::slice_expired)] << '\n';
        if (t->state == thread_state::blocked) text << "      waits on " << wait_text(*t, now) << '\n';
    }
    out << text.str();
}

void scheduler::report_deadlock() const noexcept {
    std::ostringstream text;
    text << "gt: deadlock: no thread can run again: every thread is BLOCKED and none is sleeping.\n";
    if (deterministic_.on) text << "gt: the deterministic mode was on, with seed " << deterministic_.seed << "\n";
    dump(text);
    std::fputs(text.str().c_str(), stderr);
    trace::flush();
    std::abort();
}

void scheduler::report_foreign_wake(const control_block& t) const noexcept {
    report::text("gt: ");
    report::thread(*running_);
    report::text(" would wake ");
    report::thread(t);
    report::text(", which belongs to another OS thread's scheduler: a gt synchronization object is shared "
                 "between OS threads, which phase 6 supports and this phase does not\n");
    trace::flush();
    std::abort();
}

void scheduler::report_stall(std::int64_t ran_ns, preempt::not_preemptible why) const noexcept {
    // The runtime's "reactor stalled" report (Seastar). Built from pieces
    // with write(2): this runs in a signal handler. The name is safe to read:
    // set_name changes it only inside a critical section, and ticks inside
    // one never get here.
    report::text("gt: stall: ");
    report::thread(*running_);
    report::text(" has run for ");
    report::number(static_cast<std::uint64_t>(ran_ns / 1'000'000));
    report::text(" ms without a switch while other threads wait, because ");
    report::text(preempt::to_string(why));
    report::text("; it is not stopped\n");
}

}  // namespace gt::detail
