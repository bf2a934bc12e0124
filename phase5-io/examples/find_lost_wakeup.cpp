// The deterministic scheduling mode finds a lost wakeup. A condition
// variable that releases the caller's mutex before it becomes a waiter
// loses a notify that comes in between; ordinary scheduling almost never
// switches exactly there, so the bug hides. Running the scenario under
// seeds 1, 2, 3, ... (each seed one interleaving, replayed exactly) finds
// a seed that hangs it, and the real gt::condition_variable never hangs
// under the same seeds.
//
//   build/examples/find_lost_wakeup   (in the phase folder)
#include <gt/condition_variable.hpp>
#include <gt/deterministic.hpp>
#include <gt/mutex.hpp>
#include <gt/thread.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <string>

namespace {

// The bug: wait releases the caller's mutex, and only then joins the
// waiters. gt::condition_variable_any takes its internal mutex first,
// then releases the caller's: those two lines swapped are the fix.
class broken_condition_variable {
public:
    void wait(std::unique_lock<gt::mutex>& lock) {
        lock.unlock();  // a notify from here until cv_.wait finds no waiter
        std::unique_lock<gt::mutex> hold(internal_);
        cv_.wait(hold);
        hold.unlock();
        lock.lock();
    }
    void notify_one() {
        const std::lock_guard<gt::mutex> hold(internal_);
        cv_.notify_one();
    }

private:
    gt::mutex internal_;
    gt::condition_variable cv_;
};

// Thread names by id, for printing a schedule log.
std::map<std::uint64_t, std::string> names;

std::uint64_t number(gt::thread::id id) {
    std::ostringstream text;
    text << id;
    return std::stoull(text.str());
}

// One thread waits for a flag that another sets and then notifies.
template <class ConditionVariable>
void handshake() {
    gt::mutex m;
    ConditionVariable cv;
    bool ready = false;
    gt::thread waiter({.name = "waiter"}, [&] {
        std::unique_lock<gt::mutex> lock(m);
        while (!ready) cv.wait(lock);
    });
    gt::thread notifier({.name = "notifier"}, [&] {
        {
            const std::lock_guard<gt::mutex> lock(m);
            ready = true;
        }
        cv.notify_one();
    });
    names[number(waiter.get_id())] = "waiter";
    names[number(notifier.get_id())] = "notifier";
    waiter.join();
    notifier.join();
}

// The log of the run so far, one line per stretch a thread ran.
void print_schedule() {
    std::uint64_t current = 0;
    for (const gt::debug::schedule_step& step : gt::debug::schedule_log()) {
        if (step.event == gt::debug::schedule_event::run) continue;  // the line break shows the switch
        if (step.thread_id != current) {
            std::printf("%s    %-9s", current == 0 ? "" : "\n", names[step.thread_id].c_str());
            current = step.thread_id;
        }
        std::printf(" %s", gt::debug::to_string(step.event));
    }
    std::printf("\n");
}

// Runs the scenario in a child process, with the deterministic mode on
// if `seed` is not 0, and returns true if it ended normally. A watcher
// thread of the lowest priority runs only when no other thread can: if
// the scenario has not finished by then, its threads all wait for good.
// With `show` it prints the steps that led there; then it ends, every
// thread is blocked, and the runtime's deadlock report aborts the child.
// No timeout is needed to tell a hang.
bool survives(std::uint64_t seed, void (*scenario)(), bool show = false) {
    std::fflush(stdout);
    const pid_t child = ::fork();
    if (child == 0) {
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        if (!show) ::dup2(::open("/dev/null", O_WRONLY), STDERR_FILENO);
        names[number(gt::this_thread::get_id())] = "main";
        bool done = false;
        gt::thread watcher({.priority = gt::lowest_priority, .name = "watcher"}, [&] {
            if (!done && show) print_schedule();
            std::fflush(stdout);
        });
        if (seed != 0) gt::debug::set_schedule_seed(seed);  // after the watcher: it draws nothing from the seed
        scenario();
        done = true;
        gt::debug::set_schedule_seed(0);
        watcher.join();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main() {
    constexpr std::uint64_t seeds = 200;

    int ordinary_hangs = 0;
    for (std::uint64_t i = 1; i <= seeds; ++i) ordinary_hangs += survives(0, handshake<broken_condition_variable>) ? 0 : 1;
    std::printf("Without the deterministic mode: broken_condition_variable hung in %d of %llu runs%s.\n",
                ordinary_hangs, static_cast<unsigned long long>(seeds), ordinary_hangs == 0 ? "; the bug hides" : "");

    std::uint64_t first = 0;
    int hangs = 0;
    for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
        if (!survives(seed, handshake<broken_condition_variable>)) {
            ++hangs;
            if (first == 0) first = seed;
        }
    }
    std::printf("Seeds 1..%llu: %d of them lose the wakeup; the first is seed %llu.\n",
                static_cast<unsigned long long>(seeds), hangs, static_cast<unsigned long long>(first));
    if (first == 0) return 1;

    std::printf("Replaying seed %llu: the steps of each thread, a new line at each switch, then the runtime's report\n",
                static_cast<unsigned long long>(first));
    const bool replay_survived = survives(first, handshake<broken_condition_variable>, /*show=*/true);
    std::printf("Seed %llu %s.\n", static_cast<unsigned long long>(first),
                replay_survived ? "did not hang this time: the replay failed" : "hung again");

    int real_hangs = 0;
    for (std::uint64_t seed = 1; seed <= seeds; ++seed) real_hangs += survives(seed, handshake<gt::condition_variable>) ? 0 : 1;
    std::printf("gt::condition_variable under the same seeds: %d hangs.\n", real_hangs);
    return replay_survived || real_hangs != 0 ? 1 : 0;
}
