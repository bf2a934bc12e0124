// Three green threads take turns on one OS thread. Each prints a line and
// yields; the scheduler always runs the thread that has waited longest, so
// the lines come out in strict rotation: round robin.
//
//   make demo-phaseN          (or, in the phase folder: build/examples/round_robin)
#include <gt/thread.hpp>

#include <iostream>

namespace {

void worker(const char* name, int steps) {
    for (int step = 1; step <= steps; ++step) {
        std::cout << name << " (thread " << gt::this_thread::get_id() << ") step " << step << " of " << steps
                  << '\n';
        gt::this_thread::yield();  // to the back of the run queue; the front thread runs next
    }
    std::cout << name << " (thread " << gt::this_thread::get_id() << ") returns\n";
}

}  // namespace

int main() {
    std::cout << "main (thread " << gt::this_thread::get_id() << ") creates alpha, beta and gamma\n";
    gt::thread alpha(worker, "alpha", 3);
    gt::thread beta(worker, "beta ", 3);
    gt::thread gamma(worker, "gamma", 2);
    std::cout << "main joins alpha: it blocks, off the run queue, until alpha finishes\n";
    alpha.join();
    std::cout << "main joined alpha, joins beta and gamma\n";
    beta.join();
    gamma.join();
    std::cout << "main: all threads joined\n";
}
