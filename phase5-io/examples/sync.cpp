// Synchronization: what goes wrong when threads share data under
// preemption, and the phase's primitives that fix it, one part each:
//   1. a data race: four threads add 1 to a shared counter; a tick that
//      lands between reading the counter and writing it back loses every
//      increment the other threads made meanwhile;
//   2. the same with a gt::mutex around the read-modify-write: exact, and
//      a thread that finds the mutex taken blocks instead of spinning;
//   3. a producer and a consumer sharing a small queue, waiting on
//      gt::condition_variable for room and for items.
// Every part runs at a 100 µs time slice, so that ticks land often.
//
//   build/examples/sync                                    (in the phase folder)
//   GT_TRACE=build/sync.trace.json build/examples/sync     (see make trace: block and wake markers
//                                                           show where threads waited on each other)
#include <gt/condition_variable.hpp>
#include <gt/debug.hpp>
#include <gt/mutex.hpp>
#include <gt/preemption.hpp>
#include <gt/thread.hpp>

#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr int workers = 4;
constexpr long increments_each = 500'000;
constexpr long total = workers * increments_each;

// The shared counter. volatile: each read and write really goes to memory,
// as it would in code the compiler cannot see through, instead of the
// compiler keeping it in a register for the whole loop.
volatile long counter = 0;

// A little work between reading the counter and writing it back, as real
// code has (say, computing the new value); the wider the window, the more
// often a tick lands inside it.
void compute_a_little() {
    volatile int scratch = 0;
    for (int i = 0; i < 20; ++i) scratch = scratch + i;
}

void add_one_unprotected() {
    const long seen = counter;  // read ...
    compute_a_little();
    counter = seen + 1;  // ... write back: whatever others added in between is overwritten
}

// Runs `body` in `workers` threads, `increments_each` times each; returns
// how many times the timer preempted them.
template <class Body>
unsigned long run_workers(Body body) {
    std::vector<unsigned long> preempted(workers);  // one slot each: a shared sum would race too
    std::vector<gt::thread> threads;
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back(gt::thread::attributes{.name = "worker-" + std::to_string(w + 1)}, [&body, &preempted, w] {
            for (long i = 0; i < increments_each; ++i) body();
            preempted[w] = gt::debug::this_thread_stats().preemptions;
        });
    }
    unsigned long sum = 0;
    for (int w = 0; w < workers; ++w) {
        threads[w].join();
        sum += preempted[w];
    }
    return sum;
}

void data_race() {
    counter = 0;
    const unsigned long preempted = run_workers(add_one_unprotected);
    const long lost = total - counter;
    std::printf("1. a data race: %d threads add 1 to a shared counter %ld times each, no lock\n", workers,
                increments_each);
    std::printf("   counter = %ld of %ld: lost %ld increments (%.1f%%); the timer preempted the threads %lu times\n",
                counter, total, lost, 100.0 * static_cast<double>(lost) / total, preempted);
    if (lost > 0) {
        std::printf("   why: a tick came between a thread's read of the counter and its write; the others\n"
                    "   added to it meanwhile, and the late write put back the old value plus one\n");
    } else {
        std::printf("   no tick split an update this time (rare); run it again\n");
    }
}

void with_mutex() {
    counter = 0;
    gt::mutex m;
    long found_locked = 0;  // changed only while m is held
    const unsigned long preempted = run_workers([&] {
        if (!m.try_lock()) {
            m.lock();  // blocks: off the run queue until the owner's unlock wakes it
            ++found_locked;
        }
        add_one_unprotected();  // now protected: nobody else is between lock and unlock
        m.unlock();
    });
    std::printf("2. the same, each read-modify-write inside a gt::mutex\n");
    std::printf("   counter = %ld of %ld: %s; the timer preempted the threads %lu times\n", counter, total,
                counter == total ? "none lost" : "LOST SOME (a bug in the mutex)", preempted);
    std::printf("   %ld times a thread found the mutex held (its owner had been preempted inside) and\n"
                "   blocked until the owner unlocked it, using no CPU meanwhile\n",
                found_locked);
}

void producer_consumer() {
    constexpr int items = 10'000;
    constexpr std::size_t capacity = 8;
    gt::mutex m;
    gt::condition_variable has_room, has_item;
    std::deque<int> queue;
    long producer_waits = 0, consumer_waits = 0, sum = 0;
    int received = 0;

    gt::thread producer({.name = "producer"}, [&] {
        for (int i = 1; i <= items; ++i) {
            std::unique_lock lock(m);
            if (queue.size() == capacity) ++producer_waits;
            has_room.wait(lock, [&] { return queue.size() < capacity; });  // releases m while it waits
            queue.push_back(i);
            has_item.notify_one();
        }
    });
    gt::thread consumer({.name = "consumer"}, [&] {
        while (received < items) {
            std::unique_lock lock(m);
            if (queue.empty()) ++consumer_waits;
            has_item.wait(lock, [&] { return !queue.empty(); });
            sum += queue.front();
            queue.pop_front();
            ++received;
            has_room.notify_one();
        }
    });
    producer.join();
    consumer.join();
    const long expected = long{items} * (items + 1) / 2;
    std::printf("3. a producer and a consumer share a queue of %zu places, with two gt::condition_variables\n",
                capacity);
    std::printf("   received %d of %d items, sum %ld (expected %ld): %s\n", received, items, sum, expected,
                sum == expected ? "nothing lost or doubled" : "WRONG");
    std::printf("   the producer waited for room %ld times, the consumer for an item %ld times;\n"
                "   each wait blocked on the condition variable, and a notify woke it\n",
                producer_waits, consumer_waits);
}

}  // namespace

int main() {
    gt::set_time_slice(100us);
    data_race();
    with_mutex();
    producer_consumer();
    return 0;
}
