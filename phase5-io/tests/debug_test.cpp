// Seeing inside the runtime: names and ids, the dump of all threads, and
// the Chrome trace-event file written when GT_TRACE is set.
#include <gt/debug.hpp>
#include <gt/thread.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cooperative.hpp"

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

TEST(Names, MainIsNamedMainAndOthersGetADefaultFromTheirId) {
    EXPECT_EQ(gt::this_thread::get_name(), "main");
    std::string inside;
    gt::thread t([&] { inside = gt::this_thread::get_name(); });
    std::ostringstream id;
    id << t.get_id();
    EXPECT_EQ(t.get_name(), "thread-" + id.str());
    t.join();
    EXPECT_EQ(inside, "thread-" + id.str());
}

TEST(Names, NamesCanBeGivenAtCreationAndChangedLater) {
    const cooperative_scheduling cooperative;  // asserts t has not run (renamed itself) before join()
    std::string before, after;
    gt::thread t({.name = "loader"}, [&] {
        before = gt::this_thread::get_name();
        gt::this_thread::set_name("parser");
        after = gt::this_thread::get_name();
    });
    EXPECT_EQ(t.get_name(), "loader");
    t.join();
    EXPECT_EQ(before, "loader");
    EXPECT_EQ(after, "parser");
}

// Why: the dump is what a user reads when a program hangs; it must show
// every thread with the state and numbers that explain what it is doing.
// The dump counts only if taken before the sleeper's deadline (a loaded
// machine may stall the OS thread for longer); else it is taken again
// with a ten times longer sleep.
TEST(Dump, ListsEveryThreadWithIdNameStatePriorityAndStack) {
    const cooperative_scheduling cooperative;  // ready-one must finish within main's one yield
    std::string dump;
    std::ostringstream sid, rid;
    bool before_its_deadline = false;
    for (const auto nap : {20ms, 200ms, 2000ms}) {
        const auto start = steady::now();
        gt::thread sleeper({.stack_size = 64 * 1024, .priority = 20, .name = "sleeper"},
                           [nap] { gt::this_thread::sleep_for(nap); });
        gt::thread ready({.name = "ready-one"}, [] {});
        gt::this_thread::yield();  // sleeper ran at once (higher) and sleeps; ready-one finishes
        std::ostringstream out;
        gt::debug::dump_threads(out);
        dump = out.str();
        before_its_deadline = steady::now() < start + nap;
        sid.str("");
        rid.str("");
        sid << sleeper.get_id();
        rid << ready.get_id();
        sleeper.join();
        ready.join();
        if (before_its_deadline) break;
    }
    ASSERT_TRUE(before_its_deadline) << "the OS thread stalled for longer than two seconds three times";
    EXPECT_EQ(dump.rfind("id    name              state           priority  stack       high-water  cpu ms    "
                         "switches  preemptions\n",
                         0),
              0u)
        << dump;
    EXPECT_TRUE(std::regex_search(dump, std::regex("\\n1? *[0-9]+ +main +RUNNING +16 +OS stack +-")))
        << dump;
    EXPECT_TRUE(std::regex_search(dump, std::regex(sid.str() + " +sleeper +BLOCKED \\(sleep\\) +20 +65536 +[1-9][0-9]*")))
        << dump;
    EXPECT_TRUE(std::regex_search(dump, std::regex(rid.str() + " +ready-one +FINISHED +16 +262144 +[1-9][0-9]*")))
        << dump;
}

bool in_trace_child() { return std::getenv("GT_TRACE_TEST_CHILD") != nullptr; }

// Runs in a child process started by the Trace tests, with GT_TRACE set:
// the trace file is opened when the process's first scheduler starts.
TEST(TraceChild, Scenario) {
    if (!in_trace_child()) GTEST_SKIP() << "runs only as the Trace tests' child process";
    gt::thread worker({.priority = 20, .name = "worker"}, [] {
        gt::this_thread::sleep_for(2ms);
        gt::this_thread::set_priority(18);
    });
    gt::thread odd({.name = "not UTF-8: \xff\xfe"}, [] {});  // must not spoil the JSON
    worker.join();
    odd.join();
    // A fork: the child must neither deadlock on the trace nor write into
    // (or duplicate buffered events of) the parent's file.
    const pid_t child = ::fork();
    if (child == 0) {
        gt::thread t([] { gt::this_thread::yield(); });
        t.join();
        std::_Exit(0);
    }
    int status = -1;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// Runs in a child process started by Trace.EveryStretch..., with GT_TRACE:
// sleeps so short that the deadline often passes while the trace event of
// the blocking is being written, so the sleep ends at once, without idling.
TEST(TraceChild, ShortSleeps) {
    if (!in_trace_child()) GTEST_SKIP() << "runs only as the Trace tests' child process";
    gt::thread napper({.name = "napper"}, [] {
        for (int i = 0; i < 200; ++i) gt::this_thread::sleep_for(std::chrono::microseconds(3));
    });
    napper.join();
}

nlohmann::json run_traced_child(const char* scenario = "TraceChild.Scenario") {
    char self[PATH_MAX] = {};
    if (::readlink("/proc/self/exe", self, sizeof self - 1) <= 0) return {};
    char path[] = "/tmp/gt-trace-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) return {};
    ::close(fd);
    const std::string command = std::string("GT_TRACE=") + path + " GT_TRACE_TEST_CHILD=1 '" + self +
                                "' --gtest_filter=" + scenario + " >/dev/null 2>&1";
    const int status = std::system(command.c_str());
    EXPECT_EQ(status, 0) << command;
    std::ifstream in(path);
    nlohmann::json trace = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    std::remove(path);
    return trace;
}

// Why: the trace is how a reader sees scheduling; it must be valid Chrome
// trace-event JSON with a track per thread and the events that happened.
TEST(Trace, GtTraceWritesChromeTraceEventsForEachThread) {
    if (in_trace_child()) GTEST_SKIP();
    const nlohmann::json trace = run_traced_child();
    ASSERT_TRUE(trace.is_array()) << "not a JSON array: " << trace.dump().substr(0, 200);
    std::map<std::uint64_t, std::string> names;
    std::multiset<std::string> worker_events;
    std::uint64_t worker_tid = 0;
    for (const auto& e : trace) {
        if (e["ph"] == "M" && e["name"] == "thread_name") {
            names[e["tid"].get<std::uint64_t>()] = e["args"]["name"].get<std::string>();
            if (e["args"]["name"].get<std::string>().rfind("worker", 0) == 0) worker_tid = e["tid"];
        }
    }
    ASSERT_NE(worker_tid, 0u) << trace.dump(1);
    int worker_runs = 0;
    for (const auto& e : trace) {
        if (e["tid"] != worker_tid) continue;
        if (e["ph"] == "X" && e["name"] == "run") {
            ++worker_runs;
            EXPECT_GE(e["dur"].get<double>(), 0.0);
        }
        if (e["ph"] == "i") worker_events.insert(e["name"].get<std::string>());
    }
    EXPECT_GE(worker_runs, 2) << "before and after its sleep";
    for (const char* name : {"create", "block", "wake", "priority", "finish"}) {
        EXPECT_EQ(worker_events.count(name), 1u) << name << " in " << trace.dump(1);
    }
    bool main_named = false;
    for (const auto& [tid, name] : names) main_named |= name.rfind("main", 0) == 0;
    EXPECT_TRUE(main_named);
}

// Why (regression): a sleep whose deadline passed before the OS thread
// could idle ended without its stretch on the CPU being recorded, so the
// trace lost "run" events. Every block ends a run; the last run ends with
// the thread.
TEST(Trace, EveryStretchOnTheCpuIsRecordedEvenWhenASleepEndsAtOnce) {
    if (in_trace_child()) GTEST_SKIP();
    const nlohmann::json trace = run_traced_child("TraceChild.ShortSleeps");
    ASSERT_TRUE(trace.is_array()) << "not a JSON array: " << trace.dump().substr(0, 200);
    std::uint64_t napper = 0;
    for (const auto& e : trace) {
        if (e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"].get<std::string>().rfind("napper", 0) == 0) {
            napper = e["tid"];
        }
    }
    ASSERT_NE(napper, 0u);
    int ended_by_sleep = 0, ended_by_finish = 0, blocks = 0;
    for (const auto& e : trace) {
        if (e["tid"] != napper) continue;
        if (e["ph"] == "X" && e["name"] == "run") {
            ended_by_sleep += e["args"]["ended by"] == "sleep";
            ended_by_finish += e["args"]["ended by"] == "finished";
        }
        blocks += e["ph"] == "i" && e["name"] == "block";
    }
    EXPECT_GT(blocks, 0);
    EXPECT_EQ(ended_by_sleep, blocks);
    EXPECT_EQ(ended_by_finish, 1);
}

}  // namespace
