// gt::shared_mutex and gt::shared_timed_mutex: Go's RWMutex semantics (a
// writer's unlock admits every waiting reader; a waiting writer is not
// starved by new readers), exclusion under preemption, timed locks, the
// std lock types and condition_variable_any over them, and misuse.
#include <gt/condition_variable.hpp>
#include <gt/shared_mutex.hpp>
#include <gt/thread.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "blocked_on.hpp"
#include "preemption_for_test.hpp"

using namespace std::chrono_literals;

// Why: Go's rule (tinygo-org/tinygo#2407): the readers that queued behind
// a writer all get in when it unlocks, together, not one by one; the
// writer that queued after them waits until every one has left, and a
// reader that comes while that writer waits waits for the writer.
TEST(SharedMutex, AWritersUnlockAdmitsEveryWaitingReaderAndTheNextWriterWaitsForThem) {
    const preemption_for_test preemption(0us);  // exact order: cooperative
    gt::shared_mutex m;
    constexpr int readers = 5;
    int inside = 0, most_inside = 0, readers_done = 0;
    int inside_when_writer_got_it = -1, done_when_writer_got_it = -1;
    std::string order;
    m.lock();
    std::vector<gt::thread> threads;
    for (int i = 0; i < readers; ++i) {
        threads.emplace_back([&] {
            const std::shared_lock<gt::shared_mutex> hold(m);
            most_inside = std::max(most_inside, ++inside);
            // Stay until every reader is inside: possible only if they were
            // admitted together (bounded, so that a broken lock fails).
            for (int k = 0; k < 100'000 && inside < readers; ++k) gt::this_thread::yield();
            --inside;
            ++readers_done;
        });
    }
    ASSERT_TRUE(wait_until_blocked_on("shared mutex", readers));
    threads.emplace_back([&] {
        const std::unique_lock<gt::shared_mutex> hold(m);
        inside_when_writer_got_it = inside;
        done_when_writer_got_it = readers_done;
        order += 'W';
    });
    ASSERT_TRUE(wait_until_blocked_on("shared mutex", readers + 1));
    m.unlock();
    EXPECT_FALSE(m.try_lock_shared()) << "a writer waits: a new reader must wait too";
    threads.emplace_back([&] {
        const std::shared_lock<gt::shared_mutex> hold(m);
        order += 'R';
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(most_inside, readers);
    EXPECT_EQ(inside_when_writer_got_it, 0);
    EXPECT_EQ(done_when_writer_got_it, readers);
    EXPECT_EQ(order, "WR");
}

// Why: with reader preference, overlapping readers keep the lock shared
// forever and a writer never gets in. Cooperative, so exact: once the
// writer asks, no reader gets in until the writer has had it.
TEST(SharedMutex, AWaitingWriterIsNotStarvedByAStreamOfReaders) {
    const preemption_for_test preemption(0us);
    gt::shared_mutex m;
    bool writer_asked = false, writer_done = false;
    long reads = 0, reads_while_writer_waits = 0;
    std::vector<gt::thread> readers;
    for (int i = 0; i < 4; ++i) {
        readers.emplace_back([&] {
            // Each holds the lock across a yield, so the readers overlap.
            for (long k = 0; k < 200'000 && !writer_done; ++k) {
                m.lock_shared();
                ++reads;
                if (writer_asked && !writer_done) ++reads_while_writer_waits;
                gt::this_thread::yield();
                m.unlock_shared();
                gt::this_thread::yield();
            }
        });
    }
    gt::thread writer([&] {
        while (reads < 100) gt::this_thread::yield();  // the stream is flowing
        writer_asked = true;
        m.lock();
        writer_done = true;
        m.unlock();
    });
    writer.join();
    for (auto& t : readers) t.join();
    EXPECT_TRUE(writer_done);
    EXPECT_EQ(reads_while_writer_waits, 0);
}

// Why: the same under preemption: a writer asking 200 times among four
// readers that always overlap gets the lock every time.
TEST(SharedMutex, WritersGetInAmongOverlappingReadersUnderPreemption) {
    const preemption_for_test preemption(100us);
    gt::shared_mutex m;
    std::atomic<bool> writer_done{false};
    std::atomic<long> reads{0};
    std::vector<gt::thread> readers;
    for (int i = 0; i < 4; ++i) {
        readers.emplace_back([&] {
            for (long k = 0; k < 5'000'000 && !writer_done.load(); ++k) {
                const std::shared_lock<gt::shared_mutex> hold(m);
                ++reads;
                gt::this_thread::yield();
            }
        });
    }
    int writes = 0;
    gt::thread writer([&] {
        while (reads.load() < 1000) gt::this_thread::yield();  // the readers overlap by now
        for (int i = 0; i < 200; ++i) {
            const std::lock_guard<gt::shared_mutex> hold(m);
            ++writes;
        }
        writer_done = true;
    });
    writer.join();
    for (auto& t : readers) t.join();
    EXPECT_EQ(writes, 200);
    EXPECT_LT(reads.load(), 4 * 5'000'000L) << "the readers ran out of rounds before the writer finished";
}

// Why: the point of the lock. Writers change two counters with a tick-sized
// gap between; a reader must never see them differ, a writer never share
// the lock, and no increment may be lost.
TEST(SharedMutex, ReadersAndWritersExcludeEachOtherUnderPreemption) {
    const preemption_for_test preemption(100us);
    gt::shared_mutex m;
    volatile long a = 0, b = 0;
    std::atomic<int> readers_inside{0}, writers_inside{0};
    std::atomic<long> torn{0}, overlaps{0}, reads{0};
    constexpr int per_thread = 20'000;
    std::vector<gt::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            for (int k = 0; k < per_thread; ++k) {
                const std::lock_guard<gt::shared_mutex> hold(m);
                if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) ++overlaps;
                a = a + 1;
                for (int spin = 0; spin < 20; ++spin) std::atomic_signal_fence(std::memory_order_seq_cst);
                b = b + 1;
                writers_inside.fetch_sub(1);
            }
        });
        threads.emplace_back([&] {
            for (int k = 0; k < per_thread; ++k) {
                const std::shared_lock<gt::shared_mutex> hold(m);
                readers_inside.fetch_add(1);
                if (writers_inside.load() != 0) ++overlaps;
                if (a != b) ++torn;
                ++reads;
                readers_inside.fetch_sub(1);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(a, 4L * per_thread);
    EXPECT_EQ(b, 4L * per_thread);
    EXPECT_EQ(reads.load(), 4L * per_thread);
    EXPECT_EQ(torn.load(), 0);
    EXPECT_EQ(overlaps.load(), 0);
}

// Why: std::shared_lock over a gt::shared_mutex with
// gt::condition_variable_any is how readers wait for a state change.
TEST(SharedMutex, ReadersWaitOnAConditionVariableAnyWithASharedLock) {
    const preemption_for_test preemption(100us);
    gt::shared_mutex m;
    gt::condition_variable_any cv;
    bool ready = false;
    std::atomic<int> woke{0};
    std::vector<gt::thread> readers;
    for (int i = 0; i < 3; ++i) {
        readers.emplace_back([&] {
            std::shared_lock<gt::shared_mutex> hold(m);
            cv.wait(hold, [&] { return ready; });
            EXPECT_TRUE(hold.owns_lock());
            ++woke;
        });
    }
    ASSERT_TRUE(wait_until_blocked_on("condition variable", 3));
    {
        const std::unique_lock<gt::shared_mutex> hold(m);
        ready = true;
    }
    cv.notify_all();
    for (auto& t : readers) t.join();
    EXPECT_EQ(woke.load(), 3);
}

// Why: std::shared_mutex leaves a relock by its exclusive owner undefined;
// we say so with the error code std allows instead of waiting forever.
TEST(SharedMutex, TheExclusiveOwnerLockingAgainThrowsResourceDeadlockWouldOccur) {
    gt::shared_mutex m;
    m.lock();
    for (int shared = 0; shared < 2; ++shared) {
        try {
            shared != 0 ? m.lock_shared() : m.lock();
            FAIL() << "no exception";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), std::errc::resource_deadlock_would_occur);
            EXPECT_NE(std::string(e.what()).find("exclusively already"), std::string::npos) << e.what();
        }
    }
    m.unlock();
    EXPECT_TRUE(m.try_lock_shared());
    EXPECT_TRUE(m.try_lock_shared());
    EXPECT_FALSE(m.try_lock());
    m.unlock_shared();
    m.unlock_shared();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
}

// Why: timed locks give up at their deadline, on the timer list, and
// leave no flag behind.
TEST(SharedTimedMutex, TimedLocksTimeOutAndSucceedOnceFree) {
    gt::shared_timed_mutex m;
    m.lock_shared();
    bool got = true;
    std::chrono::steady_clock::duration waited{};
    gt::thread writer([&] {
        const auto start = std::chrono::steady_clock::now();
        got = m.try_lock_for(5ms);
        waited = std::chrono::steady_clock::now() - start;
    });
    writer.join();
    EXPECT_FALSE(got);
    EXPECT_GE(waited, 5ms);
    gt::thread reader([&] {
        got = m.try_lock_shared_for(5ms);  // no writer waits any more: at once
        if (got) m.unlock_shared();
    });
    reader.join();
    EXPECT_TRUE(got);
    m.unlock_shared();
    m.lock();
    gt::thread late_reader([&] { got = m.try_lock_shared_until(std::chrono::steady_clock::now() + 2ms); });
    late_reader.join();
    EXPECT_FALSE(got);
    m.unlock();
    EXPECT_TRUE(m.try_lock_shared_for(1ms));
    m.unlock_shared();
}

// Why: readers held back only by a waiting writer must get in when that
// writer gives up; else they wait for a writer that is gone.
TEST(SharedTimedMutex, AWriterThatTimesOutLetsInTheReadersItHeldBack) {
    const preemption_for_test preemption(0us);
    gt::shared_timed_mutex m;
    m.lock_shared();  // held by main throughout
    bool writer_got = true, reader_got = false;
    // Cooperative: the writer blocks first (its deadline ahead), then the
    // reader comes and waits behind it.
    gt::thread writer([&] { writer_got = m.try_lock_for(20ms); });
    gt::thread reader([&] {
        m.lock_shared();
        reader_got = true;
        m.unlock_shared();
    });
    writer.join();
    reader.join();  // hangs (a deadlock report) if the reader is never let in
    EXPECT_FALSE(writer_got);
    EXPECT_TRUE(reader_got);
    m.unlock_shared();
}

// Why: a timeout takes the writer off the queue at once, but the writer
// clears WRITERS_WAITING only when it runs again. The last reader leaving
// in between found the flag and no writer to hand the lock to (it aborted
// on an invariant); it must free the lock, so that a writer can take it.
TEST(SharedTimedMutex, TheLastReaderLeavingBeforeATimedOutWriterRunsFreesTheLock) {
    const preemption_for_test preemption(0us);  // exact order: cooperative
    gt::shared_timed_mutex m;
    bool release = false, writer_got = true, free_after_reader = false;
    gt::thread reader([&] {
        m.lock_shared();
        while (!release) gt::this_thread::yield();
        m.unlock_shared();  // the last reader; the writer has timed out but not run yet
        free_after_reader = m.try_lock();
        if (free_after_reader) m.unlock();
    });
    gt::thread writer([&] { writer_got = m.try_lock_for(2ms); });
    gt::this_thread::yield();  // the reader takes it shared, the writer blocks behind it
    release = true;
    const auto past_deadline = std::chrono::steady_clock::now() + 3ms;
    while (std::chrono::steady_clock::now() < past_deadline) {
    }
    // This yield times the writer out and queues it behind the reader,
    // which runs first and leaves.
    gt::this_thread::yield();
    reader.join();
    writer.join();
    EXPECT_FALSE(writer_got);
    EXPECT_TRUE(free_after_reader);
    EXPECT_TRUE(m.try_lock_shared());
    m.unlock_shared();
}

namespace {

void unlock_a_free_shared_mutex() {
    gt::shared_mutex m;
    m.unlock();
}

void unlock_shared_without_readers() {
    gt::shared_mutex m;
    m.lock();
    m.unlock_shared();
}

}  // namespace

// Why: std leaves these undefined; we name the thread and the object
// instead of corrupting the lock.
TEST(SharedMutexDeathTest, UnlockingWithoutHoldingItReportsTheThreadAndTheLock) {
    EXPECT_DEATH(unlock_a_free_shared_mutex(), "gt: thread [0-9]+ \"main\" unlocks gt::shared_mutex \\(0x[0-9a-f]+\\), which is not locked");
    EXPECT_DEATH(unlock_shared_without_readers(),
                 "calls unlock_shared on gt::shared_mutex \\(0x[0-9a-f]+\\), which is held exclusively by thread [0-9]+ \"main\", not shared");
}
