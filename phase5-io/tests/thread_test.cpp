// gt::thread behaves like std::thread: construction from any callable with
// decay-copied arguments, move-only ownership, join/joinable/get_id, ids
// that compare, hash and print, and the same errors for the same misuse.
#include <gt/thread.hpp>

#include <csignal>
#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <unordered_set>

#include <gtest/gtest.h>

#include "cooperative.hpp"

namespace {

static_assert(!std::is_copy_constructible_v<gt::thread>);
static_assert(!std::is_copy_assignable_v<gt::thread>);
static_assert(std::is_nothrow_move_constructible_v<gt::thread>);
static_assert(std::is_nothrow_move_assignable_v<gt::thread>);
static_assert(std::is_nothrow_default_constructible_v<gt::thread>);

TEST(Thread, DefaultConstructedIsNotJoinableAndHasNoId) {
    gt::thread t;
    EXPECT_FALSE(t.joinable());
    EXPECT_EQ(t.get_id(), gt::thread::id());
}

TEST(Thread, JoinRunsTheFunctionToCompletion) {
    int value = 0;
    gt::thread t([&] {
        gt::this_thread::yield();
        value = 42;
    });
    EXPECT_TRUE(t.joinable());
    t.join();
    EXPECT_FALSE(t.joinable());
    EXPECT_EQ(value, 42);
}

TEST(Thread, GetIdMatchesThisThreadGetIdInsideTheThread) {
    gt::thread::id inside;
    gt::thread t([&] { inside = gt::this_thread::get_id(); });
    const gt::thread::id outside = t.get_id();
    t.join();
    EXPECT_EQ(inside, outside);
    EXPECT_NE(inside, gt::this_thread::get_id());
    EXPECT_NE(inside, gt::thread::id());
}

TEST(Thread, IdsAreUniqueHashableOrderedAndPrintable) {
    gt::thread a([] {}), b([] {});
    const gt::thread::id ia = a.get_id(), ib = b.get_id(), main_id = gt::this_thread::get_id();
    a.join();
    b.join();
    std::unordered_set<gt::thread::id> ids{ia, ib, main_id};
    EXPECT_EQ(ids.size(), 3u);
    EXPECT_NE(std::hash<gt::thread::id>{}(ia), std::hash<gt::thread::id>{}(ib));
    EXPECT_LT(ia, ib);  // allocated in creation order
    std::ostringstream out;
    out << ia;
    EXPECT_FALSE(out.str().empty());
    EXPECT_EQ(out.str().find_first_not_of("0123456789"), std::string::npos) << out.str();
    std::ostringstream none;
    none << gt::thread::id();
    EXPECT_EQ(none.str(), "thread::id of a non-executing thread");
}

TEST(Thread, MoveTransfersOwnership) {
    int runs = 0;
    gt::thread a([&] { ++runs; });
    const auto id = a.get_id();
    gt::thread b(std::move(a));
    EXPECT_FALSE(a.joinable());
    EXPECT_EQ(b.get_id(), id);
    gt::thread c;
    c = std::move(b);
    EXPECT_EQ(c.get_id(), id);
    swap(b, c);
    EXPECT_EQ(b.get_id(), id);
    b.join();
    EXPECT_EQ(runs, 1);
}

void add_to(int& target, int amount) { target += amount; }

// Why: std::thread decay-copies its arguments; a reference parameter sees
// the copy unless the caller wraps the argument in std::ref.
TEST(Thread, ArgumentsAreDecayCopiedUnlessWrappedInStdRef) {
    int counter = 0;
    gt::thread t(add_to, std::ref(counter), 5);
    t.join();
    EXPECT_EQ(counter, 5);

    std::string text = "original";
    gt::thread u([](std::string s) { s += " changed"; }, text);
    u.join();
    EXPECT_EQ(text, "original");
}

TEST(Thread, ArgumentsAreCopiedWhenTheThreadIsCreated) {
    std::string text = "before";
    std::string seen;
    gt::thread t([&seen](const std::string& s) { seen = s; }, text);
    text = "after";  // the thread has not run yet, but it owns a copy
    t.join();
    EXPECT_EQ(seen, "before");
}

TEST(Thread, MoveOnlyArgumentsAndCallablesWork) {
    auto box = std::make_unique<int>(7);
    int seen = 0;
    gt::thread t([&seen](std::unique_ptr<int> p) { seen = *p; }, std::move(box));
    t.join();
    EXPECT_EQ(seen, 7);
    EXPECT_EQ(box, nullptr);

    auto owned = std::make_unique<int>(9);
    gt::thread u([p = std::move(owned), &seen] { seen = *p; });
    u.join();
    EXPECT_EQ(seen, 9);
}

TEST(Thread, MemberFunctionsCanBeThreadFunctions) {
    struct counter {
        int n = 0;
        void add(int k) { n += k; }
    } c;
    gt::thread t(&counter::add, &c, 3);
    t.join();
    EXPECT_EQ(c.n, 3);
}

// Why: std::thread destroys its copies of the callable and arguments on
// the new thread, after the call returns.
TEST(Thread, CopiesAreDestroyedOnTheNewThread) {
    gt::thread::id destroyed_on;
    struct probe {
        gt::thread::id* out;
        explicit probe(gt::thread::id* o) : out(o) {}
        probe(probe&& other) noexcept : out(std::exchange(other.out, nullptr)) {}
        ~probe() {
            if (out) *out = gt::this_thread::get_id();
        }
        void operator()() const {}
    };
    gt::thread t{probe(&destroyed_on)};
    const auto id = t.get_id();
    t.join();
    EXPECT_EQ(destroyed_on, id);
}

TEST(ThreadMisuse, JoiningANonJoinableThreadThrowsInvalidArgument) {
    gt::thread t;
    try {
        t.join();
        FAIL() << "expected std::system_error";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("not joinable"), std::string::npos) << e.what();
    }
    gt::thread u([] {});
    u.join();
    EXPECT_THROW(u.join(), std::system_error) << "joining twice";
}

// Why: std::thread reports joining oneself as resource_deadlock_would_occur.
TEST(ThreadMisuse, JoiningItselfThrowsResourceDeadlockWouldOccur) {
    const cooperative_scheduling cooperative;  // the thread must join itself before main does
    gt::thread self;
    std::error_code code;
    std::string what;
    self = gt::thread([&] {
        try {
            self.join();
        } catch (const std::system_error& e) {
            code = e.code();
            what = e.what();
        }
    });
    const std::string id = [&] {
        std::ostringstream out;
        out << self.get_id();
        return out.str();
    }();
    gt::this_thread::yield();  // the thread tries to join itself before main joins it
    self.join();
    EXPECT_EQ(code, std::errc::resource_deadlock_would_occur);
    EXPECT_NE(what.find("thread " + id + " cannot join itself"), std::string::npos) << what;
}

TEST(ThreadMisuse, JoiningFromAnotherOsThreadThrowsOperationNotPermitted) {
    gt::thread t([] {});
    std::error_code code;
    std::thread os_thread([&] {
        try {
            t.join();
        } catch (const std::system_error& e) {
            code = e.code();
        }
    });
    os_thread.join();
    EXPECT_EQ(code, std::errc::operation_not_permitted);
    t.join();  // its own OS thread can still join it
}

TEST(ThreadMisuseDeathTest, DestroyingAJoinableThreadTerminatesNamingIt) {
    EXPECT_DEATH(
        {
            gt::thread t([] {});
            const gt::thread::id id = t.get_id();
            (void)id;
        },
        "gt::thread [0-9]+ destroyed while joinable");
}

TEST(ThreadMisuseDeathTest, AssigningToAJoinableThreadTerminatesNamingIt) {
    EXPECT_DEATH(
        {
            gt::thread t([] {});
            gt::thread u([] {});
            t = std::move(u);
        },
        "gt::thread [0-9]+ was assigned to while joinable");
}

TEST(ThreadMisuseDeathTest, ExceptionEscapingAThreadTerminatesNamingIt) {
    EXPECT_DEATH(
        {
            gt::thread t([] { throw std::runtime_error("boom"); });
            t.join();
        },
        "std::terminate in gt::thread [0-9]+, with an exception active.*\n.*terminate called after "
        "throwing an instance of 'std::runtime_error'\n.*boom");
}

struct exits_if_unwound {
    ~exits_if_unwound() { std::_Exit(7); }
};

// Why: std::thread terminates at the throw, without unwinding, so the
// throw site is still on the stack for a debugger; a catch-all in the
// runtime would unwind first and lose it.
TEST(ThreadMisuseDeathTest, ExceptionEscapingAThreadDoesNotUnwindItsStack) {
    EXPECT_EXIT(
        {
            gt::thread t([] {
                exits_if_unwound guard;
                throw std::runtime_error("boom");
            });
            t.join();
        },
        testing::KilledBySignal(SIGABRT), "std::terminate in gt::thread [0-9]+");
}

}  // namespace
