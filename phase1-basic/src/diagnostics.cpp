// What the runtime says about itself: names of states and broken
// invariants, written with report.hpp's writer only.
#include <cstdlib>

#include "invariant.hpp"
#include "report.hpp"
#include "scheduler.hpp"

namespace gt::detail {

const char* to_string(thread_state state) noexcept {
    switch (state) {
        case thread_state::ready: return "READY";
        case thread_state::running: return "RUNNING";
        case thread_state::finished: return "FINISHED";
    }
    return "?";
}

const char* to_string(on_list list) noexcept {
    switch (list) {
        case on_list::none: return "no list";
        case on_list::run_queue: return "a run queue";
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

}  // namespace gt::detail
