// Thread-specific storage: one value per green thread, destroyed when the
// thread finishes — unlike C++ thread_local, which all green threads of an
// OS thread share. Semantics of boost::thread_specific_ptr.
#include <gt/thread.hpp>
#include <gt/thread_specific_ptr.hpp>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cooperative.hpp"

namespace {

// Why: the point of TLS: same variable, separate values, across yields.
TEST(ThreadSpecificPtr, EachThreadSeesOnlyItsOwnValue) {
    const cooperative_scheduling cooperative;  // asserts an exact order; threads push to one vector
    gt::thread_specific_ptr<std::string> name;
    std::vector<std::string> seen;
    auto worker = [&](const char* mine) {
        EXPECT_EQ(name.get(), nullptr) << "a new thread starts with no value";
        name.reset(new std::string(mine));
        gt::this_thread::yield();
        seen.push_back(*name);
    };
    gt::thread a(worker, "a"), b(worker, "b");
    a.join();
    b.join();
    EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(name.get(), nullptr) << "main never set one";
}

// Why: and the reason this is not thread_local: those are per OS thread.
TEST(ThreadSpecificPtr, CxxThreadLocalIsSharedByAllGreenThreadsOfAnOsThread) {
    const cooperative_scheduling cooperative;  // asserts b writes after a
    static thread_local int per_os_thread = 0;
    gt::thread a([] { per_os_thread = 1; });
    gt::thread b([] { per_os_thread = 2; });
    a.join();
    b.join();
    EXPECT_EQ(per_os_thread, 2) << "the last writer wins for everyone, main included";
    per_os_thread = 0;
}

struct counted {
    static inline int destroyed = 0;
    ~counted() { ++destroyed; }
};

TEST(ThreadSpecificPtr, ValuesAreDeletedWhenTheirThreadFinishes) {
    const cooperative_scheduling cooperative;  // b must outlive a; both increment one int
    counted::destroyed = 0;
    gt::thread_specific_ptr<counted> value;
    gt::thread a([&] { value.reset(new counted); });
    gt::thread b([&] {
        value.reset(new counted);
        gt::this_thread::yield();  // still alive when main returns from a.join()
    });
    a.join();
    EXPECT_EQ(counted::destroyed, 1);
    b.join();
    EXPECT_EQ(counted::destroyed, 2);
}

int cleaned_value = 0;
void custom_cleanup(int* p) {
    cleaned_value = *p;
    delete p;
}

TEST(ThreadSpecificPtr, CustomCleanupFunctionRunsOnTheThreadAfterCleanupHandlers) {
    cleaned_value = 0;
    gt::thread_specific_ptr<int> value(custom_cleanup);
    std::vector<std::string> order;
    gt::thread t([&] {
        value.reset(new int(42));
        gt::this_thread::cleanup_push([&] {
            order.push_back("handler");
            EXPECT_EQ(cleaned_value, 0) << "values are destroyed after the handlers";
        });
    });
    t.join();
    EXPECT_EQ(cleaned_value, 42);
    EXPECT_EQ(order, std::vector<std::string>{"handler"});
}

TEST(ThreadSpecificPtr, ValuesAreDestroyedAfterExit) {
    counted::destroyed = 0;
    gt::thread_specific_ptr<counted> value;
    gt::thread t([&] {
        value.reset(new counted);
        gt::this_thread::exit();
    });
    t.join();
    EXPECT_EQ(counted::destroyed, 1);
}

TEST(ThreadSpecificPtr, ResetDestroysTheOldValueAndReleaseGivesItUp) {
    counted::destroyed = 0;
    gt::thread_specific_ptr<counted> value;
    gt::thread t([&] {
        value.reset(new counted);
        value.reset(new counted);  // the first is destroyed
        EXPECT_EQ(counted::destroyed, 1);
        counted* kept = value.release();
        EXPECT_EQ(value.get(), nullptr);
        delete kept;
        EXPECT_EQ(counted::destroyed, 2);
    });
    t.join();
    EXPECT_EQ(counted::destroyed, 2) << "nothing left to destroy at exit";
}

TEST(ThreadSpecificPtr, NullCleanupFunctionMeansTheRuntimeNeverDestroysValues) {
    static int storage = 7;
    gt::thread_specific_ptr<int> value(nullptr);
    gt::thread t([&] { value.reset(&storage); });
    t.join();
    EXPECT_EQ(storage, 7);
}

TEST(ThreadSpecificPtr, DestroyingThePtrResetsOnlyTheCallingThreadsValue) {
    const cooperative_scheduling cooperative;  // t must use value before main deletes it
    counted::destroyed = 0;
    auto* value = new gt::thread_specific_ptr<counted>;
    gt::thread t([&] {
        value->reset(new counted);
        gt::this_thread::yield();  // main destroys the ptr meanwhile
    });
    gt::this_thread::yield();
    value->reset(new counted);
    delete value;  // main's value dies now
    EXPECT_EQ(counted::destroyed, 1);
    t.join();  // t's value still dies with t
    EXPECT_EQ(counted::destroyed, 2);
}

// Why: a destructor that uses another thread-specific value (a per-thread
// log, say) must still find it: values are destroyed one at a time.
TEST(ThreadSpecificPtr, ADestructorCanStillUseTheThreadsOtherValues) {
    static gt::thread_specific_ptr<std::string> log;
    static std::string seen;
    struct logs_on_destruction {
        ~logs_on_destruction() {
            if (log.get() != nullptr) seen = *log;
        }
    };
    static gt::thread_specific_ptr<logs_on_destruction> object;
    seen.clear();
    gt::thread t([] {
        object.reset(new logs_on_destruction);  // set first, destroyed first
        log.reset(new std::string("still here"));
    });
    t.join();
    EXPECT_EQ(seen, "still here");
}

TEST(ThreadSpecificPtr, ArrowAndStarReachTheValue) {
    gt::thread_specific_ptr<std::string> text;
    gt::thread t([&] {
        text.reset(new std::string("abc"));
        EXPECT_EQ(text->size(), 3u);
        EXPECT_EQ(*text, "abc");
    });
    t.join();
}

}  // namespace
