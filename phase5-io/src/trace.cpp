#include "trace.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "scheduler.hpp"
#include "sync_report.hpp"
#include "wait_for.hpp"

namespace gt::detail::trace {

bool enabled = false;

namespace {

// One writer for the whole process: every OS thread's scheduler appends to
// the same file, so writes are serialised by a mutex (tracing is a
// debugging aid; its cost only matters when it is on).
// It is held with ticks deferred (locked_without_ticks, scheduler.hpp): a
// tick must not switch to a thread whose next trace event would wait for
// the lock this one holds, on the same OS thread.
struct writer {
    std::mutex lock;
    std::FILE* file = nullptr;
    std::string pattern;  // GT_TRACE as given, for a forked child's own file
    std::int64_t origin_ns = 0;  // timestamps are relative to the first event
    int pid = 0;
    bool first = true;

    void write(nlohmann::json event) {
        event["pid"] = pid;
        // Serialise before writing anything, so a failure cannot leave half
        // an event; a thread name that is not UTF-8 gets U+FFFD, not an error.
        const std::string text = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        const locked_without_ticks guard(lock);
        if (file == nullptr) return;
        std::fputs(first ? "[\n" : ",\n", file);
        first = false;
        std::fputs(text.c_str(), file);
    }

    // Whole events on disk before the process dies (deadlock report,
    // broken invariant): the reader then only misses the closing bracket.
    void flush() {
        const locked_without_ticks guard(lock);
        if (file != nullptr) std::fflush(file);
    }

    void close() {
        const locked_without_ticks guard(lock);
        if (file == nullptr) return;
        std::fputs(first ? "[]\n" : "\n]\n", file);
        std::fclose(file);
        file = nullptr;
    }
};

writer& the_writer() {
    static writer* w = new writer;  // never destroyed: threads may trace until exit
    return *w;
}

// GT_TRACE's value with each "%p" replaced by the process id.
std::string expand(const std::string& pattern) {
    std::string path = pattern;
    for (std::size_t at; (at = path.find("%p")) != std::string::npos;) path.replace(at, 2, std::to_string(::getpid()));
    return path;
}

// In a forked child (pthread_atfork): drop the parent's file without writing
// to it; trace into a file of its own if GT_TRACE has %p, else stop tracing.
void restart_in_child() {
    writer& w = the_writer();
    w.lock.unlock();
    if (w.file != nullptr) std::fclose(w.file);  // its buffer was flushed before the fork: nothing is written
    w.file = nullptr;
    w.first = true;
    w.pid = static_cast<int>(::getpid());
    if (w.pattern.find("%p") != std::string::npos) w.file = std::fopen(expand(w.pattern).c_str(), "w");
    enabled = w.file != nullptr;
}

// Trace timestamps are microseconds (fractions allowed).
// A thread BLOCKED on a descriptor (gt::io, and the interposed poll,
// select and epoll_wait, which wait on an epoll descriptor).
bool waits_on_descriptor(const control_block& t) noexcept {
    return (t.waiting_for == wait_reason::readable || t.waiting_for == wait_reason::writable) && t.waiting_fd >= 0;
}

double micros(std::int64_t ns) { return static_cast<double>(ns - the_writer().origin_ns) / 1000.0; }

void instant(const control_block& t, const char* name, nlohmann::json args = nlohmann::json::object()) {
    args["state"] = to_string(t.state);
    the_writer().write({{"name", name}, {"ph", "i"}, {"s", "t"}, {"tid", t.id},
                        {"ts", micros(monotonic_now_ns())}, {"args", std::move(args)}});
}

}  // namespace

void start_if_requested() noexcept {
    static std::once_flag once;
    std::call_once(once, [] {
        const char* value = std::getenv("GT_TRACE");
        if (value == nullptr || *value == '\0') return;
        // "%p" in the name becomes the process id, so that programs that
        // start other traced programs do not all write to one file.
        std::string path = expand(value);
        writer& w = the_writer();
        w.pattern = value;
        w.file = std::fopen(path.c_str(), "w");
        if (w.file == nullptr) {
            std::fprintf(stderr, "gt: GT_TRACE=%s: cannot open %s for writing (%s); tracing is off\n", value,
                         path.c_str(), std::strerror(errno));
            return;
        }
        w.origin_ns = monotonic_now_ns();
        w.pid = static_cast<int>(::getpid());
        std::atexit([] { the_writer().close(); });
        // fork(): no other OS thread may hold the lock across it, nothing
        // buffered may be written twice, and the child must not append to
        // the parent's file (it gets its own when the name has %p).
        ::pthread_atfork([] { the_writer().lock.lock(); if (the_writer().file) std::fflush(the_writer().file); },
                         [] { the_writer().lock.unlock(); }, [] { restart_in_child(); });
        enabled = true;
        w.write({{"name", "thread_name"}, {"ph", "M"}, {"tid", 0}, {"args", {{"name", "idle (no thread READY)"}}}});
    });
}

void flush() noexcept {
    if (enabled) the_writer().flush();
}

void named(const control_block& t) noexcept {
    if (!enabled) return;
    try {
        the_writer().write({{"name", "thread_name"}, {"ph", "M"}, {"tid", t.id},
                            {"args", {{"name", scheduler::name_of(t) + " (" + std::to_string(t.id) + ")"}}}});
        the_writer().write({{"name", "thread_sort_index"}, {"ph", "M"}, {"tid", t.id},
                            {"args", {{"sort_index", t.id}}}});
    } catch (...) {  // out of memory while tracing: lose the event, not the program
    }
}

void created(const control_block& t) noexcept {
    if (!enabled) return;
    named(t);
    try {
        instant(t, "create", {{"priority", t.priority}});
    } catch (...) {
    }
}

void ran(const control_block& t, std::int64_t from_ns, std::int64_t to_ns) noexcept {
    if (!enabled) return;
    try {
        const char* ended = to_string(t.stopped_for);
        the_writer().write({{"name", "run"}, {"ph", "X"}, {"tid", t.id}, {"ts", micros(from_ns)},
                            {"dur", static_cast<double>(to_ns - from_ns) / 1000.0},
                            {"args", {{"priority", t.priority}, {"ended by", ended}, {"switches", t.switches},
                                      {"preemptions", t.stops[static_cast<std::size_t>(stop_reason::slice_expired)]}, {"cpu time ms", t.cpu_time_ns / 1e6}}}});
    } catch (...) {
    }
}

void blocked(const control_block& t) noexcept {
    if (!enabled) return;
    try {
        nlohmann::json args{{"waiting for", to_string(t.waiting_for)}};
        if (waits_on_descriptor(t)) {
            args["fd"] = t.waiting_fd;  // the wait queue's address would say nothing
            args["object"] = "descriptor " + std::to_string(t.waiting_fd);
        } else if (t.waiting_on != nullptr) {
            args["object"] = object_text(*t.waiting_on);
            if (const control_block* owner = owner_of(*t.waiting_on)) args["owner"] = describe(*owner);
        } else if (t.joining != nullptr) {
            args["object"] = describe(*t.joining);
        }
        instant(t, "block", std::move(args));
    } catch (...) {
    }
}

void woken(const control_block& t) noexcept {
    if (!enabled) return;
    try {
        nlohmann::json args{{"waited for", to_string(t.waiting_for)}};
        if (waits_on_descriptor(t)) args["fd"] = t.waiting_fd;
        if (t.waiting_for != wait_reason::join && t.waiting_for != wait_reason::sleep) {
            args["woken by"] = to_string(t.woke_by);  // notified, handoff or timeout
        }
        instant(t, "wake", std::move(args));
    } catch (...) {
    }
}

void finished(const control_block& t) noexcept {
    if (!enabled) return;
    try {
        instant(t, "finish");
    } catch (...) {
    }
}

void priority_changed(const control_block& t, int from, int to) noexcept {
    if (!enabled) return;
    try {
        instant(t, "priority", {{"from", from}, {"to", to}});
    } catch (...) {
    }
}

void idle(std::int64_t from_ns, std::int64_t to_ns) noexcept {
    if (!enabled) return;
    try {
        the_writer().write({{"name", "idle"}, {"ph", "X"}, {"tid", 0}, {"ts", micros(from_ns)},
                            {"dur", static_cast<double>(to_ns - from_ns) / 1000.0}});
    } catch (...) {
    }
}

}  // namespace gt::detail::trace
